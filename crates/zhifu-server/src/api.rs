//! The merchant API (`/v1/orders…`), its API-key check, and the small
//! public endpoints (`/healthz`, `/metrics`, fallbacks).

use std::collections::HashMap;

use alipay::{
    Amount, BizContent, OutTradeNo, RequestOptions, TradeAppPay, TradeClose, TradeCreate,
    TradePagePay, TradePrecreate, TradeQuery, TradeRef, TradeRefund, TradeRefundQuery, TradeStatus,
    TradeWapPay,
};
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use zhifu_store::{
    CreateOrderOutcome, CreateRefundOutcome, NewNotification, NewOrder, NewRefund, Order,
    OrderQuery, OrderStatus, Refund, RefundResult, RefundStatus, StoreError, UpdateSource, new_id,
};

use crate::AppState;
use crate::body::{Fields, JsonObject, canonical_json, idempotency_key, request_hash};
use crate::config::MAX_EXPIRY_MINUTES;
use crate::error::{ApiError, alipay_failure};
use crate::notify::{Report, apply_query, commit_report};

/// Largest `metadata` object, serialised.
const MAX_METADATA_BYTES: usize = 4096;
/// Default and largest page of `GET /v1/orders`.
const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// Formats fen as Alipay's `"88.88"`.
pub(crate) fn yuan(fen: i64) -> String {
    u64::try_from(fen)
        .ok()
        .and_then(|f| Amount::from_fen(f).ok())
        .map(|a| a.to_string())
        .unwrap_or_else(|| format!("{}.{:02}", fen / 100, (fen % 100).abs()))
}

pub(crate) fn rfc3339(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The order as the API shows it.
pub(crate) fn order_json(o: &Order) -> Value {
    let metadata = o
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": o.id,
        "out_trade_no": o.out_trade_no,
        "subject": o.subject,
        "body": o.body,
        "total_amount": yuan(o.total_fen),
        "status": o.status.as_str(),
        "refunded_amount": yuan(o.refunded_fen),
        "trade_no": o.trade_no,
        "buyer_logon_id": o.buyer_logon_id,
        "channel": o.channel,
        "paid_at": o.paid_at.and_then(rfc3339),
        "closed_at": o.closed_at.and_then(rfc3339),
        "created_at": rfc3339(o.created_at),
        "expires_at": rfc3339(o.expires_at),
        "metadata": metadata,
    })
}

fn refund_json(r: &Refund) -> Value {
    json!({
        "id": r.id,
        "order_id": r.order_id,
        "amount": yuan(r.amount_fen),
        "status": r.status.as_str(),
        "reason": r.reason,
        "out_request_no": r.out_request_no,
        "failure_code": r.failure_code,
        "created_at": rfc3339(r.created_at),
    })
}

fn created(body: Value, replayed: bool) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// Refuses requests without `Authorization: Bearer <ZHIFU_API_KEY>`.
pub async fn require_api_key(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| st.inner.api_key.matches(k.trim()));
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API key: send `Authorization: Bearer <ZHIFU_API_KEY>`",
        )
        .into_response();
    }
    next.run(req).await
}

fn alipay_field_error(e: alipay::Error) -> ApiError {
    match e {
        alipay::Error::Field { field, problem } => {
            ApiError::invalid("invalid_field", format!("`{field}` {problem}"))
        }
        alipay::Error::Amount { problem, .. } => {
            ApiError::invalid("invalid_amount", format!("invalid amount: {problem}"))
        }
        other => ApiError::internal(other),
    }
}

/// `POST /v1/orders`.
pub async fn create_order(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonObject(m): JsonObject,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
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
    let subject = f.str_req("subject")?;
    let amount = f.amount_req("total_amount")?;
    let body = f.str_opt("body")?;
    let given_no = f.str_opt("out_trade_no")?;
    let expires = f
        .int_opt("expires_in_minutes")?
        .unwrap_or(st.inner.default_expiry_minutes);
    if !(1..=MAX_EXPIRY_MINUTES).contains(&expires) {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("`expires_in_minutes` must be between 1 and {MAX_EXPIRY_MINUTES}"),
        ));
    }
    let metadata = f.object_opt("metadata")?.map(Value::Object);
    let metadata_text = metadata.as_ref().map(canonical_json);
    if metadata_text
        .as_ref()
        .is_some_and(|t| t.len() > MAX_METADATA_BYTES)
    {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("`metadata` is larger than {MAX_METADATA_BYTES} bytes"),
        ));
    }
    let out_trade_no = match &given_no {
        Some(no) => OutTradeNo::new(no.clone()).map_err(alipay_field_error)?,
        None => OutTradeNo::new(format!("ZF{}", uuid::Uuid::now_v7().simple()))
            .map_err(ApiError::internal)?,
    };
    // Alipay's own field rules (subject characters and length, body length,
    // amount range), checked before anything is stored.
    let mut probe = TradePagePay::new(out_trade_no.clone(), amount, subject.clone());
    probe.body = body.clone();
    probe.validate().map_err(alipay_field_error)?;

    let hash = request_hash(&[
        "order",
        &subject,
        &amount.fen().to_string(),
        body.as_deref().unwrap_or("\u{1}"),
        given_no.as_deref().unwrap_or("\u{1}"),
        &expires.to_string(),
        metadata_text.as_deref().unwrap_or("\u{1}"),
    ]);
    let now = st.now_ms();
    let new = NewOrder {
        id: new_id("ord"),
        out_trade_no: out_trade_no.as_str().to_owned(),
        subject,
        body,
        total_fen: crate::notify_fen(amount),
        metadata: metadata_text,
        idempotency_key: key.clone(),
        request_hash: key.as_ref().map(|_| hash.clone()),
        created_at: now,
        expires_at: now + expires * 60_000,
    };
    match st.store().create_order(new).await {
        Ok(CreateOrderOutcome::Created(o)) => Ok(created(order_json(&o), false)),
        Ok(CreateOrderOutcome::Existing(o)) => {
            if o.request_hash.as_deref() == Some(hash.as_str()) {
                Ok(created(order_json(&o), true))
            } else {
                Err(ApiError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body",
                ))
            }
        }
        Err(StoreError::Conflict("out_trade_no")) => Err(ApiError::conflict(
            "out_trade_no_taken",
            "an order with this out_trade_no exists",
        )),
        Err(e) => Err(e.into()),
    }
}

async fn load(st: &AppState, id: &str) -> Result<Order, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::order_not_found());
    }
    st.store()
        .get_order(id)
        .await?
        .ok_or_else(ApiError::order_not_found)
}

fn only_params(
    q: &Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let Ok(Query(q)) = q else {
        return Err(ApiError::invalid(
            "invalid_query",
            "the query string could not be parsed",
        ));
    };
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            "invalid_query",
            format!(
                "unknown query parameter `{}` (accepted: {})",
                k.chars().take(64).collect::<String>(),
                allowed.join(", ")
            ),
        ));
    }
    Ok(q.clone())
}

/// `GET /v1/orders/{id}[?refresh=true]`.
pub async fn get_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = only_params(&q, &["refresh"])?;
    let refresh = match q.get("refresh").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_query",
                "`refresh` must be true or false",
            ));
        }
    };
    let mut order = load(&st, &id).await?;
    if refresh {
        order = refresh_order(&st, order).await?;
    }
    Ok(Json(order_json(&order)))
}

/// Asks Alipay about a pending order and applies the verified answer through
/// the same path as notifications; closes it when its deadline has passed.
///
/// # Errors
/// Alipay or store failures.
pub(crate) async fn refresh_order(st: &AppState, order: Order) -> Result<Order, ApiError> {
    if order.status != OrderStatus::Pending {
        return Ok(order);
    }
    let mut order = order;
    match st
        .call(
            &TradeQuery::by_out_trade_no(&order.out_trade_no),
            &RequestOptions::default(),
        )
        .await
    {
        Ok(resp) => order = apply_query(st, &order, resp).await?.order,
        // Page, wap and QR trades exist only once the buyer opened the cashier.
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => {}
        Err(e) => return Err(alipay_failure(e)),
    }
    if order.status == OrderStatus::Pending && st.now_ms() >= order.expires_at {
        order = close_at_alipay(st, &order).await?;
    }
    Ok(order)
}

/// Closes a pending order at Alipay, then locally through the verified path.
async fn close_at_alipay(st: &AppState, order: &Order) -> Result<Order, ApiError> {
    let req = TradeClose {
        trade: TradeRef::OutTradeNo(order.out_trade_no.clone()),
        operator_id: None,
    };
    let trade_no = match st.call(&req, &RequestOptions::default()).await {
        Ok(resp) => resp.trade_no,
        // Never created at Alipay: nothing to close there. The signed payment
        // parameters carry `time_expire`, so they die with the order.
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => None,
        Err(alipay::Error::Gateway(g))
            if matches!(
                g.reason(),
                "ACQ.TRADE_STATUS_ERROR" | "ACQ.TRADE_HAS_SUCCESS" | "ACQ.TRADE_HAS_CLOSE"
            ) =>
        {
            // Alipay's trade is not waiting any more: learn what it is.
            let resp = st
                .call(
                    &TradeQuery::by_out_trade_no(&order.out_trade_no),
                    &RequestOptions::default(),
                )
                .await
                .map_err(alipay_failure)?;
            return Ok(apply_query(st, order, resp).await?.order);
        }
        Err(e) => return Err(alipay_failure(e)),
    };
    let report = Report {
        source: UpdateSource::Close,
        notify_id: None,
        trade_status: TradeStatus::TradeClosed,
        trade_no,
        buyer_logon_id: None,
        buyer_id: None,
        paid_at: None,
        refund_fee: None,
        payload: None,
    };
    Ok(commit_report(st, order, report).await?.order)
}

/// `POST /v1/orders/{id}/close`.
pub async fn close_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    Fields::new(&m, &[])?;
    let order = load(&st, &id).await?;
    let order = match order.status {
        OrderStatus::Closed => order,
        OrderStatus::Pending => close_at_alipay(&st, &order).await?,
        s => {
            return Err(ApiError::conflict(
                "order_not_closable",
                format!("only pending orders can be closed; this one is {s}"),
            ));
        }
    };
    if order.status != OrderStatus::Closed {
        return Err(ApiError::conflict(
            "order_not_closable",
            format!(
                "Alipay reports the trade as paid; the order is now {}",
                order.status
            ),
        ));
    }
    Ok(Json(order_json(&order)))
}

fn check_return_url(u: &str) -> Result<String, ApiError> {
    let ok = url::Url::parse(u)
        .ok()
        .is_some_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
    if !ok || u.len() > 256 {
        return Err(ApiError::invalid(
            "invalid_field",
            "`return_url` must be an absolute http(s) URL of at most 256 characters",
        ));
    }
    Ok(u.to_owned())
}

/// `POST /v1/orders/{id}/pay`.
pub async fn pay_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&m, &["channel", "return_url", "buyer_id", "buyer_open_id"])?;
    let channel = f.str_req("channel")?;
    if !matches!(channel.as_str(), "page" | "wap" | "qr" | "app" | "jsapi") {
        return Err(ApiError::invalid(
            "invalid_field",
            "`channel` must be one of page, wap, qr, app, jsapi",
        ));
    }
    let return_url = f
        .str_opt("return_url")?
        .map(|u| check_return_url(&u))
        .transpose()?;
    if return_url.is_some() && !matches!(channel.as_str(), "page" | "wap") {
        return Err(ApiError::invalid(
            "invalid_field",
            "`return_url` applies to the page and wap channels only",
        ));
    }
    let buyer_id = f.str_opt("buyer_id")?;
    let buyer_open_id = f.str_opt("buyer_open_id")?;
    if channel == "jsapi" {
        if buyer_id.is_none() && buyer_open_id.is_none() {
            return Err(ApiError::invalid(
                "invalid_field",
                "channel jsapi needs `buyer_id` or `buyer_open_id`",
            ));
        }
    } else if buyer_id.is_some() || buyer_open_id.is_some() {
        return Err(ApiError::invalid(
            "invalid_field",
            "`buyer_id` and `buyer_open_id` apply to the jsapi channel only",
        ));
    }

    let order = load(&st, &id).await?;
    if order.status != OrderStatus::Pending {
        return Err(ApiError::conflict(
            "order_not_payable",
            format!(
                "only pending orders can be paid; this one is {}",
                order.status
            ),
        ));
    }
    if st.now_ms() >= order.expires_at {
        return Err(ApiError::conflict(
            "order_expired",
            "the order's payment deadline has passed",
        ));
    }
    let no = OutTradeNo::new(order.out_trade_no.clone()).map_err(ApiError::internal)?;
    let amount = u64::try_from(order.total_fen)
        .ok()
        .and_then(|f| Amount::from_fen(f).ok())
        .ok_or_else(|| {
            ApiError::internal(StoreError::Corrupt {
                column: "total_fen",
            })
        })?;
    let deadline =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(order.expires_at) * 1_000_000)
            .map_err(ApiError::internal)?;
    let time_expire = Some(alipay::time::format_beijing(deadline));
    let mut opts = RequestOptions {
        notify_url: Some(st.inner.notify_url.clone()),
        ..Default::default()
    };
    let core = st.alipay().core();
    let gateway = core.gateway();
    // The signed `timestamp` uses the real clock, as the AlipayClient does (see
    // AppState::build): the gateway checks it; the injected clock only moves deadlines.
    let now = time::OffsetDateTime::now_utc();
    let mut out = serde_json::Map::new();
    out.insert("channel".into(), json!(channel));
    let mut trade_no = None;
    match channel.as_str() {
        "page" => {
            let mut r = TradePagePay::new(no, amount, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            opts.return_url = Some(return_url.unwrap_or_else(|| st.inner.return_url.clone()));
            let signed = core
                .sign_request(&r, &opts, now)
                .map_err(ApiError::internal)?;
            out.insert("url".into(), json!(signed.to_get_url(gateway)));
            out.insert("form_html".into(), json!(signed.to_post_form(gateway)));
        }
        "wap" => {
            let mut r = TradeWapPay::new(no, amount, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            let ret = return_url.unwrap_or_else(|| st.inner.return_url.clone());
            r.quit_url = Some(ret.clone());
            opts.return_url = Some(ret);
            let signed = core
                .sign_request(&r, &opts, now)
                .map_err(ApiError::internal)?;
            out.insert("url".into(), json!(signed.to_get_url(gateway)));
            out.insert("form_html".into(), json!(signed.to_post_form(gateway)));
        }
        "app" => {
            let mut r = TradeAppPay::new(no, amount, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            let signed = core
                .sign_request(&r, &opts, now)
                .map_err(ApiError::internal)?;
            out.insert("order_string".into(), json!(signed.to_order_string()));
        }
        "qr" => {
            let mut r = TradePrecreate::new(no, amount, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            let resp = st
                .call(&r, &opts)
                .await
                .map_err(|e| pay_failure(&st, &order, e))?;
            out.insert("qr_code".into(), json!(resp.qr_code));
        }
        _ => {
            let mut r = TradeCreate::new(no, amount, order.subject.clone());
            r.body = order.body.clone();
            r.time_expire = time_expire;
            r.product_code = Some("JSAPI_PAY".into());
            r.buyer_id = buyer_id;
            r.buyer_open_id = buyer_open_id;
            r.validate().map_err(alipay_field_error)?;
            let resp = st
                .call(&r, &opts)
                .await
                .map_err(|e| pay_failure(&st, &order, e))?;
            out.insert("trade_no".into(), json!(resp.trade_no));
            trade_no = Some(resp.trade_no);
        }
    }
    st.store()
        .record_payment_attempt(&order.id, &channel, trade_no.as_deref(), st.now_ms())
        .await?;
    Ok(Json(Value::Object(out)))
}

fn pay_failure(_st: &AppState, _order: &Order, e: alipay::Error) -> ApiError {
    match &e {
        alipay::Error::Gateway(g)
            if matches!(g.reason(), "ACQ.TRADE_HAS_SUCCESS" | "ACQ.TRADE_HAS_CLOSE") =>
        {
            ApiError::conflict(
                "order_not_payable",
                format!(
                    "Alipay says this trade can no longer be paid ({}); GET the order with ?refresh=true",
                    g.reason()
                ),
            )
            .with_cause(e)
        }
        _ => alipay_failure(e),
    }
}

/// The `out_request_no` of a refund: derived from the idempotency key when
/// there is one, so a retry can never become a second refund at Alipay even
/// if our own record of the first attempt were lost.
fn out_request_no(order_id: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("R{}", &request_hash(&["refund-key", order_id, k])[..31]),
        None => format!("R{}", uuid::Uuid::now_v7().simple())
            .chars()
            .take(32)
            .collect(),
    }
}

/// `POST /v1/orders/{id}/refunds`.
pub async fn refund_order(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonObject(m): JsonObject,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let f = Fields::new(&m, &["amount", "reason"])?;
    let amount = f.amount_req("amount")?;
    let reason = f.str_opt("reason")?;
    if reason.as_ref().is_some_and(|r| r.chars().count() > 256) {
        return Err(ApiError::invalid(
            "invalid_field",
            "`reason` is longer than 256 characters",
        ));
    }
    let order = load(&st, &id).await?;
    let hash = request_hash(&[
        "refund",
        &amount.fen().to_string(),
        reason.as_deref().unwrap_or("\u{1}"),
    ]);
    // Earlier refunds whose outcome is unknown are settled first: their
    // amount must be known before more money is promised.
    for earlier in st.store().list_refunds(&order.id).await? {
        let same_request = key.is_some() && earlier.idempotency_key == key;
        if earlier.status == RefundStatus::Pending && !same_request {
            drive_refund(&st, &order, earlier).await?;
        }
    }
    let new = NewRefund {
        id: new_id("rf"),
        order_id: order.id.clone(),
        out_request_no: out_request_no(&order.id, key.as_deref()),
        amount_fen: crate::notify_fen(amount),
        reason,
        idempotency_key: key.clone(),
        request_hash: Some(hash.clone()),
        created_at: st.now_ms(),
    };
    match st.store().create_refund(new).await? {
        CreateRefundOutcome::Created(r) => {
            let r = drive_refund(&st, &order, r).await?;
            Ok(created(refund_json(&r), false))
        }
        CreateRefundOutcome::Existing(r) => {
            if r.request_hash.as_deref() != Some(hash.as_str()) {
                return Err(ApiError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body",
                ));
            }
            let r = if r.status == RefundStatus::Pending {
                drive_refund(&st, &order, r).await?
            } else {
                r
            };
            Ok(created(refund_json(&r), true))
        }
        CreateRefundOutcome::NotPaid(s) => Err(ApiError::conflict(
            "order_not_refundable",
            format!("only paid orders can be refunded; this one is {s}"),
        )),
        CreateRefundOutcome::ExceedsRemaining { remaining_fen } => Err(ApiError::conflict(
            "refund_exceeds_remaining",
            format!(
                "at most {} can still be refunded (refunds done and in flight count)",
                yuan(remaining_fen)
            ),
        )),
    }
}

/// Sends (or re-sends, with the same `out_request_no`) a pending refund and
/// settles it when Alipay's answer is definite. An unknown outcome leaves it
/// pending; re-sending later is safe.
pub(crate) async fn drive_refund(
    st: &AppState,
    order: &Order,
    refund: Refund,
) -> Result<Refund, ApiError> {
    let amount = u64::try_from(refund.amount_fen)
        .ok()
        .and_then(|f| Amount::from_fen(f).ok())
        .ok_or_else(|| {
            ApiError::internal(StoreError::Corrupt {
                column: "amount_fen",
            })
        })?;
    let mut req = TradeRefund::new(
        TradeRef::OutTradeNo(order.out_trade_no.clone()),
        amount,
        refund.out_request_no.clone(),
    );
    req.refund_reason = refund.reason.clone();
    let result = match st.call(&req, &RequestOptions::default()).await {
        Ok(resp) => {
            // `fund_change=N` means this call moved no money: either an
            // earlier attempt did, or nothing happened. The refund query tells.
            let confirmed = resp.fund_changed() || {
                let q = TradeRefundQuery {
                    trade: TradeRef::OutTradeNo(order.out_trade_no.clone()),
                    out_request_no: refund.out_request_no.clone(),
                    query_options: None,
                };
                st.call(&q, &RequestOptions::default())
                    .await
                    .is_ok_and(|a| a.succeeded())
            };
            if !confirmed {
                return Ok(refund);
            }
            RefundResult::Succeeded {
                refund_fee: Some(crate::notify_fen(resp.refund_fee)),
                record: NewNotification {
                    id: new_id("ntf"),
                    order_id: Some(order.id.clone()),
                    out_trade_no: Some(order.out_trade_no.clone()),
                    notify_id: None,
                    source: UpdateSource::Refund,
                    trade_status: None,
                    anomaly: None,
                    payload: serde_json::to_string(&resp).ok(),
                    received_at: st.now_ms(),
                },
            }
        }
        Err(e) if e.is_unknown_outcome() => return Ok(refund),
        Err(alipay::Error::Gateway(g)) => RefundResult::Failed {
            code: g.reason().to_owned(),
            at: st.now_ms(),
        },
        Err(e) => {
            // A response we could not verify: the outcome is unknown.
            tracing::warn!(refund = %refund.id, error = %crate::error::chain(&e), "refund outcome unknown");
            return Ok(refund);
        }
    };
    let settled = st.store().finish_refund(&refund.id, &result).await?;
    crate::webhook::flush_order(st, &order.id).await;
    Ok(settled)
}

fn encode_cursor(o: &Order) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", o.created_at, o.id))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// `GET /v1/orders?status=&limit=&cursor=`.
pub async fn list_orders(
    State(st): State<AppState>,
    q: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let q = only_params(&q, &["status", "limit", "cursor"])?;
    let status = match q.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(OrderStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "invalid_query",
                "`status` must be one of pending, paid, closed, refunded",
            )
        })?),
    };
    let limit = match q.get("limit") {
        None => DEFAULT_PAGE,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_query",
                    format!("`limit` must be an integer between 1 and {MAX_PAGE}"),
                )
            })?,
    };
    let after = match q.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(decode_cursor(c).ok_or_else(|| {
            ApiError::invalid(
                "invalid_query",
                "`cursor` is not a cursor this API returned",
            )
        })?),
    };
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
        orders.last().map(encode_cursor)
    } else {
        None
    };
    Ok(Json(json!({
        "data": orders.iter().map(order_json).collect::<Vec<_>>(),
        "next_cursor": next,
    })))
}

/// `GET /v1/orders/{id}/events`: the order's state changes with their
/// webhook delivery state and attempts, oldest first.
pub async fn order_events(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = load(&st, &id).await?;
    let mut data = Vec::new();
    for e in st.store().list_events(&order.id).await? {
        let attempts = st.store().list_delivery_attempts(&e.id).await?;
        data.push(json!({
            "id": e.id,
            "type": e.event_type.as_str(),
            "previous_status": e.from_status.as_str(),
            "status": e.to_status.as_str(),
            "refunded_amount": yuan(e.refunded_fen),
            "source": e.source,
            "created_at": rfc3339(e.created_at),
            "webhook": {
                "state": e.webhook_state.as_str(),
                "attempts": e.attempts,
                "next_attempt_at": e.next_attempt_at.and_then(rfc3339),
                "delivered_at": e.delivered_at.and_then(rfc3339),
                "last_error": e.last_error,
                "deliveries": attempts.iter().map(|a| json!({
                    "attempt": a.attempt,
                    "at": rfc3339(a.at),
                    "http_status": a.http_status,
                    "error": a.error,
                    "duration_ms": a.duration_ms,
                })).collect::<Vec<_>>(),
            },
        }));
    }
    Ok(Json(json!({ "data": data })))
}

/// `GET /v1/orders/{id}/refunds`: the order's refunds, oldest first.
pub async fn order_refunds(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = load(&st, &id).await?;
    let refunds = st.store().list_refunds(&order.id).await?;
    Ok(Json(
        json!({ "data": refunds.iter().map(refund_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /v1/orders/{id}/notifications`: every report recorded for the order
/// (notifications, query answers, refund answers), oldest first, with its
/// outcome: `applied`, `duplicate`, or `anomaly` and the reason. The audit
/// trail of why the order is in its state.
pub async fn order_notifications(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let order = load(&st, &id).await?;
    let records = st.store().list_notifications(&order.id).await?;
    let data: Vec<Value> = records
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "received_at": rfc3339(n.received_at),
                "source": n.source,
                "notify_id": n.notify_id,
                "trade_status": n.trade_status,
                "outcome": n.outcome,
                "reason": n.reason,
            })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// `POST /v1/reconcile`: runs one reconcile pass now and answers its report
/// (for schedulers that can only make HTTP calls). Body fields, all
/// optional: `min_age_seconds` (default 120), `limit` (default 200),
/// `max_seconds` (stop starting new work after this long; default 20).
pub async fn reconcile_now(
    State(st): State<AppState>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&m, &["min_age_seconds", "limit", "max_seconds"])?;
    let range = |name: &str, v: Option<i64>, lo: i64, hi: i64| -> Result<Option<u64>, ApiError> {
        match v {
            None => Ok(None),
            Some(n) if (lo..=hi).contains(&n) => Ok(u64::try_from(n).ok()),
            Some(_) => Err(ApiError::invalid(
                "invalid_field",
                format!("`{name}` must be an integer between {lo} and {hi}"),
            )),
        }
    };
    let mut opts = crate::ReconcileOptions::default();
    if let Some(s) = range("min_age_seconds", f.int_opt("min_age_seconds")?, 0, 86_400)? {
        opts.min_age = std::time::Duration::from_secs(s);
    }
    if let Some(n) = range("limit", f.int_opt("limit")?, 1, 10_000)? {
        opts.limit = usize::try_from(n).unwrap_or(opts.limit);
    }
    let max = range("max_seconds", f.int_opt("max_seconds")?, 1, 900)?.unwrap_or(20);
    opts.deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(max));
    let report = crate::reconcile::run_pass(&st, &opts).await;
    Ok(Json(
        serde_json::to_value(&report).map_err(ApiError::internal)?,
    ))
}

/// `GET /healthz`: 200 when the database answers.
pub async fn healthz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.store().ping().await?;
    Ok(Json(json!({"status": "ok"})))
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    let counts = st.store().count_orders_by_status().await?;
    let events = st.store().count_events_by_state().await?;
    let text = st.metrics().render_with(&counts, &events);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Known paths, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_roundtrip_and_garbage() {
        let o = Order {
            id: "ord_1".into(),
            out_trade_no: "X".into(),
            subject: "s".into(),
            body: None,
            total_fen: 1,
            refunded_fen: 0,
            refund_pending_fen: 0,
            status: OrderStatus::Pending,
            trade_no: None,
            buyer_logon_id: None,
            buyer_id: None,
            channel: None,
            metadata: None,
            idempotency_key: None,
            request_hash: None,
            created_at: 1234,
            updated_at: 1234,
            expires_at: 5678,
            paid_at: None,
            closed_at: None,
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&o)),
            Some((1234, "ord_1".into()))
        );
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor("eHl6"), None);
    }

    #[test]
    fn out_request_no_is_stable_per_key_and_valid() {
        let a = out_request_no("ord_1", Some("k"));
        assert_eq!(a, out_request_no("ord_1", Some("k")));
        assert_ne!(a, out_request_no("ord_2", Some("k")));
        assert_ne!(out_request_no("ord_1", None), out_request_no("ord_1", None));
        for s in [a, out_request_no("o", None)] {
            assert!(
                s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{s}"
            );
        }
    }

    #[test]
    fn yuan_formats() {
        assert_eq!(yuan(8888), "88.88");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(0), "0.00");
    }
}
