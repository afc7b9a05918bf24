//! What Alipay reports about a trade and what the store made of it: the
//! verified update, the recorded message and the outcome it led to.

use super::order::Order;
use super::outbox::EventType;

/// The state of the trade as Alipay reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeState {
    /// `WAIT_BUYER_PAY`.
    WaitBuyerPay,
    /// `TRADE_SUCCESS`.
    Success,
    /// `TRADE_FINISHED`.
    Finished,
    /// `TRADE_CLOSED`.
    Closed,
}

impl TradeState {
    /// Alipay's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeState::Success => "TRADE_SUCCESS",
            TradeState::Finished => "TRADE_FINISHED",
            TradeState::Closed => "TRADE_CLOSED",
        }
    }
}

/// Where a verified update came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSource {
    /// An asynchronous notification.
    Notify,
    /// An `alipay.trade.query` answer.
    Query,
    /// An `alipay.trade.refund` / refund-query answer.
    Refund,
    /// A successful `alipay.trade.close` (or a trade Alipay never created).
    Close,
    /// The answer of a subscription's deduction (`alipay.trade.pay` with
    /// `GENERAL_WITHHOLDING`).
    Deduction,
}

impl UpdateSource {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateSource::Notify => "notify",
            UpdateSource::Query => "query",
            UpdateSource::Refund => "refund",
            UpdateSource::Close => "close",
            UpdateSource::Deduction => "deduction",
        }
    }
}

/// A verified report from Alipay about one order's trade.
#[derive(Debug, Clone)]
pub struct TradeUpdate {
    /// The order (already matched on `out_trade_no`, app, seller and amount).
    pub order_id: String,
    /// What reported it.
    pub source: UpdateSource,
    /// The notification id, for notifications.
    pub notify_id: Option<String>,
    /// Reported trade state.
    pub trade_state: TradeState,
    /// Reported trade number.
    pub trade_no: Option<String>,
    /// Reported masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Reported buyer id.
    pub buyer_id: Option<String>,
    /// Reported payment time.
    pub paid_at: Option<i64>,
    /// Reported cumulative refunded amount, in fen.
    pub refund_fee: Option<i64>,
    /// When we processed it.
    pub at: i64,
    /// What to do if this reports a payment for an order we had closed.
    pub late_payment: LatePayment,
}

/// The merchant's policy for a payment that arrives after the order was
/// closed (the buyer held live payment parameters). Either way the order
/// becomes `paid` with `paid_after_close` set and an
/// `order.paid_after_close` event: money that arrived is never ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatePayment {
    /// Give the money back: a refund of the whole amount is recorded in the
    /// same transaction (origin `paid_after_close`), leased to the caller
    /// until `lease_until` so that it sends it first.
    Refund {
        /// The caller holds the new refund until then.
        lease_until: i64,
    },
    /// Keep it: the order stays paid, flagged, for the merchant to decide.
    Keep,
}

/// Why an update was not applied although it verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnomalyReason {
    /// The signature does not verify.
    BadSignature,
    /// The body could not be parsed or lacks required fields.
    Malformed,
    /// No order has this `out_trade_no`.
    UnknownOrder,
    /// `app_id` is not ours.
    AppIdMismatch,
    /// `seller_id` is not the configured payee.
    SellerIdMismatch,
    /// `total_amount` differs from the order's.
    AmountMismatch,
    /// `trade_no` differs from the one already recorded for the order.
    TradeNoMismatch,
    /// A `TRADE_CLOSED` for a paid order without a full refund behind it.
    ClosedAfterPaid,
    /// A payment for an order we had closed: money arrived for a closed order.
    PaidAfterClose,
    /// A refund total above the order's amount.
    RefundExceedsTotal,
    /// A refund total below what was already recorded (states never go back).
    RefundWentBackwards,
    /// An agreement notification or answer about another agreement than the
    /// subscription's (our number, Alipay's number or the product).
    AgreementMismatch,
}

impl AnomalyReason {
    /// Every reason.
    pub const ALL: [AnomalyReason; 12] = [
        AnomalyReason::BadSignature,
        AnomalyReason::Malformed,
        AnomalyReason::UnknownOrder,
        AnomalyReason::AppIdMismatch,
        AnomalyReason::SellerIdMismatch,
        AnomalyReason::AmountMismatch,
        AnomalyReason::TradeNoMismatch,
        AnomalyReason::ClosedAfterPaid,
        AnomalyReason::PaidAfterClose,
        AnomalyReason::RefundExceedsTotal,
        AnomalyReason::RefundWentBackwards,
        AnomalyReason::AgreementMismatch,
    ];

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The stored form of several reasons: their names joined with `,`
    /// (the `reason` column; a list in every Rust type).
    pub fn join(reasons: &[AnomalyReason]) -> String {
        reasons
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Reads [`AnomalyReason::join`]'s form back.
    pub fn parse_list(stored: &str) -> Vec<AnomalyReason> {
        stored.split(',').filter_map(Self::parse).collect()
    }

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyReason::BadSignature => "bad_signature",
            AnomalyReason::Malformed => "malformed",
            AnomalyReason::UnknownOrder => "unknown_order",
            AnomalyReason::AppIdMismatch => "app_id_mismatch",
            AnomalyReason::SellerIdMismatch => "seller_id_mismatch",
            AnomalyReason::AmountMismatch => "amount_mismatch",
            AnomalyReason::TradeNoMismatch => "trade_no_mismatch",
            AnomalyReason::ClosedAfterPaid => "closed_after_paid",
            AnomalyReason::PaidAfterClose => "paid_after_close",
            AnomalyReason::RefundExceedsTotal => "refund_exceeds_total",
            AnomalyReason::RefundWentBackwards => "refund_went_backwards",
            AnomalyReason::AgreementMismatch => "agreement_mismatch",
        }
    }
}

/// What a notification (or other verified message) led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order changed.
    Applied,
    /// Nothing to change (a redelivery, or a state we already have).
    Duplicate,
    /// Refused; the order was left as it was.
    Anomaly(AnomalyReason),
}

impl Outcome {
    /// Stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Anomaly(_) => "anomaly",
        }
    }
}

/// A message to record with [`crate::Store::apply_trade_update`] or
/// [`crate::Store::record_notification`].
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// Record id.
    pub id: String,
    /// The order, when one was identified.
    pub order_id: Option<String>,
    /// The `out_trade_no` the message named.
    pub out_trade_no: Option<String>,
    /// `notify_id`.
    pub notify_id: Option<String>,
    /// What kind of message.
    pub source: UpdateSource,
    /// Reported `trade_status`.
    pub trade_status: Option<String>,
    /// For messages recorded without applying: every reason they were
    /// refused for (empty for a message that reached the state machine).
    pub anomaly: Vec<AnomalyReason>,
    /// The message's fields (JSON text), for audit.
    pub payload: Option<String>,
    /// Receipt time.
    pub received_at: i64,
}

/// A recorded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    /// Record id.
    pub id: String,
    /// The order.
    pub order_id: Option<String>,
    /// The `out_trade_no` it named.
    pub out_trade_no: Option<String>,
    /// `notify_id`.
    pub notify_id: Option<String>,
    /// `notify`, `query`, `refund` or `close`.
    pub source: String,
    /// Reported `trade_status`.
    pub trade_status: Option<String>,
    /// `applied`, `duplicate` or `anomaly`.
    pub outcome: String,
    /// Why it was an anomaly, as stored: the reasons' names joined with
    /// `,` ([`NotificationRecord::reasons`] reads them back).
    pub reason: Option<String>,
    /// Its fields (JSON text).
    pub payload: Option<String>,
    /// Receipt time.
    pub received_at: i64,
}

impl NotificationRecord {
    /// The reasons it was refused for; empty when it was not (a stored
    /// name this version does not know is skipped).
    pub fn reasons(&self) -> Vec<AnomalyReason> {
        self.reason
            .as_deref()
            .map(AnomalyReason::parse_list)
            .unwrap_or_default()
    }
}

/// Result of [`crate::Store::apply_trade_update`].
#[derive(Debug, Clone)]
pub struct ApplyResult {
    /// What happened.
    pub outcome: Outcome,
    /// The order after the update.
    pub order: Order,
    /// The events written (empty unless [`Outcome::Applied`]).
    pub events: Vec<EventType>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomaly_reasons_round_trip_through_their_stored_form() {
        for r in AnomalyReason::ALL {
            assert_eq!(AnomalyReason::parse(r.as_str()), Some(r));
        }
        let list = [AnomalyReason::AppIdMismatch, AnomalyReason::AmountMismatch];
        let stored = AnomalyReason::join(&list);
        assert_eq!(stored, "app_id_mismatch,amount_mismatch");
        assert_eq!(AnomalyReason::parse_list(&stored), list.to_vec());
        assert_eq!(AnomalyReason::parse_list("nonsense"), Vec::new());
        let mut names: Vec<&str> = AnomalyReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AnomalyReason::ALL.len());
    }
}
