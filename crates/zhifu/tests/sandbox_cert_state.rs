//! `zhifu sandbox --cert-mode --state DIR` run as the built binary: the
//! certificate authority lives in the state directory, so a restarted
//! sandbox keeps its root (`alipay_root_cert_sn`), its current — rotated —
//! Alipay certificate and the app certificates it issued. A merchant's
//! downloaded files keep working across the restart (checked with
//! `zhifu doctor --online`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use alipay::AppPrivateKey;
use serde_json::{Value, json};

/// Starts the sandbox on `state` and returns what it printed, by label
/// (`Gateway`, `Root cert SN`, …).
fn start(state: &Path, extra: &[&str]) -> (Running, HashMap<String, String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["sandbox", "--port", "0", "--cert-mode", "--state"])
        .arg(state)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut printed = HashMap::new();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("zhifu sandbox printed its certificates before exiting")
            .unwrap();
        if let Some((label, value)) = line.split_once(':') {
            let value = value.split_whitespace().next().unwrap_or("").to_owned();
            printed.insert(label.trim().to_owned(), value);
        }
        if line.starts_with("Certificates:") {
            std::thread::spawn(move || for _ in lines {});
            return (running, printed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_sandbox_keeps_its_authority_and_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let app_key = AppPrivateKey::generate().unwrap();
    let key_path = dir.path().join("app_private_key.pem");
    std::fs::write(&key_path, app_key.to_pkcs8_pem().unwrap()).unwrap();
    let public_path = dir.path().join("app_public_key.pem");
    std::fs::write(&public_path, app_key.public_key().to_pem()).unwrap();
    let http = reqwest::Client::new();

    let (first, before) = start(&state, &["--app-public-key", public_path.to_str().unwrap()]);
    let base = before["Control API"]
        .trim_end_matches("/sandbox/api")
        .to_owned();
    let app_id = before["App"].clone();
    let root_sn = before["Root cert SN"].clone();
    assert_eq!(root_sn.len(), 32, "{before:?}");
    let files_before: Value = http
        .get(format!("{base}/sandbox/api/certs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issued: Value = http
        .post(format!("{base}/sandbox/api/certs/app"))
        .json(&json!({"app_id": app_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_cert = issued["app_cert"].as_str().unwrap().to_owned();
    let rotated: Value = http
        .post(format!("{base}/sandbox/api/certs/rotate"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated_sn = rotated["alipay_cert_sn"].as_str().unwrap().to_owned();
    assert_ne!(rotated_sn, before["Alipay cert SN"]);
    // Killed, not stopped: everything was written when it was answered.
    drop(first);

    let (_second, after) = start(&state, &[]);
    assert_eq!(
        after["Root cert SN"], root_sn,
        "the same root after a restart"
    );
    assert_eq!(
        after["Alipay cert SN"], rotated_sn,
        "the rotated certificate stays current"
    );
    let base = after["Control API"]
        .trim_end_matches("/sandbox/api")
        .to_owned();
    let files_after: Value = http
        .get(format!("{base}/sandbox/api/certs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(files_after["root_cert"], files_before["root_cert"]);
    assert_eq!(files_after["alipay_cert"], rotated["alipay_cert"]);

    // The app certificate issued before the restart is still accepted, and
    // answers verify with the rotated Alipay certificate.
    let write = |name: &str, content: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    };
    let app_crt = write("appCertPublicKey.crt", &app_cert);
    let alipay_crt = write(
        "alipayCertPublicKey_RSA2.crt",
        files_after["alipay_cert"].as_str().unwrap(),
    );
    let root_crt = write(
        "alipayRootCert.crt",
        files_before["root_cert"].as_str().unwrap(),
    );
    let gateway = after["Gateway"].clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_zhifu"))
            .env_clear()
            .args([
                "doctor",
                "--online",
                "--app-id",
                &app_id,
                "--gateway",
                &gateway,
            ])
            .arg("--private-key")
            .arg(&key_path)
            .arg("--app-cert")
            .arg(&app_crt)
            .arg("--alipay-public-cert")
            .arg(&alipay_crt)
            .arg("--alipay-root-cert")
            .arg(&root_crt)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ACQ.TRADE_NOT_EXIST"), "{text}");
}
