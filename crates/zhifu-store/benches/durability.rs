//! What durable commits cost on SQLite: one payment committed (create the
//! order, then apply a verified TRADE_SUCCESS with its event and audit
//! record — two write transactions), with `synchronous = FULL` (the
//! default: a commit that returned survives power loss) against `NORMAL`
//! (WAL synced only at checkpoints), on a file in the build directory (a
//! real disk; `/tmp` may be memory). Run by `bench/durability.sh`, which
//! prints the ratio.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use zhifu_store::*;

fn store(durable: bool) -> (tokio::runtime::Runtime, SqlStore, tempfile::TempDir) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::Builder::new()
        .prefix("zhifu-durability")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a temporary directory on the build disk");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let opts = StoreOptions {
        sqlite_durable_commits: durable,
        ..Default::default()
    };
    let s = rt
        .block_on(SqlStore::connect_and_migrate(&url, &opts))
        .expect("the store opens");
    (rt, s, dir)
}

async fn one_payment(s: &SqlStore, n: u64) {
    let now = 1_700_000_000_000 + i64::try_from(n).unwrap_or(0);
    let created = s
        .create_order(NewOrder {
            id: new_id("ord"),
            out_trade_no: format!("B{n}_{}", new_id("x")),
            subject: "Mug".into(),
            body: None,
            total_fen: 8_888,
            metadata: None,
            idempotency_key: None,
            request_hash: None,
            created_at: now,
            expires_at: now + 1_800_000,
        })
        .await
        .expect("create");
    let CreateOrderOutcome::Created(o) = created else {
        panic!("a new order");
    };
    let update = TradeUpdate {
        order_id: o.id.clone(),
        source: UpdateSource::Notify,
        notify_id: Some(format!("n{n}")),
        trade_state: TradeState::Success,
        trade_no: Some(format!("2024{n}")),
        buyer_logon_id: None,
        buyer_id: None,
        paid_at: Some(now),
        refund_fee: None,
        at: now,
        late_payment: LatePayment::Keep,
    };
    let record = NewNotification {
        id: new_id("ntf"),
        order_id: Some(o.id.clone()),
        out_trade_no: Some(o.out_trade_no.clone()),
        notify_id: update.notify_id.clone(),
        source: UpdateSource::Notify,
        trade_status: Some("TRADE_SUCCESS".into()),
        anomaly: Vec::new(),
        payload: None,
        received_at: now,
    };
    s.apply_trade_update(&update, &record).await.expect("apply");
}

fn durability(c: &mut Criterion) {
    let mut g = c.benchmark_group("sqlite_payment_commit");
    g.measurement_time(Duration::from_secs(5));
    for (name, durable) in [("synchronous_normal", false), ("synchronous_full", true)] {
        let (rt, s, _dir) = store(durable);
        let mut n = 0_u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(one_payment(&s, n));
            });
        });
    }
    g.finish();
}

criterion_group!(benches, durability);
criterion_main!(benches);
