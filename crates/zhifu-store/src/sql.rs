//! [`SqlStore`]: the [`Store`] on sqlx's `Any` driver, so SQLite and
//! PostgreSQL share every statement; only connection set-up, transaction
//! start and migrations differ per backend.
//!
//! All SQL uses `$N` placeholders (both drivers accept them), `TEXT` and
//! `BIGINT` columns, `RETURNING` and `CAST(… AS …)`, which both dialects
//! understand identically.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::Result;
use crate::Store;
use crate::error::StoreError;
use crate::model::*;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a [`SqlStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file or in-memory): one instance only.
    Sqlite,
    /// PostgreSQL: any number of instances.
    Postgres,
}

impl Backend {
    /// The backend a URL names.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`].
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// Pool settings. Defaults are small: serverless instances are many and short-lived.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (SQLite in-memory databases always use 1).
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The sqlx implementation of [`Store`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

macro_rules! order_cols {
    () => {
        "id, out_trade_no, subject, body, total_fen, refunded_fen, refund_pending_fen, status, \
         trade_no, buyer_logon_id, buyer_id, channel, metadata, idempotency_key, request_hash, \
         created_at, updated_at, expires_at, paid_at, closed_at"
    };
}

macro_rules! refund_cols {
    () => {
        "id, order_id, out_request_no, amount_fen, reason, status, failure_code, \
         idempotency_key, request_hash, created_at, updated_at"
    };
}

macro_rules! notification_cols {
    () => {
        "id, order_id, out_trade_no, notify_id, source, trade_status, outcome, reason, payload, \
         received_at"
    };
}

macro_rules! event_cols {
    () => {
        "id, order_id, type, from_status, to_status, refunded_fen, source, notify_id, created_at, \
         webhook_state, attempts, next_attempt_at, delivered_at, last_error"
    };
}

/// Builds a claim statement for both backends: PostgreSQL skips rows another
/// pass has locked (`FOR UPDATE SKIP LOCKED`); SQLite needs nothing more,
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
                " LIMIT $4 FOR UPDATE SKIP LOCKED) AND ",
                $due,
                " RETURNING ",
                $cols
            ),
        )
    };
}

/// Pending orders old enough (or past their deadline) whose lease is free.
/// `$1` now, `$2` created before, `$3` lease until, `$4` limit.
const CLAIM_ORDERS: (&str, &str) = claim_sql!(
    "orders",
    order_cols!(),
    "reconcile_after = $3",
    "status = 'pending' AND (created_at <= $2 OR expires_at <= $1) \
     AND (reconcile_after IS NULL OR reconcile_after <= $1)",
    "created_at, id"
);

/// Pending refunds old enough whose lease is free (same parameters).
const CLAIM_REFUNDS: (&str, &str) = claim_sql!(
    "refunds",
    refund_cols!(),
    "reconcile_after = $3",
    "status = 'pending' AND created_at <= $2 \
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
        "UPDATE order_events SET next_attempt_at = $2 WHERE id IN (SELECT id FROM order_events \
         WHERE webhook_state = 'pending' AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         AND webhook_state = 'pending' AND next_attempt_at <= $1 RETURNING ",
        event_cols!()
    ),
);

const SELECT_ORDER_BY_ID: &str = concat!("SELECT ", order_cols!(), " FROM orders WHERE id = $1");

impl SqlStore {
    /// Connects to `sqlite:…` (a file, created if missing, or `sqlite::memory:`)
    /// or `postgres://…`. Does not run migrations: see [`SqlStore::migrate`].
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`], [`StoreError::Database`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout);
        let url = match backend {
            Backend::Postgres => url.to_owned(),
            Backend::Sqlite => {
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                if memory {
                    // Every connection to `:memory:` is its own database: keep
                    // exactly one, forever.
                    pool_options = pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                pool_options = pool_options.after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 15000")
                            .execute(&mut *conn)
                            .await?;
                        if !memory {
                            sqlx::query("PRAGMA journal_mode = WAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(&mut *conn)
                                .await?;
                        }
                        Ok(())
                    })
                });
                if memory || url.contains("mode=") {
                    url.to_owned()
                } else {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    format!("{url}{sep}mode=rwc")
                }
            }
        };
        let connect = AnyConnectOptions::from_str(&url).map_err(StoreError::Database)?;
        let pool = pool_options.connect_with(connect).await?;
        Ok(SqlStore { pool, backend })
    }

    /// Connects and runs the migrations: what `zhifu dev` and tests want.
    ///
    /// # Errors
    /// As [`SqlStore::connect`] and [`SqlStore::migrate`].
    pub async fn connect_and_migrate(url: &str, options: &StoreOptions) -> Result<Self> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the backend's pending migrations. Safe to run from several
    /// processes at once (PostgreSQL takes an advisory lock).
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for queries a later module needs before the trait grows.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn pick(&self, sql: (&'static str, &'static str)) -> &'static str {
        match self.backend {
            Backend::Sqlite => sql.0,
            Backend::Postgres => sql.1,
        }
    }

    /// A transaction that will write. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// fails with `SQLITE_BUSY` instead of waiting when another writer got in
    /// between. PostgreSQL relies on the conditional updates.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

fn order_from_row(r: &AnyRow) -> Result<Order> {
    let status: String = r.try_get("status")?;
    Ok(Order {
        id: r.try_get("id")?,
        out_trade_no: r.try_get("out_trade_no")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        total_fen: r.try_get("total_fen")?,
        refunded_fen: r.try_get("refunded_fen")?,
        refund_pending_fen: r.try_get("refund_pending_fen")?,
        status: OrderStatus::parse(&status).ok_or(StoreError::Corrupt { column: "status" })?,
        trade_no: r.try_get("trade_no")?,
        buyer_logon_id: r.try_get("buyer_logon_id")?,
        buyer_id: r.try_get("buyer_id")?,
        channel: r.try_get("channel")?,
        metadata: r.try_get("metadata")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_hash: r.try_get("request_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        expires_at: r.try_get("expires_at")?,
        paid_at: r.try_get("paid_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

fn refund_from_row(r: &AnyRow) -> Result<Refund> {
    let status: String = r.try_get("status")?;
    Ok(Refund {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        out_request_no: r.try_get("out_request_no")?,
        amount_fen: r.try_get("amount_fen")?,
        reason: r.try_get("reason")?,
        status: RefundStatus::parse(&status).ok_or(StoreError::Corrupt { column: "status" })?,
        failure_code: r.try_get("failure_code")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_hash: r.try_get("request_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn notification_from_row(r: &AnyRow) -> Result<NotificationRecord> {
    Ok(NotificationRecord {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        out_trade_no: r.try_get("out_trade_no")?,
        notify_id: r.try_get("notify_id")?,
        source: r.try_get("source")?,
        trade_status: r.try_get("trade_status")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        payload: r.try_get("payload")?,
        received_at: r.try_get("received_at")?,
    })
}

fn event_from_row(r: &AnyRow) -> Result<OrderEvent> {
    let t: String = r.try_get("type")?;
    let from: String = r.try_get("from_status")?;
    let to: String = r.try_get("to_status")?;
    let state: String = r.try_get("webhook_state")?;
    Ok(OrderEvent {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        event_type: EventType::parse(&t).ok_or(StoreError::Corrupt { column: "type" })?,
        from_status: OrderStatus::parse(&from).ok_or(StoreError::Corrupt {
            column: "from_status",
        })?,
        to_status: OrderStatus::parse(&to).ok_or(StoreError::Corrupt {
            column: "to_status",
        })?,
        refunded_fen: r.try_get("refunded_fen")?,
        source: r.try_get("source")?,
        notify_id: r.try_get("notify_id")?,
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

fn attempt_from_row(r: &AnyRow) -> Result<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        attempt: r.try_get("attempt")?,
        at: r.try_get("at")?,
        http_status: r.try_get("http_status")?,
        error: r.try_get("error")?,
        duration_ms: r.try_get("duration_ms")?,
    })
}

/// A new random id with a type prefix. UUIDv7 keeps ids roughly time-ordered.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

async fn fetch_order(tx: &mut Transaction<'static, Any>, id: &str) -> Result<Order> {
    let row = sqlx::query(SELECT_ORDER_BY_ID)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound("order"))?;
    order_from_row(&row)
}

async fn insert_notification(
    tx: &mut Transaction<'static, Any>,
    rec: &NewNotification,
    order_id: Option<&str>,
    outcome: &Outcome,
) -> Result<()> {
    let reason = match outcome {
        Outcome::Anomaly(r) => Some(r.as_str()),
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

async fn insert_event(
    tx: &mut Transaction<'static, Any>,
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

/// The next step the state machine takes for an update, given the order as
/// it is now.
enum Step {
    MarkPaid,
    MarkClosed,
    Refund { fee: i64 },
    Done,
    Anomaly(AnomalyReason),
}

fn decide(order: &Order, u: &TradeUpdate) -> Step {
    if let (Some(known), Some(got)) = (&order.trade_no, &u.trade_no)
        && known != got
    {
        return Step::Anomaly(AnomalyReason::TradeNoMismatch);
    }
    let fee = u.refund_fee.filter(|f| *f > 0);
    if let Some(f) = fee
        && f > order.total_fen
    {
        return Step::Anomaly(AnomalyReason::RefundExceedsTotal);
    }
    match order.status {
        OrderStatus::Pending => match u.trade_state {
            _ if u.reports_payment() => Step::MarkPaid,
            // A closed trade that carries refunds was paid first; the paid
            // step comes before the refund step.
            TradeState::Closed if fee.is_some() => Step::MarkPaid,
            TradeState::Closed => Step::MarkClosed,
            _ => Step::Done,
        },
        OrderStatus::Paid => match (u.trade_state, fee) {
            (_, Some(f)) if f > order.refunded_fen => Step::Refund { fee: f },
            (TradeState::Closed, Some(f)) if f < order.total_fen => {
                Step::Anomaly(AnomalyReason::ClosedAfterPaid)
            }
            (TradeState::Closed, None) => Step::Anomaly(AnomalyReason::ClosedAfterPaid),
            _ => Step::Done,
        },
        OrderStatus::Refunded => Step::Done,
        OrderStatus::Closed => {
            if u.reports_payment() || fee.is_some() {
                Step::Anomaly(AnomalyReason::PaidAfterClose)
            } else {
                Step::Done
            }
        }
    }
}

/// Applies `u` inside `tx` with conditional updates. Each loop turn re-reads
/// the order, so a concurrent writer that got there first turns our update
/// into a no-op instead of a double transition.
async fn apply_in_tx(
    tx: &mut Transaction<'static, Any>,
    u: &TradeUpdate,
) -> Result<(Outcome, Vec<EventType>, Order)> {
    let mut events = Vec::new();
    // Each effective step moves the order strictly forward, so a handful of
    // turns always suffices; the bound only guards against a broken database.
    for _ in 0..8 {
        let order = fetch_order(tx, &u.order_id).await?;
        match decide(&order, u) {
            Step::Done => {
                let outcome = if events.is_empty() {
                    Outcome::Duplicate
                } else {
                    Outcome::Applied
                };
                return Ok((outcome, events, order));
            }
            Step::Anomaly(reason) => {
                let outcome = if events.is_empty() {
                    Outcome::Anomaly(reason.as_str().to_owned())
                } else {
                    Outcome::Applied
                };
                return Ok((outcome, events, order));
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
                    let event = if to == OrderStatus::Refunded {
                        EventType::Refunded
                    } else {
                        EventType::PartiallyRefunded
                    };
                    insert_event(tx, &order.id, event, OrderStatus::Paid, to, fee, u).await?;
                    events.push(event);
                }
            }
        }
    }
    let order = fetch_order(tx, &u.order_id).await?;
    Ok((Outcome::Applied, events, order))
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_order(&self, o: NewOrder) -> Result<CreateOrderOutcome> {
        let inserted = sqlx::query(concat!(
            "INSERT INTO orders (",
            order_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, 0, 0, 'pending', NULL, NULL, NULL, NULL, $6, $7, $8, \
             $9, $9, $10, NULL, NULL)"
        ))
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
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {
                let order = self
                    .get_order(&o.id)
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
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(row) = row {
                        return Ok(CreateOrderOutcome::Existing(order_from_row(&row)?));
                    }
                }
                let taken = sqlx::query("SELECT id FROM orders WHERE out_trade_no = $1")
                    .bind(&o.out_trade_no)
                    .fetch_optional(&self.pool)
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

    async fn get_order(&self, id: &str) -> Result<Option<Order>> {
        sqlx::query(SELECT_ORDER_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(order_from_row)
            .transpose()
    }

    async fn get_order_by_out_trade_no(&self, out_trade_no: &str) -> Result<Option<Order>> {
        sqlx::query(concat!(
            "SELECT ",
            order_cols!(),
            " FROM orders WHERE out_trade_no = $1"
        ))
        .bind(out_trade_no)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
    }

    async fn list_orders(&self, q: &OrderQuery) -> Result<Vec<Order>> {
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    async fn record_payment_attempt(
        &self,
        order_id: &str,
        channel: &str,
        trade_no: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE orders SET channel = $2, trade_no = COALESCE(trade_no, $3), updated_at = $4 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(order_id)
        .bind(channel)
        .bind(trade_no)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn apply_trade_update(
        &self,
        update: &TradeUpdate,
        record: &NewNotification,
    ) -> Result<ApplyResult> {
        let mut tx = self.begin_write().await?;
        let (outcome, events, order) = apply_in_tx(&mut tx, update).await?;
        insert_notification(&mut tx, record, Some(&update.order_id), &outcome).await?;
        tx.commit().await?;
        Ok(ApplyResult {
            outcome,
            order,
            events,
        })
    }

    async fn record_notification(&self, record: &NewNotification) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let outcome = Outcome::Anomaly(
            record
                .anomaly
                .clone()
                .unwrap_or_else(|| AnomalyReason::Malformed.as_str().to_owned()),
        );
        insert_notification(&mut tx, record, record.order_id.as_deref(), &outcome).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_notifications(&self, order_id: &str) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_cols!(),
            " FROM notifications WHERE order_id = $1 ORDER BY received_at, id"
        ))
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    async fn list_orphan_notifications(&self, limit: i64) -> Result<Vec<NotificationRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_cols!(),
            " FROM notifications WHERE order_id IS NULL ORDER BY received_at DESC, id DESC \
             LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification_from_row).collect()
    }

    async fn list_events(&self, order_id: &str) -> Result<Vec<OrderEvent>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_cols!(),
            " FROM order_events WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn create_refund(&self, r: NewRefund) -> Result<CreateRefundOutcome> {
        let mut tx = self.begin_write().await?;
        if let Some(existing) = find_refund_by_key(&mut tx, &r).await? {
            return Ok(CreateRefundOutcome::Existing(existing));
        }
        let order = fetch_order(&mut tx, &r.order_id).await?;
        if order.status != OrderStatus::Paid {
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
            let order = fetch_order(&mut tx, &r.order_id).await?;
            if order.status != OrderStatus::Paid {
                return Ok(CreateRefundOutcome::NotPaid(order.status));
            }
            return Ok(CreateRefundOutcome::ExceedsRemaining {
                remaining_fen: (order.total_fen - order.refunded_fen - order.refund_pending_fen)
                    .max(0),
            });
        }
        let inserted = sqlx::query(concat!(
            "INSERT INTO refunds (",
            refund_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, 'pending', NULL, $6, $7, $8, $8)"
        ))
        .bind(&r.id)
        .bind(&r.order_id)
        .bind(&r.out_request_no)
        .bind(r.amount_fen)
        .bind(r.reason.as_deref())
        .bind(r.idempotency_key.as_deref())
        .bind(r.request_hash.as_deref())
        .bind(r.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {
                tx.commit().await?;
                let refund = self
                    .get_refund(&r.id)
                    .await?
                    .ok_or(StoreError::NotFound("refund"))?;
                Ok(CreateRefundOutcome::Created(refund))
            }
            Err(e) if StoreError::is_unique_violation(&e) => {
                // A concurrent request with the same key won; our reservation
                // rolls back with the transaction.
                tx.rollback().await?;
                let mut tx = self.begin_write().await?;
                let existing = find_refund_by_key(&mut tx, &r).await?;
                tx.commit().await?;
                existing
                    .map(CreateRefundOutcome::Existing)
                    .ok_or(StoreError::Conflict("out_request_no"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get_refund(&self, id: &str) -> Result<Option<Refund>> {
        sqlx::query(concat!(
            "SELECT ",
            refund_cols!(),
            " FROM refunds WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(refund_from_row)
        .transpose()
    }

    async fn list_refunds(&self, order_id: &str) -> Result<Vec<Refund>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            refund_cols!(),
            " FROM refunds WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from_row).collect()
    }

    async fn finish_refund(&self, refund_id: &str, result: &RefundResult) -> Result<Refund> {
        let mut tx = self.begin_write().await?;
        let refund = sqlx::query(concat!(
            "SELECT ",
            refund_cols!(),
            " FROM refunds WHERE id = $1"
        ))
        .bind(refund_id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(refund_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound("refund"))?;
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
                        let update = TradeUpdate {
                            order_id: refund.order_id.clone(),
                            source: UpdateSource::Refund,
                            notify_id: None,
                            trade_state: if fee >= order.total_fen {
                                TradeState::Closed
                            } else {
                                TradeState::Success
                            },
                            trade_no: None,
                            buyer_logon_id: None,
                            buyer_id: None,
                            paid_at: None,
                            refund_fee: Some(fee),
                            at,
                        };
                        let (outcome, _, _) = apply_in_tx(&mut tx, &update).await?;
                        insert_notification(&mut tx, record, Some(&refund.order_id), &outcome)
                            .await?;
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
        self.get_refund(refund_id)
            .await?
            .ok_or(StoreError::NotFound("refund"))
    }

    async fn count_orders_by_status(&self) -> Result<Vec<(OrderStatus, i64)>> {
        let rows =
            sqlx::query("SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM orders GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let mut out: Vec<(OrderStatus, i64)> =
            OrderStatus::ALL.into_iter().map(|s| (s, 0)).collect();
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

    async fn claim_reconcile_orders(&self, c: &ReconcileClaim) -> Result<Vec<Order>> {
        let rows = sqlx::query(self.pick(CLAIM_ORDERS))
            .bind(c.now)
            .bind(c.created_before)
            .bind(c.lease_until)
            .bind(c.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(order_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn claim_reconcile_refunds(&self, c: &ReconcileClaim) -> Result<Vec<Refund>> {
        let rows = sqlx::query(self.pick(CLAIM_REFUNDS))
            .bind(c.now)
            .bind(c.created_before)
            .bind(c.lease_until)
            .bind(c.limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(refund_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn claim_due_events(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OrderEvent>> {
        let rows = sqlx::query(self.pick(CLAIM_EVENTS))
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(out)
    }

    async fn claim_event(
        &self,
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
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(event_from_row)
        .transpose()
    }

    async fn finish_delivery(
        &self,
        event_id: &str,
        a: &NewDeliveryAttempt,
        next: DeliveryNext,
    ) -> Result<OrderEvent> {
        let (state, next_at, delivered_at) = match next {
            DeliveryNext::Delivered => (WebhookState::Delivered, None, Some(a.at)),
            DeliveryNext::RetryAt(t) => (WebhookState::Pending, Some(t), None),
            DeliveryNext::GiveUp => (WebhookState::Failed, None, None),
        };
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!(
            "UPDATE order_events SET attempts = attempts + 1, webhook_state = $2, \
             next_attempt_at = $3, delivered_at = COALESCE($4, delivered_at), \
             last_error = CASE WHEN $2 = 'delivered' THEN NULL ELSE $5 END \
             WHERE id = $1 RETURNING ",
            event_cols!()
        ))
        .bind(event_id)
        .bind(state.as_str())
        .bind(next_at)
        .bind(delivered_at)
        .bind(a.error.as_deref())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("event"))?;
        let event = event_from_row(&row)?;
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

    async fn get_event(&self, event_id: &str) -> Result<Option<OrderEvent>> {
        sqlx::query(concat!(
            "SELECT ",
            event_cols!(),
            " FROM order_events WHERE id = $1"
        ))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(event_from_row)
        .transpose()
    }

    async fn query_events(&self, q: &EventQuery) -> Result<Vec<OrderEvent>> {
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
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn count_events_by_state(&self) -> Result<Vec<(WebhookState, i64)>> {
        let rows = sqlx::query(
            "SELECT webhook_state, CAST(COUNT(*) AS BIGINT) AS n FROM order_events \
             GROUP BY webhook_state",
        )
        .fetch_all(&self.pool)
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

    async fn list_delivery_attempts(&self, event_id: &str) -> Result<Vec<DeliveryAttempt>> {
        let rows = sqlx::query(
            "SELECT id, event_id, attempt, at, http_status, error, duration_ms \
             FROM webhook_attempts WHERE event_id = $1 ORDER BY at, attempt, id",
        )
        .bind(event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }
}

async fn find_refund_by_key(
    tx: &mut Transaction<'static, Any>,
    r: &NewRefund,
) -> Result<Option<Refund>> {
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

async fn release_reservation(
    tx: &mut Transaction<'static, Any>,
    refund: &Refund,
    at: i64,
) -> Result<()> {
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
