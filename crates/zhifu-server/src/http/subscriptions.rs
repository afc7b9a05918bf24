//! Handlers of `/v1/subscriptions…`: read the request strictly, call
//! [`crate::payments::subscriptions`], answer with [`crate::view`].

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use zhifu_store::{Subscription, SubscriptionQuery, SubscriptionStatus};

use super::body::{Fields, JsonObject, canonical_json, created, idempotency_key};
use super::error::{ApiError, ErrorCode};
use super::query::{RawQuery, encode_cursor, only_params, page_after, page_limit, refresh_flag};
use super::schema;
use crate::payments::subscriptions::{
    self as subs, PeriodUnit, SignChannel, SignParams, SubscriptionRequest,
};
use crate::state::AppState;
use crate::view;

fn invalid(msg: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidField, msg)
}

fn with_sign(st: &AppState, sub: &Subscription) -> Result<Value, ApiError> {
    let mut v = view::subscription(sub, None);
    if let Some(p) = subs::sign_params(st, sub)? {
        v["sign"] = match p {
            SignParams::Redirect { url, form_html } => {
                json!({"channel": sub.channel, "url": url, "form_html": form_html})
            }
            SignParams::AppLink(link) => json!({"channel": sub.channel, "app_link": link}),
        };
    }
    Ok(v)
}

/// `POST /v1/subscriptions`.
#[utoipa::path(
    post,
    path = "/v1/subscriptions",
    operation_id = "createSubscription",
    tag = "subscriptions",
    summary = "Create a subscription: the buyer signs an Alipay recurring agreement, then each period is charged",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, description = "Same key and same body answer the first result again (with `Idempotent-Replayed: true`); the same key with another body is 409 `idempotency_key_reused`.")),
    request_body = schema::CreateSubscription,
    responses(
        (status = 201, description = "The subscription, `pending_signature`, with `sign`: what the buyer opens", body = schema::Subscription,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        (status = 409, description = "`idempotency_key_reused`", body = schema::ErrorBody),
    ),
)]
pub async fn create_subscription(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonObject(m): JsonObject,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let f = Fields::new(
        &m,
        &[
            "subject",
            "amount",
            "period",
            "first_charge_date",
            "max_periods",
            "channel",
            "return_url",
            "metadata",
        ],
    )?;
    let period = f
        .object_opt("period")?
        .ok_or_else(|| invalid("`period` is required: {\"unit\": \"month\", \"every\": 1}"))?;
    let pf = Fields::new(&period, &["unit", "every"])?;
    let unit = PeriodUnit::parse(&pf.str_req("unit")?)
        .ok_or_else(|| invalid("`period.unit` must be day or month"))?;
    let every = pf
        .int_opt("every")?
        .ok_or_else(|| invalid("`period.every` is required"))?;
    let first_charge_date = match f.str_opt("first_charge_date")? {
        None => None,
        Some(d) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            Some(
                time::Date::parse(&d, &format)
                    .map_err(|_| invalid("`first_charge_date` must be yyyy-MM-dd"))?,
            )
        }
    };
    let channel = match f.str_opt("channel")? {
        None => SignChannel::Page,
        Some(c) => SignChannel::parse(&c)
            .ok_or_else(|| invalid("`channel` must be one of page, wap, app"))?,
    };
    let req = SubscriptionRequest {
        subject: f.str_req("subject")?,
        amount: f.amount_req("amount")?,
        unit,
        every,
        first_charge_date,
        max_periods: f.int_opt("max_periods")?,
        channel,
        return_url: f.str_opt("return_url")?,
        metadata: f
            .object_opt("metadata")?
            .map(|m| canonical_json(&Value::Object(m))),
        idempotency_key,
    };
    let c = subs::create_subscription(&st, req).await?;
    Ok(created(with_sign(&st, &c.value)?, c.replayed))
}

/// `GET /v1/subscriptions/{id}[?refresh=true]`.
#[utoipa::path(
    get,
    path = "/v1/subscriptions/{id}",
    operation_id = "getSubscription",
    tag = "subscriptions",
    summary = "Get a subscription with its charges",
    params(
        ("id" = String, Path, description = "The subscription id (`sub_…`)."),
        ("refresh" = Option<bool>, Query, description = "Ask Alipay (`alipay.user.agreement.query`) first and apply the signed answer."),
    ),
    responses(
        (status = 200, description = "The subscription, with `charges` (and `sign` while not signed)", body = schema::Subscription),
        (status = 400, description = "`invalid_query`", body = schema::ErrorBody),
        (status = 404, description = "`subscription_not_found`", body = schema::ErrorBody),
        (status = 502, description = "With `refresh`: Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn get_subscription(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = only_params(&q, &["refresh"])?;
    let refresh = refresh_flag(&q)?;
    let mut sub = subs::load(&st, &id).await?;
    if refresh {
        sub = subs::refresh_subscription(&st, sub).await?;
    }
    let charges = st.store().list_subscription_charges(&sub.id).await?;
    let mut v = with_sign(&st, &sub)?;
    v["charges"] = charges.iter().map(|(p, o)| view::charge(*p, o)).collect();
    Ok(Json(v))
}

/// `POST /v1/subscriptions/{id}/cancel`.
#[utoipa::path(
    post,
    path = "/v1/subscriptions/{id}/cancel",
    operation_id = "cancelSubscription",
    tag = "subscriptions",
    summary = "Cancel: unsign the agreement at Alipay, then stop charging",
    params(("id" = String, Path, description = "The subscription id (`sub_…`).")),
    request_body(content = Option<schema::EmptyBody>, description = "Empty, or `{}`"),
    responses(
        (status = 200, description = "The subscription, `canceled`", body = schema::Subscription),
        (status = 404, description = "`subscription_not_found`", body = schema::ErrorBody),
        (status = 409, description = "`subscription_not_cancelable`: completed", body = schema::ErrorBody),
        (status = 502, description = "Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn cancel_subscription(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    Fields::new(&m, &[])?;
    let sub = subs::load(&st, &id).await?;
    let sub = subs::cancel_subscription(&st, sub).await?;
    Ok(Json(view::subscription(&sub, None)))
}

/// `GET /v1/subscriptions?status=&limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/v1/subscriptions",
    operation_id = "listSubscriptions",
    tag = "subscriptions",
    summary = "List subscriptions, newest first",
    params(
        ("status" = Option<schema::SubscriptionStatus>, Query, description = "Only subscriptions in this status"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = schema::SubscriptionList),
        (status = 400, description = "`invalid_query`", body = schema::ErrorBody),
    ),
)]
pub async fn list_subscriptions(
    State(st): State<AppState>,
    q: RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = only_params(&q, &["status", "limit", "cursor"])?;
    let status = match q.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(SubscriptionStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "`status` must be one of pending_signature, active, past_due, canceled, completed",
            )
        })?),
    };
    let limit = page_limit(&q)?;
    let after = page_after(&q)?;
    let mut items = st
        .store()
        .list_subscriptions(&SubscriptionQuery {
            status,
            limit: limit + 1,
            after,
        })
        .await?;
    let more = items.len() as i64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        items.last().map(|s| encode_cursor(s.created_at, &s.id))
    } else {
        None
    };
    Ok(Json(json!({
        "data": items.iter().map(|s| view::subscription(s, None)).collect::<Vec<_>>(),
        "has_more": more,
        "next_cursor": next,
    })))
}
