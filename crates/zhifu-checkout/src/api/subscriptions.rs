//! Subscriptions for buyers: `POST /checkout/subscriptions` (a catalog
//! subscription product → a recurring agreement to sign) and `GET
//! /checkout/subscriptions/{id}` (its status for the result page).
//!
//! The plan and the amount come from the catalog only: the body names a
//! sku and a signing channel, and unknown fields (a `price`, a `period`) are
//! refused. What the result page shows comes from the backend's
//! subscription status, which only verified agreement notifications or a
//! verified `alipay.user.agreement.query` (`?refresh=true`) change.
//!
//! The signing `return_url` cannot carry the checkout id: the backend
//! assigns the subscription id in the same call that takes the
//! `return_url`. It carries `?zhifu_subscription=returned` instead, and
//! `zhifu.js` keeps the id in the browser's storage across the trip to
//! Alipay (`Zhifu.returnedSubscriptionId`).
//!
//! Extra error codes: `not_a_subscription` (the sku is a one-off product;
//! `POST /checkout` sells it), and `POST /checkout` answers
//! `subscription_only` for a subscription product.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use self::schema::{
    CreateSubscriptionCheckout, SubscriptionCheckoutCreated, SubscriptionCheckoutStatus,
};
use super::schema::CheckoutErrorBody;
use super::{ApiError, Peer, StatusQuery, limit, no_store, now_ms};
use crate::CheckoutState;
use crate::backend::{
    Channel, SignChannel, SubscriptionInfo, SubscriptionRequest, SubscriptionStatus,
};
use crate::catalog::CURRENCY;
use crate::error::CheckoutError;

/// The query parameter on the signing `return_url`; its value is only a
/// marker (see the module docs), or a real `cs_` id on `result_url`.
pub const RETURN_PARAM_SUBSCRIPTION: &str = "zhifu_subscription";
const RETURN_MARKER: &str = "returned";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    sku: Value,
    #[serde(default)]
    channel: Option<Value>,
}

/// As `POST /checkout`: only an object, straight into the struct (unknown
/// or repeated fields refused).
fn read_body(body: &[u8]) -> Result<CreateBody, serde_json::Error> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(serde::de::Error::custom("the body must be a JSON object"));
    }
    serde_json::from_slice(body)
}

/// `POST /checkout/subscriptions`.
#[utoipa::path(
    post,
    path = "/checkout/subscriptions",
    operation_id = "createSubscriptionCheckout",
    tag = "checkout",
    summary = "Subscribe: a recurring agreement for a catalog subscription product, and how the buyer signs it",
    request_body = CreateSubscriptionCheckout,
    responses(
        (status = 201, description = "The subscription to sign; `sign` has `url`/`form_html` (page, wap) or `app_link` (app)", body = SubscriptionCheckoutCreated),
        (status = 400, description = "`invalid_request`, `unknown_sku`, `not_a_subscription`, `invalid_channel` or `channel_disabled`", body = CheckoutErrorBody),
        (status = 429, description = "`rate_limited`; wait `Retry-After` seconds", body = CheckoutErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 502, description = "`payment_unavailable`: the backend refused", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`: the backend did not answer", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn create_subscription(
    State(st): State<CheckoutState>,
    peer: Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    limit(&st, &st.inner.create_limiter, &headers, &peer)?;
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    if !json {
        return Err(ApiError::bad(
            "invalid_request",
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    let b = read_body(&body).map_err(|e| {
        ApiError::bad(
            "invalid_request",
            format!("invalid subscription request: {e}"),
        )
    })?;
    let config = st.config();
    let product = b
        .sku
        .as_str()
        .and_then(|sku| config.catalog.get(sku))
        .ok_or_else(|| ApiError::bad("unknown_sku", "no product with this sku"))?;
    let plan = product.subscription.ok_or_else(|| {
        ApiError::bad(
            "not_a_subscription",
            "this product is not a subscription; buy it with POST /checkout",
        )
    })?;
    let channel = match &b.channel {
        None => SignChannel::Page,
        Some(v) => v.as_str().and_then(SignChannel::parse).ok_or_else(|| {
            ApiError::bad("invalid_channel", "channel must be one of page, wap, app")
        })?,
    };
    // The same switch as for payments: a shop without app payments has no
    // app signing either.
    let offered = Channel::parse(channel.as_str()).is_some_and(|c| config.channels.contains(&c));
    if !offered {
        return Err(ApiError::bad(
            "channel_disabled",
            format!("channel {} is not offered here", channel.as_str()),
        ));
    }
    let return_url = format!(
        "{}/checkout/result?{RETURN_PARAM_SUBSCRIPTION}={RETURN_MARKER}",
        config.public_url
    );
    let created = st
        .inner
        .backend
        .create_subscription(&SubscriptionRequest {
            subject: product.name.zh.clone(),
            amount: product.price,
            plan,
            channel,
            return_url: (channel != SignChannel::App).then_some(return_url),
            metadata: json!({
                "source": "checkout",
                "sku": product.sku,
                "channel": channel.as_str(),
            }),
        })
        .await?;
    let s = &created.subscription;
    let checkout_id = st.inner.secret.seal_subscription(&s.id);
    let missing = |what: &str| {
        tracing::error!(
            channel = channel.as_str(),
            what,
            "checkout: subscription answer lacks a field"
        );
        ApiError::from(CheckoutError::BackendUnavailable(format!(
            "subscription answer has no {what}"
        )))
    };
    let sign = match channel {
        SignChannel::Page | SignChannel::Wap => {
            if created.sign.url.is_none() && created.sign.form_html.is_none() {
                return Err(missing("sign.url"));
            }
            json!({"channel": channel.as_str(), "url": created.sign.url, "form_html": created.sign.form_html})
        }
        SignChannel::App => {
            let link = created
                .sign
                .app_link
                .clone()
                .ok_or_else(|| missing("sign.app_link"))?;
            json!({"channel": "app", "app_link": link})
        }
    };
    let mut out = buyer_view(&checkout_id, s, now_ms());
    out["sku"] = json!(product.sku);
    out["channel"] = json!(channel.as_str());
    out["status_url"] = json!(format!(
        "{}/checkout/subscriptions/{checkout_id}",
        config.public_url
    ));
    out["result_url"] = json!(format!(
        "{}/checkout/result?{RETURN_PARAM_SUBSCRIPTION}={checkout_id}",
        config.public_url
    ));
    out["sign"] = sign;
    tracing::info!(channel = channel.as_str(), sku = %product.sku, "subscription checkout created");
    let mut r = (StatusCode::CREATED, Json(out)).into_response();
    no_store(r.headers_mut());
    Ok(r)
}

/// `GET /checkout/subscriptions/{id}`: the status, and only what the buyer
/// already saw.
#[utoipa::path(
    get,
    path = "/checkout/subscriptions/{id}",
    operation_id = "getSubscriptionCheckout",
    tag = "checkout",
    summary = "A subscription's status for the buyer (from the backend's verified state only)",
    params(
        ("id" = String, Path, description = "The checkout id from `POST /checkout/subscriptions` (`cs_…`)"),
        ("refresh" = Option<bool>, Query, description = "Ask Alipay (a verified agreement query) before answering"),
    ),
    responses(
        (status = 200, description = "The status", body = SubscriptionCheckoutStatus),
        (status = 404, description = "`checkout_not_found`", body = CheckoutErrorBody),
        (status = 429, description = "`rate_limited`; wait `Retry-After` seconds", body = CheckoutErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 502, description = "`payment_unavailable`", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn subscription_status(
    State(st): State<CheckoutState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<StatusQuery>,
) -> Result<Response, ApiError> {
    limit(&st, &st.inner.status_limiter, &headers, &peer)?;
    let subscription_id = st
        .inner
        .secret
        .open_subscription(&id)
        .ok_or_else(ApiError::not_found)?;
    let refresh = matches!(q.refresh.as_deref(), Some("true" | "1"));
    let s = st
        .inner
        .backend
        .subscription(&subscription_id, refresh)
        .await?;
    let mut r = Json(buyer_view(&id, &s, now_ms())).into_response();
    no_store(r.headers_mut());
    Ok(r)
}

/// What the buyer may see: no agreement numbers, no metadata.
fn buyer_view(checkout_id: &str, s: &SubscriptionInfo, now: i64) -> Value {
    json!({
        "checkout_id": checkout_id,
        "status": s.status.as_str(),
        "active": s.status == SubscriptionStatus::Active,
        "subject": s.subject,
        "amount": s.amount.to_string(),
        "currency": CURRENCY,
        "period": {"unit": s.plan.unit.as_str(), "every": s.plan.every},
        "max_periods": s.plan.max_periods,
        "periods_charged": s.periods_charged,
        "first_charge_date": s.first_charge_date,
        "next_charge_date": s.next_charge_date,
        "activated_at": s.activated_at_ms,
        "canceled_at": s.canceled_at_ms,
        "now": now,
    })
}

/// These routes, merged into [`super::routes`].
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<CheckoutState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create_subscription))
        .routes(routes!(subscription_status))
}

/// The JSON shapes, for the document only (the handlers answer with
/// `json!`; a test checks real answers against these).
#[allow(dead_code, missing_docs)]
pub(crate) mod schema {
    use serde::Deserialize;
    use utoipa::ToSchema;

    use super::super::schema::Money;

    /// A subscription's period: `every` `unit`s.
    #[derive(Debug, ToSchema)]
    pub struct SubscriptionPeriod {
        /// `month` or `day`.
        #[schema(example = "month")]
        unit: String,
        #[schema(minimum = 1)]
        every: u32,
    }

    /// `POST /checkout/subscriptions`: no price and no plan, which come
    /// from the catalog only.
    #[derive(Debug, ToSchema, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct CreateSubscriptionCheckout {
        /// A catalog product with a `subscription` plan.
        sku: String,
        /// How the buyer signs: `page` (default), `wap` or `app`.
        channel: Option<String>,
    }

    /// How the buyer signs.
    #[derive(Debug, ToSchema)]
    pub struct SubscriptionSign {
        /// `page`, `wap` or `app`.
        channel: String,
        /// page/wap: the signing URL (zhifu.js navigates to it).
        url: Option<String>,
        /// page/wap: the same as an auto-submitting form.
        form_html: Option<String>,
        /// app: the `alipays://` link for the Alipay app.
        app_link: Option<String>,
    }

    /// The answer to `GET /checkout/subscriptions/{id}`.
    #[derive(Debug, ToSchema)]
    pub struct SubscriptionCheckoutStatus {
        /// Opaque and unforgeable (`cs_…`).
        checkout_id: String,
        /// `pending_signature`, `active`, `past_due`, `canceled` or `completed`.
        status: String,
        /// `status` is `active`.
        active: bool,
        subject: String,
        /// Charged each period.
        amount: Money,
        currency: String,
        period: SubscriptionPeriod,
        /// At most this many periods are charged; null: until cancelled.
        max_periods: Option<u32>,
        periods_charged: u32,
        /// `yyyy-MM-dd` (Beijing date).
        first_charge_date: Option<String>,
        /// `yyyy-MM-dd` (Beijing date), while a charge is due.
        next_charge_date: Option<String>,
        /// Unix milliseconds.
        activated_at: Option<i64>,
        /// Unix milliseconds.
        canceled_at: Option<i64>,
        /// The server's clock, Unix milliseconds.
        now: i64,
    }

    /// The answer to `POST /checkout/subscriptions`.
    #[derive(Debug, ToSchema)]
    pub struct SubscriptionCheckoutCreated {
        checkout_id: String,
        /// `pending_signature` on creation.
        status: String,
        active: bool,
        subject: String,
        amount: Money,
        currency: String,
        period: SubscriptionPeriod,
        max_periods: Option<u32>,
        periods_charged: u32,
        first_charge_date: Option<String>,
        next_charge_date: Option<String>,
        activated_at: Option<i64>,
        canceled_at: Option<i64>,
        now: i64,
        sku: String,
        /// `page`, `wap` or `app`.
        channel: String,
        /// Absolute URL of `GET /checkout/subscriptions/{id}`.
        status_url: String,
        /// The storefront's result page for this subscription.
        result_url: String,
        sign: SubscriptionSign,
    }
}
