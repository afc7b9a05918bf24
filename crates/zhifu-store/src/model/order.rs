//! Orders as the merchant sees them: their status, the stored record, and
//! what creating and listing them takes.

use std::fmt;

use serde::Serialize;

/// An order's payment state as the merchant sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, not paid yet.
    Pending,
    /// Closed by us, but the buyer may still hold payment parameters that
    /// Alipay would accept (a page/wap/app/QR trade Alipay had not created
    /// yet, before its `time_expire`). Not final: it becomes `closed` once
    /// those parameters are dead, or `paid` if the buyer pays after all.
    Closing,
    /// Paid (possibly partially refunded: see `refunded_fen`).
    Paid,
    /// Closed unpaid (by the merchant, by expiry, or by Alipay), and no
    /// payment for it can be accepted any more.
    Closed,
    /// Paid and then refunded in full.
    Refunded,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Closing,
        OrderStatus::Paid,
        OrderStatus::Closed,
        OrderStatus::Refunded,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Closing => "closing",
            OrderStatus::Paid => "paid",
            OrderStatus::Closed => "closed",
            OrderStatus::Refunded => "refunded",
        }
    }

    /// Parses the stored and wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Public id (`ord_…`).
    pub id: String,
    /// The merchant order number sent to Alipay.
    pub out_trade_no: String,
    /// Title.
    pub subject: String,
    /// Description.
    pub body: Option<String>,
    /// Amount in fen.
    pub total_fen: i64,
    /// Refunded so far, as Alipay reported it, in fen.
    pub refunded_fen: i64,
    /// Refunds sent to Alipay whose outcome is unknown, in fen.
    pub refund_pending_fen: i64,
    /// Payment state.
    pub status: OrderStatus,
    /// Alipay's trade number, once known.
    pub trade_no: Option<String>,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Buyer's user id / open id.
    pub buyer_id: Option<String>,
    /// Channel of the last payment attempt.
    pub channel: Option<String>,
    /// Merchant metadata (JSON text).
    pub metadata: Option<String>,
    /// The `Idempotency-Key` the order was created with.
    pub idempotency_key: Option<String>,
    /// Hash of the creating request, to tell a retry from a key reuse.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Deadline for payment.
    pub expires_at: i64,
    /// When it was paid.
    pub paid_at: Option<i64>,
    /// When it was closed (or began closing).
    pub closed_at: Option<i64>,
    /// The buyer paid after we had closed the order: the payment was
    /// accepted (and, under the default policy, refunded by Zhifu).
    pub paid_after_close: bool,
}

/// What [`crate::Store::create_order`] needs.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Public id.
    pub id: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// Title.
    pub subject: String,
    /// Description.
    pub body: Option<String>,
    /// Amount in fen (> 0).
    pub total_fen: i64,
    /// Metadata (JSON text).
    pub metadata: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Hash of the request body.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Payment deadline.
    pub expires_at: i64,
}

/// Result of [`crate::Store::create_order`].
#[derive(Debug, Clone)]
pub enum CreateOrderOutcome {
    /// Inserted.
    Created(Order),
    /// The idempotency key was used before; this is that order.
    Existing(Order),
}

/// Filter and page of [`crate::Store::list_orders`].
#[derive(Debug, Clone, Default)]
pub struct OrderQuery {
    /// Only this status.
    pub status: Option<OrderStatus>,
    /// Page size.
    pub limit: i64,
    /// Orders strictly older than this `(created_at, id)`.
    pub after: Option<(i64, String)>,
}
