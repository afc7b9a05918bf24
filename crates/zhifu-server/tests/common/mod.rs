//! Test harness: a real server on 127.0.0.1:0 with a fresh database, and
//! either the real sandbox mounted on the same port (as `zhifu dev` does) or
//! a test-held "Alipay" key for hand-signed notifications.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use alipay::Clock;
use alipay::testing::AlipaySigner;
use serde_json::{Value, json};
use time::OffsetDateTime;
use zhifu_sandbox::Sandbox;
use zhifu_sandbox::testing::{self as kit, TestSandbox};
use zhifu_server::{ApiKey, AppState, Settings};
use zhifu_store::testing::TestDatabase;
use zhifu_store::{SqlStore, Store, StoreOptions};

pub const API_KEY: &str = "test-api-key-0123456789";

/// The system clock plus an offset tests can move.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn advance(&self, d: Duration) {
        self.offset_ms
            .fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

pub use zhifu_sandbox::testing::init_logs;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<SqlStore>,
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub sandbox: Option<TestSandbox>,
    /// Signs "Alipay" notifications when there is no sandbox.
    pub alipay_signer: Option<AlipaySigner>,
    pub app_id: String,
    pub seller_id: String,
    _db: Arc<TestDatabase>,
}

pub struct Options {
    pub sandbox: bool,
    pub seller_id: bool,
    pub webhook: Option<zhifu_server::WebhookConfig>,
    pub money: zhifu_server::config::MoneyPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sandbox: true,
            seller_id: true,
            webhook: None,
            // No spacing between refund calls, so that tests about other
            // things can refund twice in a row; the spacing has its own tests.
            money: zhifu_server::config::MoneyPolicy {
                refund_spacing: Duration::ZERO,
                ..Default::default()
            },
        }
    }
}

/// The default app of an end-to-end test: server and sandbox on one port.
pub async fn app(db: TestDatabase) -> TestApp {
    spawn_app(db, Options::default()).await
}

/// A string field of a JSON answer; panics with the answer when absent.
pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} missing in {v}"))
}

/// The buyer's browser opens a page/wap/app URL at the gateway.
pub async fn open_in_browser(app: &TestApp, url: &str) -> reqwest::Response {
    let r = app.http.get(url).send().await.unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "gateway answered {}",
        r.status()
    );
    r
}

/// An order paid on `channel` the way a buyer would, its notification
/// delivered; returns the paid order.
pub async fn pay_and_settle(app: &TestApp, channel: &str) -> Value {
    let order = app.create_order("88.88").await;
    let id = s(&order, "id");
    let mut req = json!({"channel": channel});
    if channel == "jsapi" {
        req["buyer_id"] = json!("2088000000000077");
    }
    let r = app.pay(id, req).await;
    assert_eq!(r.status, 200, "{channel}: {:?}", r.body);
    assert_eq!(r.body["channel"], channel);
    match channel {
        "page" | "wap" => {
            let url = s(&r.body, "url");
            assert!(
                url.starts_with(&format!("{}/gateway.do?", app.base)),
                "{url}"
            );
            assert!(s(&r.body, "form_html").contains("<form"));
            open_in_browser(app, url).await;
        }
        "app" => {
            let os = s(&r.body, "order_string");
            assert!(os.contains("method=alipay.trade.app.pay") && os.contains("sign="));
            open_in_browser(app, &format!("{}/gateway.do?{os}", app.base)).await;
        }
        "qr" => assert!(!s(&r.body, "qr_code").is_empty()),
        "jsapi" => {
            let trade_no = s(&r.body, "trade_no");
            assert_eq!(app.order(id).await["trade_no"], trade_no);
        }
        _ => unreachable!(),
    }
    assert_eq!(app.order(id).await["status"], "pending", "{channel}");
    app.buyer_pays(s(&order, "out_trade_no")).await;
    let paid = app.order(id).await;
    assert_eq!(paid["status"], "paid", "{channel}: {paid}");
    assert_eq!(paid["channel"], channel);
    assert!(paid["trade_no"].is_string());
    paid
}

/// A server (and sandbox) on one fresh port.
pub async fn spawn_app(db: TestDatabase, opts: Options) -> TestApp {
    spawn_on(Arc::new(db), opts, None).await
}

/// A server on the given database; with `shared`, it uses that sandbox's
/// app instead of starting one (several instances, one sandbox).
pub async fn spawn_on(
    db: Arc<TestDatabase>,
    opts: Options,
    shared: Option<&TestSandbox>,
) -> TestApp {
    init_logs();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let store = Arc::new(
        SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(TestClock::default());
    let (sandbox, app_key, app_id, seller_id, alipay_pub, alipay_signer, gateway);
    if let Some(sb) = shared {
        sandbox = None;
        app_key = sb.app_key();
        app_id = sb.app_id.clone();
        seller_id = sb.seller_id.clone();
        alipay_pub = sb.alipay_public_key.clone();
        alipay_signer = None;
        gateway = sb.gateway.clone();
    } else if opts.sandbox {
        // The sandbox mounted on the server's own port, as `zhifu dev` runs.
        let sb = kit::mount_at(&base, kit::explicit_config()).await;
        app_key = sb.app_key();
        app_id = sb.app_id.clone();
        seller_id = sb.seller_id.clone();
        alipay_pub = sb.alipay_public_key.clone();
        alipay_signer = None;
        gateway = sb.gateway.clone();
        sandbox = Some(sb);
    } else {
        let signer = kit::alipay_signer();
        alipay_pub = signer.public_key();
        alipay_signer = Some(signer);
        app_key = kit::app_key();
        app_id = "2021000122671080".into();
        seller_id = "2088102177846880".into();
        // Nothing listens there: these tests never call Alipay.
        gateway = "http://127.0.0.1:9/gateway.do".into();
        sandbox = None;
    }
    let settings = Settings {
        app_id: app_id.clone(),
        app_private_key: app_key,
        alipay_public_key: alipay_pub,
        seller_id: opts.seller_id.then(|| seller_id.clone()),
        gateway,
        public_url: base.clone(),
        api_key: ApiKey::new(API_KEY).unwrap(),
        default_expiry_minutes: 30,
        money: opts.money.clone(),
    };
    let store_dyn: Arc<dyn Store> = store.clone();
    let state = AppState::build(settings, store_dyn, clock.clone(), opts.webhook);
    let mut router = zhifu_server::router(state.clone());
    if let Some(sb) = &sandbox {
        router = router.merge(sb.router());
    }
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    TestApp {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        state,
        clock,
        sandbox,
        alipay_signer,
        app_id,
        seller_id,
        _db: db,
    }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    /// The gateway calls the sandbox answered, oldest first.
    pub fn gateway_calls(
        &self,
        method: Option<&str>,
        out_trade_no: Option<&str>,
    ) -> Vec<zhifu_sandbox::RequestRecord> {
        self.sandbox
            .as_ref()
            .expect("this app has a sandbox")
            .requests(method, out_trade_no)
    }

    /// How many `alipay.trade.refund` calls the sandbox saw for an order.
    pub fn refund_calls(&self, out_trade_no: &str) -> usize {
        self.gateway_calls(Some("alipay.trade.refund"), Some(out_trade_no))
            .len()
    }

    /// Moves our clock past every lease, then runs reconcile passes (rows of
    /// any age) until one changes nothing: what a scheduler would do over
    /// the next minutes.
    pub async fn reconcile_to_rest(&self) -> Vec<zhifu_server::ReconcileReport> {
        let opts = zhifu_server::ReconcileOptions {
            min_age: Duration::ZERO,
            ..Default::default()
        };
        let mut reports = Vec::new();
        for _ in 0..10 {
            let step = opts.lease + Duration::from_secs(1);
            self.clock.advance(step);
            // The sandbox's clock moves with ours, so that what expired
            // for us (and is closed) expired at "Alipay" too.
            if let Some(sb) = &self.sandbox {
                sb.sandbox.advance(step).await.unwrap();
            }
            let r = zhifu_server::jobs::reconcile::run_pass(&self.state, &opts).await;
            let changed = r.changed_anything();
            reports.push(r);
            if !changed {
                break;
            }
        }
        reports
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.api_with(method, path, body, &[]).await
    }

    pub async fn api_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .bearer_auth(API_KEY);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Resp {
            status,
            body,
            headers,
        }
    }

    pub async fn create_order(&self, amount: &str) -> Value {
        let r = self
            .api(
                "POST",
                "/v1/orders",
                Some(json!({"subject": "Ceramic mug 马克杯", "total_amount": amount})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body
    }

    pub async fn order(&self, id: &str) -> Value {
        let r = self.api("GET", &format!("/v1/orders/{id}"), None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    pub async fn pay(&self, id: &str, body: Value) -> Resp {
        self.api("POST", &format!("/v1/orders/{id}/pay"), Some(body))
            .await
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self
            .sandbox
            .as_ref()
            .expect("this app has a sandbox")
            .sandbox
    }

    /// The buyer pays in the sandbox; then every due notification is
    /// delivered and awaited.
    pub async fn buyer_pays(&self, out_trade_no: &str) {
        self.sandbox().pay(None, out_trade_no).await.unwrap();
        self.deliver_due().await;
    }

    pub async fn deliver_due(&self) {
        self.sandbox().advance(Duration::ZERO).await.unwrap();
    }

    pub async fn post_notify(&self, body: &str) -> (u16, String) {
        let r = self
            .http
            .post(self.url("/alipay/notify"))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A trade notification signed with the test's "Alipay" key.
    pub fn signed_notification(&self, fields: &[(&str, &str)]) -> String {
        self.alipay_signer
            .as_ref()
            .expect("no sandbox: the test signs")
            .notification_body(fields)
            .unwrap()
    }
}

/// The fields of a plausible TRADE_SUCCESS notification for an order.
pub fn paid_fields(app: &TestApp, order: &Value, notify_id: &str) -> Vec<(String, String)> {
    vec![
        ("notify_time".into(), "2024-05-01 10:00:00".into()),
        ("notify_type".into(), "trade_status_sync".into()),
        ("notify_id".into(), notify_id.into()),
        ("app_id".into(), app.app_id.clone()),
        ("charset".into(), "utf-8".into()),
        ("version".into(), "1.0".into()),
        (
            "trade_no".into(),
            format!("2024050122001{}", &notify_id.len()),
        ),
        (
            "out_trade_no".into(),
            order["out_trade_no"].as_str().unwrap().into(),
        ),
        ("buyer_id".into(), "2088002222222222".into()),
        ("buyer_logon_id".into(), "buy***@example.com".into()),
        ("seller_id".into(), app.seller_id.clone()),
        ("trade_status".into(), "TRADE_SUCCESS".into()),
        (
            "total_amount".into(),
            order["total_amount"].as_str().unwrap().into(),
        ),
        ("subject".into(), "Ceramic mug 马克杯".into()),
        ("gmt_payment".into(), "2024-05-01 09:59:58".into()),
    ]
}

pub fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, s)| (k.as_str(), s.as_str())).collect()
}

pub fn set(v: &mut Vec<(String, String)>, k: &str, val: &str) {
    if let Some(slot) = v.iter_mut().find(|(key, _)| key == k) {
        slot.1 = val.to_owned();
    } else {
        v.push((k.to_owned(), val.to_owned()));
    }
}

pub const WEBHOOK_SECRET: &str = "whsec_test_secret_0123456789";

/// Webhook settings pointing at `url`.
pub fn webhook_config(url: &str, max_attempts: i64) -> zhifu_server::WebhookConfig {
    zhifu_server::WebhookConfig {
        url: url.to_owned(),
        secret: zhifu_server::WebhookSecret::new(WEBHOOK_SECRET).unwrap(),
        max_attempts,
        timeout: Duration::from_secs(5),
        // Inline, so a test sees the first attempt when the call returns;
        // `webhooks.rs` also checks the after-answer mode.
        delivery: Some(zhifu_server::config::WebhookDelivery::Inline {
            budget: Duration::from_secs(10),
        }),
        inline_budget: Duration::from_secs(1),
    }
}

/// How the test's webhook receiver answers.
#[derive(Debug, Clone)]
pub enum ReceiverMode {
    /// 500 for the first N deliveries, then 200.
    FailFirst(usize),
    /// Never answers; each delivery is reported on the channel.
    Hang(tokio::sync::mpsc::UnboundedSender<String>),
    /// Always 200.
    Accept,
}

/// One delivery the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub answered: u16,
}

/// A merchant's webhook endpoint on 127.0.0.1:0 that records everything.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub mode: Arc<std::sync::Mutex<ReceiverMode>>,
    pub log: Arc<std::sync::Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start(mode: ReceiverMode) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/zhifu", listener.local_addr().unwrap());
        let r = Receiver {
            url,
            mode: Arc::new(std::sync::Mutex::new(mode)),
            log: Arc::new(std::sync::Mutex::new(Vec::new())),
        };
        let state = r.clone();
        let router = axum::Router::new().route(
            "/hooks/zhifu",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let st = state.clone();
                    async move { st.handle(headers, body).await }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        r
    }

    async fn handle(
        &self,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        let h = |k: &str| {
            headers
                .get(k)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let mode = self.mode.lock().unwrap().clone();
        let seen = self.log.lock().unwrap().len();
        let answered = match mode {
            ReceiverMode::FailFirst(n) if seen < n => 500,
            ReceiverMode::Hang(tx) => {
                let _ = tx.send(h("zhifu-event-id"));
                std::future::pending::<()>().await;
                unreachable!()
            }
            _ => 200,
        };
        self.log.lock().unwrap().push(Delivery {
            event_id: h("zhifu-event-id"),
            signature: h("zhifu-signature"),
            body: body.to_vec(),
            answered,
        });
        axum::http::StatusCode::from_u16(answered).unwrap()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }

    pub fn set_mode(&self, mode: ReceiverMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Event ids the receiver accepted (answered 2xx), in order.
    pub fn accepted(&self) -> Vec<String> {
        self.deliveries()
            .into_iter()
            .filter(|d| d.answered == 200)
            .map(|d| d.event_id)
            .collect()
    }
}
