//! What `zhifu serve` says at start-up (what it runs with, never a
//! secret), the production storefront's branding, and the buyer's
//! `/alipay/return` page, against the built binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Running;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "startup-test-key-0123456789";

#[tokio::test]
async fn serve_logs_its_setup_brands_the_shop_and_styles_the_return_page() {
    let dir = tempfile::tempdir().unwrap();
    let app = alipay::AppPrivateKey::generate().unwrap();
    let ali = alipay::AppPrivateKey::generate().unwrap();
    let pem = app.to_pkcs8_pem().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        "currency = \"CNY\"\n[[product]]\nsku = \"tea\"\nprice = \"30.00\"\nname = { zh = \"茶\", en = \"Tea\" }\n",
    )
    .unwrap();
    let log_path = dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["serve", "--host", "127.0.0.1"])
        .env_clear()
        .env("RUST_LOG", "info")
        .env(
            "ZHIFU_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("ALIPAY_APP_ID", "2021000122671080")
        .env("ALIPAY_APP_PRIVATE_KEY", &pem)
        .env("ALIPAY_PUBLIC_KEY", ali.public_key().to_base64())
        .env("ALIPAY_GATEWAY", "sandbox")
        .env("ZHIFU_PUBLIC_URL", "https://pay.tea.example.com")
        .env("ZHIFU_API_KEY", KEY)
        .env("ZHIFU_CATALOG", &catalog)
        .env("ZHIFU_SHOP_NAME", "Tea House 茶馆")
        .env("ZHIFU_SHOP_TAGLINE", "好茶，好心情")
        .env("PORT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut printed = String::new();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("listening on") {
            break line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap()
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    for expected in [
        "app id 2021000122671080",
        alipay::SANDBOX_GATEWAY,
        "signing mode: public key",
        "https://pay.tea.example.com",
        "database SQLite file",
        "Tea House 茶馆",
    ] {
        assert!(printed.contains(expected), "{expected}: {printed}");
    }
    // The structured log line says the same, for the platform's log service.
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("zhifu serve configuration") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(log.contains("zhifu serve configuration"), "{log}");
    assert!(log.contains("2021000122671080"), "{log}");
    assert!(log.contains("signing_mode"), "{log}");
    // Never a secret: not the API key, not a line of the private key.
    let key_line = pem.lines().nth(2).unwrap();
    for out in [&printed, &log] {
        assert!(!out.contains(KEY), "API key in {out}");
        assert!(!out.contains(key_line), "private key in {out}");
    }

    let http = reqwest::Client::new();
    // The storefront carries the shop's name, not the sandbox demo's.
    let index = http.get(format!("{base}/")).send().await.unwrap();
    let index = index.text().await.unwrap();
    assert!(index.contains("Tea House 茶馆") && index.contains("好茶，好心情"));
    assert!(
        !index.contains("演示") && !index.contains("沙箱"),
        "{index}"
    );

    // The return page: styled for a phone, shows nothing without Alipay's
    // signature, and keeps its parameters to itself.
    let r = http
        .get(format!(
            "{base}/alipay/return?out_trade_no=T1&total_amount=30.00&sign=forged"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"viewport\""), "{html}");
    assert!(
        html.contains("<style>") && html.contains("max-width:420px"),
        "{html}"
    );
    assert!(html.contains("data-status=\"unknown\""), "{html}");
    assert!(html.contains("无法确认支付状态"), "{html}");
    assert!(!html.contains("T1") && !html.contains("30.00"), "{html}");
    assert!(!html.contains("<script"), "{html}");
}
