//! Test support (feature `testing`): a fresh database per test, on SQLite
//! always, on PostgreSQL when `ZHIFU_TEST_DATABASE_URL` is set and on a
//! MySQL-family server (MariaDB in CI) when `ZHIFU_TEST_MYSQL_URL` is.
//!
//! When `CI` is set and a server's URL is not, its tests fail instead of
//! being skipped: CI must never pass without having run them.

use tempfile::TempDir;

use crate::Backend;

/// The variable naming the PostgreSQL server tests create databases on.
pub const PG_URL_VAR: &str = "ZHIFU_TEST_DATABASE_URL";

/// The variable naming the MySQL/MariaDB server tests create databases on
/// (`mysql://user@host:port/db`, any existing database).
pub const MYSQL_URL_VAR: &str = "ZHIFU_TEST_MYSQL_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// Its backend.
    pub backend: Backend,
    _dir: Option<TempDir>,
}

/// A fresh, empty database, or `None` when `backend` is PostgreSQL and no
/// server is configured outside CI.
///
/// # Panics
/// When PostgreSQL is asked for in CI without `ZHIFU_TEST_DATABASE_URL`, or
/// the database cannot be created: a test must fail, not pass vacuously.
pub async fn fresh_database(backend: Backend) -> Option<TestDatabase> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary directory can be created");
            let url = format!("sqlite://{}/zhifu.db", dir.path().display());
            Some(TestDatabase {
                url,
                backend,
                _dir: Some(dir),
            })
        }
        Backend::MySql => {
            let base = match std::env::var(MYSQL_URL_VAR) {
                Ok(u) if !u.is_empty() => u,
                _ => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI is set but {MYSQL_URL_VAR} is not: the MySQL suite must run in CI"
                    );
                    return None;
                }
            };
            let name = format!("zhifu_test_{}", uuid::Uuid::new_v4().simple());
            create_mysql_database(&base, &name).await;
            Some(TestDatabase {
                url: with_database(&base, &name),
                backend,
                _dir: None,
            })
        }
        Backend::Postgres => {
            let base = match std::env::var(PG_URL_VAR) {
                Ok(u) if !u.is_empty() => u,
                _ => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI is set but {PG_URL_VAR} is not: the PostgreSQL suite must run in CI"
                    );
                    return None;
                }
            };
            let name = format!("zhifu_test_{}", uuid::Uuid::new_v4().simple());
            create_pg_database(&base, &name).await;
            Some(TestDatabase {
                url: with_database(&base, &name),
                backend,
                _dir: None,
            })
        }
    }
}

/// Connects the way the store would (so through a transaction pooler too,
/// with `?pooler=transaction`) and creates the database with one
/// simple-protocol statement, which names nothing on the server.
async fn create_pg_database(base: &str, name: &str) {
    use sqlx::Connection;
    let (options, _) = crate::sql::pg_connect_options(base, crate::Pooler::None)
        .unwrap_or_else(|e| panic!("{PG_URL_VAR} is not usable: {e}"));
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_URL_VAR}: {e}"));
    // `name` is generated above from hex digits only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{name}\" TEMPLATE template0"
    )))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    let _ = conn.close().await;
}

/// Creates database `name` on the server `base` names, in the character
/// set and collation the migrations give every table.
async fn create_mysql_database(base: &str, name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::MySqlConnection::connect(base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {MYSQL_URL_VAR}: {e}"));
    // `name` is generated above from hex digits only.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )))
    .execute(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
    let _ = conn.close().await;
}

/// `base` with its database path replaced by `name`, query kept.
pub fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let after_scheme = head.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match head[after_scheme..].find('/') {
        Some(i) => &head[..after_scheme + i],
        None => head,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Declares each listed `async fn NAME(db: TestDatabase)` as three tests,
/// `sqlite::NAME`, `postgres::NAME` and `mysql::NAME`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::testing::fresh_database($crate::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    super::$name(db).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::fresh_database($crate::Backend::Postgres).await
                    else {
                        return;
                    };
                    super::$name(db).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = $crate::testing::fresh_database($crate::Backend::MySql).await
                    else {
                        return;
                    };
                    super::$name(db).await
                }
            )*
        }
    };
}

/// Runs one SQL statement as given, on `store`'s pool: for tests that must
/// break or bend the database under a running server.
///
/// # Panics
/// When the statement fails: the test is wrong then.
pub async fn execute_sql(store: &crate::SqlStore, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_swapped_keeping_the_query() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5434/postgres", "t1"),
            "postgres://u@127.0.0.1:5434/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:1/db?sslmode=disable", "t2"),
            "postgres://u@h:1/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    }
}
