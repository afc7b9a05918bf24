//! `order_events`, which is both the audit trail of state changes and the
//! webhook outbox: writing an event with its change, reading events, and
//! recording each delivery attempt with what happens next. Taking an event
//! for delivery is a claim, in `leases`.

use sqlx::Row;

use super::rows::{attempt_from_row, event_cols, event_from_row};
use super::{SqlStore, Tx, new_id};
use crate::Result;
use crate::error::StoreError;
use crate::model::{
    DeliveryAttempt, DeliveryNext, EventQuery, EventType, NewDeliveryAttempt, OrderEvent,
    OrderStatus, TradeUpdate, WebhookState,
};

/// Writes the event of a change in the change's transaction, due for
/// delivery at once: the outbox row exists if and only if the change does.
pub(super) async fn insert_event(
    tx: &mut Tx,
    order_id: &str,
    event: EventType,
    from: OrderStatus,
    to: OrderStatus,
    refunded_fen: i64,
    update: &TradeUpdate,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO order_events (id, order_id, type, from_status, to_status, refunded_fen, \
         source, notify_id, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(new_id("evt"))
    .bind(order_id)
    .bind(event.as_str())
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(refunded_fen)
    .bind(update.source.as_str())
    .bind(update.notify_id.as_deref())
    .bind(update.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn list_events(s: &SqlStore, order_id: &str) -> Result<Vec<OrderEvent>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        event_cols!(),
        " FROM order_events WHERE order_id = $1 ORDER BY created_at, id"
    ))
    .bind(order_id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(event_from_row).collect()
}

/// Records an attempt's outcome on its event. MySQL assigns `SET` items
/// left to right, each seeing the ones before: nothing here reads a column
/// assigned earlier in the list.
macro_rules! finish_delivery_update {
    () => {
        "UPDATE order_events SET attempts = attempts + 1, webhook_state = $2, \
         next_attempt_at = $3, delivered_at = COALESCE($4, delivered_at), \
         last_error = CASE WHEN $2 = 'delivered' THEN NULL ELSE $5 END \
         WHERE id = $1"
    };
}

pub(super) async fn finish_delivery(
    s: &SqlStore,
    event_id: &str,
    a: &NewDeliveryAttempt,
    next: DeliveryNext,
) -> Result<OrderEvent> {
    let (state, next_at, delivered_at) = match next {
        DeliveryNext::Delivered => (WebhookState::Delivered, None, Some(a.at)),
        DeliveryNext::RetryAt(t) => (WebhookState::Pending, Some(t), None),
        DeliveryNext::GiveUp => (WebhookState::Failed, None, None),
    };
    let mut tx = s.begin_write().await?;
    let query = sqlx::query(if tx.has_returning() {
        concat!(finish_delivery_update!(), " RETURNING ", event_cols!())
    } else {
        finish_delivery_update!()
    })
    .bind(event_id)
    .bind(state.as_str())
    .bind(next_at)
    .bind(delivered_at)
    .bind(a.error.as_deref());
    let row = if tx.has_returning() {
        query.fetch_optional(&mut *tx).await?
    } else {
        // MySQL: no `RETURNING`; the row is ours until commit.
        query.execute(&mut *tx).await?;
        sqlx::query(concat!(
            "SELECT ",
            event_cols!(),
            " FROM order_events WHERE id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await?
    };
    let event = event_from_row(&row.ok_or(StoreError::NotFound("event"))?)?;
    sqlx::query(
        "INSERT INTO webhook_attempts (id, event_id, attempt, at, http_status, error, \
         duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id("wha"))
    .bind(event_id)
    .bind(event.attempts)
    .bind(a.at)
    .bind(a.http_status)
    .bind(a.error.as_deref())
    .bind(a.duration_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(event)
}

pub(super) async fn get_event(s: &SqlStore, event_id: &str) -> Result<Option<OrderEvent>> {
    sqlx::query(concat!(
        "SELECT ",
        event_cols!(),
        " FROM order_events WHERE id = $1"
    ))
    .bind(event_id)
    .fetch_optional(&s.pool)
    .await?
    .as_ref()
    .map(event_from_row)
    .transpose()
}

pub(super) async fn query_events(s: &SqlStore, q: &EventQuery) -> Result<Vec<OrderEvent>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        event_cols!(),
        " FROM order_events WHERE (CAST($1 AS TEXT) IS NULL OR webhook_state = $1) \
         AND (CAST($2 AS TEXT) IS NULL OR order_id = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(q.webhook_state.map(WebhookState::as_str))
    .bind(q.order_id.as_deref())
    .bind(q.limit)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(event_from_row).collect()
}

pub(super) async fn count_events_by_state(s: &SqlStore) -> Result<Vec<(WebhookState, i64)>> {
    let rows = sqlx::query(
        "SELECT webhook_state, CAST(COUNT(*) AS BIGINT) AS n FROM order_events \
         GROUP BY webhook_state",
    )
    .fetch_all(&s.pool)
    .await?;
    let mut out: Vec<(WebhookState, i64)> = [
        WebhookState::Pending,
        WebhookState::Delivered,
        WebhookState::Failed,
    ]
    .into_iter()
    .map(|s| (s, 0))
    .collect();
    for r in rows {
        let s: String = r.try_get("webhook_state")?;
        let n: i64 = r.try_get("n")?;
        let st = WebhookState::parse(&s).ok_or(StoreError::Corrupt {
            column: "webhook_state",
        })?;
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == st) {
            slot.1 = n;
        }
    }
    Ok(out)
}

pub(super) async fn list_delivery_attempts(
    s: &SqlStore,
    event_id: &str,
) -> Result<Vec<DeliveryAttempt>> {
    let rows = sqlx::query(
        "SELECT id, event_id, attempt, at, http_status, error, duration_ms \
         FROM webhook_attempts WHERE event_id = $1 ORDER BY at, attempt, id",
    )
    .bind(event_id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(attempt_from_row).collect()
}
