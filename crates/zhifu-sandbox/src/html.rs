//! The sandbox's HTML frame: one stylesheet (readable from 360 px wide:
//! tables stack into label/value lines on a phone), the page shell every
//! human page uses with its language switch, the human labels of the
//! sandbox's codes (trade states, delivery states, products, modes), and
//! the error and not-found pages (the gateway answers a refused page/wap pay
//! request with the error page).

use alipay::protocol::html_escape as esc;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::config::SandboxMode;
use crate::lang::Lang;
use crate::model::{DeliveryState, Product};

// Colours meet WCAG AA contrast on their backgrounds (the browser suite runs
// axe-core on these pages).
const STYLE: &str = "*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,\"PingFang SC\",\"Microsoft YaHei\",\"Noto Sans CJK SC\",sans-serif;\
background:#f5f7fa;margin:0;color:#1f1f1f;line-height:1.5}\
a{color:#0958d9}:focus-visible{outline:3px solid #0958d9;outline-offset:2px}\
.bar{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:center;justify-content:space-between;\
padding:8px 16px;background:#fff;border-bottom:1px solid #d9d9d9}\
.bar nav{display:flex;flex-wrap:wrap;gap:4px 16px}.bar a{padding:8px 0;display:inline-block}\
.brand{font-weight:600}\
main{max-width:440px;margin:24px auto;background:#fff;border-radius:12px;padding:20px;box-shadow:0 2px 12px #0001}\
main.wide{max-width:1040px}\
@media (max-width:480px){main{margin:0 auto;border-radius:0;padding:16px 12px}}\
h1{font-size:1.25rem;color:#0958d9;margin:0 0 16px;overflow-wrap:anywhere}h2{font-size:1.05rem;margin:24px 0 8px}\
.amount{font-size:2rem;font-weight:600;margin:8px 0}\
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:6px 14px;font-size:.95rem}\
dt{color:#545454}dd{margin:0;overflow-wrap:anywhere}\
button{font:inherit;font-size:1rem;min-height:44px;padding:8px 20px;border-radius:8px;cursor:pointer;\
border:1px solid #0958d9;background:#fff;color:#0958d9}\
button.primary,#pay{background:#0958d9;color:#fff}button.danger{color:#b42318;border-color:#b42318}\
#cancel{background:#f0f0f0;border-color:#8c8c8c;color:#1f1f1f}\
.actions{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;margin:12px 0}\
.actions form{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-end;margin:0}\
label{display:flex;flex-direction:column;gap:2px;font-size:.9rem}\
input{font:inherit;min-height:44px;padding:6px 10px;border:1px solid #8c8c8c;border-radius:8px;width:9em;max-width:100%}\
.note,.help{color:#545454;font-size:.85rem}.note{margin-top:22px}\
.notice{padding:8px 12px;border-radius:8px;background:#e6f4ff;border:1px solid #91caff;overflow-wrap:anywhere}\
.notice.error{background:#fff1f0;border-color:#ffa39e;color:#a8071a}\
.table-wrap{overflow-x:auto;max-width:100%}\
table{border-collapse:collapse;width:100%;font-size:.9rem}\
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e5e5;vertical-align:top}\
td{overflow-wrap:anywhere}thead th{background:#fafafa;white-space:nowrap}\
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.badge{display:inline-block;padding:0 8px;border-radius:999px;border:1px solid currentColor;font-size:.85rem;white-space:nowrap}\
.st-TRADE_SUCCESS,.st-delivered{color:#1a7f37}.st-WAIT_BUYER_PAY,.st-NOT_OPENED,.st-pending{color:#8a5300}\
.st-TRADE_CLOSED,.st-TRADE_FINISHED,.st-VOIDED,.st-one_shot{color:#545454}.st-gave_up{color:#b42318}\
.st-NORMAL{color:#1a7f37}.st-TEMP,.st-STOP{color:#8a5300}.st-UNSIGN,.st-DECLINED{color:#545454}\
textarea{width:100%;font:.8rem ui-monospace,monospace}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.8rem;background:#fafafa;padding:8px;border-radius:6px;margin:4px 0}\
code{overflow-wrap:anywhere}\
@media (max-width:640px){\
table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}\
table.stack,table.stack tbody,table.stack tr{display:block;width:100%}\
table.stack tr{border-bottom:1px solid #d9d9d9;padding:6px 0}\
table.stack td{display:flex;gap:12px;justify-content:space-between;text-align:right;border:0;padding:2px 0}\
table.stack td::before{content:attr(data-label);color:#545454;text-align:left;flex:none}}";

/// A full page in the sandbox frame: `body` (HTML), titled `title` (text),
/// in `lang`. `wide` pages (the console) get the navigation; `switch`
/// offers the language switch (only on pages a GET can reload).
pub(crate) fn frame(lang: Lang, title: &str, body: &str, wide: bool, switch: bool) -> Response {
    let other = lang.other();
    let switch = if switch {
        format!(
            "<a id=\"lang-switch\" href=\"?lang={}\" lang=\"{}\" hreflang=\"{}\">{}</a>",
            other.query_value(),
            other.html_code(),
            other.html_code(),
            other.pick("中文", "English"),
        )
    } else {
        String::new()
    };
    let header = if wide {
        format!(
            "<header class=\"bar\"><a class=\"brand\" href=\"/sandbox/\">{}</a>\
             <nav aria-label=\"{}\"><a href=\"/sandbox/\">{}</a><a href=\"/sandbox/notifications\">{}</a><a href=\"/sandbox/agreements\">{}</a>{switch}</nav></header>",
            lang.pick("支付宝沙箱", "Alipay sandbox"),
            lang.pick("沙箱导航", "Sandbox"),
            lang.pick("交易", "Trades"),
            lang.pick("通知", "Notifications"),
            lang.pick("协议", "Agreements"),
        )
    } else if switch.is_empty() {
        String::new()
    } else {
        format!(
            "<header class=\"bar\"><span class=\"brand\">{}</span>{switch}</header>",
            lang.pick("支付宝沙箱", "Alipay sandbox")
        )
    };
    Html(format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{}</title><style>{STYLE}</style></head><body>{header}<main{}>{body}\
         <p class=\"note\">{}</p></main></body></html>",
        lang.html_code(),
        esc(title),
        if wide { " class=\"wide\"" } else { "" },
        lang.pick(
            "Zhifu 沙箱 — 本地支付宝网关模拟器，不涉及真实资金。",
            "Zhifu sandbox — a local emulator of the Alipay gateway; no real money moves."
        ),
    ))
    .into_response()
}

/// A narrow page (cashier and the like) without a language switch.
pub(crate) fn page(lang: Lang, title: &str, body: &str) -> Response {
    frame(lang, title, body, false, false)
}

/// The page the real gateway shows when a page/wap pay request is refused
/// (in Chinese, as Alipay's is).
pub(crate) fn error_page(code: &str, sub_code: &str, sub_msg: &str) -> Response {
    let body = format!(
        "<h1>支付宝沙箱 · 错误</h1><p id=\"error\">{}</p><dl><dt>错误代码</dt><dd id=\"sub_code\">{}</dd>\
         <dt>返回码</dt><dd>{}</dd></dl>",
        esc(sub_msg),
        esc(sub_code),
        esc(code)
    );
    let mut r = page(Lang::Zh, "支付宝沙箱 · 错误", &body);
    *r.status_mut() = StatusCode::OK;
    r
}

/// A 404 page saying what was not found.
pub(crate) fn not_found(lang: Lang, what: &str) -> Response {
    let mut r = page(
        lang,
        lang.pick("未找到", "Not found"),
        &format!(
            "<h1>{}</h1><p>{}</p>",
            lang.pick("未找到", "Not found"),
            esc(what)
        ),
    );
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// A trade state (`TRADE_SUCCESS`, …, and the console's `NOT_OPENED` and
/// `VOIDED` for orders whose trade does not exist) for people.
pub(crate) fn trade_status_label(lang: Lang, code: &str) -> &'static str {
    match code {
        "WAIT_BUYER_PAY" => lang.pick("等待付款", "Awaiting payment"),
        "TRADE_SUCCESS" => lang.pick("支付成功", "Paid"),
        "TRADE_CLOSED" => lang.pick("已关闭", "Closed"),
        "TRADE_FINISHED" => lang.pick("交易结束", "Finished"),
        "NOT_OPENED" => lang.pick("待买家打开", "Not opened yet"),
        "VOIDED" => lang.pick("已撤销", "Cancelled"),
        _ => lang.pick("未知状态", "Unknown state"),
    }
}

/// A delivery state for people.
pub(crate) fn delivery_state_label(lang: Lang, s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => lang.pick("等待重试", "Retrying"),
        DeliveryState::Delivered => lang.pick("已送达", "Delivered"),
        DeliveryState::GaveUp => lang.pick("已放弃", "Gave up"),
        DeliveryState::OneShot => lang.pick("单次发送", "Sent once"),
    }
}

/// The `st-…` class suffix of a delivery state.
pub(crate) fn delivery_state_code(s: DeliveryState) -> &'static str {
    match s {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::GaveUp => "gave_up",
        DeliveryState::OneShot => "one_shot",
    }
}

/// A product for people.
pub(crate) fn product_label(lang: Lang, p: Product) -> &'static str {
    match lang {
        Lang::Zh => p.label(),
        Lang::En => match p {
            Product::Page => "Website (desktop)",
            Product::Wap => "Website (mobile)",
            Product::App => "App",
            Product::Precreate => "In-person (QR code)",
            Product::Create => "In-person (JSAPI)",
            Product::Barcode => "In-person (barcode)",
            Product::Withholding => "Recurring deduction",
        },
    }
}

/// The clock mode for people.
pub(crate) fn mode_label(lang: Lang, m: SandboxMode) -> &'static str {
    match m {
        SandboxMode::Auto => lang.pick(
            "自动：实时时钟，通知自动发送和重试",
            "Automatic: real-time clock, notifications sent and retried by themselves",
        ),
        SandboxMode::Explicit => lang.pick(
            "手动时钟：时间静止，手动推进后才会发生",
            "Manual clock: time stands still until you advance it",
        ),
    }
}

/// Why a notification was sent, for people.
pub(crate) fn event_label(lang: Lang, event: &str) -> &'static str {
    match event.strip_prefix("trigger:").unwrap_or(event) {
        "paid" => lang.pick("付款", "Payment"),
        "partial_refund" => lang.pick("部分退款", "Partial refund"),
        "full_refund" => lang.pick("全额退款", "Full refund"),
        "closed" => lang.pick("关闭", "Closed"),
        "finished" => lang.pick("交易结束", "Finished"),
        "dut_user_sign" => lang.pick("协议签约", "Agreement signed"),
        "dut_user_unsign" => lang.pick("协议解约", "Agreement ended"),
        "tampered" => lang.pick("篡改（测试）", "Tampered (test)"),
        "duplicate" => lang.pick("重复（测试）", "Duplicate (test)"),
        _ => lang.pick("其他", "Other"),
    }
}

/// The kind of one delivery attempt, for people.
pub(crate) fn attempt_kind_label(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "scheduled" => lang.pick("按计划", "Scheduled"),
        "duplicate" => lang.pick("重复", "Duplicate"),
        "resend" => lang.pick("重发", "Resent"),
        "trigger" => lang.pick("触发", "Triggered"),
        _ => lang.pick("其他", "Other"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_label_in_both_languages() {
        for l in [Lang::Zh, Lang::En] {
            for s in [
                DeliveryState::Pending,
                DeliveryState::Delivered,
                DeliveryState::GaveUp,
                DeliveryState::OneShot,
            ] {
                assert!(!delivery_state_label(l, s).contains('_'));
            }
            for c in [
                "WAIT_BUYER_PAY",
                "TRADE_SUCCESS",
                "TRADE_CLOSED",
                "TRADE_FINISHED",
            ] {
                assert_ne!(trade_status_label(l, c), trade_status_label(l, "?"), "{c}");
            }
        }
        assert_eq!(
            delivery_state_label(Lang::En, DeliveryState::OneShot),
            "Sent once"
        );
        assert_eq!(
            mode_label(Lang::En, SandboxMode::Auto).split(':').next(),
            Some("Automatic")
        );
    }
}
