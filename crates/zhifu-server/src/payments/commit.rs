//! The one way a state change is made: a verified report, or a settled
//! refund, is committed by the store in one transaction (conditional
//! updates, its outbox events, its audit record), and then — only then —
//! the single after-commit hook runs: the new events' webhooks are tried
//! once ([`crate::outbox::Outbox::flush_order`]), after the answer on a
//! long-running server, or inline within a budget on a function
//! ([`crate::config::WebhookDelivery`]).
//!
//! Refused input is recorded here too ([`record_refused`]), so every report
//! Zhifu received, applied or not, is in the audit trail.

use alipay::{Amount, TradeStatus};
use zhifu_store::{
    AnomalyReason, ApplyResult, EventType, LatePayment, NewNotification, Order, Outcome, Refund,
    RefundResult, StoreError, TradeState, TradeUpdate, UpdateSource, new_id,
};

use crate::config::{LatePaymentPolicy, WebhookDelivery};
use crate::domain::{duration_ms, fen};
use crate::state::AppState;

/// A verified report about one order's trade, from a notification, a query
/// answer or our own close.
#[derive(Debug, Clone)]
pub struct Report {
    /// What produced it.
    pub source: UpdateSource,
    /// `notify_id` of a notification.
    pub notify_id: Option<String>,
    /// The trade state.
    pub trade_status: TradeStatus,
    /// Alipay's trade number.
    pub trade_no: Option<String>,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Buyer id.
    pub buyer_id: Option<String>,
    /// Payment time, epoch ms.
    pub paid_at: Option<i64>,
    /// Cumulative refunded amount.
    pub refund_fee: Option<Amount>,
    /// The message's fields, for the audit record.
    pub payload: Option<String>,
}

impl Report {
    /// Our own close of a trade that was waiting (or never created).
    pub fn closed_by_us(trade_no: Option<String>) -> Self {
        Report {
            source: UpdateSource::Close,
            notify_id: None,
            trade_status: TradeStatus::TradeClosed,
            trade_no,
            buyer_logon_id: None,
            buyer_id: None,
            paid_at: None,
            refund_fee: None,
            payload: None,
        }
    }
}

fn trade_state(s: &TradeStatus) -> Option<TradeState> {
    Some(match s {
        TradeStatus::WaitBuyerPay => TradeState::WaitBuyerPay,
        TradeStatus::TradeSuccess => TradeState::Success,
        TradeStatus::TradeFinished => TradeState::Finished,
        TradeStatus::TradeClosed => TradeState::Closed,
        _ => return None,
    })
}

/// Whose new events the after-commit hook delivers.
#[derive(Debug, Clone)]
pub(crate) enum Committed {
    /// An order's (`order_events`).
    Order(String),
    /// A subscription's (`subscription_events`).
    Subscription(String),
}

impl Committed {
    async fn flush(&self, st: &AppState) {
        let Some(outbox) = st.outbox() else {
            return;
        };
        match self {
            Committed::Order(id) => outbox.flush_order(id).await,
            Committed::Subscription(id) => outbox.flush_subscription(id).await,
        }
    }
}

/// The single after-commit hook: the new events get their first webhook
/// attempt. Never fails the caller (the outbox keeps the events).
pub(crate) async fn after_commit(st: &AppState, committed: Committed) {
    let Some(outbox) = st.outbox() else {
        return;
    };
    match outbox.delivery() {
        WebhookDelivery::AfterAnswer => {
            let st = st.clone();
            tokio::spawn(async move { committed.flush(&st).await });
        }
        WebhookDelivery::Inline { budget } => {
            // Past the budget the attempt is dropped where it stands; its
            // lease ends and the reconcile pass delivers (receivers
            // de-duplicate on the event id, as they must for retries).
            if tokio::time::timeout(budget, committed.flush(st))
                .await
                .is_err()
            {
                tracing::info!(
                    ?committed,
                    ?budget,
                    "webhook budget spent; the reconcile pass delivers the rest"
                );
            }
        }
    }
}

/// The store's update for a report, or `None` when its trade state is not
/// one the state machine knows.
fn trade_update(st: &AppState, order: &Order, r: &Report, now: i64) -> Option<TradeUpdate> {
    let state = trade_state(&r.trade_status)?;
    Some(TradeUpdate {
        order_id: order.id.clone(),
        source: r.source,
        notify_id: r.notify_id.clone(),
        trade_state: state,
        trade_no: r.trade_no.clone(),
        buyer_logon_id: r.buyer_logon_id.clone(),
        buyer_id: r.buyer_id.clone(),
        paid_at: r.paid_at,
        refund_fee: r.refund_fee.map(fen),
        at: now,
        late_payment: match st.money().late_payment {
            LatePaymentPolicy::Refund => LatePayment::Refund {
                lease_until: now.saturating_add(duration_ms(st.money().refund_lease)),
            },
            LatePaymentPolicy::Keep => LatePayment::Keep,
        },
    })
}

/// Whether committing `r` would change nothing about `order` as read (the
/// replay path): lets a caller skip building the audit payload.
pub fn changes_nothing(st: &AppState, order: &Order, r: &Report) -> bool {
    trade_update(st, order, r, st.now_ms()).is_some_and(|u| zhifu_store::is_redelivery(order, &u))
}

/// Commits a verified report that was matched against `order`: one
/// transaction applies it with conditional updates and records it (with its
/// outbox events). Duplicates are no-ops; contradictions are recorded as
/// anomalies. After a change commits, the after-commit hook runs.
///
/// # Errors
/// Store failures (nothing was changed then).
pub async fn commit_report(
    st: &AppState,
    order: &Order,
    r: Report,
) -> Result<ApplyResult, StoreError> {
    let now = st.now_ms();
    let record = |r: Report, anomaly: Vec<AnomalyReason>| NewNotification {
        id: new_id("ntf"),
        order_id: Some(order.id.clone()),
        out_trade_no: Some(order.out_trade_no.clone()),
        notify_id: r.notify_id,
        source: r.source,
        trade_status: Some(r.trade_status.as_str().to_owned()),
        anomaly,
        payload: r.payload,
        received_at: now,
    };
    let Some(update) = trade_update(st, order, &r, now) else {
        st.store()
            .record_notification(&record(r, vec![AnomalyReason::Malformed]))
            .await?;
        let order = st
            .store()
            .get_order(&order.id)
            .await?
            .ok_or(StoreError::NotFound("order"))?;
        return Ok(ApplyResult {
            outcome: Outcome::Anomaly(AnomalyReason::Malformed),
            order,
            events: Vec::new(),
        });
    };
    // The read-only replay path: a report that changes nothing about the
    // order as just read (a redelivered notification, a query that finds
    // what we know) is answered from that read, with a counter and no
    // write — replays cost no storage and take no write lock.
    if zhifu_store::is_redelivery(order, &update) {
        if r.source == UpdateSource::Notify {
            st.metrics().notification("duplicate", None);
        }
        return Ok(ApplyResult {
            outcome: Outcome::Duplicate,
            order: order.clone(),
            events: Vec::new(),
        });
    }
    let source = r.source;
    let record = record(r, Vec::new());
    let result = st.store().apply_trade_update(&update, &record).await?;
    let reason = match result.outcome {
        Outcome::Anomaly(reason) => Some(reason),
        _ => None,
    };
    if source == UpdateSource::Notify {
        st.metrics()
            .notification(result.outcome.as_str(), reason.map(AnomalyReason::as_str));
    }
    if !result.events.is_empty() {
        tracing::info!(order = %order.id, source = source.as_str(), events = ?result.events, "order changed");
        after_commit(st, Committed::Order(order.id.clone())).await;
    }
    if result.events.contains(&EventType::PaidAfterClose) {
        tracing::warn!(order = %order.id, policy = ?st.money().late_payment, "the buyer paid an order we had closed");
        st.metrics().paid_after_close();
    } else if let Some(reason) = reason {
        tracing::warn!(order = %order.id, source = source.as_str(), reason = reason.as_str(), "report refused");
    }
    Ok(result)
}

/// Commits Alipay's definite answer about a refund: the refund is settled
/// and, when it succeeded, the order's refunded amount and status move in
/// the same transaction (with their events); then the after-commit hook.
///
/// # Errors
/// Store failures (nothing was changed then).
pub async fn settle_refund(
    st: &AppState,
    order: &Order,
    refund: &Refund,
    result: &RefundResult,
) -> Result<Refund, StoreError> {
    let settled = st.store().finish_refund(&refund.id, result).await?;
    after_commit(st, Committed::Order(order.id.clone())).await;
    Ok(settled)
}

/// What a refused message claimed about itself (recorded, never trusted).
#[derive(Debug, Default)]
pub struct Claim<'a> {
    /// The `out_trade_no` it named.
    pub out_trade_no: Option<&'a str>,
    /// Its `notify_id`.
    pub notify_id: Option<&'a str>,
    /// Its `trade_status`.
    pub trade_status: Option<&'a str>,
}

/// How much of a refused message is kept.
#[derive(Debug)]
pub enum Evidence {
    /// A message whose signature verified (Alipay sent it): its fields,
    /// capped, and it may name the order it is about.
    Verified(Option<String>),
    /// Anything unauthenticated: only its digest and size. It never names
    /// an order (a forgery must not sit in a real order's audit trail), and
    /// what is recorded is rate-limited per reason ([`crate::budget`]).
    Unverified {
        /// The raw body.
        body_len: usize,
        /// SHA-256 of the raw body, hex.
        sha256: String,
    },
}

/// Largest payload kept for a refused verified message.
const MAX_REFUSED_PAYLOAD: usize = 4 * 1024;

/// Records a message that was refused before it could change anything,
/// with every reason it was refused for — within bounds: an unauthenticated
/// message is recorded only while the reason's budget lasts, and a verified
/// one whose `notify_id` was recorded before is not recorded again (a
/// replay). Either way the metrics count it.
///
/// # Errors
/// Store failures.
pub async fn record_refused(
    st: &AppState,
    order: Option<&Order>,
    claim: Claim<'_>,
    source: UpdateSource,
    reasons: &[AnomalyReason],
    evidence: Evidence,
) -> Result<(), StoreError> {
    if source == UpdateSource::Notify {
        for reason in reasons {
            st.metrics().notification("anomaly", Some(reason.as_str()));
        }
    }
    let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    let (order, payload) = match evidence {
        Evidence::Verified(payload) => {
            if let Some(id) = claim.notify_id
                && st
                    .store()
                    .refusal_seen(id, &AnomalyReason::join(reasons))
                    .await?
            {
                tracing::debug!(reasons = ?names, "refused message replayed; not recorded again");
                return Ok(());
            }
            let payload = payload.map(|p| {
                if p.len() <= MAX_REFUSED_PAYLOAD {
                    p
                } else {
                    serde_json::json!({"truncated": true, "bytes": p.len()}).to_string()
                }
            });
            (order, payload)
        }
        Evidence::Unverified { body_len, sha256 } => {
            let first = reasons.first().map_or("malformed", |r| r.as_str());
            if !st.refusal_budget().take(first) {
                tracing::debug!(reasons = ?names, "refused message over the record budget; counted only");
                return Ok(());
            }
            let payload = serde_json::json!({"sha256": sha256, "bytes": body_len}).to_string();
            (None, Some(payload))
        }
    };
    let rec = NewNotification {
        id: new_id("ntf"),
        order_id: order.map(|o| o.id.clone()),
        out_trade_no: claim.out_trade_no.map(|s| s.chars().take(64).collect()),
        notify_id: claim.notify_id.map(|s| s.chars().take(128).collect()),
        source,
        trade_status: claim.trade_status.map(|s| s.chars().take(32).collect()),
        anomaly: reasons.to_vec(),
        payload,
        received_at: st.now_ms(),
    };
    st.store().record_notification(&rec).await?;
    tracing::warn!(reasons = ?names, source = source.as_str(), "message refused");
    Ok(())
}
