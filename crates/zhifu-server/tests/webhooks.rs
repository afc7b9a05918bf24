//! Merchant webhooks from the outbox: signed with the documented scheme,
//! tried right after the commit, retried with backoff by the reconcile pass,
//! delivered exactly once after a failing receiver recovers, given up after
//! the retry budget and re-armed by a resend. SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use zhifu_server::ReconcileOptions;
use zhifu_server::jobs::reconcile::run_pass;
use zhifu_server::webhook::{self, DEFAULT_TOLERANCE, VerifyError};
use zhifu_store::testing::TestDatabase;
use zhifu_store::{Store, WebhookState};

zhifu_store::backend_tests!(
    a_failing_receiver_gets_the_event_once_after_it_recovers,
    every_kind_of_change_is_delivered_once_in_order,
    the_budget_runs_out_and_a_resend_rearms,
    a_hanging_receiver_never_holds_the_answer,
);

fn opts() -> ReconcileOptions {
    ReconcileOptions {
        min_age: Duration::from_secs(3600),
        ..Default::default()
    }
}

async fn app_with(db: TestDatabase, receiver: &Receiver, max_attempts: i64) -> TestApp {
    let cfg = webhook_config(&receiver.url, max_attempts);
    spawn_app(
        db,
        Options {
            webhook: Some(cfg),
            ..Default::default()
        },
    )
    .await
}

async fn paid_order(app: &TestApp, amount: &str) -> Value {
    let o = app.create_order(amount).await;
    let r = app
        .pay(o["id"].as_str().unwrap(), json!({"channel": "qr"}))
        .await;
    assert_eq!(r.status, 200);
    app.buyer_pays(o["out_trade_no"].as_str().unwrap()).await;
    assert_eq!(app.order(o["id"].as_str().unwrap()).await["status"], "paid");
    o
}

fn now_s(app: &TestApp) -> i64 {
    app.state.now_ms() / 1000
}

async fn a_failing_receiver_gets_the_event_once_after_it_recovers(db: TestDatabase) {
    let receiver = Receiver::start(ReceiverMode::FailFirst(3)).await;
    let app = app_with(db, &receiver, 12).await;
    let o = paid_order(&app, "88.88").await;
    let oid = o["id"].as_str().unwrap();
    // Tried once right after the commit (inside the notification).
    assert_eq!(receiver.deliveries().len(), 1);
    let ev = app.store.list_events(oid).await.unwrap().remove(0);
    assert_eq!((ev.webhook_state, ev.attempts), (WebhookState::Pending, 1));

    // Not due yet: the pass leaves it alone.
    let r = run_pass(&app.state, &opts()).await;
    assert_eq!(r.webhooks_attempted, 0, "{r:?}");
    // 30 s, 60 s, 120 s of backoff: attempts 2 and 3 fail, 4 succeeds.
    for (wait, delivered) in [(30, false), (60, false), (120, true)] {
        app.clock.advance(Duration::from_secs(wait));
        let r = run_pass(&app.state, &opts()).await;
        assert_eq!(r.webhooks_attempted, 1, "after {wait}s: {r:?}");
        assert_eq!(r.webhooks_delivered.len(), usize::from(delivered));
    }
    // Much later: nothing more is sent.
    app.clock.advance(Duration::from_secs(86_400));
    assert_eq!(run_pass(&app.state, &opts()).await.webhooks_attempted, 0);

    let got = receiver.deliveries();
    assert_eq!(
        got.iter().map(|d| d.answered).collect::<Vec<_>>(),
        vec![500, 500, 500, 200]
    );
    assert!(
        got.iter().all(|d| d.event_id == ev.id),
        "one event id throughout"
    );
    assert_eq!(receiver.accepted(), vec![ev.id.clone()]);
    let ev = app.store.get_event(&ev.id).await.unwrap().unwrap();
    assert_eq!(
        (ev.webhook_state, ev.attempts),
        (WebhookState::Delivered, 4)
    );

    // The documented scheme verifies; a tampered body or header does not.
    let last = got.last().unwrap();
    let secret = WEBHOOK_SECRET.as_bytes();
    let at = now_s(&app);
    assert_eq!(
        webhook::verify(
            &last.body,
            &last.signature,
            secret,
            Duration::from_secs(86_400 + 600),
            at
        ),
        Ok(())
    );
    let t: i64 = last.signature[2..last.signature.find(',').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(
        webhook::verify(
            &last.body,
            &last.signature,
            secret,
            DEFAULT_TOLERANCE,
            t + 5
        ),
        Ok(())
    );
    let tampered = String::from_utf8(last.body.clone())
        .unwrap()
        .replace("88.88", "0.01");
    assert_ne!(tampered.as_bytes(), &last.body[..]);
    assert_eq!(
        webhook::verify(
            tampered.as_bytes(),
            &last.signature,
            secret,
            DEFAULT_TOLERANCE,
            t
        ),
        Err(VerifyError::SignatureMismatch)
    );
    let forged = last.signature.replace("v1=", "v1=00");
    assert!(webhook::verify(&last.body, &forged, secret, DEFAULT_TOLERANCE, t).is_err());
    assert_eq!(
        webhook::verify(
            &last.body,
            &last.signature,
            b"not-the-secret-000000",
            DEFAULT_TOLERANCE,
            t
        ),
        Err(VerifyError::SignatureMismatch)
    );
    assert_eq!(
        webhook::verify(
            &last.body,
            &last.signature,
            secret,
            DEFAULT_TOLERANCE,
            t + 301
        ),
        Err(VerifyError::TimestampOutOfTolerance)
    );
    // The body: the event and the order.
    let body: Value = serde_json::from_slice(&last.body).unwrap();
    assert_eq!(body["id"], ev.id);
    assert_eq!(body["type"], "order.paid");
    assert_eq!(body["data"]["previous_status"], "pending");
    assert_eq!(body["data"]["status"], "paid");
    assert_eq!(body["data"]["order"]["id"], oid);
    assert_eq!(body["data"]["order"]["total_amount"], "88.88");
}

async fn every_kind_of_change_is_delivered_once_in_order(db: TestDatabase) {
    let receiver = Receiver::start(ReceiverMode::Accept).await;
    let app = app_with(db, &receiver, 12).await;
    let o = paid_order(&app, "10.00").await;
    let oid = o["id"].as_str().unwrap();
    for amount in ["4.00", "6.00"] {
        let r = app
            .api(
                "POST",
                &format!("/v1/orders/{oid}/refunds"),
                Some(json!({"amount": amount})),
            )
            .await;
        assert_eq!(r.body["status"], "succeeded", "{:?}", r.body);
    }
    app.deliver_due().await;
    let c = app.create_order("1.00").await;
    let r = app
        .api(
            "POST",
            &format!("/v1/orders/{}/close", c["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Alipay's refund notifications arrived too: duplicates, no new events.
    let kinds: Vec<String> = receiver
        .deliveries()
        .iter()
        .map(|d| {
            serde_json::from_slice::<Value>(&d.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "order.paid",
            "order.partially_refunded",
            "order.refunded",
            "order.closed"
        ]
    );
    let r = run_pass(&app.state, &opts()).await;
    assert_eq!(r.webhooks_attempted, 0, "nothing left in the outbox: {r:?}");
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
        metrics.contains("zhifu_webhook_events{state=\"delivered\"} 4\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zhifu_webhook_events{state=\"pending\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("zhifu_webhook_attempts_total{result=\"delivered\"} 4\n"),
        "{metrics}"
    );
    // The API shows the events with their deliveries.
    let ev = app
        .api("GET", &format!("/v1/orders/{oid}/events"), None)
        .await;
    assert_eq!(ev.status, 200);
    let data = ev.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[2]["type"], "order.refunded");
    assert_eq!(data[2]["refunded_amount"], "10.00");
    assert_eq!(data[2]["webhook"]["state"], "delivered");
    assert_eq!(data[2]["webhook"]["deliveries"][0]["http_status"], 200);
    assert_eq!(
        app.api("GET", "/v1/orders/ord_nope/events", None)
            .await
            .status,
        404
    );
}

async fn the_budget_runs_out_and_a_resend_rearms(db: TestDatabase) {
    let receiver = Receiver::start(ReceiverMode::FailFirst(usize::MAX)).await;
    let app = app_with(db, &receiver, 2).await;
    let o = paid_order(&app, "5.00").await;
    let ev = app
        .store
        .list_events(o["id"].as_str().unwrap())
        .await
        .unwrap()
        .remove(0);
    app.clock.advance(Duration::from_secs(31));
    let r = run_pass(&app.state, &opts()).await;
    assert_eq!(r.webhooks_given_up, vec![ev.id.clone()], "{r:?}");
    let failed = app.store.get_event(&ev.id).await.unwrap().unwrap();
    assert_eq!(
        (failed.webhook_state, failed.attempts),
        (WebhookState::Failed, 2)
    );
    assert_eq!(failed.last_error.as_deref(), Some("HTTP 500"));
    app.clock.advance(Duration::from_secs(86_400));
    assert_eq!(run_pass(&app.state, &opts()).await.webhooks_attempted, 0);

    receiver.set_mode(ReceiverMode::Accept);
    let sent = app
        .state
        .outbox()
        .unwrap()
        .resend(&ev.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (sent.state, sent.http_status),
        (WebhookState::Delivered, Some(200))
    );
    assert_eq!(receiver.accepted(), vec![ev.id.clone()]);
    assert!(
        app.state
            .outbox()
            .unwrap()
            .resend("evt_unknown")
            .await
            .unwrap()
            .is_none()
    );
    let attempts = app.store.list_delivery_attempts(&ev.id).await.unwrap();
    assert_eq!(attempts.len(), 3);
}

/// A merchant endpoint that never answers does not hold Alipay's `success`:
/// after the answer (long-running servers), the attempt runs in the
/// background; inline (functions), it gets only its budget. Either way the
/// event stays in the outbox for the reconcile pass.
async fn a_hanging_receiver_never_holds_the_answer(db: TestDatabase) {
    let db = std::sync::Arc::new(db);
    for delivery in [
        zhifu_server::config::WebhookDelivery::AfterAnswer,
        zhifu_server::config::WebhookDelivery::Inline {
            budget: Duration::from_millis(300),
        },
    ] {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let receiver = Receiver::start(ReceiverMode::Hang(tx)).await;
        let mut cfg = webhook_config(&receiver.url, 12);
        cfg.delivery = Some(delivery);
        // The delivery timeout alone would hold an inline answer 5 s.
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        let app = spawn_on(
            db.clone(),
            Options {
                webhook: Some(cfg),
                ..Default::default()
            },
            None,
        )
        .await;
        let o = app.create_order("3.00").await;
        let id = o["id"].as_str().unwrap();
        app.pay(id, json!({"channel": "qr"})).await;
        let started = std::time::Instant::now();
        app.buyer_pays(o["out_trade_no"].as_str().unwrap()).await;
        let took = started.elapsed();
        assert_eq!(app.order(id).await["status"], "paid");
        assert!(
            took < Duration::from_millis(2_500),
            "{delivery:?}: the notification was answered after {took:?}"
        );
        // The attempt was made (in the background, or within the budget).
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the webhook was attempted")
            .unwrap();
        let ev = app.store.list_events(id).await.unwrap().remove(0);
        assert_eq!(event, ev.id);
        assert_eq!(ev.webhook_state, WebhookState::Pending, "{delivery:?}");
    }
}
