//! Performs the order state machine (`crate::transition`) inside a write
//! transaction: each step it decides becomes one conditional `UPDATE` plus
//! its event, and the order is re-read before the next decision. This is
//! the only code that changes an order's payment state.

use sqlx::Row;

use super::notifications::insert_notification;
use super::orders::fetch_order;
use super::outbox::insert_event;
use super::{SqlStore, Tx};
use crate::Result;
use crate::error::StoreError;
use crate::model::{
    ApplyResult, EventType, NewNotification, Order, OrderStatus, Outcome, TradeUpdate,
};
use crate::transition::{self, Step};

pub(super) async fn apply_trade_update(
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
                     closed_at = $3, updated_at = $3 WHERE id = $1 AND status = 'pending'",
                )
                .bind(&order.id)
                .bind(u.trade_no.as_deref())
                .bind(u.at)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if done == 1 {
                    insert_event(
                        tx,
                        &order.id,
                        EventType::Closed,
                        OrderStatus::Pending,
                        OrderStatus::Closed,
                        order.refunded_fen,
                        u,
                    )
                    .await?;
                    events.push(EventType::Closed);
                }
            }
            Step::Refund { fee } => {
                let row = sqlx::query(
                    "UPDATE orders SET refunded_fen = $2, \
                     status = CASE WHEN $2 = total_fen THEN 'refunded' ELSE 'paid' END, \
                     updated_at = $3 \
                     WHERE id = $1 AND status = 'paid' AND refunded_fen < $2 AND total_fen >= $2 \
                     RETURNING status",
                )
                .bind(&order.id)
                .bind(fee)
                .bind(u.at)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = row {
                    let status: String = row.try_get("status")?;
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
