//! Order/update/notification builders shared by the store test binaries (`store`, `store_refunds`).

use zhifu_store::testing::TestDatabase;
use zhifu_store::*;

pub async fn store(db: &TestDatabase) -> SqlStore {
    SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
        .await
        .expect("store opens and migrates")
}

pub fn new_order(n: u32, at: i64) -> NewOrder {
    NewOrder {
        id: new_id("ord"),
        out_trade_no: format!("T{n}_{}", uuid_suffix()),
        subject: "Mug".into(),
        body: None,
        total_fen: 8888,
        metadata: Some(r#"{"sku":"mug"}"#.into()),
        idempotency_key: None,
        request_hash: None,
        created_at: at,
        expires_at: at + 900_000,
    }
}

fn uuid_suffix() -> String {
    new_id("x")[2..14].to_owned()
}

pub async fn create(s: &SqlStore, o: NewOrder) -> Order {
    match s.create_order(o).await.expect("create") {
        CreateOrderOutcome::Created(o) => o,
        CreateOrderOutcome::Existing(_) => panic!("expected a new order"),
    }
}

pub fn update(order: &Order, state: TradeState, refund_fee: Option<i64>, at: i64) -> TradeUpdate {
    TradeUpdate {
        order_id: order.id.clone(),
        source: UpdateSource::Notify,
        notify_id: Some(format!("n-{}", order.id)),
        trade_state: state,
        trade_no: Some(format!("2024{}", &order.id[4..20])),
        buyer_logon_id: Some("b***@example.com".into()),
        buyer_id: Some("2088000000000001".into()),
        paid_at: Some(at),
        refund_fee,
        at,
        late_payment: LatePayment::Refund { lease_until: 0 },
    }
}

pub fn record(order: &Order, at: i64) -> NewNotification {
    NewNotification {
        id: new_id("ntf"),
        order_id: Some(order.id.clone()),
        out_trade_no: Some(order.out_trade_no.clone()),
        notify_id: Some(format!("n-{}", order.id)),
        source: UpdateSource::Notify,
        trade_status: None,
        anomaly: Vec::new(),
        payload: None,
        received_at: at,
    }
}
