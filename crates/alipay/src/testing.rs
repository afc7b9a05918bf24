//! Alipay's side of the signatures, for emulators and tests (feature `testing`).
//!
//! A merchant only ever *verifies* what Alipay signs; this module is the
//! other half: it signs notifications, `return_url` parameters and gateway
//! responses with an "Alipay" private key, by exactly the rules the rest of
//! the crate verifies ([`NotifyVerifier`], [`verify_response`]). The
//! `zhifu-sandbox` gateway signs everything through it, and every test that
//! pretends to be Alipay should too, so there is one implementation of
//! Alipay's signing and it is checked against the crate's own verifiers.
//!
//! It sits behind a feature because no merchant needs it: shipping it by
//! default would invite code that "signs its own notifications". Like the
//! rest of the crate it does no I/O.
//!
//! ```
//! # fn main() -> Result<(), alipay::Error> {
//! use alipay::testing::AlipaySigner;
//! use alipay::{Charset, NotifyVerifier, SignType};
//!
//! let alipay = AlipaySigner::generate()?;
//! let body = alipay.notification_body(&[("out_trade_no", "ORDER_1"), ("trade_status", "TRADE_SUCCESS")])?;
//! let verified = NotifyVerifier::new(alipay.public_key()).verify_body(body.as_bytes())?;
//! assert_eq!(verified.get().get("out_trade_no"), Some("ORDER_1"));
//!
//! let response = alipay.sign_response("alipay_trade_close_response", r#"{"code":"10000","msg":"Success"}"#, SignType::Rsa2, Charset::Utf8)?;
//! assert!(response.starts_with(r#"{"alipay_trade_close_response":{"code":"10000","msg":"Success"},"sign":""#));
//! # Ok(()) }
//! ```
//!
//! [`verify_response`]: crate::response::verify_response

use std::borrow::Cow;
use std::fmt;

use crate::charset::Charset;
use crate::error::Result;
use crate::keys::{AlipayPublicKey, AppPrivateKey, SignType};
use crate::notify::NotifyVerifier;
use crate::sign::{NotifySignRule, notify_sign_content};

/// Alipay's private key, signing what Alipay signs.
///
/// The crate's only RSA private-key type is [`AppPrivateKey`]; this wrapper
/// gives it Alipay's role, so a test cannot mix up "the app signs a request"
/// and "Alipay signs a notification".
pub struct AlipaySigner {
    key: AppPrivateKey,
}

impl fmt::Debug for AlipaySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipaySigner")
            .field("key", &self.key)
            .finish()
    }
}

impl AlipaySigner {
    /// Alipay's side of `key`.
    pub fn new(key: AppPrivateKey) -> Self {
        AlipaySigner { key }
    }

    /// A signer with a fresh RSA-2048 key (slow: share one across tests).
    ///
    /// # Errors
    /// [`crate::Error::Crypto`] if the system RNG fails.
    pub fn generate() -> Result<Self> {
        Ok(AlipaySigner::new(AppPrivateKey::generate()?))
    }

    /// The public key merchants configure as "Alipay's public key".
    pub fn public_key(&self) -> AlipayPublicKey {
        self.key.public_key()
    }

    /// A verifier for what this signer signs.
    pub fn verifier(&self) -> NotifyVerifier {
        NotifyVerifier::new(self.public_key())
    }

    /// The private key (e.g. to store it, [`AppPrivateKey::to_pkcs8_base64`]).
    pub fn private_key(&self) -> &AppPrivateKey {
        &self.key
    }

    /// Signs raw bytes, for shapes this module does not build (the app-pay
    /// result the Alipay app hands back, for instance).
    ///
    /// # Errors
    /// [`crate::Error::Crypto`] (not for a valid key).
    pub fn sign(&self, sign_type: SignType, message: &[u8]) -> Result<String> {
        self.key.sign(sign_type, message)
    }

    /// Signs notification or `return_url` parameters by their rule
    /// ([`NotifySignRule::ExcludeSignType`]): any `sign`/`sign_type` given is
    /// dropped, the sign content is every other pair (empty values left
    /// out) sorted by key, encoded in `charset`; `sign_type` and then `sign`
    /// are appended. Returns the
    /// pairs in order, ready for [`form_body`].
    ///
    /// # Errors
    /// [`crate::Error::Crypto`] (not for a valid key).
    pub fn sign_notification(
        &self,
        mut pairs: Vec<(String, String)>,
        sign_type: SignType,
        charset: Charset,
    ) -> Result<Vec<(String, String)>> {
        pairs.retain(|(k, _)| k != "sign" && k != "sign_type");
        let content = notify_sign_content(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            NotifySignRule::ExcludeSignType,
            false,
        );
        let sign = self.key.sign(sign_type, &charset.encode(&content))?;
        pairs.push(("sign_type".into(), sign_type.as_str().into()));
        pairs.push(("sign".into(), sign));
        Ok(pairs)
    }

    /// A UTF-8, RSA2-signed notification body for `fields`, url-encoded as
    /// Alipay POSTs it.
    ///
    /// # Errors
    /// As [`AlipaySigner::sign_notification`].
    pub fn notification_body(&self, fields: &[(&str, &str)]) -> Result<String> {
        let pairs = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let signed = self.sign_notification(pairs, SignType::Rsa2, Charset::Utf8)?;
        Ok(form_body(&signed, Charset::Utf8))
    }

    /// A gateway response `{"<node>":<text>,"sign":"…"}`, `sign` last, as
    /// [`crate::response::extract_signed_node`] cuts it apart: `text` is the node exactly as sent (an object, or for encrypted answers a
    /// JSON string **with** its quotes) and is signed as encoded in
    /// `charset`. The answer carries no `alipay_cert_sn` (public-key mode).
    ///
    /// # Errors
    /// [`crate::Error::Crypto`] (not for a valid key).
    pub fn sign_response(
        &self,
        node: &str,
        text: &str,
        sign_type: SignType,
        charset: Charset,
    ) -> Result<String> {
        let sign = self.key.sign(sign_type, &charset.encode(text))?;
        Ok(response_body(node, text, Some(&sign)))
    }
}

/// A response body `{"<node>":<text>}`, with `,"sign":"…"` when `sign` is
/// given: what the gateway answers when it cannot tell who asked (unsigned)
/// or after [`AlipaySigner::sign_response`] (signed).
pub fn response_body(node: &str, text: &str, sign: Option<&str>) -> String {
    let node_key = serde_json::Value::from(node).to_string();
    match sign {
        Some(sig) => format!("{{{node_key}:{text},\"sign\":\"{sig}\"}}"),
        None => format!("{{{node_key}:{text}}}"),
    }
}

/// Url-encodes pairs as a form (`+` for spaces), values in `charset`.
pub fn form_body(pairs: &[(String, String)], charset: Charset) -> String {
    fn gbk(s: &str) -> Cow<'_, [u8]> {
        Charset::Gbk.encode(s)
    }
    let mut ser = form_urlencoded::Serializer::new(String::new());
    if charset == Charset::Gbk {
        ser.encoding_override(Some(&gbk));
    }
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::Error;
    use crate::response::{ResponseCheck, verify_response};
    use crate::verify::AlipayKeys;

    fn signer() -> &'static AlipaySigner {
        static S: OnceLock<AlipaySigner> = OnceLock::new();
        S.get_or_init(|| AlipaySigner::generate().unwrap())
    }

    fn notification_fields() -> Vec<(String, String)> {
        [
            ("notify_id", "2024010200222000000000000000000001"),
            ("charset", "gbk"),
            ("out_trade_no", "ORDER-1"),
            ("subject", "马克杯 & 杯垫 = 2+1"),
            ("total_amount", "88.88"),
            ("trade_status", "TRADE_SUCCESS"),
            ("sign_type", "stale"),
            ("sign", "stale"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Changes one byte of the signed value (not of the signature).
    fn tamper(body: &str) -> String {
        body.replacen("88.88", "88.89", 1)
    }

    #[test]
    fn notifications_verify_in_both_charsets_and_sign_types() {
        for (charset, sign_type) in [
            (Charset::Utf8, SignType::Rsa2),
            (Charset::Gbk, SignType::Rsa2),
            (Charset::Gbk, SignType::Rsa),
        ] {
            let mut fields = notification_fields();
            fields[1].1 = charset.as_str().to_owned();
            let pairs = signer()
                .sign_notification(fields, sign_type, charset)
                .unwrap();
            let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys.iter().filter(|k| **k == "sign").count(), 1);
            assert_eq!(&keys[keys.len() - 2..], ["sign_type", "sign"]);
            let body = form_body(&pairs, charset);
            let v = signer().verifier().verify_body(body.as_bytes()).unwrap();
            assert_eq!(v.rule(), NotifySignRule::ExcludeSignType);
            assert_eq!(v.get().get("subject"), Some("马克杯 & 杯垫 = 2+1"));
            assert_eq!(v.get().get("sign_type"), Some(sign_type.as_str()));
            assert!(matches!(
                signer().verifier().verify_body(tamper(&body).as_bytes()),
                Err(Error::BadSignature)
            ));
        }
    }

    #[test]
    fn notification_body_is_utf8_rsa2() {
        let body = signer()
            .notification_body(&[("total_amount", "88.88"), ("subject", "a b")])
            .unwrap();
        assert!(body.starts_with("total_amount=88.88&subject=a+b&sign_type=RSA2&sign="));
        signer().verifier().verify_body(body.as_bytes()).unwrap();
        let other = AlipaySigner::new(AppPrivateKey::generate().unwrap());
        assert!(other.verifier().verify_body(body.as_bytes()).is_err());
        assert!(
            signer()
                .verifier()
                .verify_body(tamper(&body).as_bytes())
                .is_err()
        );
    }

    #[test]
    fn responses_verify_with_the_response_verifier() {
        let keys = AlipayKeys::from(signer().public_key());
        let text = r#"{"code":"10000","msg":"Success","out_trade_no":"A\/1","total_amount":"88.88","subject":"杯"}"#;
        for charset in [Charset::Utf8, Charset::Gbk] {
            let check = ResponseCheck {
                method: "alipay.trade.query",
                keys: &keys,
                sign_type: SignType::Rsa2,
                charset,
                aes: None,
            };
            let body = signer()
                .sign_response("alipay_trade_query_response", text, SignType::Rsa2, charset)
                .unwrap();
            assert!(body.starts_with(&format!(
                "{{\"alipay_trade_query_response\":{text},\"sign\":\""
            )));
            let v = verify_response::<serde_json::Value>(body.as_bytes(), &check).unwrap();
            assert_eq!(v.body["out_trade_no"], "A/1");
            assert!(matches!(
                verify_response::<serde_json::Value>(tamper(&body).as_bytes(), &check),
                Err(Error::BadSignature)
            ));
        }
    }

    #[test]
    fn unsigned_bodies_and_node_names_are_json() {
        assert_eq!(
            response_body("error_response", r#"{"code":"40002"}"#, None),
            r#"{"error_response":{"code":"40002"}}"#
        );
        assert_eq!(
            response_body("a\"b", "{}", Some("s")),
            r#"{"a\"b":{},"sign":"s"}"#
        );
    }
}
