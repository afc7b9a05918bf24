//! Orders outside the state machine: creating, reading, listing and
//! counting them, and recording which channel a payment attempt used.
//! Payment state itself only changes in `apply`.

use sqlx::Row;

use super::rows::{order_cols, order_from_row};
use super::{SqlStore, Tx};
use crate::Result;
use crate::error::StoreError;
use crate::model::{CreateOrderOutcome, NewOrder, Order, OrderQuery, OrderStatus};

const SELECT_ORDER_BY_ID: &str = concat!("SELECT ", order_cols!(), " FROM orders WHERE id = $1");

/// The order as `tx` sees it: decisions are taken on what the transaction
/// will write against, never on an earlier read.
pub(super) async fn fetch_order(tx: &mut Tx, id: &str) -> Result<Order> {
    let row = sqlx::query(SELECT_ORDER_BY_ID)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("order"))?;
    order_from_row(&row)
}

const INSERT_ORDER: &str = concat!(
    "INSERT INTO orders (",
    order_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, 0, 0, 'pending', NULL, NULL, NULL, NULL, $6, $7, $8, \
     $9, $9, $10, NULL, NULL, 0)"
);

/// The insert of a pending order, bound: written once for both callers.
fn insert_order_query(o: &NewOrder) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(INSERT_ORDER)
        .bind(&o.id)
        .bind(&o.out_trade_no)
        .bind(&o.subject)
        .bind(o.body.as_deref())
        .bind(o.total_fen)
        .bind(o.metadata.as_deref())
        .bind(o.idempotency_key.as_deref())
        .bind(o.request_hash.as_deref())
        .bind(o.created_at)
        .bind(o.expires_at)
}

/// Inserts a pending order inside `tx` (a subscription's charge, written
/// with its link to the period).
pub(super) async fn insert_order(tx: &mut Tx, o: &NewOrder) -> Result<()> {
    insert_order_query(o).execute(&mut **tx).await?;
    Ok(())
}

pub(super) async fn create_order(s: &SqlStore, o: NewOrder) -> Result<CreateOrderOutcome> {
    let inserted = insert_order_query(&o).execute(s.writer()).await;
    match inserted {
        Ok(_) => {
            let order = get_order(s, &o.id)
                .await?
                .ok_or(StoreError::NotFound("order"))?;
            Ok(CreateOrderOutcome::Created(order))
        }
        Err(e) if StoreError::is_unique_violation(&e) => {
            // Which constraint is not portable across drivers: look for
            // the idempotency key first, the only benign cause.
            if let Some(key) = &o.idempotency_key {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    order_cols!(),
                    " FROM orders WHERE idempotency_key = $1"
                ))
                .bind(key)
                .fetch_optional(&s.pool)
                .await?;
                if let Some(row) = row {
                    return Ok(CreateOrderOutcome::Existing(order_from_row(&row)?));
                }
            }
            let taken = sqlx::query("SELECT id FROM orders WHERE out_trade_no = $1")
                .bind(&o.out_trade_no)
                .fetch_optional(&s.pool)
                .await?;
            if taken.is_some() {
                Err(StoreError::Conflict("out_trade_no"))
            } else {
                Err(StoreError::Conflict("id"))
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get_order(s: &SqlStore, id: &str) -> Result<Option<Order>> {
    sqlx::query(SELECT_ORDER_BY_ID)
        .bind(id)
        .fetch_optional(&s.pool)
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
}

pub(super) async fn get_order_by_out_trade_no(
    s: &SqlStore,
    out_trade_no: &str,
) -> Result<Option<Order>> {
    sqlx::query(concat!(
        "SELECT ",
        order_cols!(),
        " FROM orders WHERE out_trade_no = $1"
    ))
    .bind(out_trade_no)
    .fetch_optional(&s.pool)
    .await?
    .as_ref()
    .map(order_from_row)
    .transpose()
}

pub(super) async fn list_orders(s: &SqlStore, q: &OrderQuery) -> Result<Vec<Order>> {
    let (after_at, after_id) = match &q.after {
        Some((at, id)) => (Some(*at), Some(id.as_str())),
        None => (None, None),
    };
    let rows = sqlx::query(concat!(
        "SELECT ",
        order_cols!(),
        " FROM orders WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
         AND (CAST($2 AS BIGINT) IS NULL OR created_at < $2 OR (created_at = $2 AND id < $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(q.status.map(OrderStatus::as_str))
    .bind(after_at)
    .bind(after_id)
    .bind(q.limit)
    .fetch_all(&s.pool)
    .await?;
    rows.iter().map(order_from_row).collect()
}

pub(super) async fn record_payment_attempt(
    s: &SqlStore,
    order_id: &str,
    channel: &str,
    trade_no: Option<&str>,
    at: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE orders SET channel = $2, trade_no = COALESCE(trade_no, $3), updated_at = $4 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(order_id)
    .bind(channel)
    .bind(trade_no)
    .bind(at)
    .execute(s.writer())
    .await?
    .rows_affected();
    Ok(done == 1)
}

pub(super) async fn begin_closing(s: &SqlStore, order_id: &str, at: i64) -> Result<Order> {
    let mut tx = s.begin_write().await?;
    sqlx::query(
        "UPDATE orders SET status = 'closing', closed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(order_id)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let order = fetch_order(&mut tx, order_id).await?;
    tx.commit().await?;
    Ok(order)
}

pub(super) async fn count_orders_by_status(s: &SqlStore) -> Result<Vec<(OrderStatus, i64)>> {
    let rows =
        sqlx::query("SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM orders GROUP BY status")
            .fetch_all(&s.pool)
            .await?;
    let mut out: Vec<(OrderStatus, i64)> = OrderStatus::ALL.into_iter().map(|s| (s, 0)).collect();
    for r in rows {
        let s: String = r.try_get("status")?;
        let n: i64 = r.try_get("n")?;
        let st = OrderStatus::parse(&s).ok_or(StoreError::Corrupt { column: "status" })?;
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == st) {
            slot.1 = n;
        }
    }
    Ok(out)
}
