//! The README's command-line payment, run as written: the block between
//! the `readme:buyer-curl` markers, with bash and curl, against a fresh
//! `zhifu dev`. If the README's steps stop working, this fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const KEY: &str = "readme-test-key-0123456789";

/// The shell block of the README between the markers, without its fence.
fn readme_block() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme
        .find("<!-- readme:buyer-curl:start -->")
        .expect("the README marks its curl block");
    let end = readme
        .find("<!-- readme:buyer-curl:end -->")
        .expect("the README marks the end of its curl block");
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

#[test]
fn the_readme_curl_payment_works_as_written() {
    assert!(
        have("bash") && have("curl"),
        "the README's block needs bash and curl"
    );
    let block = readme_block();
    assert!(block.contains("/sandbox/api/trades/pay"), "{block}");

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
    let _running = Running(child);
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

    // The block as written, with the two values the README says the reader
    // has: the printed key, and where `zhifu dev` runs. `set -e` and
    // `pipefail` so that a failing command fails the test; the last line
    // prints the order's id for the checks below.
    let script = format!("set -euo pipefail\n{block}\necho\necho \"ORDER_ID=$ID\"\n");
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("KEY", KEY)
        .env("Z", &base)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the README block failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let order = Command::new("curl")
        .args(["-s", &format!("{base}/v1/orders/{id}")])
        .args(["-H", &format!("Authorization: Bearer {KEY}")])
        .output()
        .unwrap();
    let order: serde_json::Value = serde_json::from_slice(&order.stdout).unwrap();
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(order["refunded_amount"], "10.00", "{order}");
}
