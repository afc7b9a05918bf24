//! The store's orders and state machine through the database, on SQLite
//! and (with `ZHIFU_TEST_DATABASE_URL`) PostgreSQL; refunds and concurrent
//! updates are in `store_refunds.rs`.

// The test bodies are plain functions instantiated per backend by a macro,
// so clippy's `allow-unwrap-in-tests` does not see them as tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::{create, new_order, record, store, update};
use zhifu_store::testing::TestDatabase;
use zhifu_store::*;

zhifu_store::backend_tests!(
    orders_roundtrip_and_idempotency_key,
    listing_is_newest_first_with_cursor,
    payment_is_applied_once_and_recorded,
    refund_notifications_only_move_forward,
    closed_after_paid_is_an_anomaly,
    a_payment_after_close_is_taken_and_refunded_or_kept,
    trade_no_mismatch_is_an_anomaly,
    keys_differing_only_in_case_are_different_keys,
    a_repeated_update_with_the_same_values_still_counts,
);

async fn orders_roundtrip_and_idempotency_key(db: TestDatabase) {
    let s = store(&db).await;
    s.ping().await.unwrap();
    let mut o = new_order(1, 1_000);
    o.idempotency_key = Some("key-1".into());
    o.request_hash = Some("h1".into());
    let created = create(&s, o.clone()).await;
    assert_eq!(created.status, OrderStatus::Pending);
    assert_eq!(created.total_fen, 8888);
    assert_eq!(created.metadata.as_deref(), Some(r#"{"sku":"mug"}"#));
    assert_eq!(
        s.get_order(&created.id).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        s.get_order_by_out_trade_no(&created.out_trade_no)
            .await
            .unwrap()
            .map(|o| o.id),
        Some(created.id.clone())
    );

    // Same key again (even with another id and number): the first order.
    let mut again = new_order(2, 2_000);
    again.idempotency_key = Some("key-1".into());
    match s.create_order(again).await.unwrap() {
        CreateOrderOutcome::Existing(e) => assert_eq!(e.id, created.id),
        CreateOrderOutcome::Created(_) => panic!("key reuse must not create"),
    }

    // A taken out_trade_no is a conflict and inserts nothing.
    let mut dup = new_order(3, 3_000);
    dup.out_trade_no = created.out_trade_no.clone();
    assert!(matches!(
        s.create_order(dup).await,
        Err(StoreError::Conflict("out_trade_no"))
    ));
    let all = s
        .list_orders(&OrderQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert!(s.get_order("ord_missing").await.unwrap().is_none());
}

async fn listing_is_newest_first_with_cursor(db: TestDatabase) {
    let s = store(&db).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        // Two orders share a timestamp to exercise the id tie-break.
        let at = 10_000 + (i / 2) as i64;
        ids.push(create(&s, new_order(i, at)).await);
    }
    let paid = &ids[1];
    s.apply_trade_update(
        &update(paid, TradeState::Success, None, 20_000),
        &record(paid, 20_000),
    )
    .await
    .unwrap();

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .list_orders(&OrderQuery {
                status: None,
                limit: 2,
                after: after.clone(),
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|o| (o.created_at, o.id.clone()));
        seen.extend(page);
    }
    assert_eq!(seen.len(), 5);
    for w in seen.windows(2) {
        assert!((w[0].created_at, &w[0].id) > (w[1].created_at, &w[1].id));
    }
    let only_paid = s
        .list_orders(&OrderQuery {
            status: Some(OrderStatus::Paid),
            limit: 10,
            after: None,
        })
        .await
        .unwrap();
    assert_eq!(only_paid.len(), 1);
    assert_eq!(only_paid[0].id, paid.id);
    let counts = s.count_orders_by_status().await.unwrap();
    assert!(counts.contains(&(OrderStatus::Pending, 4)));
    assert!(counts.contains(&(OrderStatus::Paid, 1)));
    assert!(counts.contains(&(OrderStatus::Refunded, 0)));
}

async fn payment_is_applied_once_and_recorded(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    let u = update(&o, TradeState::Success, None, 5_000);
    let r1 = s.apply_trade_update(&u, &record(&o, 5_000)).await.unwrap();
    assert_eq!(r1.outcome, Outcome::Applied);
    assert_eq!(r1.events, vec![EventType::Paid]);
    assert_eq!(r1.order.status, OrderStatus::Paid);
    assert_eq!(r1.order.paid_at, Some(5_000));
    assert_eq!(r1.order.trade_no, u.trade_no);
    assert_eq!(r1.order.buyer_logon_id.as_deref(), Some("b***@example.com"));

    let r2 = s.apply_trade_update(&u, &record(&o, 6_000)).await.unwrap();
    assert_eq!(r2.outcome, Outcome::Duplicate);
    assert!(r2.events.is_empty());
    // WAIT_BUYER_PAY never moves a paid order back.
    let wait = update(&o, TradeState::WaitBuyerPay, None, 7_000);
    let r3 = s
        .apply_trade_update(&wait, &record(&o, 7_000))
        .await
        .unwrap();
    assert_eq!(r3.outcome, Outcome::Duplicate);
    assert_eq!(r3.order.status, OrderStatus::Paid);

    let events = s.list_events(&o.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, EventType::Paid);
    assert_eq!(events[0].from_status, OrderStatus::Pending);
    assert_eq!(events[0].to_status, OrderStatus::Paid);
    let notes = s.list_notifications(&o.id).await.unwrap();
    let outcomes: Vec<&str> = notes.iter().map(|n| n.outcome.as_str()).collect();
    assert_eq!(outcomes, ["applied", "duplicate", "duplicate"]);

    // Pending + TRADE_CLOSED closes.
    let o2 = create(&s, new_order(2, 1_000)).await;
    let c = s
        .apply_trade_update(
            &update(&o2, TradeState::Closed, None, 8_000),
            &record(&o2, 8_000),
        )
        .await
        .unwrap();
    assert_eq!(c.events, vec![EventType::Closed]);
    assert_eq!(c.order.status, OrderStatus::Closed);
    assert_eq!(c.order.closed_at, Some(8_000));
}

async fn refund_notifications_only_move_forward(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    let at = 2_000;
    s.apply_trade_update(&update(&o, TradeState::Success, None, at), &record(&o, at))
        .await
        .unwrap();
    let partial = s
        .apply_trade_update(
            &update(&o, TradeState::Success, Some(1_000), 3_000),
            &record(&o, 3_000),
        )
        .await
        .unwrap();
    assert_eq!(partial.events, vec![EventType::PartiallyRefunded]);
    assert_eq!(partial.order.refunded_fen, 1_000);
    assert_eq!(partial.order.status, OrderStatus::Paid);
    // An older redelivery (lower refund_fee) changes nothing.
    let old = s
        .apply_trade_update(
            &update(&o, TradeState::Success, Some(500), 3_500),
            &record(&o, 3_500),
        )
        .await
        .unwrap();
    assert_eq!(old.outcome, Outcome::Duplicate);
    assert_eq!(old.order.refunded_fen, 1_000);
    // More than the total is refused.
    let too_much = s
        .apply_trade_update(
            &update(&o, TradeState::Success, Some(9_999), 3_600),
            &record(&o, 3_600),
        )
        .await
        .unwrap();
    assert_eq!(
        too_much.outcome,
        Outcome::Anomaly(AnomalyReason::RefundExceedsTotal)
    );
    let full = s
        .apply_trade_update(
            &update(&o, TradeState::Closed, Some(8_888), 4_000),
            &record(&o, 4_000),
        )
        .await
        .unwrap();
    assert_eq!(full.events, vec![EventType::Refunded]);
    assert_eq!(full.order.status, OrderStatus::Refunded);
    assert_eq!(full.order.refunded_fen, 8_888);
    let again = s
        .apply_trade_update(
            &update(&o, TradeState::Closed, Some(8_888), 5_000),
            &record(&o, 5_000),
        )
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Duplicate);
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

    // A pending order whose notification was lost sees a full refund first:
    // it goes through paid to refunded, both recorded.
    let o2 = create(&s, new_order(2, 1_000)).await;
    let r = s
        .apply_trade_update(
            &update(&o2, TradeState::Closed, Some(8_888), 6_000),
            &record(&o2, 6_000),
        )
        .await
        .unwrap();
    assert_eq!(r.events, vec![EventType::Paid, EventType::Refunded]);
    assert_eq!(r.order.status, OrderStatus::Refunded);
}

async fn closed_after_paid_is_an_anomaly(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    s.apply_trade_update(
        &update(&o, TradeState::Success, None, 2_000),
        &record(&o, 2_000),
    )
    .await
    .unwrap();
    let r = s
        .apply_trade_update(
            &update(&o, TradeState::Closed, None, 3_000),
            &record(&o, 3_000),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Anomaly(AnomalyReason::ClosedAfterPaid));
    assert_eq!(r.order.status, OrderStatus::Paid);
    let partial_close = s
        .apply_trade_update(
            &update(&o, TradeState::Closed, Some(100), 3_100),
            &record(&o, 3_100),
        )
        .await
        .unwrap();
    // The refund part is real and applied; the close itself is not.
    assert_eq!(partial_close.events, vec![EventType::PartiallyRefunded]);
    assert_eq!(partial_close.order.status, OrderStatus::Paid);
}

/// A payment for an order we closed (or were closing) is taken, flagged,
/// and — under the refund policy — its refund is recorded in the same
/// transaction; under the keep policy the order just stays paid.
async fn a_payment_after_close_is_taken_and_refunded_or_kept(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(2, 1_000)).await;
    s.apply_trade_update(
        &update(&o, TradeState::Closed, None, 2_000),
        &record(&o, 2_000),
    )
    .await
    .unwrap();
    let late = s
        .apply_trade_update(
            &update(&o, TradeState::Success, None, 4_000),
            &record(&o, 4_000),
        )
        .await
        .unwrap();
    assert_eq!(late.outcome, Outcome::Applied);
    assert_eq!(late.events, vec![EventType::PaidAfterClose]);
    assert_eq!(late.order.status, OrderStatus::Paid);
    assert!(late.order.paid_after_close);
    assert_eq!(late.order.refund_pending_fen, late.order.total_fen);
    let refunds = s.list_refunds(&o.id).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].origin, RefundOrigin::PaidAfterClose);
    assert_eq!(refunds[0].amount_fen, o.total_fen);
    assert_eq!(refunds[0].status, RefundStatus::Pending);
    // A redelivery changes nothing and records no second refund.
    let again = s
        .apply_trade_update(
            &update(&o, TradeState::Success, None, 5_000),
            &record(&o, 5_000),
        )
        .await
        .unwrap();
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(s.list_refunds(&o.id).await.unwrap().len(), 1);

    // Closing (not yet final), keep policy: paid and flagged, no refund.
    let k = create(&s, new_order(3, 1_000)).await;
    let closing = s.begin_closing(&k.id, 1_500).await.unwrap();
    assert_eq!(closing.status, OrderStatus::Closing);
    assert!(s.list_events(&k.id).await.unwrap().is_empty());
    let mut u = update(&k, TradeState::Success, None, 4_000);
    u.late_payment = LatePayment::Keep;
    let kept = s.apply_trade_update(&u, &record(&k, 4_000)).await.unwrap();
    assert_eq!(kept.events, vec![EventType::PaidAfterClose]);
    assert_eq!(kept.order.status, OrderStatus::Paid);
    assert!(kept.order.paid_after_close);
    assert_eq!(kept.order.refund_pending_fen, 0);
    assert!(s.list_refunds(&k.id).await.unwrap().is_empty());

    // A closing order that Alipay reports closed becomes closed, with the
    // merchant's event only now.
    let c = create(&s, new_order(4, 1_000)).await;
    s.begin_closing(&c.id, 1_500).await.unwrap();
    let closed = s
        .apply_trade_update(
            &update(&c, TradeState::Closed, None, 6_000),
            &record(&c, 6_000),
        )
        .await
        .unwrap();
    assert_eq!(closed.events, vec![EventType::Closed]);
    assert_eq!(closed.order.status, OrderStatus::Closed);
    let events = s.list_events(&c.id).await.unwrap();
    assert_eq!(events[0].from_status, OrderStatus::Closing);
    // begin_closing leaves anything but a pending order alone.
    assert_eq!(
        s.begin_closing(&c.id, 7_000).await.unwrap().status,
        OrderStatus::Closed
    );
}

async fn trade_no_mismatch_is_an_anomaly(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    s.record_payment_attempt(&o.id, "jsapi", Some("2024KNOWN"), 1_500)
        .await
        .unwrap();
    let got = s.get_order(&o.id).await.unwrap().unwrap();
    assert_eq!(got.channel.as_deref(), Some("jsapi"));
    assert_eq!(got.trade_no.as_deref(), Some("2024KNOWN"));
    let r = s
        .apply_trade_update(
            &update(&o, TradeState::Success, None, 2_000),
            &record(&o, 2_000),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Anomaly(AnomalyReason::TradeNoMismatch));
    assert_eq!(r.order.status, OrderStatus::Pending);
    assert!(s.list_events(&o.id).await.unwrap().is_empty());

    // Orphans: recorded without an order.
    let orphan = NewNotification {
        id: new_id("ntf"),
        order_id: None,
        out_trade_no: Some("NOPE".into()),
        notify_id: Some("n1".into()),
        source: UpdateSource::Notify,
        trade_status: Some("TRADE_SUCCESS".into()),
        anomaly: vec![AnomalyReason::UnknownOrder],
        payload: Some("{}".into()),
        received_at: 3_000,
    };
    s.record_notification(&orphan).await.unwrap();
    let orphans = s.list_orphan_notifications(10).await.unwrap();
    assert_eq!(orphans.len(), 1);
    assert_eq!(orphans[0].reason.as_deref(), Some("unknown_order"));
    assert_eq!(orphans[0].outcome, "anomaly");
}

/// `out_trade_no` and idempotency keys compare byte for byte on every
/// backend: MySQL's default collations ignore case, which would make
/// `abc` a duplicate of `ABC` (the MySQL tables use `utf8mb4_bin`).
async fn keys_differing_only_in_case_are_different_keys(db: TestDatabase) {
    let s = store(&db).await;
    let mut lower = new_order(1, 1_000);
    lower.out_trade_no = format!("case-{}", lower.id);
    lower.idempotency_key = Some(format!("key-{}", lower.id));
    let mut upper = new_order(2, 1_000);
    upper.out_trade_no = lower.out_trade_no.to_uppercase();
    upper.idempotency_key = lower.idempotency_key.as_deref().map(str::to_uppercase);
    let lower = create(&s, lower).await;
    let upper = create(&s, upper).await;
    assert_ne!(lower.id, upper.id);
    let found = s
        .get_order_by_out_trade_no(&upper.out_trade_no)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, upper.id);
}

/// A conditional update that matches its row but changes nothing still
/// reports the row: MySQL counts only changed rows unless the client asks
/// for matched ones (sqlx does), and the store reads that count as "it
/// happened".
async fn a_repeated_update_with_the_same_values_still_counts(db: TestDatabase) {
    let s = store(&db).await;
    let o = create(&s, new_order(1, 1_000)).await;
    assert!(
        s.record_payment_attempt(&o.id, "qr", None, 2_000)
            .await
            .unwrap()
    );
    assert!(
        s.record_payment_attempt(&o.id, "qr", None, 2_000)
            .await
            .unwrap(),
        "the same attempt recorded again matched the pending order"
    );
}
