//! The sandbox's records: apps, not-yet-created orders, trades, refunds and
//! notification deliveries. Times are epoch milliseconds of the sandbox clock.

use alipay::{Amount, TradeStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Epoch milliseconds → instant.
pub(crate) fn instant(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Instant → epoch milliseconds.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Epoch milliseconds → `yyyy-MM-dd HH:mm:ss` Beijing time.
pub(crate) fn beijing(ms: i64) -> String {
    alipay::time::format_beijing(instant(ms))
}

/// `yyyyMMdd` of the Beijing date.
pub(crate) fn beijing_date_digits(t: OffsetDateTime) -> String {
    let d = t.to_offset(alipay::time::BEIJING).date();
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Formats fen as `"88.88"`.
pub(crate) fn yuan(fen: u64) -> String {
    Amount::from_fen(fen)
        .map(|a| a.to_string())
        .unwrap_or_else(|_| format!("{}.{:02}", fen / 100, fen % 100))
}

/// A registered merchant app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct App {
    pub app_id: String,
    pub seller_id: String,
    /// Bare base64 SPKI of the app public key.
    pub app_public_key: String,
    pub created_at: i64,
    /// The console's AES key (base64) for content encryption (docs/protocol.md §8), if enabled.
    #[serde(default)]
    pub aes_key: Option<String>,
}

impl App {
    pub(crate) fn seller_email(&self) -> String {
        format!(
            "seller{}@sandbox.example",
            &self.seller_id[self.seller_id.len().saturating_sub(4)..]
        )
    }
}

/// Which product (API) created the trade; selects the docs/protocol.md §6.5 matrix row, the
/// default timeout and the `product_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Product {
    /// `alipay.trade.page.pay`.
    Page,
    /// `alipay.trade.wap.pay`.
    Wap,
    /// `alipay.trade.app.pay`.
    App,
    /// `alipay.trade.precreate`.
    Precreate,
    /// `alipay.trade.create`.
    Create,
    /// `alipay.trade.pay` (barcode).
    Barcode,
    /// `alipay.trade.pay` with `product_code` `GENERAL_WITHHOLDING`: a
    /// deduction under a signed agreement (docs/agreements.md, Sandbox).
    Withholding,
}

impl Product {
    pub(crate) fn is_face_to_face(self) -> bool {
        matches!(
            self,
            Product::Precreate | Product::Create | Product::Barcode | Product::Withholding
        )
    }

    /// Default `timeout_express` (docs/protocol.md §5.1): 15 days for page/wap/app, 3 hours
    /// for face-to-face.
    pub(crate) fn default_timeout(self) -> time::Duration {
        if self.is_face_to_face() {
            time::Duration::hours(3)
        } else {
            time::Duration::days(15)
        }
    }

    pub(crate) fn return_method(self) -> Option<&'static str> {
        match self {
            Product::Page => Some("alipay.trade.page.pay.return"),
            Product::Wap => Some("alipay.trade.wap.pay.return"),
            _ => None,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Product::Page => "电脑网站支付",
            Product::Wap => "手机网站支付",
            Product::App => "APP支付",
            Product::Precreate => "当面付（扫码）",
            Product::Create => "当面付（JSAPI）",
            Product::Barcode => "当面付（条码）",
            Product::Withholding => "周期扣款",
        }
    }
}

/// What an order said, kept to detect a reused `out_trade_no` with
/// different content (docs/protocol.md §5.3) and to create the trade later.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OrderTerms {
    pub product: Product,
    pub total_fen: u64,
    pub subject: String,
    pub body: Option<String>,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub quit_url: Option<String>,
    pub passback_params: Option<String>,
    pub charset: String,
    pub sign_type: String,
    pub timeout_express: Option<String>,
    pub time_expire: Option<String>,
    /// Pay and sign: the `agreement_sign_params` of a page/wap/app order,
    /// signed when the buyer pays.
    #[serde(default)]
    pub agreement_sign: Option<PayAndSign>,
}

/// The agreement a pay-and-sign order asks for (`agreement_sign_params`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PayAndSign {
    pub personal_product_code: String,
    pub sign_scene: String,
    pub external_agreement_no: Option<String>,
    pub external_logon_id: Option<String>,
    pub product_code: Option<String>,
    /// Where `dut_user_sign` goes; the order's `notify_url` when absent.
    pub sign_notify_url: Option<String>,
    pub period_type: Option<String>,
    pub period: Option<u64>,
    pub execute_time: Option<String>,
    pub single_fen: Option<u64>,
    pub total_fen: Option<u64>,
    pub total_payments: Option<u64>,
}

impl OrderTerms {
    /// Same content in the sense of docs/protocol.md §5.3: amount and subject.
    pub(crate) fn same_content(&self, other: &OrderTerms) -> bool {
        self.total_fen == other.total_fen && self.subject == other.subject
    }
}

/// An order the merchant has signed but whose trade does not exist yet
/// (page/wap/app/precreate until the buyer opens the cashier).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Order {
    pub token: String,
    pub app_id: String,
    pub out_trade_no: String,
    pub terms: OrderTerms,
    pub created_at: i64,
    /// When the link stops working if nobody opens it.
    pub expires_at: Option<i64>,
    /// Set by `alipay.trade.cancel` before the trade existed.
    pub voided: bool,
    /// The trade once the buyer opened the cashier.
    pub trade_no: Option<String>,
}

/// One refund of a trade.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Refund {
    pub out_request_no: String,
    pub amount_fen: u64,
    pub reason: Option<String>,
    pub at: i64,
    /// `refund` or `cancel`.
    pub via: String,
}

/// A trade, as Alipay keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Trade {
    pub app_id: String,
    pub trade_no: String,
    pub out_trade_no: String,
    pub terms: OrderTerms,
    pub status: TradeStatus,
    pub seller_id: String,
    pub buyer_id: String,
    pub buyer_logon_id: String,
    pub gmt_create: i64,
    pub gmt_payment: Option<i64>,
    pub gmt_close: Option<i64>,
    pub expires_at: Option<i64>,
    pub refunds: Vec<Refund>,
    /// `close`, `timeout`, `cancel`, `refund`.
    pub closed_by: Option<String>,
    /// The cashier token when the trade came from an order.
    pub token: Option<String>,
}

impl Trade {
    pub(crate) fn refunded_fen(&self) -> u64 {
        self.refunds.iter().map(|r| r.amount_fen).sum()
    }

    pub(crate) fn is_paid(&self) -> bool {
        self.gmt_payment.is_some()
    }
}

/// The state of a notification delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// More attempts are scheduled.
    Pending,
    /// The merchant answered `success`.
    Delivered,
    /// All scheduled attempts failed.
    GaveUp,
    /// Sent once by `trigger`, never retried.
    OneShot,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// Beijing time of the attempt.
    pub time: String,
    /// Epoch milliseconds (sandbox clock).
    pub at_ms: i64,
    /// Epoch milliseconds (real clock), for measuring scaled intervals.
    pub real_ms: i64,
    /// HTTP status, when an answer came.
    pub http_status: Option<u16>,
    /// The answer body (first 2 KiB).
    pub response_body: Option<String>,
    /// Transport error, if any.
    pub error: Option<String>,
    /// `dropped` / `delayed` / `reordered` when a fault shaped this attempt.
    pub fault: Option<String>,
    /// `scheduled`, `duplicate` or `resend`.
    pub kind: String,
    /// Whether the answer was exactly `success`.
    pub success: bool,
}

/// A notification and its delivery attempts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Delivery {
    pub id: u64,
    pub app_id: String,
    pub out_trade_no: String,
    pub trade_no: String,
    pub notify_id: String,
    pub notify_url: String,
    pub trade_status: String,
    /// `paid`, `partial_refund`, `full_refund`, `closed`, `finished`, or a trigger kind.
    pub event: String,
    pub body: String,
    pub charset: String,
    pub created_at: i64,
    pub attempts: Vec<Attempt>,
    pub state: DeliveryState,
    /// Scheduled attempts made so far (duplicates and resends not counted).
    pub scheduled_done: usize,
    pub next_attempt_at: Option<i64>,
    /// Held back by the reorder fault until another delivery to the same URL.
    pub held: bool,
    #[serde(skip)]
    pub in_flight: bool,
}

/// Where an agreement is in its life (docs/agreements.md, Sandbox):
/// `TEMP` while the buyer has the signing page open, `NORMAL` once signed,
/// `STOP` when the buyer paused it, `UNSIGN` once ended (final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum AgreementState {
    Temp,
    Normal,
    Stop,
    Unsign,
}

impl AgreementState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AgreementState::Temp => "TEMP",
            AgreementState::Normal => "NORMAL",
            AgreementState::Stop => "STOP",
            AgreementState::Unsign => "UNSIGN",
        }
    }
}

/// A periodic-deduction agreement (`alipay.user.agreement.page.sign`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Agreement {
    pub agreement_no: String,
    /// The signing page's token.
    pub token: String,
    pub app_id: String,
    pub status: AgreementState,
    pub personal_product_code: String,
    pub sign_scene: String,
    pub external_agreement_no: Option<String>,
    pub external_logon_id: Option<String>,
    pub product_code: Option<String>,
    /// `period_rule_params` as sent (shown on the signing page).
    pub period_type: Option<String>,
    pub period: Option<u64>,
    pub execute_time: Option<String>,
    /// The most one deduction may take.
    pub single_fen: Option<u64>,
    pub total_fen: Option<u64>,
    pub total_payments: Option<u64>,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub charset: String,
    pub sign_type: String,
    pub principal_id: String,
    pub created_at: i64,
    pub sign_time: Option<i64>,
    pub invalid_at: Option<i64>,
    pub unsign_time: Option<i64>,
    /// `executionplan.modify`'s next deduction date, as sent.
    pub next_deduct_time: Option<String>,
    pub deductions: u64,
    pub deducted_fen: u64,
    /// The buyer declined on the signing page: unknown to every API.
    #[serde(default)]
    pub declined: bool,
}
