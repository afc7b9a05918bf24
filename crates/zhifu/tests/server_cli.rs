//! `zhifu dev`, `zhifu serve`, `zhifu migrate` run as the built binary, in a
//! per-test temporary directory, driven over HTTP like a user with curl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "cli-test-key-0123456789";

fn zhifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    c.env_remove("RUST_LOG")
        .env_remove("ZHIFU_API_KEY")
        .stdin(Stdio::null());
    c
}

/// Starts the command and reads stdout until a line containing `marker`,
/// returning the first `http://…` URL on it.
fn start(cmd: Command, marker: &str) -> (Running, String) {
    start_with_stderr(cmd, marker, Stdio::null())
}

/// [`start`] with the command's stderr (its logs) going to `stderr`.
fn start_with_stderr(mut cmd: Command, marker: &str, stderr: Stdio) -> (Running, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the command printed its address before exiting")
            .unwrap();
        if line.contains(marker) {
            let url = line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .expect("a URL on the line")
                .trim_end_matches(['.', ','])
                .to_owned();
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (running, url);
        }
    }
}

/// `zhifu serve` on a SQLite file with the app key in `key_file` and
/// `alipay`'s public key as Alipay's, a gateway nobody answers, port 0.
fn serve_cmd(
    db: &std::path::Path,
    key_file: &std::path::Path,
    alipay: &alipay::AppPrivateKey,
) -> Command {
    let mut cmd = zhifu();
    cmd.args(["serve", "--host", "127.0.0.1"])
        .env("ZHIFU_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("ALIPAY_APP_ID", "2021000122671080")
        .env("ALIPAY_APP_PRIVATE_KEY_FILE", key_file)
        .env("ALIPAY_PUBLIC_KEY", alipay.public_key().to_base64())
        .env("ALIPAY_GATEWAY", "http://127.0.0.1:9/gateway.do")
        .env("ZHIFU_PUBLIC_URL", "https://shop.example.com")
        .env("ZHIFU_API_KEY", KEY)
        .env("PORT", "0");
    cmd
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method.parse().unwrap(), url).bearer_auth(KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_the_whole_flow_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zhifu();
    cmd.args(["dev", "--port", "0", "--data"])
        .arg(dir.path().join("data"))
        .env("ZHIFU_API_KEY", KEY);
    let (_child, base) = start(cmd, "zhifu dev is running");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let (status, order) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders"),
        Some(json!({"subject": "Mug", "total_amount": "88.88"})),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    let (status, pay) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/pay"),
        Some(json!({"channel": "page"})),
    )
    .await;
    assert_eq!(status, 200, "{pay}");
    // The buyer opens the payment URL, then pays in the sandbox.
    let opened = http.get(pay["url"].as_str().unwrap()).send().await.unwrap();
    assert!(opened.status().is_success() || opened.status().is_redirection());
    let paid = http
        .post(format!("{base}/sandbox/api/trades/pay"))
        .json(&json!({"out_trade_no": order["out_trade_no"]}))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success(), "{}", paid.text().await.unwrap());

    // The sandbox delivers the notification on its own schedule (the first
    // attempt is immediate): wait for the event, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, o) = call(&http, "GET", &format!("{base}/v1/orders/{id}"), None).await;
        if o["status"] == "paid" {
            break;
        }
        assert!(Instant::now() < deadline, "order never became paid: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, refund) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/refunds"),
        Some(json!({"amount": "88.88"})),
    )
    .await;
    assert_eq!(
        (status, refund["status"].as_str()),
        (201, Some("succeeded"))
    );
    let (_, o) = call(&http, "GET", &format!("{base}/v1/orders/{id}"), None).await;
    assert_eq!(o["status"], "refunded");
    assert!(dir.path().join("data/zhifu.db").exists());
}

#[test]
fn migrate_applies_and_serve_names_the_missing_variable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let out = zhifu()
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    // Twice is fine.
    let again = zhifu()
        .args(["migrate", "--database-url", &url])
        .output()
        .unwrap();
    assert!(again.status.success());

    let bad = zhifu()
        .args(["migrate", "--database-url", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let out = zhifu().arg("serve").env_clear().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ALIPAY_APP_ID: must be set"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let app = alipay::AppPrivateKey::generate().unwrap();
    let ali = alipay::AppPrivateKey::generate().unwrap();
    let key_file = dir.path().join("app.pem");
    std::fs::write(&key_file, app.to_pkcs8_pem().unwrap()).unwrap();
    let cmd = serve_cmd(&dir.path().join("s.db"), &key_file, &ali);
    let (_child, base) = start(cmd, "listening on");
    let http = reqwest::Client::new();
    let (status, _) = call(&http, "GET", &format!("{base}/healthz"), None).await;
    assert_eq!(status, 200);
    let (status, order) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders"),
        Some(json!({"subject": "Mug", "total_amount": "1.00"})),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let (status, pay) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{}/pay", order["id"].as_str().unwrap()),
        Some(json!({"channel": "page"})),
    )
    .await;
    assert_eq!(status, 200, "{pay}");
    let url = pay["url"].as_str().unwrap();
    assert!(
        url.contains("notify_url=https%3A%2F%2Fshop.example.com%2Falipay%2Fnotify"),
        "{url}"
    );
    // No catalog configured: no public checkout.
    let (status, _) = call(&http, "GET", &format!("{base}/checkout/catalog"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn serve_mounts_the_checkout_when_a_catalog_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let app = alipay::AppPrivateKey::generate().unwrap();
    let ali = alipay::AppPrivateKey::generate().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "currency = \"CNY\"\n[[product]]\nsku = \"cup\"\nprice = \"12.34\"\nname = { zh = \"杯子\", en = \"Cup\" }\n",
    )
    .unwrap();
    let mut cmd = zhifu();
    cmd.args(["serve", "--host", "127.0.0.1"])
        .env("ZHIFU_DATABASE_URL", "sqlite::memory:")
        .env("ALIPAY_APP_ID", "2021000122671080")
        .env("ALIPAY_APP_PRIVATE_KEY", app.to_pkcs8_pem().unwrap())
        .env("ALIPAY_PUBLIC_KEY", ali.public_key().to_base64())
        .env("ALIPAY_GATEWAY", "http://127.0.0.1:9/gateway.do")
        .env("ZHIFU_PUBLIC_URL", "https://shop.example.com")
        .env("ZHIFU_API_KEY", KEY)
        .env("ZHIFU_CATALOG", &catalog)
        .env("PORT", "0");
    let (_child, base) = start(cmd, "listening on");
    let http = reqwest::Client::new();
    let (status, body) = call(&http, "GET", &format!("{base}/checkout/catalog"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("12.34"), "{body}");
    // The price comes from the catalog, never from the browser.
    let (status, body) = call(
        &http,
        "POST",
        &format!("{base}/checkout"),
        Some(json!({"sku": "cup", "quantity": 2, "channel": "page"})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    assert!(body["url"].as_str().unwrap().contains("24.68"), "{body}");
    let (status, _) = call(
        &http,
        "POST",
        &format!("{base}/checkout"),
        Some(json!({"sku": "cup", "quantity": 1, "channel": "page", "total_amount": "0.01"})),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn serve_guards_metrics_and_tags_every_answer_with_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let app = alipay::AppPrivateKey::generate().unwrap();
    let ali = alipay::AppPrivateKey::generate().unwrap();
    let key_file = dir.path().join("app.pem");
    std::fs::write(&key_file, app.to_pkcs8_pem().unwrap()).unwrap();
    let serve = |token: Option<&str>| {
        let mut cmd = serve_cmd(&dir.path().join("m.db"), &key_file, &ali);
        if let Some(t) = token {
            cmd.env("ZHIFU_METRICS_TOKEN", t);
        }
        cmd.env("ZHIFU_LOG_FORMAT", "json");
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        start_with_stderr(cmd, "listening on", Stdio::from(log))
    };
    let http = reqwest::Client::new();

    // Default: no public metrics.
    let (child, base) = serve(None);
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    drop(child);

    let token = "metrics-token-0123456789";
    let (_child, base) = serve(Some(token));
    // Every answer carries a request id: a new one, or the platform's.
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req_"), "{id}");
    let r = http
        .get(format!("{base}/healthz"))
        .header("x-fc-request-id", "fc-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "fc-req-42");
    // Metrics only with the token.
    for auth in [None, Some("Bearer wrong-token-0123456789")] {
        let mut req = http.get(format!("{base}/metrics"));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), 404, "{auth:?}");
    }
    let text = http
        .get(format!("{base}/metrics"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("zhifu_build_info{version=\""), "{text}");
    assert!(
        text.contains(
            "zhifu_http_request_duration_seconds_count{route=\"/healthz\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "zhifu_http_request_duration_seconds_count{route=\"/metrics\",status=\"404\"} 2"
        ),
        "{text}"
    );
    // ZHIFU_LOG_FORMAT=json: one JSON object per line, the request id in
    // the line of each answered request.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let answered: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("every log line is JSON"))
        .filter(|v| v["message"] == "answered")
        .collect();
    assert!(
        answered.iter().any(|v| v["span"]["id"] == "fc-req-42"
            && v["route"] == "/healthz"
            && v["status"] == 200),
        "{log}"
    );
    assert!(!log.contains(token), "the metrics token is never logged");
}

/// Runs `zhifu sandbox trigger …` against `sandbox`; (success, stdout, stderr).
fn trigger(sandbox: &str, args: &[&str]) -> (bool, String, String) {
    let out = zhifu()
        .args(["sandbox", "trigger"])
        .args(args)
        .args(["--sandbox", sandbox])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_follow_a_real_order_through_paid_and_refunds() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zhifu();
    cmd.args(["dev", "--port", "0", "--data"])
        .arg(dir.path().join("data"))
        .env("ZHIFU_API_KEY", KEY);
    let (_child, base) = start(cmd, "zhifu dev is running");
    let http = reqwest::Client::new();
    let (_, order) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders"),
        Some(json!({"subject": "Tea", "total_amount": "10.00"})),
    )
    .await;
    let id = order["id"].as_str().unwrap().to_owned();
    let no = order["out_trade_no"].as_str().unwrap().to_owned();
    let (status, _) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/pay"),
        Some(json!({"channel": "qr"})),
    )
    .await;
    assert_eq!(status, 200);

    // paid: the held QR trade is paid; the notification goes to the
    // order's own notify_url (no --url), and Zhifu answers `success`.
    let (ok, out, err) = trigger(&base, &["paid", "--out-trade-no", &no]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "one line per attempt: {out}");
    assert!(
        out.contains("TRADE_SUCCESS") && out.contains("HTTP 200 \"success\""),
        "{out}"
    );
    let (_, o) = call(&http, "GET", &format!("{base}/v1/orders/{id}"), None).await;
    assert_eq!(o["status"], "paid", "{o}");
    let trade_no = o["trade_no"].as_str().unwrap().to_owned();

    // partial refund of the same trade: same trade number, Zhifu takes it.
    let (ok, out, err) = trigger(
        &base,
        &[
            "partial-refund",
            "--out-trade-no",
            &no,
            "--refund-amount",
            "4.00",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains(&trade_no), "the trade is reused: {out}");
    let (_, o) = call(&http, "GET", &format!("{base}/v1/orders/{id}"), None).await;
    assert_eq!(o["refunded_amount"], "4.00", "{o}");

    // A second partial refund larger than what is left is refused, and
    // nothing changes.
    let (ok, _, err) = trigger(
        &base,
        &[
            "partial-refund",
            "--out-trade-no",
            &no,
            "--refund-amount",
            "7.00",
        ],
    );
    assert!(!ok);
    assert!(err.contains("what is left"), "{err}");

    // closed after paid is not a thing Alipay does: refused with the reason.
    let (ok, _, err) = trigger(&base, &["closed", "--out-trade-no", &no]);
    assert!(!ok);
    assert!(err.contains("full-refund"), "{err}");

    // A duplicate of the paid notification, same trade: answered `success`
    // twice, nothing changes.
    let (ok, out, err) = trigger(&base, &["duplicate", "--out-trade-no", &no]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("HTTP 200 \"success\"").count(), 2, "{out}");
    let (_, events) = call(&http, "GET", &format!("{base}/v1/orders/{id}/events"), None).await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["order.paid", "order.partially_refunded"],
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_public_url_is_what_buyers_and_notifications_use() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let public = format!("http://localhost:{port}");
    let mut cmd = zhifu();
    cmd.args([
        "dev",
        "--port",
        &port.to_string(),
        "--public-url",
        &public,
        "--data",
    ])
    .arg(dir.path().join("data"))
    .env("ZHIFU_API_KEY", KEY);
    let (_child, base) = start(cmd, "zhifu dev is running");
    assert_eq!(base, format!("http://127.0.0.1:{port}"));
    let http = reqwest::Client::new();
    let (_, order) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders"),
        Some(json!({"subject": "Mug", "total_amount": "1.00"})),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    let (_, pay) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/pay"),
        Some(json!({"channel": "wap"})),
    )
    .await;
    let url = pay["url"].as_str().unwrap();
    let enc = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    assert!(
        url.contains(&format!(
            "notify_url={}",
            enc(&format!("{public}/alipay/notify"))
        )),
        "{url}"
    );
    assert!(
        url.contains(&format!("return_url={}", enc(&format!("{public}/")))),
        "{url}"
    );
}

/// A one-request webhook receiver: (port, the request's headers and body).
async fn one_webhook() -> (
    u16,
    tokio::task::JoinHandle<(std::collections::HashMap<String, String>, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut buf = Vec::new();
        let (head, body_start) = loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break (String::from_utf8_lossy(&buf[..i]).into_owned(), i + 4);
            }
        };
        let headers: std::collections::HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers["content-length"].parse().unwrap();
        while buf.len() < body_start + len {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "body cut short");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[body_start..body_start + len]).into_owned();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await
            .unwrap();
        (headers, body)
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_forwards_new_events_signed_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zhifu();
    cmd.args(["dev", "--port", "0", "--data"])
        .arg(dir.path().join("data"))
        .env("ZHIFU_API_KEY", KEY);
    let (_child, base) = start(cmd, "zhifu dev is running");
    let http = reqwest::Client::new();
    let new_paid_order = || async {
        let (_, order) = call(
            &http,
            "POST",
            &format!("{base}/v1/orders"),
            Some(json!({"subject": "Tea", "total_amount": "3.00"})),
        )
        .await;
        let id = order["id"].as_str().unwrap().to_owned();
        call(
            &http,
            "POST",
            &format!("{base}/v1/orders/{id}/pay"),
            Some(json!({"channel": "qr"})),
        )
        .await;
        let paid = http
            .post(format!("{base}/sandbox/api/trades/pay"))
            .json(&json!({"out_trade_no": order["out_trade_no"]}))
            .send()
            .await
            .unwrap();
        assert!(paid.status().is_success());
        id
    };
    // An event from before `listen` starts is history: not forwarded.
    let old = new_paid_order().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(&http, "GET", &format!("{base}/v1/orders/{old}"), None)
        .await
        .1["status"]
        != "paid"
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (port, received) = one_webhook().await;
    let secret = "listen-secret-0123456789";
    let mut listen = zhifu();
    listen
        .args([
            "listen",
            "--forward-to",
            &format!("http://127.0.0.1:{port}/hook"),
        ])
        .args(["--api-url", &base, "--api-key", KEY, "--secret", secret])
        .args(["--interval-ms", "100", "--max-events", "1"]);
    let mut child = listen
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Running(child);
    // Its lines, read on a thread: "Ready…", then one per forwarded event.
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let ready = lines.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(ready.starts_with("Ready"), "{ready}");
    let id = new_paid_order().await;
    let (headers, body) = tokio::time::timeout(Duration::from_secs(20), received)
        .await
        .expect("the event was forwarded")
        .unwrap();
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "order.paid");
    assert_eq!(
        event["data"]["order_id"],
        id.as_str(),
        "the new order, not the old one"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    zhifu_server::webhook::verify(
        body.as_bytes(),
        &headers["zhifu-signature"],
        secret.as_bytes(),
        Duration::from_secs(300),
        now,
    )
    .expect("signed with the listen secret");
    assert_eq!(
        headers["webhook-signature"],
        zhifu_server::webhook::sign_standard(
            event["id"].as_str().unwrap(),
            body.as_bytes(),
            secret.as_bytes(),
            headers["webhook-timestamp"].parse().unwrap()
        )
    );
    let line = lines.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        line.starts_with("order.paid") && line.contains(&id) && line.ends_with("→ 200"),
        "{line}"
    );
    // `--max-events 1`: it exits on its own, successfully, after that line.
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(Instant::now() < deadline, "listen exits after --max-events");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        lines.recv_timeout(Duration::from_millis(200)).is_err(),
        "one line only"
    );
}
