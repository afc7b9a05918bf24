//! `zhifu dev --cert-mode` run as the built binary: the whole stack in
//! certificate mode (the sandbox issues the app certificate, every call
//! carries the serial numbers), and a rotation of the sandbox's Alipay
//! certificate that the backend follows without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "cli-test-key-0123456789";

/// Starts `zhifu dev --cert-mode` and returns its base URL.
fn start(data: &std::path::Path) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["dev", "--cert-mode", "--port", "0", "--data"])
        .arg(data)
        .env_remove("RUST_LOG")
        .env("ZHIFU_API_KEY", KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .expect("zhifu dev printed its address before exiting")
            .unwrap();
        seen.push(line.clone());
        if line.contains("Signing") {
            assert!(line.contains("certificates"), "{line}");
            std::thread::spawn(move || for _ in lines {});
            let base = seen
                .iter()
                .find(|l| l.contains("zhifu dev is running"))
                .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
                .expect("the address line")
                .trim_end_matches(['.', ','])
                .to_owned();
            return (running, base);
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

/// An order paid through the cashier's page-pay path; returns its id.
async fn pay_page_order(http: &reqwest::Client, base: &str, amount: &str) -> String {
    let (status, order) = call(
        http,
        "POST",
        &format!("{base}/v1/orders"),
        Some(json!({"subject": "Mug", "total_amount": amount})),
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let (status, pay) = call(
        http,
        "POST",
        &format!("{base}/v1/orders/{id}/pay"),
        Some(json!({"channel": "page"})),
    )
    .await;
    assert_eq!(status, 200, "{pay}");
    // The gateway checks the serial numbers before it opens the cashier.
    let opened = http.get(pay["url"].as_str().unwrap()).send().await.unwrap();
    let to = opened
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        to.contains("/sandbox/cashier/"),
        "{}: {to}",
        opened.status()
    );
    let paid = http
        .post(format!("{base}/sandbox/api/trades/pay"))
        .json(&json!({"out_trade_no": order["out_trade_no"]}))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success(), "{}", paid.text().await.unwrap());
    id
}

async fn wait_paid(http: &reqwest::Client, base: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, o) = call(http, "GET", &format!("{base}/v1/orders/{id}"), None).await;
        if o["status"] == "paid" {
            return;
        }
        assert!(Instant::now() < deadline, "order never became paid: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_in_certificate_mode_and_follows_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_child, base) = start(&data);
    for f in ["alipayCertPublicKey_RSA2.crt", "alipayRootCert.crt"] {
        assert!(data.join("certs").join(f).exists(), "{f}");
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let first = pay_page_order(&http, &base, "20.00").await;
    wait_paid(&http, &base, &first).await;

    let rotated: Value = http
        .post(format!("{base}/sandbox/api/certs/rotate"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(rotated["alipay_cert_sn"].is_string(), "{rotated}");

    // The next order's query answer names the new certificate: downloaded,
    // checked, and the order is paid without a restart.
    let second = pay_page_order(&http, &base, "30.00").await;
    let (status, o) = call(
        &http,
        "GET",
        &format!("{base}/v1/orders/{second}?refresh=true"),
        None,
    )
    .await;
    assert_eq!((status, o["status"].as_str()), (200, Some("paid")), "{o}");
    let (status, refund) = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{first}/refunds"),
        Some(json!({"amount": "20.00"})),
    )
    .await;
    assert_eq!(
        (status, refund["status"].as_str()),
        (201, Some("succeeded")),
        "{refund}"
    );
}
