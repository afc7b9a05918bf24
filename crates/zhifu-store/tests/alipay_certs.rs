//! The Alipay certificate records of schema 4, on both backends.

#![allow(clippy::unwrap_used)]

use zhifu_store::testing::TestDatabase;
use zhifu_store::{AlipayCertRecord, SqlStore, Store, StoreOptions};

zhifu_store::backend_tests!(records_keep_an_acceptance_over_a_later_refusal);

fn rec(sn: &str, accepted: bool, at: i64) -> AlipayCertRecord {
    AlipayCertRecord {
        sn: sn.into(),
        pem: accepted.then(|| format!("-----BEGIN CERTIFICATE-----\n{sn}\n")),
        accepted,
        reason: (!accepted).then(|| "does not chain to the root bundle".into()),
        recorded_at: at,
    }
}

async fn records_keep_an_acceptance_over_a_later_refusal(db: TestDatabase) {
    let store = SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    assert!(store.get_alipay_cert("a").await.unwrap().is_none());
    store.record_alipay_cert(&rec("b", false, 1)).await.unwrap();
    store.record_alipay_cert(&rec("a", true, 2)).await.unwrap();
    assert_eq!(
        store.get_alipay_cert("b").await.unwrap(),
        Some(rec("b", false, 1))
    );
    // A refusal does not undo an acceptance; an acceptance replaces a refusal.
    store.record_alipay_cert(&rec("a", false, 3)).await.unwrap();
    store.record_alipay_cert(&rec("b", true, 4)).await.unwrap();
    assert_eq!(
        store.get_alipay_cert("a").await.unwrap(),
        Some(rec("a", true, 2))
    );
    let accepted: Vec<String> = store
        .accepted_alipay_certs()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.sn)
        .collect();
    assert_eq!(accepted, ["a", "b"]);
}
