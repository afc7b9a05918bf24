//! Our own vectors: one directory per case under `vectors/zhifu/`, holding
//! the input (`input.json`) and every intermediate stage (sign content,
//! signature, wire forms) as separate files, so a failure names the stage
//! that broke. Regenerate deliberately with `UPDATE_VECTORS=1 cargo test -p
//! alipay --test zhifu_vectors` and review the diff; CI never regenerates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::path::{Path, PathBuf};

use alipay::{
    Alipay, AlipayPublicKey, Amount, AppPrivateKey, OutTradeNo, RequestOptions, SignType,
    TradeAppPay, TradePagePay, TradePrecreate, TradeRef, TradeRefund, TradeWapPay,
};
use serde_json::Value;
use time::macros::datetime;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

fn key() -> AppPrivateKey {
    AppPrivateKey::parse(
        &std::fs::read_to_string(format!(
            "{DIR}/upstream/nodejs-sdk/keys/app-private-key.pem"
        ))
        .unwrap(),
    )
    .unwrap()
}

fn alipay(sign_type: SignType) -> Alipay {
    let ali = AlipayPublicKey::parse(
        &std::fs::read_to_string(format!(
            "{DIR}/upstream/fzlee-alipay/keys/ali_public_key.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    Alipay::builder("2021000122671080", key(), ali)
        .gateway("https://openapi-sandbox.dl.alipaydev.com/gateway.do")
        .sign_type(sign_type)
        .build()
}

/// Compares `actual` with the stage file, or writes it under UPDATE_VECTORS.
fn stage(case: &Path, file: &str, actual: &str) {
    let path = case.join(file);
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_VECTORS=1 once)", path.display()));
    assert_eq!(actual, expected, "stage {} of {}", file, case.display());
}

fn case_dir(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("{DIR}/zhifu/{name}"));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn input(case: &Path, v: &Value) {
    stage(
        case,
        "input.json",
        &(serde_json::to_string_pretty(v).unwrap() + "\n"),
    );
}

fn opts(v: &Value) -> RequestOptions {
    let mut opts = RequestOptions::new();
    if let Some(url) = v["notify_url"].as_str() {
        opts = opts.notify_url(url);
    }
    if let Some(url) = v["return_url"].as_str() {
        opts = opts.return_url(url);
    }
    opts
}

const NOW: time::OffsetDateTime = datetime!(2024-01-01 19:04:05 UTC);

#[test]
fn page_pay_get_and_post() {
    let case = case_dir("page_pay");
    let v = serde_json::json!({
        "key": "upstream/nodejs-sdk/keys/app-private-key.pem",
        "now_utc": "2024-01-01 19:04:05", "out_trade_no": "ZF_20240102_0001", "total_amount": "88.88",
        "subject": "测试订单 \"quotes\" <b>tag + plus 'apos'", "notify_url": "https://shop.example.com/alipay/notify",
        "return_url": "https://shop.example.com/alipay/return?x=1&y=2"
    });
    input(&case, &v);
    let req = TradePagePay::new(
        OutTradeNo::new(v["out_trade_no"].as_str().unwrap()).unwrap(),
        Amount::parse("88.88").unwrap(),
        v["subject"].as_str().unwrap(),
    );
    let a = alipay(SignType::Rsa2);
    let signed = a.sign_request(&req, &opts(&v), NOW).unwrap();
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    stage(&case, "get_url.txt", &signed.to_get_url(a.gateway()));
    stage(&case, "post_form.html", &signed.to_post_form(a.gateway()));
    // The signature verifies with the app public key over the sign content.
    key()
        .public_key()
        .verify(
            SignType::Rsa2,
            signed.sign_content().as_bytes(),
            signed.get("sign").unwrap(),
        )
        .unwrap();
    assert!(signed.to_get_url(a.gateway()).contains("charset=utf-8"));
}

#[test]
fn wap_pay_get() {
    let case = case_dir("wap_pay");
    let v = serde_json::json!({"now_utc": "2024-01-01 19:04:05", "out_trade_no": "ZF_WAP_1", "total_amount": "0.01", "subject": "手机网站支付", "return_url": "https://shop.example.com/r"});
    input(&case, &v);
    let req = TradeWapPay::new(
        OutTradeNo::new("ZF_WAP_1").unwrap(),
        Amount::parse("0.01").unwrap(),
        "手机网站支付",
    )
    .quit_url("https://shop.example.com/cart");
    let a = alipay(SignType::Rsa2);
    let signed = a.sign_request(&req, &opts(&v), NOW).unwrap();
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    stage(&case, "get_url.txt", &signed.to_get_url(a.gateway()));
}

#[test]
fn app_pay_order_string() {
    let case = case_dir("app_pay");
    let v = serde_json::json!({"now_utc": "2024-01-01 19:04:05", "out_trade_no": "ZF_APP_1", "total_amount": "1.00", "subject": "App 支付", "notify_url": "https://shop.example.com/alipay/notify"});
    input(&case, &v);
    let req = TradeAppPay::new(
        OutTradeNo::new("ZF_APP_1").unwrap(),
        Amount::parse("1.00").unwrap(),
        "App 支付",
    );
    let signed = alipay(SignType::Rsa2)
        .sign_request(&req, &opts(&v), NOW)
        .unwrap();
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    stage(&case, "order_string.txt", &signed.to_order_string());
}

#[test]
fn precreate_query_and_body() {
    let case = case_dir("precreate");
    let v = serde_json::json!({"now_utc": "2024-01-01 19:04:05", "out_trade_no": "ZF_QR_1", "total_amount": "12.30", "subject": "QR", "notify_url": "https://shop.example.com/alipay/notify"});
    input(&case, &v);
    let req = TradePrecreate::new(
        OutTradeNo::new("ZF_QR_1").unwrap(),
        Amount::parse("12.3").unwrap(),
        "QR",
    )
    .timeout_express("15m");
    let signed = alipay(SignType::Rsa2)
        .sign_request(&req, &opts(&v), NOW)
        .unwrap();
    let (q, b) = signed.query_and_body();
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    stage(&case, "query.txt", &q);
    stage(&case, "body.txt", &b);
}

#[test]
fn refund_legacy_rsa() {
    let case = case_dir("refund_rsa_sha1");
    let v = serde_json::json!({"now_utc": "2024-01-01 19:04:05", "sign_type": "RSA", "trade_no": "2024010222001400000000000001", "refund_amount": "10.00", "out_request_no": "R1"});
    input(&case, &v);
    let req = TradeRefund::new(
        TradeRef::TradeNo("2024010222001400000000000001".into()),
        Amount::parse("10.00").unwrap(),
        "R1",
    );
    let signed = alipay(SignType::Rsa)
        .sign_request(&req, &RequestOptions::default(), NOW)
        .unwrap();
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    key()
        .public_key()
        .verify(
            SignType::Rsa,
            signed.sign_content().as_bytes(),
            signed.get("sign").unwrap(),
        )
        .unwrap();
}

#[test]
fn invalid_requests_are_refused_before_signing() {
    // Malformed inputs, one per rule; none of them produces a signature.
    let a = alipay(SignType::Rsa2);
    let amt = Amount::parse("1.00").unwrap();
    let no = OutTradeNo::new("X").unwrap();
    for bad in [
        TradePagePay::new(no.clone(), amt, "a&b"),
        TradePagePay::new(no.clone(), Amount::ZERO, "ok"),
        TradePagePay::new(no.clone(), amt, ""),
    ] {
        assert!(matches!(
            a.sign_request(&bad, &RequestOptions::default(), NOW),
            Err(alipay::Error::Field { .. } | alipay::Error::Amount { .. })
        ));
    }
}
