//! The console's buttons: HTML forms that POST here and act as the buyer
//! or as Alipay — pay (`Sandbox::pay`), close an unpaid trade and refund
//! (`Sandbox::trigger`, as `zhifu sandbox trigger` does), resend a
//! notification (`Sandbox::resend`), advance the clock in explicit mode
//! (`Sandbox::advance`) — then redirect back to the console page with a
//! notice. Nothing here changes a trade by itself.
//!
//! The sandbox is a local tool without accounts, so a form is accepted when
//! it carries this process's token (rendered into every console form) and
//! the browser does not say it came from another site (`Sec-Fetch-Site`,
//! `Origin`): a page on another origin cannot make the developer's browser
//! pay or refund.

use std::time::Duration;

use alipay::protocol::html_escape as esc;
use axum::Form;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::console::{find, form_token, trade_path};
use crate::error::SandboxError;
use crate::html::frame;
use crate::lang::Lang;
use crate::sandbox::Sandbox;
use crate::trigger::{TriggerKind, TriggerRequest};

/// Whether a form POST comes from a page of this origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && site != "same-origin"
        && site != "none"
    {
        return false;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| matches!(scheme, "http" | "https") && rest == host),
        (Some(_), None) => false,
    }
}

/// The form of every action button.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    /// Refund amount, `"88.88"`; empty refunds what is left.
    #[serde(default)]
    amount: Option<String>,
    /// Clock advance.
    #[serde(default)]
    seconds: Option<String>,
    /// The console page to return to.
    #[serde(default)]
    back: Option<String>,
}

/// Why an action was refused, as a page.
fn refused(lang: Lang, status: StatusCode, message: &str, back: &str) -> Response {
    let mut r = frame(
        lang,
        lang.pick("操作未完成", "Not done"),
        &format!(
            "<h1>{}</h1><p id=\"error\" class=\"notice error\" role=\"alert\">{}</p><p><a href=\"{}\">{}</a></p>",
            lang.pick("操作未完成", "Not done"),
            esc(message),
            esc(back),
            lang.pick("返回", "Back"),
        ),
        true,
        false,
    );
    *r.status_mut() = status;
    r
}

fn error_status(e: &SandboxError) -> StatusCode {
    match e {
        SandboxError::UnknownApp(_)
        | SandboxError::TradeNotFound { .. }
        | SandboxError::DeliveryNotFound(_) => StatusCode::NOT_FOUND,
        SandboxError::InvalidTradeState { .. } => StatusCode::CONFLICT,
        SandboxError::InvalidInput(_) | SandboxError::AmbiguousApp(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn chain(e: &SandboxError) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// The form check every action starts with: the refusal page when the
/// form is not one this process rendered for this origin.
fn refuse_form(headers: &HeaderMap, form: &ActionForm, lang: Lang, back: &str) -> Option<Response> {
    let why = if !same_origin(headers) {
        lang.pick(
            "这个表单来自其他网站，已拒绝。",
            "This form came from another site and was refused.",
        )
    } else if form.csrf != form_token() {
        lang.pick(
            "页面已过期（沙箱重启过），请刷新后再试。",
            "This page is out of date (the sandbox restarted); reload it and try again.",
        )
    } else {
        return None;
    };
    Some(refused(lang, StatusCode::FORBIDDEN, why, back))
}

fn after(path: &str, done: &str) -> Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}done={done}")).into_response()
}

/// What a trade looks like for "did the action happen": state and refunds.
async fn snapshot(sb: &Sandbox, app_id: &str, out_trade_no: &str) -> Option<(String, u64)> {
    let st = sb.lock().await;
    find(&st, app_id, out_trade_no).map(|r| (r.state, r.refunded_fen))
}

/// `POST /sandbox/trades/{app_id}/{out_trade_no}/{action}`: `pay`,
/// `close` or `refund`, then back to the trade.
pub(crate) async fn trade_action(
    AxumState(sb): AxumState<Sandbox>,
    Path((app_id, out_trade_no, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let path = trade_path(&app_id, &out_trade_no);
    let (lang, _) = Lang::of(&headers, None);
    if let Some(r) = refuse_form(&headers, &form, lang, &path) {
        return r;
    }
    let trigger = |kind: TriggerKind, refund_amount: Option<String>| TriggerRequest {
        kind,
        url: None,
        app_id: Some(app_id.clone()),
        out_trade_no: Some(out_trade_no.clone()),
        total_amount: None,
        refund_amount,
        subject: None,
    };
    let before = snapshot(&sb, &app_id, &out_trade_no).await;
    let (result, done) = match action.as_str() {
        "pay" => (sb.pay(Some(&app_id), &out_trade_no).await, "paid"),
        "close" => (
            sb.trigger(trigger(TriggerKind::Closed, None))
                .await
                .map(|_| ()),
            "closed",
        ),
        "refund" => {
            let amount = form
                .amount
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned);
            let kind = if amount.is_some() {
                TriggerKind::PartialRefund
            } else {
                TriggerKind::FullRefund
            };
            (
                sb.trigger(trigger(kind, amount)).await.map(|_| ()),
                "refunded",
            )
        }
        _ => {
            return refused(
                lang,
                StatusCode::NOT_FOUND,
                lang.pick("没有这个操作。", "There is no such action."),
                &path,
            );
        }
    };
    match result {
        Ok(()) => after(&path, done),
        Err(e) => {
            // The trigger reports a trade change Alipay does not notify
            // about (the product's notify matrix) as an error; the change
            // itself happened.
            if before.is_some() && snapshot(&sb, &app_id, &out_trade_no).await != before {
                return after(&path, "silent");
            }
            refused(lang, error_status(&e), &chain(&e), &path)
        }
    }
}

/// Only console pages are valid places to return to (no open redirect);
/// a filter in the query is kept, an earlier notice is not.
fn console_path(back: Option<&str>, default: &str) -> String {
    match back {
        Some(b)
            if b.starts_with("/sandbox/")
                && b.bytes().all(|c| c.is_ascii_graphic())
                && !b.contains("//")
                && !b.contains('\\')
                && !b.contains("done=") =>
        {
            b.to_owned()
        }
        _ => default.to_owned(),
    }
}

/// `POST /sandbox/notifications/{id}/resend`: deliver once more now.
pub(crate) async fn resend(
    AxumState(sb): AxumState<Sandbox>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let back = console_path(form.back.as_deref(), "/sandbox/notifications");
    let (lang, _) = Lang::of(&headers, None);
    if let Some(r) = refuse_form(&headers, &form, lang, &back) {
        return r;
    }
    match sb.resend(id).await {
        Ok(_) => after(&back, "resent"),
        Err(e) => refused(lang, error_status(&e), &chain(&e), &back),
    }
}

/// `POST /sandbox/clock/advance`: move the clock by `seconds` and run what
/// became due (explicit mode; in auto mode the clock runs by itself).
pub(crate) async fn advance(
    AxumState(sb): AxumState<Sandbox>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let back = console_path(form.back.as_deref(), "/sandbox/");
    let (lang, _) = Lang::of(&headers, None);
    if let Some(r) = refuse_form(&headers, &form, lang, &back) {
        return r;
    }
    let Some(seconds) = form
        .seconds
        .as_deref()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s <= 366 * 86_400)
    else {
        return refused(
            lang,
            StatusCode::BAD_REQUEST,
            lang.pick(
                "请输入 0 到 31622400 之间的秒数。",
                "Give a number of seconds from 0 to 31622400.",
            ),
            &back,
        );
    };
    match sb.advance(Duration::from_secs(seconds)).await {
        Ok(_) => after(&back, "advanced"),
        Err(e) => refused(lang, error_status(&e), &chain(&e), &back),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forms_from_other_sites_are_refused() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h), "a client that sends neither header (curl)");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:4000"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:4000"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(!same_origin(&h));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn only_console_pages_are_returned_to() {
        assert_eq!(
            console_path(Some("/sandbox/trades/a/b"), "/x"),
            "/sandbox/trades/a/b"
        );
        assert_eq!(
            console_path(Some("/sandbox/notifications?out_trade_no=A1"), "/x"),
            "/sandbox/notifications?out_trade_no=A1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/sandbox/",
            "/sandbox/..\\x",
            "/sandbox/x\r\nSet-Cookie: a=b",
            "/sandbox/trades/a/b?done=paid",
            "/admin",
        ] {
            assert_eq!(console_path(Some(bad), "/sandbox/"), "/sandbox/", "{bad}");
        }
    }
}
