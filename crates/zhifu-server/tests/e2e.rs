//! End to end: the real server on 127.0.0.1:0 with the real sandbox mounted
//! on the same port (as `zhifu dev` runs them), a fresh database per test,
//! on SQLite and (with `ZHIFU_TEST_DATABASE_URL`) PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
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
    idempotency_keys,
    auth_failures_change_nothing,
    malformed_bodies_change_nothing,
    state_conflicts,
    listing_health_openapi,
);

async fn app(db: TestDatabase) -> TestApp {
    spawn_app(db, Options::default()).await
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// The buyer's browser opens a page/wap/app URL at the gateway.
async fn open_in_browser(app: &TestApp, url: &str) -> reqwest::Response {
    let r = app.http.get(url).send().await.unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "gateway answered {}",
        r.status()
    );
    r
}

async fn pay_and_settle(app: &TestApp, channel: &str) -> Value {
    let order = app.create_order("88.88").await;
    let id = s(&order, "id");
    let mut req = json!({"channel": channel});
    if channel == "jsapi" {
        req["buyer_id"] = json!("2088000000000077");
    }
    let r = app.pay(id, req).await;
    assert_eq!(r.status, 200, "{channel}: {:?}", r.body);
    assert_eq!(r.body["channel"], channel);
    match channel {
        "page" | "wap" => {
            let url = s(&r.body, "url");
            assert!(
                url.starts_with(&format!("{}/gateway.do?", app.base)),
                "{url}"
            );
            assert!(s(&r.body, "form_html").contains("<form"));
            open_in_browser(app, url).await;
        }
        "app" => {
            let os = s(&r.body, "order_string");
            assert!(os.contains("method=alipay.trade.app.pay") && os.contains("sign="));
            open_in_browser(app, &format!("{}/gateway.do?{os}", app.base)).await;
        }
        "qr" => assert!(!s(&r.body, "qr_code").is_empty()),
        "jsapi" => {
            let trade_no = s(&r.body, "trade_no");
            assert_eq!(app.order(id).await["trade_no"], trade_no);
        }
        _ => unreachable!(),
    }
    assert_eq!(app.order(id).await["status"], "pending", "{channel}");
    app.buyer_pays(s(&order, "out_trade_no")).await;
    let paid = app.order(id).await;
    assert_eq!(paid["status"], "paid", "{channel}: {paid}");
    assert_eq!(paid["channel"], channel);
    assert!(paid["trade_no"].is_string());
    paid
}

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

    // A forged return (valid-looking but unsigned) shows the truth: unpaid.
    let forged = app.url(&format!(
        "/alipay/return?out_trade_no={}&total_amount=12.34&trade_no=1&sign=xx",
        s(&order, "out_trade_no")
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
    assert!(html.contains("data-status=\"pending\""), "{html}");
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

async fn idempotency_keys(db: TestDatabase) {
    let app = app(db).await;
    let body = json!({"subject": "Mug", "total_amount": "9.90", "metadata": {"a": 1, "b": [1, 2]}});
    let same_reordered =
        json!({"metadata": {"b": [1, 2], "a": 1}, "total_amount": "9.90", "subject": "Mug"});
    let k = [("Idempotency-Key", "order-key-1")];
    let first = app
        .api_with("POST", "/v1/orders", Some(body.clone()), &k)
        .await;
    assert_eq!(first.status, 201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again = app
        .api_with("POST", "/v1/orders", Some(same_reordered), &k)
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = app
        .api_with(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Mug", "total_amount": "9.91"})),
            &k,
        )
        .await;
    assert_eq!(
        (other.status, s(&other.body["error"], "code")),
        (409, "idempotency_key_reused")
    );
    let list = app.api("GET", "/v1/orders", None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        list.body["data"][0]["metadata"],
        json!({"a": 1, "b": [1, 2]})
    );

    // Refunds: the same key never refunds twice, at Alipay included.
    let paid = pay_and_settle(&app, "qr").await;
    let path = format!("/v1/orders/{}/refunds", s(&paid, "id"));
    let rk = [("Idempotency-Key", "refund-key-1")];
    let r1 = app
        .api_with("POST", &path, Some(json!({"amount": "1.00"})), &rk)
        .await;
    let r2 = app
        .api_with("POST", &path, Some(json!({"amount": "1.00"})), &rk)
        .await;
    assert_eq!((r1.status, r2.status), (201, 201));
    assert_eq!(r1.body["id"], r2.body["id"]);
    assert_eq!(r2.headers.get("idempotent-replayed").unwrap(), "true");
    let r3 = app
        .api_with("POST", &path, Some(json!({"amount": "2.00"})), &rk)
        .await;
    assert_eq!(
        (r3.status, s(&r3.body["error"], "code")),
        (409, "idempotency_key_reused")
    );
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == s(&paid, "out_trade_no"))
        .unwrap();
    assert_eq!(trade.refunds.len(), 1);
    assert_eq!(app.order(s(&paid, "id")).await["refunded_amount"], "1.00");
    let bad = app
        .api_with("POST", "/v1/orders", Some(body), &[("Idempotency-Key", "")])
        .await;
    assert_eq!(
        (bad.status, s(&bad.body["error"], "code")),
        (400, "invalid_idempotency_key")
    );
}

async fn auth_failures_change_nothing(db: TestDatabase) {
    let app = app(db).await;
    let body = json!({"subject": "Mug", "total_amount": "1.00"});
    for auth in [
        None,
        Some("Bearer wrong-key-0123456789"),
        Some("Basic dGVzdA=="),
        Some("Bearer "),
    ] {
        let mut req = app.http.post(app.url("/v1/orders")).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    for path in ["/v1/orders", "/v1/orders/ord_x"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let n = app.store.count_orders_by_status().await.unwrap();
    assert!(n.iter().all(|(_, c)| *c == 0));
    // Public endpoints need no key.
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn malformed_bodies_change_nothing(db: TestDatabase) {
    let app = app(db).await;
    let cases: Vec<(&str, &str, u16, &str)> = vec![
        ("not json", "application/json", 400, "invalid_json"),
        ("[1,2]", "application/json", 400, "invalid_json"),
        (
            r#"{"subject":"Mug","total_amount":"1.00"}"#,
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            r#"{"total_amount":"1.00"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"Mug"}"#,
            "application/json",
            400,
            "invalid_amount",
        ),
        (
            r#"{"subject":"Mug","total_amount":88.88}"#,
            "application/json",
            400,
            "invalid_amount",
        ),
        (
            r#"{"subject":"Mug","total_amount":"88.888"}"#,
            "application/json",
            400,
            "invalid_amount",
        ),
        (
            r#"{"subject":"Mug","total_amount":"0.00"}"#,
            "application/json",
            400,
            "invalid_amount",
        ),
        (
            r#"{"subject":"Mug","total_amount":"-1"}"#,
            "application/json",
            400,
            "invalid_amount",
        ),
        (
            r#"{"subject":"Mug","total_amount":"100000000.01"}"#,
            "application/json",
            400,
            "invalid_amount",
        ),
        (
            r#"{"subject":"a/b","total_amount":"1.00"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"","total_amount":"1.00"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":1,"total_amount":"1.00"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"Mug","total_amount":"1.00","colour":"red"}"#,
            "application/json",
            400,
            "unknown_field",
        ),
        (
            r#"{"subject":"Mug","total_amount":"1.00","out_trade_no":"has space"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"Mug","total_amount":"1.00","expires_in_minutes":0}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"Mug","total_amount":"1.00","expires_in_minutes":"5"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"Mug","total_amount":"1.00","metadata":[1]}"#,
            "application/json",
            400,
            "invalid_field",
        ),
    ];
    for (body, ct, status, code) in &cases {
        let r = app
            .http
            .post(app.url("/v1/orders"))
            .bearer_auth(API_KEY)
            .header("content-type", *ct)
            .body((*body).to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), *status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], *code, "{body}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 5);
    }
    let big = format!(
        r#"{{"subject":"Mug","total_amount":"1.00","body":"{}"}}"#,
        "x".repeat(70_000)
    );
    let r = app
        .http
        .post(app.url("/v1/orders"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    let order = app.create_order("1.00").await;
    let id = s(&order, "id");
    for (path, body, code) in [
        (
            format!("/v1/orders/{id}/pay"),
            json!({"channel": "bitcoin"}),
            "invalid_field",
        ),
        (format!("/v1/orders/{id}/pay"), json!({}), "invalid_field"),
        (
            format!("/v1/orders/{id}/pay"),
            json!({"channel": "jsapi"}),
            "invalid_field",
        ),
        (
            format!("/v1/orders/{id}/pay"),
            json!({"channel": "qr", "buyer_id": "2088"}),
            "invalid_field",
        ),
        (
            format!("/v1/orders/{id}/pay"),
            json!({"channel": "page", "return_url": "javascript:alert(1)"}),
            "invalid_field",
        ),
        (
            format!("/v1/orders/{id}/refunds"),
            json!({"amount": 1}),
            "invalid_amount",
        ),
        (
            format!("/v1/orders/{id}/refunds"),
            json!({"amount": "1.00", "x": 1}),
            "unknown_field",
        ),
        (
            format!("/v1/orders/{id}/close"),
            json!({"now": true}),
            "unknown_field",
        ),
    ] {
        let r = app.api("POST", &path, Some(body.clone())).await;
        assert_eq!(r.status, 400, "{path} {body}");
        assert_eq!(r.body["error"]["code"], code, "{path} {body}");
    }
    let r = app.api("GET", "/v1/orders?status=lost", None).await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (400, "invalid_query")
    );
    let r = app.api("GET", "/v1/orders?limit=1000", None).await;
    assert_eq!(r.status, 400);
    let r = app.api("GET", "/v1/orders?cursor=zzz", None).await;
    assert_eq!(r.status, 400);
    let r = app.api("DELETE", "/v1/orders", None).await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (405, "method_not_allowed")
    );
    let r = app.api("GET", "/v1/nothing", None).await;
    assert_eq!((r.status, s(&r.body["error"], "code")), (404, "not_found"));
    let r = app.api("GET", "/v1/orders/ord_missing", None).await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (404, "order_not_found")
    );

    // Only the one valid order exists, untouched.
    let list = app.api("GET", "/v1/orders", None).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let o = app.order(id).await;
    assert_eq!(o["status"], "pending");
    assert!(o["channel"].is_null());
    assert!(app.sandbox().trades().await.is_empty());
}

async fn state_conflicts(db: TestDatabase) {
    let app = app(db).await;
    let o = app.create_order("2.00").await;
    let id = s(&o, "id");
    let r = app
        .api(
            "POST",
            &format!("/v1/orders/{id}/refunds"),
            Some(json!({"amount": "1.00"})),
        )
        .await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "order_not_refundable")
    );
    let dup = app
        .api(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "x", "total_amount": "1.00", "out_trade_no": s(&o, "out_trade_no")})),
        )
        .await;
    assert_eq!(
        (dup.status, s(&dup.body["error"], "code")),
        (409, "out_trade_no_taken")
    );
    let paid = pay_and_settle(&app, "jsapi").await;
    let pid = s(&paid, "id");
    let r = app.pay(pid, json!({"channel": "page"})).await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "order_not_payable")
    );
    let r = app
        .api("POST", &format!("/v1/orders/{pid}/close"), None)
        .await;
    assert_eq!(
        (r.status, s(&r.body["error"], "code")),
        (409, "order_not_closable")
    );
    assert_eq!(app.order(pid).await["status"], "paid");
}

async fn listing_health_openapi(db: TestDatabase) {
    let app = app(db).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let o = app.create_order(&format!("{i}.50")).await;
        ids.push(s(&o, "id").to_owned());
    }
    let paid = pay_and_settle(&app, "qr").await;
    ids.push(s(&paid, "id").to_owned());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/orders?limit=2&cursor={c}"),
            None => "/v1/orders?limit=2".to_owned(),
        };
        let r = app.api("GET", &path, None).await;
        assert_eq!(r.status, 200);
        for o in r.body["data"].as_array().unwrap() {
            seen.push(s(o, "id").to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");
    let r = app.api("GET", "/v1/orders?status=paid", None).await;
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], paid["id"]);

    let h = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), 200);
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for p in [
        "/v1/orders",
        "/v1/orders/{id}",
        "/v1/orders/{id}/pay",
        "/v1/orders/{id}/refunds",
        "/v1/orders/{id}/close",
        "/alipay/notify",
    ] {
        assert!(spec["paths"][p].is_object(), "{p}");
    }
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
        metrics.contains("zhifu_orders{status=\"pending\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "zhifu_alipay_calls_total{method=\"alipay.trade.precreate\",outcome=\"success\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("zhifu_notifications_total{outcome=\"applied\""),
        "{metrics}"
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
    let r = app
        .api_with("POST", &path, Some(json!({"amount": "8.00"})), &k)
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(app.order(id).await["refunded_amount"], "0.00");
    // A refund without a key while the first is unknown: nothing new is
    // promised before the first is settled.
    app.sandbox().set_faults(Faults::default()).await;
    let r2 = app
        .api_with("POST", &path, Some(json!({"amount": "8.00"})), &k)
        .await;
    assert_eq!(r2.status, 201);
    assert_eq!(r2.body["id"], r.body["id"]);
    assert_eq!(r2.body["status"], "succeeded", "{:?}", r2.body);
    let trade = app
        .sandbox()
        .trades()
        .await
        .into_iter()
        .find(|t| t.out_trade_no == s(&paid, "out_trade_no"))
        .unwrap();
    assert_eq!(trade.refunds.len(), 1, "one refund at Alipay, not two");
    assert_eq!(app.order(id).await["refunded_amount"], "8.00");

    // Keyless: an unknown outcome is settled before the next refund.
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
    let r4 = app
        .api("POST", &path, Some(json!({"amount": "2.00"})))
        .await;
    assert_eq!(r4.body["status"], "succeeded");
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
