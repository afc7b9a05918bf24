//! The sandbox's HTML frame: one stylesheet, the page shell every human
//! page uses, and the error and not-found pages (the gateway answers a
//! refused page/wap pay request with the error page).

use alipay::protocol::html_escape as esc;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f5f7fa;margin:0}\
main{max-width:420px;margin:48px auto;background:#fff;border-radius:12px;padding:28px;box-shadow:0 2px 12px #0001}\
h1{font-size:18px;color:#1677ff;margin:0 0 18px}.amount{font-size:34px;font-weight:600;margin:10px 0}\
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 14px;font-size:14px}dt{color:#888}dd{margin:0;word-break:break-all}\
button{font-size:16px;padding:10px 24px;border-radius:8px;border:0;cursor:pointer;margin-right:10px}\
#pay{background:#1677ff;color:#fff}#cancel{background:#eee}.note{color:#888;font-size:12px;margin-top:22px}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px}";

/// A full page: `body` (HTML) in the sandbox frame, titled `title` (text).
pub(crate) fn page(title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}\
         <p class=\"note\">Zhifu sandbox — 本地支付宝网关模拟器，不涉及真实资金。</p></main></body></html>",
        esc(title)
    ))
    .into_response()
}

/// The page the real gateway shows when a page/wap pay request is refused.
pub(crate) fn error_page(code: &str, sub_code: &str, sub_msg: &str) -> Response {
    let body = format!(
        "<h1>支付宝沙箱 · 错误</h1><p id=\"error\">{}</p><dl><dt>错误代码</dt><dd id=\"sub_code\">{}</dd>\
         <dt>code</dt><dd>{}</dd></dl>",
        esc(sub_msg),
        esc(sub_code),
        esc(code)
    );
    let mut r = page("支付宝沙箱 · 错误", &body);
    *r.status_mut() = StatusCode::OK;
    r
}

/// A 404 page saying what was not found.
pub(crate) fn not_found(what: &str) -> Response {
    let mut r = page("Not found", &format!("<h1>未找到</h1><p>{}</p>", esc(what)));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
