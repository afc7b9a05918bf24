//! Claims: work several processes may want at once (reconcile passes over
//! orders and refunds, webhook deliveries) is taken with a lease by one
//! conditional `UPDATE`, so that two claimers never hold the same row and a
//! claimer that dies only delays the row until its lease ends.
//!
//! MySQL and MariaDB cannot say that in one statement (no `RETURNING`, no
//! `LIMIT` in an `IN (…)` sub-select, no sub-select of the table being
//! updated): there a claim is a transaction that locks the due rows with
//! `SELECT … FOR UPDATE SKIP LOCKED`, moves their lease, and reads them
//! back ([`claim_mysql`]). The due conditions are the same texts.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{
    event_cols, event_from_row, order_cols, order_from_row, refund_cols, refund_from_row,
};
use super::{Backend, SqlStore};
use crate::Result;
use crate::error::StoreError;
use crate::model::{Order, OrderEvent, ReconcileClaim, Refund};

/// Builds a claim statement for both backends: PostgreSQL skips rows another
/// pass has locked (`FOR UPDATE SKIP LOCKED`), picking them in a
/// materialised CTE — inside `IN (…)` the planner may run a `LIMIT … SKIP
/// LOCKED` sub-select more than once and so take more rows than the limit; SQLite needs nothing more,
/// because a write statement there holds the database's single write lock.
/// The outer `WHERE` repeats the due test, so a row that another pass leased
/// between our sub-select and our update is left alone.
macro_rules! claim_sql {
    ($table:literal, $cols:expr, $set:literal, $due:expr, $order:literal) => {
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
macro_rules! orders_due {
    () => {
        "((status = 'pending' AND (created_at <= $2 OR expires_at <= $1)) \
         OR status = 'closing' \
         OR (status = 'closed' AND channel IS NOT NULL AND expires_at > $1)) \
         AND (reconcile_after IS NULL OR reconcile_after <= $1)"
    };
}

/// Pending refunds whose lease is free (same parameters). A refund's lease
/// is its own due time (its creator's hold, or when the trade's refund slot
/// frees), so the age threshold only applies to rows that never had one.
macro_rules! refunds_due {
    () => {
        "status = 'pending' AND (created_at <= $2 OR reconcile_after IS NOT NULL) \
         AND (reconcile_after IS NULL OR reconcile_after <= $1)"
    };
}

/// Pending events whose next attempt is due (`$1` now).
macro_rules! events_due {
    () => {
        "webhook_state = 'pending' AND next_attempt_at <= $1"
    };
}

const CLAIM_ORDERS: (&str, &str) = claim_sql!(
    "orders",
    order_cols!(),
    "reconcile_after = $3",
    orders_due!(),
    "created_at, id"
);

const CLAIM_REFUNDS: (&str, &str) = claim_sql!(
    "refunds",
    refund_cols!(),
    "reconcile_after = $3",
    refunds_due!(),
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

/// A claim on MySQL: the due rows nobody else holds, locked in
/// `pick`'s order, get `lease_column = lease_until`; then they are read
/// back. `pick` selects `id`, takes `binds` as `$1`, `$2`, … and ends where
/// the locking clause goes: `FOR UPDATE SKIP LOCKED`, or on a server
/// without it `FOR UPDATE`, which waits for a concurrent claim to commit
/// and then, at READ COMMITTED, sees that claim's rows leased and no
/// longer due: claims queue instead of passing each other, exclusive all
/// the same.
///
/// InnoDB may pick a claim as a deadlock victim (it locks every row its
/// scan matches before sorting, in index order, so two claims can cross;
/// seen without `SKIP LOCKED`). The victim's transaction is rolled back
/// whole, having taken nothing, so the claim is simply run again.
async fn claim_mysql(
    s: &SqlStore,
    pick: &'static str,
    binds: &[i64],
    table: &str,
    lease_column: &str,
    lease_until: i64,
    cols: &str,
) -> Result<Vec<AnyRow>> {
    const ATTEMPTS: usize = 5;
    let mut attempt = 1;
    loop {
        match claim_mysql_once(s, pick, binds, table, lease_column, lease_until, cols).await {
            Err(StoreError::Database(e)) if attempt < ATTEMPTS && is_deadlock(&e) => {
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// InnoDB's "deadlock found" (1213), SQLSTATE 40001.
fn is_deadlock(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("40001"))
}

async fn claim_mysql_once(
    s: &SqlStore,
    pick: &'static str,
    binds: &[i64],
    table: &str,
    lease_column: &str,
    lease_until: i64,
    cols: &str,
) -> Result<Vec<AnyRow>> {
    let mut tx = s.begin_write().await?;
    let lock = if s.skip_locked {
        " FOR UPDATE SKIP LOCKED"
    } else {
        " FOR UPDATE"
    };
    let mut query = sqlx::query(AssertSqlSafe(format!("{pick}{lock}")));
    for b in binds {
        query = query.bind(*b);
    }
    let ids = query
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        tx.commit().await?;
        return Ok(Vec::new());
    }
    // `$2, $3, …`: one per id; the statement text is ours, the ids are bound.
    let list = (2..ids.len() + 2)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut update = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET {lease_column} = $1 WHERE id IN ({list})"
    )))
    .bind(lease_until);
    for id in &ids {
        update = update.bind(id);
    }
    update.execute(&mut *tx).await?;
    let list = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut select = sqlx::query(AssertSqlSafe(format!(
        "SELECT {cols} FROM {table} WHERE id IN ({list})"
    )));
    for id in &ids {
        select = select.bind(id);
    }
    let rows = select.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

pub(super) async fn claim_reconcile_orders(s: &SqlStore, c: &ReconcileClaim) -> Result<Vec<Order>> {
    let rows = if s.backend == Backend::MySql {
        claim_mysql(
            s,
            concat!(
                "SELECT id FROM orders WHERE ",
                orders_due!(),
                " ORDER BY created_at, id LIMIT $3"
            ),
            &[c.now, c.created_before, c.limit],
            "orders",
            "reconcile_after",
            c.lease_until,
            order_cols!(),
        )
        .await?
    } else {
        sqlx::query(s.pick(CLAIM_ORDERS))
            .bind(c.now)
            .bind(c.created_before)
            .bind(c.lease_until)
            .bind(c.limit)
            .fetch_all(s.writer())
            .await?
    };
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
    let rows = if s.backend == Backend::MySql {
        claim_mysql(
            s,
            concat!(
                "SELECT id FROM refunds WHERE ",
                refunds_due!(),
                " ORDER BY created_at, id LIMIT $3"
            ),
            &[c.now, c.created_before, c.limit],
            "refunds",
            "reconcile_after",
            c.lease_until,
            refund_cols!(),
        )
        .await?
    } else {
        sqlx::query(s.pick(CLAIM_REFUNDS))
            .bind(c.now)
            .bind(c.created_before)
            .bind(c.lease_until)
            .bind(c.limit)
            .fetch_all(s.writer())
            .await?
    };
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
    let rows = if s.backend == Backend::MySql {
        claim_mysql(
            s,
            concat!(
                "SELECT id FROM order_events WHERE ",
                events_due!(),
                " ORDER BY next_attempt_at, id LIMIT $2"
            ),
            &[now, limit],
            "order_events",
            "next_attempt_at",
            lease_until,
            event_cols!(),
        )
        .await?
    } else {
        sqlx::query(s.pick(CLAIM_EVENTS))
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(s.writer())
            .await?
    };
    let mut out = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

/// Takes one event's lease: `$1` id, `$2` now, `$3` lease until, `$4` 1 to
/// force.
macro_rules! claim_event_update {
    () => {
        "UPDATE order_events SET next_attempt_at = $3, \
         attempts = CASE WHEN webhook_state = 'pending' THEN attempts ELSE 0 END, \
         webhook_state = 'pending' \
         WHERE id = $1 AND ($4 = 1 OR (webhook_state = 'pending' \
         AND (next_attempt_at IS NULL OR next_attempt_at <= $2)))"
    };
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
    //
    // MySQL assigns `SET` items left to right: `attempts` reads
    // `webhook_state` before it is assigned, as on the other backends.
    if s.backend == Backend::MySql {
        let mut tx = s.begin_write().await?;
        let done = sqlx::query(claim_event_update!())
            .bind(event_id)
            .bind(now)
            .bind(lease_until)
            .bind(i64::from(force))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let row = if done == 1 {
            sqlx::query(concat!(
                "SELECT ",
                event_cols!(),
                " FROM order_events WHERE id = $1"
            ))
            .bind(event_id)
            .fetch_optional(&mut *tx)
            .await?
        } else {
            None
        };
        tx.commit().await?;
        return row.as_ref().map(event_from_row).transpose();
    }
    sqlx::query(concat!(claim_event_update!(), " RETURNING ", event_cols!()))
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

/// Claims rows one by one: `pick` (binds `$1` now, `$2` limit) lists due
/// ids; for each, `take` (binds `$1` now, `$2` lease until, `$3` id)
/// repeats the due test in a conditional update, so whoever's update
/// matches holds the row and a concurrent claimer matches nothing; the
/// taken row is read back with `read` (binds `$1` id) in the same
/// transaction.
pub(super) async fn claim_each(
    s: &SqlStore,
    (pick, take, read): (&'static str, &'static str, &'static str),
    now: i64,
    lease_until: i64,
    limit: i64,
    subscription_id: Option<&str>,
) -> Result<Vec<AnyRow>> {
    let ids: Vec<String> = sqlx::query(pick)
        .bind(now)
        .bind(limit)
        .bind(subscription_id)
        .fetch_all(&s.pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("id"))
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::new();
    for id in ids {
        let mut tx = s.begin_write().await?;
        let taken = sqlx::query(take)
            .bind(now)
            .bind(lease_until)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 1 {
            out.push(sqlx::query(read).bind(&id).fetch_one(&mut *tx).await?);
        }
        tx.commit().await?;
    }
    Ok(out)
}
