//! The gateway's answers to bad requests (docs/protocol.md §2, §3.2, §4.3), over raw HTTP.

use alipay::{
    Alipay, Charset, GenericRequest, SignType, SignedRequest, TradePrecreate, TradeQuery,
};
use serde_json::Value;

use crate::helpers::*;

fn encode(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

fn signed_query(app: &TestSandbox) -> Vec<(String, String)> {
    app.alipay
        .sign_request(
            &TradeQuery::by_out_trade_no("ANY"),
            &Default::default(),
            app.sandbox.now(),
        )
        .unwrap()
        .params()
        .to_vec()
}

async fn get(app: &TestSandbox, params: &[(String, String)]) -> String {
    let url = format!("{}?{}", app.gateway, encode(params));
    let resp = app.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

fn node(body: &str, name: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap();
    v.get(name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .clone()
}

fn without(p: &[(String, String)], key: &str) -> Vec<(String, String)> {
    p.iter().filter(|(k, _)| k != key).cloned().collect()
}

fn with(p: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if k == key {
                    value.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

/// Re-signs an altered parameter set with the app key.
fn resign(p: Vec<(String, String)>, st: SignType) -> Vec<(String, String)> {
    SignedRequest::sign(p, &app_key(), st)
        .unwrap()
        .params()
        .to_vec()
}

#[tokio::test]
async fn unidentifiable_apps_get_unsigned_error_response() {
    let app = spawn_auto().await;
    let p = signed_query(&app);
    for (params, sub) in [
        (without(&p, "app_id"), "isv.missing-app-id"),
        (with(&p, "app_id", "2021000000000000"), "isv.invalid-app-id"),
    ] {
        let body = get(&app, &params).await;
        let n = node(&body, "error_response");
        assert_eq!(n["sub_code"], sub, "{body}");
        assert!(n["code"] == "40001" || n["code"] == "40002");
        let root: Value = serde_json::from_str(&body).unwrap();
        assert!(
            root.get("sign").is_none(),
            "no signature without an app: {body}"
        );
    }
}

#[tokio::test]
async fn missing_and_invalid_common_params() {
    let app = spawn_auto().await;
    let p = signed_query(&app);
    type Case = (Vec<(String, String)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (without(&p, "sign"), "40001", "isv.missing-signature"),
        (
            resign(without(&p, "timestamp"), SignType::Rsa2),
            "40001",
            "isv.missing-timestamp",
        ),
        (
            resign(without(&p, "version"), SignType::Rsa2),
            "40001",
            "isv.missing-version",
        ),
        (
            without(&p, "sign_type"),
            "40001",
            "isv.missing-signature-type",
        ),
        (
            with(&p, "sign_type", "RSA3"),
            "40002",
            "isv.invalid-signature-type",
        ),
        (
            resign(with(&p, "timestamp", "2024/01/02 03:04:05"), SignType::Rsa2),
            "40002",
            "isv.invalid-timestamp",
        ),
    ];
    for (params, code, sub) in cases {
        let body = get(&app, &params).await;
        let n = node(&body, "alipay_trade_query_response");
        assert_eq!(
            (n["code"].as_str(), n["sub_code"].as_str()),
            (Some(code), Some(sub)),
            "{body}"
        );
        // Identified apps get signed failures our SDK verifies.
        let e = gw(app
            .alipay
            .verify_response::<Value>("alipay.trade.query", body.as_bytes())
            .unwrap_err());
        assert!(e.verified, "{body}");
    }
    let body = get(&app, &without(&p, "method")).await;
    assert_eq!(
        node(&body, "error_response")["sub_code"],
        "isv.missing-method"
    );
}

#[tokio::test]
async fn bad_signatures_echo_the_sign_content() {
    let app = spawn_auto().await;
    let p = signed_query(&app);
    let tampered = with(&p, "biz_content", "{\"out_trade_no\":\"OTHER\"}");
    let body = get(&app, &tampered).await;
    let n = node(&body, "alipay_trade_query_response");
    assert_eq!(n["code"], "40002");
    assert_eq!(n["sub_code"], "isv.invalid-signature");
    let sub_msg = n["sub_msg"].as_str().unwrap();
    assert!(
        sub_msg.contains("网关生成的验签字符串为：app_id="),
        "{sub_msg}"
    );
    assert!(
        sub_msg.contains("&amp;biz_content={&quot;out_trade_no&quot;:&quot;OTHER&quot;}&amp;"),
        "{sub_msg}"
    );

    // Signed with a key the sandbox does not know for this app.
    let stranger = Alipay::builder(
        app.app_id.clone(),
        alipay::AppPrivateKey::generate().unwrap(),
        app.sandbox.alipay_public_key(),
    )
    .gateway(app.gateway.clone())
    .build();
    let e = gw(alipay::AlipayClient::new(stranger)
        .execute(&TradeQuery::by_out_trade_no("X"), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("isv.invalid-signature"));
    assert!(e.verified);
}

#[tokio::test]
async fn legacy_rsa_sha1_and_unknown_methods() {
    let app = spawn_auto().await;
    let rsa = Alipay::builder(
        app.app_id.clone(),
        app_key(),
        app.sandbox.alipay_public_key(),
    )
    .gateway(app.gateway.clone())
    .sign_type(SignType::Rsa)
    .build();
    let client = alipay::AlipayClient::new(rsa);
    let out = unique("SHA1");
    let pre = client
        .execute(
            &TradePrecreate::new(no(&out), amt("1.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(pre.out_trade_no, out);

    let e = gw(app
        .client
        .execute(
            &GenericRequest::new("alipay.trade.nonexistent", serde_json::json!({})),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("isv.invalid-method"));
    assert!(e.verified, "error_response is signed for a known app");
}

#[tokio::test]
async fn params_may_travel_in_query_body_or_both() {
    let app = spawn_auto().await;
    let out = unique("SPLIT");
    let signed = app
        .alipay
        .sign_request(
            &TradePrecreate::new(no(&out), amt("2.00"), "分账 split"),
            &Default::default(),
            app.sandbox.now(),
        )
        .unwrap();
    // Everything in the query (GET), as fzlee and page redirects do.
    let body = get(&app, signed.params()).await;
    assert!(
        body.starts_with("{\"alipay_trade_precreate_response\":{\"code\":\"10000\""),
        "{body}"
    );
    assert!(
        body.contains("\"qr_code\":\"http:\\/\\/127.0.0.1"),
        "slashes escaped like the real gateway: {body}"
    );
    app.alipay
        .verify_response::<Value>("alipay.trade.precreate", body.as_bytes())
        .unwrap();

    // Only charset in the query, everything else in the body (Node-like extreme).
    let rest: Vec<(String, String)> = without(signed.params(), "charset");
    let resp = app
        .http
        .post(format!("{}?charset=utf-8", app.gateway))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(encode(&rest))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let v = app
        .alipay
        .verify_response::<Value>("alipay.trade.precreate", resp.as_bytes())
        .unwrap();
    assert_eq!(v.body["out_trade_no"], out.as_str());

    // A duplicate in query and body: the body wins by default.
    let q = with(signed.params(), "app_id", "2021000000000000");
    let url = format!("{}?{}", app.gateway, encode(&q));
    let resp = app
        .http
        .post(url)
        .body(format!("app_id={}", app.app_id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    app.alipay
        .verify_response::<Value>("alipay.trade.precreate", resp.as_bytes())
        .unwrap();
}

#[tokio::test]
async fn gbk_requests_are_decoded_and_verified_in_gbk() {
    let app = spawn_auto().await;
    let out = unique("GBK");
    let biz = format!(
        "{{\"out_trade_no\":\"{out}\",\"total_amount\":\"3.00\",\"subject\":\"中文商品\"}}"
    );
    let mut p: Vec<(String, String)> = vec![
        ("app_id".into(), app.app_id.clone()),
        ("method".into(), "alipay.trade.create".into()),
        ("charset".into(), "gbk".into()),
        ("sign_type".into(), "RSA2".into()),
        (
            "timestamp".into(),
            alipay::time::format_beijing(app.sandbox.now()),
        ),
        ("version".into(), "1.0".into()),
        ("biz_content".into(), biz),
    ];
    let content =
        alipay::sign::request_sign_content(p.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let sign = app_key()
        .sign(SignType::Rsa2, &Charset::Gbk.encode(&content))
        .unwrap();
    p.push(("sign".into(), sign));
    fn gbk(s: &str) -> std::borrow::Cow<'_, [u8]> {
        Charset::Gbk.encode(s)
    }
    let mut ser = form_urlencoded::Serializer::new(String::new());
    ser.encoding_override(Some(&gbk));
    for (k, v) in &p {
        ser.append_pair(k, v);
    }
    let url = format!("{}?{}", app.gateway, ser.finish());
    let bytes = app
        .http
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let text = encoding_rs::GBK.decode(&bytes).0.into_owned();
    assert!(text.contains("\"code\":\"10000\""), "{text}");
    let trades = app.sandbox.trades().await;
    assert_eq!(
        trades
            .iter()
            .find(|t| t.out_trade_no == out)
            .unwrap()
            .subject,
        "中文商品"
    );
}

#[tokio::test]
async fn aes_content_encryption_round_trips() {
    let app = spawn_auto().await;
    let out = unique("AES");
    let opts = alipay::RequestOptions::new().encrypt();
    let key_b64 = "aYA0GP8JEW+D7/UFaskCWA==";
    let with_key = |k: &str| {
        alipay::AlipayClient::new(
            Alipay::builder(
                app.app_id.clone(),
                app_key(),
                app.sandbox.alipay_public_key(),
            )
            .gateway(app.gateway.clone())
            .aes_key(alipay::AesKey::from_base64(k).unwrap())
            .build(),
        )
    };
    // Not enabled for the app yet.
    let e = gw(with_key(key_b64)
        .execute(&TradePrecreate::new(no(&out), amt("1.00"), "x"), &opts)
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("isv.invalid-encrypt"));

    app.sandbox
        .set_aes_key(&app.app_id, Some(key_b64))
        .await
        .unwrap();
    let client = with_key(key_b64);
    let pre = client
        .execute(&TradePrecreate::new(no(&out), amt("1.00"), "加密 x"), &opts)
        .await
        .unwrap();
    assert_eq!(pre.out_trade_no, out);
    // The answer really is a signed ciphertext string.
    let signed = app
        .alipay
        .sign_request(
            &TradeQuery::by_out_trade_no(&out),
            &Default::default(),
            app.sandbox.now(),
        )
        .unwrap();
    let plain = get(&app, signed.params()).await;
    assert!(
        plain.contains("\"alipay_trade_query_response\":{"),
        "{plain}"
    );
    let encrypted = client
        .core()
        .sign_request(&TradeQuery::by_out_trade_no(&out), &opts, app.sandbox.now())
        .unwrap();
    let raw = get(&app, encrypted.params()).await;
    assert!(
        raw.starts_with("{\"alipay_trade_query_response\":\""),
        "{raw}"
    );
    let e = gw(client
        .execute(&TradeQuery::by_out_trade_no(&out), &opts)
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.TRADE_NOT_EXIST"),
        "encrypted failures decrypt too"
    );

    // A client with another AES key: the gateway cannot decrypt.
    let e = gw(with_key("MDEyMzQ1Njc4OWFiY2RlZg==")
        .execute(&TradeQuery::by_out_trade_no(&out), &opts)
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("isv.decryption-error"));
}
