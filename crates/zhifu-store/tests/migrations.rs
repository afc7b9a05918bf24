//! The SQLite and PostgreSQL migrations must keep describing one schema:
//! the store runs the same statements on both, so a column added to one
//! folder only breaks the other backend at run time.
//!
//! Always on: both folders hold the same migration files, and after every
//! version their `CREATE TABLE` / `ALTER TABLE` / `CREATE INDEX` statements
//! (read by a deliberately small parser that refuses what it does not
//! understand) declare the same tables, columns and indexes; a migrated
//! SQLite database is checked against what its files declare, so the parser
//! cannot drift from what SQLite does. With `ZHIFU_TEST_DATABASE_URL` (always
//! in CI), a migrated PostgreSQL database is introspected and compared too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::Row;
use zhifu_store::testing::fresh_database;
use zhifu_store::{Backend, SqlStore, StoreOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    /// Declared type, upper case (`BIGINT`, `TEXT`).
    ty: String,
    not_null: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, BTreeMap<String, Column>>,
    /// Named indexes (not those behind `PRIMARY KEY` / `UNIQUE`) → table.
    indexes: BTreeMap<String, String>,
}

fn folder(backend: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
}

/// The migration files of a folder, in the order sqlx applies them.
fn migration_files(backend: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(folder(backend))
        .expect("the migrations folder is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().expect("a file name").to_string_lossy();
            let text = std::fs::read_to_string(&p).expect("a readable migration");
            (name.into_owned(), text)
        })
        .collect();
    files.sort_by_key(|(name, _)| version(name));
    files
}

/// sqlx's version: the digits before the first `_`.
fn version(name: &str) -> i64 {
    let (digits, _) = name
        .split_once('_')
        .unwrap_or_else(|| panic!("{name}: migrations are named VERSION_description.sql"));
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{name}: the version is not a number"))
}

/// `text` without `--` comments, cut into statements, whitespace collapsed.
/// (No migration puts `--` or `;` inside a string literal.)
fn statements(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Splits a parenthesised list on its top-level commas.
fn top_level_items(body: &str) -> Vec<String> {
    let (mut items, mut depth, mut current) = (Vec::new(), 0_i32, String::new());
    for c in body.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut current).trim().to_owned());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current.trim().to_owned());
    items
}

fn unquote(name: &str) -> String {
    name.trim_matches('"').to_owned()
}

/// A column definition (`name TYPE constraints…`).
fn column(def: &str) -> (String, Column) {
    let words: Vec<&str> = def.split(' ').collect();
    assert!(words.len() >= 2, "column without a type: {def}");
    let upper = def.to_uppercase();
    let column = Column {
        ty: words[1].to_uppercase(),
        // A primary key is NOT NULL on PostgreSQL; SQLite would accept a
        // NULL in a non-INTEGER one, but no statement of ours writes one.
        not_null: upper.contains("NOT NULL") || upper.contains("PRIMARY KEY"),
    };
    (unquote(words[0]), column)
}

/// Applies one statement's effect on tables, columns and indexes. Anything
/// that changes them in a way this parser does not know fails the test.
fn apply(schema: &mut Schema, stmt: &str, at: &str) {
    let upper = stmt.to_uppercase();
    let words: Vec<&str> = stmt.split(' ').collect();
    let uwords: Vec<&str> = upper.split(' ').collect();
    if upper.starts_with("CREATE TABLE ") {
        let name_at = if upper.starts_with("CREATE TABLE IF NOT EXISTS ") {
            5
        } else {
            2
        };
        let name = unquote(words[name_at].split('(').next().unwrap_or_default());
        let open = stmt
            .find('(')
            .unwrap_or_else(|| panic!("{at}: no column list"));
        let close = stmt
            .rfind(')')
            .unwrap_or_else(|| panic!("{at}: no column list"));
        let mut columns = BTreeMap::new();
        for item in top_level_items(&stmt[open + 1..close]) {
            let first = item.split(' ').next().unwrap_or_default().to_uppercase();
            if ["PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"].contains(&first.as_str()) {
                continue;
            }
            let (col, def) = column(&item);
            assert!(
                columns.insert(col.clone(), def).is_none(),
                "{at}: {name}.{col} twice"
            );
        }
        assert!(
            schema.tables.insert(name.clone(), columns).is_none(),
            "{at}: table {name} created twice"
        );
    } else if upper.starts_with("ALTER TABLE ") && uwords.get(3) == Some(&"RENAME") {
        // `ALTER TABLE a RENAME TO b`: the table and its indexes move.
        assert_eq!(uwords.get(4), Some(&"TO"), "{at}: only RENAME TO is known");
        let (from, to) = (
            unquote(words[2]),
            unquote(words.get(5).copied().unwrap_or_default()),
        );
        let columns = schema
            .tables
            .remove(&from)
            .unwrap_or_else(|| panic!("{at}: rename of unknown table {from}"));
        assert!(
            schema.tables.insert(to.clone(), columns).is_none(),
            "{at}: rename onto existing {to}"
        );
        for table in schema.indexes.values_mut() {
            if *table == from {
                table.clone_from(&to);
            }
        }
    } else if upper.starts_with("ALTER TABLE ") {
        let table = unquote(words[2]);
        let columns = schema
            .tables
            .get_mut(&table)
            .unwrap_or_else(|| panic!("{at}: ALTER of unknown table {table}"));
        // `ADD [COLUMN] name …` / `DROP [COLUMN] name`.
        let name_at = if uwords.get(4) == Some(&"COLUMN") {
            5
        } else {
            4
        };
        match uwords.get(3).copied() {
            Some("ADD")
                if !["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]
                    .contains(&uwords.get(4).copied().unwrap_or_default()) =>
            {
                let (col, def) = column(&words[name_at..].join(" "));
                assert!(
                    columns.insert(col.clone(), def).is_none(),
                    "{at}: {col} twice"
                );
            }
            // Constraints are not part of what this test compares.
            Some("ADD" | "DROP") if uwords.get(4) == Some(&"CONSTRAINT") => {}
            Some("DROP") => {
                let col = unquote(words.get(name_at).copied().unwrap_or_default());
                assert!(
                    columns.remove(&col).is_some(),
                    "{at}: drop of unknown {col}"
                );
            }
            _ => panic!("{at}: this test does not understand `{stmt}`; teach it"),
        }
    } else if upper.starts_with("DROP TABLE ") {
        let name = unquote(words.last().copied().unwrap_or_default());
        assert!(
            schema.tables.remove(&name).is_some(),
            "{at}: drop of unknown {name}"
        );
        // A table's indexes go with it.
        schema.indexes.retain(|_, table| *table != name);
    } else if upper.starts_with("CREATE INDEX ") || upper.starts_with("CREATE UNIQUE INDEX ") {
        let on = uwords
            .iter()
            .position(|w| *w == "ON")
            .unwrap_or_else(|| panic!("{at}: index without ON"));
        let name = unquote(words[on - 1]);
        let table = unquote(words[on + 1].split('(').next().unwrap_or_default());
        assert!(
            schema.indexes.insert(name, table).is_none(),
            "{at}: index twice"
        );
    } else if upper.starts_with("DROP INDEX ") {
        let name = unquote(words.last().copied().unwrap_or_default());
        assert!(
            schema.indexes.remove(&name).is_some(),
            "{at}: drop of unknown {name}"
        );
    } else if upper.starts_with("CREATE ") || upper.starts_with("ALTER ") {
        panic!("{at}: this test does not understand `{stmt}`; teach it");
    }
    // Data statements (UPDATE, INSERT, DELETE) leave the schema alone.
}

/// The schema each migration version leaves, in order.
fn declared(backend: &str) -> Vec<(String, Schema)> {
    let mut schema = Schema::default();
    migration_files(backend)
        .into_iter()
        .map(|(name, text)| {
            for stmt in statements(&text) {
                apply(&mut schema, &stmt, &format!("{backend}/{name}"));
            }
            (name, schema.clone())
        })
        .collect()
}

#[test]
fn both_backends_have_the_same_migration_files() {
    let names = |b| -> Vec<String> { migration_files(b).into_iter().map(|(n, _)| n).collect() };
    let (sqlite, postgres) = (names("sqlite"), names("postgres"));
    assert!(!sqlite.is_empty(), "no SQLite migrations found");
    assert_eq!(sqlite, postgres, "migration files differ between backends");
    let mut versions: Vec<i64> = sqlite.iter().map(|n| version(n)).collect();
    versions.dedup();
    assert_eq!(
        versions.len(),
        sqlite.len(),
        "two migrations share a version"
    );
}

#[test]
fn both_backends_declare_the_same_schema_at_every_version() {
    let (sqlite, postgres) = (declared("sqlite"), declared("postgres"));
    assert_eq!(sqlite.len(), postgres.len());
    for ((name, lite), (_, pg)) in sqlite.iter().zip(&postgres) {
        assert_eq!(lite, pg, "schemas differ after {name}");
    }
    let last = &sqlite.last().expect("at least one migration").1;
    // The parser saw the statements at all: a known column of each kind.
    assert_eq!(
        last.tables["orders"]["total_fen"],
        Column {
            ty: "BIGINT".into(),
            not_null: true
        }
    );
    assert!(last.tables["order_events"].contains_key("webhook_state"));
    assert_eq!(last.indexes["order_events_due"], "order_events");
}

async fn migrated(backend: Backend) -> Option<(SqlStore, zhifu_store::testing::TestDatabase)> {
    let db = fresh_database(backend).await?;
    let store = SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
        .await
        .expect("store opens and migrates");
    Some((store, db))
}

/// What the database says it has, minus sqlx's own bookkeeping.
async fn introspect(store: &SqlStore) -> Schema {
    let (columns_sql, indexes_sql) = match store.backend() {
        // `pk`: SQLite does not report a TEXT primary key as NOT NULL.
        Backend::Sqlite => (
            "SELECT m.name AS tbl, p.name AS col, p.type AS ty, \
             CAST(p.\"notnull\" <> 0 OR p.pk <> 0 AS BIGINT) AS not_null \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite%' AND m.name NOT LIKE '%sqlx%'",
            // Indexes behind constraints have no SQL of their own.
            "SELECT name, tbl_name AS tbl FROM sqlite_master \
             WHERE type = 'index' AND sql IS NOT NULL",
        ),
        Backend::Postgres => (
            "SELECT CAST(table_name AS TEXT) AS tbl, CAST(column_name AS TEXT) AS col, \
             CAST(data_type AS TEXT) AS ty, \
             CAST(CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT) AS not_null \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '%sqlx%'",
            "SELECT CAST(indexname AS TEXT) AS name, CAST(tablename AS TEXT) AS tbl \
             FROM pg_indexes i WHERE schemaname = current_schema() \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
        ),
        // Types as the other backends name them: MySQL's VARCHAR keys and
        // MEDIUMTEXT bodies are what TEXT is there. Unique indexes belong
        // to constraints, as above.
        Backend::MySql => (
            "SELECT table_name AS tbl, column_name AS col, \
             CASE WHEN data_type IN ('varchar', 'text', 'mediumtext') THEN 'TEXT' \
             ELSE data_type END AS ty, \
             CAST(CASE WHEN is_nullable = 'NO' THEN 1 ELSE 0 END AS BIGINT) AS not_null \
             FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND table_name NOT LIKE '%sqlx%'",
            "SELECT DISTINCT index_name AS name, table_name AS tbl \
             FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND non_unique = 1",
        ),
    };
    let mut schema = Schema::default();
    for row in sqlx::query(columns_sql)
        .fetch_all(store.pool())
        .await
        .expect("columns can be listed")
    {
        let tbl: String = row.get("tbl");
        let col: String = row.get("col");
        let ty: String = row.get("ty");
        let not_null: i64 = row.get("not_null");
        schema.tables.entry(tbl).or_default().insert(
            col,
            Column {
                ty: ty.to_uppercase(),
                not_null: not_null != 0,
            },
        );
    }
    for row in sqlx::query(indexes_sql)
        .fetch_all(store.pool())
        .await
        .expect("indexes can be listed")
    {
        schema.indexes.insert(row.get("name"), row.get("tbl"));
    }
    schema
}

fn latest(backend: &str) -> Schema {
    declared(backend).pop().expect("at least one migration").1
}

#[tokio::test]
async fn sqlite_has_the_schema_its_files_declare() {
    let (store, _db) = migrated(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    assert_eq!(introspect(&store).await, latest("sqlite"));
    store.close().await;
}

#[tokio::test]
async fn postgres_has_the_schema_sqlite_has() {
    let Some((pg, _pg_db)) = migrated(Backend::Postgres).await else {
        return;
    };
    let (lite, _lite_db) = migrated(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let pg_schema = introspect(&pg).await;
    assert_eq!(pg_schema, latest("postgres"), "PostgreSQL vs its files");
    assert_eq!(pg_schema, introspect(&lite).await, "PostgreSQL vs SQLite");
    pg.close().await;
    lite.close().await;
}

/// `mysql::…`: what the MariaDB block of `scripts/test` runs.
mod mysql {
    use super::*;

    #[tokio::test]
    async fn has_the_schema_sqlite_has() {
        let Some((my, _my_db)) = migrated(Backend::MySql).await else {
            return;
        };
        let (lite, _lite_db) = migrated(Backend::Sqlite)
            .await
            .expect("SQLite is always available");
        assert_eq!(
            introspect(&my).await,
            introspect(&lite).await,
            "MySQL vs SQLite"
        );
        // Migrating again finds nothing to do.
        my.migrate()
            .await
            .expect("a second migration run is a no-op");
        my.close().await;
        lite.close().await;
    }
}
