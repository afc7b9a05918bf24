//! Subscriptions through the database, on SQLite, PostgreSQL and MariaDB
//! (when their URLs are set): each step happens once whatever the number of
//! callers — activation, the period's order, the period's count, claims —
//! and each writes its one event.

#![allow(clippy::unwrap_used)]
// `common` is shared with `store` and `store_refunds`, which use the rest.
#![allow(dead_code)]

mod common;

use common::{new_order, store};
use zhifu_store::testing::TestDatabase;
use zhifu_store::*;

zhifu_store::backend_tests!(
    steps_happen_once_with_one_event_each,
    a_charge_that_lands_after_a_cancel_is_still_counted,
    concurrent_claims_never_share_a_subscription,
);

const T0: i64 = 1_800_000_000_000;

fn new_sub(key: Option<&str>) -> NewSubscription {
    let id = new_id("sub");
    NewSubscription {
        external_agreement_no: format!("ZS{}", &id[4..34]),
        id,
        subject: "Pro".into(),
        amount_fen: 3000,
        period_unit: "month".into(),
        period_every: 1,
        first_charge_date: "2027-01-15".into(),
        first_charge_at: T0,
        max_periods: Some(2),
        channel: "page".into(),
        return_url: None,
        metadata: None,
        idempotency_key: key.map(str::to_owned),
        request_hash: key.map(|_| "h".to_owned()),
        created_at: T0 - 1000,
    }
}

async fn created(s: &SqlStore, n: NewSubscription) -> Subscription {
    match s.create_subscription(n).await.unwrap() {
        CreateSubscriptionOutcome::Created(sub) => sub,
        CreateSubscriptionOutcome::Existing(_) => panic!("expected a new subscription"),
    }
}

fn kinds(events: &[SubscriptionEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

async fn steps_happen_once_with_one_event_each(db: TestDatabase) {
    let s = store(&db).await;
    let sub = created(&s, new_sub(Some("k1"))).await;
    assert_eq!(sub.status, SubscriptionStatus::PendingSignature);
    match s.create_subscription(new_sub(Some("k1"))).await.unwrap() {
        CreateSubscriptionOutcome::Existing(e) => assert_eq!(e.id, sub.id),
        CreateSubscriptionOutcome::Created(_) => panic!("the key was used"),
    }
    let mut taken = new_sub(None);
    taken.external_agreement_no = sub.external_agreement_no.clone();
    assert!(matches!(
        s.create_subscription(taken).await,
        Err(StoreError::Conflict(_))
    ));

    // Not active yet: nothing to claim.
    assert!(
        s.claim_due_subscriptions(T0, T0 + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let on = s
        .activate_subscription(&sub.id, "2027A1", Some("2088001"), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (on.status, on.agreement_no.as_deref()),
        (SubscriptionStatus::Active, Some("2027A1"))
    );
    assert!(
        s.activate_subscription(&sub.id, "2027A1", None, T0)
            .await
            .unwrap()
            .is_none()
    );

    // Due at T0, not before; a claim holds it until its lease ends.
    assert!(
        s.claim_due_subscriptions(T0 - 1, T0 + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = s
        .claim_due_subscriptions(T0, T0 + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        s.claim_due_subscriptions(T0 + 1, T0 + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // The period's order: one, however often asked.
    let mut o = new_order(1, T0);
    o.out_trade_no = format!("{}P1", sub.external_agreement_no);
    let first = s.charge_order(&sub.id, 1, o.clone()).await.unwrap();
    let mut again = new_order(1, T0);
    again.out_trade_no = o.out_trade_no.clone();
    let second = s.charge_order(&sub.id, 1, again).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(
        s.subscription_of_order(&first.id).await.unwrap(),
        Some((sub.id.clone(), 1))
    );

    // Counted once.
    let paid = ChargeResult::Paid {
        order_id: first.id.clone(),
        next_charge_at: Some(T0 + 86_400_000),
    };
    let after = s
        .record_charge(&sub.id, 1, &paid, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((after.periods_charged, after.next_period), (1, 2));
    assert_eq!(after.lease_until, None);
    assert!(
        s.record_charge(&sub.id, 1, &paid, T0)
            .await
            .unwrap()
            .is_none()
    );
    // A failure reported late for a period already counted changes nothing.
    let late_failure = ChargeResult::Failed {
        order_id: first.id.clone(),
        retry_at: Some(T0),
        reason: "ACQ.SYSTEM_ERROR".into(),
    };
    assert!(
        s.record_charge(&sub.id, 1, &late_failure, T0)
            .await
            .unwrap()
            .is_none()
    );

    // The last period completes it.
    let mut o2 = new_order(2, T0);
    o2.out_trade_no = format!("{}P2", sub.external_agreement_no);
    let order2 = s.charge_order(&sub.id, 2, o2).await.unwrap();
    let last = ChargeResult::Paid {
        order_id: order2.id.clone(),
        next_charge_at: None,
    };
    let done = s
        .record_charge(&sub.id, 2, &last, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, SubscriptionStatus::Completed);
    assert!(
        s.cancel_subscription(&sub.id, T0).await.unwrap().is_none(),
        "final"
    );
    let charges = s.list_subscription_charges(&sub.id).await.unwrap();
    assert_eq!(charges.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [2, 1]);
    let events = s.list_subscription_events(&sub.id).await.unwrap();
    assert_eq!(
        kinds(&events),
        [
            "subscription.active",
            "subscription.charged",
            "subscription.charged"
        ]
    );
    assert_eq!(events[1].period, Some(1));
    assert_eq!(events[1].order_id.as_deref(), Some(first.id.as_str()));

    // The events are the outbox: claimed once, delivered once.
    let due = s
        .claim_due_subscription_events(T0, T0 + 30_000, 10, Some(&sub.id))
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    assert!(
        s.claim_due_subscription_events(T0, T0 + 30_000, 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    s.finish_subscription_event_delivery(&due[0].id, T0, None, DeliveryNext::Delivered)
        .await
        .unwrap();
    s.finish_subscription_event_delivery(
        &due[1].id,
        T0,
        Some("HTTP 500"),
        DeliveryNext::RetryAt(T0 + 5),
    )
    .await
    .unwrap();
    let again = s
        .claim_due_subscription_events(T0 + 40_000, T0 + 70_000, 10, None)
        .await
        .unwrap();
    let ids: Vec<_> = again.iter().map(|e| e.id.clone()).collect();
    assert!(
        ids.contains(&due[1].id) && ids.contains(&due[2].id),
        "{ids:?}"
    );
    assert!(!ids.contains(&due[0].id), "delivered stays delivered");
    let retried = again.iter().find(|e| e.id == due[1].id).unwrap();
    assert_eq!(
        (retried.attempts, retried.last_error.as_deref()),
        (1, Some("HTTP 500"))
    );
}

async fn a_charge_that_lands_after_a_cancel_is_still_counted(db: TestDatabase) {
    let s = store(&db).await;
    let sub = created(&s, new_sub(None)).await;
    s.activate_subscription(&sub.id, "2027A2", None, T0)
        .await
        .unwrap();
    assert_eq!(
        s.claim_due_subscriptions(T0, T0 + 60_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let mut o = new_order(1, T0);
    o.out_trade_no = format!("{}P1", sub.external_agreement_no);
    let order = s.charge_order(&sub.id, 1, o).await.unwrap();
    // The buyer unsigns while Alipay is taking the period's money.
    s.cancel_subscription(&sub.id, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    let paid = ChargeResult::Paid {
        order_id: order.id.clone(),
        next_charge_at: Some(T0 + 86_400_000),
    };
    let after = s
        .record_charge(&sub.id, 1, &paid, T0 + 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, SubscriptionStatus::Canceled);
    assert_eq!(after.periods_charged, 1);
    assert_eq!(after.next_charge_at, None, "never due again");
    // A refusal after the cancel is not recorded as a failure.
    let refused = ChargeResult::Failed {
        order_id: order.id,
        retry_at: Some(T0),
        reason: "ACQ.AGREEMENT_STATUS_NOT_NORMAL".into(),
    };
    assert!(
        s.record_charge(&sub.id, 2, &refused, T0 + 3)
            .await
            .unwrap()
            .is_none()
    );
    let events = s.list_subscription_events(&sub.id).await.unwrap();
    assert_eq!(
        kinds(&events),
        [
            "subscription.active",
            "subscription.canceled",
            "subscription.charged"
        ]
    );
    assert!(
        s.claim_due_subscriptions(T0 + 10 * 86_400_000, T0 + 11 * 86_400_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_claims_never_share_a_subscription(db: TestDatabase) {
    let s = std::sync::Arc::new(store(&db).await);
    let mut ids = Vec::new();
    for i in 0..12 {
        let sub = created(&s, new_sub(None)).await;
        s.activate_subscription(&sub.id, &format!("2027C{i}"), None, T0)
            .await
            .unwrap();
        ids.push(sub.id);
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.claim_due_subscriptions(T0, T0 + 60_000, 12)
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap().into_iter().map(|x| x.id));
    }
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want, "each subscription claimed exactly once");
}
