//! `/openapi.json` as the built `zhifu` binary serves it: under `zhifu dev`
//! and under `zhifu serve` with a catalog it covers the checkout API on the
//! same port, under `zhifu serve` without one it does not; in every case
//! each documented operation is routed. (The document's own checks, and
//! answers against their schemas, are in `zhifu-server`'s
//! `tests/openapi.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

const KEY: &str = "cli-openapi-key-0123456789";

fn zhifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    c.env_remove("RUST_LOG")
        .env_remove("ZHIFU_API_KEY")
        .env("ZHIFU_API_KEY", KEY)
        .stdin(Stdio::null());
    c
}

/// Starts the command and returns the first `http://…` URL on the first
/// stdout line containing `marker`.
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
            std::thread::spawn(move || for _ in lines {});
            return (running, url);
        }
    }
}

/// `zhifu serve` on an in-memory database, a gateway nobody answers, port 0.
fn serve(catalog: Option<&std::path::Path>) -> Command {
    let app = alipay::AppPrivateKey::generate().unwrap();
    let ali = alipay::AppPrivateKey::generate().unwrap();
    let mut cmd = zhifu();
    cmd.args(["serve", "--host", "127.0.0.1"])
        .env("ZHIFU_DATABASE_URL", "sqlite::memory:")
        .env("ALIPAY_APP_ID", "2021000122671080")
        .env("ALIPAY_APP_PRIVATE_KEY", app.to_pkcs8_pem().unwrap())
        .env("ALIPAY_PUBLIC_KEY", ali.public_key().to_base64())
        .env("ALIPAY_GATEWAY", "http://127.0.0.1:9/gateway.do")
        .env("ZHIFU_PUBLIC_URL", "https://shop.example.com")
        .env("PORT", "0");
    if let Some(c) = catalog {
        cmd.env("ZHIFU_CATALOG", c);
    }
    cmd
}

/// Fetches the document and calls every documented operation, asserting
/// that the router serves it (no 405, no `not_found` from the fallback).
/// Returns the documented paths.
async fn documented_and_routed(base: &str) -> Vec<String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["webhooks"]["order.paid"]["post"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if item.get(method.to_ascii_lowercase()).is_none() {
                continue;
            }
            let url = format!("{base}{}", path.replace("{id}", "ord_none"));
            let mut req = http.request(method.parse().unwrap(), url).bearer_auth(KEY);
            if method == "POST" {
                req = req.json(&serde_json::json!({}));
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            // Metrics not exposed to this caller answer the fallback's 404
            // on purpose (documented), so that they tell a stranger nothing.
            if path == "/metrics" && status == 404 {
                continue;
            }
            assert!(
                status != 405 && !(status == 404 && body["error"]["code"] == "not_found"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    paths.keys().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_documents_the_checkout_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = zhifu();
    cmd.args(["dev", "--port", "0", "--data"])
        .arg(dir.path().join("data"));
    let (_child, base) = start(cmd, "zhifu dev is running");
    let paths = documented_and_routed(&base).await;
    for p in [
        "/v1/orders",
        "/checkout",
        "/checkout/{id}",
        "/checkout/catalog",
    ] {
        assert!(paths.iter().any(|x| x == p), "{p} missing from {paths:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_documents_the_checkout_only_when_it_serves_it() {
    let (_plain, base) = start(serve(None), "listening on");
    let paths = documented_and_routed(&base).await;
    assert!(paths.iter().any(|p| p == "/v1/orders"));
    assert!(
        !paths.iter().any(|p| p.starts_with("/checkout")),
        "{paths:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "currency = \"CNY\"\n[[product]]\nsku = \"cup\"\nprice = \"12.34\"\nname = { zh = \"杯子\", en = \"Cup\" }\n",
    )
    .unwrap();
    let (_shop, base) = start(serve(Some(&catalog)), "listening on");
    let paths = documented_and_routed(&base).await;
    assert!(paths.iter().any(|p| p == "/checkout"), "{paths:?}");
}
