//! [`PaymentError`]: why a payment operation did not happen. The HTTP layer
//! maps each variant to a status and a stable code; jobs log them.

use zhifu_store::{AnomalyReason, OrderStatus, StoreError, SubscriptionStatus};

/// Why a payment operation did not happen. Nothing changed when one is
/// returned, except where a variant says what was recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// A field breaks a rule (Alipay's or ours); the message names it.
    #[error("{0}")]
    InvalidField(String),
    /// An amount is not a valid Alipay amount.
    #[error("invalid amount: {0}")]
    InvalidAmount(String),
    /// No order with that id.
    #[error("no such order")]
    OrderNotFound,
    /// An `Idempotency-Key` came back with a different request.
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyKeyReused,
    /// Another order has this `out_trade_no`.
    #[error("an order with this out_trade_no exists")]
    OutTradeNoTaken,
    /// Only pending orders get payment parameters.
    #[error("only pending orders can be paid; this one is {0}")]
    NotPayable(OrderStatus),
    /// Alipay says the trade can no longer be paid.
    #[error("Alipay says this trade can no longer be paid ({0}); GET the order with ?refresh=true")]
    TradeNotPayable(String),
    /// The order's payment deadline has passed.
    #[error("the order's payment deadline has passed")]
    Expired,
    /// Only paid orders can be refunded.
    #[error("only paid orders can be refunded; this one is {0}")]
    NotRefundable(OrderStatus),
    /// The refund is larger than what is left to refund.
    #[error("at most {remaining} can still be refunded (refunds done and in flight count)")]
    RefundExceedsRemaining {
        /// What can still be refunded, as `"88.88"`.
        remaining: String,
    },
    /// Only pending orders can be closed (the status it has instead).
    #[error("only pending orders can be closed; this one is {0}")]
    NotClosable(OrderStatus),
    /// Closing found the trade paid at Alipay; the order now says so.
    #[error("Alipay reports the trade as paid; the order is now {0}")]
    PaidWhileClosing(OrderStatus),
    /// Alipay's verified answer is about another trade or amount (recorded
    /// as an anomaly).
    #[error("Alipay's answer does not match the order ({}); nothing was changed", .0.as_str())]
    AlipayMismatch(AnomalyReason),
    /// Alipay refused a user-authorization code (unknown, used, expired or
    /// another app's; its `sub_code`). Nothing was stored.
    #[error("Alipay refused the authorization code ({0}); authorize again for a new one")]
    AuthCodeRejected(String),
    /// No subscription with that id.
    #[error("no such subscription")]
    SubscriptionNotFound,
    /// A completed subscription has nothing left to cancel.
    #[error("only unfinished subscriptions can be canceled; this one is {0}")]
    NotCancelable(SubscriptionStatus),
    /// The call to Alipay failed: refused, unreachable, or not verifiable.
    #[error("the call to Alipay failed")]
    Alipay(#[source] alipay::Error),
    /// The database failed.
    #[error("the database failed")]
    Store(#[from] StoreError),
}
