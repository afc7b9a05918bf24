//! The README's command-line walk-throughs, run as written: the blocks
//! between the `readme:buyer-curl` and `readme:subscription-curl` markers,
//! with bash and curl, each against a fresh `zhifu dev`. If the README's
//! steps stop working, this fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const KEY: &str = "readme-test-key-0123456789";

/// The shell block of the README between `<!-- readme:{name}:start -->`
/// and its end marker, without its fence.
fn readme_block(name: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find(&format!("<!-- readme:{name}:start -->"))
        .unwrap_or_else(|| panic!("the README marks its {name} block"));
    let end = readme
        .find(&format!("<!-- readme:{name}:end -->"))
        .unwrap_or_else(|| panic!("the README marks the end of its {name} block"));
    let block = &readme[start..end];
    let body = block
        .split_once("```sh\n")
        .expect("a ```sh fence")
        .1
        .rsplit_once("```")
        .expect("a closing fence")
        .0;
    body.to_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh `zhifu dev` on a free port: the process (killed on drop), its
/// data directory, and its base URL.
fn zhifu_dev() -> (Running, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["dev", "--port", "0", "--data"])
        .arg(dir.path().join("data"))
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
    let base = loop {
        let line = lines
            .next()
            .expect("zhifu dev printed its address before exiting")
            .unwrap();
        if line.contains("zhifu dev is running") {
            break line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap()
                .trim_end_matches(['.', ','])
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (running, dir, base)
}

/// Runs `block` as written, with the two values the README says the reader
/// has (the printed key, and where `zhifu dev` runs), under `set -euo
/// pipefail` so that a failing command fails the test; `tail` is appended.
/// Returns its standard output.
fn run_block(block: &str, base: &str, tail: &str) -> String {
    let script = format!("set -euo pipefail\n{block}\n{tail}\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("KEY", KEY)
        .env("Z", base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the README block failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `GET {base}{path}` with the key, as JSON.
fn get(base: &str, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", &format!("{base}{path}")])
        .args(["-H", &format!("Authorization: Bearer {KEY}")])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_readme_curl_payment_works_as_written() {
    assert!(
        have("bash") && have("curl"),
        "the README's block needs bash and curl"
    );
    let block = readme_block("buyer-curl");
    assert!(block.contains("/sandbox/api/trades/pay"), "{block}");
    let (_running, _dir, base) = zhifu_dev();
    let stdout = run_block(&block, &base, "echo\necho \"ORDER_ID=$ID\"");
    assert!(!stdout.contains("trade_not_found"), "{stdout}");
    assert!(stdout.contains("\"status\":\"paid\""), "{stdout}");
    assert!(
        stdout.contains("\"amount\":\"10.00\""),
        "the refund: {stdout}"
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ORDER_ID="))
        .unwrap()
        .trim()
        .to_owned();

    // The order ends paid (partially refunded), as the merchant API says.
    let order = get(&base, &format!("/v1/orders/{id}"));
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(order["refunded_amount"], "10.00", "{order}");
}

#[test]
fn the_readme_curl_subscription_works_as_written() {
    assert!(
        have("bash") && have("curl"),
        "the README's block needs bash and curl"
    );
    let block = readme_block("subscription-curl");
    assert!(block.contains("/v1/subscriptions"), "{block}");
    let (_running, _dir, base) = zhifu_dev();
    let stdout = run_block(&block, &base, "echo\necho \"SUBSCRIPTION_ID=$SID\"");
    assert!(stdout.contains("\"status\":\"active\""), "{stdout}");
    assert!(
        stdout.contains("\"subscription_periods_charged\":1"),
        "{stdout}"
    );
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SUBSCRIPTION_ID="))
        .unwrap()
        .trim()
        .to_owned();
    assert!(id.starts_with("sub_"), "{id}");

    // Signed and charged once, as the merchant API says.
    let sub = get(&base, &format!("/v1/subscriptions/{id}"));
    assert_eq!(sub["status"], "active", "{sub}");
    assert_eq!(sub["periods_charged"], 1, "{sub}");
    assert_eq!(sub["charges"][0]["status"], "paid", "{sub}");
    assert_eq!(sub["charges"][0]["total_amount"], "30.00", "{sub}");
}
