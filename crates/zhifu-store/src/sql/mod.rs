//! [`SqlStore`]: the [`Store`](crate::Store) on sqlx's `Any` driver, so
//! SQLite and PostgreSQL share every statement; only connection set-up,
//! transaction start, claims and migrations differ per backend.
//!
//! All SQL uses `$N` placeholders (both drivers accept them), `TEXT` and
//! `BIGINT` columns, `RETURNING` and `CAST(… AS …)`, which both dialects
//! understand identically.
//!
//! This file owns the connection, the migrations and what differs between
//! the backends. The statements live with what they touch: `orders`,
//! `refunds`, `notifications`, `outbox` (events and their deliveries),
//! `leases` (every claim), `apply` (the steps of `crate::transition`), and
//! `rows` (columns and row → record mapping).
//! `store` implements the trait by handing each call to one of them.
//! Dependencies point one way: the children use this file, never the
//! reverse.

pub(crate) mod alipay_certs;
mod apply;
mod group;

pub use self::group::GroupStats;
mod leases;
mod notifications;
mod orders;
mod outbox;
mod refunds;
mod rows;
mod store;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};

use crate::Result;
use crate::error::StoreError;

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
    /// SQLite files only: make every commit durable before it returns
    /// (`synchronous = FULL`: the WAL is synced at each commit). With it
    /// off (`NORMAL`), a power loss can roll back the last transactions —
    /// ones Alipay was already told `success` for. Off only for benchmarks
    /// that measure what durability costs.
    pub sqlite_durable_commits: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
            sqlite_durable_commits: true,
        }
    }
}

/// The sqlx implementation of [`Store`](crate::Store). Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    /// SQLite files: the one connection every write goes through, so that
    /// writers queue in the pool (in order, asynchronously) instead of
    /// colliding on SQLite's lock and sleeping in `busy_timeout`. Reads keep
    /// the shared pool (WAL readers do not block the writer). `None`:
    /// writes use `pool` (PostgreSQL, and in-memory SQLite, which has one
    /// connection anyway).
    writer: Option<AnyPool>,
    /// With the single writer: trade updates waiting for it commit
    /// together ([`group`]).
    group: Option<std::sync::Arc<group::GroupCommit>>,
    backend: Backend,
}

/// A write transaction, as every multi-statement change uses.
type Tx = Transaction<'static, Any>;

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
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let url = match backend {
            Backend::Postgres => url.to_owned(),
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
        Ok(SqlStore {
            pool,
            group: writer.as_ref().map(|_| std::sync::Arc::default()),
            writer,
            backend,
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
    fn writer(&self) -> &AnyPool {
        self.writer.as_ref().unwrap_or(&self.pool)
    }

    /// Of a statement written once per backend, (SQLite, PostgreSQL), the
    /// one this store runs.
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
    async fn begin_write(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.writer().begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// A new random id with a type prefix. UUIDv7 keeps ids roughly time-ordered.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}
