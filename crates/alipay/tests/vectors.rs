//! Every applicable upstream vector (`vectors/upstream`, taken from the
//! official SDKs' test suites listed in `tests/vectors/upstream/README.md`)
//! as a test, each also tampered and expected to fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use alipay::cert::{AlipayCertStore, cert_public_key, cert_sn, root_cert_sn};
use alipay::notify::{FormParams, NotifyVerifier, ReturnParams, TradeNotification};
use alipay::response::{ResponseCheck, extract_signed_node, verify_response};
use alipay::sign::{NotifySignRule, notify_sign_content, request_sign_content};
use alipay::v3::{V3Auth, V3Request, V3ResponseHeaders};
use alipay::{
    AesKey, AlipayKeys, AlipayPublicKey, AppPrivateKey, Charset, Error, SignType, SignedRequest,
};
use serde_json::Value;

const V: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/upstream");

fn text(p: &str) -> String {
    std::fs::read_to_string(format!("{V}/{p}")).unwrap_or_else(|e| panic!("{p}: {e}"))
}
fn json(p: &str) -> Value {
    serde_json::from_str(&text(p)).unwrap()
}
fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}
fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), s(v).to_owned()))
        .collect()
}
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

fn check<'a>(method: &'a str, keys: &'a AlipayKeys) -> ResponseCheck<'a> {
    ResponseCheck {
        method,
        keys,
        sign_type: SignType::Rsa2,
        charset: Charset::Utf8,
        aes: None,
    }
}

#[test]
fn response_substring_extraction() {
    let v = json("nodejs-sdk/cases/response_signed_substring_extraction.json");
    let method = s(&v["response_key"])
        .trim_end_matches("_response")
        .replace('_', ".");
    for c in v["cases"].as_array().unwrap() {
        let node = extract_signed_node(s(&c["raw"]), &method).unwrap();
        assert_eq!(node.text, s(&c["expected"]), "{}", s(&c["name"]));
        assert!(node.sign.unwrap().starts_with("P8xrBW"));
    }
}

#[test]
fn response_verification_real_vectors() {
    // Node SDK: a raw body exactly as received.
    let v = json("nodejs-sdk/cases/response_open_file_upload.json");
    let keys = AlipayKeys::from(
        AlipayPublicKey::parse(&text("nodejs-sdk/keys/alipay-public-key.pem")).unwrap(),
    );
    let raw = s(&v["raw_body"]);
    let node = extract_signed_node(raw, s(&v["method"])).unwrap();
    assert_eq!(node.text, s(&v["expected_signed_substring"]));
    let ok = verify_response::<Value>(raw.as_bytes(), &check(s(&v["method"]), &keys)).unwrap();
    assert_eq!(ok.body["file_id"], "CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr");
    let bad = raw.replace(node.sign.as_deref().unwrap(), s(&v["negative"]["sign"]));
    assert!(matches!(
        verify_response::<Value>(bad.as_bytes(), &check(s(&v["method"]), &keys)),
        Err(Error::BadSignature)
    ));
    let flipped = raw.replace("CAxAToWB1Js", "CAxAToWB1Jt");
    assert!(matches!(
        verify_response::<Value>(flipped.as_bytes(), &check(s(&v["method"]), &keys)),
        Err(Error::BadSignature)
    ));

    // gopay: a real trade.query signed node; wrap it as a body.
    let v = json("gopay/cases/response_trade_query.json");
    let keys = AlipayKeys::from(AlipayPublicKey::parse(s(&v["alipay_public_key_base64"])).unwrap());
    let body = format!(
        "{{\"alipay_trade_query_response\":{},\"sign\":\"{}\"}}",
        s(&v["signed_substring"]),
        s(&v["sign"])
    );
    let q = verify_response::<alipay::QueryResponse>(
        body.as_bytes(),
        &check("alipay.trade.query", &keys),
    );
    // This real answer has no trade_status, so the typed decode refuses it
    // after the signature verified; the untyped decode shows the verification.
    assert!(matches!(q, Err(Error::Json { .. })), "{q:?}");
    let q = verify_response::<Value>(body.as_bytes(), &check("alipay.trade.query", &keys)).unwrap();
    assert_eq!(q.body["fund_bill_list"][0]["fund_channel"], "PCREDIT");
    let tampered = body.replace("\"total_amount\":\"0.01\"", "\"total_amount\":\"1.01\"");
    assert!(matches!(
        verify_response::<Value>(tampered.as_bytes(), &check("alipay.trade.query", &keys)),
        Err(Error::BadSignature)
    ));

    // yansongda: verified with the key inside a sandbox certificate.
    let v = json("yansongda-pay/cases/response_fund_trans_uni_transfer.json");
    let keys = AlipayKeys::from(
        cert_public_key(text("yansongda-pay/certs/alipayPublicCert.crt").as_bytes()).unwrap(),
    );
    let method = s(&v["method"]);
    let body = format!(
        "{{\"{}\":{},\"sign\":\"{}\"}}",
        alipay::response::response_node_name(method),
        s(&v["signed_substring"]),
        s(&v["sign"])
    );
    verify_response::<Value>(body.as_bytes(), &check(method, &keys)).unwrap();
    let bad = body.replace(s(&v["sign"]), &format!("A{}", s(&v["sign"])));
    assert!(verify_response::<Value>(bad.as_bytes(), &check(method, &keys)).is_err());
}

#[test]
fn response_verification_emulator_vectors() {
    let v = json("derived/response_sign_emulator.json");
    let keys = AlipayKeys::from(
        AlipayPublicKey::parse(&text("fzlee-alipay/keys/ali_public_key.pem")).unwrap(),
    );
    let q = verify_response::<alipay::QueryResponse>(
        s(&v["raw_body_public_key_mode"]).as_bytes(),
        &check("alipay.trade.query", &keys),
    )
    .unwrap();
    assert_eq!(q.body.total_amount.fen(), 8888);
    assert_eq!(q.body.trade_status, alipay::TradeStatus::TradeSuccess);
    let cert_mode = extract_signed_node(s(&v["raw_body_cert_mode"]), "alipay.trade.query").unwrap();
    assert_eq!(
        cert_mode.alipay_cert_sn.as_deref(),
        Some("7513daaaa48aa3ba2e4018d84402479c")
    );
    assert_eq!(cert_mode.text, s(&v["signed_substring"]));
    // Cert mode: the SN picks the key; an unknown SN is refused outright.
    let store =
        AlipayCertStore::new(text("nodejs-sdk/certs/alipayCertPublicKey_RSA2.crt").as_bytes())
            .unwrap();
    let cert_keys = AlipayKeys::from(store);
    let r = verify_response::<Value>(
        s(&v["raw_body_cert_mode"]).as_bytes(),
        &check("alipay.trade.query", &cert_keys),
    );
    // That certificate's key did not sign this derived body: a bad signature, not a pass.
    assert!(matches!(r, Err(Error::BadSignature)), "{r:?}");
    let unknown = s(&v["raw_body_cert_mode"]).replace("7513daaa", "00000000");
    assert!(matches!(
        verify_response::<Value>(unknown.as_bytes(), &check("alipay.trade.query", &cert_keys)),
        Err(Error::UnknownAlipayCert(_))
    ));
    // A signed business error is a verified GatewayError.
    let e = verify_response::<Value>(
        s(&v["business_error_example"]["raw_body"]).as_bytes(),
        &check("alipay.trade.query", &keys),
    )
    .unwrap_err();
    match e {
        Error::Gateway(g) => {
            assert!(g.verified);
            assert_eq!(g.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));
            assert_eq!(g.outcome(), alipay::Outcome::Final);
        }
        other => panic!("{other:?}"),
    }
    // A success with its signature removed is an error, never a warning.
    let unsigned = s(&v["raw_body_public_key_mode"]).replace(s(&v["sign"]), "");
    assert!(matches!(
        verify_response::<Value>(unsigned.as_bytes(), &check("alipay.trade.query", &keys)),
        Err(Error::MissingSignature)
    ));
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
fn v3_authorization_and_response() {
    let v = json("derived/v3_authorization_and_response.json");
    let key = AppPrivateKey::parse(&text("nodejs-sdk/keys/app-private-key.pem")).unwrap();
    let post_body = "{\"out_trade_no\":\"ORDER_20240102_0001\"}";
    let cases = [
        (
            "post",
            "POST",
            "/v3/alipay/trade/query",
            post_body,
            None,
            None,
        ),
        (
            "get_no_body",
            "GET",
            "/v3/alipay/data/dataservice/bill/downloadurl/query?bill_type=trade&bill_date=2016-04-05",
            "",
            None,
            None,
        ),
        (
            "post_with_app_auth_token",
            "POST",
            "/v3/alipay/trade/query",
            post_body,
            Some("202401BBexampleAppAuthToken0001"),
            None,
        ),
        (
            "post_cert_mode",
            "POST",
            "/v3/alipay/trade/query",
            post_body,
            None,
            Some("866efef280dec9137a87d047ac446315"),
        ),
    ];
    for (name, m, uri, body, token, sn) in cases {
        let c = &v["requests"][name];
        let auth = V3Auth {
            app_id: "2021000122671080",
            app_cert_sn: sn,
            nonce: "8f0e2a4c-1b2d-4e5f-9a0b-1c2d3e4f5a6b",
            timestamp_ms: 1704135845123,
        };
        let req = V3Request {
            http_method: m,
            path_and_query: uri,
            body,
            app_auth_token: token,
        };
        assert_eq!(
            alipay::v3::string_to_sign(&auth.auth_string(), &req),
            s(&c["string_to_sign"]),
            "{name}"
        );
        assert_eq!(
            alipay::v3::authorization(&key, &auth, &req).unwrap(),
            s(&c["authorization_header"]),
            "{name}"
        );
    }
    let r = &v["response"];
    let keys = AlipayKeys::from(
        AlipayPublicKey::parse(&text("fzlee-alipay/keys/ali_public_key.pem")).unwrap(),
    );
    let h = |sig: &'static str| V3ResponseHeaders {
        timestamp: "1704135845999",
        nonce: "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        signature: sig,
        sn: None,
    };
    let sig: &'static str = Box::leak(
        s(&r["headers"]["alipay-signature"])
            .to_owned()
            .into_boxed_str(),
    );
    alipay::v3::verify_response(&keys, &h(sig), s(&r["body"]).as_bytes()).unwrap();
    assert!(
        alipay::v3::verify_response(
            &keys,
            &h(sig),
            s(&r["body"]).replace("88.88", "88.89").as_bytes()
        )
        .is_err()
    );
    // The Node SDK's mock "failed" response must fail.
    let m = json("nodejs-sdk/cases/misc.json");
    let mh = &m["v3_mock_failed_response_headers"];
    let failed = V3ResponseHeaders {
        timestamp: s(&mh["alipay-timestamp"]),
        nonce: s(&mh["alipay-nonce"]),
        signature: s(&mh["alipay-signature"]),
        sn: None,
    };
    assert!(
        alipay::v3::verify_response(
            &keys,
            &failed,
            s(&m["v3_mock_failed_response_body"]).as_bytes()
        )
        .is_err()
    );
}

#[test]
fn aes_content_encryption() {
    let v = json("derived/aes_content_encryption.json");
    let key = AesKey::from_base64(s(&v["key_base64"])).unwrap();
    for c in v["cases"].as_array().unwrap() {
        assert_eq!(
            key.encrypt(s(&c["plaintext_utf8"])),
            s(&c["ciphertext_base64"])
        );
        assert_eq!(
            key.decrypt(s(&c["ciphertext_base64"])).unwrap(),
            s(&c["plaintext_utf8"])
        );
    }
    let wrong = AesKey::from_base64("AAAAAAAAAAAAAAAAAAAAAA==").unwrap();
    assert!(
        wrong
            .decrypt(s(&v["cases"][0]["ciphertext_base64"]))
            .is_err()
    );

    let er = &v["encrypted_request"];
    let app = AppPrivateKey::parse(&text("nodejs-sdk/keys/app-private-key.pem")).unwrap();
    let signed = SignedRequest::sign(pairs(&er["params"]), &app, SignType::Rsa2).unwrap();
    assert_eq!(signed.sign_content(), s(&er["expected_sign_content"]));
    assert_eq!(signed.get("sign").unwrap(), s(&er["sign_RSA2"]));

    let resp = &v["encrypted_response"];
    let node = extract_signed_node(s(&resp["raw_body"]), "alipay.trade.query").unwrap();
    assert!(node.encrypted);
    assert_eq!(node.text, s(&resp["signed_substring_including_quotes"]));
    let ali = AlipayPublicKey::parse(&text("fzlee-alipay/keys/ali_public_key.pem")).unwrap();
    ali.verify(
        SignType::Rsa2,
        node.text.as_bytes(),
        node.sign.as_deref().unwrap(),
    )
    .unwrap();
    // Without the quotes the signature does not verify.
    assert!(
        ali.verify(
            SignType::Rsa2,
            node.text.trim_matches('"').as_bytes(),
            node.sign.as_deref().unwrap()
        )
        .is_err()
    );
    let plain = key.decrypt(node.text.trim_matches('"')).unwrap();
    assert!(plain.contains("ORDER_20240102_0001"));
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
