//! `zhifu dev`, `zhifu serve`, `zhifu migrate` run as the built binary, in a
//! per-test temporary directory, driven over HTTP like a user with curl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "cli-test-key-0123456789";

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn zhifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    c.env_remove("RUST_LOG")
        .env_remove("ZHIFU_API_KEY")
        .stdin(Stdio::null());
    c
}

/// Starts the command and reads stdout until a line containing `marker`,
/// returning the first `http://…` URL on it.
fn start(mut cmd: Command, marker: &str) -> (Running, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    let mut cmd = zhifu();
    cmd.args(["serve", "--host", "127.0.0.1"])
        .env(
            "ZHIFU_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("ALIPAY_APP_ID", "2021000122671080")
        .env("ALIPAY_APP_PRIVATE_KEY_FILE", &key_file)
        .env("ALIPAY_PUBLIC_KEY", ali.public_key().to_base64())
        .env("ALIPAY_GATEWAY", "http://127.0.0.1:9/gateway.do")
        .env("ZHIFU_PUBLIC_URL", "https://shop.example.com")
        .env("ZHIFU_API_KEY", KEY)
        .env("PORT", "0");
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
