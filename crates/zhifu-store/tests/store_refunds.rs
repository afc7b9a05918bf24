//! Refund reservation and settlement, concurrent payment updates and re-running
//! migrations, on SQLite and (with `ZHIFU_TEST_DATABASE_URL`) PostgreSQL
//! (split from `store.rs`).

// The test bodies are plain functions instantiated per backend by a macro,
// so clippy's `allow-unwrap-in-tests` does not see them as tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{create, new_order, record, store, update};
use zhifu_store::testing::TestDatabase;
use zhifu_store::*;

zhifu_store::backend_tests!(
    refunds_reserve_and_settle,
    concurrent_payment_updates_apply_once,
    migrations_are_idempotent,
    refund_calls_of_one_order_are_spaced,
);

fn new_refund(o: &Order, amount: i64, key: Option<&str>, n: u32) -> NewRefund {
    NewRefund {
        id: new_id("rf"),
        order_id: o.id.clone(),
        out_request_no: format!("RQ{n}"),
        amount_fen: amount,
        reason: None,
        idempotency_key: key.map(str::to_owned),
        request_hash: None,
        created_at: 10_000 + n as i64,
        lease_until: 10_000 + n as i64,
    }
}

async fn refunds_reserve_and_settle(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    assert!(matches!(
        s.create_refund(new_refund(&o, 100, None, 1)).await.unwrap(),
        CreateRefundOutcome::NotPaid(OrderStatus::Pending)
    ));
    s.apply_trade_update(
        &update(&o, TradeState::Success, None, 2_000),
        &record(&o, 2_000),
    )
    .await
    .unwrap();

    let CreateRefundOutcome::Created(r1) = s
        .create_refund(new_refund(&o, 5_000, Some("k1"), 1))
        .await
        .unwrap()
    else {
        panic!("first refund is created")
    };
    assert_eq!(r1.status, RefundStatus::Pending);
    // Same key: the same refund, nothing reserved twice.
    let CreateRefundOutcome::Existing(again) = s
        .create_refund(new_refund(&o, 5_000, Some("k1"), 2))
        .await
        .unwrap()
    else {
        panic!("same key answers the existing refund")
    };
    assert_eq!(again.id, r1.id);
    // 5000 pending + 4000 > 8888.
    match s
        .create_refund(new_refund(&o, 4_000, None, 3))
        .await
        .unwrap()
    {
        CreateRefundOutcome::ExceedsRemaining { remaining_fen } => assert_eq!(remaining_fen, 3_888),
        other => panic!("expected ExceedsRemaining, got {other:?}"),
    }
    let order = s.get_order(&o.id).await.unwrap().unwrap();
    assert_eq!(order.refund_pending_fen, 5_000);

    let rec = |at| NewNotification {
        id: new_id("ntf"),
        order_id: Some(o.id.clone()),
        out_trade_no: Some(o.out_trade_no.clone()),
        notify_id: None,
        source: UpdateSource::Refund,
        trade_status: None,
        anomaly: Vec::new(),
        payload: None,
        received_at: at,
    };
    let done = s
        .finish_refund(
            &r1.id,
            &RefundResult::Succeeded {
                refund_fee: Some(5_000),
                record: rec(20_000),
            },
        )
        .await
        .unwrap();
    assert_eq!(done.status, RefundStatus::Succeeded);
    // Settling twice is a no-op.
    let twice = s
        .finish_refund(
            &r1.id,
            &RefundResult::Failed {
                code: "X".into(),
                at: 20_001,
            },
        )
        .await
        .unwrap();
    assert_eq!(twice.status, RefundStatus::Succeeded);
    let order = s.get_order(&o.id).await.unwrap().unwrap();
    assert_eq!(order.refunded_fen, 5_000);
    assert_eq!(order.refund_pending_fen, 0);
    assert_eq!(order.status, OrderStatus::Paid);

    // A refused refund frees its reservation.
    let CreateRefundOutcome::Created(r2) = s
        .create_refund(new_refund(&o, 3_888, None, 4))
        .await
        .unwrap()
    else {
        panic!("second refund is created")
    };
    let failed = s
        .finish_refund(
            &r2.id,
            &RefundResult::Failed {
                code: "ACQ.SELLER_BALANCE_NOT_ENOUGH".into(),
                at: 21_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.status, RefundStatus::Failed);
    assert_eq!(
        failed.failure_code.as_deref(),
        Some("ACQ.SELLER_BALANCE_NOT_ENOUGH")
    );
    assert_eq!(
        s.get_order(&o.id)
            .await
            .unwrap()
            .unwrap()
            .refund_pending_fen,
        0
    );

    // The rest, confirmed without a cumulative figure: the sum of confirmed
    // refunds is used, and the order is refunded.
    let CreateRefundOutcome::Created(r3) = s
        .create_refund(new_refund(&o, 3_888, None, 5))
        .await
        .unwrap()
    else {
        panic!("third refund is created")
    };
    s.finish_refund(
        &r3.id,
        &RefundResult::Succeeded {
            refund_fee: None,
            record: rec(22_000),
        },
    )
    .await
    .unwrap();
    let order = s.get_order(&o.id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Refunded);
    assert_eq!(order.refunded_fen, 8_888);
    let types: Vec<EventType> = s
        .list_events(&o.id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            EventType::Paid,
            EventType::PartiallyRefunded,
            EventType::Refunded
        ]
    );
    assert_eq!(s.list_refunds(&o.id).await.unwrap().len(), 3);
}

async fn concurrent_payment_updates_apply_once(db: TestDatabase) {
    let s = Arc::new(store(&db).await);
    let mut orders = Vec::new();
    for i in 0..20 {
        orders.push(create(&s, new_order(i, 1_000 + i as i64)).await);
    }
    let mut tasks = Vec::new();
    for o in &orders {
        for k in 0..5 {
            let s = s.clone();
            let o = o.clone();
            tasks.push(tokio::spawn(async move {
                let u = update(&o, TradeState::Success, None, 2_000 + k);
                s.apply_trade_update(&u, &record(&o, 2_000 + k))
                    .await
                    .expect("apply")
                    .outcome
            }));
        }
    }
    let mut applied = 0;
    for t in tasks {
        if t.await.unwrap() == Outcome::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, orders.len());
    for o in &orders {
        let events = s.list_events(&o.id).await.unwrap();
        assert_eq!(events.len(), 1, "one transition for {}", o.id);
        assert_eq!(s.list_notifications(&o.id).await.unwrap().len(), 5);
        assert_eq!(
            s.get_order(&o.id).await.unwrap().unwrap().status,
            OrderStatus::Paid
        );
    }
}

async fn migrations_are_idempotent(db: TestDatabase) {
    let s = store(&db).await;
    s.migrate().await.unwrap();
    let again = store(&db).await;
    again.ping().await.unwrap();
    assert_eq!(s.backend(), db.backend);
}

/// Refund calls of one order are spaced: the slot is granted to one call at
/// a time, a refused slot says when it frees and moves the refund's lease
/// there, and a settled refund is never granted a call.
async fn refund_calls_of_one_order_are_spaced(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    s.apply_trade_update(
        &update(&o, TradeState::Success, None, 2_000),
        &record(&o, 2_000),
    )
    .await
    .unwrap();
    let mut made = Vec::new();
    for n in 0..2 {
        match s.create_refund(new_refund(&o, 100, None, n)).await.unwrap() {
            CreateRefundOutcome::Created(r) => made.push(r),
            other => panic!("{other:?}"),
        }
    }
    let first = s
        .take_refund_slot(&made[0].id, 20_000, 3_000)
        .await
        .unwrap();
    match first {
        RefundSlot::Granted(r) => assert_eq!(r.gateway_calls, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.take_refund_slot(&made[1].id, 21_000, 3_000)
            .await
            .unwrap(),
        RefundSlot::Wait { until: 23_000 }
    );
    // The waiting refund is not due for a reconcile pass before then.
    let claim = |now| ReconcileClaim {
        now,
        created_before: now,
        lease_until: now + 60_000,
        limit: 10,
    };
    let due = s.claim_reconcile_refunds(&claim(22_000)).await.unwrap();
    assert!(due.iter().all(|r| r.id != made[1].id), "{due:?}");
    match s
        .take_refund_slot(&made[1].id, 23_000, 3_000)
        .await
        .unwrap()
    {
        RefundSlot::Granted(r) => assert_eq!(r.gateway_calls, 1),
        other => panic!("{other:?}"),
    }
    s.finish_refund(
        &made[0].id,
        &RefundResult::Failed {
            code: "ACQ.X".into(),
            at: 24_000,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        s.take_refund_slot(&made[0].id, 90_000, 3_000)
            .await
            .unwrap(),
        RefundSlot::Settled(_)
    ));
}
