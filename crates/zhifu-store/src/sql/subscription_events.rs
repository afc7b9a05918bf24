//! `subscription_events`: the record of each subscription change, which is
//! also its webhook outbox (written with the change, claimed for delivery,
//! finished per attempt), like `order_events` for orders.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::leases::claim_each;
use super::{SqlStore, Tx, new_id};
use crate::Result;
use crate::error::StoreError;
use crate::model::{DeliveryNext, SubscriptionEvent, SubscriptionEventType, WebhookState};

macro_rules! sub_event_cols {
    () => {
        "id, subscription_id, type, order_id, period, created_at, webhook_state, attempts, \
         next_attempt_at, delivered_at, last_error"
    };
}

fn event_from_row(r: &AnyRow) -> Result<SubscriptionEvent> {
    let kind: String = r.try_get("type")?;
    let state: String = r.try_get("webhook_state")?;
    Ok(SubscriptionEvent {
        id: r.try_get("id")?,
        subscription_id: r.try_get("subscription_id")?,
        event_type: SubscriptionEventType::parse(&kind)
            .ok_or(StoreError::Corrupt { column: "type" })?,
        order_id: r.try_get("order_id")?,
        period: r.try_get("period")?,
        created_at: r.try_get("created_at")?,
        webhook_state: WebhookState::parse(&state).ok_or(StoreError::Corrupt {
            column: "webhook_state",
        })?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        delivered_at: r.try_get("delivered_at")?,
        last_error: r.try_get("last_error")?,
    })
}

pub(super) async fn insert_event(
    tx: &mut Tx,
    subscription_id: &str,
    kind: SubscriptionEventType,
    order_id: Option<&str>,
    period: Option<i64>,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO subscription_events (id, subscription_id, type, order_id, period, \
         created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(new_id("evt"))
    .bind(subscription_id)
    .bind(kind.as_str())
    .bind(order_id)
    .bind(period)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn events(s: &SqlStore, id: &str) -> Result<Vec<SubscriptionEvent>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        sub_event_cols!(),
        " FROM subscription_events WHERE subscription_id = $1 ORDER BY created_at, id"
    ))
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(event_from_row).collect()
}

pub(super) async fn recent_events(s: &SqlStore, limit: i64) -> Result<Vec<SubscriptionEvent>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        sub_event_cols!(),
        " FROM subscription_events ORDER BY created_at DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(event_from_row).collect()
}

/// Pending subscription events whose attempt is due (`$1` now).
macro_rules! sub_events_due {
    () => {
        "webhook_state = 'pending' AND next_attempt_at <= $1"
    };
}

pub(super) async fn claim_due_events(
    s: &SqlStore,
    now: i64,
    lease_until: i64,
    limit: i64,
    subscription_id: Option<&str>,
) -> Result<Vec<SubscriptionEvent>> {
    let rows = claim_each(
        s,
        (
            concat!(
                "SELECT id FROM subscription_events WHERE ",
                sub_events_due!(),
                " AND (CAST($3 AS TEXT) IS NULL OR subscription_id = $3) \
                 ORDER BY next_attempt_at, id LIMIT $2"
            ),
            concat!(
                "UPDATE subscription_events SET next_attempt_at = $2 WHERE id = $3 AND ",
                sub_events_due!()
            ),
            concat!(
                "SELECT ",
                sub_event_cols!(),
                " FROM subscription_events WHERE id = $1"
            ),
        ),
        now,
        lease_until,
        limit,
        subscription_id,
    )
    .await?;
    rows.iter().map(event_from_row).collect()
}

/// Takes one event for an operator's resend, whatever its state: a
/// delivered or failed one is re-armed with a fresh retry budget. MySQL
/// assigns left to right: `attempts` reads `webhook_state` before it is
/// assigned, as on the other backends.
pub(super) async fn claim_event_for_resend(
    s: &SqlStore,
    event_id: &str,
    lease_until: i64,
) -> Result<Option<SubscriptionEvent>> {
    let mut tx = s.begin_write().await?;
    let taken = sqlx::query(
        "UPDATE subscription_events SET next_attempt_at = $2, \
         attempts = CASE WHEN webhook_state = 'pending' THEN attempts ELSE 0 END, \
         webhook_state = 'pending' WHERE id = $1",
    )
    .bind(event_id)
    .bind(lease_until)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let row = if taken == 1 {
        sqlx::query(concat!(
            "SELECT ",
            sub_event_cols!(),
            " FROM subscription_events WHERE id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await?
    } else {
        None
    };
    tx.commit().await?;
    row.as_ref().map(event_from_row).transpose()
}

pub(super) async fn finish_event_delivery(
    s: &SqlStore,
    event_id: &str,
    at: i64,
    error: Option<&str>,
    next: DeliveryNext,
) -> Result<()> {
    let (state, next_at, delivered_at) = match next {
        DeliveryNext::Delivered => (WebhookState::Delivered, None, Some(at)),
        DeliveryNext::RetryAt(t) => (WebhookState::Pending, Some(t), None),
        DeliveryNext::GiveUp => (WebhookState::Failed, None, None),
    };
    sqlx::query(
        "UPDATE subscription_events SET attempts = attempts + 1, webhook_state = $2, \
         next_attempt_at = $3, delivered_at = COALESCE($4, delivered_at), last_error = $5 \
         WHERE id = $1",
    )
    .bind(event_id)
    .bind(state.as_str())
    .bind(next_at)
    .bind(delivered_at)
    .bind(error)
    .execute(s.writer())
    .await?;
    Ok(())
}
