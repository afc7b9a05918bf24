//! The activity log as a user sees it: `zhifu dev --log-requests` and
//! `zhifu logs tail`, run as the built binaries against a payment and a
//! refund driven through the sandbox, with a real webhook endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "logs-test-api-key-0123456789";
const WEBHOOK_SECRET: &str = "logs-test-webhook-secret-0123456789";
/// A token the merchant put in the webhook URL's query: a secret too.
const URL_TOKEN: &str = "hooktoken987654321";

fn zhifu() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
    c.env_remove("RUST_LOG")
        .env_remove("ZHIFU_API_KEY")
        .env_remove("ZHIFU_WEBHOOK_SECRET")
        .env_remove("ZHIFU_WEBHOOK_SECRET_FILE")
        .stdin(Stdio::null());
    c
}

/// Spawns `cmd` with its stdout read on a thread, line by line.
fn spawn_lines(mut cmd: Command) -> (Running, Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (Running(child), rx)
}

/// Reads lines until one satisfies `done` (bounded), returning all read.
fn read_until(rx: &Receiver<String>, into: &mut Vec<String>, done: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(into) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => into.push(l),
            Err(_) => panic!("timed out; lines so far:\n{}", into.join("\n")),
        }
    }
}

/// A webhook endpoint that answers 200 to every delivery.
async fn webhook_endpoint() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize = text[..i]
                            .lines()
                            .filter_map(|l| l.split_once(':'))
                            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break;
                        }
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    port
}

async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    let mut req = http.request(method.parse().unwrap(), url).bearer_auth(KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// The index of the first line containing every one of `parts`.
fn position(lines: &[String], parts: &[&str]) -> Option<usize> {
    lines
        .iter()
        .position(|l| parts.iter().all(|p| l.contains(p)))
}

/// Every secret of the run: none may appear in an activity line.
fn assert_no_secret(lines: &[String], private_key_pem: &str) {
    let key_lines: Vec<&str> = private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 20)
        .collect();
    assert!(!key_lines.is_empty());
    for l in lines {
        for secret in [KEY, WEBHOOK_SECRET, URL_TOKEN] {
            assert!(!l.contains(secret), "a secret in: {l}");
        }
        for k in &key_lines {
            assert!(!l.contains(k), "private key material in: {l}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_log_requests_and_logs_tail_show_a_payment_and_a_refund() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hook_port = webhook_endpoint().await;
    let mut dev = zhifu();
    dev.args(["dev", "--port", "0", "--log-requests", "--data"])
        .arg(&data)
        .args([
            "--webhook-url",
            &format!("http://127.0.0.1:{hook_port}/hook?token={URL_TOKEN}"),
        ])
        .env("ZHIFU_API_KEY", KEY)
        .env("ZHIFU_WEBHOOK_SECRET", WEBHOOK_SECRET);
    let (_dev, dev_lines) = spawn_lines(dev);
    // The banner (which shows the API key: it is this machine's), then the
    // activity lines.
    let mut banner = Vec::new();
    read_until(&dev_lines, &mut banner, |b| {
        b.last().is_some_and(|l| l.contains("Stop with Ctrl-C"))
    });
    let base = banner
        .iter()
        .find(|l| l.contains("zhifu dev is running"))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
        .unwrap()
        .to_owned();

    // `logs tail` from before anything happens: it prints what comes.
    let mut tail = zhifu();
    tail.args(["logs", "tail", "--url", &base, "--api-key", KEY])
        .args(["--history", "0", "--interval-ms", "100"]);
    let (_tail, tail_lines) = spawn_lines(tail);
    std::thread::sleep(Duration::from_millis(500));

    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/orders"))
        .bearer_auth(KEY)
        .json(&json!({"subject": "Mug", "total_amount": "88.88"}))
        .send()
        .await
        .unwrap();
    let request_id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let order: Value = created.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    let out_trade_no = order["out_trade_no"].as_str().unwrap().to_owned();
    call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/pay"),
        Some(json!({"channel": "qr"})),
    )
    .await;
    let paid = http
        .post(format!("{base}/sandbox/api/trades/pay"))
        .json(&json!({"out_trade_no": out_trade_no}))
        .send()
        .await
        .unwrap();
    assert!(paid.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while call(&http, "GET", &format!("{base}/v1/orders/{id}"), None).await["status"] != "paid" {
        assert!(Instant::now() < deadline, "order never became paid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refund = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/refunds"),
        Some(json!({"amount": "88.88"})),
    )
    .await;
    assert_eq!(refund["status"], "succeeded", "{refund}");

    // A forgery: refused, and said so.
    let forged = http
        .post(format!("{base}/alipay/notify"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "out_trade_no={out_trade_no}&trade_status=TRADE_SUCCESS&notify_id=forged1\
             &app_id=2021000000000001&sign_type=RSA2&sign=AAAA"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.text().await.unwrap(), "failure");
    let forged_line = ["notification", "refused (bad_signature)", "→ failure"];

    let private_key = std::fs::read_to_string(data.join("app_private_key.pem")).unwrap();
    let notified = ["notification", &out_trade_no, "verified", "→ success"];
    let refund_call = ["gateway", "alipay.trade.refund", &out_trade_no, "→ 10000"];
    let refunded_hook = ["webhook", "order.refunded", "→ http://127.0.0.1", "200"];

    // Live, from inside `zhifu dev`.
    let mut live = Vec::new();
    read_until(&dev_lines, &mut live, |l| {
        position(l, &refunded_hook).is_some() && position(l, &forged_line).is_some()
    });
    let created_line = position(&live, &["api", "POST /v1/orders", "→ 201", &request_id])
        .unwrap_or_else(|| panic!("the create request's line:\n{}", live.join("\n")));
    let n = position(&live, &notified).expect("the notification line");
    let paid_hook = position(&live, &["webhook", "order.paid", "200", "attempt 1"])
        .expect("the order.paid webhook line");
    let g = position(&live, &refund_call).expect("the refund's gateway line");
    let w = position(&live, &refunded_hook).unwrap();
    assert!(
        created_line < n && n < paid_hook && paid_hook < g && g < w,
        "in the order they happened:\n{}",
        live.join("\n")
    );
    assert!(live[w].contains("/hook"), "{}", live[w]);
    assert!(live[g].contains("ms"), "the call's duration: {}", live[g]);
    // A line caused by a request names it: the notification's is the
    // sandbox's POST, the refund call's is the merchant's refund request.
    assert!(live[n].contains("  req_"), "{}", live[n]);
    assert!(live[g].contains("  req_"), "{}", live[g]);
    assert!(
        !live.iter().any(|l| l.contains("/v1/activity")),
        "the tail's own polling is not shown:\n{}",
        live.join("\n")
    );
    assert_no_secret(&live, &private_key);

    // Polled, through `GET /v1/activity`.
    let mut polled = Vec::new();
    read_until(&tail_lines, &mut polled, |l| {
        position(l, &refunded_hook).is_some() && position(l, &forged_line).is_some()
    });
    let o = position(&polled, &["order", "created", &id]).expect("the order line");
    let n = position(&polled, &notified).expect("the notification line");
    let g = position(&polled, &refund_call).expect("the refund's gateway line");
    let w = position(&polled, &refunded_hook).unwrap();
    assert!(
        o < n && n < g && g < w,
        "in the order they happened:\n{}",
        polled.join("\n")
    );
    assert_no_secret(&polled, &private_key);
    assert_eq!(
        polled
            .iter()
            .filter(|l| l.contains("alipay.trade.refund"))
            .count(),
        1,
        "one line per refund call:\n{}",
        polled.join("\n")
    );
    // Each entry once: the cursor never lets a line repeat.
    let mut unique = polled.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), polled.len(), "{}", polled.join("\n"));

    // `--json --max-lines`: the latest entries as JSON lines, then exit.
    let out = zhifu()
        .args(["logs", "tail", "--url", &base, "--api-key", KEY])
        .args(["--history", "3", "--max-lines", "3", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 3, "{text}");
    assert!(
        entries
            .windows(2)
            .all(|p| p[0]["at_ms"].as_i64() <= p[1]["at_ms"].as_i64()),
        "oldest first: {text}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "webhook" && e["event_type"] == "order.refunded"),
        "{text}"
    );
    assert_no_secret(
        &text.lines().map(str::to_owned).collect::<Vec<_>>(),
        &private_key,
    );

    // The feed is the merchant API's: no key, no feed.
    let refused = http
        .get(format!("{base}/v1/activity"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}
