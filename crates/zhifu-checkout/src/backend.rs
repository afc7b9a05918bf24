//! What the checkout needs from the payment backend, and one way to get it.
//!
//! [`PaymentBackend`] is the whole dependency: create an order, get payment
//! parameters for it, read it back. [`RouterBackend`] implements it by
//! calling the backend's merchant API (`/v1/orders…`, the stable HTTP
//! contract of issue 4) **in-process** through its axum `Router`, with the
//! merchant API key — no socket, no second copy of the order logic, and the
//! checkout can never do anything a merchant API client could not.

use std::fmt;

use alipay::{Amount, BuyerId};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::error::CheckoutError;

mod subscriptions;
pub use self::subscriptions::{
    CreatedSubscription, SignChannel, SignParams, SubscriptionInfo, SubscriptionRequest,
    SubscriptionStatus,
};

/// How the buyer pays; the backend's `channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// PC web: redirect to the cashier (`alipay.trade.page.pay`).
    Page,
    /// Phone browser: redirect to the mobile cashier (`alipay.trade.wap.pay`).
    Wap,
    /// A QR code the buyer scans (`alipay.trade.precreate`).
    Qr,
    /// An order string for the native Alipay app SDK (`alipay.trade.app.pay`).
    App,
    /// Inside the Alipay app: a `trade_no` for `AlipayJSBridge` `tradePay`
    /// (`alipay.trade.create`).
    Jsapi,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] = [
        Channel::Page,
        Channel::Wap,
        Channel::Qr,
        Channel::App,
        Channel::Jsapi,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Page => "page",
            Channel::Wap => "wap",
            Channel::Qr => "qr",
            Channel::App => "app",
            Channel::Jsapi => "jsapi",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the buyer's browser leaves for Alipay and comes back to a
    /// `return_url`.
    pub fn redirects(self) -> bool {
        matches!(self, Channel::Page | Channel::Wap)
    }
}

/// An order's payment state, as the backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Not paid yet.
    Pending,
    /// Being closed: the buyer may still hold live payment parameters.
    Closing,
    /// Paid (possibly partly refunded).
    Paid,
    /// Closed unpaid.
    Closed,
    /// Refunded in full.
    Refunded,
}

impl OrderStatus {
    /// What the buyer's page shows: a `closing` order is closed for the
    /// buyer (they must not pay it; should they pay anyway, the backend
    /// takes and refunds the payment, and the page then says `refunded`).
    pub fn for_buyer(self) -> &'static str {
        match self {
            OrderStatus::Closing => "closed",
            other => other.as_str(),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Closing => "closing",
            OrderStatus::Paid => "paid",
            OrderStatus::Closed => "closed",
            OrderStatus::Refunded => "refunded",
        }
    }
}

/// The order the checkout asks for; the price comes from the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRequest {
    /// Alipay `subject`.
    pub subject: String,
    /// Alipay `body`.
    pub body: Option<String>,
    /// Catalog price × quantity.
    pub total_amount: Amount,
    /// Payment deadline.
    pub expires_in_minutes: Option<u32>,
    /// Stored with the order for the merchant (sku, quantity, channel).
    pub metadata: Value,
}

/// What the checkout reads back about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInfo {
    /// Backend order id.
    pub id: String,
    /// Merchant order number (shown to the buyer as the order number).
    pub out_trade_no: String,
    /// Subject.
    pub subject: String,
    /// Amount.
    pub total_amount: Amount,
    /// Payment state.
    pub status: OrderStatus,
    /// Payment deadline, epoch milliseconds, when known.
    pub expires_at_ms: Option<i64>,
    /// When it was paid, epoch milliseconds.
    pub paid_at_ms: Option<i64>,
}

/// Payment parameters request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayRequest {
    /// Where Alipay sends the buyer back (page/wap).
    pub return_url: Option<String>,
    /// The buyer's Alipay user id (jsapi).
    pub buyer_id: Option<String>,
    /// The buyer's Alipay open id (jsapi).
    pub buyer_open_id: Option<String>,
}

/// What the browser needs for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct PayParams {
    /// page/wap: the cashier URL (GET).
    #[serde(default)]
    pub url: Option<String>,
    /// page/wap: an auto-submitting form, the alternative to `url`.
    #[serde(default)]
    pub form_html: Option<String>,
    /// qr: the content of the QR code.
    #[serde(default)]
    pub qr_code: Option<String>,
    /// app: the order string for the app SDK.
    #[serde(default)]
    pub order_string: Option<String>,
    /// jsapi: the trade number for `tradePay`.
    #[serde(default)]
    pub trade_no: Option<String>,
}

/// The payment backend as the checkout sees it. Implement it over the
/// backend's internals, or use [`RouterBackend`].
#[async_trait]
pub trait PaymentBackend: Send + Sync + fmt::Debug + 'static {
    /// Creates an order.
    ///
    /// # Errors
    /// [`CheckoutError::BackendRejected`] / [`CheckoutError::BackendUnavailable`].
    async fn create_order(&self, order: &OrderRequest) -> Result<OrderInfo, CheckoutError>;

    /// Payment parameters for a pending order.
    ///
    /// # Errors
    /// As [`PaymentBackend::create_order`]; [`CheckoutError::OrderNotFound`].
    async fn pay(
        &self,
        order_id: &str,
        channel: Channel,
        request: &PayRequest,
    ) -> Result<PayParams, CheckoutError>;

    /// The order; with `refresh`, a pending order is first checked with
    /// Alipay (through the backend's verified path).
    ///
    /// # Errors
    /// As [`PaymentBackend::pay`].
    async fn order(&self, order_id: &str, refresh: bool) -> Result<OrderInfo, CheckoutError>;

    /// Creates a subscription (a recurring agreement for the buyer to
    /// sign) and answers how to sign it. The default: a backend without
    /// subscriptions.
    ///
    /// # Errors
    /// As [`PaymentBackend::create_order`].
    async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<CreatedSubscription, CheckoutError> {
        let _ = request;
        Err(CheckoutError::BackendUnavailable(
            "this backend offers no subscriptions".into(),
        ))
    }

    /// The subscription; with `refresh`, the backend first asks Alipay
    /// (`alipay.user.agreement.query`, verified).
    ///
    /// # Errors
    /// As [`PaymentBackend::pay`].
    async fn subscription(
        &self,
        subscription_id: &str,
        refresh: bool,
    ) -> Result<SubscriptionInfo, CheckoutError> {
        let _ = (subscription_id, refresh);
        Err(CheckoutError::BackendUnavailable(
            "this backend offers no subscriptions".into(),
        ))
    }

    /// The Alipay user-authorization page URL (`auth_base`) that sends the
    /// buyer back to `redirect_uri` with `auth_code` and `state`. The
    /// default: a backend without user authorization.
    ///
    /// # Errors
    /// As [`PaymentBackend::create_order`].
    async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
    ) -> Result<String, CheckoutError> {
        let _ = (redirect_uri, state);
        Err(CheckoutError::BackendUnavailable(
            "this backend offers no user authorization".into(),
        ))
    }

    /// Exchanges the buyer's `auth_code` for their Alipay id (the backend
    /// verifies Alipay's signed answer).
    ///
    /// # Errors
    /// [`CheckoutError::BackendRejected`] when the code is refused (used,
    /// expired, unknown); otherwise as [`PaymentBackend::create_order`].
    async fn exchange_auth_code(&self, auth_code: &str) -> Result<BuyerId, CheckoutError> {
        let _ = auth_code;
        Err(CheckoutError::BackendUnavailable(
            "this backend offers no user authorization".into(),
        ))
    }
}

/// [`PaymentBackend`] over the backend's merchant HTTP API, called
/// in-process through its `Router`.
#[derive(Clone)]
pub struct RouterBackend {
    router: Router,
    api_key: String,
}

impl fmt::Debug for RouterBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterBackend")
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Largest backend answer read; an order is a few hundred bytes.
const MAX_ANSWER: usize = 256 * 1024;

impl RouterBackend {
    /// Wraps the backend's router (with its state applied) and the merchant
    /// API key it checks.
    pub fn new(router: Router, api_key: impl Into<String>) -> Self {
        RouterBackend {
            router,
            api_key: api_key.into(),
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Result<Value, CheckoutError> {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.api_key));
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let req = req
            .body(body)
            .map_err(|e| CheckoutError::BackendUnavailable(format!("building the request: {e}")))?;
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| CheckoutError::BackendUnavailable(e.to_string()))?;
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER)
            .await
            .map_err(|e| CheckoutError::BackendUnavailable(format!("reading the answer: {e}")))?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            CheckoutError::BackendUnavailable(format!("{uri}: answer {status} is not JSON"))
        })?;
        if status.is_success() {
            return Ok(value);
        }
        let code = value["error"]["code"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        let message = value["error"]["message"].as_str().unwrap_or("").to_owned();
        match status {
            StatusCode::NOT_FOUND => Err(CheckoutError::OrderNotFound),
            s if s.is_client_error()
                && s != StatusCode::UNAUTHORIZED
                && s != StatusCode::FORBIDDEN =>
            {
                Err(CheckoutError::BackendRejected {
                    status: s.as_u16(),
                    code,
                    message,
                })
            }
            // A 401 means our own key is wrong: a configuration error the
            // buyer cannot fix, so it is reported as unavailability.
            s => Err(CheckoutError::BackendUnavailable(format!(
                "{uri}: {s} {code}"
            ))),
        }
    }
}

#[async_trait]
impl PaymentBackend for RouterBackend {
    async fn create_order(&self, order: &OrderRequest) -> Result<OrderInfo, CheckoutError> {
        let mut body = json!({
            "subject": order.subject,
            "total_amount": order.total_amount.to_string(),
            "metadata": order.metadata,
        });
        if let Some(b) = &order.body {
            body["body"] = json!(b);
        }
        if let Some(m) = order.expires_in_minutes {
            body["expires_in_minutes"] = json!(m);
        }
        let v = self.call(Method::POST, "/v1/orders", Some(body)).await?;
        order_info(&v)
    }

    async fn pay(
        &self,
        order_id: &str,
        channel: Channel,
        request: &PayRequest,
    ) -> Result<PayParams, CheckoutError> {
        let mut body = json!({ "channel": channel.as_str() });
        for (k, v) in [
            ("return_url", &request.return_url),
            ("buyer_id", &request.buyer_id),
            ("buyer_open_id", &request.buyer_open_id),
        ] {
            if let Some(v) = v {
                body[k] = json!(v);
            }
        }
        let uri = format!("/v1/orders/{}/pay", path_segment(order_id)?);
        let v = self.call(Method::POST, &uri, Some(body)).await?;
        serde_json::from_value(v)
            .map_err(|e| CheckoutError::BackendUnavailable(format!("pay answer: {e}")))
    }

    async fn order(&self, order_id: &str, refresh: bool) -> Result<OrderInfo, CheckoutError> {
        let mut uri = format!("/v1/orders/{}", path_segment(order_id)?);
        if refresh {
            uri.push_str("?refresh=true");
        }
        let v = self.call(Method::GET, &uri, None).await?;
        order_info(&v)
    }

    async fn create_subscription(
        &self,
        request: &SubscriptionRequest,
    ) -> Result<CreatedSubscription, CheckoutError> {
        self.create_subscription_over_api(request).await
    }

    async fn subscription(
        &self,
        subscription_id: &str,
        refresh: bool,
    ) -> Result<SubscriptionInfo, CheckoutError> {
        self.subscription_over_api(subscription_id, refresh).await
    }

    async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
    ) -> Result<String, CheckoutError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("scope", "auth_base")
            .finish();
        let v = self
            .call(
                Method::GET,
                &format!("/v1/oauth/authorize-url?{query}"),
                None,
            )
            .await?;
        v["url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CheckoutError::BackendUnavailable("authorize-url answer: url".into()))
    }

    async fn exchange_auth_code(&self, auth_code: &str) -> Result<BuyerId, CheckoutError> {
        let v = self
            .call(
                Method::POST,
                "/v1/oauth/token",
                Some(json!({ "auth_code": auth_code })),
            )
            .await?;
        let id = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        id("open_id")
            .map(BuyerId::OpenId)
            .or_else(|| id("user_id").map(BuyerId::UserId))
            .ok_or_else(|| CheckoutError::BackendUnavailable("token answer names no buyer".into()))
    }
}

/// Order ids come from the backend, but they travel through the buyer's
/// browser inside a checkout id: never let one smuggle a path or query in.
fn path_segment(id: &str) -> Result<&str, CheckoutError> {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(id)
    } else {
        Err(CheckoutError::OrderNotFound)
    }
}

/// Reads the merchant API's order JSON.
pub(crate) fn order_info(v: &Value) -> Result<OrderInfo, CheckoutError> {
    let bad = |what: &str| CheckoutError::BackendUnavailable(format!("order answer: {what}"));
    let s = |k: &str| v[k].as_str().map(str::to_owned).ok_or_else(|| bad(k));
    let total_amount = Amount::parse(&s("total_amount")?).map_err(|_| bad("total_amount"))?;
    let status: OrderStatus =
        serde_json::from_value(v["status"].clone()).map_err(|_| bad("status"))?;
    Ok(OrderInfo {
        id: s("id")?,
        out_trade_no: s("out_trade_no")?,
        subject: s("subject")?,
        total_amount,
        status,
        expires_at_ms: timestamp_ms(&v["expires_at"]),
        paid_at_ms: timestamp_ms(&v["paid_at"]),
    })
}

/// Accepts epoch milliseconds, epoch seconds, or RFC 3339 text: the
/// checkout only needs the instant, whatever the backend's JSON style.
fn timestamp_ms(v: &Value) -> Option<i64> {
    // Anything below this is seconds: 1e11 ms is 1973, 1e11 s is year 5138.
    const SECONDS_BELOW: i64 = 100_000_000_000;
    match v {
        Value::Number(n) => n.as_i64().map(|t| {
            if t < SECONDS_BELOW {
                t.saturating_mul(1000)
            } else {
                t
            }
        }),
        Value::String(s) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_order_json_in_any_time_style() {
        let base = json!({
            "id": "ord_1", "out_trade_no": "T1", "subject": "Mug", "total_amount": "88.88",
            "status": "pending", "paid_at": null, "metadata": {"x": 1}
        });
        for (t, want) in [
            (json!(1_700_000_000_123_i64), 1_700_000_000_123),
            (json!(1_700_000_000_i64), 1_700_000_000_000),
            (json!("2023-11-14T22:13:20.123Z"), 1_700_000_000_123),
            (json!("2023-11-15T06:13:20+08:00"), 1_700_000_000_000),
        ] {
            let mut v = base.clone();
            v["expires_at"] = t;
            let o = order_info(&v).unwrap();
            assert_eq!(o.expires_at_ms, Some(want));
            assert_eq!(o.total_amount.fen(), 8888);
            assert_eq!(o.status, OrderStatus::Pending);
            assert_eq!(o.paid_at_ms, None);
        }
    }

    #[test]
    fn rejects_unreadable_orders() {
        let good = json!({"id": "o", "out_trade_no": "T", "subject": "s", "total_amount": "1.00", "status": "paid"});
        assert!(order_info(&good).is_ok());
        for (k, v) in [
            ("total_amount", json!(1.0)),
            ("total_amount", json!("1.001")),
            ("status", json!("weird")),
            ("id", json!(null)),
        ] {
            let mut o = good.clone();
            o[k] = v;
            assert!(
                matches!(order_info(&o), Err(CheckoutError::BackendUnavailable(_))),
                "{k}"
            );
        }
    }

    #[test]
    fn order_ids_cannot_carry_paths() {
        assert!(path_segment("ord_01HZX-9").is_ok());
        for bad in [
            "",
            "../admin",
            "a/b",
            "a?refresh=true",
            "a%2F",
            &"a".repeat(129),
        ] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), json!(c.as_str()));
        }
        assert_eq!(Channel::parse("PAGE"), None);
    }

    /// A stand-in for the merchant API: checks the key, echoes the contract.
    fn merchant_api() -> Router {
        use axum::extract::Path;
        use axum::http::HeaderMap;
        use axum::routing::{get, post};
        fn authed(h: &HeaderMap) -> bool {
            h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
                == Some("Bearer zk_right_key_123456")
        }
        let unauthorized = || {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": {"code": "unauthorized", "message": "no"}})),
            )
        };
        Router::new()
            .route(
                "/v1/orders",
                post(move |h: HeaderMap, axum::Json(b): axum::Json<Value>| async move {
                    if !authed(&h) {
                        return unauthorized();
                    }
                    assert_eq!(b["total_amount"], "88.88");
                    assert_eq!(b["expires_in_minutes"], 15);
                    assert_eq!(b["metadata"]["sku"], "mug");
                    (
                        StatusCode::CREATED,
                        axum::Json(json!({
                            "id": "ord_1", "out_trade_no": "T1", "subject": b["subject"], "total_amount": "88.88",
                            "status": "pending", "expires_at": "2030-01-01T00:00:00Z", "paid_at": null
                        })),
                    )
                }),
            )
            .route(
                "/v1/orders/{id}",
                get(|Path(id): Path<String>, axum::extract::RawQuery(q): axum::extract::RawQuery| async move {
                    match id.as_str() {
                        "ord_1" => (
                            StatusCode::OK,
                            axum::Json(json!({
                                "id": "ord_1", "out_trade_no": "T1", "subject": "Mug", "total_amount": "88.88",
                                "status": if q.as_deref() == Some("refresh=true") { "paid" } else { "pending" },
                                "expires_at": "2030-01-01T00:00:00Z", "paid_at": null
                            })),
                        ),
                        "ord_boom" => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"error": {"code": "internal_error", "message": "db"}})),
                        ),
                        _ => (
                            StatusCode::NOT_FOUND,
                            axum::Json(json!({"error": {"code": "order_not_found", "message": "no such order"}})),
                        ),
                    }
                }),
            )
            .route(
                "/v1/orders/{id}/pay",
                post(|axum::Json(b): axum::Json<Value>| async move {
                    if b["channel"] == "jsapi" {
                        assert_eq!(b["buyer_id"], "2088000000000001");
                        return (StatusCode::OK, axum::Json(json!({"channel": "jsapi", "trade_no": "2030"})));
                    }
                    (
                        StatusCode::CONFLICT,
                        axum::Json(json!({"error": {"code": "order_not_payable", "message": "paid already"}})),
                    )
                }),
            )
    }

    #[tokio::test]
    async fn router_backend_speaks_the_merchant_api() {
        let b = RouterBackend::new(merchant_api(), "zk_right_key_123456");
        assert!(!format!("{b:?}").contains("zk_right"));
        let req = OrderRequest {
            subject: "Mug".into(),
            body: None,
            total_amount: Amount::parse("88.88").unwrap(),
            expires_in_minutes: Some(15),
            metadata: json!({"sku": "mug"}),
        };
        let o = b.create_order(&req).await.unwrap();
        assert_eq!((o.id.as_str(), o.status), ("ord_1", OrderStatus::Pending));
        assert_eq!(o.expires_at_ms, Some(1_893_456_000_000));
        assert_eq!(
            b.order("ord_1", false).await.unwrap().status,
            OrderStatus::Pending
        );
        assert_eq!(
            b.order("ord_1", true).await.unwrap().status,
            OrderStatus::Paid
        );
        assert!(matches!(
            b.order("ord_2", false).await,
            Err(CheckoutError::OrderNotFound)
        ));
        assert!(matches!(
            b.order("ord_boom", false).await,
            Err(CheckoutError::BackendUnavailable(_))
        ));
        assert!(matches!(
            b.order("../v1/orders", false).await,
            Err(CheckoutError::OrderNotFound)
        ));
        let jsapi = PayRequest {
            buyer_id: Some("2088000000000001".into()),
            ..Default::default()
        };
        assert_eq!(
            b.pay("ord_1", Channel::Jsapi, &jsapi)
                .await
                .unwrap()
                .trade_no
                .as_deref(),
            Some("2030")
        );
        match b.pay("ord_1", Channel::Page, &PayRequest::default()).await {
            Err(CheckoutError::BackendRejected {
                status: 409, code, ..
            }) => assert_eq!(code, "order_not_payable"),
            other => panic!("{other:?}"),
        }
        // A wrong key is our configuration problem, not the buyer's input.
        let wrong = RouterBackend::new(merchant_api(), "zk_wrong_key_1234567");
        assert!(matches!(
            wrong.create_order(&req).await,
            Err(CheckoutError::BackendUnavailable(_))
        ));
    }
}
