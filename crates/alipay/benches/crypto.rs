//! The hot paths: signing a page-pay request, verifying a notification,
//! verifying a gateway response. Keys are parsed once, outside the timed
//! loops, as in a running server. `bench/crypto.sh` puts the figures next to
//! `openssl speed rsa2048` measured in the same sitting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::hint::black_box;

use alipay::response::{ResponseCheck, verify_response};
use alipay::{
    Alipay, AlipayKeys, AlipayPublicKey, Amount, AppPrivateKey, Charset, NotifyVerifier,
    OutTradeNo, RequestOptions, SignType, TradePagePay,
};
use criterion::{Criterion, criterion_group, criterion_main};

const V: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/upstream");

fn read(p: &str) -> String {
    std::fs::read_to_string(format!("{V}/{p}")).expect("vector file")
}

fn field(json: &str, pointer: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("vector json");
    v.pointer(pointer)
        .and_then(|v| v.as_str())
        .expect("vector field")
        .to_owned()
}

fn benches(c: &mut Criterion) {
    let app = AppPrivateKey::parse(&read("nodejs-sdk/keys/app-private-key.pem")).expect("key");
    let ali = AlipayPublicKey::parse(&read("fzlee-alipay/keys/ali_public_key.pem")).expect("key");
    let alipay = Alipay::builder("2021000122671080", app, ali.clone()).build();
    let order = TradePagePay::new(
        OutTradeNo::new("ZF_BENCH_0001").expect("id"),
        Amount::parse("88.88").expect("amt"),
        "Bench order 测试",
    );
    let opts = RequestOptions::new()
        .notify_url("https://shop.example.com/alipay/notify")
        .return_url("https://shop.example.com/alipay/return");
    let now = time::OffsetDateTime::now_utc();
    c.bench_function("sign_page_pay_request", |b| {
        b.iter(|| {
            let signed = alipay
                .sign_request(black_box(&order), &opts, now)
                .expect("sign");
            black_box(signed.to_get_url(alipay.gateway()))
        })
    });

    let notify_body = field(&read("derived/notify_sign_emulator.json"), "/http/body");
    let verifier = NotifyVerifier::new(ali.clone());
    c.bench_function("verify_notification", |b| {
        b.iter(|| {
            black_box(
                verifier
                    .verify_body(black_box(notify_body.as_bytes()))
                    .expect("valid"),
            )
        })
    });

    let response = field(
        &read("derived/response_sign_emulator.json"),
        "/raw_body_public_key_mode",
    );
    let keys = AlipayKeys::from(ali);
    let check = ResponseCheck {
        method: "alipay.trade.query",
        keys: &keys,
        sign_type: SignType::Rsa2,
        charset: Charset::Utf8,
        aes: None,
    };
    c.bench_function("verify_response", |b| {
        b.iter(|| {
            black_box(
                verify_response::<alipay::QueryResponse>(black_box(response.as_bytes()), &check)
                    .expect("valid"),
            )
        })
    });
}

criterion_group!(crypto, benches);
criterion_main!(crypto);
