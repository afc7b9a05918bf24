//! Asynchronous notifications (docs/protocol.md §6): why one is sent ([`Event`]), the
//! `trade_status_sync` form with every field the real one carries, signed
//! by the sandbox's [`AlipaySigner`] (sign and sign_type excluded, docs/protocol.md §6.4),
//! and the HTTP POST with its outcome. Whether and when to send is the
//! scheduler's and the worker's business.

use alipay::testing::{AlipaySigner, form_body};
use alipay::{Charset, SignType};
use serde_json::json;
use time::OffsetDateTime;

use crate::error::SandboxError;
use crate::model::{Agreement, App, Trade, beijing, instant, millis, yuan};

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Paid,
    PartialRefund,
    FullRefund,
    Closed,
    Finished,
}

impl Event {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Event::Paid => "paid",
            Event::PartialRefund => "partial_refund",
            Event::FullRefund => "full_refund",
            Event::Closed => "closed",
            Event::Finished => "finished",
        }
    }

    fn trade_status(self) -> &'static str {
        match self {
            Event::Paid | Event::PartialRefund => "TRADE_SUCCESS",
            Event::FullRefund | Event::Closed => "TRADE_CLOSED",
            Event::Finished => "TRADE_FINISHED",
        }
    }
}

/// A signed notification body.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub body: String,
    pub trade_status: String,
    pub params: Vec<(String, String)>,
}

/// `gmt_refund` carries milliseconds in real notifications.
fn beijing_millis(ms: i64) -> String {
    format!("{}.{:03}", beijing(ms), ms.rem_euclid(1000))
}

/// Builds and signs the notification of `event` for `t`: every field the
/// real one carries for that event, none empty (docs/protocol.md §6.3, §6.4 step 3).
pub(crate) fn build(
    t: &Trade,
    app: &App,
    event: Event,
    notify_id: &str,
    now: OffsetDateTime,
    signer: &AlipaySigner,
) -> Result<Built, SandboxError> {
    let mut p: Vec<(String, String)> = Vec::with_capacity(32);
    let mut push = |k: &str, v: String| {
        if !v.is_empty() {
            p.push((k.to_owned(), v));
        }
    };
    let paid = t.gmt_payment.is_some();
    let total = yuan(t.terms.total_fen);
    push("gmt_create", beijing(t.gmt_create));
    push("charset", t.terms.charset.clone());
    push("seller_email", app.seller_email());
    push("subject", t.terms.subject.clone());
    if let Some(b) = &t.terms.body {
        push("body", b.clone());
    }
    push("buyer_id", t.buyer_id.clone());
    if paid {
        push("invoice_amount", total.clone());
    }
    push("notify_id", notify_id.to_owned());
    if paid {
        push(
            "fund_bill_list",
            json!([{"amount": total, "fundChannel": "ALIPAYACCOUNT"}]).to_string(),
        );
    }
    push("notify_type", "trade_status_sync".into());
    push("trade_status", event.trade_status().into());
    if paid {
        push("receipt_amount", total.clone());
        push("buyer_pay_amount", total.clone());
    }
    push("app_id", t.app_id.clone());
    push("seller_id", t.seller_id.clone());
    if let Some(pt) = t.gmt_payment {
        push("gmt_payment", beijing(pt));
    }
    push("notify_time", alipay::time::format_beijing(now));
    if let Some(pb) = &t.terms.passback_params {
        push("passback_params", pb.clone());
    }
    push("version", "1.0".into());
    push("out_trade_no", t.out_trade_no.clone());
    push("total_amount", total);
    push("trade_no", t.trade_no.clone());
    push("auth_app_id", t.app_id.clone());
    push("buyer_logon_id", t.buyer_logon_id.clone());
    if paid {
        push("point_amount", "0.00".into());
    }
    if matches!(event, Event::PartialRefund | Event::FullRefund)
        && let Some(last) = t.refunds.last()
    {
        push("refund_fee", yuan(t.refunded_fen()));
        push("gmt_refund", beijing_millis(last.at));
        push("out_biz_no", last.out_request_no.clone());
    }
    if matches!(event, Event::FullRefund | Event::Closed | Event::Finished) {
        let close = t.gmt_close.unwrap_or_else(|| millis(now));
        push("gmt_close", alipay::time::format_beijing(instant(close)));
    }
    let sign_type = SignType::parse(&t.terms.sign_type).unwrap_or(SignType::Rsa2);
    let charset = Charset::parse(&t.terms.charset).unwrap_or(Charset::Utf8);
    let p = signer.sign_notification(p, sign_type, charset)?;
    Ok(Built {
        body: form_body(&p, charset),
        trade_status: event.trade_status().to_owned(),
        params: p,
    })
}

/// Builds and signs an agreement notification (docs/agreements.md §4 and
/// its Sandbox section): `notify_type` `dut_user_sign` after signing,
/// `dut_user_unsign` after unsigning, with the agreement's fields under
/// their current names, signed like a trade notification.
pub(crate) fn build_agreement(
    a: &Agreement,
    notify_type: &str,
    logon_id: &str,
    notify_id: &str,
    now: OffsetDateTime,
    signer: &AlipaySigner,
) -> Result<String, SandboxError> {
    let mut p: Vec<(String, String)> = Vec::with_capacity(24);
    let mut push = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            p.push((k.to_owned(), v));
        }
    };
    push("notify_id", Some(notify_id.to_owned()));
    push("notify_type", Some(notify_type.to_owned()));
    push("notify_time", Some(alipay::time::format_beijing(now)));
    push("charset", Some(a.charset.clone()));
    push("version", Some("1.0".into()));
    push("app_id", Some(a.app_id.clone()));
    push("auth_app_id", Some(a.app_id.clone()));
    push("agreement_no", Some(a.agreement_no.clone()));
    push("external_agreement_no", a.external_agreement_no.clone());
    push(
        "personal_product_code",
        Some(a.personal_product_code.clone()),
    );
    push("sign_scene", Some(a.sign_scene.clone()));
    push("status", Some(a.status.as_str().to_owned()));
    push("alipay_user_id", Some(a.principal_id.clone()));
    push("alipay_logon_id", Some(logon_id.to_owned()));
    push("external_logon_id", a.external_logon_id.clone());
    push("sign_time", a.sign_time.map(beijing));
    push("valid_time", a.sign_time.map(beijing));
    push("invalid_time", a.invalid_at.map(beijing));
    push("unsign_time", a.unsign_time.map(beijing));
    let sign_type = SignType::parse(&a.sign_type).unwrap_or(SignType::Rsa2);
    let charset = Charset::parse(&a.charset).unwrap_or(Charset::Utf8);
    let p = signer.sign_notification(p, sign_type, charset)?;
    Ok(form_body(&p, charset))
}

/// What came back from one POST.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Answered { status: u16, body: String },
    Failed(String),
}

impl Outcome {
    /// Only HTTP 200 with exactly `success` counts (docs/protocol.md §6.1).
    pub(crate) fn is_success(&self) -> bool {
        matches!(self, Outcome::Answered { status: 200, body } if body == "success")
    }
}

/// POSTs one notification body.
pub(crate) async fn post(http: &reqwest::Client, url: &str, body: &str, charset: &str) -> Outcome {
    let resp = http
        .post(url)
        .header(
            "content-type",
            format!("application/x-www-form-urlencoded; charset={charset}"),
        )
        .body(body.to_owned())
        .send()
        .await;
    match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.bytes().await {
                Ok(b) => {
                    let mut body = String::from_utf8_lossy(&b[..b.len().min(2048)]).into_owned();
                    body.shrink_to_fit();
                    Outcome::Answered { status, body }
                }
                Err(e) => Outcome::Failed(error_chain(&e)),
            }
        }
        Err(e) => Outcome::Failed(error_chain(&e)),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_success_counts() {
        let ok = |status, body: &str| Outcome::Answered {
            status,
            body: body.into(),
        };
        assert!(ok(200, "success").is_success());
        assert!(!ok(200, "success\n").is_success());
        assert!(!ok(200, "SUCCESS").is_success());
        assert!(!ok(500, "success").is_success());
        assert!(!Outcome::Failed("refused".into()).is_success());
    }
}
