//! Every applicable upstream vector (`vectors/upstream`, taken from the
//! official SDKs' test suites listed in `tests/vectors/upstream/README.md`)
//! as a test, each also tampered and expected to fail.
//!
//! This binary holds the signing, certificate, notification and key-form
//! vectors; response, v3 and encryption vectors are in `vectors_responses.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

mod common;

use alipay::cert::{cert_public_key, cert_sn, root_cert_sn};
use alipay::notify::{FormParams, NotifyVerifier, ReturnParams, TradeNotification};
use alipay::sign::{NotifySignRule, notify_sign_content, request_sign_content};
use alipay::{AlipayPublicKey, AppPrivateKey, Error, SignType, SignedRequest};
use common::{json, pairs, s, text};
use serde_json::Value;

fn tamper_b64(sig: &str) -> String {
    let mut c: Vec<char> = sig.chars().collect();
    c[10] = if c[10] == 'A' { 'B' } else { 'A' };
    c.into_iter().collect()
}

#[test]
fn request_signing_rsa2_and_rsa() {
    let v = json("derived/request_sign_rsa2_rsa.json");
    let params = pairs(&v["params"]);
    let content = request_sign_content(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(content, s(&v["expected_sign_content"]));
    for form in [
        "nodejs-sdk/keys/app-private-key.pem",
        "nodejs-sdk/keys/app-private-key-pkcs8.pem",
        "nodejs-sdk/keys/app-private-key-no-wrapper.pem",
        "nodejs-sdk/keys/app-private-key-pkcs8-no-wrapper.pem",
    ] {
        let key = AppPrivateKey::parse(&text(form)).unwrap();
        let signed = SignedRequest::sign(params.clone(), &key, SignType::Rsa2).unwrap();
        assert_eq!(
            signed.get("sign").unwrap(),
            s(&v["expected_sign_RSA2"]),
            "{form}"
        );
        assert_eq!(signed.sign_content(), content);
    }
    // The Java split of the wire form: biz_content alone in the body.
    let key = AppPrivateKey::parse(&text("nodejs-sdk/keys/app-private-key.pem")).unwrap();
    let signed = SignedRequest::sign(params.clone(), &key, SignType::Rsa2).unwrap();
    let (query, body) = signed.query_and_body();
    assert_eq!(
        body,
        s(&v["example_wire_form"]["form_body_application_x_www_form_urlencoded"])
    );
    let url = s(&v["example_wire_form"]["url"]);
    let expected_query: std::collections::BTreeSet<_> =
        url.split_once('?').unwrap().1.split('&').collect();
    let ours: std::collections::BTreeSet<_> = query.split('&').collect();
    assert_eq!(ours, expected_query);

    let rsa = &v["rsa_sha1_variant"];
    let mut p1 = params.clone();
    for (k, val) in p1.iter_mut() {
        if k == "sign_type" {
            *val = "RSA".into();
        }
    }
    let signed = SignedRequest::sign(p1, &key, SignType::Rsa).unwrap();
    assert_eq!(signed.sign_content(), s(&rsa["expected_sign_content"]));
    assert_eq!(signed.get("sign").unwrap(), s(&rsa["expected_sign_RSA"]));
    // Our signature verifies with the public key and fails when tampered.
    let public = AlipayPublicKey::parse(&text("nodejs-sdk/keys/app-public-key.pem")).unwrap();
    public
        .verify(
            SignType::Rsa,
            signed.sign_content().as_bytes(),
            signed.get("sign").unwrap(),
        )
        .unwrap();
    assert!(
        public
            .verify(
                SignType::Rsa,
                signed.sign_content().as_bytes(),
                &tamper_b64(signed.get("sign").unwrap())
            )
            .is_err()
    );
}

#[test]
fn request_signing_cert_mode_yansongda() {
    let v = json("yansongda-pay/cases/request_sign_cert_mode.json");
    let params = pairs(&v["params"]);
    for form in [
        "yansongda-pay/keys/alipayAppSecret.txt",
        "yansongda-pay/keys/alipayAppSecretCert.pem",
    ] {
        let key = AppPrivateKey::parse(&text(form)).unwrap();
        let signed = SignedRequest::sign(params.clone(), &key, SignType::Rsa2).unwrap();
        assert_eq!(signed.sign_content(), s(&v["expected_sign_content"]));
        assert_eq!(
            signed.get("sign").unwrap(),
            s(&v["expected_sign"]),
            "{form}"
        );
    }
}

#[test]
fn certificate_serial_numbers() {
    for file in [
        "nodejs-sdk/cases/cert_sn.json",
        "yansongda-pay/cases/cert_sn.json",
    ] {
        let dir = file.split('/').next().unwrap();
        for c in json(file)["cases"].as_array().unwrap() {
            let pem = text(&format!("{dir}/{}", s(&c["file"])));
            let got = match s(&c["kind"]) {
                "alipay_root_cert_sn" => root_cert_sn(pem.as_bytes()).unwrap(),
                _ => cert_sn(pem.as_bytes()).unwrap(),
            };
            assert_eq!(got, s(&c["expected"]), "{}", s(&c["file"]));
            if let Some(k) = c.get("expected_public_key_base64") {
                assert_eq!(cert_public_key(pem.as_bytes()).unwrap().to_base64(), s(k));
            }
        }
    }
    for (dir, file) in [
        ("gopay", "gopay/cases/cert_sn_computed.json"),
        ("fzlee-alipay", "fzlee-alipay/cert_sn_computed.json"),
    ] {
        for c in json(file)["cases"].as_array().unwrap() {
            let name = s(&c["file"]);
            let pem = text(&format!("{dir}/{name}"));
            let got = if name.to_lowercase().contains("root") {
                root_cert_sn(pem.as_bytes()).unwrap()
            } else {
                cert_sn(pem.as_bytes()).unwrap()
            };
            assert_eq!(got, s(&c["sn"]), "{name}");
        }
    }
}

fn body_of(fields: &Value) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields.as_object().unwrap() {
        ser.append_pair(k, s(v));
    }
    ser.finish()
}

#[test]
fn notification_trade_status_sync_excludes_sign_type() {
    let v = json("nodejs-sdk/cases/notify_trade_status_sync.json");
    let key = AlipayPublicKey::parse(&text(
        "nodejs-sdk/keys/alipay-notify-public-key-trade-notify-inline.txt",
    ))
    .unwrap();
    let fields = &v["params_after_form_decoding"];
    let params = FormParams::parse(body_of(fields).as_bytes()).unwrap();
    assert_eq!(
        notify_sign_content(params.iter(), NotifySignRule::ExcludeSignType, true),
        s(&v["expected_sign_content"])
    );
    let verifier = NotifyVerifier::new(key.clone());
    let verified = verifier.verify(params.clone()).unwrap();
    assert_eq!(verified.rule(), NotifySignRule::ExcludeSignType);
    let n = TradeNotification::from_verified(&verified).unwrap();
    assert_eq!(n.total_amount.fen(), 10);
    assert_eq!(n.fund_bill_list[0].fund_channel, "ALIPAYACCOUNT");
    assert_eq!(n.out_trade_no, "20190815155618536-564-57");
    assert!(n.trade_status.is_paid());
    // The other rule does not verify this message.
    let kept = notify_sign_content(params.iter(), NotifySignRule::KeepSignType, true);
    assert!(
        key.verify(SignType::Rsa2, kept.as_bytes(), params.get("sign").unwrap())
            .is_err()
    );
    let tampered = body_of(fields).replace("total_amount=0.10", "total_amount=1.10");
    assert!(matches!(
        verifier.verify_body(tampered.as_bytes()),
        Err(Error::BadSignature)
    ));
}

#[test]
fn notification_gateway_message_keeps_sign_type() {
    let v = json("nodejs-sdk/cases/notify_servicemarket_keeps_sign_type.json");
    let key = AlipayPublicKey::parse(&text(
        "nodejs-sdk/keys/alipay-notify-sign-public-key-v2.pem",
    ))
    .unwrap();
    let body = body_of(&v["params_after_form_decoding"]);
    let params = FormParams::parse(body.as_bytes()).unwrap();
    assert_eq!(
        notify_sign_content(params.iter(), NotifySignRule::KeepSignType, true),
        s(&v["expected_sign_content"])
    );
    let verified = NotifyVerifier::new(key.clone()).verify(params).unwrap();
    assert_eq!(verified.rule(), NotifySignRule::KeepSignType);
    let tampered = body.replace("service_code=58621634", "service_code=58621634111");
    assert!(
        NotifyVerifier::new(key)
            .verify_body(tampered.as_bytes())
            .is_err()
    );
}

#[test]
fn notification_with_plus_in_subject_is_decoded_once() {
    let v = json("yansongda-pay/cases/notify_with_plus_in_subject.json");
    let key = cert_public_key(text("yansongda-pay/certs/alipayPublicCert.crt").as_bytes()).unwrap();
    let body = body_of(&v["params_after_form_decoding"]);
    assert!(
        body.contains("subject=yansongda%2B"),
        "the literal + travels as %2B"
    );
    let verified = NotifyVerifier::new(key.clone())
        .verify_body(body.as_bytes())
        .unwrap();
    assert_eq!(
        notify_sign_content(verified.get().iter(), NotifySignRule::ExcludeSignType, true),
        s(&v["expected_sign_content"])
    );
    assert_eq!(verified.get().get("subject"), Some("yansongda+测试 - 1"));
    // Decoding twice turns the + into a space and must fail.
    let twice = body.replace("yansongda%2B", "yansongda+");
    assert!(matches!(
        NotifyVerifier::new(key).verify_body(twice.as_bytes()),
        Err(Error::BadSignature)
    ));
}

#[test]
fn return_url_parameters_verify_with_sign_type_excluded() {
    let v = json("yansongda-pay/cases/return_url_page_pay.json");
    let key = cert_public_key(text("yansongda-pay/certs/alipayPublicCert.crt").as_bytes()).unwrap();
    let url = s(&v["full_return_url"]);
    let query = url.split_once('?').unwrap().1;
    let verified = NotifyVerifier::new(key.clone())
        .verify_body(query.as_bytes())
        .unwrap();
    assert_eq!(verified.rule(), NotifySignRule::ExcludeSignType);
    assert_eq!(
        notify_sign_content(verified.get().iter(), NotifySignRule::ExcludeSignType, true),
        s(&v["expected_sign_content"])
    );
    let r = ReturnParams::from_verified(&verified).unwrap();
    assert_eq!(r.method, "alipay.trade.page.pay.return");
    assert_eq!(r.total_amount.fen(), 1);
    let forged = query.replace("total_amount=0.01", "total_amount=100.00");
    assert!(
        NotifyVerifier::new(key)
            .verify_body(forged.as_bytes())
            .is_err()
    );
}

#[test]
fn emulator_style_notification_and_passback_params() {
    let v = json("derived/notify_sign_emulator.json");
    let key = AlipayPublicKey::parse(&text("fzlee-alipay/keys/ali_public_key.pem")).unwrap();
    let body = s(&v["http"]["body"]);
    let verified = NotifyVerifier::new(key)
        .verify_body(body.as_bytes())
        .unwrap();
    assert_eq!(
        notify_sign_content(verified.get().iter(), NotifySignRule::ExcludeSignType, true),
        s(&v["expected_sign_content_excludes_sign_and_sign_type"])
    );
    let n = TradeNotification::from_verified(&verified).unwrap();
    assert_eq!(n.passback_params.as_deref(), Some("merchant%3Dyes%26x%3D1"));
    assert_eq!(n.subject.as_deref(), Some("测试订单 A&B=C"));
    let expected = alipay::ExpectedOrder {
        out_trade_no: "ORDER_20240102_0001",
        total_amount: alipay::Amount::parse("88.88").unwrap(),
        app_id: "2021000122671080",
        seller_id: Some("2088721003899159"),
    };
    n.check_against(&expected).unwrap();
    let wrong = alipay::ExpectedOrder {
        out_trade_no: "OTHER",
        total_amount: alipay::Amount::parse("88.87").unwrap(),
        app_id: "2021000000000000",
        seller_id: Some("2088000000000000"),
    };
    assert_eq!(n.check_against(&wrong).unwrap_err().len(), 4);
}

#[test]
fn key_forms_of_every_vector_parse() {
    for f in [
        "nodejs-sdk/keys/app_2014060600164699_rsa2_private_key_no_wrapper.pem",
        "fzlee-alipay/keys/ali_private_key.pem",
        "fzlee-alipay/keys/ali_private_key_pkcs8.pem",
        "fzlee-alipay/keys/app_private_key.pem",
        "fzlee-alipay/keys/app_private_key_pkcs8.pem",
        "fzlee-alipay/keys/dc_app_private_key.pem",
    ] {
        AppPrivateKey::parse(&text(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
    for f in [
        "nodejs-sdk/keys/alipay-public-key.pem",
        "nodejs-sdk/keys/alipay-public-key-no-wrapper.pem",
        "nodejs-sdk/keys/alipay-notify-sign-public-key-v1.pem",
        "nodejs-sdk/keys/alipay_stable_rsa2_public_key.pem",
        "nodejs-sdk/keys/app_2014060600164699_rsa2_public_key_no_wrapper.pem",
        "fzlee-alipay/keys/ali_public_key.pem",
        "fzlee-alipay/keys/dc_app_public_key.pem",
    ] {
        AlipayPublicKey::parse(&text(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}
