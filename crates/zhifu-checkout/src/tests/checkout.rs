//! Creating checkouts: catalog pricing, input validation, return URLs, QR and JSAPI.

use super::*;

#[tokio::test]
async fn page_checkout_prices_from_the_catalog() {
    let h = harness(|_| {});
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 3, "channel": "page"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["total_amount"], "266.64");
    assert_eq!(v["currency"], "CNY");
    assert_eq!(v["subject"], "支付马克杯 × 3");
    assert_eq!(v["channel"], "page");
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .starts_with("http://gw.test/gateway.do")
    );
    let created = h.backend.created.lock().unwrap()[0].clone();
    assert_eq!(created.total_amount, Amount::from_fen(26664).unwrap());
    assert_eq!(created.metadata["sku"], "mug");
    assert_eq!(created.metadata["quantity"], 3);
    assert_eq!(created.expires_in_minutes, Some(15));

    // The id names the order, and the return URL carries it back.
    let id = v["checkout_id"].as_str().unwrap();
    let (order_id, channel, pay) = h.backend.pays.lock().unwrap()[0].clone();
    assert_eq!(h.secret.open(id).as_deref(), Some(order_id.as_str()));
    assert_eq!(channel, Channel::Page);
    assert_eq!(
        pay.return_url.as_deref(),
        Some(format!("http://shop.test/checkout/result?zhifu_checkout={id}").as_str())
    );
    assert_eq!(v["result_url"], pay.return_url.unwrap().as_str());
    assert_eq!(v["status_url"], format!("http://shop.test/checkout/{id}"));
}

#[tokio::test]
async fn browsers_cannot_set_prices_or_bad_input() {
    let h = harness(|c| c.channels = vec![Channel::Page, Channel::Wap, Channel::Qr]);
    let cases = [
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "price": "0.01"}),
            "invalid_request",
            "price",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "total_amount": "0.01"}),
            "invalid_request",
            "total_amount",
        ),
        (
            json!({"sku": "mug", "channel": "page"}),
            "invalid_request",
            "quantity",
        ),
        (
            json!({"sku": "gold", "quantity": 1, "channel": "page"}),
            "unknown_sku",
            "",
        ),
        (
            json!({"sku": 7, "quantity": 1, "channel": "page"}),
            "unknown_sku",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 0, "channel": "page"}),
            "invalid_quantity",
            "1 to 20",
        ),
        (
            json!({"sku": "mug", "quantity": 21, "channel": "page"}),
            "invalid_quantity",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": -1, "channel": "page"}),
            "invalid_quantity",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 1.5, "channel": "page"}),
            "invalid_quantity",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": "2", "channel": "page"}),
            "invalid_quantity",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "cash"}),
            "invalid_channel",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}),
            "channel_disabled",
            "jsapi",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "return_url": "https://evil.test/x"}),
            "invalid_return_url",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "return_url": "javascript:alert(1)"}),
            "invalid_return_url",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "return_url": "/relative"}),
            "invalid_return_url",
            "",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "return_url": format!("http://shop.test/{}", "x".repeat(200))}),
            "invalid_return_url",
            "at most",
        ),
        (
            json!({"sku": "mug", "quantity": 1, "channel": "page", "buyer_id": "2088000000000001"}),
            "buyer_not_accepted",
            "authorize",
        ),
        (json!(["mug"]), "invalid_request", ""),
    ];
    for (body, code, needle) in cases {
        let (s, v) = h.post(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {v}"
        );
    }
    // Not JSON at all.
    let (s, _, _) = h
        .send(
            Request::post("/checkout")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{"))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    // A field given twice is refused, not resolved (last one wins in a
    // plain JSON value).
    let (s, _, body) = h
        .send(
            Request::post("/checkout")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    r#"{"sku":"mug","quantity":1,"quantity":5,"channel":"page"}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("duplicate field"), "{body}");
    // Nothing reached the backend.
    assert_eq!(h.backend_calls(), 0);
}

#[tokio::test]
async fn allowed_return_url_keeps_its_query() {
    let h = harness(|c| c.return_origins = vec!["https://shop.example.com".into()]);
    let (s, v) = h
        .post(json!({"sku": "tea", "quantity": 1, "channel": "wap", "return_url": "https://shop.example.com/done?ref=a#top"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pay = h.backend.pays.lock().unwrap()[0].2.clone();
    let id = v["checkout_id"].as_str().unwrap();
    assert_eq!(
        pay.return_url.unwrap(),
        format!("https://shop.example.com/done?ref=a&zhifu_checkout={id}#top")
    );
}

#[tokio::test]
async fn qr_checkout_renders_svg() {
    let h = harness(|_| {});
    let (s, v) = h
        .post(json!({"sku": "sticker", "quantity": 2, "channel": "qr"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["total_amount"], "0.02");
    let code = v["qr_code"].as_str().unwrap();
    assert!(code.starts_with("http://gw.test/scan/"));
    assert_eq!(v["qr_svg"].as_str().unwrap(), qr::svg(code, 264).unwrap());
    assert!(v.get("url").is_none());
    // No return URL for channels that do not redirect.
    assert_eq!(h.backend.pays.lock().unwrap()[0].2.return_url, None);
}

#[tokio::test]
async fn jsapi_needs_authorization_unless_in_development() {
    let h = harness(|_| {});
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("authorization_required"))
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/checkout/authorize")
    );
    // A buyer id from the page is refused, well-formed or not.
    for body in [
        json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_open_id": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}),
        json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_id": "2088000000000001"}),
        json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_id": "2088/../x"}),
    ] {
        let (s, v) = h.post(body.clone()).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("buyer_not_accepted")),
            "{body}"
        );
    }
    assert_eq!(h.backend_calls(), 0);

    let dev = harness(|c| c.dev_buyer_id = Some("2088102177846880".into()));
    let (s, v) = dev
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        dev.backend.pays.lock().unwrap()[0].2.buyer_id.as_deref(),
        Some("2088102177846880")
    );
    // Even with the development buyer configured, the page cannot name one.
    let (s, _) = dev
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_id": "2088000000000009"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
