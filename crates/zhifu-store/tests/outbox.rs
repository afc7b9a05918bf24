//! Reconcile claims (leases, exclusivity under concurrency, expiry) and the
//! webhook outbox (events as outbox rows, retries, give-up, forced resend),
//! on SQLite, PostgreSQL (`ZHIFU_TEST_DATABASE_URL`) and MySQL/MariaDB
//! (`ZHIFU_TEST_MYSQL_URL`).

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use zhifu_store::testing::TestDatabase;
use zhifu_store::*;

zhifu_store::backend_tests!(
    order_claims_are_leased_and_expire,
    concurrent_claimers_never_share_a_row,
    refund_claims_take_only_pending_refunds,
    every_state_change_is_a_pending_outbox_event,
    deliveries_retry_give_up_and_resend,
    concurrent_event_claims_never_share_an_event,
);

async fn store(db: &TestDatabase) -> SqlStore {
    SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
        .await
        .expect("store opens and migrates")
}

async fn order(s: &SqlStore, n: u32, at: i64, expires_at: i64) -> Order {
    let o = NewOrder {
        id: new_id("ord"),
        out_trade_no: format!("C{n}_{}", &new_id("x")[2..14]),
        subject: "Mug".into(),
        body: None,
        total_fen: 1000,
        metadata: None,
        idempotency_key: None,
        request_hash: None,
        created_at: at,
        expires_at,
    };
    match s.create_order(o).await.unwrap() {
        CreateOrderOutcome::Created(o) => o,
        CreateOrderOutcome::Existing(_) => panic!("new order expected"),
    }
}

async fn pay(s: &SqlStore, o: &Order, at: i64) -> ApplyResult {
    let u = TradeUpdate {
        order_id: o.id.clone(),
        source: UpdateSource::Query,
        notify_id: None,
        trade_state: TradeState::Success,
        trade_no: Some(format!("2024{}", &o.id[4..20])),
        buyer_logon_id: None,
        buyer_id: None,
        paid_at: Some(at),
        refund_fee: None,
        at,
        late_payment: LatePayment::Refund { lease_until: 0 },
    };
    let rec = NewNotification {
        id: new_id("ntf"),
        order_id: Some(o.id.clone()),
        out_trade_no: Some(o.out_trade_no.clone()),
        notify_id: None,
        source: UpdateSource::Query,
        trade_status: Some("TRADE_SUCCESS".into()),
        anomaly: Vec::new(),
        payload: None,
        received_at: at,
    };
    s.apply_trade_update(&u, &rec).await.unwrap()
}

fn claim(now: i64, created_before: i64, lease: i64, limit: i64) -> ReconcileClaim {
    ReconcileClaim {
        now,
        created_before,
        lease_until: now + lease,
        limit,
    }
}

fn ids<T>(v: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
    v.iter().map(|x| f(x).to_owned()).collect()
}

async fn order_claims_are_leased_and_expire(db: TestDatabase) {
    let s = store(&db).await;
    let mut old = Vec::new();
    for i in 0..5 {
        old.push(order(&s, i, 1_000 + i as i64, 10_000_000).await);
    }
    let young = order(&s, 10, 50_000, 10_000_000).await;
    let expired_young = order(&s, 11, 50_000, 60_000).await;
    let paid = order(&s, 12, 1_000, 10_000_000).await;
    pay(&s, &paid, 2_000).await;

    // Old enough or past the deadline, pending, oldest first, at most `limit`.
    let first = s
        .claim_reconcile_orders(&claim(100_000, 10_000, 60_000, 3))
        .await
        .unwrap();
    assert_eq!(
        ids(&first, |o| &o.id),
        ids(&old[..3], |o| &o.id),
        "oldest three"
    );
    let second = s
        .claim_reconcile_orders(&claim(100_000, 10_000, 60_000, 10))
        .await
        .unwrap();
    let mut want = ids(&old[3..], |o| &o.id);
    want.push(expired_young.id.clone());
    assert_eq!(
        ids(&second, |o| &o.id),
        want,
        "the rest, and the expired one"
    );
    assert!(!second.iter().any(|o| o.id == young.id || o.id == paid.id));
    // All leased now.
    let none = s
        .claim_reconcile_orders(&claim(159_999, 10_000, 60_000, 10))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    // The lease ends: due again (a pass that died loses nothing).
    let again = s
        .claim_reconcile_orders(&claim(160_000, 10_000, 60_000, 10))
        .await
        .unwrap();
    assert_eq!(again.len(), 6);
    // A claim is not a business change.
    let o = s.get_order(&old[0].id).await.unwrap().unwrap();
    assert_eq!(o.updated_at, old[0].updated_at);
    assert_eq!(o.status, OrderStatus::Pending);
}

async fn concurrent_claimers_never_share_a_row(db: TestDatabase) {
    claimers_never_share_a_row(store(&db).await).await;
}

async fn claimers_never_share_a_row(s: SqlStore) {
    let s = Arc::new(s);
    let mut all = HashSet::new();
    for i in 0..60 {
        all.insert(order(&s, i, 1_000 + i as i64, 10_000_000).await.id);
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = s
                    .claim_reconcile_orders(&claim(100_000, 50_000, 600_000, 4))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|o| o.id));
            }
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap());
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an order was claimed twice");
    assert_eq!(unique, all, "every order was claimed");
}

async fn refund_claims_take_only_pending_refunds(db: TestDatabase) {
    let s = store(&db).await;
    let o = order(&s, 1, 1_000, 10_000_000).await;
    pay(&s, &o, 2_000).await;
    let mut refunds = Vec::new();
    for (i, amount) in [100, 200, 300].into_iter().enumerate() {
        let r = NewRefund {
            id: new_id("rf"),
            order_id: o.id.clone(),
            out_request_no: format!("R{i}"),
            amount_fen: amount,
            reason: None,
            idempotency_key: None,
            request_hash: None,
            created_at: 3_000 + i as i64,
            // The third is still held by its creator at the first claim.
            lease_until: if i == 2 { 150_000 } else { 3_000 + i as i64 },
        };
        match s.create_refund(r).await.unwrap() {
            CreateRefundOutcome::Created(r) => refunds.push(r),
            other => panic!("{other:?}"),
        }
    }
    s.finish_refund(
        &refunds[1].id,
        &RefundResult::Failed {
            code: "ACQ.X".into(),
            at: 4_000,
        },
    )
    .await
    .unwrap();
    let got = s
        .claim_reconcile_refunds(&claim(100_000, 3_001, 60_000, 10))
        .await
        .unwrap();
    // Only pending and not held: refund 0 (refund 1 failed, refund 2 is
    // still leased to its creator).
    assert_eq!(ids(&got, |r| &r.id), vec![refunds[0].id.clone()]);
    assert!(
        s.claim_reconcile_refunds(&claim(100_000, 3_001, 60_000, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let later = s
        .claim_reconcile_refunds(&claim(200_000, 200_000, 60_000, 10))
        .await
        .unwrap();
    assert_eq!(
        ids(&later, |r| &r.id),
        vec![refunds[0].id.clone(), refunds[2].id.clone()]
    );
}

async fn every_state_change_is_a_pending_outbox_event(db: TestDatabase) {
    let s = store(&db).await;
    let o = order(&s, 1, 1_000, 10_000_000).await;
    let applied = pay(&s, &o, 2_000).await;
    assert_eq!(applied.events, vec![EventType::Paid]);
    // A replay writes no second event.
    assert_eq!(pay(&s, &o, 2_500).await.outcome, Outcome::Duplicate);
    let events = s.list_events(&o.id).await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.webhook_state, WebhookState::Pending);
    assert_eq!(e.attempts, 0);
    assert_eq!(e.next_attempt_at, Some(2_000), "due at once");
    assert_eq!(s.get_event(&e.id).await.unwrap().as_ref(), Some(e));
    let listed = s
        .query_events(&EventQuery {
            webhook_state: Some(WebhookState::Pending),
            order_id: Some(o.id.clone()),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed, events);
    assert!(
        s.query_events(&EventQuery {
            webhook_state: Some(WebhookState::Delivered),
            order_id: None,
            limit: 10,
        })
        .await
        .unwrap()
        .is_empty()
    );
}

async fn deliveries_retry_give_up_and_resend(db: TestDatabase) {
    let s = store(&db).await;
    let o = order(&s, 1, 1_000, 10_000_000).await;
    pay(&s, &o, 2_000).await;
    let ev = s.list_events(&o.id).await.unwrap().remove(0);

    // Not due before it exists; due at its creation time.
    assert!(
        s.claim_due_events(1_999, 9_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let got = s.claim_due_events(3_000, 33_000, 10).await.unwrap();
    assert_eq!(ids(&got, |e| &e.id), vec![ev.id.clone()]);
    // Leased: neither the batch claim nor an ordinary single claim takes it.
    assert!(
        s.claim_due_events(3_000, 33_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_event(&ev.id, 3_000, 33_000, false)
            .await
            .unwrap()
            .is_none()
    );

    let fail = |at: i64| NewDeliveryAttempt {
        at,
        http_status: Some(500),
        error: Some("HTTP 500".into()),
        duration_ms: 3,
    };
    let e = s
        .finish_delivery(&ev.id, &fail(3_000), DeliveryNext::RetryAt(10_000))
        .await
        .unwrap();
    assert_eq!(
        (e.webhook_state, e.attempts, e.next_attempt_at),
        (WebhookState::Pending, 1, Some(10_000))
    );
    assert_eq!(e.last_error.as_deref(), Some("HTTP 500"));
    assert!(
        s.claim_due_events(9_999, 40_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.claim_event(&ev.id, 9_999, 40_000, false)
            .await
            .unwrap()
            .is_none(),
        "not due before its retry time"
    );
    let e = s
        .claim_event(&ev.id, 10_000, 40_000, false)
        .await
        .unwrap()
        .expect("due again");
    assert_eq!(e.next_attempt_at, Some(40_000));
    let e = s
        .finish_delivery(&ev.id, &fail(10_000), DeliveryNext::GiveUp)
        .await
        .unwrap();
    assert_eq!(
        (e.webhook_state, e.attempts, e.next_attempt_at),
        (WebhookState::Failed, 2, None)
    );
    assert!(
        s.claim_event(&ev.id, 99_000, 100_000, false)
            .await
            .unwrap()
            .is_none(),
        "given up: only a forced resend takes it"
    );
    assert!(
        s.claim_event("evt_missing", 99_000, 100_000, true)
            .await
            .unwrap()
            .is_none()
    );
    // A forced resend re-arms it with a fresh budget.
    let e = s
        .claim_event(&ev.id, 99_000, 100_000, true)
        .await
        .unwrap()
        .expect("forced");
    assert_eq!((e.webhook_state, e.attempts), (WebhookState::Pending, 0));
    let ok = NewDeliveryAttempt {
        at: 99_500,
        http_status: Some(204),
        error: None,
        duration_ms: 2,
    };
    let e = s
        .finish_delivery(&ev.id, &ok, DeliveryNext::Delivered)
        .await
        .unwrap();
    assert_eq!(
        (
            e.webhook_state,
            e.delivered_at,
            e.next_attempt_at,
            e.last_error
        ),
        (WebhookState::Delivered, Some(99_500), None, None)
    );
    assert!(
        s.claim_due_events(1 << 50, 1 << 51, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.count_events_by_state().await.unwrap(),
        vec![
            (WebhookState::Pending, 0),
            (WebhookState::Delivered, 1),
            (WebhookState::Failed, 0)
        ]
    );
    let attempts = s.list_delivery_attempts(&ev.id).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.http_status))
            .collect::<Vec<_>>(),
        vec![(1, Some(500)), (2, Some(500)), (1, Some(204))]
    );
}

async fn concurrent_event_claims_never_share_an_event(db: TestDatabase) {
    event_claims_never_share_an_event(store(&db).await).await;
}

async fn event_claims_never_share_an_event(s: SqlStore) {
    let s = Arc::new(s);
    let mut all = HashSet::new();
    for i in 0..30 {
        let o = order(&s, i, 1_000, 10_000_000).await;
        pay(&s, &o, 2_000 + i as i64).await;
        all.insert(s.list_events(&o.id).await.unwrap().remove(0).id);
    }
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let s = s.clone();
        let all: Vec<String> = all.iter().cloned().collect();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            // Batch claims and single claims race each other.
            for id in all.iter().take(10) {
                if let Some(e) = s.claim_event(id, 50_000, 90_000, false).await.unwrap() {
                    got.push(e.id);
                }
            }
            loop {
                let batch = s.claim_due_events(50_000, 90_000, 3).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|e| e.id));
            }
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap());
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an event was claimed twice");
    assert_eq!(unique, all);
}

/// Claims on a MySQL-family server without `SKIP LOCKED` (MariaDB before
/// 10.6, TiDB): they wait for each other's rows instead of passing them
/// by, and must stay exclusive. Run on the test server with the clause
/// turned off.
mod waiting_claims {
    mod mysql {
        use zhifu_store::Backend;
        use zhifu_store::testing::fresh_database;

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn claimers_never_share_a_row() {
            let Some(db) = fresh_database(Backend::MySql).await else {
                return;
            };
            let s = super::super::store(&db).await.without_skip_locked();
            super::super::claimers_never_share_a_row(s).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn event_claims_never_share_an_event() {
            let Some(db) = fresh_database(Backend::MySql).await else {
                return;
            };
            let s = super::super::store(&db).await.without_skip_locked();
            super::super::event_claims_never_share_an_event(s).await;
        }
    }
}
