//! Properties of the `alipay` crate's parsers of untrusted bytes, one
//! function per fuzz target. Each panics when a property fails.
//!
//! Shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and by
//! `crates/alipay/tests/fuzz_regressions.rs`, which replays the seeds and
//! the minimised crashes through them; so this file uses only the `alipay`
//! crate and its own dependencies.

use std::sync::OnceLock;

use alipay::amount::Amount;
use alipay::cert::{AlipayCertStore, cert_public_key, cert_sn, root_cert_sn, verify_chain};
use alipay::keys::describe_key_text;
use alipay::notify::{FormParams, NotifyVerifier, ReturnParams, TradeNotification};
use alipay::response::{ResponseCheck, extract_signed_node, response_node_name, verify_response};
use alipay::sign::{NotifySignRule, notify_sign_content};
use alipay::{AesKey, AlipayKeys, AlipayPublicKey, AppPrivateKey, Charset, SignType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

/// `application/x-www-form-urlencoded` encoding of raw bytes: unreserved
/// bytes as is, space as `+`, everything else `%XX`.
pub fn form_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A form body of `pairs`, text encoded in `charset`.
pub fn form_body(pairs: &[(String, String)], charset: Charset) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                form_encode(&charset.encode(k)),
                form_encode(&charset.encode(v))
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `form_params`: [`FormParams::parse`] → serialise in the form's charset →
/// parse gives the same pairs and charset; keys are unique; the typed
/// readers never panic on what parses.
pub fn form_params(data: &[u8]) {
    let Ok(p) = FormParams::parse(data) else {
        return;
    };
    let pairs: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), pairs.len(), "duplicate keys accepted");
    let body = form_body(&pairs, p.charset());
    let again = FormParams::parse(body.as_bytes())
        .unwrap_or_else(|e| panic!("the re-serialised form {body:?} does not parse: {e}"));
    assert_eq!(again, p, "parse → serialise → parse changed the form");
    let from_pairs = FormParams::from_pairs(pairs.clone()).expect("parsed pairs are valid");
    assert_eq!(from_pairs, p, "from_pairs disagrees with parse");
    assert_eq!(p.to_json().as_object().map(|m| m.len()), Some(pairs.len()));
}

/// `charset`: bytes that decode in a charset encode back to bytes that
/// decode to the same text (what is verified is what was received), and a
/// charset name parses back from its wire name.
pub fn charset(data: &[u8]) {
    for cs in [Charset::Utf8, Charset::Gbk] {
        if let Some(text) = cs.decode(data) {
            let bytes = cs.encode(&text);
            let back = cs.decode(&bytes);
            assert_eq!(
                back.as_deref(),
                Some(text.as_str()),
                "{} text does not survive encode → decode: {:?}",
                cs.as_str(),
                text
            );
            if cs == Charset::Utf8 {
                assert_eq!(bytes.as_ref(), data);
            }
        }
    }
    if let Ok(name) = std::str::from_utf8(data)
        && let Ok(cs) = Charset::parse(name)
    {
        assert_eq!(Charset::parse(cs.as_str()).ok(), Some(cs));
    }
}

/// A notification Alipay signed, for [`notify_verify`].
struct Original {
    pairs: Vec<(String, String)>,
    charset: Charset,
    /// The text that was signed (before encoding in `charset`).
    content: String,
    sign: String,
}

struct Signer {
    verifier: NotifyVerifier,
    originals: Vec<Original>,
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A notification to sign: (fields, charset, rule, empty values kept in
/// the signed text).
pub type Unsigned = (Vec<(String, String)>, Charset, NotifySignRule, bool);

/// The notifications [`notify_verify`] starts from. `sign_type` is always
/// a field; `sign` is added by the check.
pub fn notify_originals() -> Vec<Unsigned> {
    vec![
        (
            owned(&[
                ("gmt_create", "2019-08-15 15:56:22"),
                ("charset", "utf-8"),
                ("subject", "语雀空间 500人规模"),
                ("buyer_id", "2088102534368455"),
                ("notify_id", "2019081500222155624068450559358070"),
                (
                    "fund_bill_list",
                    r#"[{"amount":"0.10","fundChannel":"ALIPAYACCOUNT"}]"#,
                ),
                ("notify_type", "trade_status_sync"),
                ("trade_status", "TRADE_SUCCESS"),
                ("sign_type", "RSA2"),
                ("app_id", "2019073166072302"),
                ("seller_id", "2088531891668739"),
                ("gmt_payment", "2019-08-15 15:56:24"),
                ("notify_time", "2019-08-15 15:56:25"),
                ("out_trade_no", "20190815155618536-564-57"),
                ("total_amount", "0.10"),
                ("trade_no", "2019081522001468450512505578"),
            ]),
            Charset::Utf8,
            NotifySignRule::ExcludeSignType,
            false,
        ),
        (
            owned(&[
                ("notify_id", "2024010200222000000000000000000001"),
                ("notify_time", "2024-01-02 03:04:05"),
                ("charset", "gbk"),
                ("app_id", "2021000122671080"),
                ("out_trade_no", "ORDER-1"),
                ("trade_no", "2024010222001400000000000001"),
                ("subject", "马克杯 & 杯垫 = 2+1"),
                ("total_amount", "88.88"),
                ("trade_status", "TRADE_SUCCESS"),
                ("sign_type", "RSA2"),
            ]),
            Charset::Gbk,
            NotifySignRule::ExcludeSignType,
            false,
        ),
        (
            owned(&[
                ("app_id", "2017122801303261"),
                ("charset", "UTF-8"),
                ("commodity_order_id", "2019030800000018079639"),
                ("method", "alipay.open.servicemarket.order.notify"),
                ("notify_id", "2019030800222102023008121054923345"),
                ("notify_type", "servicemarket_order_notify"),
                ("sign_type", "RSA2"),
                ("title", "麦禾商城模版"),
                ("total_price", "0.00"),
                ("version", "1.0"),
            ]),
            Charset::Utf8,
            NotifySignRule::KeepSignType,
            false,
        ),
        (
            owned(&[
                ("notify_id", "n1"),
                ("app_id", "2021000122671080"),
                ("out_trade_no", "A_1"),
                ("passback_params", ""),
                ("total_amount", "1.00"),
                ("trade_status", "TRADE_CLOSED"),
                ("sign_type", "RSA2"),
            ]),
            Charset::Utf8,
            NotifySignRule::ExcludeSignType,
            true,
        ),
        (
            // A merchant that wrote an emoji into a GBK subject as the
            // character reference GBK forces on it.
            owned(&[
                ("notify_id", "n2"),
                ("charset", "gbk"),
                ("app_id", "2021000122671080"),
                ("out_trade_no", "B_2"),
                ("subject", "杯子&#128512;"),
                ("total_amount", "2.00"),
                ("trade_status", "TRADE_SUCCESS"),
                ("sign_type", "RSA2"),
            ]),
            Charset::Gbk,
            NotifySignRule::ExcludeSignType,
            false,
        ),
    ]
}

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| {
        let key = AppPrivateKey::generate().expect("RSA key generation");
        let originals = notify_originals()
            .into_iter()
            .map(|(pairs, charset, rule, keep_empty)| {
                let content = notify_sign_content(
                    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    rule,
                    keep_empty,
                );
                let sign = key
                    .sign(SignType::Rsa2, &charset.encode(&content))
                    .expect("signing");
                Original {
                    pairs,
                    charset,
                    content,
                    sign,
                }
            })
            .collect();
        Signer {
            verifier: NotifyVerifier::new(key.public_key()),
            originals,
        }
    })
}

/// The texts the verifier may check a form's signature against.
fn sign_contents(p: &FormParams) -> Vec<String> {
    let mut out = Vec::new();
    for rule in [
        NotifySignRule::ExcludeSignType,
        NotifySignRule::KeepSignType,
    ] {
        for keep_empty in [true, false] {
            out.push(notify_sign_content(p.iter(), rule, keep_empty));
        }
    }
    out
}

/// `notify_verify`: a form Alipay signed never verifies once a byte of a
/// signed field changes.
///
/// `data[0]` even: one byte of one field of original `data[1] % 5` is
/// replaced (field `data[2]`, offset `data[3..5]`, new byte `data[5]`), in
/// the form's charset; if the result verifies, the field must still decode
/// to the same text. `data[0]` odd: `data[2..]` is a whole form body, sent
/// with original `data[1] % 5`'s signature; if it verifies, its sign
/// content (as text) must be the one Alipay signed: texts that differ but
/// encode to the same bytes would let a changed field through.
pub fn notify_verify(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let s = signer();
    let o = &s.originals[usize::from(data[1]) % s.originals.len()];
    if data[0].is_multiple_of(2) {
        if data.len() < 6 {
            return;
        }
        let field = usize::from(data[2]) % o.pairs.len();
        if o.pairs[field].0 == "sign_type" {
            return;
        }
        let offset = usize::from(u16::from_le_bytes([data[3], data[4]]));
        let mut body = String::new();
        let mut changed = None;
        for (i, (k, v)) in o.pairs.iter().enumerate() {
            let mut value = o.charset.encode(v).into_owned();
            if i == field {
                if value.is_empty() {
                    value.push(data[5]);
                } else {
                    let at = offset % value.len();
                    if value[at] == data[5] {
                        return;
                    }
                    value[at] = data[5];
                }
                changed = Some((k.as_str(), v.as_str()));
            }
            body.push_str(&form_encode(&o.charset.encode(k)));
            body.push('=');
            body.push_str(&form_encode(&value));
            body.push('&');
        }
        body.push_str("sign=");
        body.push_str(&form_encode(o.sign.as_bytes()));
        let Ok(v) = s.verifier.verify_body(body.as_bytes()) else {
            return;
        };
        let (k, before) = changed.expect("a field was changed");
        assert_eq!(
            v.get().get(k),
            Some(before),
            "`{k}` changed and the form still verifies: {body}"
        );
    } else {
        let mut body = data[2..].to_vec();
        body.extend_from_slice(b"&sign=");
        body.extend_from_slice(form_encode(o.sign.as_bytes()).as_bytes());
        let Ok(v) = s.verifier.verify_body(&body) else {
            return;
        };
        assert!(
            sign_contents(v.get()).contains(&o.content),
            "a form whose sign content differs from what was signed verifies: {:?}",
            v.get()
        );
        // What verified is typed without panicking.
        let _ = TradeNotification::from_verified(&v);
        let _ = ReturnParams::from_verified(&v);
    }
}

/// The seed inputs of [`notify_verify`]: each original's body (free form)
/// and a one-byte change of each.
pub fn notify_verify_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, (pairs, charset, _, _)) in notify_originals().into_iter().enumerate() {
        let i = u8::try_from(i).expect("few originals");
        let mut free = vec![1, i];
        free.extend_from_slice(form_body(&pairs, charset).as_bytes());
        out.push(free);
        out.push(vec![0, i, 2, 0, 0, b'X']);
    }
    out
}

/// `response_node`: the extractor returns a substring of its input (valid
/// JSON by itself, an object or for encrypted answers a string) under the
/// method's node name or `error_response`, with the root's `sign`; the
/// verifier never accepts what Alipay's key did not sign.
///
/// The first line of `data` is the method, the rest the body.
pub fn response_node(data: &[u8]) {
    let (method, raw) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"alipay.trade.query"[..], data),
    };
    let Ok(method) = std::str::from_utf8(method) else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(raw)
        && let Ok(node) = extract_signed_node(text, method)
    {
        let start = (node.text.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
        assert!(
            start <= text.len() && text.len() - start >= node.text.len(),
            "the node is not inside the input"
        );
        assert_eq!(&text[start..start + node.text.len()], node.text);
        assert!(node.name == response_node_name(method) || node.name == "error_response");
        // JSON syntax, as the extractor checks the root (a number out of
        // f64's range is syntax, and refused later when typed).
        serde_json::from_str::<serde::de::IgnoredAny>(node.text)
            .unwrap_or_else(|e| panic!("the node {:?} is not JSON: {e}", node.text));
        let first = node.text.as_bytes().first().copied();
        assert!(first == Some(b'{') || first == Some(b'"'));
        assert_eq!(node.encrypted, first == Some(b'"'));
        if let Ok(value) = serde_json::from_str::<Value>(node.text) {
            assert_eq!(node.encrypted, value.is_string());
        }
        if let Ok(root) = serde_json::from_str::<Value>(text) {
            assert_eq!(
                node.sign.as_deref(),
                root.get("sign").and_then(Value::as_str),
                "the root `sign` differs from serde_json's reading"
            );
        }
    }
    let (keys, aes) = response_keys();
    for sign_type in [SignType::Rsa2, SignType::Rsa] {
        let check = ResponseCheck {
            method,
            keys,
            sign_type,
            charset: Charset::Utf8,
            aes: Some(aes),
        };
        if let Ok(v) = verify_response::<Value>(raw, &check) {
            panic!("an unsigned response verified: {:?}", v.node_json);
        }
    }
}

fn response_keys() -> (&'static AlipayKeys, &'static AesKey) {
    static K: OnceLock<(AlipayKeys, AesKey)> = OnceLock::new();
    let (k, a) = K.get_or_init(|| {
        let key = AppPrivateKey::generate().expect("RSA key generation");
        let aes = AesKey::from_base64("aa4BtZ4tspm2wnXLb1ThQA==").expect("an AES key");
        (AlipayKeys::from(key.public_key()), aes)
    });
    (k, a)
}

/// `amount`: an amount that parses formats back to the same string (with
/// the decimals padded to two), parses again to the same value, and reads
/// the same through serde; a refused string is refused by serde too.
pub fn amount(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let json = Value::String(s.to_owned()).to_string();
    match Amount::parse(s) {
        Ok(a) => {
            let expected = match s.split_once('.') {
                None => format!("{s}.00"),
                Some((_, f)) if f.len() == 1 => format!("{s}0"),
                Some(_) => s.to_owned(),
            };
            let formatted = a.to_string();
            assert_eq!(formatted, expected, "{s:?} formats differently");
            assert_eq!(Amount::parse(&formatted).ok(), Some(a));
            assert!(a <= Amount::MAX);
            assert_eq!(Amount::from_fen(a.fen()).ok(), Some(a));
            assert_eq!(Amount::payable(s).is_ok(), a.fen() > 0);
            assert_eq!(serde_json::from_str::<Amount>(&json).ok(), Some(a));
            assert_eq!(
                serde_json::to_string(&a).ok(),
                Some(format!("\"{formatted}\""))
            );
        }
        Err(_) => {
            assert!(serde_json::from_str::<Amount>(&json).is_err());
            assert!(Amount::payable(s).is_err());
        }
    }
    // A JSON number is never an amount.
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    assert!(serde_json::from_slice::<Amount>(data).is_err() || first == Some(&b'"'));
}

/// `keys`: a key that parses writes back (PEM and bare base64) to text
/// that parses to the same key; the description never fails where a
/// parse succeeded.
pub fn keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let described = describe_key_text(text);
    if let Ok(k) = AlipayPublicKey::parse(text) {
        assert!(described.is_ok());
        assert!(k.bits() >= 1024, "a {}-bit key was accepted", k.bits());
        assert_eq!(AlipayPublicKey::parse(&k.to_pem()).ok().as_ref(), Some(&k));
        assert_eq!(
            AlipayPublicKey::parse(&k.to_base64()).ok().as_ref(),
            Some(&k)
        );
        let _ = k.fingerprint();
    }
    if let Ok(k) = AppPrivateKey::parse(text) {
        assert!(described.is_ok());
        let public = k.public_key();
        let pem = k.to_pkcs8_pem().expect("a parsed key encodes");
        let again = AppPrivateKey::parse(&pem).expect("its PKCS#8 PEM parses");
        assert_eq!(again.public_key(), public);
        let b64 = k.to_pkcs8_base64().expect("a parsed key encodes");
        let again = AppPrivateKey::parse(&b64).expect("its bare base64 parses");
        assert_eq!(again.public_key(), public);
        // A private key is never taken for a public one and back.
        assert!(AlipayPublicKey::parse(text).is_err());
    }
}

/// `cert`: certificate SNs are 32 lower-case hex digits and the same for
/// the PEM and the DER form of a certificate; the public key inside a
/// certificate round-trips; a store built from it answers its SN. The
/// chain check (what a downloaded rotation certificate must pass) never
/// panics, only narrows when a validity instant is added, and passes only
/// for input that has an SN, against the input itself as the bundle or
/// against Alipay's real root bundle.
pub fn cert(data: &[u8]) {
    const ALIPAY_ROOTS: &[u8] = include_bytes!("../seeds/cert/nodejs-sdk_alipayRootCert.crt");
    for bundle in [data, ALIPAY_ROOTS] {
        let at_zero = verify_chain(data, bundle, Some(0));
        let timeless = verify_chain(data, bundle, None);
        if at_zero.is_ok() {
            assert!(
                timeless.is_ok(),
                "a validity instant only narrows the check"
            );
        }
        if timeless.is_ok() {
            assert!(cert_sn(data).is_ok(), "a certificate that chains has an SN");
        }
    }
    let sn = cert_sn(data);
    if let Ok(sn) = &sn {
        assert_eq!(sn.len(), 32);
        assert!(
            sn.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
    if let Ok(root) = root_cert_sn(data) {
        assert!(
            root.split('_')
                .all(|p| p.len() == 32 && p.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
    let key = cert_public_key(data);
    if let Ok(k) = &key {
        assert_eq!(AlipayPublicKey::parse(&k.to_pem()).ok().as_ref(), Some(k));
    }
    if let (Ok(sn), Ok(_)) = (&sn, &key) {
        let store = AlipayCertStore::new(data).expect("a certificate with an SN and a key");
        assert_eq!(store.current_sn().as_deref(), Some(sn.as_str()));
        assert!(store.get(sn).is_some());
    }
    // The DER of a certificate and its PEM have the same SN.
    if !data.starts_with(b"-----")
        && let Ok(sn) = &sn
        && !String::from_utf8_lossy(data).contains("-----BEGIN")
    {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            B64.encode(data)
        );
        assert_eq!(cert_sn(pem.as_bytes()).ok().as_ref(), Some(sn));
    }
}
