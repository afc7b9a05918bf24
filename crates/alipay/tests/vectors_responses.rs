//! Upstream response, v3 and AES content-encryption vectors (split from
//! `vectors.rs`), each also tampered and expected to fail.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

mod common;

use alipay::cert::{AlipayCertStore, cert_public_key};
use alipay::response::{ResponseCheck, extract_signed_node, verify_response};
use alipay::v3::{V3Auth, V3Request, V3ResponseHeaders};
use alipay::{
    AesKey, AlipayKeys, AlipayPublicKey, AppPrivateKey, Charset, Error, SignType, SignedRequest,
};
use common::{json, pairs, s, text};
use serde_json::Value;

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
