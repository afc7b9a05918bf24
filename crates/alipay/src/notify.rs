//! Asynchronous notifications (docs/protocol.md §6) and `return_url` parameters (docs/protocol.md §6.7).
//!
//! The flow is: [`FormParams::parse`] the raw body **once** → verify with a
//! [`NotifyVerifier`] (which yields [`Verified`] params, the only way to
//! build a [`TradeNotification`]) → [`TradeNotification::check_against`] the
//! merchant's own order. Only then may anything change.

use serde::Serialize;
use time::OffsetDateTime;

use crate::amount::Amount;
use crate::charset::Charset;
use crate::error::{Error, Mismatch, Result};
use crate::keys::SignType;
use crate::sign::{NotifySignRule, notify_sign_content};
use crate::time::parse_beijing;
use crate::verify::AlipayKeys;

/// Form parameters exactly as received: decoded once (`%XX`, `+` → space),
/// in the charset the form names, duplicate keys refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormParams {
    pairs: Vec<(String, String)>,
    charset: Charset,
}

impl FormParams {
    /// Parses an `application/x-www-form-urlencoded` body (or a query string).
    ///
    /// # Errors
    /// [`Error::MalformedForm`] on duplicate keys or bytes that are not valid
    /// in the form's charset; [`Error::UnsupportedCharset`].
    pub fn parse(body: &[u8]) -> Result<Self> {
        let raw: Vec<(Vec<u8>, Vec<u8>)> = body
            .split(|&b| b == b'&')
            .filter(|seg| !seg.is_empty())
            .map(|seg| {
                let (k, v) = match seg.iter().position(|&b| b == b'=') {
                    Some(i) => (&seg[..i], &seg[i + 1..]),
                    None => (seg, &[][..]),
                };
                (percent_decode_form(k), percent_decode_form(v))
            })
            .collect();
        let charset = match raw.iter().find(|(k, _)| k == b"charset") {
            Some((_, v)) => Charset::parse(&String::from_utf8_lossy(v))?,
            None => Charset::Utf8,
        };
        let mut pairs = Vec::with_capacity(raw.len());
        for (k, v) in raw {
            let k = charset.decode_owned(k).ok_or_else(|| {
                Error::MalformedForm(format!("a key is not valid {}", charset.as_str()))
            })?;
            let v = charset.decode_owned(v).ok_or_else(|| {
                Error::MalformedForm(format!(
                    "the value of `{k}` is not valid {}",
                    charset.as_str()
                ))
            })?;
            pairs.push((k, v));
        }
        reject_duplicate_keys(&pairs)?;
        Ok(FormParams { pairs, charset })
    }

    /// Builds params from already-decoded pairs (e.g. a framework's form
    /// extractor). Duplicate keys are refused.
    ///
    /// # Errors
    /// [`Error::MalformedForm`], [`Error::UnsupportedCharset`].
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        reject_duplicate_keys(&pairs)?;
        let charset = match pairs.iter().find(|(k, _)| k == "charset") {
            Some((_, v)) => Charset::parse(v)?,
            None => Charset::Utf8,
        };
        Ok(FormParams { pairs, charset })
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All pairs in received order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The charset named by the form.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// The fields as a JSON object of strings, in received order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.pairs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }
}

/// A duplicated key would make "the value" ambiguous between the verifier
/// and whoever reads the form after it; refuse it.
fn reject_duplicate_keys(pairs: &[(String, String)]) -> Result<()> {
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    match keys.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(Error::MalformedForm(format!(
            "key `{}` appears twice",
            w[0]
        ))),
        None => Ok(()),
    }
}

/// `application/x-www-form-urlencoded` decoding of one component: `+` is a
/// space, `%XX` a byte; a `%` not followed by two hex digits stays literal
/// (as browsers and the WHATWG URL spec do).
fn percent_decode_form(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Parameters whose signature has been checked. Only [`NotifyVerifier`]
/// makes one.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    inner: T,
    rule: NotifySignRule,
}

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.inner
    }
    /// Which sign-content rule the signature matched.
    pub fn rule(&self) -> NotifySignRule {
        self.rule
    }
    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.inner
    }
}

/// Checks the signatures of notifications and `return_url` parameters
/// against Alipay's key.
#[derive(Debug, Clone)]
pub struct NotifyVerifier {
    keys: AlipayKeys,
}

impl NotifyVerifier {
    /// A verifier for the given Alipay key(s).
    pub fn new(keys: impl Into<AlipayKeys>) -> Self {
        NotifyVerifier { keys: keys.into() }
    }

    /// Parses and verifies a raw form body.
    ///
    /// # Errors
    /// As [`FormParams::parse`] and [`NotifyVerifier::verify`].
    pub fn verify_body(&self, body: &[u8]) -> Result<Verified<FormParams>> {
        self.verify(FormParams::parse(body)?)
    }

    /// Verifies parsed params. Tries the trade-notification rule (drop
    /// `sign` and `sign_type`) first, then the gateway-message rule (keep
    /// `sign_type`), as the official Node SDK does; within each, empty values
    /// kept (Java `rsaCheckV1`) and then dropped.
    ///
    /// # Errors
    /// [`Error::MissingSignature`], [`Error::UnsupportedSignType`],
    /// [`Error::BadSignature`].
    pub fn verify(&self, params: FormParams) -> Result<Verified<FormParams>> {
        let sign = params
            .get("sign")
            .filter(|s| !s.is_empty())
            .ok_or(Error::MissingSignature)?;
        let sign_type = match params.get("sign_type") {
            Some(s) => SignType::parse(s)?,
            // Some gateway messages omit it; RSA2 is the only current algorithm.
            None => SignType::Rsa2,
        };
        let has_empty = params.iter().any(|(_, v)| v.is_empty());
        for rule in [
            NotifySignRule::ExcludeSignType,
            NotifySignRule::KeepSignType,
        ] {
            for keep_empty in [true, false] {
                if !keep_empty && !has_empty {
                    continue;
                }
                let content = notify_sign_content(params.iter(), rule, keep_empty);
                let bytes = params.charset().encode(&content);
                if self.keys.verify_unnamed(sign_type, &bytes, sign).is_ok() {
                    return Ok(Verified {
                        inner: params,
                        rule,
                    });
                }
            }
        }
        Err(Error::BadSignature)
    }
}

/// Trade state as Alipay reports it (docs/protocol.md §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum TradeStatus {
    /// Created, not paid.
    WaitBuyerPay,
    /// Unpaid and closed, or paid and fully refunded.
    TradeClosed,
    /// Paid, refundable.
    TradeSuccess,
    /// Paid, no longer refundable.
    TradeFinished,
}

impl TradeStatus {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "WAIT_BUYER_PAY" => TradeStatus::WaitBuyerPay,
            "TRADE_CLOSED" => TradeStatus::TradeClosed,
            "TRADE_SUCCESS" => TradeStatus::TradeSuccess,
            "TRADE_FINISHED" => TradeStatus::TradeFinished,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::TradeClosed => "TRADE_CLOSED",
            TradeStatus::TradeSuccess => "TRADE_SUCCESS",
            TradeStatus::TradeFinished => "TRADE_FINISHED",
        }
    }

    /// Only `TRADE_SUCCESS` and `TRADE_FINISHED` mean the buyer paid.
    pub fn is_paid(&self) -> bool {
        matches!(self, TradeStatus::TradeSuccess | TradeStatus::TradeFinished)
    }
}

/// One entry of `fund_bill_list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct FundBill {
    /// Amount paid through this channel.
    pub amount: Amount,
    /// `ALIPAYACCOUNT`, `PCREDIT`, … (notifications write `fundChannel`,
    /// responses `fund_channel`; both are read).
    #[serde(alias = "fundChannel")]
    pub fund_channel: String,
}

/// A verified `trade_status_sync` notification, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TradeNotification {
    /// `notify_id`: constant across redeliveries.
    pub notify_id: String,
    /// `notify_type`, normally `trade_status_sync`.
    pub notify_type: String,
    /// `notify_time`.
    pub notify_time: OffsetDateTime,
    /// `app_id`.
    pub app_id: String,
    /// `auth_app_id`, if sent.
    pub auth_app_id: Option<String>,
    /// Alipay's trade number.
    pub trade_no: String,
    /// The merchant's order number.
    pub out_trade_no: String,
    /// `out_biz_no` (refund notifications: the refund's `out_request_no`).
    pub out_biz_no: Option<String>,
    /// `trade_status`.
    pub trade_status: TradeStatus,
    /// `total_amount`.
    pub total_amount: Amount,
    /// `receipt_amount`.
    pub receipt_amount: Option<Amount>,
    /// `buyer_pay_amount`.
    pub buyer_pay_amount: Option<Amount>,
    /// `refund_fee`: cumulative refunded amount (refund notifications).
    pub refund_fee: Option<Amount>,
    /// `seller_id`.
    pub seller_id: Option<String>,
    /// `buyer_id` / `buyer_open_id`.
    pub buyer_id: Option<String>,
    /// Masked buyer login, e.g. `xud***@126.com`.
    pub buyer_logon_id: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `gmt_payment`.
    pub gmt_payment: Option<OffsetDateTime>,
    /// `gmt_refund` (has fractional seconds on the wire sometimes; kept as text).
    pub gmt_refund: Option<String>,
    /// `gmt_close`.
    pub gmt_close: Option<OffsetDateTime>,
    /// `fund_bill_list`, parsed from its JSON text.
    pub fund_bill_list: Vec<FundBill>,
    /// `passback_params` exactly as received (still URL-encoded by the merchant).
    pub passback_params: Option<String>,
}

/// What the merchant's own record says the notification must match.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedOrder<'a> {
    /// The order's `out_trade_no`.
    pub out_trade_no: &'a str,
    /// The order's total.
    pub total_amount: Amount,
    /// The merchant's app id.
    pub app_id: &'a str,
    /// The expected payee (`2088…`), when configured.
    pub seller_id: Option<&'a str>,
}

impl TradeNotification {
    /// Types a verified notification.
    ///
    /// # Errors
    /// [`Error::MissingField`], [`Error::Amount`], [`Error::Timestamp`],
    /// [`Error::MalformedForm`] for an unknown `trade_status` or a bad
    /// `fund_bill_list`.
    pub fn from_verified(v: &Verified<FormParams>) -> Result<Self> {
        let p = v.get();
        let req = |k: &'static str| {
            p.get(k)
                .filter(|s| !s.is_empty())
                .ok_or(Error::MissingField(k))
        };
        let opt = |k: &str| p.get(k).filter(|s| !s.is_empty()).map(str::to_owned);
        let amount = |k: &'static str| {
            p.get(k)
                .filter(|s| !s.is_empty())
                .map(Amount::parse)
                .transpose()
        };
        let ts = |k: &'static str| -> Result<Option<OffsetDateTime>> {
            match p.get(k).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => parse_beijing(s).map(Some).ok_or_else(|| Error::Timestamp {
                    field: k,
                    value: s.chars().take(32).collect(),
                }),
            }
        };
        let status_text = req("trade_status")?;
        let trade_status = TradeStatus::parse(status_text)
            .ok_or_else(|| Error::MalformedForm(format!("unknown trade_status {status_text:?}")))?;
        let fund_bill_list = match p.get("fund_bill_list").filter(|s| !s.is_empty()) {
            None => Vec::new(),
            Some(s) => serde_json::from_str(s).map_err(|source| Error::Json {
                context: "fund_bill_list",
                source,
            })?,
        };
        Ok(TradeNotification {
            notify_id: req("notify_id")?.to_owned(),
            notify_type: opt("notify_type").unwrap_or_else(|| "trade_status_sync".into()),
            notify_time: ts("notify_time")?.ok_or(Error::MissingField("notify_time"))?,
            app_id: req("app_id")?.to_owned(),
            auth_app_id: opt("auth_app_id"),
            trade_no: req("trade_no")?.to_owned(),
            out_trade_no: req("out_trade_no")?.to_owned(),
            out_biz_no: opt("out_biz_no"),
            trade_status,
            total_amount: Amount::parse(req("total_amount")?)?,
            receipt_amount: amount("receipt_amount")?,
            buyer_pay_amount: amount("buyer_pay_amount")?,
            refund_fee: amount("refund_fee")?,
            seller_id: opt("seller_id"),
            buyer_id: opt("buyer_id").or_else(|| opt("buyer_open_id")),
            buyer_logon_id: opt("buyer_logon_id"),
            subject: opt("subject"),
            gmt_payment: ts("gmt_payment")?,
            gmt_refund: opt("gmt_refund"),
            gmt_close: ts("gmt_close")?,
            fund_bill_list,
            passback_params: opt("passback_params"),
        })
    }

    /// The merchant-side checks of docs/protocol.md §6.4 step 4. Returns every mismatch, not
    /// just the first, so the anomaly record says everything that was wrong.
    ///
    /// # Errors
    /// The list of [`Mismatch`]es.
    pub fn check_against(
        &self,
        expected: &ExpectedOrder<'_>,
    ) -> std::result::Result<(), Vec<Mismatch>> {
        check_common(
            &self.out_trade_no,
            self.total_amount,
            &self.app_id,
            self.seller_id.as_deref(),
            expected,
        )
    }
}

fn check_common(
    out_trade_no: &str,
    total_amount: Amount,
    app_id: &str,
    seller_id: Option<&str>,
    expected: &ExpectedOrder<'_>,
) -> std::result::Result<(), Vec<Mismatch>> {
    let mut m = Vec::new();
    if out_trade_no != expected.out_trade_no {
        m.push(Mismatch::OutTradeNo {
            expected: expected.out_trade_no.into(),
            got: out_trade_no.into(),
        });
    }
    if total_amount != expected.total_amount {
        m.push(Mismatch::TotalAmount {
            expected_fen: expected.total_amount.fen(),
            got_fen: total_amount.fen(),
        });
    }
    if app_id != expected.app_id {
        m.push(Mismatch::AppId {
            expected: expected.app_id.into(),
            got: app_id.into(),
        });
    }
    if let Some(seller) = expected.seller_id
        && seller_id != Some(seller)
    {
        m.push(Mismatch::SellerId {
            expected: seller.into(),
            got: seller_id.unwrap_or_default().into(),
        });
    }
    if m.is_empty() { Ok(()) } else { Err(m) }
}

/// The synchronous `return_url` parameters of page/wap pay (docs/protocol.md §6.7).
///
/// **Untrusted even when the signature verifies**: the buyer's browser
/// carries them, so they can be replayed, dropped or never arrive, and they
/// say nothing about `trade_status`. Use them to show "checking payment…"
/// and ask the backend (notification or `alipay.trade.query`) for the truth.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReturnParams {
    /// `alipay.trade.page.pay.return` or `alipay.trade.wap.pay.return`.
    pub method: String,
    /// `app_id`.
    pub app_id: String,
    /// `out_trade_no`.
    pub out_trade_no: String,
    /// `trade_no`.
    pub trade_no: String,
    /// `total_amount`.
    pub total_amount: Amount,
    /// `seller_id`.
    pub seller_id: Option<String>,
    /// `timestamp`.
    pub timestamp: Option<OffsetDateTime>,
}

impl ReturnParams {
    /// Types verified return parameters.
    ///
    /// # Errors
    /// [`Error::MissingField`], [`Error::Amount`].
    pub fn from_verified(v: &Verified<FormParams>) -> Result<Self> {
        let p = v.get();
        let req = |k: &'static str| {
            p.get(k)
                .filter(|s| !s.is_empty())
                .ok_or(Error::MissingField(k))
        };
        Ok(ReturnParams {
            method: req("method")?.to_owned(),
            app_id: req("app_id")?.to_owned(),
            out_trade_no: req("out_trade_no")?.to_owned(),
            trade_no: req("trade_no")?.to_owned(),
            total_amount: Amount::parse(req("total_amount")?)?,
            seller_id: p.get("seller_id").map(str::to_owned),
            timestamp: p.get("timestamp").and_then(parse_beijing),
        })
    }

    /// The same checks as for notifications; passing them still proves
    /// nothing about payment.
    ///
    /// # Errors
    /// The list of [`Mismatch`]es.
    pub fn check_against(
        &self,
        expected: &ExpectedOrder<'_>,
    ) -> std::result::Result<(), Vec<Mismatch>> {
        check_common(
            &self.out_trade_no,
            self.total_amount,
            &self.app_id,
            self.seller_id.as_deref(),
            expected,
        )
    }
}
