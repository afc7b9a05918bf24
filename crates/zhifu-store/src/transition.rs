//! The order state machine, without a database: given the order as stored and
//! one verified report from Alipay, which single step comes next, and what
//! the caller is told once there is nothing left to do.
//!
//! Pure on purpose (no sqlx, no I/O, no clock): `sql::apply` performs each
//! step as a conditional `UPDATE`, re-reads the order and asks again, so the
//! rules can be tested here for every state and report without a database,
//! and the concurrency guarantees stay in the SQL.

use crate::model::{
    AnomalyReason, EventType, Order, OrderStatus, Outcome, TradeState, TradeUpdate, UpdateSource,
};

/// The next step the state machine takes for an update, given the order as
/// it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// `pending → paid`.
    MarkPaid,
    /// `pending → closed`, or `closing → closed`.
    MarkClosed,
    /// `closing/closed → paid`, flagged: the buyer paid an order we had
    /// closed. Under [`crate::LatePayment::Refund`] the same step records a
    /// refund of what is left.
    MarkPaidAfterClose,
    /// `refunded_fen` of a paid order grows to `fee` (`paid → refunded` when
    /// that is the total).
    Refund { fee: i64 },
    /// Nothing (more) to change.
    Done,
    /// The report contradicts the order; it stays as it is.
    Anomaly(AnomalyReason),
}

pub(crate) fn decide(order: &Order, u: &TradeUpdate) -> Step {
    if let (Some(known), Some(got)) = (&order.trade_no, &u.trade_no)
        && known != got
    {
        return Step::Anomaly(AnomalyReason::TradeNoMismatch);
    }
    let fee = u.refund_fee.filter(|f| *f > 0);
    if let Some(f) = fee
        && f > order.total_fen
    {
        return Step::Anomaly(AnomalyReason::RefundExceedsTotal);
    }
    match order.status {
        OrderStatus::Pending => match u.trade_state {
            _ if reports_payment(u) => Step::MarkPaid,
            // A closed trade that carries refunds was paid first; the paid
            // step comes before the refund step.
            TradeState::Closed if fee.is_some() => Step::MarkPaid,
            TradeState::Closed => Step::MarkClosed,
            _ => Step::Done,
        },
        OrderStatus::Paid => match (u.trade_state, fee) {
            (_, Some(f)) if f > order.refunded_fen => Step::Refund { fee: f },
            (TradeState::Closed, Some(f)) if f < order.total_fen => {
                Step::Anomaly(AnomalyReason::ClosedAfterPaid)
            }
            (TradeState::Closed, None) => Step::Anomaly(AnomalyReason::ClosedAfterPaid),
            _ => Step::Done,
        },
        OrderStatus::Refunded => Step::Done,
        // Money that arrived is never refused into the void: a payment for
        // an order we had closed (or were closing) is taken, flagged, and
        // handled by the merchant's policy.
        OrderStatus::Closing | OrderStatus::Closed
            if reports_payment(u) || (u.trade_state == TradeState::Closed && fee.is_some()) =>
        {
            Step::MarkPaidAfterClose
        }
        OrderStatus::Closing if u.trade_state == TradeState::Closed => Step::MarkClosed,
        OrderStatus::Closing | OrderStatus::Closed => Step::Done,
    }
}

/// Whether `u` would change nothing about `order` as read: a redelivery,
/// or a state already recorded. States only move forward, so what changes
/// nothing now changes nothing later either, and a caller may answer such
/// a report without writing (a report that would be refused is not a
/// redelivery: it still goes through the store to be recorded).
pub fn is_redelivery(order: &Order, u: &TradeUpdate) -> bool {
    decide(order, u) == Step::Done
}

fn reports_payment(u: &TradeUpdate) -> bool {
    matches!(u.trade_state, TradeState::Success | TradeState::Finished)
}

/// What an update led to once [`decide`] stopped with `anomaly` (or with
/// [`Step::Done`] when `None`), after `events` were written on the way. Steps
/// already taken are real changes, so they win over a later refusal.
pub(crate) fn stopped(anomaly: Option<AnomalyReason>, events: &[EventType]) -> Outcome {
    match anomaly {
        _ if !events.is_empty() => Outcome::Applied,
        Some(reason) => Outcome::Anomaly(reason),
        None => Outcome::Duplicate,
    }
}

/// The event a [`Step::Refund`] records, given the status the update left:
/// the database, not this module, decides whether the total was reached, so
/// that the decision and the write cannot disagree.
pub(crate) fn refund_event(to: OrderStatus) -> EventType {
    if to == OrderStatus::Refunded {
        EventType::Refunded
    } else {
        EventType::PartiallyRefunded
    }
}

/// A refund Alipay confirmed, as a report on the order's trade: `fee` is the
/// cumulative refunded amount, and a trade refunded in full is closed.
pub(crate) fn refund_report(order: &Order, fee: i64, at: i64) -> TradeUpdate {
    TradeUpdate {
        order_id: order.id.clone(),
        source: UpdateSource::Refund,
        notify_id: None,
        trade_state: if fee >= order.total_fen {
            TradeState::Closed
        } else {
            TradeState::Success
        },
        trade_no: None,
        buyer_logon_id: None,
        buyer_id: None,
        paid_at: None,
        refund_fee: Some(fee),
        at,
        late_payment: crate::model::LatePayment::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::Step::{Done, MarkClosed, MarkPaid, MarkPaidAfterClose};
    use super::*;
    use AnomalyReason::{ClosedAfterPaid, RefundExceedsTotal, TradeNoMismatch};
    use OrderStatus as S;
    use TradeState as T;

    const TOTAL: i64 = 10_000;
    /// What the paid fixture has had refunded already, so that a report can
    /// be below, at or above the recorded figure.
    const RECORDED: i64 = 3_000;
    const TRADE_NO: &str = "2024TRADE";

    /// The cumulative refund figure a report carries, against the fixtures.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fee {
        Absent,
        Zero,
        /// 1,000: below what the paid fixture has recorded.
        Small,
        /// Exactly what the paid fixture has recorded.
        Recorded,
        /// 5,000: above the recorded figure, below the total.
        Larger,
        Full,
        Over,
    }

    impl Fee {
        fn fen(self) -> Option<i64> {
            match self {
                Fee::Absent => None,
                Fee::Zero => Some(0),
                Fee::Small => Some(1_000),
                Fee::Recorded => Some(RECORDED),
                Fee::Larger => Some(5_000),
                Fee::Full => Some(TOTAL),
                Fee::Over => Some(TOTAL + 1),
            }
        }
    }

    const fn refund(fee: i64) -> Step {
        Step::Refund { fee }
    }

    const fn refuse(reason: AnomalyReason) -> Step {
        Step::Anomaly(reason)
    }

    /// (order status, reported trade state, reported refund figure, step).
    /// Written from the rules, never from `decide`'s output.
    // One row per line: a table reads down its columns.
    #[rustfmt::skip]
    const TABLE: &[(OrderStatus, TradeState, Fee, Step)] = &[
        // Waiting for the buyer changes nothing, whatever figure comes along.
        (S::Pending, T::WaitBuyerPay, Fee::Absent, Done),
        (S::Pending, T::WaitBuyerPay, Fee::Zero, Done),
        (S::Pending, T::WaitBuyerPay, Fee::Small, Done),
        (S::Pending, T::WaitBuyerPay, Fee::Recorded, Done),
        (S::Pending, T::WaitBuyerPay, Fee::Larger, Done),
        (S::Pending, T::WaitBuyerPay, Fee::Full, Done),
        // A figure above the total is refused in every state.
        (S::Pending, T::WaitBuyerPay, Fee::Over, refuse(RefundExceedsTotal)),
        // A payment pays; its refund figure waits for the next turn, when
        // the order is paid and can take it.
        (S::Pending, T::Success, Fee::Absent, MarkPaid),
        (S::Pending, T::Success, Fee::Zero, MarkPaid),
        (S::Pending, T::Success, Fee::Small, MarkPaid),
        (S::Pending, T::Success, Fee::Recorded, MarkPaid),
        (S::Pending, T::Success, Fee::Larger, MarkPaid),
        (S::Pending, T::Success, Fee::Full, MarkPaid),
        (S::Pending, T::Success, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Pending, T::Finished, Fee::Absent, MarkPaid),
        (S::Pending, T::Finished, Fee::Zero, MarkPaid),
        (S::Pending, T::Finished, Fee::Small, MarkPaid),
        (S::Pending, T::Finished, Fee::Recorded, MarkPaid),
        (S::Pending, T::Finished, Fee::Larger, MarkPaid),
        (S::Pending, T::Finished, Fee::Full, MarkPaid),
        (S::Pending, T::Finished, Fee::Over, refuse(RefundExceedsTotal)),
        // Closed with nothing refunded was never paid; closed with refunds
        // was paid first (the payment notification got lost).
        (S::Pending, T::Closed, Fee::Absent, MarkClosed),
        (S::Pending, T::Closed, Fee::Zero, MarkClosed),
        (S::Pending, T::Closed, Fee::Small, MarkPaid),
        (S::Pending, T::Closed, Fee::Recorded, MarkPaid),
        (S::Pending, T::Closed, Fee::Larger, MarkPaid),
        (S::Pending, T::Closed, Fee::Full, MarkPaid),
        (S::Pending, T::Closed, Fee::Over, refuse(RefundExceedsTotal)),
        // A paid order moves only when the figure grows past what is
        // recorded, whatever trade state comes with it; a figure at or
        // below it is a redelivery.
        (S::Paid, T::WaitBuyerPay, Fee::Absent, Done),
        (S::Paid, T::WaitBuyerPay, Fee::Zero, Done),
        (S::Paid, T::WaitBuyerPay, Fee::Small, Done),
        (S::Paid, T::WaitBuyerPay, Fee::Recorded, Done),
        (S::Paid, T::WaitBuyerPay, Fee::Larger, refund(5_000)),
        (S::Paid, T::WaitBuyerPay, Fee::Full, refund(TOTAL)),
        (S::Paid, T::WaitBuyerPay, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Paid, T::Success, Fee::Absent, Done),
        (S::Paid, T::Success, Fee::Zero, Done),
        (S::Paid, T::Success, Fee::Small, Done),
        (S::Paid, T::Success, Fee::Recorded, Done),
        (S::Paid, T::Success, Fee::Larger, refund(5_000)),
        (S::Paid, T::Success, Fee::Full, refund(TOTAL)),
        (S::Paid, T::Success, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Paid, T::Finished, Fee::Absent, Done),
        (S::Paid, T::Finished, Fee::Zero, Done),
        (S::Paid, T::Finished, Fee::Small, Done),
        (S::Paid, T::Finished, Fee::Recorded, Done),
        (S::Paid, T::Finished, Fee::Larger, refund(5_000)),
        (S::Paid, T::Finished, Fee::Full, refund(TOTAL)),
        (S::Paid, T::Finished, Fee::Over, refuse(RefundExceedsTotal)),
        // A paid trade only closes once refunded in full: a close without
        // a new full figure contradicts the payment.
        (S::Paid, T::Closed, Fee::Absent, refuse(ClosedAfterPaid)),
        (S::Paid, T::Closed, Fee::Zero, refuse(ClosedAfterPaid)),
        (S::Paid, T::Closed, Fee::Small, refuse(ClosedAfterPaid)),
        (S::Paid, T::Closed, Fee::Recorded, refuse(ClosedAfterPaid)),
        (S::Paid, T::Closed, Fee::Larger, refund(5_000)),
        (S::Paid, T::Closed, Fee::Full, refund(TOTAL)),
        (S::Paid, T::Closed, Fee::Over, refuse(RefundExceedsTotal)),
        // Closing: still waiting for the buyer's parameters to die. A close
        // from Alipay makes it final; any sign of money means the buyer paid
        // after all, and the payment is taken, flagged, handled by policy.
        (S::Closing, T::WaitBuyerPay, Fee::Absent, Done),
        (S::Closing, T::WaitBuyerPay, Fee::Zero, Done),
        (S::Closing, T::WaitBuyerPay, Fee::Small, Done),
        (S::Closing, T::WaitBuyerPay, Fee::Recorded, Done),
        (S::Closing, T::WaitBuyerPay, Fee::Larger, Done),
        (S::Closing, T::WaitBuyerPay, Fee::Full, Done),
        (S::Closing, T::WaitBuyerPay, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Closing, T::Success, Fee::Absent, MarkPaidAfterClose),
        (S::Closing, T::Success, Fee::Zero, MarkPaidAfterClose),
        (S::Closing, T::Success, Fee::Small, MarkPaidAfterClose),
        (S::Closing, T::Success, Fee::Recorded, MarkPaidAfterClose),
        (S::Closing, T::Success, Fee::Larger, MarkPaidAfterClose),
        (S::Closing, T::Success, Fee::Full, MarkPaidAfterClose),
        (S::Closing, T::Success, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Closing, T::Finished, Fee::Absent, MarkPaidAfterClose),
        (S::Closing, T::Finished, Fee::Zero, MarkPaidAfterClose),
        (S::Closing, T::Finished, Fee::Small, MarkPaidAfterClose),
        (S::Closing, T::Finished, Fee::Recorded, MarkPaidAfterClose),
        (S::Closing, T::Finished, Fee::Larger, MarkPaidAfterClose),
        (S::Closing, T::Finished, Fee::Full, MarkPaidAfterClose),
        (S::Closing, T::Finished, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Closing, T::Closed, Fee::Absent, MarkClosed),
        (S::Closing, T::Closed, Fee::Zero, MarkClosed),
        (S::Closing, T::Closed, Fee::Small, MarkPaidAfterClose),
        (S::Closing, T::Closed, Fee::Recorded, MarkPaidAfterClose),
        (S::Closing, T::Closed, Fee::Larger, MarkPaidAfterClose),
        (S::Closing, T::Closed, Fee::Full, MarkPaidAfterClose),
        (S::Closing, T::Closed, Fee::Over, refuse(RefundExceedsTotal)),
        // Closed: the same, except that there is nothing left to close.
        (S::Closed, T::WaitBuyerPay, Fee::Absent, Done),
        (S::Closed, T::WaitBuyerPay, Fee::Zero, Done),
        (S::Closed, T::WaitBuyerPay, Fee::Small, Done),
        (S::Closed, T::WaitBuyerPay, Fee::Recorded, Done),
        (S::Closed, T::WaitBuyerPay, Fee::Larger, Done),
        (S::Closed, T::WaitBuyerPay, Fee::Full, Done),
        (S::Closed, T::WaitBuyerPay, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Closed, T::Success, Fee::Absent, MarkPaidAfterClose),
        (S::Closed, T::Success, Fee::Zero, MarkPaidAfterClose),
        (S::Closed, T::Success, Fee::Small, MarkPaidAfterClose),
        (S::Closed, T::Success, Fee::Recorded, MarkPaidAfterClose),
        (S::Closed, T::Success, Fee::Larger, MarkPaidAfterClose),
        (S::Closed, T::Success, Fee::Full, MarkPaidAfterClose),
        (S::Closed, T::Success, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Closed, T::Finished, Fee::Absent, MarkPaidAfterClose),
        (S::Closed, T::Finished, Fee::Zero, MarkPaidAfterClose),
        (S::Closed, T::Finished, Fee::Small, MarkPaidAfterClose),
        (S::Closed, T::Finished, Fee::Recorded, MarkPaidAfterClose),
        (S::Closed, T::Finished, Fee::Larger, MarkPaidAfterClose),
        (S::Closed, T::Finished, Fee::Full, MarkPaidAfterClose),
        (S::Closed, T::Finished, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Closed, T::Closed, Fee::Absent, Done),
        (S::Closed, T::Closed, Fee::Zero, Done),
        (S::Closed, T::Closed, Fee::Small, MarkPaidAfterClose),
        (S::Closed, T::Closed, Fee::Recorded, MarkPaidAfterClose),
        (S::Closed, T::Closed, Fee::Larger, MarkPaidAfterClose),
        (S::Closed, T::Closed, Fee::Full, MarkPaidAfterClose),
        (S::Closed, T::Closed, Fee::Over, refuse(RefundExceedsTotal)),
        // Refunded in full is final.
        (S::Refunded, T::WaitBuyerPay, Fee::Absent, Done),
        (S::Refunded, T::WaitBuyerPay, Fee::Zero, Done),
        (S::Refunded, T::WaitBuyerPay, Fee::Small, Done),
        (S::Refunded, T::WaitBuyerPay, Fee::Recorded, Done),
        (S::Refunded, T::WaitBuyerPay, Fee::Larger, Done),
        (S::Refunded, T::WaitBuyerPay, Fee::Full, Done),
        (S::Refunded, T::WaitBuyerPay, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Refunded, T::Success, Fee::Absent, Done),
        (S::Refunded, T::Success, Fee::Zero, Done),
        (S::Refunded, T::Success, Fee::Small, Done),
        (S::Refunded, T::Success, Fee::Recorded, Done),
        (S::Refunded, T::Success, Fee::Larger, Done),
        (S::Refunded, T::Success, Fee::Full, Done),
        (S::Refunded, T::Success, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Refunded, T::Finished, Fee::Absent, Done),
        (S::Refunded, T::Finished, Fee::Zero, Done),
        (S::Refunded, T::Finished, Fee::Small, Done),
        (S::Refunded, T::Finished, Fee::Recorded, Done),
        (S::Refunded, T::Finished, Fee::Larger, Done),
        (S::Refunded, T::Finished, Fee::Full, Done),
        (S::Refunded, T::Finished, Fee::Over, refuse(RefundExceedsTotal)),
        (S::Refunded, T::Closed, Fee::Absent, Done),
        (S::Refunded, T::Closed, Fee::Zero, Done),
        (S::Refunded, T::Closed, Fee::Small, Done),
        (S::Refunded, T::Closed, Fee::Recorded, Done),
        (S::Refunded, T::Closed, Fee::Larger, Done),
        (S::Refunded, T::Closed, Fee::Full, Done),
        (S::Refunded, T::Closed, Fee::Over, refuse(RefundExceedsTotal)),
    ];

    /// Every variant, as a chain of successors written with exhaustive
    /// matches: a new variant does not compile until its chain says where it
    /// goes, and then the coverage test fails until the table has its rows.
    /// (The status chain is also checked against `OrderStatus::ALL`.)
    fn every<V: Copy>(first: V, after: fn(V) -> Option<V>) -> Vec<V> {
        std::iter::successors(Some(first), |v| after(*v)).collect()
    }

    fn statuses() -> Vec<OrderStatus> {
        every(S::Pending, |s| match s {
            S::Pending => Some(S::Closing),
            S::Closing => Some(S::Paid),
            S::Paid => Some(S::Closed),
            S::Closed => Some(S::Refunded),
            S::Refunded => None,
        })
    }

    fn trade_states() -> Vec<TradeState> {
        every(T::WaitBuyerPay, |t| match t {
            T::WaitBuyerPay => Some(T::Success),
            T::Success => Some(T::Finished),
            T::Finished => Some(T::Closed),
            T::Closed => None,
        })
    }

    fn fees() -> Vec<Fee> {
        every(Fee::Absent, |f| match f {
            Fee::Absent => Some(Fee::Zero),
            Fee::Zero => Some(Fee::Small),
            Fee::Small => Some(Fee::Recorded),
            Fee::Recorded => Some(Fee::Larger),
            Fee::Larger => Some(Fee::Full),
            Fee::Full => Some(Fee::Over),
            Fee::Over => None,
        })
    }

    fn sources() -> Vec<UpdateSource> {
        every(UpdateSource::Notify, |s| match s {
            UpdateSource::Notify => Some(UpdateSource::Query),
            UpdateSource::Query => Some(UpdateSource::Refund),
            UpdateSource::Refund => Some(UpdateSource::Close),
            UpdateSource::Close => Some(UpdateSource::Deduction),
            UpdateSource::Deduction => None,
        })
    }

    /// A report kind is what `decide` reads from a report besides the trade
    /// number: the trade state and the refund figure.
    fn report_kinds() -> Vec<(TradeState, Fee)> {
        let fees = fees();
        trade_states()
            .into_iter()
            .flat_map(|t| fees.iter().map(move |f| (t, *f)))
            .collect()
    }

    /// An order consistent with `status`, carrying [`TRADE_NO`].
    fn order(status: OrderStatus) -> Order {
        let (refunded_fen, paid_at, closed_at) = match status {
            S::Pending => (0, None, None),
            S::Paid => (RECORDED, Some(2_000), None),
            S::Closing | S::Closed => (0, None, Some(2_000)),
            S::Refunded => (TOTAL, Some(2_000), None),
        };
        Order {
            id: "ord_1".into(),
            out_trade_no: "T1".into(),
            subject: "Mug".into(),
            body: None,
            total_fen: TOTAL,
            refunded_fen,
            refund_pending_fen: 0,
            status,
            trade_no: Some(TRADE_NO.into()),
            buyer_logon_id: None,
            buyer_id: None,
            channel: None,
            metadata: None,
            idempotency_key: None,
            request_hash: None,
            created_at: 1_000,
            updated_at: 2_000,
            expires_at: 901_000,
            paid_at,
            closed_at,
            paid_after_close: false,
        }
    }

    /// A report on the fixture's trade (same trade number).
    fn report(state: TradeState, fee: Fee, source: UpdateSource) -> TradeUpdate {
        TradeUpdate {
            order_id: "ord_1".into(),
            source,
            notify_id: Some("n1".into()),
            trade_state: state,
            trade_no: Some(TRADE_NO.into()),
            buyer_logon_id: Some("b***@example.com".into()),
            buyer_id: Some("2088000000000001".into()),
            paid_at: Some(3_000),
            refund_fee: fee.fen(),
            at: 3_000,
            late_payment: crate::model::LatePayment::Refund { lease_until: 0 },
        }
    }

    #[test]
    fn the_status_chain_is_the_crates_list() {
        assert_eq!(statuses(), OrderStatus::ALL);
    }

    #[test]
    fn the_table_has_one_row_per_state_and_report_kind() {
        let (statuses, kinds) = (statuses(), report_kinds());
        for &status in &statuses {
            for &(state, fee) in &kinds {
                let rows = TABLE
                    .iter()
                    .filter(|r| (r.0, r.1, r.2) == (status, state, fee))
                    .count();
                assert_eq!(rows, 1, "{status:?} × {state:?} × {fee:?}: {rows} rows");
            }
        }
        assert_eq!(TABLE.len(), statuses.len() * kinds.len());
    }

    #[test]
    fn every_state_and_report_kind_decides_as_tabled() {
        for &(status, state, fee, want) in TABLE {
            // Who reported it never matters to the state machine.
            for source in sources() {
                let got = decide(&order(status), &report(state, fee, source));
                assert_eq!(
                    got, want,
                    "{status:?} order, {state:?} with refund {fee:?} from {source:?}"
                );
            }
        }
    }

    #[test]
    fn a_different_trade_no_is_refused_before_anything_else() {
        for &(status, state, fee, _) in TABLE {
            let mut u = report(state, fee, UpdateSource::Notify);
            u.trade_no = Some("2024OTHER".into());
            assert_eq!(
                decide(&order(status), &u),
                refuse(TradeNoMismatch),
                "{status:?} order, {state:?} with refund {fee:?}"
            );
        }
    }

    #[test]
    fn a_trade_no_missing_on_either_side_is_not_compared() {
        for &(status, state, fee, want) in TABLE {
            let mut unknown = order(status);
            unknown.trade_no = None;
            let mut other = report(state, fee, UpdateSource::Notify);
            other.trade_no = Some("2024OTHER".into());
            assert_eq!(decide(&unknown, &other), want, "order without trade_no");

            let mut silent = report(state, fee, UpdateSource::Refund);
            silent.trade_no = None;
            assert_eq!(
                decide(&order(status), &silent),
                want,
                "report without trade_no"
            );
        }
    }

    #[test]
    fn steps_taken_win_over_where_the_update_stopped() {
        let paid = [EventType::Paid];
        assert_eq!(stopped(None, &[]), Outcome::Duplicate);
        assert_eq!(stopped(None, &paid), Outcome::Applied);
        assert_eq!(
            stopped(Some(ClosedAfterPaid), &[]),
            Outcome::Anomaly(AnomalyReason::ClosedAfterPaid)
        );
        assert_eq!(
            stopped(Some(ClosedAfterPaid), &[EventType::PartiallyRefunded]),
            Outcome::Applied
        );
    }

    #[test]
    fn a_refund_step_is_named_by_the_status_it_left() {
        assert_eq!(refund_event(S::Refunded), EventType::Refunded);
        assert_eq!(refund_event(S::Paid), EventType::PartiallyRefunded);
    }

    #[test]
    fn a_confirmed_refund_reports_a_closed_trade_only_at_the_total() {
        let o = order(S::Paid);
        for (fee, state) in [
            (1, T::Success),
            (TOTAL - 1, T::Success),
            (TOTAL, T::Closed),
            (TOTAL + 1, T::Closed),
        ] {
            let u = refund_report(&o, fee, 9_000);
            assert_eq!(u.trade_state, state, "refund total {fee}");
            assert_eq!(u.refund_fee, Some(fee));
            assert_eq!(u.order_id, o.id);
            assert_eq!(u.source, UpdateSource::Refund);
            assert_eq!(u.at, 9_000);
            assert_eq!(
                (
                    &u.notify_id,
                    &u.trade_no,
                    &u.buyer_logon_id,
                    &u.buyer_id,
                    u.paid_at
                ),
                (&None, &None, &None, &None, None)
            );
        }
    }
}
