//! Typed business parameters (`biz_content`) and responses of the trade APIs
//! (docs/protocol.md §5.2), with the field rules of docs/protocol.md §5.1 checked before anything is signed.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

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

fn check_id(field: &'static str, s: &str, max: usize) -> Result<()> {
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

fn check_subject(s: &str) -> Result<()> {
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

fn check_len(field: &'static str, s: Option<&str>, max: usize) -> Result<()> {
    if let Some(s) = s
        && s.chars().count() > max
    {
        return Err(Error::field(field, format!("longer than {max} characters")));
    }
    Ok(())
}

/// `timeout_express`: `Nm`, `Nh`, `Nd` (integers, 1m–15d) or `1c`.
fn check_timeout_express(field: &'static str, s: Option<&str>) -> Result<()> {
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

fn check_time_expire(s: Option<&str>) -> Result<()> {
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
        Ok(())
    }
}

/// `alipay.trade.wap.pay`: mobile website payment (client-side, docs/protocol.md §2.4).
#[derive(Debug, Clone, Serialize)]
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
        Ok(())
    }
}

/// `alipay.trade.app.pay`: the order string for the Alipay client SDK.
#[derive(Debug, Clone, Serialize)]
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
        Ok(())
    }
}

/// `alipay.trade.precreate`: a QR code the buyer scans.
#[derive(Debug, Clone, Serialize)]
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
pub struct PrecreateResponse {
    /// Merchant order number.
    pub out_trade_no: String,
    /// The content of the QR code to show.
    pub qr_code: String,
}

/// `alipay.trade.create`: a trade for a known buyer (JSAPI / mini-program).
#[derive(Debug, Clone, Serialize)]
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
    /// Anything else (`op_app_id`, …).
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
pub struct CreateResponse {
    /// Merchant order number.
    pub out_trade_no: String,
    /// Alipay's trade number, handed to `tradePay`.
    pub trade_no: String,
}

/// `alipay.trade.pay`: barcode payment (merchant scans the buyer).
#[derive(Debug, Clone, Serialize)]
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
pub struct CloseResponse {
    /// Alipay's trade number.
    pub trade_no: Option<String>,
    /// Merchant order number.
    pub out_trade_no: Option<String>,
}

/// `alipay.trade.cancel`: close an unpaid face-to-face trade, or refund a paid one.
#[derive(Debug, Clone, Serialize)]
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
pub struct BillDownloadUrlResponse {
    /// Valid for a short time only.
    pub bill_download_url: String,
}

/// Any other API method: untyped `biz_content` and response.
#[derive(Debug, Clone)]
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
}
