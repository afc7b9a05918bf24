//! Router-level tests over an in-memory [`PaymentBackend`]: what the
//! browser can and cannot make the checkout do.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use alipay::Amount;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::*;

/// Records every call; answers like the merchant API would.
#[derive(Debug, Default)]
struct FakeBackend {
    orders: Mutex<Vec<OrderInfo>>,
    created: Mutex<Vec<OrderRequest>>,
    pays: Mutex<Vec<(String, Channel, PayRequest)>>,
    reads: Mutex<Vec<(String, bool)>>,
    fail: Mutex<Option<fn() -> CheckoutError>>,
}

#[async_trait]
impl PaymentBackend for FakeBackend {
    async fn create_order(&self, order: &OrderRequest) -> Result<OrderInfo, CheckoutError> {
        if let Some(f) = *self.fail.lock().unwrap() {
            return Err(f());
        }
        self.created.lock().unwrap().push(order.clone());
        let mut orders = self.orders.lock().unwrap();
        let o = OrderInfo {
            id: format!("ord_{:032x}", orders.len() + 1),
            out_trade_no: format!("T{}", orders.len() + 1),
            subject: order.subject.clone(),
            total_amount: order.total_amount,
            status: OrderStatus::Pending,
            expires_at_ms: Some(4_000_000_000_000),
            paid_at_ms: None,
        };
        orders.push(o.clone());
        Ok(o)
    }

    async fn pay(
        &self,
        order_id: &str,
        channel: Channel,
        request: &PayRequest,
    ) -> Result<PayParams, CheckoutError> {
        self.pays
            .lock()
            .unwrap()
            .push((order_id.to_owned(), channel, request.clone()));
        let mut p = PayParams::default();
        match channel {
            Channel::Page | Channel::Wap => {
                p.url = Some(format!("http://gw.test/gateway.do?order={order_id}"));
                p.form_html = Some("<form></form>".into());
            }
            Channel::Qr => p.qr_code = Some(format!("http://gw.test/scan/{order_id}")),
            Channel::App => p.order_string = Some("app_id=1&sign=x".into()),
            Channel::Jsapi => p.trade_no = Some("2024010122001400000000000001".into()),
        }
        Ok(p)
    }

    async fn order(&self, order_id: &str, refresh: bool) -> Result<OrderInfo, CheckoutError> {
        self.reads
            .lock()
            .unwrap()
            .push((order_id.to_owned(), refresh));
        self.orders
            .lock()
            .unwrap()
            .iter()
            .find(|o| o.id == order_id)
            .cloned()
            .ok_or(CheckoutError::OrderNotFound)
    }
}

struct Harness {
    router: axum::Router,
    backend: Arc<FakeBackend>,
    secret: CheckoutSecret,
}

fn harness(tweak: impl FnOnce(&mut CheckoutConfig)) -> Harness {
    let mut config = CheckoutConfig::new("http://shop.test", Catalog::demo());
    tweak(&mut config);
    let backend = Arc::new(FakeBackend::default());
    let secret = CheckoutSecret::derive_from("zk_test_0123456789abcdef");
    let state = CheckoutState::new(config, backend.clone(), secret.clone()).unwrap();
    Harness {
        router: router(state),
        backend,
        secret,
    }
}

impl Harness {
    async fn send(&self, req: Request<Body>) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, body.to_vec())
    }

    async fn post(&self, body: Value) -> (StatusCode, Value) {
        self.post_from(body, "192.0.2.10").await
    }

    async fn post_from(&self, body: Value, ip: &str) -> (StatusCode, Value) {
        let mut req = Request::post("/checkout")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip.parse().unwrap(), 40000)));
        let (s, _, b) = self.send(req).await;
        (s, serde_json::from_slice(&b).unwrap())
    }

    async fn get(&self, uri: &str) -> (StatusCode, http::HeaderMap, Vec<u8>) {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    async fn get_json(&self, uri: &str) -> (StatusCode, Value) {
        let (s, _, b) = self.get(uri).await;
        (s, serde_json::from_slice(&b).unwrap())
    }

    fn backend_calls(&self) -> usize {
        self.backend.created.lock().unwrap().len() + self.backend.pays.lock().unwrap().len()
    }
}

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
            "invalid_request",
            "jsapi",
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
async fn jsapi_needs_a_buyer_unless_in_development() {
    let h = harness(|_| {});
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("buyer_required"))
    );
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_open_id": "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["trade_no"], "2024010122001400000000000001");
    let (s, v) = h
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi", "buyer_id": "2088/../x"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let dev = harness(|c| c.dev_buyer_id = Some("2088102177846880".into()));
    let (s, v) = dev
        .post(json!({"sku": "mug", "quantity": 1, "channel": "jsapi"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        dev.backend.pays.lock().unwrap()[0].2.buyer_id.as_deref(),
        Some("2088102177846880")
    );
}

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

#[tokio::test]
async fn catalog_endpoint_lists_products_and_channels() {
    let h = harness(|c| c.channels = vec![Channel::Page, Channel::Qr]);
    let (s, v) = h.get_json("/checkout/catalog").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["currency"], "CNY");
    assert_eq!(v["channels"], json!(["page", "qr"]));
    assert_eq!(v["jsapi_needs_buyer_id"], true);
    let dev = harness(|c| c.dev_buyer_id = Some(DEV_BUYER_ID.into()));
    assert_eq!(
        dev.get_json("/checkout/catalog").await.1["jsapi_needs_buyer_id"],
        false
    );
    let mug = v["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["sku"] == "mug")
        .unwrap();
    assert_eq!(mug["price"], "88.88");
    assert_eq!(mug["name"]["en"], "Zhifu mug");
    assert_eq!(mug["max_quantity"], 20);
}

#[tokio::test]
async fn pages_are_served_with_a_strict_policy() {
    let h = harness(|_| {});
    for (uri, ct) in [
        ("/", "text/html"),
        ("/checkout/result?zhifu_checkout=x&sign=forged", "text/html"),
        ("/admin", "text/html"),
        ("/zhifu.js", "text/javascript"),
        ("/zhifu.d.ts", "application/typescript"),
        ("/checkout/assets/app.css", "text/css"),
        ("/checkout/assets/storefront.js", "text/javascript"),
        ("/checkout/assets/icon.svg", "image/svg+xml"),
    ] {
        let (s, headers, body) = h.get(uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(ct),
            "{uri}"
        );
        assert!(!body.is_empty());
        if ct == "text/html" {
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(
                csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
                "{uri}"
            );
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        }
    }
    assert_eq!(
        h.get("/checkout/assets/../Cargo.toml").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get("/checkout/assets/nope.js").await.0,
        StatusCode::NOT_FOUND
    );
}

async fn storefront_as(h: &Harness, ua: &str) -> String {
    let (_, _, body) = h
        .send(
            Request::get("/")
                .header(header::USER_AGENT, ua)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn stand_in_bridge_only_in_development_and_only_for_the_app() {
    const APP: &str = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 AlipayClient/10.6.8";
    const PHONE: &str = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36";
    let prod = harness(|_| {});
    assert!(!storefront_as(&prod, APP).await.contains("jsbridge.js"));
    assert_eq!(
        prod.get("/sandbox/jsbridge.js").await.0,
        StatusCode::NOT_FOUND
    );

    let dev = harness(|c| c.dev_bridge = true);
    assert!(
        storefront_as(&dev, APP)
            .await
            .contains("<script src=\"/sandbox/jsbridge.js\"></script>")
    );
    assert!(!storefront_as(&dev, PHONE).await.contains("jsbridge.js"));
    let (s, _, body) = dev.get("/sandbox/jsbridge.js").await;
    assert_eq!(s, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("AlipayJSBridge"));
}

#[tokio::test]
async fn cors_only_for_configured_origins() {
    let h = harness(|c| c.cors_origins = vec!["https://shop.example.com".into()]);
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/checkout")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let (_, headers, _) = h.send(preflight("https://shop.example.com")).await;
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://shop.example.com"
    );
    let (_, headers, _) = h.send(preflight("https://evil.test")).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let same_origin_only = harness(|_| {});
    let (_, headers, _) = same_origin_only
        .send(preflight("https://shop.example.com"))
        .await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_the_backend() {
    let h = harness(|_| {});
    let big = json!({"sku": "mug", "quantity": 1, "channel": "page", "return_url": format!("http://shop.test/{}", "x".repeat(20_000))});
    let (s, _) = {
        let req = Request::post("/checkout")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big.to_string()))
            .unwrap();
        let (s, _, b) = h.send(req).await;
        (s, b)
    };
    assert!(
        s == StatusCode::PAYLOAD_TOO_LARGE || s == StatusCode::BAD_REQUEST,
        "{s}"
    );
    assert_eq!(h.backend_calls(), 0);
}
