//! Pooler mode (`?pooler=transaction`) leaves nothing named on the server:
//! what makes it safe behind a transaction pooler, where a server
//! connection passes from client to client. Runs on PostgreSQL only
//! (`ZHIFU_TEST_DATABASE_URL`); `scripts/test` runs it directly and again
//! through PgBouncer.

// Helpers shared with the other store tests; this file needs only some.
#[allow(dead_code)]
mod common;

use common::{create, new_order, record, update};
use sqlx::Row;
use zhifu_store::testing::fresh_database;
use zhifu_store::*;

/// `url` with `pooler=` set to `value` (the test URL may carry one already).
fn with_pooler(url: &str, value: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("pooler="))
        .collect();
    let param = format!("pooler={value}");
    pairs.push(&param);
    format!("{head}?{}", pairs.join("&"))
}

/// Migrates, creates, pays and reads an order on one connection, then
/// counts the prepared statements that connection's server session holds.
async fn statements_left_after_a_payment(url: &str) -> i64 {
    // One connection, so that the count below sees the session that ran
    // everything (when PostgreSQL is reached directly).
    let options = StoreOptions {
        max_connections: 1,
        ..StoreOptions::default()
    };
    let s = SqlStore::connect_and_migrate(url, &options)
        .await
        .expect("store opens and migrates");
    let order = create(&s, new_order(1, 1_000)).await;
    let paid = s
        .apply_trade_update(
            &update(&order, TradeState::Success, None, 2_000),
            &record(&order, 2_000),
        )
        .await
        .expect("payment applies");
    assert_eq!(paid.order.status, OrderStatus::Paid);
    assert!(s.get_order(&order.id).await.expect("read").is_some());
    assert_eq!(s.list_events(&order.id).await.expect("events").len(), 1);
    let n: i64 = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM pg_prepared_statements")
        .fetch_one(s.pool())
        .await
        .expect("count prepared statements")
        .try_get("n")
        .expect("a count");
    s.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_in_pooler_mode_keeps_no_prepared_statement() {
    let Some(db) = fresh_database(Backend::Postgres).await else {
        return;
    };
    let pooled = with_pooler(&db.url, "transaction");
    assert_eq!(
        statements_left_after_a_payment(&pooled).await,
        0,
        "pooler mode left named statements behind (migrations included)"
    );

    // The same count without pooler mode is not zero: the check above can
    // fail. Only where PostgreSQL is reached directly: a transaction
    // pooler refuses the default mode's connections outright.
    if !db.url.contains("pooler=transaction") {
        let db = fresh_database(Backend::Postgres)
            .await
            .expect("PostgreSQL is there");
        let named = statements_left_after_a_payment(&with_pooler(&db.url, "none")).await;
        assert!(named > 0, "sqlx's default mode should cache statements");
    }
}

#[test]
fn the_pooler_parameter_is_replaced() {
    assert_eq!(
        with_pooler("postgres://h/db?pooler=none&sslmode=disable", "transaction"),
        "postgres://h/db?sslmode=disable&pooler=transaction"
    );
    assert_eq!(
        with_pooler("postgres://h/db", "none"),
        "postgres://h/db?pooler=none"
    );
}
