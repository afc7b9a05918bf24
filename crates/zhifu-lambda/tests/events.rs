//! The Lambda HTTP handler fed recorded-shape events in process (API Gateway
//! REST v1, HTTP API v2, Function URL, ALB; plain and base64 bodies; real
//! notifications signed by the sandbox), and the reconcile handler fed a
//! recorded EventBridge schedule. The request conversion is `lambda_http`'s
//! own (`request::from_str`), the same the binary runs. SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lambda_http::{Context, LambdaEvent};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use zhifu_server::{ApiKey, AppState, ReconcileOptions, Settings};
use zhifu_store::testing::TestDatabase;
use zhifu_store::{SqlStore, Store, StoreOptions};

zhifu_store::backend_tests!(
    every_event_shape_pays_through_a_real_notification,
    auth_and_errors_keep_their_contract,
    a_scheduled_event_runs_a_reconcile_pass,
);

struct Fixture {
    alipay: Alipay,
    state: AppState,
    store: Arc<SqlStore>,
    service:
        tower::util::MapRequest<axum::Router, fn(lambda_http::Request) -> lambda_http::Request>,
    _db: TestDatabase,
}

async fn fixture(db: TestDatabase) -> Fixture {
    init_logs();
    let alipay = alipay().await;
    let store = Arc::new(
        SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let settings = Settings {
        app_id: alipay.app.app_id.clone(),
        app_private_key: alipay::AppPrivateKey::parse(&alipay.app_key.to_pkcs8_pem().unwrap())
            .unwrap(),
        alipay_public_key: alipay.app.alipay_public_key.clone(),
        seller_id: Some(alipay.app.seller_id.clone()),
        gateway: alipay.gateway.clone(),
        public_url: "https://api.example.com".into(),
        api_key: ApiKey::new(API_KEY).unwrap(),
        default_expiry_minutes: 30,
        money: Default::default(),
    };
    let dyn_store: Arc<dyn Store> = store.clone();
    let state = AppState::new(settings, dyn_store);
    let service = zhifu_lambda::http_service(state.clone());
    Fixture {
        alipay,
        state,
        store,
        service,
        _db: db,
    }
}

struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

impl Fixture {
    /// One invocation: the event JSON → `lambda_http`'s request → the
    /// function's service.
    async fn invoke(&self, event: &str) -> Answer {
        let req = lambda_http::request::from_str(event)
            .unwrap_or_else(|e| panic!("lambda_http cannot parse {event}: {e}"));
        let resp = self.service.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Answer {
            status,
            content_type,
            body,
        }
    }

    async fn api(
        &self,
        shape: Shape,
        method: &str,
        path: &str,
        body: Option<Value>,
        b64: bool,
    ) -> Answer {
        let auth = format!("Bearer {API_KEY}");
        let bytes = body.map(|b| b.to_string().into_bytes());
        let mut headers = vec![("authorization", auth.as_str())];
        if bytes.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let ev = shape.event(method, path, &headers, bytes.as_deref(), b64);
        self.invoke(&ev).await
    }

    async fn notify(&self, shape: Shape, body: &str, b64: bool) -> Answer {
        let ev = shape.event(
            "POST",
            "/alipay/notify",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            Some(body.as_bytes()),
            b64,
        );
        self.invoke(&ev).await
    }
}

async fn every_event_shape_pays_through_a_real_notification(db: TestDatabase) {
    let f = fixture(db).await;
    f.alipay.drop_notifications().await;
    for (i, shape) in Shape::ALL.into_iter().enumerate() {
        // Bodies travel plain and base64-encoded, on every shape.
        let b64 = i % 2 == 1;
        let created = f
            .api(
                shape,
                "POST",
                "/v1/orders",
                Some(json!({"subject": "马克杯 Mug", "total_amount": "66.60"})),
                b64,
            )
            .await;
        assert_eq!(created.status, 201, "{shape:?}: {}", created.text());
        let order = created.json();
        let id = order["id"].as_str().unwrap();
        let no = order["out_trade_no"].as_str().unwrap();
        let pay = f
            .api(
                shape,
                "POST",
                &format!("/v1/orders/{id}/pay"),
                Some(json!({"channel": "qr"})),
                !b64,
            )
            .await;
        assert_eq!(pay.status, 200, "{shape:?}: {}", pay.text());
        f.alipay.sandbox.pay(None, no).await.unwrap();
        f.alipay.sandbox.advance(Duration::ZERO).await.unwrap();
        let genuine = f.alipay.notification_body(no).await;

        // A tampered copy first: refused, nothing changes.
        let tampered = genuine.replace("total_amount=66.60", "total_amount=0.01");
        assert_ne!(tampered, genuine);
        let r = f.notify(shape, &tampered, true).await;
        assert_eq!((r.status, r.text().as_str()), (400, "failure"), "{shape:?}");
        let got = f
            .api(shape, "GET", &format!("/v1/orders/{id}"), None, false)
            .await;
        assert_eq!(got.json()["status"], "pending", "{shape:?}");

        // The genuine body, byte for byte: `success`, as text/plain.
        for b64_notify in [true, false] {
            let r = f.notify(shape, &genuine, b64_notify).await;
            assert_eq!(
                (r.status, r.text().as_str()),
                (200, "success"),
                "{shape:?} base64={b64_notify}"
            );
            assert!(
                r.content_type.starts_with("text/plain"),
                "{shape:?}: {}",
                r.content_type
            );
        }
        let got = f
            .api(
                shape,
                "GET",
                &format!("/v1/orders/{id}?refresh=false"),
                None,
                false,
            )
            .await;
        assert_eq!(got.status, 200);
        assert_eq!(got.json()["status"], "paid", "{shape:?}");
        let notes = f.store.list_notifications(id).await.unwrap();
        let outcomes: Vec<&str> = notes.iter().map(|n| n.outcome.as_str()).collect();
        // The tampered copy is recorded apart from the order (a forgery
        // is not its history); the second genuine delivery is a replay,
        // answered from a read without a record.
        assert_eq!(outcomes, ["applied"], "{shape:?}");
        let orphans = f.store.list_orphan_notifications(1).await.unwrap();
        assert_eq!(
            orphans[0].reason.as_deref(),
            Some("bad_signature"),
            "{shape:?}"
        );
        assert_eq!(f.store.list_events(id).await.unwrap().len(), 1);
    }
}

async fn auth_and_errors_keep_their_contract(db: TestDatabase) {
    let f = fixture(db).await;
    for shape in Shape::ALL {
        let ev = shape.event("GET", "/v1/orders", &[], None, false);
        let r = f.invoke(&ev).await;
        assert_eq!(r.status, 401, "{shape:?}");
        assert_eq!(r.json()["error"]["code"], "unauthorized");
        let r = f
            .api(shape, "GET", "/v1/orders?status=nope", None, false)
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (400, Some("invalid_query"))
        );
        let r = f
            .api(
                shape,
                "GET",
                "/v1/orders?status=pending&limit=5",
                None,
                false,
            )
            .await;
        assert_eq!(r.status, 200, "{shape:?}: {}", r.text());
        let ev = shape.event("GET", "/healthz", &[], None, false);
        let r = f.invoke(&ev).await;
        assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
        let r = f
            .api(
                shape,
                "POST",
                "/v1/orders",
                Some(json!({"subject": "x", "total_amount": 1.5})),
                true,
            )
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (400, Some("invalid_amount"))
        );
    }
    let none = f
        .store
        .list_orders(&zhifu_store::OrderQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "refused requests change nothing");
}

async fn a_scheduled_event_runs_a_reconcile_pass(db: TestDatabase) {
    let f = fixture(db).await;
    f.alipay.drop_notifications().await;
    let created = f
        .api(
            Shape::HttpV2,
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Tea", "total_amount": "9.90"})),
            false,
        )
        .await;
    let order = created.json();
    let id = order["id"].as_str().unwrap();
    f.api(
        Shape::HttpV2,
        "POST",
        &format!("/v1/orders/{id}/pay"),
        Some(json!({"channel": "qr"})),
        false,
    )
    .await;
    f.alipay
        .sandbox
        .pay(None, order["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    f.alipay.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(
        f.store
            .get_order(id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "pending"
    );

    let event: Value =
        serde_json::from_str(include_str!("events/eventbridge_schedule.json")).unwrap();
    let mut ctx = Context::default();
    ctx.request_id = "sched-1".into();
    ctx.deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let opts = ReconcileOptions {
        min_age: Duration::ZERO,
        ..Default::default()
    };
    let report = zhifu_lambda::reconcile(&f.state, &opts, LambdaEvent::new(event, ctx))
        .await
        .unwrap();
    assert_eq!(report["paid"], json!([id]), "{report}");
    assert_eq!(report["stopped_at_deadline"], false);
    assert_eq!(
        f.store
            .get_order(id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "paid"
    );
}
