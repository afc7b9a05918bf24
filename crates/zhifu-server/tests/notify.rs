//! The notification path and its tamper matrix, with notifications signed
//! by a test-held "Alipay" key through the `alipay` crate's signer.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::Value;
use zhifu_store::Store;
use zhifu_store::testing::{TestDatabase, execute_sql};

zhifu_store::backend_tests!(
    tamper_matrix,
    genuine_notification_pays_once_and_redelivery_is_noop,
    what_strangers_make_us_store_is_bounded,
    a_settled_notification_replays_without_the_database,
);

async fn app(db: TestDatabase) -> TestApp {
    spawn_app(
        db,
        Options {
            sandbox: false,
            seller_id: true,
            ..Default::default()
        },
    )
    .await
}

async fn reasons(app: &TestApp, order: &Value) -> Vec<(String, Option<String>)> {
    app.store
        .list_notifications(order["id"].as_str().unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.outcome, n.reason))
        .collect()
}

async fn genuine_notification_pays_once_and_redelivery_is_noop(db: TestDatabase) {
    let app = app(db).await;
    let order = app.create_order("88.88").await;
    let fields = paid_fields(&app, &order, "notify-1");
    let body = app.signed_notification(&as_refs(&fields));
    assert_eq!(app.post_notify(&body).await, (200, "success".into()));
    let got = app.order(order["id"].as_str().unwrap()).await;
    assert_eq!(got["status"], "paid");
    assert_eq!(got["buyer_logon_id"], "buy***@example.com");
    assert!(got["paid_at"].is_string());
    // Redeliveries: still `success`, nothing changes.
    for _ in 0..3 {
        assert_eq!(app.post_notify(&body).await, (200, "success".into()));
    }
    let events = app
        .store
        .list_events(order["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    // The replays wrote nothing: one record, the applied one.
    let r = reasons(&app, &order).await;
    assert_eq!(r, vec![("applied".to_owned(), None)]);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("zhifu_orders{status=\"paid\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zhifu_notifications_total{outcome=\"duplicate\",reason=\"\"} 3"),
        "{metrics}"
    );
}

async fn tamper_matrix(db: TestDatabase) {
    let app = app(db).await;
    let a = app.create_order("88.88").await;
    let b = app.create_order("88.88").await;
    let a_id = a["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();
    let genuine = paid_fields(&app, &a, "notify-a");

    // Each case: (name, body, expected reason recorded on order A).
    let mut cases: Vec<(&str, String, &str)> = Vec::new();

    // A bad signature: one base64 character of the signature flipped. The
    // flip is made on the decoded value: flipping a byte of the encoded
    // body could land inside a `%XX` escape and make the form malformed
    // instead, which is a different case.
    let body = app.signed_notification(&as_refs(&genuine));
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(body.as_bytes()) {
        let v = if k == "sign" {
            let mut c: Vec<char> = v.chars().collect();
            c[10] = if c[10] == 'A' { 'B' } else { 'A' };
            c.into_iter().collect()
        } else {
            v.into_owned()
        };
        ser.append_pair(&k, &v);
    }
    cases.push(("bad signature", ser.finish(), "bad_signature"));

    // A field changed after signing.
    let tampered = body.replace("total_amount=88.88", "total_amount=0.01");
    assert_ne!(tampered, body);
    cases.push(("amount changed after signing", tampered, "bad_signature"));

    // Signed, but for another app.
    let mut f = genuine.clone();
    set(&mut f, "app_id", "2021000000000009");
    cases.push((
        "wrong app_id",
        app.signed_notification(&as_refs(&f)),
        "app_id_mismatch",
    ));

    // Signed, but another payee.
    let mut f = genuine.clone();
    set(&mut f, "seller_id", "2088000000000009");
    cases.push((
        "wrong seller_id",
        app.signed_notification(&as_refs(&f)),
        "seller_id_mismatch",
    ));

    // Signed, but another amount.
    let mut f = genuine.clone();
    set(&mut f, "total_amount", "0.01");
    cases.push((
        "wrong amount",
        app.signed_notification(&as_refs(&f)),
        "amount_mismatch",
    ));

    // No signature at all.
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &genuine {
        ser.append_pair(k, v);
    }
    cases.push(("unsigned", ser.finish(), "bad_signature"));

    for (name, body, reason) in &cases {
        let (status, text) = app.post_notify(body).await;
        assert_eq!((status, text.as_str()), (400, "failure"), "{name}");
        let order = app.order(a_id).await;
        assert_eq!(order["status"], "pending", "{name} changed the order");
        // Alipay-signed refusals are in A's audit trail; forgeries never
        // are (they sit apart, with only their digest and size).
        let got = if *reason == "bad_signature" {
            let orphan = app.store.list_orphan_notifications(1).await.unwrap();
            let payload = orphan[0].payload.clone().unwrap_or_default();
            assert!(
                payload.contains("sha256") && payload.len() < 200,
                "{name}: {payload}"
            );
            (orphan[0].outcome.clone(), orphan[0].reason.clone())
        } else {
            reasons(&app, &a).await.last().unwrap().clone()
        };
        assert_eq!(
            got,
            ("anomaly".to_owned(), Some((*reason).to_owned())),
            "{name}"
        );
    }
    let signed_refusals = cases.iter().filter(|c| c.2 != "bad_signature").count();
    assert_eq!(reasons(&app, &a).await.len(), signed_refusals);

    // Unknown out_trade_no: refused and recorded without an order.
    let mut f = genuine.clone();
    set(&mut f, "out_trade_no", "NO_SUCH_ORDER_1");
    let (status, text) = app
        .post_notify(&app.signed_notification(&as_refs(&f)))
        .await;
    assert_eq!((status, text.as_str()), (400, "failure"));
    let orphans = app.store.list_orphan_notifications(10).await.unwrap();
    assert_eq!(orphans[0].reason.as_deref(), Some("unknown_order"));
    assert_eq!(orphans[0].out_trade_no.as_deref(), Some("NO_SUCH_ORDER_1"));

    // Garbage body.
    let (status, _) = app.post_notify("%%%&&&=").await;
    assert_eq!(status, 400);

    // A's genuine notification pays A only; replayed, it changes nothing;
    // pointed at B (out_trade_no rewritten), its signature breaks.
    let a_body = app.signed_notification(&as_refs(&genuine));
    assert_eq!(app.post_notify(&a_body).await, (200, "success".into()));
    assert_eq!(app.order(a_id).await["status"], "paid");
    assert_eq!(app.post_notify(&a_body).await, (200, "success".into()));
    let a_no = a["out_trade_no"].as_str().unwrap();
    let b_no = b["out_trade_no"].as_str().unwrap();
    let against_b = a_body.replace(a_no, b_no);
    assert_ne!(against_b, a_body);
    assert_eq!(app.post_notify(&against_b).await, (400, "failure".into()));
    assert_eq!(app.order(b_id).await["status"], "pending");
    assert!(
        reasons(&app, &b).await.is_empty(),
        "a forgery is not B's history"
    );
    let orphan = &app.store.list_orphan_notifications(1).await.unwrap()[0];
    assert_eq!(
        orphan.out_trade_no.as_deref(),
        Some(b_no),
        "what it claimed, kept"
    );
    assert_eq!(app.store.list_events(b_id).await.unwrap().len(), 0);

    // TRADE_CLOSED after paid (no refund behind it): refused, A stays paid.
    let mut f = genuine.clone();
    set(&mut f, "notify_id", "notify-a-closed");
    set(&mut f, "trade_status", "TRADE_CLOSED");
    set(&mut f, "gmt_close", "2024-05-01 11:00:00");
    let (status, text) = app
        .post_notify(&app.signed_notification(&as_refs(&f)))
        .await;
    assert_eq!((status, text.as_str()), (400, "failure"));
    assert_eq!(app.order(a_id).await["status"], "paid");
    assert_eq!(
        reasons(&app, &a).await.last().unwrap(),
        &("anomaly".to_owned(), Some("closed_after_paid".to_owned()))
    );
    // A different trade_no for the same order is refused too.
    let mut f = genuine.clone();
    set(&mut f, "notify_id", "notify-a-other-trade");
    set(&mut f, "trade_no", "2099999999999999999");
    let (status, _) = app
        .post_notify(&app.signed_notification(&as_refs(&f)))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        reasons(&app, &a).await.last().unwrap().1.as_deref(),
        Some("trade_no_mismatch")
    );
    let events = app.store.list_events(a_id).await.unwrap();
    assert_eq!(events.len(), 1, "only the genuine payment changed A");
}

/// Every notification record: the order's and those naming no order.
async fn count_rows(app: &TestApp, order_id: &str) -> i64 {
    let of_order = app.store.list_notifications(order_id).await.unwrap().len();
    let orphans = app
        .store
        .list_orphan_notifications(100_000)
        .await
        .unwrap()
        .len();
    i64::try_from(of_order + orphans).unwrap()
}

async fn what_strangers_make_us_store_is_bounded(db: TestDatabase) {
    let app = app(db).await;
    let order = app.create_order("88.88").await;
    let id = order["id"].as_str().unwrap();
    let genuine = app.signed_notification(&as_refs(&paid_fields(&app, &order, "n-bound")));
    assert_eq!(app.post_notify(&genuine).await, (200, "success".into()));
    let after_first = count_rows(&app, id).await;

    // Replays of the genuine notification: `success`, and no write.
    for _ in 0..100 {
        assert_eq!(app.post_notify(&genuine).await, (200, "success".into()));
    }
    assert_eq!(count_rows(&app, id).await, after_first);

    // A genuine (signed) but refused notification, replayed: one record.
    let mut f = paid_fields(&app, &order, "n-bound-mismatch");
    set(&mut f, "total_amount", "0.01");
    let mismatch = app.signed_notification(&as_refs(&f));
    for _ in 0..20 {
        assert_eq!(app.post_notify(&mismatch).await.0, 400);
    }
    assert_eq!(count_rows(&app, id).await, after_first + 1);

    // 200 forged 60 KB notifications naming the real order: each refused;
    // at most the per-minute budget is recorded, each record a digest and
    // a size, none of them in the order's history.
    let mut forged = paid_fields(&app, &order, "n-forged");
    set(&mut forged, "body", &"x".repeat(60 * 1024));
    forged.push(("sign_type".into(), "RSA2".into()));
    forged.push(("sign".into(), "Zm9yZ2Vk".into()));
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &forged {
        ser.append_pair(k, v);
    }
    let forged = ser.finish();
    assert!(forged.len() > 60 * 1024);
    for _ in 0..200 {
        assert_eq!(app.post_notify(&forged).await, (400, "failure".into()));
    }
    let budget = i64::from(zhifu_server::config::MoneyPolicy::default().refused_records_per_minute);
    let grown = count_rows(&app, id).await - after_first - 1;
    assert!(grown <= budget, "{grown} records for 200 forgeries");
    assert!(grown >= 1, "forgeries are recorded while the budget lasts");
    let orphans = app.store.list_orphan_notifications(1_000).await.unwrap();
    let bytes: usize = orphans
        .iter()
        .map(|n| n.payload.as_deref().map_or(0, str::len))
        .sum();
    assert!(bytes < 200 * orphans.len(), "{bytes} bytes of payload");
    assert!(
        app.store
            .list_notifications(id)
            .await
            .unwrap()
            .iter()
            .all(|n| n.reason.as_deref() != Some("bad_signature"))
    );
    // Every forgery is still counted.
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "zhifu_notifications_total{outcome=\"anomaly\",reason=\"bad_signature\"} 200"
        ),
        "{metrics}"
    );

    // The reconcile pass prunes refused records that name no order once
    // they are old.
    app.clock
        .advance(std::time::Duration::from_secs(8 * 24 * 3600));
    let report = app.reconcile_to_rest().await;
    assert_eq!(report[0].refused_pruned, u64::try_from(grown).unwrap());
    assert!(
        app.store
            .list_orphan_notifications(10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.order(id).await["status"], "paid");
}

async fn a_settled_notification_replays_without_the_database(db: TestDatabase) {
    let app = app(db).await;
    let order = app.create_order("88.88").await;
    let other = app.create_order("1.00").await;
    let body = app.signed_notification(&as_refs(&paid_fields(&app, &order, "n-settled")));
    let fresh = app.signed_notification(&as_refs(&paid_fields(&app, &other, "n-fresh")));
    assert_eq!(app.post_notify(&body).await, (200, "success".into()));

    // Take the orders table away: whatever reads an order now fails.
    execute_sql(&app.store, "ALTER TABLE orders RENAME TO orders_away").await;
    // The settled body is verified again and answered from memory.
    for _ in 0..3 {
        assert_eq!(app.post_notify(&body).await, (200, "success".into()));
    }
    // A notification never seen needs the read, which fails: `failure`,
    // and Alipay would retry.
    assert_eq!(app.post_notify(&fresh).await, (500, "failure".into()));
    // Verification still comes first: the remembered body with one signed
    // field changed is refused.
    let tampered = body.replacen("total_amount=88.88", "total_amount=88.89", 1);
    assert_ne!(tampered, body);
    assert_eq!(app.post_notify(&tampered).await, (400, "failure".into()));
    execute_sql(&app.store, "ALTER TABLE orders_away RENAME TO orders").await;

    // The fresh one goes through now; its replay is remembered too.
    assert_eq!(app.post_notify(&fresh).await, (200, "success".into()));
    assert_eq!(
        app.order(other["id"].as_str().unwrap()).await["status"],
        "paid"
    );
    let events = app
        .store
        .list_events(order["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}
