//! Handlers of the merchant API (`/v1/orders…`): read the request strictly,
//! call [`crate::payments`] (or read the store), answer with
//! [`crate::view`]. No payment decision is made here, and nothing here
//! changes the store's state except through `payments`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use zhifu_store::{OrderQuery, OrderStatus};

use super::body::{Fields, JsonObject, canonical_json, created, idempotency_key};
use super::error::{ApiError, ErrorCode};
use super::query::{RawQuery, encode_cursor, only_params, page_after, page_limit, refresh_flag};
use super::schema;
use crate::domain::Channel;
use crate::payments::{self, OrderRequest, PayParams, PayRequest, RefundRequest};
use crate::state::AppState;
use crate::view;

/// `POST /v1/orders`.
#[utoipa::path(
    post,
    path = "/v1/orders",
    operation_id = "createOrder",
    tag = "orders",
    summary = "Create an order",
    params(("Idempotency-Key" = Option<String>, Header, max_length = 255, description = "Same key and same body answer the first result again (with `Idempotent-Replayed: true`); the same key with another body is 409 `idempotency_key_reused`.")),
    request_body = schema::CreateOrder,
    responses(
        (status = 201, description = "The order", body = schema::Order,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        (status = 409, description = "`idempotency_key_reused` or `out_trade_no_taken`", body = schema::ErrorBody),
    ),
)]
pub async fn create_order(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonObject(m): JsonObject,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let f = Fields::new(
        &m,
        &[
            "subject",
            "total_amount",
            "body",
            "out_trade_no",
            "expires_in_minutes",
            "metadata",
        ],
    )?;
    let req = OrderRequest {
        subject: f.str_req("subject")?,
        total: f.amount_req("total_amount")?,
        body: f.str_opt("body")?,
        out_trade_no: f.str_opt("out_trade_no")?,
        expires_in_minutes: f.int_opt("expires_in_minutes")?,
        metadata: f
            .object_opt("metadata")?
            .map(|m| canonical_json(&Value::Object(m))),
        idempotency_key,
    };
    let c = payments::create_order(&st, req).await?;
    Ok(created(view::order(&c.value), c.replayed))
}

/// `GET /v1/orders/{id}[?refresh=true]`.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    operation_id = "getOrder",
    tag = "orders",
    summary = "Get an order",
    params(
        ("id" = String, Path, description = "The order id (`ord_…`)."),
        ("refresh" = Option<bool>, Query, description = "On a pending order, ask Alipay (`alipay.trade.query`) and apply the verified answer; close it when expired."),
    ),
    responses(
        (status = 200, description = "The order", body = schema::Order),
        (status = 400, description = "`invalid_query`", body = schema::ErrorBody),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
        (status = 502, description = "With `refresh`: Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn get_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = only_params(&q, &["refresh"])?;
    let refresh = refresh_flag(&q)?;
    let mut order = payments::load(&st, &id).await?;
    if refresh {
        order = payments::refresh_order(&st, order).await?;
    }
    Ok(Json(view::order(&order)))
}

/// `POST /v1/orders/{id}/close`.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/close",
    operation_id = "closeOrder",
    tag = "orders",
    summary = "Close a pending order at Alipay and locally",
    params(("id" = String, Path, description = "The order id (`ord_…`).")),
    request_body(content = Option<schema::EmptyBody>, description = "Empty, or `{}`"),
    responses(
        (status = 200, description = "The order: `closed` (final) or `closing` (the buyer may still hold live payment parameters)", body = schema::Order),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
        (status = 409, description = "`order_not_closable`: paid or refunded", body = schema::ErrorBody),
        (status = 502, description = "Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn close_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    Fields::new(&m, &[])?;
    let order = payments::load(&st, &id).await?;
    let order = payments::close_order(&st, order).await?;
    Ok(Json(view::order(&order)))
}

/// `POST /v1/orders/{id}/pay`.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/pay",
    operation_id = "payOrder",
    tag = "orders",
    summary = "Payment parameters for a channel",
    params(("id" = String, Path, description = "The order id (`ord_…`).")),
    request_body = schema::Pay,
    responses(
        (status = 200, description = "What the buyer's device needs", body = schema::PayParams),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
        (status = 409, description = "`order_not_payable` or `order_expired`", body = schema::ErrorBody),
        (status = 502, description = "Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn pay_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&m, &["channel", "return_url", "buyer_id", "buyer_open_id"])?;
    let channel = f.str_req("channel")?;
    let channel = Channel::parse(&channel).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidField,
            "`channel` must be one of page, wap, qr, app, jsapi",
        )
    })?;
    let req = PayRequest {
        channel,
        return_url: f.str_opt("return_url")?,
        buyer_id: f.str_opt("buyer_id")?,
        buyer_open_id: f.str_opt("buyer_open_id")?,
    };
    let params = payments::pay(&st, &id, req).await?;
    let mut out = json!({ "channel": channel.as_str() });
    match params {
        PayParams::Redirect { url, form_html } => {
            out["url"] = json!(url);
            out["form_html"] = json!(form_html);
        }
        PayParams::QrCode(c) => out["qr_code"] = json!(c),
        PayParams::OrderString(s) => out["order_string"] = json!(s),
        PayParams::TradeNo(t) => out["trade_no"] = json!(t),
    }
    Ok(Json(out))
}

/// `POST /v1/orders/{id}/refunds`.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refunds",
    operation_id = "createRefund",
    tag = "refunds",
    summary = "Refund an order, partially or fully",
    params(("id" = String, Path, description = "The order id (`ord_…`)."), ("Idempotency-Key" = Option<String>, Header, max_length = 255, description = "Same key and same body answer the first result again (with `Idempotent-Replayed: true`); the same key with another body is 409 `idempotency_key_reused`.")),
    request_body = schema::CreateRefund,
    responses(
        (status = 201, description = "The refund; `pending` when Alipay's answer was not definite", body = schema::Refund,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the first answer again"))),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
        (status = 409, description = "`order_not_refundable`, `refund_exceeds_remaining` or `idempotency_key_reused`", body = schema::ErrorBody),
        (status = 502, description = "Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn refund_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonObject(m): JsonObject,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let f = Fields::new(&m, &["amount", "reason"])?;
    let amount = f.amount_req("amount")?;
    let reason = f.str_opt("reason")?;
    if reason.as_ref().is_some_and(|r| r.chars().count() > 256) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            "`reason` is longer than 256 characters",
        ));
    }
    let req = RefundRequest {
        amount,
        reason,
        idempotency_key,
    };
    let c = payments::create_refund(&st, &id, req).await?;
    Ok(created(view::refund(&c.value), c.replayed))
}

/// `GET /v1/orders?status=&limit=&cursor=`.
#[utoipa::path(
    get,
    path = "/v1/orders",
    operation_id = "listOrders",
    tag = "orders",
    summary = "List orders, newest first",
    params(
        ("status" = Option<schema::OrderStatus>, Query, description = "Only orders in this status"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = schema::OrderList),
        (status = 400, description = "`invalid_query`", body = schema::ErrorBody),
    ),
)]
pub async fn list_orders(State(st): State<AppState>, q: RawQuery) -> Result<Json<Value>, ApiError> {
    let q = only_params(&q, &["status", "limit", "cursor"])?;
    let status = match q.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "`status` must be one of pending, paid, closed, refunded",
            )
        })?),
    };
    let limit = page_limit(&q)?;
    let after = page_after(&q)?;
    let mut orders = st
        .store()
        .list_orders(&OrderQuery {
            status,
            limit: limit + 1,
            after,
        })
        .await?;
    let more = orders.len() as i64 > limit;
    orders.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more {
        orders.last().map(|o| encode_cursor(o.created_at, &o.id))
    } else {
        None
    };
    Ok(Json(json!({
        "data": orders.iter().map(view::order).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// `GET /v1/orders/{id}/events`: the order's state changes with their
/// webhook delivery state and attempts, oldest first.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/events",
    operation_id = "listOrderEvents",
    tag = "events",
    summary = "The order's state changes, oldest first, with their webhook deliveries",
    params(("id" = String, Path, description = "The order id (`ord_…`).")),
    responses(
        (status = 200, description = "The events", body = schema::OrderEventList),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
    ),
)]
pub async fn order_events(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = payments::load(&st, &id).await?;
    let mut data = Vec::new();
    for e in st.store().list_events(&order.id).await? {
        let attempts = st.store().list_delivery_attempts(&e.id).await?;
        data.push(view::event(&e, &attempts));
    }
    Ok(Json(view::list(data)))
}

/// `GET /v1/events?limit=N` (1–100, default 20): the newest order events
/// of all orders, newest first, each as the exact payload its webhook
/// carries (what `zhifu listen` forwards).
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    tag = "events",
    summary = "The newest events of all orders and subscriptions, newest first, each as its webhook payload",
    params(("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "How many (default 20)")),
    responses(
        (status = 200, description = "The events as webhooks carry them (what `zhifu listen` forwards)", body = schema::WebhookEventList),
        (status = 400, description = "`invalid_query`", body = schema::ErrorBody),
    ),
)]
pub async fn list_events(
    State(st): State<AppState>,
    params: RawQuery,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params
        .map_err(|_| ApiError::new(ErrorCode::InvalidQuery, "the query string is malformed"))?;
    let mut limit = 20i64;
    for (k, v) in &params {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| {
                        ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 100")
                    })?;
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!(
                        "unknown query parameter `{}`",
                        other.chars().take(32).collect::<String>()
                    ),
                ));
            }
        }
    }
    let events = st
        .store()
        .query_events(&zhifu_store::EventQuery {
            webhook_state: None,
            order_id: None,
            limit,
        })
        .await?;
    // Subscription events are webhooks too (what `zhifu listen` forwards):
    // both kinds, newest first, at most `limit` together.
    let subscription_events = st.store().recent_subscription_events(limit).await?;
    let mut merged: Vec<(
        i64,
        &str,
        Option<&zhifu_store::OrderEvent>,
        Option<&zhifu_store::SubscriptionEvent>,
    )> = events
        .iter()
        .map(|e| (e.created_at, e.id.as_str(), Some(e), None))
        .chain(
            subscription_events
                .iter()
                .map(|e| (e.created_at, e.id.as_str(), None, Some(e))),
        )
        .collect();
    merged.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
    merged.truncate(usize::try_from(limit).unwrap_or(0));
    let mut data = Vec::with_capacity(merged.len());
    for (_, _, order_event, subscription_event) in merged {
        if let Some(e) = order_event {
            let current = st.store().get_order(&e.order_id).await?;
            data.push(view::webhook_payload(e, current.as_ref()));
        } else if let Some(e) = subscription_event {
            let current = st.store().get_subscription(&e.subscription_id).await?;
            let order = match &e.order_id {
                Some(id) => st.store().get_order(id).await?,
                None => None,
            };
            data.push(view::subscription_webhook_payload(
                e,
                current.as_ref(),
                order.as_ref(),
            ));
        }
    }
    Ok(Json(view::list(data)))
}

/// `GET /v1/orders/{id}/refunds`: the order's refunds, oldest first.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/refunds",
    operation_id = "listRefunds",
    tag = "refunds",
    summary = "The order's refunds, oldest first",
    params(("id" = String, Path, description = "The order id (`ord_…`).")),
    responses(
        (status = 200, description = "The refunds", body = schema::RefundList),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
    ),
)]
pub async fn order_refunds(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = payments::load(&st, &id).await?;
    let refunds = st.store().list_refunds(&order.id).await?;
    Ok(Json(view::list(refunds.iter().map(view::refund))))
}

/// `GET /v1/orders/{id}/notifications`: every report recorded for the order
/// (notifications, query answers, refund answers), oldest first, with its
/// outcome: `applied`, `duplicate`, or `anomaly` and the reason. The audit
/// trail of why the order is in its state.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}/notifications",
    operation_id = "listOrderNotifications",
    tag = "events",
    summary = "Every report recorded for the order (notifications, query and refund answers) with its outcome",
    params(("id" = String, Path, description = "The order id (`ord_…`).")),
    responses(
        (status = 200, description = "The reports, oldest first", body = schema::NotificationList),
        (status = 404, description = "`order_not_found`", body = schema::ErrorBody),
    ),
)]
pub async fn order_notifications(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = payments::load(&st, &id).await?;
    let records = st.store().list_notifications(&order.id).await?;
    Ok(Json(view::list(records.iter().map(view::notification))))
}
