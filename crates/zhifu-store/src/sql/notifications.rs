//! The audit trail of messages: every report that reached the state
//! machine, with its outcome, and every one refused before it could.

use super::rows::{notification_cols, notification_from_row};
use super::{SqlStore, Tx};
use crate::Result;
use crate::model::{AnomalyReason, NewNotification, NotificationRecord, Outcome};

/// Records a message with its outcome in the caller's transaction, so that
/// a message is recorded exactly when what it caused commits.
pub(super) async fn insert_notification(
    tx: &mut Tx,
    rec: &NewNotification,
    order_id: Option<&str>,
    outcome: &Outcome,
) -> Result<()> {
    let reason = match outcome {
        Outcome::Anomaly(r) if rec.anomaly.is_empty() => Some(r.as_str().to_owned()),
        Outcome::Anomaly(_) => Some(AnomalyReason::join(&rec.anomaly)),
        _ => None,
    };
    sqlx::query(concat!(
        "INSERT INTO notifications (",
        notification_cols!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    ))
    .bind(&rec.id)
    .bind(order_id)
    .bind(rec.out_trade_no.as_deref())
    .bind(rec.notify_id.as_deref())
    .bind(rec.source.as_str())
    .bind(rec.trade_status.as_deref())
    .bind(outcome.as_str())
    .bind(reason)
    .bind(rec.payload.as_deref())
    .bind(rec.received_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn record_notification(s: &SqlStore, record: &NewNotification) -> Result<()> {
    let mut tx = s.begin_write().await?;
    // A refused message always says why; one recorded without a reason is
    // one nobody could read.
    let first = record
        .anomaly
        .first()
        .copied()
        .unwrap_or(AnomalyReason::Malformed);
    let outcome = Outcome::Anomaly(first);
    insert_notification(&mut tx, record, record.order_id.as_deref(), &outcome).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn list_notifications(
    s: &SqlStore,
    order_id: &str,
) -> Result<Vec<NotificationRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        notification_cols!(),
        " FROM notifications WHERE order_id = $1 ORDER BY received_at, id"
    ))
    .bind(order_id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(notification_from_row).collect()
}

pub(super) async fn list_orphan_notifications(
    s: &SqlStore,
    limit: i64,
) -> Result<Vec<NotificationRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        notification_cols!(),
        " FROM notifications WHERE order_id IS NULL ORDER BY received_at DESC, id DESC \
         LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(notification_from_row).collect()
}

pub(super) async fn refusal_seen(s: &SqlStore, notify_id: &str, reason: &str) -> Result<bool> {
    Ok(sqlx::query(
        "SELECT 1 AS one FROM notifications WHERE notify_id = $1 AND outcome = 'anomaly' \
         AND reason = $2 LIMIT 1",
    )
    .bind(notify_id)
    .bind(reason)
    .fetch_optional(&s.pool)
    .await?
    .is_some())
}

pub(super) async fn prune_refused(s: &SqlStore, before: i64, keep: i64) -> Result<u64> {
    let mut tx = s.begin_write().await?;
    let old = sqlx::query(
        "DELETE FROM notifications WHERE order_id IS NULL AND outcome = 'anomaly' \
         AND received_at < $1",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // The rows kept are picked in a derived table (`AS kept`): MySQL refuses
    // `LIMIT` inside `IN (…)`, and a sub-select of the table a `DELETE`
    // deletes from, unless it is materialised first. All three backends
    // accept this form.
    let over = sqlx::query(
        "DELETE FROM notifications WHERE order_id IS NULL AND outcome = 'anomaly' \
         AND id NOT IN (SELECT id FROM (SELECT id FROM notifications WHERE order_id IS NULL \
         AND outcome = 'anomaly' ORDER BY received_at DESC, id DESC LIMIT $1) AS kept)",
    )
    .bind(keep)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(old + over)
}
