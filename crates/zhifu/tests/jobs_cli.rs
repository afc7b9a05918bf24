//! `zhifu reconcile` and `zhifu webhooks list|resend` run as the built
//! binary against a database the test's backend (in process) wrote, the
//! sandbox playing Alipay with every notification dropped, and a merchant
//! webhook endpoint that fails until told otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use zhifu_sandbox::testing as kit;
use zhifu_sandbox::{Faults, Sandbox};
use zhifu_server::{ApiKey, AppState, Settings};
use zhifu_store::{SqlStore, Store, StoreOptions};

const KEY: &str = "jobs-test-key-0123456789";
const SECRET: &str = "whsec_jobs_test_0123456789";

/// A merchant endpoint on a plain socket: records each body, answers the
/// current status (0: never answers).
struct Hook {
    url: String,
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<(String, String)>>>,
}

fn hook(initial: u16) -> Hook {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(initial));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (st, bs) = (status.clone(), bodies.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let (mut len, mut sig) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if lower.starts_with("zhifu-signature:") {
                    sig = line["zhifu-signature:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            bs.lock()
                .unwrap()
                .push((String::from_utf8(body).unwrap(), sig));
            let code = st.load(Ordering::SeqCst);
            let _ = write!(
                conn,
                "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    Hook {
        url,
        status,
        bodies,
    }
}

fn zhifu(env: &[(&str, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    sandbox: Sandbox,
    store: Arc<dyn Store>,
    http: reqwest::Client,
    base: String,
    db: String,
    env: Vec<(&'static str, String)>,
}

/// The backend (in process) and the sandbox on one port, every notification
/// dropped; `env` configures the CLI for the same database and sandbox.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sb = kit::mount_at(&base, kit::explicit_config()).await;
    sb.sandbox
        .set_faults(Faults {
            drop_rate: 1.0,
            ..Default::default()
        })
        .await;
    let (reg, app_key) = (&sb.app, sb.app_key());
    let db = format!("sqlite://{}/jobs.db", dir.path().display());
    let store = SqlStore::connect_and_migrate(&db, &StoreOptions::default())
        .await
        .unwrap();
    let settings = Settings {
        app_id: reg.app_id.clone(),
        app_private_key: sb.app_key(),
        alipay_public_key: reg.alipay_public_key.clone(),
        seller_id: Some(reg.seller_id.clone()),
        gateway: format!("{base}/gateway.do"),
        public_url: base.clone(),
        api_key: ApiKey::new(KEY).unwrap(),
        default_expiry_minutes: 30,
        money: Default::default(),
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let app = zhifu_server::router(AppState::new(settings, store.clone())).merge(sb.router());
    tokio::spawn(zhifu_server::serve(listener, app, std::future::pending()));
    let env = vec![
        ("ZHIFU_DATABASE_URL", db.clone()),
        ("ALIPAY_APP_ID", reg.app_id.clone()),
        ("ALIPAY_APP_PRIVATE_KEY", app_key.to_pkcs8_pem().unwrap()),
        ("ALIPAY_PUBLIC_KEY", reg.alipay_public_key.to_base64()),
        ("ALIPAY_GATEWAY", format!("{base}/gateway.do")),
        ("ZHIFU_PUBLIC_URL", base.clone()),
        ("ZHIFU_API_KEY", KEY.to_owned()),
    ];
    World {
        _dir: dir,
        sandbox: sb.sandbox,
        store,
        http: reqwest::Client::new(),
        base,
        db,
        env,
    }
}

impl World {
    /// An order paid in the sandbox whose notification was dropped.
    async fn paid_silently(&self) -> String {
        let order: Value = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .bearer_auth(KEY)
            .json(&json!({"subject": "Mug", "total_amount": "7.00"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        let r = self
            .http
            .post(format!("{}/v1/orders/{id}/pay", self.base))
            .bearer_auth(KEY)
            .json(&json!({"channel": "qr"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        self.sandbox
            .pay(None, order["out_trade_no"].as_str().unwrap())
            .await
            .unwrap();
        self.sandbox.advance(Duration::ZERO).await.unwrap();
        assert_eq!(self.status(&id).await, "pending");
        id
    }

    async fn status(&self, id: &str) -> String {
        self.store
            .get_order(id)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str()
            .to_owned()
    }

    fn env_with_hook(&self, url: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env.clone();
        env.push(("ZHIFU_WEBHOOK_URL", url.to_owned()));
        env.push(("ZHIFU_WEBHOOK_SECRET", SECRET.to_owned()));
        env
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_and_webhook_commands() {
    let w = world().await;
    let id = w.paid_silently().await;
    let store = &w.store;
    let db = w.db.clone();
    let hook = hook(500);
    let env = w.env_with_hook(&hook.url);

    // Too young for the default minimum age: nothing is asked.
    let out = zhifu(&env, &["reconcile", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["orders_checked"], 0, "{report}");

    // With no minimum age the pass pays it; the endpoint answers 500.
    let out = zhifu(&env, &["reconcile", "--min-age", "0", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["paid"], json!([id]), "{report}");
    assert_eq!(
        store.get_order(&id).await.unwrap().unwrap().status.as_str(),
        "paid"
    );
    assert_eq!(hook.bodies.lock().unwrap().len(), 1, "tried once at once");

    // `webhooks list` needs only the database.
    let db_only = [("ZHIFU_DATABASE_URL", db.clone())];
    let out = zhifu(
        &db_only,
        &["webhooks", "list", "--state", "pending", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(
        (line["type"].as_str(), line["order_id"].as_str()),
        (Some("order.paid"), Some(id.as_str()))
    );
    assert_eq!(
        (line["attempts"].as_i64(), line["last_error"].as_str()),
        (Some(1), Some("HTTP 500"))
    );
    let evt = line["id"].as_str().unwrap().to_owned();
    let table = zhifu(&db_only, &["webhooks", "list"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains(&evt));
    let bad = zhifu(&db_only, &["webhooks", "list", "--state", "lost"]);
    assert!(!bad.status.success());

    // Still failing: resend says so and exits non-zero.
    let out = zhifu(&env, &["webhooks", "resend", &evt]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 500"));
    // The endpoint recovers: resend delivers, signed with the secret.
    hook.status.store(204, Ordering::SeqCst);
    let out = zhifu(&env, &["webhooks", "resend", &evt]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("delivered"));
    let (body, sig) = hook.bodies.lock().unwrap().last().cloned().unwrap();
    let t: i64 = sig[2..sig.find(',').unwrap()].parse().unwrap();
    zhifu_server::webhook::verify(
        body.as_bytes(),
        &sig,
        SECRET.as_bytes(),
        zhifu_server::webhook::DEFAULT_TOLERANCE,
        t,
    )
    .unwrap();
    let out = zhifu(
        &db_only,
        &["webhooks", "list", "--state", "delivered", "--json"],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&evt));
    // Without a URL there is nowhere to resend to.
    let out = zhifu(&env[..7], &["webhooks", "resend", &evt]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZHIFU_WEBHOOK_URL"));
    // Configuration errors name the variable and exit 2.
    let out = zhifu(&db_only, &["reconcile"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ALIPAY_APP_ID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reconcile_process_loses_nothing() {
    let w = world().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(w.paid_silently().await);
    }
    // The pass claims all four (one batch), commits the first, and hangs in
    // its webhook delivery: SIGKILL there.
    let stuck = hook(0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["reconcile", "--min-age", "0", "--lease", "1"])
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(
            w.env_with_hook(&stuck.url)
                .iter()
                .map(|(k, v)| (*k, v.as_str())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stuck.bodies.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pass never delivered"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut paid = Vec::new();
    for id in &ids {
        if w.status(id).await == "paid" {
            paid.push(id.clone());
        }
    }
    assert_eq!(paid.len(), 1, "killed right after the first commit");
    let first_event = w.store.list_events(&paid[0]).await.unwrap().remove(0);
    assert_eq!(
        first_event.webhook_state.as_str(),
        "pending",
        "not lost: still in the outbox"
    );

    // The killed pass's leases (1 s here) must end before its rows are due
    // again: that wait is the design, not a readiness guess.
    std::thread::sleep(Duration::from_millis(1100));
    let good = hook(204);
    let env = w.env_with_hook(&good.url);
    let out = zhifu(&env, &["reconcile", "--min-age", "0", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["paid"].as_array().unwrap().len(), 3, "{report}");
    for id in &ids {
        assert_eq!(w.status(id).await, "paid");
        assert_eq!(
            w.store.list_events(id).await.unwrap().len(),
            1,
            "one transition for {id}"
        );
    }
    // The first event's attempt was cut short; it is delivered later (here
    // at once, by hand) — and exactly one event per order reaches the merchant.
    let out = zhifu(&env, &["webhooks", "resend", &first_event.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = good
        .bodies
        .lock()
        .unwrap()
        .iter()
        .map(|(b, _)| {
            serde_json::from_str::<Value>(b).unwrap()["data"]["order_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    got.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(got, want);
}
