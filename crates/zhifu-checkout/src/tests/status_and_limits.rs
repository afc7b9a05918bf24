//! Order status, expiry, per-client rate limits, forwarded-for trust and backend failures.

use super::*;

#[tokio::test]
async fn status_shows_status_only_and_only_for_sealed_ids() {
    let h = harness(|_| {});
    let (_, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "qr"}))
        .await;
    let id = v["checkout_id"].as_str().unwrap().to_owned();
    let (s, st) = h.get_json(&format!("/checkout/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let mut keys: Vec<&str> = st.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "checkout_id",
            "currency",
            "expired",
            "expires_at",
            "now",
            "paid",
            "paid_at",
            "status",
            "subject",
            "total_amount"
        ]
    );
    assert_eq!(st["status"], "pending");
    assert_eq!(st["paid"], false);
    assert_eq!(st["expired"], false);

    // refresh=true reaches the backend as a refresh; anything else does not.
    h.get(&format!("/checkout/{id}?refresh=true")).await;
    h.get(&format!("/checkout/{id}?refresh=no")).await;
    let reads = h.backend.reads.lock().unwrap().clone();
    assert_eq!(
        reads.iter().map(|r| r.1).collect::<Vec<_>>(),
        [false, true, false]
    );

    // Paid is reported as the backend says.
    h.backend.orders.lock().unwrap()[0].status = OrderStatus::Paid;
    let (_, st) = h.get_json(&format!("/checkout/{id}")).await;
    assert_eq!(
        (st["status"].as_str(), st["paid"].as_bool()),
        (Some("paid"), Some(true))
    );

    // A merchant-API order id, or a forged id, is not a checkout.
    let order_id = h.backend.orders.lock().unwrap()[0].id.clone();
    let other = CheckoutSecret::derive_from("another key entirely").seal(&order_id);
    for bad in [order_id.as_str(), other.as_str(), "co_x.y", "catalogue"] {
        let (s, v) = h.get_json(&format!("/checkout/{bad}")).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("checkout_not_found")),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn expired_pending_orders_are_flagged() {
    let o = OrderInfo {
        id: "o".into(),
        out_trade_no: "T".into(),
        subject: "s".into(),
        total_amount: Amount::from_fen(100).unwrap(),
        status: OrderStatus::Pending,
        expires_at_ms: Some(1000),
        paid_at_ms: None,
    };
    assert_eq!(api::status_json("co", &o, 999)["expired"], false);
    assert_eq!(api::status_json("co", &o, 1000)["expired"], true);
    let paid = OrderInfo {
        status: OrderStatus::Paid,
        ..o
    };
    assert_eq!(api::status_json("co", &paid, 5000)["expired"], false);
    // A closing order is closed for the buyer: nothing to pay any more.
    let closing = OrderInfo {
        status: OrderStatus::Closing,
        ..paid
    };
    let v = api::status_json("co", &closing, 5000);
    assert_eq!(
        (v["status"].as_str(), v["paid"].as_bool()),
        (Some("closed"), Some(false))
    );
}

#[tokio::test]
async fn creation_is_rate_limited_per_client() {
    let h = harness(|c| {
        c.create_limit = RateLimit {
            burst: 2,
            per_minute: 1,
        }
    });
    let body = json!({"sku": "sticker", "quantity": 1, "channel": "page"});
    assert_eq!(
        h.post_from(body.clone(), "198.51.100.1").await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        h.post_from(body.clone(), "198.51.100.1").await.0,
        StatusCode::CREATED
    );
    let mut req = Request::post("/checkout")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        "198.51.100.1".parse().unwrap(),
        1,
    )));
    let (s, headers, b) = h.send(req).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    // Another client is not affected; the limited one made no order.
    assert_eq!(
        h.post_from(body, "198.51.100.2").await.0,
        StatusCode::CREATED
    );
    assert_eq!(h.backend.created.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn forwarded_for_counts_only_when_trusted() {
    let h = harness(|c| {
        c.create_limit = RateLimit {
            burst: 1,
            per_minute: 1,
        };
        c.trusted_proxy_hops = 1;
    });
    let body = json!({"sku": "sticker", "quantity": 1, "channel": "page"}).to_string();
    let send = |xff: &'static str| {
        let mut req = Request::post("/checkout")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", xff)
            .body(Body::from(body.clone()))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new("10.0.0.1".parse().unwrap(), 1)));
        req
    };
    // Same proxy peer, different real clients: separate buckets.
    assert_eq!(h.send(send("203.0.113.1")).await.0, StatusCode::CREATED);
    assert_eq!(h.send(send("203.0.113.2")).await.0, StatusCode::CREATED);
    // A spoofed left-most entry does not give a fresh bucket.
    assert_eq!(
        h.send(send("1.2.3.4, 203.0.113.1")).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn backend_failures_do_not_leak() {
    let h = harness(|_| {});
    *h.backend.fail.lock().unwrap() =
        Some(|| CheckoutError::BackendUnavailable("database password=hunter2 unreachable".into()));
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "page"}))
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(v["error"]["code"], "payment_unavailable");
    assert!(!v.to_string().contains("hunter2"));

    *h.backend.fail.lock().unwrap() = Some(|| CheckoutError::BackendRejected {
        status: 409,
        code: "order_not_payable".into(),
        message: "only pending orders can be paid".into(),
    });
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "page"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("order_not_payable"))
    );
}
