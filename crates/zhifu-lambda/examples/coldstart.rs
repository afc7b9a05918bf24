//! Cold-start measurements for `bench/coldstart.sh` (a benchmark, not a test:
//! it prints figures and checks no speed target).
//!
//! For each database (SQLite always, PostgreSQL when
//! `ZHIFU_TEST_DATABASE_URL` names a server) and each of `--runs` fresh processes of the release `zhifu serve`:
//! process exec → first 200 on `/healthz`, and (another fresh process) exec
//! → first answered (`success`) notification for an unpaid order, signed as
//! Alipay signs it; peak RSS (`VmHWM`) after that. For `zhifu-lambda`: exec →
//! its first poll of a loopback Runtime API (init done), exec → the answer
//! to its first invocation (an HTTP API `GET /healthz`), peak RSS. Binary
//! sizes as built.
//!
//! ```text
//! cargo run --release -p zhifu-lambda --example coldstart -- \
//!     --zhifu target/release/zhifu --lambda target/release/zhifu-lambda [--runs 20]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alipay::AppPrivateKey;
use alipay::testing::AlipaySigner;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;
use zhifu_store::{CreateOrderOutcome, NewOrder, SqlStore, Store, StoreOptions, new_id};

const APP_ID: &str = "2021000122671080";
const SELLER: &str = "2088102177846880";
const KEY: &str = "coldstart-key-0123456789";

struct Args {
    zhifu: PathBuf,
    lambda: PathBuf,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        zhifu: "target/release/zhifu".into(),
        lambda: "target/release/zhifu-lambda".into(),
        runs: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--zhifu" => a.zhifu = v.into(),
            "--lambda" => a.lambda = v.into(),
            "--runs" => a.runs = v.parse().expect("--runs N"),
            _ => panic!("unknown argument {k}"),
        }
    }
    a
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Killed {
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Setup {
    env: Vec<(String, String)>,
    alipay: AlipaySigner,
    store: SqlStore,
    _dir: tempfile::TempDir,
}

async fn setup(db_url: &str, dir: tempfile::TempDir) -> Setup {
    let app = AppPrivateKey::generate().unwrap();
    let alipay = AlipaySigner::generate().unwrap();
    let store = SqlStore::connect_and_migrate(db_url, &StoreOptions::default())
        .await
        .unwrap();
    let env = vec![
        ("ZHIFU_DATABASE_URL", db_url.to_owned()),
        ("ALIPAY_APP_ID", APP_ID.to_owned()),
        ("ALIPAY_APP_PRIVATE_KEY", app.to_pkcs8_pem().unwrap()),
        ("ALIPAY_PUBLIC_KEY", alipay.public_key().to_base64()),
        ("ALIPAY_SELLER_ID", SELLER.to_owned()),
        // Never called: a notification needs no outbound call.
        ("ALIPAY_GATEWAY", "http://127.0.0.1:9/gateway.do".to_owned()),
        ("ZHIFU_PUBLIC_URL", "https://shop.example.com".to_owned()),
        ("ZHIFU_API_KEY", KEY.to_owned()),
        ("ZHIFU_AUTO_MIGRATE", "false".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Setup {
        env,
        alipay,
        store,
        _dir: dir,
    }
}

impl Setup {
    /// A fresh unpaid order and the signed notification that pays it.
    async fn order_and_notification(&self) -> String {
        let now = time_ms();
        let o = NewOrder {
            id: new_id("ord"),
            out_trade_no: format!("CS{}", &new_id("x")[2..26]),
            subject: "Mug".into(),
            body: None,
            total_fen: 8888,
            metadata: None,
            idempotency_key: None,
            request_hash: None,
            created_at: now,
            expires_at: now + 1_800_000,
        };
        let CreateOrderOutcome::Created(o) = self.store.create_order(o).await.unwrap() else {
            panic!("new order expected")
        };
        let fields = [
            ("notify_time", "2026-11-25 10:00:00"),
            ("notify_type", "trade_status_sync"),
            ("notify_id", &new_id("n")),
            ("app_id", APP_ID),
            ("charset", "utf-8"),
            ("version", "1.0"),
            ("trade_no", "2026112522001400000000000001"),
            ("out_trade_no", &o.out_trade_no),
            ("buyer_id", "2088002222222222"),
            ("seller_id", SELLER),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", "88.88"),
            ("gmt_payment", "2026-11-25 09:59:58"),
        ];
        self.alipay.notification_body(&fields).unwrap()
    }

    fn spawn_serve(&self, bin: &PathBuf, port: u16) -> (Killed, Instant) {
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(["--host", "127.0.0.1"])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = Instant::now();
        (Killed(cmd.spawn().unwrap()), t0)
    }
}

fn time_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Retries until the server accepts the connection, then returns the answer.
async fn first_answer(req: impl Fn() -> reqwest::RequestBuilder) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match req().send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                return (s, r.text().await.unwrap());
            }
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Err(e) => panic!("no answer: {e}"),
        }
    }
}

fn stats(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    format!("{:.1} / {:.1} / {:.1}", p(0.5), p(0.9), v[v.len() - 1])
}

async fn bench_serve(name: &str, a: &Args, s: &Setup) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (mut health, mut notify, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs {
        let port = free_port();
        let (_p, t0) = s.spawn_serve(&a.zhifu, port);
        let url = format!("http://127.0.0.1:{port}/healthz");
        let (status, _) = first_answer(|| http.get(&url)).await;
        assert_eq!(status, 200);
        health.push(t0.elapsed().as_secs_f64() * 1e3);

        let body = s.order_and_notification().await;
        let port = free_port();
        let (p, t0) = s.spawn_serve(&a.zhifu, port);
        let url = format!("http://127.0.0.1:{port}/alipay/notify");
        let (status, text) = first_answer(|| {
            http.post(&url)
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(body.clone())
        })
        .await;
        assert_eq!((status, text.as_str()), (200, "success"));
        notify.push(t0.elapsed().as_secs_f64() * 1e3);
        rss.push(p.peak_rss_kib() as f64 / 1024.0);
    }
    println!(
        "| `zhifu serve`, {name}: exec → first 200 `/healthz` (ms) | {} |",
        stats(health)
    );
    println!(
        "| `zhifu serve`, {name}: exec → first `success` notify (ms) | {} |",
        stats(notify)
    );
    println!(
        "| `zhifu serve`, {name}: peak RSS after the notify (MiB) | {} |",
        stats(rss)
    );
}

/// A Runtime API that records when the function first polls and answers one
/// invocation.
#[derive(Clone, Default)]
struct Rt {
    first_poll: Arc<Mutex<Option<Instant>>>,
    served: Arc<Mutex<bool>>,
    answered: Arc<tokio::sync::Notify>,
    answer_at: Arc<Mutex<Option<Instant>>>,
}

async fn rt_next(State(rt): State<Rt>) -> axum::response::Response {
    rt.first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let first = !std::mem::replace(&mut *rt.served.lock().unwrap(), true);
    if !first {
        std::future::pending::<()>().await;
    }
    let deadline = (time_ms() + 30_000).to_string();
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
        "headers": {"host": "bench.example.com"},
        "requestContext": {"accountId": "1", "apiId": "b", "domainName": "bench.example.com", "domainPrefix": "bench",
            "http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "r", "routeKey": "$default", "stage": "$default", "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 0},
        "isBase64Encoded": false
    });
    (
        [
            ("lambda-runtime-aws-request-id", "bench-1".to_owned()),
            ("lambda-runtime-deadline-ms", deadline),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:1:function:bench".to_owned(),
            ),
        ],
        event.to_string(),
    )
        .into_response()
}

async fn rt_response(State(rt): State<Rt>, Path(_id): Path<String>, body: Bytes) -> StatusCode {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["statusCode"], 200, "{v}");
    *rt.answer_at.lock().unwrap() = Some(Instant::now());
    rt.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn bench_lambda(name: &str, a: &Args, s: &Setup) {
    let (mut init, mut first, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..a.runs {
        let rt = Rt::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(rt_next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(rt_response),
            )
            .with_state(rt.clone());
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let mut cmd = Command::new(&a.lambda);
        cmd.env_clear()
            .envs(s.env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", &addr)
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "s")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "g")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let t0 = Instant::now();
        let p = Killed(cmd.spawn().unwrap());
        tokio::time::timeout(Duration::from_secs(30), rt.answered.notified())
            .await
            .expect("the function answered");
        let polled = rt.first_poll.lock().unwrap().unwrap();
        let answered = rt.answer_at.lock().unwrap().unwrap();
        init.push((polled - t0).as_secs_f64() * 1e3);
        first.push((answered - t0).as_secs_f64() * 1e3);
        rss.push(p.peak_rss_kib() as f64 / 1024.0);
        drop(p);
        server.abort();
    }
    println!(
        "| `zhifu-lambda`, {name}: exec → init done (first Runtime API poll) (ms) | {} |",
        stats(init)
    );
    println!(
        "| `zhifu-lambda`, {name}: exec → first answered invocation (`GET /healthz`) (ms) | {} |",
        stats(first)
    );
    println!(
        "| `zhifu-lambda`, {name}: peak RSS (MiB) | {} |",
        stats(rss)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    for (label, path) in [("zhifu", &a.zhifu), ("zhifu-lambda", &a.lambda)] {
        let len = std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        println!(
            "| binary size, `{label}` (MiB) | {:.1} |",
            len as f64 / 1_048_576.0
        );
    }
    println!(
        "| measurement ({} fresh processes each) | median / p90 / max |",
        a.runs
    );
    println!("|---|---|");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let sqlite = setup(&url, dir).await;
    bench_serve("SQLite", &a, &sqlite).await;
    bench_lambda("SQLite", &a, &sqlite).await;
    // PostgreSQL when `ZHIFU_TEST_DATABASE_URL` names a server: a fresh
    // database there, as the tests make them.
    if let Some(db) = zhifu_store::testing::fresh_database(zhifu_store::Backend::Postgres).await {
        let pg = setup(&db.url, tempfile::tempdir().unwrap()).await;
        bench_serve("PostgreSQL", &a, &pg).await;
        bench_lambda("PostgreSQL", &a, &pg).await;
    }
}
