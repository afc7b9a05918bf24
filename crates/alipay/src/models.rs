//! Typed business parameters (`biz_content`) and responses of the trade APIs
//! (docs/protocol.md §5.2), with the field rules of docs/protocol.md §5.1 checked before anything is signed.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::agreement::AgreementSignParams;
use crate::amount::Amount;
use crate::error::{Error, Result};
use crate::notify::{FundBill, TradeStatus};
use crate::time::parse_beijing;

/// Business parameters of one API method: serialises to `biz_content`.
pub trait BizContent: Serialize {
    /// The API method, e.g. `alipay.trade.query`.
    fn method(&self) -> &str;
    /// Checks Alipay's field rules; called before signing.
    ///
    /// # Errors
    /// [`Error::Field`] or [`Error::Amount`].
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Top-level request parameters besides the system ones (for APIs that
    /// take their arguments outside `biz_content`, like
    /// `alipay.system.oauth.token`'s `grant_type` and `code`).
    fn text_params(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Whether the request carries `biz_content` at all.
    fn has_biz_content(&self) -> bool {
        true
    }
}

/// A server-to-server API call with a typed response.
pub trait ApiRequest: BizContent {
    /// The decoded response node.
    type Response: DeserializeOwned;
    /// Whether repeating this exact request can never do anything twice
    /// (queries; a refund with its `out_request_no`). The client retries
    /// only such requests.
    fn retry_safe(&self) -> bool {
        false
    }
}

/// A merchant order number: 1–64 of `A-Z a-z 0-9 _ -`.
///
/// docs/protocol.md §5.1 says letters, digits and underscore; real production notifications
/// carry hyphens (`20190815155618536-564-57` in the official Node SDK's
/// test), so hyphens are accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OutTradeNo(String);

impl OutTradeNo {
    /// Validates an order number.
    ///
    /// # Errors
    /// [`Error::Field`].
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        check_id("out_trade_no", &s, 64)?;
        Ok(OutTradeNo(s))
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutTradeNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OutTradeNo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        OutTradeNo::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

pub(crate) fn check_id(field: &'static str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Err(Error::field(field, "must not be empty"));
    }
    if s.len() > max {
        return Err(Error::field(field, format!("longer than {max} characters")));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(Error::field(
            field,
            format!("character {c:?} not allowed (letters, digits, `_`, `-`)"),
        ));
    }
    Ok(())
}

pub(crate) fn check_subject(s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(Error::field("subject", "must not be empty"));
    }
    if s.chars().count() > 256 {
        return Err(Error::field("subject", "longer than 256 characters"));
    }
    if let Some(c) = s.chars().find(|c| matches!(c, '/' | '=' | '&')) {
        return Err(Error::field("subject", format!("must not contain {c:?}")));
    }
    Ok(())
}

pub(crate) fn check_len(field: &'static str, s: Option<&str>, max: usize) -> Result<()> {
    if let Some(s) = s
        && s.chars().count() > max
    {
        return Err(Error::field(field, format!("longer than {max} characters")));
    }
    Ok(())
}

/// `timeout_express`: `Nm`, `Nh`, `Nd` (integers, 1m–15d) or `1c`.
pub(crate) fn check_timeout_express(field: &'static str, s: Option<&str>) -> Result<()> {
    let Some(s) = s else { return Ok(()) };
    if s == "1c" {
        return Ok(());
    }
    let bad = || Error::field(field, format!("{s:?} is not `<integer>m|h|d` or `1c`"));
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 5 {
        return Err(bad());
    }
    let n: u32 = num.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "m" => n,
        "h" => n * 60,
        "d" => n * 1440,
        _ => return Err(bad()),
    };
    if !(1..=15 * 1440).contains(&minutes) {
        return Err(Error::field(field, "outside 1m ..= 15d"));
    }
    Ok(())
}

pub(crate) fn check_time_expire(s: Option<&str>) -> Result<()> {
    match s {
        Some(t) if parse_beijing(t).is_none() => Err(Error::field(
            "time_expire",
            "expected `yyyy-MM-dd HH:mm:ss` (Beijing time)",
        )),
        _ => Ok(()),
    }
}

fn check_payable(a: Amount) -> Result<()> {
    a.require_payable()
}

/// Identifies a trade by the merchant's number or Alipay's (`trade_no` wins
/// at Alipay when both are sent, so we send exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeRef {
    /// The merchant's `out_trade_no`.
    OutTradeNo(String),
    /// Alipay's `trade_no`.
    TradeNo(String),
}

impl TradeRef {
    fn validate(&self) -> Result<()> {
        match self {
            TradeRef::OutTradeNo(s) => check_id("out_trade_no", s, 64),
            TradeRef::TradeNo(s) => check_id("trade_no", s, 64),
        }
    }
}

/// Extra business fields not modelled here, merged into `biz_content`.
pub type ExtraFields = BTreeMap<String, serde_json::Value>;

macro_rules! order_fields_validate {
    ($self:ident) => {{
        check_payable($self.total_amount)?;
        check_subject(&$self.subject)?;
        check_len("body", $self.body.as_deref(), 128)?;
        check_timeout_express("timeout_express", $self.timeout_express.as_deref())?;
        check_time_expire($self.time_expire.as_deref())?;
    }};
}

/// `alipay.trade.page.pay`: PC website payment (client-side, docs/protocol.md §2.4).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradePagePay {
    /// Merchant order number.
    pub out_trade_no: OutTradeNo,
    /// Amount to pay.
    pub total_amount: Amount,
    /// Order title (≤256, no `/ = &`).
    pub subject: String,
    /// Always `FAST_INSTANT_TRADE_PAY`.
    pub product_code: String,
    /// Description (≤128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Relative timeout (`90m`, `2h`, `1c`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline in Beijing time; wins over `timeout_express`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Embedded QR mode (`0`,`1`,`3`,`4`; `2` = redirect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_pay_mode: Option<String>,
    /// Echoed back in the notification; URL-encode it yourself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passback_params: Option<String>,
    /// Pay and sign: the agreement signed with this payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_sign_params: Option<AgreementSignParams>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradePagePay {
    /// A page-pay order with the required fields.
    pub fn new(out_trade_no: OutTradeNo, total_amount: Amount, subject: impl Into<String>) -> Self {
        TradePagePay {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            product_code: "FAST_INSTANT_TRADE_PAY".into(),
            body: None,
            timeout_express: None,
            time_expire: None,
            qr_pay_mode: None,
            passback_params: None,
            agreement_sign_params: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradePagePay {
    fn method(&self) -> &str {
        "alipay.trade.page.pay"
    }
    fn validate(&self) -> Result<()> {
        order_fields_validate!(self);
        if let Some(sign) = &self.agreement_sign_params {
            sign.validate()?;
        }
        Ok(())
    }
}

/// `alipay.trade.wap.pay`: mobile website payment (client-side, docs/protocol.md §2.4).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeWapPay {
    /// Merchant order number.
    pub out_trade_no: OutTradeNo,
    /// Amount to pay.
    pub total_amount: Amount,
    /// Order title.
    pub subject: String,
    /// `QUICK_WAP_WAY`.
    pub product_code: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Relative timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Where the buyer goes when abandoning payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quit_url: Option<String>,
    /// Echoed back in the notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passback_params: Option<String>,
    /// Pay and sign: the agreement signed with this payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_sign_params: Option<AgreementSignParams>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradeWapPay {
    /// A wap-pay order with the required fields.
    pub fn new(out_trade_no: OutTradeNo, total_amount: Amount, subject: impl Into<String>) -> Self {
        TradeWapPay {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            product_code: "QUICK_WAP_WAY".into(),
            body: None,
            timeout_express: None,
            time_expire: None,
            quit_url: None,
            passback_params: None,
            agreement_sign_params: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradeWapPay {
    fn method(&self) -> &str {
        "alipay.trade.wap.pay"
    }
    fn validate(&self) -> Result<()> {
        order_fields_validate!(self);
        if let Some(sign) = &self.agreement_sign_params {
            sign.validate()?;
        }
        Ok(())
    }
}

/// `alipay.trade.app.pay`: the order string for the Alipay client SDK.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeAppPay {
    /// Merchant order number.
    pub out_trade_no: OutTradeNo,
    /// Amount to pay.
    pub total_amount: Amount,
    /// Order title.
    pub subject: String,
    /// `QUICK_MSECURITY_PAY`.
    pub product_code: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Relative timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Echoed back in the notification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passback_params: Option<String>,
    /// Pay and sign: the agreement signed with this payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_sign_params: Option<AgreementSignParams>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradeAppPay {
    /// An app-pay order with the required fields.
    pub fn new(out_trade_no: OutTradeNo, total_amount: Amount, subject: impl Into<String>) -> Self {
        TradeAppPay {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            product_code: "QUICK_MSECURITY_PAY".into(),
            body: None,
            timeout_express: None,
            time_expire: None,
            passback_params: None,
            agreement_sign_params: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradeAppPay {
    fn method(&self) -> &str {
        "alipay.trade.app.pay"
    }
    fn validate(&self) -> Result<()> {
        order_fields_validate!(self);
        if let Some(sign) = &self.agreement_sign_params {
            sign.validate()?;
        }
        Ok(())
    }
}

/// `alipay.trade.precreate`: a QR code the buyer scans.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradePrecreate {
    /// Merchant order number.
    pub out_trade_no: OutTradeNo,
    /// Amount to pay.
    pub total_amount: Amount,
    /// Order title.
    pub subject: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Relative timeout of the trade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Store id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradePrecreate {
    /// A precreate order with the required fields.
    pub fn new(out_trade_no: OutTradeNo, total_amount: Amount, subject: impl Into<String>) -> Self {
        TradePrecreate {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            body: None,
            timeout_express: None,
            time_expire: None,
            store_id: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradePrecreate {
    fn method(&self) -> &str {
        "alipay.trade.precreate"
    }
    fn validate(&self) -> Result<()> {
        order_fields_validate!(self);
        Ok(())
    }
}

impl ApiRequest for TradePrecreate {
    type Response = PrecreateResponse;
}

/// Answer of `alipay.trade.precreate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PrecreateResponse {
    /// Merchant order number.
    pub out_trade_no: String,
    /// The content of the QR code to show.
    pub qr_code: String,
}

/// `alipay.trade.create`: a trade for a known buyer (JSAPI / mini-program).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeCreate {
    /// Merchant order number.
    pub out_trade_no: OutTradeNo,
    /// Amount to pay.
    pub total_amount: Amount,
    /// Order title.
    pub subject: String,
    /// `JSAPI_PAY` for mini-programs / in-app pages, `FACE_TO_FACE_PAYMENT` default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Buyer's `2088…` user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_id: Option<String>,
    /// Buyer's open id (newer apps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buyer_open_id: Option<String>,
    /// Relative timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// The mini-program or in-app page's app id when it differs from the
    /// paying app (`op_app_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op_app_id: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradeCreate {
    /// A create order with the required fields.
    pub fn new(out_trade_no: OutTradeNo, total_amount: Amount, subject: impl Into<String>) -> Self {
        TradeCreate {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            product_code: None,
            body: None,
            buyer_id: None,
            buyer_open_id: None,
            timeout_express: None,
            time_expire: None,
            op_app_id: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradeCreate {
    fn method(&self) -> &str {
        "alipay.trade.create"
    }
    fn validate(&self) -> Result<()> {
        order_fields_validate!(self);
        if self.buyer_id.is_none() && self.buyer_open_id.is_none() {
            return Err(Error::field(
                "buyer_id",
                "buyer_id or buyer_open_id is required",
            ));
        }
        Ok(())
    }
}

impl ApiRequest for TradeCreate {
    type Response = CreateResponse;
}

/// Answer of `alipay.trade.create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreateResponse {
    /// Merchant order number.
    pub out_trade_no: String,
    /// Alipay's trade number, handed to `tradePay`.
    pub trade_no: String,
}

/// `alipay.trade.pay`: barcode payment (merchant scans the buyer).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradePay {
    /// Merchant order number.
    pub out_trade_no: OutTradeNo,
    /// Amount to pay.
    pub total_amount: Amount,
    /// Order title.
    pub subject: String,
    /// The buyer's barcode.
    pub auth_code: String,
    /// `bar_code` (default) or `security_code`.
    pub scene: String,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Relative timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradePay {
    /// A barcode payment.
    pub fn new(
        out_trade_no: OutTradeNo,
        total_amount: Amount,
        subject: impl Into<String>,
        auth_code: impl Into<String>,
    ) -> Self {
        TradePay {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            auth_code: auth_code.into(),
            scene: "bar_code".into(),
            body: None,
            timeout_express: None,
            time_expire: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradePay {
    fn method(&self) -> &str {
        "alipay.trade.pay"
    }
    fn validate(&self) -> Result<()> {
        order_fields_validate!(self);
        if self.auth_code.is_empty() || self.auth_code.len() > 64 {
            return Err(Error::field("auth_code", "must be 1–64 characters"));
        }
        Ok(())
    }
}

impl ApiRequest for TradePay {
    type Response = PayResponse;
}

/// Answer of `alipay.trade.pay` (code `10000`; `10003` arrives as
/// [`Error::Gateway`] with [`crate::Outcome::WaitingForBuyer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PayResponse {
    /// Alipay's trade number.
    pub trade_no: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Total.
    pub total_amount: Amount,
    /// What the merchant receives.
    pub receipt_amount: Option<Amount>,
    /// What the buyer paid.
    pub buyer_pay_amount: Option<Amount>,
    /// Payment time.
    pub gmt_payment: Option<String>,
    /// Buyer's user id.
    pub buyer_user_id: Option<String>,
    /// Funding channels.
    #[serde(default)]
    pub fund_bill_list: Vec<FundBill>,
}

/// `alipay.trade.query`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeQuery {
    /// The trade.
    #[serde(flatten)]
    pub trade: TradeRef,
    /// e.g. `["fund_bill_list"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_options: Option<Vec<String>>,
}

impl TradeQuery {
    /// Query by merchant order number.
    pub fn by_out_trade_no(s: impl Into<String>) -> Self {
        TradeQuery {
            trade: TradeRef::OutTradeNo(s.into()),
            query_options: None,
        }
    }
    /// Query by Alipay trade number.
    pub fn by_trade_no(s: impl Into<String>) -> Self {
        TradeQuery {
            trade: TradeRef::TradeNo(s.into()),
            query_options: None,
        }
    }
}

impl BizContent for TradeQuery {
    fn method(&self) -> &str {
        "alipay.trade.query"
    }
    fn validate(&self) -> Result<()> {
        self.trade.validate()
    }
}

impl ApiRequest for TradeQuery {
    type Response = QueryResponse;
    fn retry_safe(&self) -> bool {
        true
    }
}

/// Answer of `alipay.trade.query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueryResponse {
    /// Alipay's trade number.
    pub trade_no: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// The trade's state.
    pub trade_status: TradeStatus,
    /// Total.
    pub total_amount: Amount,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// What the buyer paid.
    pub buyer_pay_amount: Option<Amount>,
    /// Paid with points.
    pub point_amount: Option<Amount>,
    /// Invoiceable.
    pub invoice_amount: Option<Amount>,
    /// What the merchant receives.
    pub receipt_amount: Option<Amount>,
    /// Payment time (`yyyy-MM-dd HH:mm:ss`).
    pub send_pay_date: Option<String>,
    /// Buyer's user id.
    pub buyer_user_id: Option<String>,
    /// Buyer's open id.
    pub buyer_open_id: Option<String>,
    /// Funding channels.
    #[serde(default)]
    pub fund_bill_list: Vec<FundBill>,
}

/// `alipay.trade.refund`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeRefund {
    /// The trade.
    #[serde(flatten)]
    pub trade: TradeRef,
    /// Amount to refund now.
    pub refund_amount: Amount,
    /// Refund request id, unique per trade; required for partial refunds and
    /// what makes a retried refund idempotent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_request_no: Option<String>,
    /// Reason shown to the buyer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradeRefund {
    /// A refund with its idempotency id.
    pub fn new(trade: TradeRef, refund_amount: Amount, out_request_no: impl Into<String>) -> Self {
        TradeRefund {
            trade,
            refund_amount,
            out_request_no: Some(out_request_no.into()),
            refund_reason: None,
            extra: ExtraFields::new(),
        }
    }
}

impl BizContent for TradeRefund {
    fn method(&self) -> &str {
        "alipay.trade.refund"
    }
    fn validate(&self) -> Result<()> {
        self.trade.validate()?;
        check_payable(self.refund_amount)?;
        if let Some(r) = &self.out_request_no {
            check_id("out_request_no", r, 64)?;
        }
        check_len("refund_reason", self.refund_reason.as_deref(), 256)
    }
}

impl ApiRequest for TradeRefund {
    type Response = RefundResponse;
    fn retry_safe(&self) -> bool {
        self.out_request_no.is_some()
    }
}

/// Answer of `alipay.trade.refund`. `code=10000` means accepted; money moved
/// only when `fund_change == "Y"` (a repeated `out_request_no` answers `N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundResponse {
    /// Alipay's trade number.
    pub trade_no: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// `Y` when this call moved money.
    pub fund_change: String,
    /// Cumulative refunded amount of the trade.
    pub refund_fee: Amount,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Refund time.
    pub gmt_refund_pay: Option<String>,
    /// Buyer's user id.
    pub buyer_user_id: Option<String>,
}

impl RefundResponse {
    /// Whether this call moved money.
    pub fn fund_changed(&self) -> bool {
        self.fund_change == "Y"
    }
}

/// `alipay.trade.fastpay.refund.query`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeRefundQuery {
    /// The trade.
    #[serde(flatten)]
    pub trade: TradeRef,
    /// The refund's `out_request_no` (or the `out_trade_no` for a refund made without one).
    pub out_request_no: String,
    /// e.g. `["gmt_refund_pay"]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_options: Option<Vec<String>>,
}

impl BizContent for TradeRefundQuery {
    fn method(&self) -> &str {
        "alipay.trade.fastpay.refund.query"
    }
    fn validate(&self) -> Result<()> {
        self.trade.validate()?;
        check_id("out_request_no", &self.out_request_no, 64)
    }
}

impl ApiRequest for TradeRefundQuery {
    type Response = RefundQueryResponse;
    fn retry_safe(&self) -> bool {
        true
    }
}

/// Answer of `alipay.trade.fastpay.refund.query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RefundQueryResponse {
    /// Alipay's trade number.
    pub trade_no: Option<String>,
    /// Merchant order number.
    pub out_trade_no: Option<String>,
    /// The refund request id.
    pub out_request_no: Option<String>,
    /// `REFUND_SUCCESS`; absent means not received or failed.
    pub refund_status: Option<String>,
    /// This refund's amount.
    pub refund_amount: Option<Amount>,
    /// The trade total.
    pub total_amount: Option<Amount>,
    /// Reason.
    pub refund_reason: Option<String>,
    /// Refund time, when requested.
    pub gmt_refund_pay: Option<String>,
}

impl RefundQueryResponse {
    /// Whether the refund succeeded.
    pub fn succeeded(&self) -> bool {
        self.refund_status.as_deref() == Some("REFUND_SUCCESS")
    }
}

/// `alipay.trade.close`: close an unpaid trade.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeClose {
    /// The trade.
    #[serde(flatten)]
    pub trade: TradeRef,
    /// Operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
}

impl BizContent for TradeClose {
    fn method(&self) -> &str {
        "alipay.trade.close"
    }
    fn validate(&self) -> Result<()> {
        self.trade.validate()
    }
}

impl ApiRequest for TradeClose {
    type Response = CloseResponse;
}

/// Answer of `alipay.trade.close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CloseResponse {
    /// Alipay's trade number.
    pub trade_no: Option<String>,
    /// Merchant order number.
    pub out_trade_no: Option<String>,
}

/// `alipay.trade.cancel`: close an unpaid face-to-face trade, or refund a paid one.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct TradeCancel {
    /// The trade.
    #[serde(flatten)]
    pub trade: TradeRef,
}

impl BizContent for TradeCancel {
    fn method(&self) -> &str {
        "alipay.trade.cancel"
    }
    fn validate(&self) -> Result<()> {
        self.trade.validate()
    }
}

impl ApiRequest for TradeCancel {
    type Response = CancelResponse;
    // Cancel is designed to be repeated (`retry_flag=Y` asks for it).
    fn retry_safe(&self) -> bool {
        true
    }
}

/// Answer of `alipay.trade.cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelResponse {
    /// Alipay's trade number.
    pub trade_no: Option<String>,
    /// Merchant order number.
    pub out_trade_no: String,
    /// `Y`: call again.
    pub retry_flag: Option<String>,
    /// `close` (was unpaid) or `refund` (was paid).
    pub action: Option<String>,
}

/// `alipay.data.dataservice.bill.downloadurl.query`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BillDownloadUrlQuery {
    /// `trade` or `signcustomer`.
    pub bill_type: String,
    /// `yyyy-MM-dd` or `yyyy-MM`.
    pub bill_date: String,
}

impl BizContent for BillDownloadUrlQuery {
    fn method(&self) -> &str {
        "alipay.data.dataservice.bill.downloadurl.query"
    }
    fn validate(&self) -> Result<()> {
        if !matches!(self.bill_type.as_str(), "trade" | "signcustomer") {
            return Err(Error::field(
                "bill_type",
                "expected `trade` or `signcustomer`",
            ));
        }
        let d = self.bill_date.as_bytes();
        let ok = (d.len() == 10 || d.len() == 7)
            && d.iter().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    *b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !ok {
            return Err(Error::field("bill_date", "expected yyyy-MM-dd or yyyy-MM"));
        }
        Ok(())
    }
}

impl ApiRequest for BillDownloadUrlQuery {
    type Response = BillDownloadUrlResponse;
    fn retry_safe(&self) -> bool {
        true
    }
}

/// Answer of the bill URL query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BillDownloadUrlResponse {
    /// Valid for a short time only.
    pub bill_download_url: String,
}

/// Any other API method: untyped `biz_content` and response.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GenericRequest {
    /// The method name.
    pub method: String,
    /// The business parameters.
    pub biz_content: serde_json::Value,
    /// Whether a retry can never act twice.
    pub retry_safe: bool,
}

impl Serialize for GenericRequest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.biz_content.serialize(s)
    }
}

impl BizContent for GenericRequest {
    fn method(&self) -> &str {
        &self.method
    }
    fn validate(&self) -> Result<()> {
        if self.method.is_empty()
            || self.method.len() > 128
            || !self
                .method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
        {
            return Err(Error::field(
                "method",
                "expected an API name like `alipay.trade.query`",
            ));
        }
        Ok(())
    }
}

impl ApiRequest for GenericRequest {
    type Response = serde_json::Value;
    fn retry_safe(&self) -> bool {
        self.retry_safe
    }
}

/// Chainable setters for optional text fields: `Some(value)` replaces what
/// was there, so a setter called twice keeps the last value.
macro_rules! text_setters {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $field(mut self, value: impl Into<String>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
        }
    };
}

/// `extra_field` for request types that carry [`ExtraFields`].
macro_rules! extra_setter {
    ($($ty:ident),* $(,)?) => {
        $(
            impl $ty {
                /// Adds a business field this type does not model; it is
                /// merged into `biz_content` next to the typed fields.
                #[must_use]
                pub fn extra_field(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
                    self.extra.insert(key.into(), value.into());
                    self
                }
            }
        )*
    };
}

text_setters!(TradePagePay {
    body,
    timeout_express,
    time_expire,
    qr_pay_mode,
    passback_params
});
text_setters!(TradeWapPay {
    body,
    timeout_express,
    time_expire,
    quit_url,
    passback_params
});
text_setters!(TradeAppPay {
    body,
    timeout_express,
    time_expire,
    passback_params
});
text_setters!(TradePrecreate {
    body,
    timeout_express,
    time_expire,
    store_id
});
text_setters!(TradeCreate {
    product_code,
    body,
    buyer_id,
    buyer_open_id,
    op_app_id,
    timeout_express,
    time_expire,
});
text_setters!(TradePay {
    body,
    timeout_express,
    time_expire
});
text_setters!(TradeClose { operator_id });
extra_setter!(
    TradePagePay,
    TradeWapPay,
    TradeAppPay,
    TradePrecreate,
    TradeCreate,
    TradePay,
    TradeRefund,
);

impl TradePagePay {
    /// Pay and sign: the buyer pays this order and signs a withholding
    /// agreement on the same page (`agreement_sign_params`).
    #[must_use]
    pub fn agreement_sign_params(mut self, params: AgreementSignParams) -> Self {
        self.agreement_sign_params = Some(params);
        self
    }
}

impl TradeWapPay {
    /// Pay and sign (`agreement_sign_params`), as on [`TradePagePay`].
    #[must_use]
    pub fn agreement_sign_params(mut self, params: AgreementSignParams) -> Self {
        self.agreement_sign_params = Some(params);
        self
    }
}

impl TradeAppPay {
    /// Pay and sign (`agreement_sign_params`), as on [`TradePagePay`].
    #[must_use]
    pub fn agreement_sign_params(mut self, params: AgreementSignParams) -> Self {
        self.agreement_sign_params = Some(params);
        self
    }
}

impl TradePay {
    /// `scene`: `bar_code` (the default) or `security_code`.
    #[must_use]
    pub fn scene(mut self, scene: impl Into<String>) -> Self {
        self.scene = scene.into();
        self
    }
}

impl TradeQuery {
    /// `query_options`, e.g. `["fund_bill_list"]`.
    #[must_use]
    pub fn query_options<I, S>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.query_options = Some(options.into_iter().map(Into::into).collect());
        self
    }
}

impl TradeRefund {
    /// The reason shown to the buyer (`refund_reason`).
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.refund_reason = Some(reason.into());
        self
    }
}

impl TradeRefundQuery {
    /// Queries the refund `out_request_no` of `trade`.
    pub fn new(trade: TradeRef, out_request_no: impl Into<String>) -> Self {
        TradeRefundQuery {
            trade,
            out_request_no: out_request_no.into(),
            query_options: None,
        }
    }
    /// `query_options`, e.g. `["gmt_refund_pay"]`.
    #[must_use]
    pub fn query_options<I, S>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.query_options = Some(options.into_iter().map(Into::into).collect());
        self
    }
}

impl TradeClose {
    /// Closes `trade`.
    pub fn new(trade: TradeRef) -> Self {
        TradeClose {
            trade,
            operator_id: None,
        }
    }
    /// Closes the trade of a merchant order number.
    pub fn by_out_trade_no(s: impl Into<String>) -> Self {
        TradeClose::new(TradeRef::OutTradeNo(s.into()))
    }
    /// Closes the trade of an Alipay trade number.
    pub fn by_trade_no(s: impl Into<String>) -> Self {
        TradeClose::new(TradeRef::TradeNo(s.into()))
    }
}

impl TradeCancel {
    /// Cancels `trade`.
    pub fn new(trade: TradeRef) -> Self {
        TradeCancel { trade }
    }
    /// Cancels the trade of a merchant order number.
    pub fn by_out_trade_no(s: impl Into<String>) -> Self {
        TradeCancel::new(TradeRef::OutTradeNo(s.into()))
    }
    /// Cancels the trade of an Alipay trade number.
    pub fn by_trade_no(s: impl Into<String>) -> Self {
        TradeCancel::new(TradeRef::TradeNo(s.into()))
    }
}

impl BillDownloadUrlQuery {
    /// The bill of `bill_type` (`trade` or `signcustomer`) for `bill_date`
    /// (`yyyy-MM-dd` or `yyyy-MM`); checked when signed.
    pub fn new(bill_type: impl Into<String>, bill_date: impl Into<String>) -> Self {
        BillDownloadUrlQuery {
            bill_type: bill_type.into(),
            bill_date: bill_date.into(),
        }
    }
    /// The `trade` bill for `bill_date`.
    pub fn trade(bill_date: impl Into<String>) -> Self {
        BillDownloadUrlQuery::new("trade", bill_date)
    }
}

impl GenericRequest {
    /// A call of `method` with `biz_content`; not retried unless
    /// [`mark_retry_safe`](GenericRequest::mark_retry_safe) says so.
    pub fn new(method: impl Into<String>, biz_content: serde_json::Value) -> Self {
        GenericRequest {
            method: method.into(),
            biz_content,
            retry_safe: false,
        }
    }
    /// Declares that repeating this call can never act twice (a query), so
    /// the client may retry it when the outcome is unknown.
    #[must_use]
    pub fn mark_retry_safe(mut self) -> Self {
        self.retry_safe = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules_are_checked() {
        assert!(OutTradeNo::new("A_1-b").is_ok());
        assert!(OutTradeNo::new("").is_err());
        assert!(OutTradeNo::new("a".repeat(65)).is_err());
        assert!(OutTradeNo::new("订单").is_err());
        assert!(OutTradeNo::new("a b").is_err());
        let no = OutTradeNo::new("X1").unwrap();
        let amt = Amount::parse("1.00").unwrap();
        assert!(TradePagePay::new(no.clone(), amt, "ok").validate().is_ok());
        for bad in ["a/b", "a=b", "a&b", "", &"长".repeat(257)] {
            assert!(
                TradePagePay::new(no.clone(), amt, bad).validate().is_err(),
                "{bad}"
            );
        }
        assert!(
            TradePagePay::new(no.clone(), Amount::ZERO, "x")
                .validate()
                .is_err()
        );
        let mut p = TradePagePay::new(no.clone(), amt, "x");
        for (t, ok) in [
            ("90m", true),
            ("1c", true),
            ("15d", true),
            ("16d", false),
            ("1.5h", false),
            ("0m", false),
            ("m", false),
        ] {
            p.timeout_express = Some(t.into());
            assert_eq!(p.validate().is_ok(), ok, "{t}");
        }
        p.timeout_express = None;
        p.time_expire = Some("2024-01-02T03:04:05".into());
        assert!(p.validate().is_err());
    }

    #[test]
    fn trade_ref_flattens_to_one_key() {
        let q = TradeQuery::by_out_trade_no("A1");
        assert_eq!(
            serde_json::to_string(&q).unwrap(),
            r#"{"out_trade_no":"A1"}"#
        );
        let r = TradeRefund::new(
            TradeRef::TradeNo("2024".into()),
            Amount::parse("1").unwrap(),
            "R1",
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"trade_no":"2024","refund_amount":"1.00","out_request_no":"R1"}"#
        );
    }
    /// The builders produce exactly the `biz_content` of the struct
    /// literals they replace.
    #[test]
    fn builders_match_struct_literals() {
        let no = OutTradeNo::new("ZF_1").unwrap();
        let amt = Amount::parse("12.30").unwrap();

        let mut literal = TradeWapPay::new(no.clone(), amt, "s");
        literal.body = Some("b".into());
        literal.quit_url = Some("https://q".into());
        literal.time_expire = Some("2024-01-02 03:04:05".into());
        literal.extra.insert("goods_type".into(), "1".into());
        let built = TradeWapPay::new(no.clone(), amt, "s")
            .body("b")
            .quit_url("https://q")
            .time_expire("2024-01-02 03:04:05")
            .extra_field("goods_type", "1");
        assert_eq!(json(&literal), json(&built));
        assert_eq!(
            json(&built),
            r#"{"out_trade_no":"ZF_1","total_amount":"12.30","subject":"s","product_code":"QUICK_WAP_WAY","body":"b","time_expire":"2024-01-02 03:04:05","quit_url":"https://q","goods_type":"1"}"#
        );

        let literal = TradeRefundQuery {
            trade: TradeRef::OutTradeNo("ZF_1".into()),
            out_request_no: "R1".into(),
            query_options: Some(vec!["gmt_refund_pay".into()]),
        };
        let built = TradeRefundQuery::new(TradeRef::OutTradeNo("ZF_1".into()), "R1")
            .query_options(["gmt_refund_pay"]);
        assert_eq!(json(&literal), json(&built));

        let literal = TradeClose {
            trade: TradeRef::TradeNo("2024".into()),
            operator_id: Some("op".into()),
        };
        assert_eq!(
            json(&literal),
            json(&TradeClose::by_trade_no("2024").operator_id("op"))
        );
        let literal = TradeCancel {
            trade: TradeRef::OutTradeNo("ZF_1".into()),
        };
        assert_eq!(json(&literal), json(&TradeCancel::by_out_trade_no("ZF_1")));

        let mut literal = TradeRefund::new(TradeRef::OutTradeNo("ZF_1".into()), amt, "R1");
        literal.refund_reason = Some("why".into());
        let built = TradeRefund::new(TradeRef::OutTradeNo("ZF_1".into()), amt, "R1").reason("why");
        assert_eq!(json(&literal), json(&built));

        let mut literal = TradeCreate::new(no.clone(), amt, "s");
        literal.product_code = Some("JSAPI_PAY".into());
        literal.buyer_open_id = Some("074a".into());
        literal.extra.insert("op_app_id".into(), "2021".into());
        let built = TradeCreate::new(no.clone(), amt, "s")
            .product_code("JSAPI_PAY")
            .buyer_open_id("074a")
            .op_app_id("2021");
        assert_eq!(
            json(&literal),
            json(&built),
            "op_app_id moved from extra to a field, same bytes"
        );

        let literal = BillDownloadUrlQuery {
            bill_type: "trade".into(),
            bill_date: "2024-01-02".into(),
        };
        assert_eq!(
            json(&literal),
            json(&BillDownloadUrlQuery::trade("2024-01-02"))
        );

        let literal = GenericRequest {
            method: "alipay.trade.query".into(),
            biz_content: serde_json::json!({"out_trade_no": "ZF_1"}),
            retry_safe: true,
        };
        let built = GenericRequest::new(
            "alipay.trade.query",
            serde_json::json!({"out_trade_no": "ZF_1"}),
        )
        .mark_retry_safe();
        assert_eq!(json(&literal), json(&built));
        assert_eq!(literal.retry_safe, built.retry_safe);

        let q = TradeQuery::by_out_trade_no("ZF_1").query_options(["fund_bill_list"]);
        assert_eq!(
            json(&q),
            r#"{"out_trade_no":"ZF_1","query_options":["fund_bill_list"]}"#
        );
    }

    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }
}
