//! Eight server instances on one database; 200 orders paid in the sandbox;
//! every sandbox-signed notification delivered five times concurrently
//! across instances → every order paid exactly once, one transition each.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use zhifu_store::testing::TestDatabase;
use zhifu_store::{EventType, OrderStatus, Store};

zhifu_store::backend_tests!(eight_instances_two_hundred_orders_five_deliveries_each);

const INSTANCES: usize = 8;
const ORDERS: usize = 200;
const DELIVERIES: usize = 5;

async fn eight_instances_two_hundred_orders_five_deliveries_each(db: TestDatabase) {
    init_logs();
    // Explicit mode: the sandbox sends nothing by itself; the test delivers
    // its signed notifications.
    let sb = zhifu_sandbox::testing::spawn_explicit().await;

    let db = Arc::new(db);
    let mut apps = Vec::new();
    for _ in 0..INSTANCES {
        apps.push(spawn_on(db.clone(), Options::default(), Some(&sb)).await);
    }

    let mut orders = Vec::new();
    for i in 0..ORDERS {
        let app = &apps[i % INSTANCES];
        let o = app.create_order("19.99").await;
        let id = o["id"].as_str().unwrap().to_owned();
        let r = app.pay(&id, json!({"channel": "qr"})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        sb.sandbox
            .pay(None, o["out_trade_no"].as_str().unwrap())
            .await
            .unwrap();
        orders.push(o);
    }
    let deliveries = sb.sandbox.notifications().await;
    assert_eq!(
        deliveries.len(),
        ORDERS,
        "one pending notification per payment"
    );

    let apps = Arc::new(apps);
    let mut tasks = Vec::new();
    for (n, d) in deliveries.iter().enumerate() {
        for k in 0..DELIVERIES {
            let apps = apps.clone();
            let body = d.body.clone();
            tasks.push(tokio::spawn(async move {
                apps[(n + k) % INSTANCES].post_notify(&body).await
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), (200, "success".to_owned()));
    }

    let store = &apps[0].store;
    for o in &orders {
        let id = o["id"].as_str().unwrap();
        let order = store.get_order(id).await.unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Paid, "{id}");
        let events = store.list_events(id).await.unwrap();
        assert_eq!(events.len(), 1, "{id}: exactly one transition");
        assert_eq!(events[0].event_type, EventType::Paid);
        // One applied record; a delivery that read the order after the
        // payment committed is answered from that read and writes nothing,
        // one that raced it is recorded as a duplicate.
        let notes = store.list_notifications(id).await.unwrap();
        assert!((1..=DELIVERIES).contains(&notes.len()), "{id}: {notes:?}");
        assert_eq!(notes.iter().filter(|n| n.outcome == "applied").count(), 1);
        assert!(
            notes
                .iter()
                .all(|n| n.outcome == "applied" || n.outcome == "duplicate")
        );
    }
    let counts = store.count_orders_by_status().await.unwrap();
    assert!(counts.contains(&(OrderStatus::Paid, ORDERS as i64)));
}
