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

mod authorize;
mod checkout;
mod pages;
mod status_and_limits;
mod subscriptions;

/// Records every call; answers like the merchant API would.
#[derive(Debug, Default)]
struct FakeBackend {
    orders: Mutex<Vec<OrderInfo>>,
    created: Mutex<Vec<OrderRequest>>,
    pays: Mutex<Vec<(String, Channel, PayRequest)>>,
    reads: Mutex<Vec<(String, bool)>>,
    fail: Mutex<Option<fn() -> CheckoutError>>,
    /// Authorization codes already exchanged.
    codes_used: Mutex<Vec<String>>,
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

    /// `https://auth.test/authorize?redirect_uri=…&state=…`, as the
    /// backend's `GET /v1/oauth/authorize-url` builds it.
    async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
    ) -> Result<String, CheckoutError> {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("app_id", "2021000000000001")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .finish();
        Ok(format!("https://auth.test/authorize?{q}"))
    }

    /// `open-<x>` codes are the buyer with open id `<x>`, once each.
    async fn exchange_auth_code(&self, auth_code: &str) -> Result<alipay::BuyerId, CheckoutError> {
        let mut used = self.codes_used.lock().unwrap();
        if used.iter().any(|c| c == auth_code) || !auth_code.starts_with("open-") {
            return Err(CheckoutError::BackendRejected {
                status: 400,
                code: "auth_code_invalid".into(),
                message: "refused".into(),
            });
        }
        used.push(auth_code.to_owned());
        Ok(alipay::BuyerId::OpenId(
            auth_code["open-".len()..].to_owned(),
        ))
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
