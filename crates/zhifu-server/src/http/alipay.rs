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
#[utoipa::path(
    post,
    path = "/alipay/notify",
    operation_id = "alipayNotify",
    tag = "alipay",
    summary = "Alipay's asynchronous notification (called by Alipay, not by merchants)",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "Alipay's signed notification parameters"),
    responses(
        (status = 200, description = "`success`: committed (or already applied)", body = String, content_type = "text/plain"),
        (status = 400, description = "`failure`: forged, malformed or mismatching; nothing changed", body = String, content_type = "text/plain"),
        (status = 500, description = "`failure`: try again later", body = String, content_type = "text/plain"),
    ),
)]
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
#[utoipa::path(
    get,
    path = "/alipay/return",
    operation_id = "alipayReturn",
    tag = "alipay",
    summary = "The buyer's landing page after page/wap pay",
    description = "Shows the stored status only when the parameters carry Alipay's signature (otherwise nothing about any order); never changes state.",
    responses((status = 200, description = "An HTML page", body = String, content_type = "text/html")),
)]
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
    let status = order.as_ref().map_or("unknown", |o| o.status.as_str());
    let html = return_html(order.as_ref(), status);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The URL carries Alipay's signed return parameters: they must
            // not leak to another site, and the page runs no script at all.
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CONTENT_SECURITY_POLICY, RETURN_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response()
}

/// No script, no external resource; only the page's own inline style.
const RETURN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
                          form-action 'none'; frame-ancestors 'none'";

/// The return page's style: one card, sized for a phone first.
const RETURN_CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;\
padding:16px;background:#f2f4f7;color:#1f2329;\
font:16px/1.5 -apple-system,BlinkMacSystemFont,\"PingFang SC\",\"Hiragino Sans GB\",\"Microsoft YaHei\",\"Segoe UI\",Roboto,sans-serif}\
main{width:100%;max-width:420px;background:#fff;border-radius:16px;padding:32px 24px;\
text-align:center;box-shadow:0 2px 12px rgba(0,0,0,.08)}\
.icon{width:64px;height:64px;margin:0 auto 16px;border-radius:50%;display:flex;\
align-items:center;justify-content:center;font-size:34px;line-height:1;color:#fff;background:#8f959e}\
[data-status=paid] .icon,[data-status=refunded] .icon{background:#1677ff}\
[data-status=pending] .icon{background:#faad14}\
[data-status=closed] .icon,[data-status=closing] .icon{background:#8f959e}\
h1{margin:0;font-size:22px;font-weight:600}\
.en{margin:4px 0 0;color:#646a73;font-size:14px}\
.amount{margin:20px 0 4px;font-size:34px;font-weight:600;letter-spacing:.5px}\
p.line{margin:16px 0 0;color:#373c43}\
dl{margin:20px 0 0;padding:12px 0 0;border-top:1px solid #eef0f3;display:grid;\
grid-template-columns:auto 1fr;gap:6px 12px;text-align:left;font-size:14px}\
dt{color:#8f959e}dd{margin:0;word-break:break-all}\
.hint{margin:20px 0 0;color:#8f959e;font-size:13px}\
@media (prefers-color-scheme:dark){body{background:#17181a;color:#e8e9eb}\
main{background:#232427;box-shadow:none}p.line{color:#c9cdd4}.en,.hint,dt{color:#9ba0a8}dl{border-color:#34363a}}";

/// The return page for what the server knows: `order` only when the
/// parameters were signed by Alipay.
fn return_html(order: Option<&zhifu_store::Order>, status: &str) -> String {
    struct View {
        icon: &'static str,
        zh: &'static str,
        en: &'static str,
        line: String,
        amount: Option<String>,
        pending: bool,
    }
    let v = match order {
        None => View {
            icon: "?",
            zh: "无法确认支付状态",
            en: "Payment status unavailable",
            line:
                "此页面无法确认付款，请在商店中查看订单。This page cannot confirm a payment; check \
                   your order in the shop."
                    .to_owned(),
            amount: None,
            pending: false,
        },
        Some(o) => match o.status {
            OrderStatus::Paid => View {
                icon: "✓",
                zh: "支付成功",
                en: "Paid",
                line: "已收到您的付款，感谢惠顾。We have received your payment.".to_owned(),
                amount: Some(yuan(o.total_fen)),
                pending: false,
            },
            OrderStatus::Refunded => View {
                icon: "✓",
                zh: "已支付，已退款",
                en: "Paid, then refunded",
                line: "这笔订单已付款，款项已退回。The payment was refunded.".to_owned(),
                amount: Some(yuan(o.total_fen)),
                pending: false,
            },
            OrderStatus::Pending => View {
                icon: "…",
                zh: "正在确认支付…",
                en: "Checking payment…",
                line: "尚未收到支付宝的确认，本页会自动刷新。We have not received Alipay's \
                       confirmation yet; this page refreshes itself."
                    .to_owned(),
                amount: Some(yuan(o.total_fen)),
                pending: true,
            },
            OrderStatus::Closing | OrderStatus::Closed => View {
                icon: "✕",
                zh: "未支付",
                en: "Not paid",
                line: "订单已关闭，未收到付款。The order was closed without payment.".to_owned(),
                amount: None,
                pending: false,
            },
        },
    };
    let refresh = if v.pending {
        "<meta http-equiv=\"refresh\" content=\"3\">"
    } else {
        ""
    };
    let amount = v.amount.map_or(String::new(), |a| {
        format!("<p class=\"amount\">¥{}</p>", html_escape(&a))
    });
    let facts = order.map_or(String::new(), |o| {
        format!(
            "<dl><dt>订单号 Order</dt><dd>{}</dd><dt>商品 Item</dt><dd>{}</dd></dl>",
            html_escape(&o.out_trade_no),
            html_escape(&o.subject)
        )
    });
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">{refresh}\
         <title>{zh} · {en}</title><style>{RETURN_CSS}</style></head>\
         <body><main data-status=\"{status}\"><div class=\"icon\" aria-hidden=\"true\">{icon}</div>\
         <h1>{zh}</h1><p class=\"en\" lang=\"en\">{en}</p>{amount}\
         <p class=\"line\">{line}</p>{facts}\
         <p class=\"hint\">可以关闭此页面。You may close this page.</p></main></body></html>",
        zh = html_escape(v.zh),
        en = html_escape(v.en),
        icon = v.icon,
        line = html_escape(&v.line),
    )
}
