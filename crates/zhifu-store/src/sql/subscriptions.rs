//! Subscriptions and the order of each charged period (their events, the
//! webhook outbox, are in `subscription_events`).
//!
//! Every change is a conditional `UPDATE … WHERE status = … [AND
//! next_period = …]` whose matched-row count decides whether this caller
//! made the change; only then is its event written, in the same
//! transaction. No statement here needs `RETURNING`, so the texts are the
//! same on every backend (MySQL counts matched rows, `docs/storage.md`).
//! Claims take one row at a time with a conditional update of its lease
//! (`leases::claim_each`): a few more statements than the batch claims,
//! for rows that are due at most once a period.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::leases::claim_each;
use super::orders::{get_order, insert_order};
use super::rows::{order_cols, order_from_row};
use super::subscription_events::insert_event;
use super::{SqlStore, Tx};
use crate::Result;
use crate::error::StoreError;
use crate::model::{
    ChargeResult, CreateSubscriptionOutcome, NewOrder, NewSubscription, Order, Subscription,
    SubscriptionEventType, SubscriptionQuery, SubscriptionStatus,
};

macro_rules! subscription_cols {
    () => {
        "id, external_agreement_no, agreement_no, status, subject, amount_fen, period_unit, \
         period_every, first_charge_date, max_periods, channel, return_url, metadata, buyer_id, \
         periods_charged, next_period, next_charge_at, failed_attempts, lease_until, \
         idempotency_key, request_hash, created_at, updated_at, activated_at, canceled_at"
    };
}

const SELECT_BY_ID: &str = concat!(
    "SELECT ",
    subscription_cols!(),
    " FROM subscriptions WHERE id = $1"
);

fn subscription_from_row(r: &AnyRow) -> Result<Subscription> {
    let status: String = r.try_get("status")?;
    Ok(Subscription {
        id: r.try_get("id")?,
        external_agreement_no: r.try_get("external_agreement_no")?,
        agreement_no: r.try_get("agreement_no")?,
        status: SubscriptionStatus::parse(&status)
            .ok_or(StoreError::Corrupt { column: "status" })?,
        subject: r.try_get("subject")?,
        amount_fen: r.try_get("amount_fen")?,
        period_unit: r.try_get("period_unit")?,
        period_every: r.try_get("period_every")?,
        first_charge_date: r.try_get("first_charge_date")?,
        max_periods: r.try_get("max_periods")?,
        channel: r.try_get("channel")?,
        return_url: r.try_get("return_url")?,
        metadata: r.try_get("metadata")?,
        buyer_id: r.try_get("buyer_id")?,
        periods_charged: r.try_get("periods_charged")?,
        next_period: r.try_get("next_period")?,
        next_charge_at: r.try_get("next_charge_at")?,
        failed_attempts: r.try_get("failed_attempts")?,
        lease_until: r.try_get("lease_until")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_hash: r.try_get("request_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        activated_at: r.try_get("activated_at")?,
        canceled_at: r.try_get("canceled_at")?,
    })
}

async fn fetch(tx: &mut Tx, id: &str) -> Result<Subscription> {
    let row = sqlx::query(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("subscription"))?;
    subscription_from_row(&row)
}

/// Ends a change's transaction: when this caller's conditional update
/// matched (`changed == 1`), writes the change's one event and answers the
/// subscription as it now is; otherwise commits nothing new and answers
/// `None`.
async fn finish_change(
    mut tx: Tx,
    changed: u64,
    id: &str,
    event: (SubscriptionEventType, Option<&str>, Option<i64>),
    at: i64,
) -> Result<Option<Subscription>> {
    if changed != 1 {
        tx.commit().await?;
        return Ok(None);
    }
    let (kind, order_id, period) = event;
    insert_event(&mut tx, id, kind, order_id, period, at).await?;
    let sub = fetch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(Some(sub))
}

pub(super) async fn create(s: &SqlStore, n: NewSubscription) -> Result<CreateSubscriptionOutcome> {
    let inserted = sqlx::query(concat!(
        "INSERT INTO subscriptions (",
        subscription_cols!(),
        ") VALUES ($1, $2, NULL, 'pending_signature', $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         NULL, 0, 1, $12, 0, NULL, $13, $14, $15, $15, NULL, NULL)"
    ))
    .bind(&n.id)
    .bind(&n.external_agreement_no)
    .bind(&n.subject)
    .bind(n.amount_fen)
    .bind(&n.period_unit)
    .bind(n.period_every)
    .bind(&n.first_charge_date)
    .bind(n.max_periods)
    .bind(&n.channel)
    .bind(n.return_url.as_deref())
    .bind(n.metadata.as_deref())
    .bind(n.first_charge_at)
    .bind(n.idempotency_key.as_deref())
    .bind(n.request_hash.as_deref())
    .bind(n.created_at)
    .execute(s.writer())
    .await;
    match inserted {
        Ok(_) => Ok(CreateSubscriptionOutcome::Created(
            get(s, &n.id)
                .await?
                .ok_or(StoreError::NotFound("subscription"))?,
        )),
        Err(e) if StoreError::is_unique_violation(&e) => {
            if let Some(key) = &n.idempotency_key {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    subscription_cols!(),
                    " FROM subscriptions WHERE idempotency_key = $1"
                ))
                .bind(key)
                .fetch_optional(&s.pool)
                .await?;
                if let Some(row) = row {
                    return Ok(CreateSubscriptionOutcome::Existing(subscription_from_row(
                        &row,
                    )?));
                }
            }
            Err(StoreError::Conflict("external_agreement_no"))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get(s: &SqlStore, id: &str) -> Result<Option<Subscription>> {
    sqlx::query(SELECT_BY_ID)
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .as_ref()
        .map(subscription_from_row)
        .transpose()
}

pub(super) async fn get_by_external_no(s: &SqlStore, no: &str) -> Result<Option<Subscription>> {
    sqlx::query(concat!(
        "SELECT ",
        subscription_cols!(),
        " FROM subscriptions WHERE external_agreement_no = $1"
    ))
    .bind(no)
    .fetch_optional(&s.pool)
    .await?
    .as_ref()
    .map(subscription_from_row)
    .transpose()
}

pub(super) async fn list(s: &SqlStore, q: &SubscriptionQuery) -> Result<Vec<Subscription>> {
    let (after_at, after_id) = match &q.after {
        Some((at, id)) => (Some(*at), Some(id.as_str())),
        None => (None, None),
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        subscription_cols!(),
        " FROM subscriptions WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
         AND (CAST($2 AS BIGINT) IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(q.status.map(SubscriptionStatus::as_str))
    .bind(after_at)
    .bind(after_id)
    .bind(q.limit)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(subscription_from_row).collect()
}

/// `pending_signature → active` (or a `past_due` one re-confirmed is left
/// alone): records Alipay's agreement number and the buyer. `Some` when
/// this call made the change.
pub(super) async fn activate(
    s: &SqlStore,
    id: &str,
    agreement_no: &str,
    buyer_id: Option<&str>,
    at: i64,
) -> Result<Option<Subscription>> {
    let mut tx = s.begin_write().await?;
    let changed = sqlx::query(
        "UPDATE subscriptions SET status = 'active', agreement_no = $2, buyer_id = $3, \
         activated_at = $4, updated_at = $4 WHERE id = $1 AND status = 'pending_signature'",
    )
    .bind(id)
    .bind(agreement_no)
    .bind(buyer_id)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    finish_change(
        tx,
        changed,
        id,
        (SubscriptionEventType::Active, None, None),
        at,
    )
    .await
}

/// Any state but a final one → `canceled`. `Some` when this call made the
/// change.
pub(super) async fn cancel(s: &SqlStore, id: &str, at: i64) -> Result<Option<Subscription>> {
    let mut tx = s.begin_write().await?;
    let changed = sqlx::query(
        "UPDATE subscriptions SET status = 'canceled', canceled_at = $2, updated_at = $2, \
         next_charge_at = NULL, lease_until = NULL \
         WHERE id = $1 AND status IN ('pending_signature', 'active', 'past_due')",
    )
    .bind(id)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    finish_change(
        tx,
        changed,
        id,
        (SubscriptionEventType::Canceled, None, None),
        at,
    )
    .await
}

/// Active subscriptions whose next charge is due and whose lease is free:
/// `$1` now.
macro_rules! subscriptions_due {
    () => {
        "status = 'active' AND next_charge_at IS NOT NULL AND next_charge_at <= $1 \
         AND (lease_until IS NULL OR lease_until <= $1)"
    };
}

pub(super) async fn claim_due(
    s: &SqlStore,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Subscription>> {
    let rows = claim_each(
        s,
        (
            concat!(
                "SELECT id FROM subscriptions WHERE ",
                subscriptions_due!(),
                " AND CAST($3 AS TEXT) IS NULL ORDER BY next_charge_at, id LIMIT $2"
            ),
            concat!(
                "UPDATE subscriptions SET lease_until = $2 WHERE id = $3 AND ",
                subscriptions_due!()
            ),
            SELECT_BY_ID,
        ),
        now,
        lease_until,
        limit,
        None,
    )
    .await?;
    rows.iter().map(subscription_from_row).collect()
}

/// The order charging `period`, created with its link when there is none:
/// a period has one order whatever the number of passes that try.
pub(super) async fn charge_order(
    s: &SqlStore,
    subscription_id: &str,
    period: i64,
    order: NewOrder,
) -> Result<Order> {
    if let Some(o) = period_order(s, subscription_id, period).await? {
        return Ok(o);
    }
    let mut tx = s.begin_write().await?;
    let inserted = async {
        insert_order(&mut tx, &order).await?;
        sqlx::query(
            "INSERT INTO subscription_charges (subscription_id, period, order_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(subscription_id)
        .bind(period)
        .bind(&order.id)
        .bind(order.created_at)
        .execute(&mut *tx)
        .await?;
        Ok::<(), StoreError>(())
    }
    .await;
    match inserted {
        Ok(()) => {
            tx.commit().await?;
            get_order(s, &order.id)
                .await?
                .ok_or(StoreError::NotFound("order"))
        }
        Err(StoreError::Database(e)) if StoreError::is_unique_violation(&e) => {
            // Another pass created the period's order first.
            drop(tx);
            period_order(s, subscription_id, period)
                .await?
                .ok_or(StoreError::Conflict("out_trade_no"))
        }
        Err(e) => Err(e),
    }
}

async fn period_order(s: &SqlStore, subscription_id: &str, period: i64) -> Result<Option<Order>> {
    sqlx::query(concat!(
        "SELECT ",
        order_cols!(),
        " FROM orders WHERE id = (SELECT order_id FROM subscription_charges \
         WHERE subscription_id = $1 AND period = $2)"
    ))
    .bind(subscription_id)
    .bind(period)
    .fetch_optional(&s.pool)
    .await?
    .as_ref()
    .map(order_from_row)
    .transpose()
}

/// Records how `period`'s charge ended, once: the update requires the
/// subscription to still be at that period, so a second report of the
/// same period (a rerun, a concurrent pass) changes nothing.
pub(super) async fn record_charge(
    s: &SqlStore,
    id: &str,
    period: i64,
    result: &ChargeResult,
    at: i64,
) -> Result<Option<Subscription>> {
    let mut tx = s.begin_write().await?;
    let (changed, event, order_id) = match result {
        ChargeResult::Paid {
            order_id,
            next_charge_at,
        } => {
            let n = sqlx::query(
                // A subscription canceled while its charge was in flight
                // still counts the money Alipay took (and says so with its
                // event); it stays canceled. MySQL assigns left to right:
                // `next_charge_at` reads `status` before it is assigned.
                "UPDATE subscriptions SET periods_charged = periods_charged + 1, \
                 next_period = next_period + 1, failed_attempts = 0, lease_until = NULL, \
                 next_charge_at = CASE WHEN status = 'canceled' THEN NULL ELSE $3 END, \
                 updated_at = $4, \
                 status = CASE WHEN status = 'canceled' THEN 'canceled' \
                 WHEN CAST($3 AS BIGINT) IS NULL THEN 'completed' ELSE 'active' END \
                 WHERE id = $1 AND next_period = $2 \
                 AND status IN ('active', 'past_due', 'canceled')",
            )
            .bind(id)
            .bind(period)
            .bind(*next_charge_at)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            (n, SubscriptionEventType::Charged, order_id)
        }
        ChargeResult::Failed {
            order_id,
            retry_at,
            reason,
        } => {
            let n = sqlx::query(
                "UPDATE subscriptions SET failed_attempts = failed_attempts + 1, \
                 lease_until = NULL, next_charge_at = $3, updated_at = $4, \
                 status = CASE WHEN CAST($3 AS BIGINT) IS NULL THEN 'past_due' ELSE status END \
                 WHERE id = $1 AND next_period = $2 AND status = 'active'",
            )
            .bind(id)
            .bind(period)
            .bind(*retry_at)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tracing::debug!(subscription = id, period, reason = %reason, "charge failed");
            (n, SubscriptionEventType::PaymentFailed, order_id)
        }
    };
    if let (1, ChargeResult::Failed { retry_at, .. }) = (changed, result) {
        // A refused deduction left no trade at Alipay: the reconcile pass
        // need not ask about the period's order before its retry (or, once
        // past due, before it expires and is closed).
        sqlx::query(
            "UPDATE orders SET reconcile_after = COALESCE(CAST($2 AS BIGINT), expires_at) \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(order_id)
        .bind(*retry_at)
        .execute(&mut *tx)
        .await?;
    }
    finish_change(tx, changed, id, (event, Some(order_id), Some(period)), at).await
}

/// Gives a claimed subscription back without a result (the outcome is
/// not known yet: ask again at `retry_at`).
pub(super) async fn release(s: &SqlStore, id: &str, retry_at: i64) -> Result<()> {
    sqlx::query("UPDATE subscriptions SET lease_until = $2 WHERE id = $1")
        .bind(id)
        .bind(retry_at)
        .execute(s.writer())
        .await?;
    Ok(())
}

/// `order_cols!()` with every column taken from `o.`.
macro_rules! order_cols_prefixed {
    () => {
        "o.id, o.out_trade_no, o.subject, o.body, o.total_fen, o.refunded_fen, \
         o.refund_pending_fen, o.status, o.trade_no, o.buyer_logon_id, o.buyer_id, o.channel, \
         o.metadata, o.idempotency_key, o.request_hash, o.created_at, o.updated_at, \
         o.expires_at, o.paid_at, o.closed_at, o.paid_after_close"
    };
}

pub(super) async fn charges(s: &SqlStore, id: &str) -> Result<Vec<(i64, Order)>> {
    let rows = sqlx::query(concat!(
        "SELECT c.period AS charge_period, ",
        order_cols_prefixed!(),
        " FROM subscription_charges c JOIN orders o ON o.id = c.order_id \
         WHERE c.subscription_id = $1 ORDER BY c.period DESC"
    ))
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("charge_period")?, order_from_row(r)?)))
        .collect()
}

pub(super) async fn subscription_of_order(
    s: &SqlStore,
    order_id: &str,
) -> Result<Option<(String, i64)>> {
    let row =
        sqlx::query("SELECT subscription_id, period FROM subscription_charges WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&s.pool)
            .await?;
    row.map(|r| Ok((r.try_get("subscription_id")?, r.try_get("period")?)))
        .transpose()
}

pub(super) async fn count_by_status(s: &SqlStore) -> Result<Vec<(SubscriptionStatus, i64)>> {
    let rows = sqlx::query(
        "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM subscriptions GROUP BY status",
    )
    .fetch_all(&s.pool)
    .await?;
    let mut out: Vec<(SubscriptionStatus, i64)> = SubscriptionStatus::ALL
        .into_iter()
        .map(|s| (s, 0))
        .collect();
    for r in rows {
        let status: String = r.try_get("status")?;
        let n: i64 = r.try_get("n")?;
        let st =
            SubscriptionStatus::parse(&status).ok_or(StoreError::Corrupt { column: "status" })?;
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == st) {
            slot.1 = n;
        }
    }
    Ok(out)
}
