//! Claims: work several processes may want at once (reconcile passes over
//! orders and refunds, webhook deliveries) is taken with a lease by one
//! conditional `UPDATE`, so that two claimers never hold the same row and a
//! claimer that dies only delays the row until its lease ends.

use super::SqlStore;
use super::rows::{
    event_cols, event_from_row, order_cols, order_from_row, refund_cols, refund_from_row,
};
use crate::Result;
use crate::model::{Order, OrderEvent, ReconcileClaim, Refund};

/// Builds a claim statement for both backends: PostgreSQL skips rows another
/// pass has locked (`FOR UPDATE SKIP LOCKED`), picking them in a
/// materialised CTE — inside `IN (…)` the planner may run a `LIMIT … SKIP
/// LOCKED` sub-select more than once and so take more rows than the limit; SQLite needs nothing more,
/// because a write statement there holds the database's single write lock.
/// The outer `WHERE` repeats the due test, so a row that another pass leased
/// between our sub-select and our update is left alone.
macro_rules! claim_sql {
    ($table:literal, $cols:expr, $set:literal, $due:literal, $order:literal) => {
        (
            concat!(
                "UPDATE ",
                $table,
                " SET ",
                $set,
                " WHERE id IN (SELECT id FROM ",
                $table,
                " WHERE ",
                $due,
                " ORDER BY ",
                $order,
                " LIMIT $4) AND ",
                $due,
                " RETURNING ",
                $cols
            ),
            concat!(
                "WITH picked AS MATERIALIZED (SELECT id FROM ",
                $table,
                " WHERE ",
                $due,
                " ORDER BY ",
                $order,
                " LIMIT $4 FOR UPDATE SKIP LOCKED) UPDATE ",
                $table,
                " SET ",
                $set,
                " WHERE id IN (SELECT id FROM picked) AND ",
                $due,
                " RETURNING ",
                $cols
            ),
        )
    };
}

/// Orders whose lease is free and that Alipay may know more about: pending
/// ones old enough (or past their deadline), every `closing` one, and
/// closed ones whose payment parameters are still alive (a buyer holding
/// them could still pay). `$1` now, `$2` created before, `$3` lease until,
/// `$4` limit.
const CLAIM_ORDERS: (&str, &str) = claim_sql!(
    "orders",
    order_cols!(),
    "reconcile_after = $3",
    "((status = 'pending' AND (created_at <= $2 OR expires_at <= $1)) \
     OR status = 'closing' \
     OR (status = 'closed' AND channel IS NOT NULL AND expires_at > $1)) \
     AND (reconcile_after IS NULL OR reconcile_after <= $1)",
    "created_at, id"
);

/// Pending refunds whose lease is free (same parameters). A refund's lease
/// is its own due time (its creator's hold, or when the trade's refund slot
/// frees), so the age threshold only applies to rows that never had one.
const CLAIM_REFUNDS: (&str, &str) = claim_sql!(
    "refunds",
    refund_cols!(),
    "reconcile_after = $3",
    "status = 'pending' AND (created_at <= $2 OR reconcile_after IS NOT NULL) \
     AND (reconcile_after IS NULL OR reconcile_after <= $1)",
    "created_at, id"
);

/// Pending events whose next attempt is due. `$1` now, `$2` lease until,
/// `$3` limit.
const CLAIM_EVENTS: (&str, &str) = (
    concat!(
        "UPDATE order_events SET next_attempt_at = $2 WHERE id IN (SELECT id FROM order_events \
         WHERE webhook_state = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $3) \
         AND webhook_state = 'pending' AND next_attempt_at <= $1 RETURNING ",
        event_cols!()
    ),
    concat!(
        "WITH picked AS MATERIALIZED (SELECT id FROM order_events \
         WHERE webhook_state = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE order_events SET next_attempt_at = $2 WHERE id IN (SELECT id FROM picked) \
         AND webhook_state = 'pending' AND next_attempt_at <= $1 RETURNING ",
        event_cols!()
    ),
);

pub(super) async fn claim_reconcile_orders(s: &SqlStore, c: &ReconcileClaim) -> Result<Vec<Order>> {
    let rows = sqlx::query(s.pick(CLAIM_ORDERS))
        .bind(c.now)
        .bind(c.created_before)
        .bind(c.lease_until)
        .bind(c.limit)
        .fetch_all(s.writer())
        .await?;
    let mut out = rows
        .iter()
        .map(order_from_row)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

pub(super) async fn claim_reconcile_refunds(
    s: &SqlStore,
    c: &ReconcileClaim,
) -> Result<Vec<Refund>> {
    let rows = sqlx::query(s.pick(CLAIM_REFUNDS))
        .bind(c.now)
        .bind(c.created_before)
        .bind(c.lease_until)
        .bind(c.limit)
        .fetch_all(s.writer())
        .await?;
    let mut out = rows
        .iter()
        .map(refund_from_row)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

pub(super) async fn claim_due_events(
    s: &SqlStore,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<OrderEvent>> {
    let rows = sqlx::query(s.pick(CLAIM_EVENTS))
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(s.writer())
        .await?;
    let mut out = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

pub(super) async fn claim_event(
    s: &SqlStore,
    event_id: &str,
    now: i64,
    lease_until: i64,
    force: bool,
) -> Result<Option<OrderEvent>> {
    // `next_attempt_at` is both the retry schedule and the lease of an
    // attempt in flight, so a forced resend (an operator's explicit
    // request) takes the event even when it is not due. Should an attempt
    // be in flight at that moment, the receiver gets the event twice and
    // de-duplicates on its id, as it must for retries anyway.
    sqlx::query(concat!(
        "UPDATE order_events SET next_attempt_at = $3, \
         attempts = CASE WHEN webhook_state = 'pending' THEN attempts ELSE 0 END, \
         webhook_state = 'pending' \
         WHERE id = $1 AND ($4 = 1 OR (webhook_state = 'pending' \
         AND (next_attempt_at IS NULL OR next_attempt_at <= $2))) RETURNING ",
        event_cols!()
    ))
    .bind(event_id)
    .bind(now)
    .bind(lease_until)
    .bind(i64::from(force))
    .fetch_optional(s.writer())
    .await?
    .as_ref()
    .map(event_from_row)
    .transpose()
}
