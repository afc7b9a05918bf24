//! The money path under adversity, end to end against the sandbox, on
//! SQLite and (with `ZHIFU_TEST_DATABASE_URL`) PostgreSQL:
//!
//! - close, then the buyer pays with the parameters they already hold, on
//!   every channel that hands out parameters (qr, page, wap, app): the
//!   money is never stranded — a QR code is voided, the others are
//!   `closing` until their parameters die, and a payment that arrives
//!   anyway is taken and refunded (or kept, by policy), visibly;
//! - refunds are sent once: 20 parallel refunds with distinct keys make
//!   exactly one `alipay.trade.refund` call each, counted in the sandbox's
//!   request log, and calls of one trade are spaced.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use zhifu_sandbox::TradeView;
use zhifu_server::config::{LatePaymentPolicy, MoneyPolicy};
use zhifu_store::testing::TestDatabase;
use zhifu_store::{RefundOrigin, RefundStatus, Store};

zhifu_store::backend_tests!(
    close_then_pay_never_strands_money_on_any_channel,
    close_then_pay_can_keep_the_money_by_policy,
    a_closing_order_becomes_closed_once_its_parameters_die,
    parallel_refunds_are_each_sent_once,
    refund_calls_of_one_trade_are_spaced,
    a_refused_refund_is_failed_only_when_alipay_confirms,
    the_built_in_ticker_sends_a_waiting_refund,
);

/// Follows the gateway's redirects like a browser and returns the final
/// page's URL and HTML.
async fn browse(app: &TestApp, url: &str) -> (String, String) {
    let mut url = url.to_owned();
    for _ in 0..5 {
        let resp = app.http.get(&url).send().await.unwrap();
        match resp.headers().get("location") {
            Some(loc) => {
                let loc = loc.to_str().unwrap();
                url = if loc.starts_with("http") {
                    loc.to_owned()
                } else {
                    app.url(loc)
                };
            }
            None => {
                let status = resp.status();
                let html = resp.text().await.unwrap();
                assert!(status.is_success(), "{url} answered {status}: {html}");
                return (url, html);
            }
        }
    }
    panic!("too many redirects from {url}");
}

/// The buyer, holding what `/pay` handed out, opens it (a browser on the
/// signed URL, the app on the order string, the camera on the QR code) and
/// presses Pay. Returns whether the cashier let them.
async fn buyer_uses(app: &TestApp, channel: &str, params: &Value) -> bool {
    let entry = match channel {
        "page" | "wap" => s(params, "url").to_owned(),
        "app" => format!("{}/gateway.do?{}", app.base, s(params, "order_string")),
        "qr" => s(params, "qr_code").to_owned(),
        _ => unreachable!(),
    };
    let resp = app.http.get(&entry).send().await.unwrap();
    let mut url = entry.clone();
    if let Some(loc) = resp.headers().get("location") {
        let loc = loc.to_str().unwrap();
        url = if loc.starts_with("http") {
            loc.to_owned()
        } else {
            app.url(loc)
        };
    } else if !resp.status().is_success() {
        return false;
    }
    let html = if url == entry {
        resp.text().await.unwrap()
    } else {
        let resp = app.http.get(&url).send().await.unwrap();
        if !resp.status().is_success() {
            return false;
        }
        resp.text().await.unwrap()
    };
    let Some(action) = html
        .split("action=\"")
        .find_map(|p| p.split('"').next().filter(|a| a.ends_with("/pay")))
    else {
        return false;
    };
    let r = app.http.post(app.url(action)).send().await.unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "the cashier's Pay answered {}",
        r.status()
    );
    app.deliver_due().await;
    true
}

async fn trade(app: &TestApp, out_trade_no: &str) -> Option<TradeView> {
    app.sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == out_trade_no)
}

async fn close(app: &TestApp, id: &str) -> Value {
    let r = app
        .api("POST", &format!("/v1/orders/{id}/close"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

async fn close_then_pay_never_strands_money_on_any_channel(db: TestDatabase) {
    let app = app(db).await;
    for channel in ["qr", "page", "wap", "app"] {
        let order = app.create_order("18.80").await;
        let (id, no) = (s(&order, "id"), s(&order, "out_trade_no"));
        let params = app.pay(id, json!({"channel": channel})).await.body;
        // The merchant closes before the buyer did anything: Alipay has no
        // trade yet. A QR code is voided (cancel) and final; signed URLs and
        // order strings stay usable until time_expire, so the order is
        // `closing`, not `closed`: nothing that can still be paid is
        // reported closed.
        let closed = close(&app, id).await;
        let events = app.store.list_events(id).await.unwrap();
        if channel == "qr" {
            assert_eq!(closed["status"], "closed", "{channel}");
            assert_eq!(events.len(), 1, "{channel}: order.closed");
        } else {
            assert_eq!(closed["status"], "closing", "{channel}");
            assert!(events.is_empty(), "{channel}: no order.closed yet");
        }
        // The buyer pays with what they already hold.
        let paid_at_alipay = buyer_uses(&app, channel, &params).await;
        let t = trade(&app, no).await;
        if channel == "qr" {
            assert!(!paid_at_alipay, "a voided QR code cannot be paid");
            assert!(
                t.as_ref().is_none_or(|t| t.trade_status != "TRADE_SUCCESS"),
                "{t:?}"
            );
            assert_eq!(app.order(id).await["status"], "closed");
            continue;
        }
        assert!(paid_at_alipay, "{channel}: the cashier took the payment");
        // Verified, confirmed by a query, taken, refunded in full.
        let o = app.order(id).await;
        assert_eq!(o["status"], "refunded", "{channel}: {o}");
        assert_eq!(o["paid_after_close"], true);
        assert_eq!(o["refunded_amount"], "18.80");
        let t = trade(&app, no).await.unwrap();
        assert_eq!(t.trade_status, "TRADE_CLOSED", "{channel}: {t:?}");
        assert_eq!(t.refund_fee, "18.80", "no money left at Alipay");
        let refunds = app.store.list_refunds(id).await.unwrap();
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0].origin, RefundOrigin::PaidAfterClose);
        assert_eq!(refunds[0].status, RefundStatus::Succeeded);
        assert_eq!(app.refund_calls(no), 1);
        let kinds: Vec<&str> = app
            .store
            .list_events(id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(kinds, ["order.paid_after_close", "order.refunded"]);
        // The notification was answered `success` (nothing left to retry).
        let notes = app.store.list_notifications(id).await.unwrap();
        assert!(notes.iter().all(|n| n.outcome != "anomaly"), "{notes:?}");
    }

    // A QR code the buyer already scanned is a trade: closed at Alipay,
    // final, and the buyer's cashier can no longer pay it.
    let order = app.create_order("9.90").await;
    let (id, no) = (s(&order, "id"), s(&order, "out_trade_no"));
    let params = app.pay(id, json!({"channel": "qr"})).await.body;
    browse(&app, s(&params, "qr_code")).await;
    assert_eq!(
        trade(&app, no).await.unwrap().trade_status,
        "WAIT_BUYER_PAY"
    );
    assert_eq!(close(&app, id).await["status"], "closed");
    assert_eq!(trade(&app, no).await.unwrap().trade_status, "TRADE_CLOSED");
    assert!(!buyer_uses(&app, "qr", &params).await);
}

async fn close_then_pay_can_keep_the_money_by_policy(db: TestDatabase) {
    let mut opts = Options::default();
    opts.money.late_payment = LatePaymentPolicy::Keep;
    let app = spawn_app(db, opts).await;
    let order = app.create_order("7.00").await;
    let (id, no) = (s(&order, "id"), s(&order, "out_trade_no"));
    let params = app.pay(id, json!({"channel": "wap"})).await.body;
    assert_eq!(close(&app, id).await["status"], "closing");
    assert!(buyer_uses(&app, "wap", &params).await);
    let o = app.order(id).await;
    assert_eq!(
        (o["status"].as_str(), o["paid_after_close"].as_bool()),
        (Some("paid"), Some(true))
    );
    assert!(app.store.list_refunds(id).await.unwrap().is_empty());
    assert_eq!(trade(&app, no).await.unwrap().trade_status, "TRADE_SUCCESS");
    assert_eq!(app.refund_calls(no), 0);
    // A paid order is not closable; the merchant refunds when they decide.
    let r = app
        .api("POST", &format!("/v1/orders/{id}/close"), None)
        .await;
    assert_eq!(r.status, 409, "{:?}", r.body);
}

async fn a_closing_order_becomes_closed_once_its_parameters_die(db: TestDatabase) {
    let app = app(db).await;
    let order = app
        .api(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Tea", "total_amount": "3.00", "expires_in_minutes": 5})),
        )
        .await
        .body;
    let id = s(&order, "id");
    app.pay(id, json!({"channel": "page"})).await;
    assert_eq!(close(&app, id).await["status"], "closing");
    // A refresh before the deadline keeps it closing; paying again is refused.
    let r = app
        .api("GET", &format!("/v1/orders/{id}?refresh=true"), None)
        .await;
    assert_eq!(r.body["status"], "closing");
    let r = app.pay(id, json!({"channel": "page"})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    // Past time_expire plus the clock margin, reconcile makes it final.
    app.clock.advance(Duration::from_secs(5 * 60));
    let opts = zhifu_server::ReconcileOptions {
        min_age: Duration::ZERO,
        ..Default::default()
    };
    let report = zhifu_server::jobs::reconcile::run_pass(&app.state, &opts).await;
    assert_eq!(
        report.orders_checked, 1,
        "closing orders are watched: {report:?}"
    );
    assert_eq!(
        app.order(id).await["status"],
        "closing",
        "within the margin"
    );
    app.clock
        .advance(MoneyPolicy::default().close_margin + Duration::from_secs(1));
    app.reconcile_to_rest().await;
    assert_eq!(app.order(id).await["status"], "closed");
    let events = app.store.list_events(id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type.as_str(), "order.closed");
    assert_eq!(events[0].from_status.as_str(), "closing");
}

async fn paid_order(app: &TestApp, amount: &str) -> (String, String) {
    let order = app.create_order(amount).await;
    let id = s(&order, "id").to_owned();
    let no = s(&order, "out_trade_no").to_owned();
    app.pay(
        &id,
        json!({"channel": "jsapi", "buyer_id": "2088000000000077"}),
    )
    .await;
    app.buyer_pays(&no).await;
    assert_eq!(app.order(&id).await["status"], "paid");
    (id, no)
}

async fn parallel_refunds_are_each_sent_once(db: TestDatabase) {
    let app = app(db).await;
    let (id, no) = paid_order(&app, "20.00").await;
    let path = format!("/v1/orders/{id}/refunds");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (http, url) = (app.http.clone(), app.url(&path));
        tasks.spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(API_KEY)
                .header("Idempotency-Key", format!("refund-{i}"))
                .json(&json!({"amount": "1.00"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        });
    }
    let answers = tasks.join_all().await;
    assert!(
        answers.iter().all(|(status, _)| *status == 201),
        "{answers:?}"
    );
    assert_eq!(
        app.refund_calls(&no),
        20,
        "one alipay.trade.refund per refund"
    );
    // Each out_request_no was sent exactly once.
    let mut sent: Vec<String> = app
        .gateway_calls(Some("alipay.trade.refund"), Some(&no))
        .into_iter()
        .filter_map(|r| r.out_request_no)
        .collect();
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 20);
    // Retrying every key sends nothing more.
    for i in 0..20 {
        let key = format!("refund-{i}");
        let r = app
            .api_with(
                "POST",
                &path,
                Some(json!({"amount": "1.00"})),
                &[("Idempotency-Key", &key)],
            )
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(r.body["status"], "succeeded");
    }
    assert_eq!(app.refund_calls(&no), 20);
    let o = app.order(&id).await;
    assert_eq!(o["status"], "refunded");
    assert_eq!(trade(&app, &no).await.unwrap().refund_fee, "20.00");
}

async fn refund_calls_of_one_trade_are_spaced(db: TestDatabase) {
    let mut opts = Options::default();
    opts.money.refund_spacing = Duration::from_millis(1_000);
    let app = spawn_app(db, opts).await;
    let (id, no) = paid_order(&app, "10.00").await;
    let path = format!("/v1/orders/{id}/refunds");
    let first = app
        .api("POST", &path, Some(json!({"amount": "1.00"})))
        .await;
    assert_eq!(first.body["status"], "succeeded");
    // Right after: the request waits for the trade's slot (once, at most
    // the spacing) and then sends.
    let second = app
        .api("POST", &path, Some(json!({"amount": "2.00"})))
        .await;
    assert_eq!(second.body["status"], "succeeded", "{:?}", second.body);
    // Two at once: one gets the next slot, the other would have to wait a
    // second slot and is answered `pending` instead, for a later pass.
    let (a, b) = tokio::join!(
        app.api("POST", &path, Some(json!({"amount": "0.50"}))),
        app.api("POST", &path, Some(json!({"amount": "0.60"})))
    );
    let statuses = [s(&a.body, "status"), s(&b.body, "status")];
    assert!(
        statuses.contains(&"succeeded") && statuses.contains(&"pending"),
        "{statuses:?}"
    );
    let waiting = if statuses[0] == "pending" { &a } else { &b };
    assert_eq!(app.refund_calls(&no), 3);
    // A pass before the slot frees sends nothing; one after it does.
    let opts = zhifu_server::ReconcileOptions {
        min_age: Duration::ZERO,
        ..Default::default()
    };
    zhifu_server::jobs::reconcile::run_pass(&app.state, &opts).await;
    assert_eq!(app.refund_calls(&no), 3);
    app.clock.advance(Duration::from_millis(1_000));
    zhifu_server::jobs::reconcile::run_pass(&app.state, &opts).await;
    assert_eq!(app.refund_calls(&no), 4);
    let r = app
        .store
        .get_refund(s(&waiting.body, "id"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, RefundStatus::Succeeded);
    assert_eq!(r.gateway_calls, 1);
    assert_eq!(app.order(&id).await["refunded_amount"], "4.10");
    // Every call started the spacing after the one before (our clock moved
    // 1 s by hand before the last one; the sandbox's wall clock is read a
    // few milliseconds apart from ours).
    let calls = app.gateway_calls(Some("alipay.trade.refund"), Some(&no));
    for pair in calls[..3].windows(2) {
        assert!(pair[1].wall_ms - pair[0].wall_ms >= 950, "{calls:?}");
    }
}

async fn a_refused_refund_is_failed_only_when_alipay_confirms(db: TestDatabase) {
    let app = app(db).await;
    let (id, no) = paid_order(&app, "5.00").await;
    // The trade's refund window is over at Alipay: the refund is refused,
    // the refund query finds nothing under its out_request_no → failed,
    // and the amount is free again.
    app.sandbox()
        .advance(Duration::from_secs(91 * 24 * 3600))
        .await
        .unwrap();
    assert_eq!(
        trade(&app, &no).await.unwrap().trade_status,
        "TRADE_FINISHED"
    );
    let r = app
        .api(
            "POST",
            &format!("/v1/orders/{id}/refunds"),
            Some(json!({"amount": "5.00"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "failed", "{:?}", r.body);
    assert!(
        !app.gateway_calls(Some("alipay.trade.fastpay.refund.query"), Some(&no))
            .is_empty()
    );
    let o = app.order(&id).await;
    assert_eq!(o["refund_pending_amount"], "0.00");
    assert_eq!(o["refunded_amount"], "0.00");
}

async fn the_built_in_ticker_sends_a_waiting_refund(db: TestDatabase) {
    let mut opts = Options::default();
    opts.money.refund_spacing = Duration::from_millis(300);
    let app = spawn_app(db, opts).await;
    let (id, no) = paid_order(&app, "4.00").await;
    let path = format!("/v1/orders/{id}/refunds");
    app.api("POST", &path, Some(json!({"amount": "1.00"})))
        .await;
    // Two at once right after: one waits for the next slot, the other is
    // left pending.
    let (a, b) = tokio::join!(
        app.api("POST", &path, Some(json!({"amount": "1.00"}))),
        app.api("POST", &path, Some(json!({"amount": "1.00"})))
    );
    let second = if a.body["status"] == "pending" { a } else { b };
    assert_eq!(second.body["status"], "pending", "{:?}", second.body);
    // What `zhifu serve` runs in the background (ZHIFU_RECONCILE_EVERY_SECS).
    let ticker = zhifu_server::jobs::reconcile::spawn_ticker(
        app.state.clone(),
        zhifu_server::ReconcileOptions {
            min_age: Duration::ZERO,
            ..Default::default()
        },
        Duration::from_millis(100),
    );
    let rid = s(&second.body, "id").to_owned();
    let mut settled = None;
    for _ in 0..50 {
        let r = app.store.get_refund(&rid).await.unwrap().unwrap();
        if r.status != RefundStatus::Pending {
            settled = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ticker.abort();
    let r = settled.expect("the ticker sent the waiting refund within 5 s");
    assert_eq!(r.status, RefundStatus::Succeeded);
    assert_eq!(app.refund_calls(&no), 3);
    let calls = app.gateway_calls(Some("alipay.trade.refund"), Some(&no));
    for pair in calls.windows(2) {
        assert!(
            pair[1].wall_ms - pair[0].wall_ms >= 280,
            "spaced by at least 300 ms: {calls:?}"
        );
    }
}
