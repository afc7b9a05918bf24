//! The public checkout API for browsers: `POST /checkout`, `GET
//! /checkout/{id}`, `GET /checkout/catalog`.
//!
//! Errors are `{"error":{"code","message"}}` like the merchant API's, with
//! these stable codes: `invalid_request`, `unknown_sku`, `invalid_quantity`,
//! `invalid_channel`, `channel_disabled`, `invalid_return_url`,
//! `buyer_not_accepted`, `authorization_required` (401), `invalid_return_path`,
//! `authorization_failed` (see `api/authorize.rs`), `rate_limited` (429, with `Retry-After`), `checkout_not_found` (404),
//! `order_not_payable` (409), `payment_unavailable` (502/503).

use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use self::schema::{
    CatalogAnswer, CheckoutCreated, CheckoutErrorBody, CheckoutStatus, CreateCheckout,
};
use crate::backend::{Channel, OrderInfo, OrderRequest, OrderStatus, PayRequest};
use crate::catalog::CURRENCY;
use crate::error::CheckoutError;
use crate::ratelimit::{RateLimiter, client_ip};
use crate::{CheckoutState, qr};

mod authorize;
mod subscriptions;
pub use self::subscriptions::RETURN_PARAM_SUBSCRIPTION;

/// The query parameter that carries the checkout id back on `return_url`.
pub const RETURN_PARAM: &str = "zhifu_checkout";
/// QR images are at least this wide (CSS scales them down on small screens).
const QR_MIN_PX: u32 = 264;
/// The backend (and Alipay) take a `return_url` of at most 256 characters,
/// and ours carries the checkout id.
const MAX_RETURN_URL: usize = 256;
/// Room left for `&zhifu_checkout=<id>` when checking a caller's
/// `return_url` up front: ids of order ids up to 40 characters fit (the
/// backend's are 36).
const RETURN_ID_ROOM: usize = 100;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "checkout_not_found",
            "no such checkout",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        no_store(r.headers_mut());
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// Backend failures as the buyer's browser may see them: never the
/// backend's internals, which go to the log.
impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::OrderNotFound => ApiError::not_found(),
            CheckoutError::BackendRejected {
                status: 409, code, ..
            } => {
                tracing::info!(%code, "checkout: order not payable");
                ApiError::new(
                    StatusCode::CONFLICT,
                    "order_not_payable",
                    "this order can no longer be paid; start a new checkout",
                )
            }
            other => {
                tracing::error!(error = %other, "checkout: payment backend failed");
                let status = match other {
                    CheckoutError::BackendRejected { .. } => StatusCode::BAD_GATEWAY,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                };
                ApiError::new(
                    status,
                    "payment_unavailable",
                    "payment is unavailable right now; please try again shortly",
                )
            }
        }
    }
}

fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn limit(
    st: &CheckoutState,
    limiter: &RateLimiter,
    headers: &HeaderMap,
    peer: &Peer,
) -> Result<(), ApiError> {
    let ip = client_ip(
        headers,
        peer.as_ref().map(|Extension(c)| c),
        st.config().trusted_proxy_hops,
    )
    // Unknown clients share one bucket keyed by the unspecified address.
    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    limiter.check(ip, Instant::now()).map_err(|wait| {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; wait a moment and try again",
        );
        e.retry_after = Some(wait.as_secs().max(1));
        e
    })
}

/// `GET /checkout/catalog`.
#[utoipa::path(
    get,
    path = "/checkout/catalog",
    operation_id = "checkoutCatalog",
    tag = "checkout",
    summary = "The products and the channels offered",
    responses((status = 200, description = "The catalog", body = CatalogAnswer)),
)]
pub(crate) async fn catalog(State(st): State<CheckoutState>) -> Response {
    let c = st.config();
    let products: Vec<Value> = c
        .catalog
        .products()
        .iter()
        .map(|p| {
            json!({
                "sku": p.sku,
                "name": p.name,
                "description": p.description,
                "price": p.price.to_string(),
                "max_quantity": p.max_quantity,
                "subscription": p.subscription,
            })
        })
        .collect();
    let channels: Vec<&str> = c.channels.iter().map(|c| c.as_str()).collect();
    // The checkout obtains the jsapi buyer through user authorization
    // (`crate::authorize`), so a page never needs one; kept for pages that
    // read it.
    let jsapi_needs_buyer_id = false;
    let mut r = Json(json!({
        "currency": CURRENCY,
        "products": products,
        "channels": channels,
        "jsapi_needs_buyer_id": jsapi_needs_buyer_id,
    }))
    .into_response();
    no_store(r.headers_mut());
    r
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    sku: Value,
    quantity: Value,
    channel: Value,
    #[serde(default)]
    return_url: Option<String>,
    #[serde(default)]
    buyer_id: Option<String>,
    #[serde(default)]
    buyer_open_id: Option<String>,
}

/// Straight into the struct: serde refuses unknown fields ("unknown field
/// `price`" for a browser trying to set one) and a field given twice, which
/// a detour through `Value` would silently resolve. Only an object: serde
/// would also fill the struct from an array, by position
/// (`["mug",1,"page"]`; found by `fuzz/fuzz_targets/checkout_body.rs`).
fn read_create_body(body: &[u8]) -> Result<CreateBody, serde_json::Error> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(serde::de::Error::custom("the body must be a JSON object"));
    }
    serde_json::from_slice(body)
}

/// The `POST /checkout` body as the handler reads it, back as JSON, for the
/// fuzz targets (`fuzz/`).
///
/// # Errors
/// What the handler answers `invalid_request` with.
#[doc(hidden)]
pub fn parse_create_body(body: &[u8]) -> Result<Value, serde_json::Error> {
    let b = read_create_body(body)?;
    Ok(json!({
        "sku": b.sku,
        "quantity": b.quantity,
        "channel": b.channel,
        "return_url": b.return_url,
        "buyer_id": b.buyer_id,
        "buyer_open_id": b.buyer_open_id,
    }))
}

/// `POST /checkout`.
#[utoipa::path(
    post,
    path = "/checkout",
    operation_id = "createCheckout",
    tag = "checkout",
    summary = "Create a checkout: an order priced from the catalog and its payment parameters",
    request_body = CreateCheckout,
    responses(
        (status = 201, description = "What the browser needs; the fields present depend on the channel", body = CheckoutCreated),
        (status = 400, description = "`invalid_request`, `unknown_sku`, `subscription_only`, `invalid_quantity`, `invalid_channel`, `channel_disabled`, `invalid_return_url` or `buyer_not_accepted` (a buyer id in the body: never taken from the page)", body = CheckoutErrorBody),
        (status = 401, description = "`authorization_required`: jsapi without the buyer's Alipay authorization (`/checkout/authorize`)", body = CheckoutErrorBody),
        (status = 409, description = "`order_not_payable`", body = CheckoutErrorBody),
        (status = 429, description = "`rate_limited`; wait `Retry-After` seconds", body = CheckoutErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 502, description = "`payment_unavailable`: the backend refused", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`: the backend did not answer", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn create(
    State(st): State<CheckoutState>,
    peer: Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    limit(&st, &st.inner.create_limiter, &headers, &peer)?;
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return Err(ApiError::bad(
            "invalid_request",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    let b = read_create_body(&body)
        .map_err(|e| ApiError::bad("invalid_request", format!("invalid checkout request: {e}")))?;
    let config = st.config();

    let sku = b
        .sku
        .as_str()
        .ok_or_else(|| ApiError::bad("unknown_sku", "sku must be a string"))?;
    let product = config
        .catalog
        .get(sku)
        .ok_or_else(|| ApiError::bad("unknown_sku", "no product with this sku"))?;
    if product.subscription.is_some() {
        return Err(ApiError::bad(
            "subscription_only",
            "this product is a subscription; subscribe with POST /checkout/subscriptions",
        ));
    }
    let quantity = b
        .quantity
        .as_u64()
        .filter(|q| (1..=u64::from(product.max_quantity)).contains(q))
        .and_then(|q| u32::try_from(q).ok())
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_quantity",
                format!(
                    "quantity must be a whole number from 1 to {}",
                    product.max_quantity
                ),
            )
        })?;
    let channel = b.channel.as_str().and_then(Channel::parse).ok_or_else(|| {
        ApiError::bad(
            "invalid_channel",
            "channel must be one of page, wap, qr, app, jsapi",
        )
    })?;
    if !config.channels.contains(&channel) {
        return Err(ApiError::bad(
            "channel_disabled",
            format!("channel {} is not offered here", channel.as_str()),
        ));
    }
    let return_base = match &b.return_url {
        Some(u) => {
            let parsed = Url::parse(u)
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https"))
                .ok_or_else(|| {
                    ApiError::bad(
                        "invalid_return_url",
                        "return_url must be an absolute http(s) URL",
                    )
                })?;
            if parsed.as_str().len() + RETURN_ID_ROOM > MAX_RETURN_URL {
                return Err(ApiError::bad(
                    "invalid_return_url",
                    format!(
                        "return_url must be at most {} characters",
                        MAX_RETURN_URL - RETURN_ID_ROOM
                    ),
                ));
            }
            if !config.return_url_allowed(&parsed) {
                return Err(ApiError::bad(
                    "invalid_return_url",
                    "return_url must point to this site or an origin the merchant allowed",
                ));
            }
            parsed
        }
        None => Url::parse(&format!("{}/checkout/result", config.public_url))
            .map_err(|_| ApiError::from(CheckoutError::config("ZHIFU_PUBLIC_URL", "not a URL")))?,
    };
    // The buyer of a jsapi trade comes from Alipay user authorization (the
    // sealed cookie `crate::authorize` sets), never from the page.
    if b.buyer_id.is_some() || b.buyer_open_id.is_some() {
        return Err(ApiError::bad(
            "buyer_not_accepted",
            "the buyer is never taken from the request: inside the Alipay app, authorize \
             first (GET /checkout/authorize or POST /checkout/authorize/code)",
        ));
    }
    let (buyer_id, buyer_open_id) = if channel == Channel::Jsapi {
        match crate::authorize::buyer_from_cookies(&st.inner.secret, &headers, now_ms()) {
            Some(alipay::BuyerId::OpenId(id)) => (None, Some(id)),
            Some(alipay::BuyerId::UserId(id)) => (Some(id), None),
            _ => match &config.dev_buyer_id {
                Some(dev) => (Some(dev.clone()), None),
                None => {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "authorization_required",
                        "channel jsapi needs the buyer's Alipay authorization first: \
                         GET /checkout/authorize?return=<this page>, or POST \
                         /checkout/authorize/code with the app bridge's getAuthCode",
                    ));
                }
            },
        }
    } else {
        (None, None)
    };
    let total = product.total(quantity).ok_or_else(|| {
        ApiError::bad(
            "invalid_quantity",
            "the total is larger than Alipay accepts",
        )
    })?;

    let order = st
        .inner
        .backend
        .create_order(&OrderRequest {
            subject: product.subject(quantity),
            body: Some(product.name.en.clone()),
            total_amount: total,
            expires_in_minutes: Some(config.order_expiry_minutes),
            metadata: json!({
                "source": "checkout",
                "sku": product.sku,
                "quantity": quantity,
                "channel": channel.as_str(),
            }),
        })
        .await?;
    let checkout_id = st.inner.secret.seal(&order.id);
    let mut return_url = return_base;
    return_url
        .query_pairs_mut()
        .append_pair(RETURN_PARAM, &checkout_id);
    if channel.redirects() && return_url.as_str().len() > MAX_RETURN_URL {
        // Only for unusually long backend order ids (the up-front check
        // reserved room for ours); the order simply expires unpaid.
        return Err(ApiError::bad(
            "invalid_return_url",
            format!(
                "return_url is too long (at most {MAX_RETURN_URL} characters with the checkout id)"
            ),
        ));
    }
    let pay = st
        .inner
        .backend
        .pay(
            &order.id,
            channel,
            &PayRequest {
                return_url: channel.redirects().then(|| return_url.to_string()),
                buyer_id,
                buyer_open_id,
            },
        )
        .await?;

    let mut out = json!({
        "checkout_id": checkout_id,
        "channel": channel.as_str(),
        "status": order.status.for_buyer(),
        "out_trade_no": order.out_trade_no,
        "sku": product.sku,
        "quantity": quantity,
        "subject": order.subject,
        "total_amount": order.total_amount.to_string(),
        "currency": CURRENCY,
        "expires_at": order.expires_at_ms,
        "now": now_ms(),
        "status_url": format!("{}/checkout/{checkout_id}", config.public_url),
        "result_url": result_url(&config.public_url, &checkout_id),
    });
    let missing = |what: &str| {
        tracing::error!(
            channel = channel.as_str(),
            what,
            "checkout: backend answer lacks a field"
        );
        ApiError::from(CheckoutError::BackendUnavailable(format!(
            "pay answer has no {what}"
        )))
    };
    match channel {
        Channel::Page | Channel::Wap => {
            if pay.url.is_none() && pay.form_html.is_none() {
                return Err(missing("url"));
            }
            out["url"] = json!(pay.url);
            out["form_html"] = json!(pay.form_html);
        }
        Channel::Qr => {
            let code = pay.qr_code.ok_or_else(|| missing("qr_code"))?;
            let svg = qr::svg(&code, QR_MIN_PX).ok_or_else(|| missing("renderable qr_code"))?;
            out["qr_code"] = json!(code);
            out["qr_svg"] = json!(svg);
        }
        Channel::App => {
            out["order_string"] = json!(pay.order_string.ok_or_else(|| missing("order_string"))?)
        }
        Channel::Jsapi => out["trade_no"] = json!(pay.trade_no.ok_or_else(|| missing("trade_no"))?),
    }
    tracing::info!(channel = channel.as_str(), sku = %product.sku, quantity, "checkout created");
    let mut r = (StatusCode::CREATED, Json(out)).into_response();
    no_store(r.headers_mut());
    Ok(r)
}

fn result_url(public_url: &str, checkout_id: &str) -> String {
    format!("{public_url}/checkout/result?{RETURN_PARAM}={checkout_id}")
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusQuery {
    #[serde(default)]
    refresh: Option<String>,
}

/// `GET /checkout/{id}`: the status, and only what the buyer already saw.
#[utoipa::path(
    get,
    path = "/checkout/{id}",
    operation_id = "getCheckout",
    tag = "checkout",
    summary = "A checkout's status, and only what the buyer already saw",
    params(
        ("id" = String, Path, description = "The checkout id from `POST /checkout`"),
        ("refresh" = Option<bool>, Query, description = "Ask Alipay (a verified query) before answering"),
    ),
    responses(
        (status = 200, description = "The status", body = CheckoutStatus),
        (status = 404, description = "`checkout_not_found`", body = CheckoutErrorBody),
        (status = 429, description = "`rate_limited`; wait `Retry-After` seconds", body = CheckoutErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 502, description = "`payment_unavailable`", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn status(
    State(st): State<CheckoutState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    limit(&st, &st.inner.status_limiter, &headers, &peer)?;
    let order_id = st.inner.secret.open(&id).ok_or_else(ApiError::not_found)?;
    let refresh = matches!(q.refresh.as_deref(), Some("true" | "1"));
    let order = st.inner.backend.order(&order_id, refresh).await?;
    let mut r = Json(status_json(&id, &order, now_ms())).into_response();
    no_store(r.headers_mut());
    Ok(r)
}

pub(crate) fn status_json(checkout_id: &str, o: &OrderInfo, now: i64) -> Value {
    let expired = o.status == OrderStatus::Pending && o.expires_at_ms.is_some_and(|e| e <= now);
    json!({
        "checkout_id": checkout_id,
        "status": o.status.for_buyer(),
        "paid": matches!(o.status, OrderStatus::Paid | OrderStatus::Refunded),
        "expired": expired,
        "subject": o.subject,
        "total_amount": o.total_amount.to_string(),
        "currency": CURRENCY,
        "expires_at": o.expires_at_ms,
        "paid_at": o.paid_at_ms,
        "now": now,
    })
}

/// The checkout API's routes, declared once for the router
/// ([`crate::router`]) and for the document ([`openapi`]).
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<CheckoutState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(catalog))
        .routes(routes!(status))
        .merge(subscriptions::routes())
        .merge(authorize::routes())
}

/// The checkout API as OpenAPI paths and schemas, for the document the
/// backend serves at `/openapi.json` when both run in one process
/// (`zhifu_server::http::router_with_api_docs`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The JSON shapes of the checkout API, for the document only: the
/// handlers build their answers with `json!`, and the OpenAPI test in
/// `zhifu-server` checks real answers against these.
#[allow(dead_code, missing_docs)]
mod schema {
    use serde::Deserialize;
    use utoipa::ToSchema;

    /// Yuan as a decimal string.
    #[derive(Debug, ToSchema, Deserialize)]
    #[schema(value_type = String, pattern = r"^[0-9]{1,9}(\.[0-9]{1,2})?$", example = "88.88")]
    pub struct Money(String);

    /// A checkout error: `{"error":{"code","message"}}`.
    #[derive(Debug, ToSchema)]
    #[schema(as = CheckoutError)]
    pub struct CheckoutErrorBody {
        error: CheckoutErrorDetail,
    }

    /// The code to branch on and a message for people.
    #[derive(Debug, ToSchema)]
    pub struct CheckoutErrorDetail {
        #[schema(example = "unknown_sku")]
        code: String,
        message: String,
    }

    /// A text in both languages the pages speak.
    #[derive(Debug, ToSchema)]
    pub struct LocalizedText {
        zh: String,
        en: String,
    }

    /// A product.
    #[derive(Debug, ToSchema)]
    pub struct CatalogProduct {
        sku: String,
        name: LocalizedText,
        description: Option<LocalizedText>,
        price: Money,
        max_quantity: u32,
        /// Set for a subscription product (sold only through `POST
        /// /checkout/subscriptions`): `price` is charged every `every`
        /// `unit`s, at most `max_periods` times (null: until cancelled).
        subscription: Option<CatalogPlan>,
    }

    /// A subscription product's plan.
    #[derive(Debug, ToSchema)]
    pub struct CatalogPlan {
        /// `month` or `day`.
        #[schema(example = "month")]
        unit: String,
        #[schema(minimum = 1)]
        every: u32,
        max_periods: Option<u32>,
    }

    /// `GET /checkout/catalog`.
    #[derive(Debug, ToSchema)]
    pub struct CatalogAnswer {
        #[schema(example = "CNY")]
        currency: String,
        products: Vec<CatalogProduct>,
        /// `page`, `wap`, `qr`, `app`, `jsapi`.
        channels: Vec<String>,
        /// Always false: the checkout obtains the jsapi buyer through Alipay
        /// user authorization (`/checkout/authorize`).
        jsapi_needs_buyer_id: bool,
    }

    /// `POST /checkout`: no price, which comes from the catalog only.
    #[derive(Debug, ToSchema, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CreateCheckout {
        sku: String,
        #[schema(minimum = 1)]
        quantity: u32,
        /// `page`, `wap`, `qr`, `app` or `jsapi`.
        channel: String,
        /// page/wap: where the buyer lands (absolute http(s)); the checkout
        /// id is appended.
        return_url: Option<String>,
    }

    /// The answer to `POST /checkout`.
    #[derive(Debug, ToSchema)]
    pub struct CheckoutCreated {
        /// Opaque and unforgeable; the only handle the browser holds.
        checkout_id: String,
        channel: String,
        status: String,
        out_trade_no: String,
        sku: String,
        quantity: u32,
        subject: String,
        total_amount: Money,
        currency: String,
        /// Unix milliseconds.
        expires_at: Option<i64>,
        /// The server's clock, Unix milliseconds (for the countdown).
        now: i64,
        status_url: String,
        result_url: String,
        /// page/wap.
        url: Option<String>,
        /// page/wap.
        form_html: Option<String>,
        /// qr.
        qr_code: Option<String>,
        /// qr: the code as an SVG image.
        qr_svg: Option<String>,
        /// app.
        order_string: Option<String>,
        /// jsapi.
        trade_no: Option<String>,
    }

    /// The answer to `GET /checkout/{id}`.
    #[derive(Debug, ToSchema)]
    pub struct CheckoutStatus {
        checkout_id: String,
        /// `pending`, `paid`, `closed` or `refunded`.
        status: String,
        paid: bool,
        expired: bool,
        subject: String,
        total_amount: Money,
        currency: String,
        /// Unix milliseconds.
        expires_at: Option<i64>,
        /// Unix milliseconds.
        paid_at: Option<i64>,
        now: i64,
    }
}
