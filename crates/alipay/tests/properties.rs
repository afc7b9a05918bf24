//! Property tests: sign/verify round-trips with arbitrary UTF-8 values, and
//! the single-decoding rule for forms carrying arbitrary text.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::sync::OnceLock;

use alipay::notify::{FormParams, NotifyVerifier};
use alipay::sign::{NotifySignRule, notify_sign_content};
use alipay::{AppPrivateKey, SignType, SignedRequest};
use proptest::prelude::*;

fn key() -> &'static AppPrivateKey {
    static K: OnceLock<AppPrivateKey> = OnceLock::new();
    K.get_or_init(|| {
        AppPrivateKey::parse(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/vectors/upstream/fzlee-alipay/keys/ali_private_key.pem"
            ))
            .unwrap(),
        )
        .unwrap()
    })
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    // Keys as Alipay uses them; values any UTF-8, including `&`, `=`, `%`, `+`.
    proptest::collection::btree_map("[a-z][a-z_]{0,12}", "\\PC{0,24}", 1..8).prop_map(|m| {
        m.into_iter()
            .filter(|(k, _)| k != "sign" && k != "sign_type" && k != "charset")
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn request_sign_verify_roundtrip(p in params(), legacy in any::<bool>()) {
        let st = if legacy { SignType::Rsa } else { SignType::Rsa2 };
        let mut p = p;
        p.push(("sign_type".into(), st.as_str().into()));
        let signed = SignedRequest::sign(p.clone(), key(), st).unwrap();
        let public = key().public_key();
        prop_assert!(public.verify(st, signed.sign_content().as_bytes(), signed.get("sign").unwrap()).is_ok());
        // Changing any non-empty value breaks the signature.
        if let Some((k, v)) = p.iter().find(|(k, v)| k != "sign_type" && !v.trim().is_empty()) {
            let changed: Vec<_> = p.iter().map(|(k2, v2)| if k2 == k { (k2.clone(), format!("{v}x")) } else { (k2.clone(), v2.clone()) }).collect();
            let content = alipay::sign::request_sign_content(changed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            prop_assert!(public.verify(st, content.as_bytes(), signed.get("sign").unwrap()).is_err());
        }
    }

    #[test]
    fn notification_survives_form_encoding(p in params()) {
        // Sign as Alipay does (sign_type excluded), send as a form, parse once, verify.
        let content = notify_sign_content(p.iter().map(|(k, v)| (k.as_str(), v.as_str())), NotifySignRule::ExcludeSignType, true);
        let sign = key().sign(SignType::Rsa2, content.as_bytes()).unwrap();
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &p {
            body.append_pair(k, v);
        }
        body.append_pair("sign_type", "RSA2");
        body.append_pair("sign", &sign);
        let body = body.finish();
        let verifier = NotifyVerifier::new(key().public_key());
        let verified = verifier.verify_body(body.as_bytes()).unwrap();
        for (k, v) in &p {
            prop_assert_eq!(verified.get().get(k), Some(v.as_str()));
        }
        // A second decoding pass over the values (the classic bug) is detected
        // whenever it changes something.
        let twice: Vec<(String, String)> = verified.get().iter()
            .map(|(k, v)| (k.to_owned(), percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned()))
            .collect();
        if twice.iter().zip(verified.get().iter()).any(|((_, a), (_, b))| a != b) {
            let p2 = FormParams::from_pairs(twice).unwrap();
            prop_assert!(verifier.verify(p2).is_err());
        }
    }
}
