//! Where the store's statements run: [`StorePool`] (a pool) and [`Tx`] (a
//! transaction), each a sqlx executor for `Any` queries that yields
//! `AnyRow`s, whether the connection underneath is sqlx's `Any` driver or a
//! typed PostgreSQL connection behind a transaction pooler. Every statement
//! is therefore written once, as an `Any` query, and the modules that hold
//! them (`orders`, `refunds`, …) do not know which mode they run in.
//!
//! ## Why a second kind of connection
//!
//! A transaction pooler (PgBouncer `pool_mode = transaction`, RDS Proxy,
//! the transaction port of hosted PostgreSQL) lends a server connection to
//! a client for one transaction, then gives it to another client. Two
//! things sqlx does by default break there:
//!
//! - it sends the startup parameter `extra_float_digits`, which PgBouncer
//!   refuses unless told to ignore it. Only a typed `PgConnectOptions` can
//!   leave it out (`extra_float_digits(None)`); the `Any` driver rebuilds
//!   its options from the URL and would send it again.
//! - it names and caches prepared statements (`sqlx_s_1`, …) per client
//!   connection. The name then lives on a server connection that other
//!   clients get next (`prepared statement "sqlx_s_1" already exists`).
//!
//! So in pooler mode the pool is a `PgPool` whose connections cache no
//! statements, and every statement is sent unnamed (`persistent = false`).
//! An unnamed statement still takes two round trips (Parse/Describe/Sync,
//! then Bind/Execute/Sync), and between them a pooler may move us to
//! another server connection, where the unnamed statement does not exist.
//! It cannot inside a transaction: there the server connection is ours
//! until `COMMIT`. Hence the rule this module enforces — a statement with
//! parameters runs inside a transaction: the caller's [`Tx`], or one of its
//! own (`BEGIN` … `COMMIT` around a single statement, two more round
//! trips). A statement without parameters goes out as one simple-protocol
//! message, which a pooler never splits.
//!
//! On a MySQL-family server the pool is sqlx's `Any` pool as well, but each
//! statement is first rewritten into MySQL's dialect (`super::mysql_dialect`:
//! `?` placeholders, `CAST` type names), so the statement modules keep one
//! text for all three backends wherever the meaning is the same.
//!
//! The rows are converted by the same code as in `Any` mode (sqlx's
//! PostgreSQL `Any` backend, called directly on the typed connection), so
//! the two modes decode identically.

use std::ops::{Deref, DerefMut};

use futures::future::{self, BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, Postgres};
use sqlx::{
    Acquire, Any, AnyPool, AssertSqlSafe, Describe, Either, Error, Execute, Executor, Row, SqlStr,
    Transaction,
};
// Not re-exported by `sqlx`: the trait through which the `Any` driver runs
// a query on a PostgreSQL connection, which is what pooler mode reuses.
use sqlx_core::any::AnyConnectionBackend;

use super::mysql_dialect;

type Step = Either<AnyQueryResult, AnyRow>;

/// The store's connection pool: sqlx's `Any` pool (SQLite, PostgreSQL
/// reached directly or through a session pooler), or a PostgreSQL pool
/// that is safe behind a transaction pooler. `&StorePool` runs `Any`
/// queries either way. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StorePool(Inner);

#[derive(Debug, Clone)]
enum Inner {
    Any(AnyPool),
    Pooled(PgPool),
    /// sqlx's `Any` pool on a MySQL-family server: every statement is
    /// rewritten into MySQL's dialect on its way out (`super::mysql_dialect`).
    MySql(AnyPool),
}

impl StorePool {
    pub(super) fn any(pool: AnyPool) -> Self {
        StorePool(Inner::Any(pool))
    }

    pub(super) fn pooled(pool: PgPool) -> Self {
        StorePool(Inner::Pooled(pool))
    }

    pub(super) fn mysql(pool: AnyPool) -> Self {
        StorePool(Inner::MySql(pool))
    }

    /// A transaction; `begin` replaces `BEGIN` on the `Any` pool (SQLite's
    /// `BEGIN IMMEDIATE`).
    pub(super) async fn begin(&self, begin: Option<&'static str>) -> Result<Tx, Error> {
        Ok(Tx(match &self.0 {
            Inner::Any(p) => TxConn::Any(match begin {
                Some(sql) => p.begin_with(sql).await?,
                None => p.begin().await?,
            }),
            Inner::Pooled(p) => TxConn::Pooled(p.begin().await?),
            Inner::MySql(p) => TxConn::MySql(p.begin().await?),
        }))
    }

    /// A connection of the `Any` pool: the SQLite writer, which group
    /// commit holds across several updates. Never asked of a pooled store
    /// (it has no single writer).
    pub(super) async fn acquire_any(&self) -> Result<PoolConnection<Any>, Error> {
        match &self.0 {
            Inner::Any(p) => p.acquire().await,
            Inner::Pooled(_) | Inner::MySql(_) => Err(Error::Configuration(
                "no single writer connection on a server database".into(),
            )),
        }
    }

    /// Applies `migrator`'s pending migrations (see `SqlStore::migrate`).
    pub(super) async fn migrate(&self, migrator: &Migrator) -> Result<(), MigrateError> {
        match &self.0 {
            Inner::Any(p) | Inner::MySql(p) => migrator.run(p).await,
            Inner::Pooled(p) => migrate_pooled(p, migrator).await,
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.0 {
            Inner::Any(p) | Inner::MySql(p) => p.close().await,
            Inner::Pooled(p) => p.close().await,
        }
    }
}

/// Migrations behind a transaction pooler: everything in one transaction,
/// so that the pooler cannot move us between server connections.
///
/// - The lock is sqlx's migration lock (same key, so migrators in either
///   mode exclude each other), taken with `pg_advisory_xact_lock`: it is
///   released by `COMMIT`/`ROLLBACK`, after the migrations became visible,
///   and can never be left behind on a server connection the pooler keeps.
///   sqlx's own session-level locking is turned off.
/// - The migrations run in a savepoint, so a failure is rolled back while
///   the transaction is still usable for the clean-up below.
/// - sqlx's migrator prepares named statements, which a connection without
///   a statement cache never closes: `DEALLOCATE ALL` drops them before the
///   server connection goes back to the pooler.
async fn migrate_pooled(pool: &PgPool, migrator: &Migrator) -> Result<(), MigrateError> {
    let mut unlocked = Migrator::with_migrations(migrator.iter().cloned().collect());
    unlocked.set_locking(false);
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let database: String = sqlx::raw_sql("SELECT current_database()")
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT pg_advisory_xact_lock({})",
        migration_lock_id(&database)
    )))
    .execute(&mut *tx)
    .await?;
    let mut attempt = tx.begin().await?;
    let outcome = unlocked.run(&mut *attempt).await;
    match outcome {
        Ok(()) => attempt.commit().await?,
        Err(_) => attempt.rollback().await?,
    }
    sqlx::raw_sql("DEALLOCATE ALL").execute(&mut *tx).await?;
    match outcome {
        Ok(()) => Ok(tx.commit().await?),
        Err(e) => {
            tx.rollback().await?;
            Err(e)
        }
    }
}

/// The advisory lock key sqlx's PostgreSQL migrator uses for `database`
/// (`0x3d32ad9e` × CRC-32 of the name).
fn migration_lock_id(database: &str) -> i64 {
    0x3d32_ad9e * i64::from(crc32(database.as_bytes()))
}

/// CRC-32 (ISO-HDLC, as zlib computes it), bit by bit: one short name per
/// start-up does not need a table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A transaction of the store's pool. Dereferences to a [`TxConn`] so that
/// statements take it the way they take a sqlx transaction, `&mut *tx`.
#[derive(Debug)]
pub(crate) struct Tx(TxConn);

/// The connection a [`Tx`] holds; `&mut TxConn` is the executor.
#[derive(Debug)]
pub(crate) enum TxConn {
    Any(Transaction<'static, Any>),
    Pooled(Transaction<'static, Postgres>),
    MySql(Transaction<'static, Any>),
}

impl Tx {
    /// A transaction of the `Any` driver begun elsewhere (group commit).
    pub(super) fn from_any(tx: Transaction<'static, Any>) -> Self {
        Tx(TxConn::Any(tx))
    }

    pub(super) async fn commit(self) -> Result<(), Error> {
        match self.0 {
            TxConn::Any(tx) | TxConn::MySql(tx) => tx.commit().await,
            TxConn::Pooled(tx) => tx.commit().await,
        }
    }

    pub(super) async fn rollback(self) -> Result<(), Error> {
        match self.0 {
            TxConn::Any(tx) | TxConn::MySql(tx) => tx.rollback().await,
            TxConn::Pooled(tx) => tx.rollback().await,
        }
    }

    /// Whether `UPDATE … RETURNING` is available: not on MySQL/MariaDB,
    /// where the callers run the conditional `UPDATE`, count the rows it
    /// matched, and read the row back in this transaction.
    pub(super) fn has_returning(&self) -> bool {
        !matches!(self.0, TxConn::MySql(_))
    }
}

impl Deref for Tx {
    type Target = TxConn;
    fn deref(&self) -> &TxConn {
        &self.0
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut TxConn {
        &mut self.0
    }
}

/// What a pooled statement needs of a query: its text and its arguments.
/// sqlx's flag for a named statement is ignored: pooled statements are
/// always unnamed.
fn split<'q, E: Execute<'q, Any>>(mut query: E) -> Result<(SqlStr, Option<AnyArguments>), Error> {
    let arguments = query.take_arguments().map_err(Error::Encode)?;
    Ok((query.sql(), arguments))
}

fn unsupported<T: Send + 'static>() -> BoxFuture<'static, Result<T, Error>> {
    future::ready(Err(Error::Configuration(
        "the store prepares no statement ahead of its use here".into(),
    )))
    .boxed()
}

/// One statement on a pooled connection, all its results collected: in a
/// transaction of its own when it has parameters (see the module doc).
async fn run_pooled(
    pool: &PgPool,
    sql: SqlStr,
    arguments: Option<AnyArguments>,
) -> Result<Vec<Step>, Error> {
    let mut conn = pool.acquire().await?;
    if arguments.is_none() {
        return run_on(&mut conn, sql, None).try_collect().await;
    }
    let mut tx = conn.begin().await?;
    let steps = run_on(&mut tx, sql, arguments).try_collect().await?;
    tx.commit().await?;
    Ok(steps)
}

async fn fetch_optional_pooled(
    pool: &PgPool,
    sql: SqlStr,
    arguments: Option<AnyArguments>,
) -> Result<Option<AnyRow>, Error> {
    let mut conn = pool.acquire().await?;
    if arguments.is_none() {
        return AnyConnectionBackend::fetch_optional(&mut *conn, sql, false, None).await;
    }
    let mut tx = conn.begin().await?;
    let row = AnyConnectionBackend::fetch_optional(&mut *tx, sql, false, arguments).await?;
    tx.commit().await?;
    Ok(row)
}

/// A statement on a PostgreSQL connection, unnamed, decoded by sqlx's
/// `Any` backend for PostgreSQL.
fn run_on(
    conn: &mut PgConnection,
    sql: SqlStr,
    arguments: Option<AnyArguments>,
) -> BoxStream<'_, Result<Step, Error>> {
    AnyConnectionBackend::fetch_many(conn, sql, false, arguments)
}

impl<'p> Executor<'p> for &'p StorePool {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match &self.0 {
            Inner::Any(p) => p.fetch_many(query),
            Inner::MySql(p) => match mysql_dialect::translate_query(query) {
                Ok(q) => p.fetch_many(q),
                Err(e) => stream::once(future::ready(Err(e))).boxed(),
            },
            Inner::Pooled(p) => match split(query) {
                Ok((sql, arguments)) => stream::once(run_pooled(p, sql, arguments))
                    .map_ok(|steps| stream::iter(steps.into_iter().map(Ok)))
                    .try_flatten()
                    .boxed(),
                Err(e) => stream::once(future::ready(Err(e))).boxed(),
            },
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match &self.0 {
            Inner::Any(p) => p.fetch_optional(query),
            Inner::MySql(p) => match mysql_dialect::translate_query(query) {
                Ok(q) => p.fetch_optional(q),
                Err(e) => future::ready(Err(e)).boxed(),
            },
            Inner::Pooled(p) => match split(query) {
                Ok((sql, arguments)) => fetch_optional_pooled(p, sql, arguments).boxed(),
                Err(e) => future::ready(Err(e)).boxed(),
            },
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, Error>>
    where
        'p: 'e,
    {
        match &self.0 {
            Inner::Any(p) => p.prepare_with(sql, parameters),
            Inner::MySql(_) | Inner::Pooled(_) => unsupported(),
        }
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'p: 'e,
    {
        match &self.0 {
            Inner::Any(p) => p.describe(sql),
            Inner::MySql(_) | Inner::Pooled(_) => unsupported(),
        }
    }
}

impl<'c> Executor<'c> for &'c mut TxConn {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            TxConn::Any(tx) => (&mut **tx).fetch_many(query),
            TxConn::MySql(tx) => match mysql_dialect::translate_query(query) {
                Ok(q) => (&mut **tx).fetch_many(q),
                Err(e) => stream::once(future::ready(Err(e))).boxed(),
            },
            TxConn::Pooled(tx) => match split(query) {
                Ok((sql, arguments)) => run_on(tx, sql, arguments),
                Err(e) => stream::once(future::ready(Err(e))).boxed(),
            },
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<AnyRow>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self {
            TxConn::Any(tx) => (&mut **tx).fetch_optional(query),
            TxConn::MySql(tx) => match mysql_dialect::translate_query(query) {
                Ok(q) => (&mut **tx).fetch_optional(q),
                Err(e) => future::ready(Err(e)).boxed(),
            },
            TxConn::Pooled(tx) => match split(query) {
                Ok((sql, arguments)) => {
                    AnyConnectionBackend::fetch_optional(&mut **tx, sql, false, arguments)
                }
                Err(e) => future::ready(Err(e)).boxed(),
            },
        }
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement, Error>>
    where
        'c: 'e,
    {
        match self {
            TxConn::Any(tx) => (&mut **tx).prepare_with(sql, parameters),
            TxConn::MySql(_) | TxConn::Pooled(_) => unsupported(),
        }
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<Describe<Any>, Error>>
    where
        'c: 'e,
    {
        match self {
            TxConn::Any(tx) => (&mut **tx).describe(sql),
            TxConn::MySql(_) | TxConn::Pooled(_) => unsupported(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{crc32, migration_lock_id};

    #[test]
    fn crc32_is_the_iso_hdlc_one() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_lock_id_depends_on_the_database_and_does_not_overflow() {
        assert_ne!(migration_lock_id("a"), migration_lock_id("b"));
        assert_eq!(migration_lock_id(""), 0);
        // The largest CRC still fits: 0x3d32ad9e * 0xffffffff < i64::MAX.
        assert!(0x3d32_ad9e_i64.checked_mul(i64::from(u32::MAX)).is_some());
    }
}
