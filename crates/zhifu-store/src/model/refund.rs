//! Refunds: their status, the stored record, and how creating and settling
//! one turned out.

use serde::Serialize;

use super::order::OrderStatus;
use super::report::NewNotification;

/// Refund state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Sent (or about to be sent); outcome not known yet.
    Pending,
    /// Alipay confirmed it.
    Succeeded,
    /// Alipay refused it; the reserved amount is free again.
    Failed,
}

impl RefundStatus {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// Who asked for a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundOrigin {
    /// The merchant, through the API.
    Merchant,
    /// Zhifu itself: the buyer paid an order that was already closed, and
    /// the policy is to give the money back.
    PaidAfterClose,
}

impl RefundOrigin {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundOrigin::Merchant => "merchant",
            RefundOrigin::PaidAfterClose => "paid_after_close",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [RefundOrigin::Merchant, RefundOrigin::PaidAfterClose]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Public id (`rf_…`).
    pub id: String,
    /// The order.
    pub order_id: String,
    /// The id sent to Alipay; the same value on every retry of this refund.
    pub out_request_no: String,
    /// Amount in fen.
    pub amount_fen: i64,
    /// Reason shown to the buyer.
    pub reason: Option<String>,
    /// State.
    pub status: RefundStatus,
    /// Alipay's `sub_code` when it failed.
    pub failure_code: Option<String>,
    /// The `Idempotency-Key` it was created with.
    pub idempotency_key: Option<String>,
    /// Hash of the creating request.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Who asked for it.
    pub origin: RefundOrigin,
    /// `alipay.trade.refund` calls made for it so far.
    pub gateway_calls: i64,
}

/// What [`crate::Store::create_refund`] needs.
#[derive(Debug, Clone)]
pub struct NewRefund {
    /// Public id.
    pub id: String,
    /// The order.
    pub order_id: String,
    /// Alipay refund request id.
    pub out_request_no: String,
    /// Amount in fen (> 0).
    pub amount_fen: i64,
    /// Reason.
    pub reason: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Hash of the request body.
    pub request_hash: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// The creator holds the refund until then: it makes the first gateway
    /// call itself, and nobody else may before this time.
    pub lease_until: i64,
}

/// Result of [`crate::Store::create_refund`].
#[derive(Debug, Clone)]
pub enum CreateRefundOutcome {
    /// Reserved and inserted.
    Created(Refund),
    /// A refund with this idempotency key (or `out_request_no`) exists.
    Existing(Refund),
    /// The order is not `paid`.
    NotPaid(OrderStatus),
    /// The amount exceeds what is left after refunds done and pending.
    ExceedsRemaining {
        /// What could still be refunded, in fen.
        remaining_fen: i64,
    },
}

/// How a refund ended, as Alipay reported it.
#[derive(Debug, Clone)]
pub enum RefundResult {
    /// Confirmed; `refund_fee` is the trade's cumulative refunded amount as
    /// Alipay reported it (when it did).
    Succeeded {
        /// Cumulative refunded amount, in fen.
        refund_fee: Option<i64>,
        /// The record of the answer that confirmed it.
        record: NewNotification,
    },
    /// Refused with this code.
    Failed {
        /// Alipay's `sub_code`.
        code: String,
        /// When the refusal arrived.
        at: i64,
    },
}

/// Result of [`crate::Store::take_refund_slot`]: may a refund call to
/// Alipay start now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundSlot {
    /// Yes: the order's slot is ours and the call is counted
    /// (`gateway_calls` of the refund returned is the new count).
    Granted(Refund),
    /// Another refund of the same trade was sent less than the spacing
    /// ago; the refund is left for a later pass, due at `until`.
    Wait {
        /// When the slot frees, epoch ms.
        until: i64,
    },
    /// The refund is no longer pending: nothing to send.
    Settled(Refund),
}
