//! The two endpoints Alipay's side reaches: `POST /alipay/notify` (the
//! asynchronous notification, handled by
//! [`crate::payments::notification`]) and `GET /alipay/return`, where the
//! buyer's browser lands after page or wap pay. Its parameters are never trusted: the page shows the status stored
//! in the database. When the parameters do carry a valid Alipay signature
//! (the buyer really came back from the cashier) and the order is still
//! pending, the server asks Alipay through the verified query path, which
//! covers a notification that is late or lost.

use alipay::FormParams;
use alipay::protocol::html_escape;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use zhifu_store::OrderStatus;

use crate::domain::yuan;
use crate::error::chain;
use crate::payments::{self, NotifyAnswer};
use crate::state::AppState;

/// `POST /alipay/notify`: answers exactly `success` once the change (or the
/// fact that it was already made) is committed; `failure` otherwise, so
/// that Alipay retries.
pub async fn notify_endpoint(State(st): State<AppState>, body: Bytes) -> Response {
    let text = |status: StatusCode, body: &'static str| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    };
    match payments::handle_notification(&st, &body).await {
        Ok(NotifyAnswer::Success) => {
            crate::fault::point(crate::fault::NOTIFY_COMMITTED).await;
            text(StatusCode::OK, "success")
        }
        Ok(NotifyAnswer::Refused(_)) => text(StatusCode::BAD_REQUEST, "failure"),
        Ok(NotifyAnswer::Retry) => text(StatusCode::SERVICE_UNAVAILABLE, "failure"),
        Err(e) => {
            tracing::error!(error = %chain(&e), "notification not processed; Alipay will retry");
            text(StatusCode::INTERNAL_SERVER_ERROR, "failure")
        }
    }
}

/// `GET /alipay/return`.
pub async fn return_page(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let raw = q.unwrap_or_default();
    let params = FormParams::parse(raw.as_bytes()).ok();
    let out_trade_no = params
        .as_ref()
        .and_then(|p| p.get("out_trade_no"))
        .map(str::to_owned);
    let signed = params
        .clone()
        .is_some_and(|p| st.verifier().verify(p).is_ok());
    // Only the buyer Alipay redirected here holds parameters that verify;
    // anyone else learns nothing (no status, no amount, not even whether
    // the order exists), so the page cannot be used to enumerate orders.
    let mut order = match &out_trade_no {
        Some(no) if signed && no.len() <= 64 => st
            .store()
            .get_order_by_out_trade_no(no)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    if signed
        && let Some(o) = order.clone()
        && o.status == OrderStatus::Pending
    {
        match payments::refresh_order(&st, o).await {
            Ok(fresh) => order = Some(fresh),
            Err(e) => tracing::warn!(error = %chain(&e), "refresh on return failed"),
        }
    }
    let (title, line, pending) = match &order {
        None => (
            "Payment status unavailable · 无法确认支付状态",
            "This page cannot confirm a payment. Check your order in the shop.".to_owned(),
            false,
        ),
        Some(o) => match o.status {
            OrderStatus::Paid | OrderStatus::Refunded => (
                "Paid · 已支付",
                format!("Order {} is paid: ¥{}.", o.out_trade_no, yuan(o.total_fen)),
                false,
            ),
            OrderStatus::Pending => (
                "Checking payment… · 正在确认支付…",
                format!(
                    "We have not received Alipay's confirmation for order {} yet.",
                    o.out_trade_no
                ),
                true,
            ),
            OrderStatus::Closing | OrderStatus::Closed => (
                "Not paid · 未支付",
                format!("Order {} was closed without payment.", o.out_trade_no),
                false,
            ),
        },
    };
    let status = order.as_ref().map_or("unknown", |o| o.status.as_str());
    let refresh = if pending {
        "<meta http-equiv=\"refresh\" content=\"3\">"
    } else {
        ""
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{refresh}\
         <title>{t}</title></head><body><main data-status=\"{status}\">\
         <h1>{t}</h1><p>{l}</p></main></body></html>",
        t = html_escape(title),
        l = html_escape(&line),
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}
