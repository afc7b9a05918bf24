//! Refunds: reserving the amount and recording the request, reading them,
//! and settling one with what Alipay answered. A confirmed refund's figure
//! goes through the state machine (`apply`) in the same transaction.

use sqlx::Row;

use super::apply::apply_in_tx;
use super::notifications::insert_notification;
use super::orders::fetch_order;
use super::rows::{refund_cols, refund_from_row};
use super::{SqlStore, Tx};
use crate::Result;
use crate::error::StoreError;
use crate::model::{
    CreateRefundOutcome, NewRefund, OrderStatus, Refund, RefundOrigin, RefundResult, RefundSlot,
    RefundStatus,
};
use crate::transition;

pub(super) async fn create_refund(s: &SqlStore, r: NewRefund) -> Result<CreateRefundOutcome> {
    let mut tx = s.begin_write().await?;
    if let Some(existing) = find_refund_by_key(&mut tx, &r).await? {
        return Ok(CreateRefundOutcome::Existing(existing));
    }
    let order = fetch_order(&mut tx, &r.order_id).await?;
    if order.status != OrderStatus::Paid {
        // Same race as below: a same-key refund may have just made the
        // order `refunded`.
        if let Some(existing) = find_refund_by_key(&mut tx, &r).await? {
            return Ok(CreateRefundOutcome::Existing(existing));
        }
        return Ok(CreateRefundOutcome::NotPaid(order.status));
    }
    let reserved = sqlx::query(
        "UPDATE orders SET refund_pending_fen = refund_pending_fen + $2, updated_at = $3 \
         WHERE id = $1 AND status = 'paid' \
         AND refunded_fen + refund_pending_fen + $2 <= total_fen",
    )
    .bind(&r.order_id)
    .bind(r.amount_fen)
    .bind(r.created_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if reserved == 0 {
        // On PostgreSQL the update above may have waited for a concurrent
        // request with the same key, which then committed its refund: that
        // refund is this request's answer, not a refusal (read committed
        // lets this statement see it).
        if let Some(existing) = find_refund_by_key(&mut tx, &r).await? {
            return Ok(CreateRefundOutcome::Existing(existing));
        }
        let order = fetch_order(&mut tx, &r.order_id).await?;
        if order.status != OrderStatus::Paid {
            return Ok(CreateRefundOutcome::NotPaid(order.status));
        }
        return Ok(CreateRefundOutcome::ExceedsRemaining {
            remaining_fen: (order.total_fen - order.refunded_fen - order.refund_pending_fen).max(0),
        });
    }
    let inserted = insert_refund(&mut tx, &r, RefundOrigin::Merchant).await;
    match inserted {
        Ok(_) => {
            tx.commit().await?;
            let refund = get_refund(s, &r.id)
                .await?
                .ok_or(StoreError::NotFound("refund"))?;
            Ok(CreateRefundOutcome::Created(refund))
        }
        Err(e) if StoreError::is_unique_violation(&e) => {
            // A concurrent request with the same key won; our reservation
            // rolls back with the transaction.
            tx.rollback().await?;
            let mut tx = s.begin_write().await?;
            let existing = find_refund_by_key(&mut tx, &r).await?;
            tx.commit().await?;
            existing
                .map(CreateRefundOutcome::Existing)
                .ok_or(StoreError::Conflict("out_request_no"))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get_refund(s: &SqlStore, id: &str) -> Result<Option<Refund>> {
    sqlx::query(concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&s.pool)
    .await?
    .as_ref()
    .map(refund_from_row)
    .transpose()
}

pub(super) async fn list_refunds(s: &SqlStore, order_id: &str) -> Result<Vec<Refund>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE order_id = $1 ORDER BY created_at, id"
    ))
    .bind(order_id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(refund_from_row).collect()
}

pub(super) async fn finish_refund(
    s: &SqlStore,
    refund_id: &str,
    result: &RefundResult,
) -> Result<Refund> {
    let mut tx = s.begin_write().await?;
    let refund = select_refund(&mut tx, refund_id).await?;
    if refund.status == RefundStatus::Pending {
        match result {
            RefundResult::Succeeded { refund_fee, record } => {
                let at = record.received_at;
                let done = sqlx::query(
                    "UPDATE refunds SET status = 'succeeded', updated_at = $2 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(refund_id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    release_reservation(&mut tx, &refund, at).await?;
                    // Without Alipay's cumulative figure, the sum of the
                    // refunds Alipay confirmed one by one is the best
                    // reported amount we have.
                    let fee = match refund_fee {
                        Some(f) => *f,
                        None => sqlx::query(
                            "SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS s \
                                 FROM refunds WHERE order_id = $1 AND status = 'succeeded'",
                        )
                        .bind(&refund.order_id)
                        .fetch_one(&mut *tx)
                        .await?
                        .try_get::<i64, _>("s")?,
                    };
                    let order = fetch_order(&mut tx, &refund.order_id).await?;
                    let update = transition::refund_report(&order, fee, at);
                    let (outcome, _, _) = apply_in_tx(&mut tx, &update).await?;
                    insert_notification(&mut tx, record, Some(&refund.order_id), &outcome).await?;
                }
            }
            RefundResult::Failed { code, at } => {
                let done = sqlx::query(
                    "UPDATE refunds SET status = 'failed', failure_code = $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'pending'",
                )
                .bind(refund_id)
                .bind(code)
                .bind(*at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if done == 1 {
                    release_reservation(&mut tx, &refund, *at).await?;
                }
            }
        }
    }
    tx.commit().await?;
    get_refund(s, refund_id)
        .await?
        .ok_or(StoreError::NotFound("refund"))
}

/// Inserts a `pending` refund (its amount already reserved), leased to its
/// creator until `r.lease_until`.
pub(super) async fn insert_refund(
    tx: &mut Tx,
    r: &NewRefund,
    origin: RefundOrigin,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO refunds (",
        refund_cols!(),
        ", reconcile_after) VALUES ($1, $2, $3, $4, $5, 'pending', NULL, $6, $7, $8, $8, $9, 0, $10)"
    ))
    .bind(&r.id)
    .bind(&r.order_id)
    .bind(&r.out_request_no)
    .bind(r.amount_fen)
    .bind(r.reason.as_deref())
    .bind(r.idempotency_key.as_deref())
    .bind(r.request_hash.as_deref())
    .bind(r.created_at)
    .bind(origin.as_str())
    .bind(r.lease_until)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Alipay asks for refunds of one trade to be spaced apart, so a refund
/// call takes the order's slot: granted when the last call of any refund of
/// the order started at least `spacing` ago. A refused slot moves the
/// refund's lease to when the slot frees, so the next pass finds it due.
pub(super) async fn take_refund_slot(
    s: &SqlStore,
    refund_id: &str,
    now: i64,
    spacing: i64,
) -> Result<RefundSlot> {
    let mut tx = s.begin_write().await?;
    let refund = select_refund(&mut tx, refund_id).await?;
    if refund.status != RefundStatus::Pending {
        tx.commit().await?;
        return Ok(RefundSlot::Settled(refund));
    }
    // The slot time only moves forward: two callers whose clocks differ by
    // a millisecond must not pull it back. Without spacing, always granted.
    let taken = sqlx::query(
        "UPDATE orders SET refund_slot_at = CASE WHEN refund_slot_at IS NULL \
         OR refund_slot_at < $2 THEN $2 ELSE refund_slot_at END WHERE id = $1 \
         AND (refund_slot_at IS NULL OR $4 = 0 OR refund_slot_at <= $3)",
    )
    .bind(&refund.order_id)
    .bind(now)
    .bind(now.saturating_sub(spacing))
    .bind(spacing)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if taken == 0 {
        let slot_at: Option<i64> = sqlx::query("SELECT refund_slot_at FROM orders WHERE id = $1")
            .bind(&refund.order_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("refund_slot_at")?;
        let until = slot_at.unwrap_or(now).saturating_add(spacing).max(now + 1);
        sqlx::query("UPDATE refunds SET reconcile_after = $2 WHERE id = $1")
            .bind(refund_id)
            .bind(until)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(RefundSlot::Wait { until });
    }
    sqlx::query("UPDATE refunds SET gateway_calls = gateway_calls + 1 WHERE id = $1")
        .bind(refund_id)
        .execute(&mut *tx)
        .await?;
    let refund = select_refund(&mut tx, refund_id).await?;
    tx.commit().await?;
    Ok(RefundSlot::Granted(refund))
}

async fn select_refund(tx: &mut Tx, refund_id: &str) -> Result<Refund> {
    sqlx::query(concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE id = $1"
    ))
    .bind(refund_id)
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(refund_from_row)
    .transpose()?
    .ok_or(StoreError::NotFound("refund"))
}

/// A refund of the order with the same idempotency key or `out_request_no`:
/// either way, this request was made before.
async fn find_refund_by_key(tx: &mut Tx, r: &NewRefund) -> Result<Option<Refund>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        refund_cols!(),
        " FROM refunds WHERE order_id = $1 AND (idempotency_key = $2 OR out_request_no = $3)"
    ))
    .bind(&r.order_id)
    .bind(r.idempotency_key.as_deref())
    .bind(&r.out_request_no)
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(refund_from_row).transpose()
}

/// Frees the amount a settled refund had reserved. The guard keeps a
/// release that somehow ran twice from failing the transaction on the
/// `refund_pending_fen >= 0` check.
async fn release_reservation(tx: &mut Tx, refund: &Refund, at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE orders SET refund_pending_fen = refund_pending_fen - $2, updated_at = $3 \
         WHERE id = $1 AND refund_pending_fen >= $2",
    )
    .bind(&refund.order_id)
    .bind(refund.amount_fen)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
