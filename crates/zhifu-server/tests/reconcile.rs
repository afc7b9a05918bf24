//! The reconcile pass against the real sandbox with every notification
//! dropped: it brings paid orders to `paid` and expired ones to `closed`
//! through the verified path, settles refunds whose outcome was unknown,
//! never does one change twice when passes run concurrently, and loses
//! nothing when a pass is killed mid-way. SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use zhifu_sandbox::Faults;
use zhifu_server::ReconcileOptions;
use zhifu_server::jobs::reconcile::run_pass;
use zhifu_store::testing::TestDatabase;
use zhifu_store::{RefundStatus, Store, WebhookState};

zhifu_store::backend_tests!(
    a_pass_recovers_every_dropped_notification,
    concurrent_passes_do_each_change_once,
    a_killed_pass_loses_nothing,
    pending_refunds_are_settled,
);

fn opts() -> ReconcileOptions {
    ReconcileOptions {
        min_age: Duration::from_secs(60),
        ..Default::default()
    }
}

async fn drop_all(app: &TestApp) {
    app.sandbox()
        .set_faults(Faults {
            drop_rate: 1.0,
            ..Default::default()
        })
        .await;
}

/// An order paid in the sandbox whose notification never arrives.
async fn paid_silently(app: &TestApp, amount: &str) -> Value {
    let o = app.create_order(amount).await;
    let r = app
        .pay(o["id"].as_str().unwrap(), json!({"channel": "qr"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    app.buyer_pays(o["out_trade_no"].as_str().unwrap()).await;
    o
}

fn id(o: &Value) -> String {
    o["id"].as_str().unwrap().to_owned()
}

/// Alipay calls of one method counted in this instance's /metrics.
fn calls(app: &TestApp, method: &str) -> u64 {
    let text = app.state.metrics().render(&[]);
    text.lines()
        .filter(|l| {
            l.starts_with("zhifu_alipay_calls_total") && l.contains(&format!("method=\"{method}\""))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

async fn a_pass_recovers_every_dropped_notification(db: TestDatabase) {
    let app = spawn_app(db, Options::default()).await;
    drop_all(&app).await;
    let mut paid = Vec::new();
    for i in 0..5 {
        paid.push(paid_silently(&app, &format!("{i}.50")).await);
    }
    let unpaid = app.create_order("3.00").await;
    let expiring = app
        .api(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Tea", "total_amount": "4.00", "expires_in_minutes": 1})),
        )
        .await
        .body;
    for o in &paid {
        assert_eq!(app.order(&id(o)).await["status"], "pending");
    }

    // Too young: the notification may still come. Nothing is asked.
    let report = run_pass(&app.state, &opts()).await;
    assert_eq!(report.orders_checked, 0, "{report:?}");
    assert_eq!(calls(&app, "alipay.trade.query"), 0);

    app.clock.advance(Duration::from_secs(61));
    let report = run_pass(&app.state, &opts()).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.orders_checked, 7);
    let want: HashSet<String> = paid.iter().map(id).collect();
    assert_eq!(report.paid.iter().cloned().collect::<HashSet<_>>(), want);
    assert_eq!(report.closed, vec![id(&expiring)]);
    for o in &paid {
        let got = app.order(&id(o)).await;
        assert_eq!(got["status"], "paid", "{got}");
        let events = app.store.list_events(&id(o)).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].source, "query", "through the verified query path");
    }
    assert_eq!(app.order(&id(&unpaid)).await["status"], "pending");
    assert_eq!(app.order(&id(&expiring)).await["status"], "closed");
    let closed_at_alipay = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .filter(|t| t.out_trade_no == expiring["out_trade_no"])
        .count();
    // Never opened at Alipay: nothing to close there, closed locally.
    assert_eq!(closed_at_alipay, 0);

    // A second pass right away (over HTTP, as an HTTP-only scheduler runs
    // it): everything is leased or settled.
    let again = app
        .api(
            "POST",
            "/v1/reconcile",
            Some(json!({"min_age_seconds": 60})),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["orders_checked"], 0, "{:?}", again.body);
    assert_eq!(again.body["paid"], json!([]));
    let bad = app
        .api("POST", "/v1/reconcile", Some(json!({"limit": 0})))
        .await;
    assert_eq!(
        (bad.status, bad.body["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
}

async fn concurrent_passes_do_each_change_once(db: TestDatabase) {
    let app = spawn_app(db, Options::default()).await;
    drop_all(&app).await;
    let mut want = HashSet::new();
    for i in 0..16 {
        want.insert(id(&paid_silently(&app, &format!("1.{i:02}")).await));
    }
    app.clock.advance(Duration::from_secs(61));
    let small = ReconcileOptions { batch: 3, ..opts() };
    let (a, b) = tokio::join!(run_pass(&app.state, &small), run_pass(&app.state, &small));
    assert!(a.errors.is_empty() && b.errors.is_empty(), "{a:?} {b:?}");
    let (pa, pb): (HashSet<_>, HashSet<_>) = (
        a.paid.iter().cloned().collect(),
        b.paid.iter().cloned().collect(),
    );
    assert!(
        pa.is_disjoint(&pb),
        "both passes changed {:?}",
        pa.intersection(&pb)
    );
    assert_eq!(
        a.orders_checked + b.orders_checked,
        16,
        "each order asked once"
    );
    assert_eq!(&pa | &pb, want);
    assert_eq!(calls(&app, "alipay.trade.query"), 16, "one query per order");
    for o in &want {
        assert_eq!(app.store.list_events(o).await.unwrap().len(), 1);
    }
}

async fn a_killed_pass_loses_nothing(db: TestDatabase) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let receiver = Receiver::start(ReceiverMode::Hang(tx)).await;
    let app = spawn_app(
        db,
        Options {
            webhook: Some(webhook_config(&receiver.url, 5)),
            ..Default::default()
        },
    )
    .await;
    drop_all(&app).await;
    let mut want = HashSet::new();
    for i in 0..6 {
        want.insert(id(&paid_silently(&app, &format!("2.{i:02}")).await));
    }
    app.clock.advance(Duration::from_secs(61));
    // The pass commits the first order, then hangs in its webhook delivery:
    // killed there, with the rest of its batch claimed but untouched.
    let state = app.state.clone();
    let pass = tokio::spawn(async move {
        run_pass(
            &state,
            &ReconcileOptions {
                batch: 4,
                min_age: Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
    });
    let first_event = rx.recv().await.unwrap();
    pass.abort();
    assert!(pass.await.unwrap_err().is_cancelled());
    let first = app.store.get_event(&first_event).await.unwrap().unwrap();
    assert_eq!(
        first.webhook_state,
        WebhookState::Pending,
        "never acknowledged"
    );
    let mut paid_now = 0;
    for o in &want {
        if app.order(o).await["status"] == "paid" {
            paid_now += 1;
        }
    }
    assert_eq!(paid_now, 1, "killed after the first commit");

    // Rerun at once: the killed pass's claims still hold, nothing is doubled.
    receiver.set_mode(ReceiverMode::Accept);
    let early = run_pass(&app.state, &opts()).await;
    assert_eq!(
        early.orders_checked, 2,
        "only the unclaimed orders: {early:?}"
    );
    // After the leases end, a rerun finishes the job.
    app.clock.advance(Duration::from_secs(300));
    let rerun = run_pass(&app.state, &opts()).await;
    assert!(rerun.errors.is_empty(), "{rerun:?}");
    for o in &want {
        assert_eq!(app.order(o).await["status"], "paid");
        let events = app.store.list_events(o).await.unwrap();
        assert_eq!(events.len(), 1, "one transition for {o}");
        assert_eq!(events[0].webhook_state, WebhookState::Delivered);
    }
    // Every event reached the merchant exactly once.
    let accepted = receiver.accepted();
    let unique: HashSet<_> = accepted.iter().cloned().collect();
    assert_eq!(unique.len(), accepted.len(), "{accepted:?}");
    assert_eq!(unique.len(), 6);
    assert!(unique.contains(&first_event));
}

async fn pending_refunds_are_settled(db: TestDatabase) {
    let app = spawn_app(db, Options::default()).await;
    let o = app.create_order("50.00").await;
    app.pay(&id(&o), json!({"channel": "qr"})).await;
    app.buyer_pays(o["out_trade_no"].as_str().unwrap()).await;
    assert_eq!(app.order(&id(&o)).await["status"], "paid");
    // Alipay refunds, then answers 20000: the outcome is unknown to us.
    app.sandbox()
        .set_faults(Faults {
            system_error_rate: 1.0,
            system_error_after_commit: true,
            ..Default::default()
        })
        .await;
    let r = app
        .api(
            "POST",
            &format!("/v1/orders/{}/refunds", id(&o)),
            Some(json!({"amount": "50.00"})),
        )
        .await;
    assert_eq!(r.body["status"], "pending", "{:?}", r.body);
    app.sandbox().set_faults(Faults::default()).await;
    app.clock.advance(Duration::from_secs(61));
    let report = run_pass(&app.state, &opts()).await;
    assert_eq!(report.refunds_checked, 1, "{report:?}");
    assert_eq!(
        report.refunds_succeeded,
        vec![r.body["id"].as_str().unwrap().to_owned()]
    );
    let refunds = app.store.list_refunds(&id(&o)).await.unwrap();
    assert_eq!(refunds[0].status, RefundStatus::Succeeded);
    let order = app.order(&id(&o)).await;
    assert_eq!(
        (order["status"].as_str(), order["refunded_amount"].as_str()),
        (Some("refunded"), Some("50.00"))
    );
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == o["out_trade_no"])
        .unwrap();
    assert_eq!(trade.refunds.len(), 1, "refunded once at Alipay");
}
