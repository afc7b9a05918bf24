//! Performs the order state machine (`crate::transition`) inside a write
//! transaction: each step it decides becomes one conditional `UPDATE` plus
//! its event, and the order is re-read before the next decision. This is
//! the only code that changes an order's payment state.

use sqlx::Row;

use super::notifications::insert_notification;
use super::orders::fetch_order;
use super::outbox::insert_event;
use super::refunds::insert_refund;
use super::{SqlStore, Tx};
use crate::Result;
use crate::error::StoreError;
use crate::model::{
    ApplyResult, EventType, LatePayment, NewNotification, NewRefund, Order, OrderStatus, Outcome,
    RefundOrigin, TradeUpdate,
};
use crate::transition::{self, Step};

pub(super) async fn apply_trade_update(
    s: &SqlStore,
    update: &TradeUpdate,
    record: &NewNotification,
) -> Result<ApplyResult> {
    match &s.group {
        Some(group) => super::group::apply_grouped(s, group, update, record).await,
        None => apply_alone(s, update, record).await,
    }
}

/// [`apply_trade_update`] in a transaction of its own.
pub(super) async fn apply_alone(
    s: &SqlStore,
    update: &TradeUpdate,
    record: &NewNotification,
) -> Result<ApplyResult> {
    let mut tx = s.begin_write().await?;
    let (outcome, events, order) = apply_in_tx(&mut tx, update).await?;
    insert_notification(&mut tx, record, Some(&update.order_id), &outcome).await?;
    tx.commit().await?;
    Ok(ApplyResult {
        outcome,
        order,
        events,
    })
}

/// Applies `u` inside `tx` with conditional updates. Each loop turn re-reads
/// the order, so a concurrent writer that got there first turns our update
/// into a no-op instead of a double transition.
pub(super) async fn apply_in_tx(
    tx: &mut Tx,
    u: &TradeUpdate,
) -> Result<(Outcome, Vec<EventType>, Order)> {
    let mut events = Vec::new();
    // Each effective step moves the order strictly forward, so a handful of
    // turns always suffices; the bound only guards against a broken database.
    for _ in 0..8 {
        let order = fetch_order(tx, &u.order_id).await?;
        match transition::decide(&order, u) {
            Step::Done => return Ok((transition::stopped(None, &events), events, order)),
            Step::Anomaly(reason) => {
                return Ok((transition::stopped(Some(reason), &events), events, order));
            }
            Step::MarkPaid => {
                let done = sqlx::query(
                    "UPDATE orders SET status = 'paid', trade_no = COALESCE($2, trade_no), \
                     buyer_logon_id = COALESCE($3, buyer_logon_id), \
                     buyer_id = COALESCE($4, buyer_id), paid_at = $5, updated_at = $6 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(&order.id)
                .bind(u.trade_no.as_deref())
                .bind(u.buyer_logon_id.as_deref())
                .bind(u.buyer_id.as_deref())
                .bind(u.paid_at.unwrap_or(u.at))
                .bind(u.at)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if done == 1 {
                    insert_event(
                        tx,
                        &order.id,
                        EventType::Paid,
                        OrderStatus::Pending,
                        OrderStatus::Paid,
                        order.refunded_fen,
                        u,
                    )
                    .await?;
                    events.push(EventType::Paid);
                }
            }
            Step::MarkClosed => {
                let done = sqlx::query(
                    "UPDATE orders SET status = 'closed', trade_no = COALESCE($2, trade_no), \
                     closed_at = COALESCE(closed_at, $3), updated_at = $3 \
                     WHERE id = $1 AND status = $4",
                )
                .bind(&order.id)
                .bind(u.trade_no.as_deref())
                .bind(u.at)
                .bind(order.status.as_str())
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if done == 1 {
                    insert_event(
                        tx,
                        &order.id,
                        EventType::Closed,
                        order.status,
                        OrderStatus::Closed,
                        order.refunded_fen,
                        u,
                    )
                    .await?;
                    events.push(EventType::Closed);
                }
            }
            Step::MarkPaidAfterClose => {
                let done = sqlx::query(
                    "UPDATE orders SET status = 'paid', paid_after_close = 1, \
                     trade_no = COALESCE($2, trade_no), \
                     buyer_logon_id = COALESCE($3, buyer_logon_id), \
                     buyer_id = COALESCE($4, buyer_id), paid_at = $5, updated_at = $6 \
                     WHERE id = $1 AND status = $7",
                )
                .bind(&order.id)
                .bind(u.trade_no.as_deref())
                .bind(u.buyer_logon_id.as_deref())
                .bind(u.buyer_id.as_deref())
                .bind(u.paid_at.unwrap_or(u.at))
                .bind(u.at)
                .bind(order.status.as_str())
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if done == 1 {
                    insert_event(
                        tx,
                        &order.id,
                        EventType::PaidAfterClose,
                        order.status,
                        OrderStatus::Paid,
                        order.refunded_fen,
                        u,
                    )
                    .await?;
                    events.push(EventType::PaidAfterClose);
                    if let LatePayment::Refund { lease_until } = u.late_payment {
                        refund_late_payment(tx, &order, u, lease_until).await?;
                    }
                }
            }
            Step::Refund { fee } => {
                if let Some(status) = record_refunded(tx, &order.id, fee, u.at).await? {
                    let to = OrderStatus::parse(&status)
                        .ok_or(StoreError::Corrupt { column: "status" })?;
                    let event = transition::refund_event(to);
                    insert_event(tx, &order.id, event, OrderStatus::Paid, to, fee, u).await?;
                    events.push(event);
                }
            }
        }
    }
    let order = fetch_order(tx, &u.order_id).await?;
    Ok((Outcome::Applied, events, order))
}

/// The conditional `UPDATE` of a refund step; `refunded_fen` only grows.
macro_rules! refund_update {
    () => {
        "UPDATE orders SET refunded_fen = $2, \
         status = CASE WHEN $2 = total_fen THEN 'refunded' ELSE 'paid' END, \
         updated_at = $3 \
         WHERE id = $1 AND status = 'paid' AND refunded_fen < $2 AND total_fen >= $2"
    };
}

/// Records the refunded total `fee` if it moves the order forward, and
/// then the status it left the order in; `None`: nothing changed.
async fn record_refunded(tx: &mut Tx, order_id: &str, fee: i64, at: i64) -> Result<Option<String>> {
    if tx.has_returning() {
        let row = sqlx::query(concat!(refund_update!(), " RETURNING status"))
            .bind(order_id)
            .bind(fee)
            .bind(at)
            .fetch_optional(&mut **tx)
            .await?;
        return Ok(row.map(|r| r.try_get("status")).transpose()?);
    }
    // MySQL: the count of matched rows says whether the update happened;
    // the row it changed is ours until commit, so the read sees our status.
    let done = sqlx::query(refund_update!())
        .bind(order_id)
        .bind(fee)
        .bind(at)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if done != 1 {
        return Ok(None);
    }
    let row = sqlx::query("SELECT status FROM orders WHERE id = $1")
        .bind(order_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(row.try_get("status")?))
}

/// The `out_request_no` of the refund of a payment that arrived after the
/// order was closed: one per order, derived from its id, so that Alipay
/// would refuse a second one even if our record of the first were lost.
pub(crate) fn late_refund_request_no(order_id: &str) -> String {
    let tail: String = order_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("PAC{tail}").chars().take(64).collect()
}

/// Records (and reserves) the refund of whatever is left of a late
/// payment, in the transaction that took the payment: the answer to Alipay
/// is only `success` once the decision to give the money back is durable.
/// The refund is due at once: whoever drives refunds sends it.
async fn refund_late_payment(
    tx: &mut Tx,
    order: &Order,
    u: &TradeUpdate,
    lease_until: i64,
) -> Result<()> {
    let already = u.refund_fee.unwrap_or(0).max(order.refunded_fen);
    let amount = order.total_fen - already - order.refund_pending_fen;
    if amount <= 0 {
        return Ok(());
    }
    sqlx::query("UPDATE orders SET refund_pending_fen = refund_pending_fen + $2 WHERE id = $1")
        .bind(&order.id)
        .bind(amount)
        .execute(&mut **tx)
        .await?;
    let refund = NewRefund {
        id: crate::new_id("rf"),
        order_id: order.id.clone(),
        out_request_no: late_refund_request_no(&order.id),
        amount_fen: amount,
        reason: Some("订单已关闭，款项原路退回".into()),
        idempotency_key: None,
        request_hash: None,
        created_at: u.at,
        lease_until,
    };
    insert_refund(tx, &refund, RefundOrigin::PaidAfterClose).await?;
    Ok(())
}
