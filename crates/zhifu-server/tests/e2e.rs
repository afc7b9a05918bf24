//! End to end: the real server on 127.0.0.1:0 with the real sandbox mounted
//! on the same port (as `zhifu dev` runs them), a fresh database per test,
//! on SQLite and (with `ZHIFU_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use zhifu_sandbox::Faults;
use zhifu_store::Store;
use zhifu_store::testing::TestDatabase;

zhifu_store::backend_tests!(
    every_channel_gets_paid_through_the_notification,
    page_pay_return_page_shows_verified_status,
    refunds_partial_then_full,
    unknown_refund_outcome_never_refunds_twice,
    close_and_expiry,
    refresh_recovers_a_dropped_notification,
);

async fn every_channel_gets_paid_through_the_notification(db: TestDatabase) {
    let app = app(db).await;
    for channel in ["page", "wap", "qr", "app", "jsapi"] {
        let paid = pay_and_settle(&app, channel).await;
        let notes = app.store.list_notifications(s(&paid, "id")).await.unwrap();
        assert!(
            notes
                .iter()
                .any(|n| n.source == "notify" && n.outcome == "applied"),
            "{channel}: paid by a notification: {notes:?}"
        );
        let events = app.store.list_events(s(&paid, "id")).await.unwrap();
        assert_eq!(events.len(), 1, "{channel}");
    }
}

async fn page_pay_return_page_shows_verified_status(db: TestDatabase) {
    let app = app(db).await;
    let order = app.create_order("12.34").await;
    let id = s(&order, "id");
    let r = app.pay(id, json!({"channel": "page"})).await;
    // The buyer's browser: gateway → cashier → Pay → redirect to return_url.
    let mut resp = open_in_browser(&app, s(&r.body, "url")).await;
    let mut hops = 0;
    while let Some(loc) = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
    {
        let next = if loc.starts_with("http") {
            loc
        } else {
            app.url(&loc)
        };
        resp = app.http.get(next).send().await.unwrap();
        hops += 1;
        assert!(hops < 5);
    }
    let cashier_html = resp.text().await.unwrap();
    let action = cashier_html
        .split("action=\"")
        .find_map(|p| p.split('"').next().filter(|a| a.ends_with("/pay")))
        .expect("the cashier has a Pay form")
        .to_owned();
    let paid = app.http.post(app.url(&action)).send().await.unwrap();
    let back = paid
        .headers()
        .get("location")
        .expect("the cashier redirects to return_url")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(back.starts_with(&app.url("/alipay/return?")), "{back}");

    // A forged return (valid-looking but unsigned) learns nothing: not the
    // status, not the amount, not whether the order exists.
    for no in [s(&order, "out_trade_no"), "NO_SUCH_ORDER"] {
        let forged = app.url(&format!(
            "/alipay/return?out_trade_no={no}&total_amount=12.34&trade_no=1&sign=xx"
        ));
        let html = app
            .http
            .get(forged)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(html.contains("data-status=\"unknown\""), "{html}");
        assert!(!html.contains("12.34") && !html.contains(no), "{html}");
    }
    assert_eq!(app.order(id).await["status"], "pending");

    // The genuine return: the notification has not been delivered yet, so
    // the page asks Alipay through the verified query path.
    let html = app
        .http
        .get(&back)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-status=\"paid\""), "{html}");
    let order = app.order(id).await;
    assert_eq!(order["status"], "paid");
    let notes = app.store.list_notifications(id).await.unwrap();
    assert_eq!(notes.last().unwrap().source, "query");
    // The late notification is then a no-op.
    app.deliver_due().await;
    assert_eq!(app.store.list_events(id).await.unwrap().len(), 1);
}

async fn refunds_partial_then_full(db: TestDatabase) {
    let app = app(db).await;
    let paid = pay_and_settle(&app, "qr").await;
    let id = s(&paid, "id");
    let path = format!("/v1/orders/{id}/refunds");
    let r = app
        .api(
            "POST",
            &path,
            Some(json!({"amount": "10.00", "reason": "chipped"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(r.body["amount"], "10.00");
    app.deliver_due().await;
    let o = app.order(id).await;
    assert_eq!(
        (o["status"].as_str(), o["refunded_amount"].as_str()),
        (Some("paid"), Some("10.00"))
    );

    // More than what is left: refused, nothing sent.
    let r = app
        .api("POST", &path, Some(json!({"amount": "80.00"})))
        .await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "refund_exceeds_remaining")
    );

    let r = app
        .api("POST", &path, Some(json!({"amount": "78.88"})))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    app.deliver_due().await;
    let o = app.order(id).await;
    assert_eq!(o["status"], "refunded");
    assert_eq!(o["refunded_amount"], "88.88");
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == s(&paid, "out_trade_no"))
        .unwrap();
    assert_eq!(trade.refunds.len(), 2);
    assert_eq!(trade.refund_fee, "88.88");
    let types: Vec<&str> = app
        .store
        .list_events(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["order.paid", "order.partially_refunded", "order.refunded"]
    );
    let r = app
        .api("POST", &path, Some(json!({"amount": "0.01"})))
        .await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "order_not_refundable")
    );

    // The audit views the admin page shows: refunds, and every report with its outcome.
    let r = app.api("GET", &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let amounts: Vec<&str> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(f, "amount"))
        .collect();
    assert_eq!(amounts, ["10.00", "78.88"]);
    let r = app
        .api("GET", &format!("/v1/orders/{id}/notifications"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows = r.body["data"].as_array().unwrap();
    assert!(
        rows.iter().any(|n| n["source"] == "notify"
            && n["outcome"] == "applied"
            && n["trade_status"] == "TRADE_SUCCESS"),
        "{rows:?}"
    );
    assert!(rows.iter().all(|n| n.get("payload").is_none()));
    let r = app
        .api("GET", "/v1/orders/ord_nope/notifications", None)
        .await;
    assert_eq!(r.status, 404);
}

async fn close_and_expiry(db: TestDatabase) {
    let app = app(db).await;
    // A QR order Alipay has not created yet (nobody scanned): closed locally.
    let o = app.create_order("5.00").await;
    let id = s(&o, "id");
    assert_eq!(app.pay(id, json!({"channel": "qr"})).await.status, 200);
    let r = app
        .api("POST", &format!("/v1/orders/{id}/close"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "closed");
    // Closing again is a no-op; paying a closed order is a conflict.
    assert_eq!(
        app.api("POST", &format!("/v1/orders/{id}/close"), None)
            .await
            .status,
        200
    );
    let r = app.pay(id, json!({"channel": "qr"})).await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "order_not_payable")
    );

    // A JSAPI trade exists at Alipay: closed there, then here.
    let o = app.create_order("6.00").await;
    let id = s(&o, "id");
    let r = app
        .pay(id, json!({"channel": "jsapi", "buyer_open_id": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app
        .api("POST", &format!("/v1/orders/{id}/close"), Some(json!({})))
        .await;
    assert_eq!(r.body["status"], "closed", "{:?}", r.body);
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == s(&o, "out_trade_no"))
        .unwrap();
    assert_eq!(trade.trade_status, "TRADE_CLOSED");

    // Expiry: past its deadline an order cannot be paid, and a refresh closes it.
    let o = app
        .api(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Tea", "total_amount": "3.00", "expires_in_minutes": 1})),
        )
        .await
        .body;
    let id = s(&o, "id");
    assert_eq!(app.pay(id, json!({"channel": "qr"})).await.status, 200);
    app.clock.advance(Duration::from_secs(120));
    let r = app.pay(id, json!({"channel": "page"})).await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "order_expired")
    );
    let r = app
        .api("GET", &format!("/v1/orders/{id}?refresh=true"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "closed");
    let events = app.store.list_events(id).await.unwrap();
    assert_eq!(events[0].event_type.as_str(), "order.closed");
}

async fn refresh_recovers_a_dropped_notification(db: TestDatabase) {
    let app = app(db).await;
    app.sandbox()
        .set_faults(Faults {
            drop_rate: 1.0,
            ..Default::default()
        })
        .await;
    let o = app.create_order("20.00").await;
    let id = s(&o, "id");
    assert_eq!(
        app.pay(
            id,
            json!({"channel": "jsapi", "buyer_id": "2088000000000001"})
        )
        .await
        .status,
        200
    );
    app.buyer_pays(s(&o, "out_trade_no")).await;
    assert_eq!(
        app.order(id).await["status"],
        "pending",
        "the notification was dropped"
    );
    assert!(app.store.list_notifications(id).await.unwrap().is_empty());
    let r = app
        .api("GET", &format!("/v1/orders/{id}?refresh=true"), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "paid");
    let events = app.store.list_events(id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].source, "query");
    // Refreshing a paid order changes nothing.
    let r = app
        .api("GET", &format!("/v1/orders/{id}?refresh=true"), None)
        .await;
    assert_eq!(r.body["status"], "paid");
    let r = app
        .api("GET", &format!("/v1/orders/{id}?refresh=maybe"), None)
        .await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (400, "invalid_query")
    );
}

async fn unknown_refund_outcome_never_refunds_twice(db: TestDatabase) {
    let app = app(db).await;
    let paid = pay_and_settle(&app, "qr").await;
    let id = s(&paid, "id");
    let path = format!("/v1/orders/{id}/refunds");
    // Alipay refunds, then answers 20000: the outcome is unknown to us.
    app.sandbox()
        .set_faults(Faults {
            system_error_rate: 1.0,
            system_error_after_commit: true,
            ..Default::default()
        })
        .await;
    let k = [("Idempotency-Key", "refund-unknown")];
    let out_trade_no = s(&paid, "out_trade_no");
    let r = app
        .api_with("POST", &path, Some(json!({"amount": "8.00"})), &k)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(app.order(id).await["refunded_amount"], "0.00");
    assert_eq!(app.refund_calls(out_trade_no), 1);
    // A retry with the same key reads the refund; it sends nothing: the
    // first call may still be in flight as far as we know.
    app.sandbox().set_faults(Faults::default()).await;
    let r2 = app
        .api_with("POST", &path, Some(json!({"amount": "8.00"})), &k)
        .await;
    assert_eq!(r2.status, 201);
    assert_eq!(r2.body["id"], r.body["id"]);
    assert_eq!(r2.body["status"], "pending", "{:?}", r2.body);
    assert_eq!(app.refund_calls(out_trade_no), 1);
    // The reconcile pass, once the lease is over, re-sends it (same
    // out_request_no: no money moves twice) and confirms it.
    app.reconcile_to_rest().await;
    let settled = app
        .store
        .get_refund(s(&r.body, "id"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.status, zhifu_store::RefundStatus::Succeeded);
    assert_eq!(
        app.refund_calls(out_trade_no),
        2,
        "one retry after the unknown outcome"
    );
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == out_trade_no)
        .unwrap();
    assert_eq!(trade.refunds.len(), 1, "one refund at Alipay, not two");
    assert_eq!(app.order(id).await["refunded_amount"], "8.00");

    // Keyless: an unknown outcome is settled by the reconcile pass.
    app.sandbox()
        .set_faults(Faults {
            system_error_rate: 1.0,
            system_error_after_commit: true,
            ..Default::default()
        })
        .await;
    let r3 = app
        .api("POST", &path, Some(json!({"amount": "1.00"})))
        .await;
    assert_eq!(r3.body["status"], "pending");
    app.sandbox().set_faults(Faults::default()).await;
    // A new refund is not held up by the unknown one (its amount stays
    // reserved), and does not re-send it.
    let r4 = app
        .api("POST", &path, Some(json!({"amount": "2.00"})))
        .await;
    assert_eq!(r4.body["status"], "succeeded");
    // Alipay's cumulative figure already counts the refund we are unsure of.
    assert_eq!(app.order(id).await["refunded_amount"], "11.00");
    app.reconcile_to_rest().await;
    let o = app.order(id).await;
    assert_eq!(o["refunded_amount"], "11.00");
    let refunds = app.store.list_refunds(id).await.unwrap();
    assert!(
        refunds
            .iter()
            .all(|r| r.status == zhifu_store::RefundStatus::Succeeded)
    );
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == s(&paid, "out_trade_no"))
        .unwrap();
    assert_eq!(trade.refunds.len(), 3);
    assert_eq!(trade.refund_fee, "11.00");
}
