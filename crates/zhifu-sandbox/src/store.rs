//! Persistence: every record is written through to SQLite as JSON when a
//! state directory is configured, and the whole state is read back at start.
//! Without a directory the sandbox lives in memory only.

use std::path::Path;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::error::SandboxError;

/// Record kinds, one table each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Apps,
    Orders,
    Trades,
    Deliveries,
    Agreements,
}

impl Table {
    fn what(self) -> &'static str {
        match self {
            Table::Apps => "app",
            Table::Orders => "order",
            Table::Trades => "trade",
            Table::Deliveries => "delivery",
            Table::Agreements => "agreement",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Store {
    Memory,
    Sqlite(SqlitePool),
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS apps (id TEXT PRIMARY KEY NOT NULL, json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY NOT NULL, json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trades (id TEXT PRIMARY KEY NOT NULL, json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY NOT NULL, json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS agreements (id TEXT PRIMARY KEY NOT NULL, json TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)",
];

impl Store {
    pub(crate) async fn open(dir: Option<&Path>) -> Result<Store, SandboxError> {
        let Some(dir) = dir else {
            return Ok(Store::Memory);
        };
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::StateDir {
            path: dir.to_owned(),
            source,
        })?;
        let file = dir.join("sandbox.sqlite3");
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(&file)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        // One connection: the sandbox serialises writes under its state lock anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        for stmt in SCHEMA {
            sqlx::query(*stmt).execute(&pool).await?;
        }
        Ok(Store::Sqlite(pool))
    }

    pub(crate) async fn put<T: Serialize>(
        &self,
        table: Table,
        id: &str,
        value: &T,
    ) -> Result<(), SandboxError> {
        let Store::Sqlite(pool) = self else {
            return Ok(());
        };
        let json = serde_json::to_string(value).map_err(|source| SandboxError::CorruptState {
            what: table.what(),
            source,
        })?;
        let sql = match table {
            Table::Apps => "INSERT OR REPLACE INTO apps (id, json) VALUES (?, ?)",
            Table::Orders => "INSERT OR REPLACE INTO orders (id, json) VALUES (?, ?)",
            Table::Trades => "INSERT OR REPLACE INTO trades (id, json) VALUES (?, ?)",
            Table::Deliveries => "INSERT OR REPLACE INTO deliveries (id, json) VALUES (?, ?)",
            Table::Agreements => "INSERT OR REPLACE INTO agreements (id, json) VALUES (?, ?)",
        };
        sqlx::query(sql).bind(id).bind(json).execute(pool).await?;
        Ok(())
    }

    pub(crate) async fn load<T: DeserializeOwned>(
        &self,
        table: Table,
    ) -> Result<Vec<T>, SandboxError> {
        let Store::Sqlite(pool) = self else {
            return Ok(Vec::new());
        };
        let sql = match table {
            Table::Apps => "SELECT json FROM apps",
            Table::Orders => "SELECT json FROM orders",
            Table::Trades => "SELECT json FROM trades",
            Table::Deliveries => "SELECT json FROM deliveries",
            Table::Agreements => "SELECT json FROM agreements",
        };
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(pool).await?;
        rows.into_iter()
            .map(|(json,)| {
                serde_json::from_str(&json).map_err(|source| SandboxError::CorruptState {
                    what: table.what(),
                    source,
                })
            })
            .collect()
    }

    pub(crate) async fn put_meta(&self, key: &str, value: &str) -> Result<(), SandboxError> {
        if let Store::Sqlite(pool) = self {
            sqlx::query("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)")
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn get_meta(&self, key: &str) -> Result<Option<String>, SandboxError> {
        let Store::Sqlite(pool) = self else {
            return Ok(None);
        };
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|(v,)| v))
    }

    pub(crate) async fn close(&self) {
        if let Store::Sqlite(pool) = self {
            pool.close().await;
        }
    }
}
