//! Group commit on a SQLite file: concurrent trade updates share
//! transactions, each still applied exactly once, and one update that fails
//! inside a group does not fail the others.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{create, new_order, record, store, update};
use zhifu_store::testing::fresh_database;
use zhifu_store::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_commit_in_groups_and_a_bad_one_fails_alone() {
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let s = Arc::new(store(&db).await);
    assert_eq!(s.group_commit_stats(), Some(GroupStats::default()));
    let mut orders = Vec::new();
    for i in 0..40 {
        orders.push(create(&s, new_order(i, 1_000)).await);
    }
    // An update naming an order that does not exist fails inside whatever
    // group it lands in.
    let mut ghost = orders[0].clone();
    ghost.id = new_id("ord");
    let run = |rounds: std::ops::Range<i64>, ghosts: bool| {
        let mut tasks = Vec::new();
        for round in rounds {
            for (i, o) in orders.iter().enumerate() {
                let (st, o) = (s.clone(), o.clone());
                tasks.push(tokio::spawn(async move {
                    let at = 2_000 + round;
                    st.apply_trade_update(
                        &update(&o, TradeState::Success, None, at),
                        &record(&o, at),
                    )
                    .await
                    .map(|r| r.outcome)
                }));
                if ghosts && i % 10 == 0 {
                    let (st, g) = (s.clone(), ghost.clone());
                    tasks.push(tokio::spawn(async move {
                        st.apply_trade_update(
                            &update(&g, TradeState::Success, None, 3_000),
                            &record(&g, 3_000),
                        )
                        .await
                        .map(|r| r.outcome)
                    }));
                }
            }
        }
        async move {
            let (mut applied, mut duplicate, mut failed) = (0, 0, 0);
            for t in tasks {
                match t.await.unwrap() {
                    Ok(Outcome::Applied) => applied += 1,
                    Ok(Outcome::Duplicate) => duplicate += 1,
                    Ok(other) => panic!("unexpected {other:?}"),
                    Err(_) => failed += 1,
                }
            }
            (applied, duplicate, failed)
        }
    };
    // Forty first payments at once: applied once each, in shared commits.
    assert_eq!(run(0..1, false).await, (40, 0, 0));
    let stats = s.group_commit_stats().unwrap();
    assert_eq!(stats.updates, 40, "{stats:?}");
    assert!(
        stats.groups < stats.updates,
        "commits were shared: {stats:?}"
    );
    // Redeliveries mixed with updates that fail: the failures fail alone.
    assert_eq!(run(1..3, true).await, (0, 80, 8));
    for o in &orders {
        assert_eq!(
            s.list_events(&o.id).await.unwrap().len(),
            1,
            "one transition"
        );
        assert_eq!(s.list_notifications(&o.id).await.unwrap().len(), 3);
        let got = s.get_order(&o.id).await.unwrap().unwrap();
        assert_eq!(got.status, OrderStatus::Paid);
    }
    assert!(s.get_order(&ghost.id).await.unwrap().is_none());
}
