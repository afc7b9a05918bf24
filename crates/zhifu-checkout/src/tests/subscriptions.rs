//! Subscriptions through the checkout's router over an in-memory backend:
//! the plan comes from the catalog only, the status from the backend only.

use super::*;

/// Answers the subscription half like the merchant API would; the order
/// half is never reached in these tests.
#[derive(Debug, Default)]
struct FakeSubscriptions {
    created: Mutex<Vec<SubscriptionRequest>>,
    reads: Mutex<Vec<(String, bool)>>,
}

#[async_trait]
impl PaymentBackend for FakeSubscriptions {
    async fn create_order(&self, _: &OrderRequest) -> Result<OrderInfo, CheckoutError> {
        Err(CheckoutError::BackendUnavailable("not in this test".into()))
    }

    async fn pay(&self, _: &str, _: Channel, _: &PayRequest) -> Result<PayParams, CheckoutError> {
        Err(CheckoutError::BackendUnavailable("not in this test".into()))
    }

    async fn order(&self, _: &str, _: bool) -> Result<OrderInfo, CheckoutError> {
        Err(CheckoutError::OrderNotFound)
    }

    async fn create_subscription(
        &self,
        r: &SubscriptionRequest,
    ) -> Result<CreatedSubscription, CheckoutError> {
        let mut created = self.created.lock().unwrap();
        created.push(r.clone());
        let id = format!("sub_{:032x}", created.len());
        let sign = match r.channel {
            SignChannel::App => SignParams {
                app_link: Some("alipays://platformapi/startapp?appId=60000157&x=1".into()),
                ..Default::default()
            },
            _ => SignParams {
                url: Some(format!("http://gw.test/gateway.do?sub={id}")),
                form_html: Some("<form></form>".into()),
                app_link: None,
            },
        };
        Ok(CreatedSubscription {
            subscription: info(&id, r, SubscriptionStatus::PendingSignature),
            sign,
        })
    }

    async fn subscription(
        &self,
        id: &str,
        refresh: bool,
    ) -> Result<SubscriptionInfo, CheckoutError> {
        self.reads.lock().unwrap().push((id.to_owned(), refresh));
        let created = self.created.lock().unwrap();
        let n = id
            .strip_prefix("sub_")
            .and_then(|h| usize::from_str_radix(h, 16).ok())
            .filter(|n| (1..=created.len()).contains(n))
            .ok_or(CheckoutError::OrderNotFound)?;
        // The buyer has signed by the time the page asks Alipay.
        let status = if refresh {
            SubscriptionStatus::Active
        } else {
            SubscriptionStatus::PendingSignature
        };
        Ok(info(id, &created[n - 1], status))
    }
}

fn info(id: &str, r: &SubscriptionRequest, status: SubscriptionStatus) -> SubscriptionInfo {
    SubscriptionInfo {
        id: id.to_owned(),
        status,
        subject: r.subject.clone(),
        amount: r.amount,
        plan: r.plan,
        first_charge_date: Some("2026-12-07".into()),
        periods_charged: 0,
        next_charge_date: Some("2026-12-07".into()),
        activated_at_ms: (status == SubscriptionStatus::Active).then_some(1_796_619_660_000),
        canceled_at_ms: None,
    }
}

struct Subs {
    router: axum::Router,
    backend: Arc<FakeSubscriptions>,
    secret: CheckoutSecret,
}

fn subs(tweak: impl FnOnce(&mut CheckoutConfig)) -> Subs {
    let mut config = CheckoutConfig::new("http://shop.test", Catalog::demo());
    tweak(&mut config);
    let backend = Arc::new(FakeSubscriptions::default());
    let secret = CheckoutSecret::derive_from("zk_test_0123456789abcdef");
    let state = CheckoutState::new(config, backend.clone(), secret.clone()).unwrap();
    Subs {
        router: router(state),
        backend,
        secret,
    }
}

impl Subs {
    async fn send(&self, req: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    async fn post_raw(
        &self,
        uri: &str,
        body: String,
        ip: &str,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let mut req = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40000)));
        self.send(req).await
    }

    async fn subscribe(&self, body: Value) -> (StatusCode, Value) {
        let (s, _, v) = self
            .post_raw("/checkout/subscriptions", body.to_string(), "192.0.2.20")
            .await;
        (s, v)
    }

    async fn get(&self, uri: &str) -> (StatusCode, http::HeaderMap, Value) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    fn created(&self) -> usize {
        self.backend.created.lock().unwrap().len()
    }
}

#[tokio::test]
async fn subscribe_takes_the_plan_from_the_catalog() {
    let h = subs(|_| {});
    let (s, v) = h
        .subscribe(json!({"sku": "pro-monthly", "channel": "page"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let r = h.backend.created.lock().unwrap()[0].clone();
    assert_eq!(r.amount.to_string(), "30.00");
    assert_eq!(
        r.plan,
        Plan {
            unit: PeriodUnit::Month,
            every: 1,
            max_periods: Some(12)
        }
    );
    assert_eq!(r.channel, SignChannel::Page);
    assert_eq!(r.subject, "专业版会员（月付）");
    assert_eq!(
        r.return_url.as_deref(),
        Some("http://shop.test/checkout/result?zhifu_subscription=returned")
    );
    assert_eq!(r.metadata["sku"], "pro-monthly");

    let id = v["checkout_id"].as_str().unwrap();
    assert!(id.starts_with("cs_"), "{id}");
    assert_eq!(
        h.secret.open_subscription(id).as_deref(),
        Some("sub_00000000000000000000000000000001")
    );
    assert_eq!(v["status"], "pending_signature");
    assert_eq!(v["active"], false);
    assert_eq!(v["amount"], "30.00");
    assert_eq!(v["period"], json!({"unit": "month", "every": 1}));
    assert_eq!(v["max_periods"], 12);
    assert_eq!(v["sign"]["channel"], "page");
    assert!(
        v["sign"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://gw.test/")
    );
    assert_eq!(
        v["status_url"],
        format!("http://shop.test/checkout/subscriptions/{id}")
    );
    assert_eq!(
        v["result_url"],
        format!("http://shop.test/checkout/result?zhifu_subscription={id}")
    );
    for private in ["id", "agreement_no", "external_agreement_no", "metadata"] {
        assert!(v.get(private).is_none(), "{private} shown to the buyer");
    }

    // The app channel gets the alipays:// link, and no return_url (there is no page to return to).
    let (s, v) = h
        .subscribe(json!({"sku": "pro-monthly", "channel": "app"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["sign"]["app_link"]
            .as_str()
            .unwrap()
            .starts_with("alipays://")
    );
    assert!(v["sign"].get("url").is_none());
    assert_eq!(h.backend.created.lock().unwrap()[1].return_url, None);
    // No channel: page.
    let (s, v) = h.subscribe(json!({"sku": "pro-monthly"})).await;
    assert_eq!(
        (s, v["channel"].as_str()),
        (StatusCode::CREATED, Some("page"))
    );
}

#[tokio::test]
async fn bad_subscription_requests_change_nothing() {
    let h = subs(|c| c.channels = vec![Channel::Page, Channel::Qr]);
    for (body, code) in [
        (
            json!({"sku": "pro-monthly", "channel": "page", "price": "0.01"}),
            "invalid_request",
        ),
        (
            json!({"sku": "pro-monthly", "amount": "0.01"}),
            "invalid_request",
        ),
        (
            json!({"sku": "pro-monthly", "period": {"unit": "day", "every": 1}}),
            "invalid_request",
        ),
        (
            json!({"sku": "pro-monthly", "max_periods": 1000}),
            "invalid_request",
        ),
        (
            json!({"sku": "pro-monthly", "return_url": "https://evil.test/"}),
            "invalid_request",
        ),
        (json!(["pro-monthly", "page"]), "invalid_request"),
        (
            json!({"sku": "mug", "channel": "page"}),
            "not_a_subscription",
        ),
        (json!({"sku": "nope", "channel": "page"}), "unknown_sku"),
        (json!({"sku": 7, "channel": "page"}), "unknown_sku"),
        (
            json!({"sku": "pro-monthly", "channel": "qr"}),
            "invalid_channel",
        ),
        (
            json!({"sku": "pro-monthly", "channel": "jsapi"}),
            "invalid_channel",
        ),
        (
            json!({"sku": "pro-monthly", "channel": "wap"}),
            "channel_disabled",
        ),
    ] {
        let (s, v) = h.subscribe(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // Not JSON.
    let mut req = Request::post("/checkout/subscriptions")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(r#"{"sku":"pro-monthly"}"#))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        "192.0.2.21".parse().unwrap(),
        1,
    )));
    let (s, _, v) = h.send(req).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(h.created(), 0);
}

#[tokio::test]
async fn a_subscription_product_cannot_be_bought_once() {
    let h = harness(|_| {});
    for channel in ["page", "qr"] {
        let (s, v) = h
            .post(json!({"sku": "pro-monthly", "quantity": 1, "channel": channel}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["code"], "subscription_only");
    }
    assert_eq!(h.backend_calls(), 0);
}

#[tokio::test]
async fn the_catalog_shows_the_plan() {
    let h = subs(|_| {});
    let (s, _, v) = h.get("/checkout/catalog").await;
    assert_eq!(s, StatusCode::OK);
    let products = v["products"].as_array().unwrap();
    let pro = products.iter().find(|p| p["sku"] == "pro-monthly").unwrap();
    assert_eq!(
        pro["subscription"],
        json!({"unit": "month", "every": 1, "max_periods": 12})
    );
    assert_eq!(pro["price"], "30.00");
    assert_eq!(pro["max_quantity"], 1);
    let mug = products.iter().find(|p| p["sku"] == "mug").unwrap();
    assert_eq!(mug["subscription"], Value::Null);
}

#[tokio::test]
async fn status_comes_from_the_backend_for_sealed_ids_only() {
    let h = subs(|_| {});
    let (_, v) = h
        .subscribe(json!({"sku": "pro-monthly", "channel": "wap"}))
        .await;
    let id = v["checkout_id"].as_str().unwrap().to_owned();

    let (s, headers, v) = h.get(&format!("/checkout/subscriptions/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(v["status"], "pending_signature");
    let (_, _, v) = h
        .get(&format!("/checkout/subscriptions/{id}?refresh=true"))
        .await;
    assert_eq!(
        (v["status"].as_str(), v["active"].as_bool()),
        (Some("active"), Some(true))
    );
    assert_eq!(v["activated_at"], 1_796_619_660_000_i64);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    for private in [
        "id",
        "agreement_no",
        "external_agreement_no",
        "metadata",
        "sign",
    ] {
        assert!(!keys.iter().any(|k| *k == private), "{private} in {keys:?}");
    }
    assert_eq!(
        *h.backend.reads.lock().unwrap(),
        vec![
            ("sub_00000000000000000000000000000001".to_owned(), false),
            ("sub_00000000000000000000000000000001".to_owned(), true)
        ]
    );

    // Forged, foreign, an order's checkout id, or one for a subscription the backend does not know.
    let order_id = h.secret.seal("sub_00000000000000000000000000000001");
    let other = CheckoutSecret::derive_from("another-key-another-key")
        .seal_subscription("sub_00000000000000000000000000000001");
    let unknown = h
        .secret
        .seal_subscription("sub_00000000000000000000000000000009");
    for bad in [
        "cs_Zm9yZ2Vk.AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        order_id,
        other,
        unknown,
        id.replacen("cs_", "co_", 1),
    ] {
        let (s, _, v) = h.get(&format!("/checkout/subscriptions/{bad}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "checkout_not_found");
    }
    // Only the unknown-but-genuine id reached the backend.
    assert_eq!(h.backend.reads.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn subscribing_is_rate_limited_like_checkout() {
    let h = subs(|c| {
        c.create_limit = RateLimit {
            burst: 2,
            per_minute: 2,
        }
    });
    let body = json!({"sku": "pro-monthly", "channel": "page"}).to_string();
    for _ in 0..2 {
        let (s, _, v) = h
            .post_raw("/checkout/subscriptions", body.clone(), "198.51.100.7")
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, headers, v) = h
        .post_raw("/checkout/subscriptions", body.clone(), "198.51.100.7")
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(v["error"]["code"], "rate_limited");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert_eq!(h.created(), 2);
    // Another client is not held back.
    let (s, _, _) = h
        .post_raw("/checkout/subscriptions", body, "198.51.100.8")
        .await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn a_backend_without_subscriptions_is_unavailable() {
    // The order-only fake keeps the trait's default subscription methods.
    let h = harness(|_| {});
    let mut req = Request::post("/checkout/subscriptions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"sku": "pro-monthly"}).to_string()))
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(
        "192.0.2.30".parse().unwrap(),
        1,
    )));
    let (s, _, b) = h.send(req).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "payment_unavailable");
}

/// Every field a real answer carries is in the OpenAPI document's schema
/// for it (the document is what `/openapi.json` serves for the checkout).
#[tokio::test]
async fn answers_match_the_documented_schemas() {
    let doc = serde_json::to_value(crate::api::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} is not documented"))
            .keys()
            .cloned()
            .collect()
    };
    for (path, method) in [
        ("/checkout/subscriptions", "post"),
        ("/checkout/subscriptions/{id}", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    let h = subs(|_| {});
    let (_, created) = h
        .subscribe(json!({"sku": "pro-monthly", "channel": "page"}))
        .await;
    let (_, _, status) = h
        .get(&format!(
            "/checkout/subscriptions/{}",
            created["checkout_id"].as_str().unwrap()
        ))
        .await;
    let (_, _, catalog) = h.get("/checkout/catalog").await;
    for (value, schema) in [
        (&created, "SubscriptionCheckoutCreated"),
        (&status, "SubscriptionCheckoutStatus"),
        (&created["sign"], "SubscriptionSign"),
        (&created["period"], "SubscriptionPeriod"),
        (&catalog["products"][3], "CatalogProduct"),
        (&catalog["products"][3]["subscription"], "CatalogPlan"),
    ] {
        let documented = props(schema);
        for k in value.as_object().unwrap().keys() {
            assert!(documented.contains(k), "{schema}: {k} is not documented");
        }
    }
}
