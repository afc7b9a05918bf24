//! [`SqlStore`]: the [`Store`](crate::Store) on sqlx's `Any` driver, so
//! SQLite and PostgreSQL share every statement; only connection set-up,
//! transaction start, claims and migrations differ per backend.
//!
//! Behind a transaction pooler ([`Pooler::Transaction`]: PgBouncer's
//! `pool_mode = transaction`, RDS Proxy, …) the same `Any` statements run
//! on a typed PostgreSQL pool that names no statement and keeps each one
//! inside a transaction (`exec`); migrations then run in one transaction
//! under a transaction-level advisory lock ([`SqlStore::migrate`]).
//!
//! All SQL uses `$N` placeholders (both drivers accept them), `TEXT` and
//! `BIGINT` columns, `RETURNING` and `CAST(… AS …)`, which both dialects
//! understand identically.
//!
//! MySQL and MariaDB (`mysql://…`) run the same texts, rewritten on the
//! way out by `mysql_dialect` (`?` placeholders, `CAST` type names). Where
//! no rewrite can do (MySQL has no `UPDATE … RETURNING`, no `ON CONFLICT`,
//! no `LIMIT` inside `IN (…)`), the caller holds a MySQL text next to the
//! shared one: `apply` (refund step), `outbox::finish_delivery`, `leases`
//! (claims and `claim_event`), `alipay_certs::record`. The session runs at
//! READ COMMITTED, like PostgreSQL. `docs/storage.md` has the list and why.
//!
//! This file owns the connection, the migrations and what differs between
//! the backends. The statements live with what they touch: `orders`,
//! `refunds`, `notifications`, `outbox` (events and their deliveries),
//! `leases` (every claim), `apply` (the steps of `crate::transition`), and
//! `rows` (columns and row → record mapping), `exec` (the pool and
//! transaction every statement runs on, in either mode).
//! `store` implements the trait by handing each call to one of them.
//! Dependencies point one way: the children use this file, never the
//! reverse.

pub(crate) mod alipay_certs;
mod apply;
mod exec;
mod group;

pub use self::exec::StorePool;
use self::exec::Tx;

pub use self::group::GroupStats;
mod leases;
mod mysql_dialect;
mod notifications;
mod orders;
mod outbox;
mod refunds;
mod rows;
mod store;
mod subscription_events;
mod subscriptions;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::Result;
use crate::error::StoreError;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static MYSQL_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/mysql");

/// Which database a [`SqlStore`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (file or in-memory): one instance only.
    Sqlite,
    /// PostgreSQL: any number of instances.
    Postgres,
    /// MySQL 8, MariaDB ≥ 10.6 and what speaks their protocol
    /// (`mysql://…` or `mariadb://…`): any number of instances.
    MySql,
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
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Ok(Backend::MySql)
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }
}

/// What sits between Zhifu and its PostgreSQL server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pooler {
    /// Nothing, or a pooler that gives each client a server session of its
    /// own for as long as it is connected (PgBouncer's session mode).
    #[default]
    None,
    /// A pooler that lends a server connection for one transaction at a
    /// time (PgBouncer's `pool_mode = transaction`, RDS Proxy, the
    /// transaction-mode port of hosted PostgreSQL). Zhifu then sends no
    /// startup parameter such a pooler may refuse, names no prepared
    /// statement, and runs every statement with parameters inside a
    /// transaction.
    Transaction,
}

impl Pooler {
    /// The name used in `ZHIFU_DB_POOLER` and in the URL parameter
    /// `pooler=`: `none` or `transaction`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Pooler::None),
            "transaction" => Some(Pooler::Transaction),
            _ => None,
        }
    }
}

/// The URL parameter that sets [`Pooler`] (`?pooler=transaction`), which
/// wins over [`StoreOptions::pooler`]: a URL alone then says everything,
/// wherever Zhifu takes one (`ZHIFU_DATABASE_URL`, `--database-url`, tests).
const POOLER_PARAM: &str = "pooler";

/// `url` without its `pooler=` parameter (sqlx would warn about a parameter
/// it does not know), and the parameter's value if it had one.
fn split_pooler_param(url: &str) -> Result<(String, Option<Pooler>)> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut pooler = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((POOLER_PARAM, value)) => {
                pooler = Some(Pooler::parse(value).ok_or(StoreError::PoolerSetting)?);
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((url, pooler))
}

/// Connection options for a PostgreSQL URL as the store uses them: in
/// pooler mode without `extra_float_digits` (PgBouncer refuses unknown
/// startup parameters) and without a statement cache.
pub(crate) fn pg_connect_options(url: &str, default: Pooler) -> Result<(PgConnectOptions, Pooler)> {
    let (url, from_url) = split_pooler_param(url)?;
    let pooler = from_url.unwrap_or(default);
    let options = PgConnectOptions::from_str(&url).map_err(StoreError::Database)?;
    Ok(match pooler {
        Pooler::None => (options, pooler),
        Pooler::Transaction => (
            options.extra_float_digits(None).statement_cache_capacity(0),
            pooler,
        ),
    })
}

/// Pool settings. Defaults are small: serverless instances are many and short-lived.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (SQLite in-memory databases always use 1).
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub acquire_timeout: Duration,
    /// SQLite files only: make every commit durable before it returns
    /// (`synchronous = FULL`: the WAL is synced at each commit). With it
    /// off (`NORMAL`), a power loss can roll back the last transactions —
    /// ones Alipay was already told `success` for. Off only for benchmarks
    /// that measure what durability costs.
    pub sqlite_durable_commits: bool,
    /// PostgreSQL only: what sits in front of the server (`ZHIFU_DB_POOLER`).
    /// A `pooler=` parameter in the URL takes precedence.
    pub pooler: Pooler,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
            sqlite_durable_commits: true,
            pooler: Pooler::None,
        }
    }
}

/// The sqlx implementation of [`Store`](crate::Store). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: StorePool,
    /// SQLite files: the one connection every write goes through, so that
    /// writers queue in the pool (in order, asynchronously) instead of
    /// colliding on SQLite's lock and sleeping in `busy_timeout`. Reads keep
    /// the shared pool (WAL readers do not block the writer). `None`:
    /// writes use `pool` (PostgreSQL, and in-memory SQLite, which has one
    /// connection anyway).
    writer: Option<StorePool>,
    /// With the single writer: trade updates waiting for it commit
    /// together ([`group`]).
    group: Option<std::sync::Arc<group::GroupCommit>>,
    backend: Backend,
    /// MySQL family: whether claims may add `SKIP LOCKED` (from the
    /// server's version, [`mysql_has_skip_locked`]). Without it a claim
    /// waits for rows another claim holds instead of passing them by:
    /// still exclusive, only slower under contention.
    skip_locked: bool,
}

impl SqlStore {
    /// Connects to `sqlite:…` (a file, created if missing, or `sqlite::memory:`),
    /// `postgres://…` or `mysql://…`. Does not run migrations: see
    /// [`SqlStore::migrate`].
    /// `?pooler=transaction` on a PostgreSQL URL (or
    /// [`StoreOptions::pooler`]) selects pooler mode ([`Pooler::Transaction`]).
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`], [`StoreError::PoolerSetting`],
    /// [`StoreError::Database`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let (url, pooler) = split_pooler_param(url)?;
        let url = url.as_str();
        match (backend, pooler.unwrap_or(options.pooler)) {
            (_, Pooler::None) => {}
            (Backend::Postgres, Pooler::Transaction) => {
                return Self::connect_pooled(url, options).await;
            }
            (Backend::Sqlite | Backend::MySql, Pooler::Transaction) => {
                return Err(StoreError::PoolerSetting);
            }
        }
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout);
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let url = match backend {
            Backend::Postgres => url.to_owned(),
            Backend::MySql => {
                // PostgreSQL's isolation, which the state machine is written
                // for: a `SELECT` in a transaction sees what committed
                // before it, not a snapshot taken at the transaction's first
                // read (REPEATABLE READ, MySQL's default), so the re-read
                // after a conditional `UPDATE` lost a race sees the winner.
                // Strict mode: an over-long value is an error, never cut.
                pool_options = pool_options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        sqlx::raw_sql("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::raw_sql(
                            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')",
                        )
                        .execute(&mut *conn)
                        .await?;
                        Ok(())
                    })
                });
                url.to_owned()
            }
            Backend::Sqlite => {
                if memory {
                    // Every connection to `:memory:` is its own database: keep
                    // exactly one, forever.
                    pool_options = pool_options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                let synchronous = if options.sqlite_durable_commits {
                    "PRAGMA synchronous = FULL"
                } else {
                    "PRAGMA synchronous = NORMAL"
                };
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
                            sqlx::query(synchronous).execute(&mut *conn).await?;
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
        let single_writer = backend == Backend::Sqlite && !memory;
        // Lazily: the writer's connection opens with the first write, so a
        // cold start still opens one connection, not two.
        let writer = if single_writer {
            Some(
                pool_options
                    .clone()
                    .max_connections(1)
                    .connect_lazy_with(connect.clone()),
            )
        } else {
            None
        };
        let pool = pool_options.connect_with(connect).await?;
        let skip_locked = match backend {
            Backend::MySql => {
                let version: String = sqlx::query("SELECT VERSION() AS v")
                    .fetch_one(&pool)
                    .await?
                    .try_get("v")?;
                let supported = mysql_has_skip_locked(&version);
                if !supported {
                    tracing::info!(
                        %version,
                        "the server has no SKIP LOCKED: claims wait for each other's rows"
                    );
                }
                supported
            }
            Backend::Sqlite | Backend::Postgres => true,
        };
        Ok(SqlStore {
            pool: if backend == Backend::MySql {
                StorePool::mysql(pool)
            } else {
                StorePool::any(pool)
            },
            group: writer.as_ref().map(|_| std::sync::Arc::default()),
            writer: writer.map(StorePool::any),
            backend,
            skip_locked,
        })
    }

    /// PostgreSQL behind a transaction pooler: a typed pool, so that the
    /// connection options can leave out what a pooler refuses.
    async fn connect_pooled(url: &str, options: &StoreOptions) -> Result<Self> {
        let (connect, _) = pg_connect_options(url, Pooler::Transaction)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await?;
        Ok(SqlStore {
            pool: StorePool::pooled(pool),
            writer: None,
            group: None,
            backend: Backend::Postgres,
            skip_locked: true,
        })
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
    /// processes at once (PostgreSQL takes an advisory lock, MySQL a named
    /// lock, `GET_LOCK`, both through sqlx's migrator).
    ///
    /// Behind a transaction pooler sqlx's session-level lock would stay with
    /// whichever server connection took it; there all pending migrations
    /// run in one transaction that first takes the same lock at transaction
    /// level, so it ends with the transaction whatever happens, and holds
    /// until the migrations are visible to the next migrator.
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
            Backend::MySql => &MYSQL_MIGRATOR,
        };
        self.pool
            .migrate(migrator)
            .await
            .map_err(StoreError::Migrate)
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This store with claims that wait rather than skip locked rows, as on
    /// a MySQL-family server without `SKIP LOCKED`: lets the tests run that
    /// path on a server that has it.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn without_skip_locked(mut self) -> Self {
        self.skip_locked = false;
        self
    }

    /// The pool, for queries a later module needs before the trait grows.
    /// `&StorePool` runs `Any` queries in either mode.
    pub fn pool(&self) -> &StorePool {
        &self.pool
    }

    /// What group commit did so far; `None` when writes are not grouped
    /// (PostgreSQL, in-memory SQLite).
    pub fn group_commit_stats(&self) -> Option<GroupStats> {
        self.group.as_ref().map(|g| g.stats())
    }

    /// Closes the pools.
    pub async fn close(&self) {
        if let Some(w) = &self.writer {
            w.close().await;
        }
        self.pool.close().await;
    }

    /// Where writes go: the single writer connection on a SQLite file, the
    /// shared pool otherwise.
    fn writer(&self) -> &StorePool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// Of a statement written once per backend, (SQLite, PostgreSQL), the
    /// one this store runs. MySQL has no third text here: where SQLite and
    /// PostgreSQL differ, MySQL differs from both by more than text, and
    /// its callers take their own path before asking (`leases`); should
    /// one not, it gets PostgreSQL's, the closer dialect.
    fn pick(&self, sql: (&'static str, &'static str)) -> &'static str {
        match self.backend {
            Backend::Sqlite => sql.0,
            Backend::Postgres | Backend::MySql => sql.1,
        }
    }

    /// A transaction that will write. SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes
    /// fails with `SQLITE_BUSY` instead of waiting when another writer got in
    /// between. PostgreSQL relies on the conditional updates.
    async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer().begin(Some("BEGIN IMMEDIATE")).await?,
            Backend::Postgres | Backend::MySql => self.pool.begin(None).await?,
        })
    }
}

/// Whether a MySQL-family server implements `SELECT … FOR UPDATE SKIP
/// LOCKED`, from its `VERSION()`: MySQL from 8.0.1, MariaDB from 10.6
/// (`10.11.6-MariaDB-…`). TiDB (`8.0.11-TiDB-v7.5.0`) accepts the words, but
/// nothing in its documentation says it skips locked rows: it gets the
/// waiting form.
fn mysql_has_skip_locked(version: &str) -> bool {
    let lower = version.to_ascii_lowercase();
    if lower.contains("tidb") {
        return false;
    }
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let mut next = || numbers.next().unwrap_or(0);
    let (major, minor, patch) = (next(), next(), next());
    if lower.contains("mariadb") {
        (major, minor) >= (10, 6)
    } else {
        (major, minor, patch) >= (8, 0, 1)
    }
}

/// A new random id with a type prefix. UUIDv7 keeps ids roughly time-ordered.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

#[cfg(test)]
mod tests {
    use super::{Pooler, mysql_has_skip_locked, split_pooler_param};

    #[test]
    fn skip_locked_is_known_by_server_version() {
        let cases = [
            ("10.11.19-MariaDB-0+deb12u1", true),
            ("10.6.0-MariaDB", true),
            ("11.4.2-MariaDB-ubu2404", true),
            ("10.5.23-MariaDB", false),
            ("8.0.36", true),
            ("8.4.0-commercial", true),
            ("8.0.0-dmr", false),
            ("5.7.44-log", false),
            ("8.0.11-TiDB-v7.5.0", false),
        ];
        for (version, expected) in cases {
            assert_eq!(mysql_has_skip_locked(version), expected, "{version}");
        }
    }
    use crate::StoreError;

    #[test]
    fn the_pooler_parameter_is_read_and_removed() {
        let cases = [
            ("postgres://h/db", "postgres://h/db", None),
            (
                "postgres://h/db?pooler=transaction",
                "postgres://h/db",
                Some(Pooler::Transaction),
            ),
            (
                "postgres://h/db?sslmode=disable&pooler=none&application_name=z",
                "postgres://h/db?sslmode=disable&application_name=z",
                Some(Pooler::None),
            ),
            (
                "sqlite:///tmp/x.db?mode=rwc",
                "sqlite:///tmp/x.db?mode=rwc",
                None,
            ),
        ];
        for (url, rest, pooler) in cases {
            let (got_rest, got_pooler) = split_pooler_param(url).expect(url);
            assert_eq!((got_rest.as_str(), got_pooler), (rest, pooler), "{url}");
        }
    }

    #[test]
    fn an_unknown_pooler_value_is_refused() {
        assert!(matches!(
            split_pooler_param("postgres://h/db?pooler=session"),
            Err(StoreError::PoolerSetting)
        ));
    }
}
