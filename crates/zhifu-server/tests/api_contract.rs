//! The merchant API's contract end to end (real server, real sandbox, a
//! fresh database per test, SQLite and PostgreSQL): idempotency keys,
//! authentication, malformed bodies, state conflicts, listing, health and
//! the OpenAPI document. Every refused request changes nothing.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use zhifu_store::Store;
use zhifu_store::testing::TestDatabase;

zhifu_store::backend_tests!(
    idempotency_keys,
    auth_failures_change_nothing,
    malformed_bodies_change_nothing,
    state_conflicts,
    listing_health_openapi,
);

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
        // A key given twice would let the last one win: ¥500, not ¥1.
        (
            r#"{"subject":"Mug","total_amount":"1.00","total_amount":"500.00"}"#,
            "application/json",
            400,
            "invalid_json",
        ),
        (
            r#"{"subject":"Mug","total_amount":"1.00","metadata":{"k":1,"k":2}}"#,
            "application/json",
            400,
            "invalid_json",
        ),
        // NUL and other control characters in text fields.
        (
            r#"{"subject":"Mug\u0000","total_amount":"1.00"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
        (
            r#"{"subject":"Mug","body":"line\nbreak","total_amount":"1.00"}"#,
            "application/json",
            400,
            "invalid_field",
        ),
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
