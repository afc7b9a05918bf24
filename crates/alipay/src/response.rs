//! Gateway responses (docs/protocol.md §4): cut the signed node out of the raw text exactly as
//! received (docs/protocol.md §4.2, never re-serialise), verify it, and only then decode it.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::aes::AesKey;
use crate::charset::Charset;
use crate::error::{Error, GatewayError, ResponseProblem, Result};
use crate::keys::SignType;
use crate::verify::AlipayKeys;

/// The signed part of a response body, borrowed from the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNode<'a> {
    /// `<method>_response` or `error_response`.
    pub name: String,
    /// The exact signed text: an object `{…}`, or for encrypted APIs a string
    /// token **including** its quotes.
    pub text: &'a str,
    /// Whether the node is an encrypted string.
    pub encrypted: bool,
    /// The root-level `sign`, if any.
    pub sign: Option<String>,
    /// The root-level `alipay_cert_sn` (certificate mode), if any.
    pub alipay_cert_sn: Option<String>,
}

/// `alipay.trade.query` → `alipay_trade_query_response`.
pub fn response_node_name(method: &str) -> String {
    format!("{}_response", method.replace('.', "_"))
}

/// Extracts the signed node of `method`'s response (falling back to
/// `error_response`) and the root-level `sign` / `alipay_cert_sn`.
///
/// # Errors
/// [`Error::MalformedResponse`] when the body is not JSON, the node is
/// missing or unterminated, or the node appears twice.
pub fn extract_signed_node<'a>(raw: &'a str, method: &str) -> Result<SignedNode<'a>> {
    let name = response_node_name(method);
    let (name, start) = match find_key(raw, &name, 0) {
        Some(i) => (name, i),
        None => match find_key(raw, "error_response", 0) {
            Some(i) => ("error_response".to_owned(), i),
            None => return Err(Error::MalformedResponse(ResponseProblem::NodeMissing(name))),
        },
    };
    let bytes = raw.as_bytes();
    let (end, encrypted) = match bytes[start] {
        b'{' => (scan_object(bytes, start).ok_or_else(|| bad(&name))?, false),
        b'"' => (scan_string(bytes, start).ok_or_else(|| bad(&name))?, true),
        _ => return Err(bad(&name)),
    };
    let text = &raw[start..end];
    if find_key(raw, &name, end).is_some() {
        return Err(Error::MalformedResponse(ResponseProblem::DuplicateNode(
            name,
        )));
    }
    #[derive(Deserialize)]
    struct Root {
        sign: Option<String>,
        alipay_cert_sn: Option<String>,
    }
    let root: Root = serde_json::from_str(raw)
        .map_err(|_| Error::MalformedResponse(ResponseProblem::NotJson))?;
    Ok(SignedNode {
        name,
        text,
        encrypted,
        sign: root.sign,
        alipay_cert_sn: root.alipay_cert_sn,
    })
}

fn bad(name: &str) -> Error {
    Error::MalformedResponse(ResponseProblem::BadNode(name.to_owned()))
}

/// Finds `"key"` used as an object key at or after `from`; returns the index
/// of the value's first byte (after the colon and whitespace).
fn find_key(raw: &str, key: &str, from: usize) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let bytes = raw.as_bytes();
    let mut pos = from;
    while let Some(off) = raw.get(pos..)?.find(&needle) {
        let mut i = pos + off + needle.len();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b':' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() {
                return Some(i);
            }
            return None;
        }
        pos = pos + off + 1;
    }
    None
}

/// From a `{` at `start`, the index just past its matching `}`; braces
/// inside strings (with escapes) do not count.
fn scan_object(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// From a `"` at `start`, the index just past the closing quote.
fn scan_string(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => return Some(i + 1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Deserialize)]
struct Status {
    code: Option<String>,
    #[serde(default)]
    msg: String,
    sub_code: Option<String>,
    sub_msg: Option<String>,
}

/// How a response must be checked.
#[derive(Debug, Clone, Copy)]
pub struct ResponseCheck<'a> {
    /// The API method called.
    pub method: &'a str,
    /// Alipay's keys.
    pub keys: &'a AlipayKeys,
    /// The request's `sign_type` (Alipay answers in kind).
    pub sign_type: SignType,
    /// The request's charset.
    pub charset: Charset,
    /// The content-encryption key, for encrypted APIs.
    pub aes: Option<&'a AesKey>,
}

/// A verified, decoded node: the typed body and the node text it came from.
#[derive(Debug, Clone)]
pub struct VerifiedResponse<T> {
    /// The decoded business fields.
    pub body: T,
    /// The (decrypted) JSON text of the node.
    pub node_json: String,
}

/// Verifies a raw response body and decodes its node into `T`.
///
/// Policy (docs/protocol.md §4.2, as the Java SDK): a success must carry a signature that
/// verifies; a failure is verified when it carries a non-empty `sign`
/// (a bad one is [`Error::BadSignature`]) and reported unverified otherwise.
///
/// # Errors
/// [`Error::MalformedResponse`], [`Error::MissingSignature`],
/// [`Error::BadSignature`], [`Error::Gateway`] for `code` ≠ `10000`,
/// [`Error::Json`] when the node does not fit `T`.
pub fn verify_response<T: DeserializeOwned>(
    raw: &[u8],
    check: &ResponseCheck<'_>,
) -> Result<VerifiedResponse<T>> {
    let raw =
        std::str::from_utf8(raw).map_err(|_| Error::MalformedResponse(ResponseProblem::NotJson))?;
    let node = extract_signed_node(raw, check.method)?;
    let signed = match node.sign.as_deref().filter(|s| !s.is_empty()) {
        Some(sign) => {
            verify_node(&node, sign, check)?;
            true
        }
        None => false,
    };
    let json = if node.encrypted {
        if !signed {
            return Err(Error::MissingSignature);
        }
        let aes = check.aes.ok_or(Error::Aes(
            "the response is encrypted but no AES key is configured",
        ))?;
        let cipher: String = serde_json::from_str(node.text).map_err(|source| Error::Json {
            context: "encrypted response node",
            source,
        })?;
        aes.decrypt(&cipher)?
    } else {
        node.text.to_owned()
    };
    let status: Status = serde_json::from_str(&json).map_err(|source| Error::Json {
        context: "response node",
        source,
    })?;
    // `alipay.system.oauth.token` answers success without `code` (the Java
    // SDK's success test is "no sub_code"); a node named after the method
    // with neither `code` nor `sub_code` is that success. Everything else
    // still needs `10000`.
    let success = match status.code.as_deref() {
        Some(code) => code == "10000",
        None => node.name != "error_response" && status.sub_code.is_none(),
    };
    if !success {
        return Err(Error::Gateway(Box::new(GatewayError {
            code: status.code.unwrap_or_default(),
            msg: status.msg,
            sub_code: status.sub_code,
            sub_msg: status.sub_msg,
            verified: signed,
            node: json,
        })));
    }
    if !signed {
        return Err(Error::MissingSignature);
    }
    let body = serde_json::from_str(&json).map_err(|source| Error::Json {
        context: "response node",
        source,
    })?;
    Ok(VerifiedResponse {
        body,
        node_json: json,
    })
}

fn verify_node(node: &SignedNode<'_>, sign: &str, check: &ResponseCheck<'_>) -> Result<()> {
    let bytes = check.charset.encode(node.text);
    let first = check.keys.verify_named(
        check.sign_type,
        &bytes,
        sign,
        node.alipay_cert_sn.as_deref(),
    );
    match first {
        Err(Error::BadSignature) if node.text.contains("\\/") => {
            // The Java SDK's documented fallback: some gateway paths signed
            // the text before escaping slashes.
            let unescaped = node.text.replace("\\/", "/");
            check.keys.verify_named(
                check.sign_type,
                &check.charset.encode(&unescaped),
                sign,
                node.alipay_cert_sn.as_deref(),
            )
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicate_node_is_rejected() {
        let raw = r#"{"a_b_response":{"code":"10000"},"sign":"x","a_b_response":{"code":"10000","evil":1}}"#;
        assert!(matches!(
            extract_signed_node(raw, "a.b"),
            Err(Error::MalformedResponse(ResponseProblem::DuplicateNode(_)))
        ));
    }

    #[test]
    fn error_response_fallback_and_braces_in_strings() {
        let raw = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_msg":"a } \" { b"},"sign":""}"#;
        let n = extract_signed_node(raw, "alipay.trade.query").unwrap();
        assert_eq!(n.name, "error_response");
        assert_eq!(
            n.text,
            r#"{"code":"40002","msg":"Invalid Arguments","sub_msg":"a } \" { b"}"#
        );
        assert_eq!(n.sign.as_deref(), Some(""));
    }

    /// A node without `code` (how `alipay.system.oauth.token` answers) is a
    /// success only when signed, named after the method and free of `sub_code`.
    #[test]
    fn success_without_code_needs_the_method_node_and_no_sub_code() {
        let key = crate::keys::AppPrivateKey::generate().unwrap();
        let keys = AlipayKeys::from(key.public_key());
        let check = ResponseCheck {
            method: "alipay.system.oauth.token",
            keys: &keys,
            sign_type: SignType::Rsa2,
            charset: Charset::Utf8,
            aes: None,
        };
        let answer = |node: &str, text: &str, signed: bool| {
            let sign = if signed {
                key.sign(SignType::Rsa2, text.as_bytes()).unwrap()
            } else {
                String::new()
            };
            let raw = format!(r#"{{"{node}":{text},"sign":"{sign}"}}"#);
            verify_response::<serde_json::Value>(raw.as_bytes(), &check)
        };
        let ok = answer(
            "alipay_system_oauth_token_response",
            r#"{"user_id":"2088"}"#,
            true,
        );
        assert_eq!(ok.unwrap().body["user_id"], "2088");
        assert!(matches!(
            answer(
                "alipay_system_oauth_token_response",
                r#"{"user_id":"2088"}"#,
                false
            ),
            Err(Error::MissingSignature)
        ));
        assert!(matches!(
            answer("alipay_system_oauth_token_response", r#"{"sub_code":"isv.code-invalid"}"#, true),
            Err(Error::Gateway(g)) if g.verified
        ));
        assert!(matches!(
            answer("error_response", r#"{"user_id":"2088"}"#, true),
            Err(Error::Gateway(_))
        ));
        assert!(matches!(
            answer("alipay_system_oauth_token_response", r#"{"code":"40004","user_id":"2088"}"#, true),
            Err(Error::Gateway(g)) if g.code == "40004"
        ));
    }

    #[test]
    fn unterminated_and_missing_nodes_are_errors() {
        assert!(extract_signed_node(r#"{"a_response":{"code":"1""#, "a").is_err());
        assert!(extract_signed_node(r#"{"other":{}}"#, "a").is_err());
        assert!(extract_signed_node(r#"{"a_response":12}"#, "a").is_err());
    }

    proptest! {
        #[test]
        fn extractor_never_panics(s in "\\PC*", m in "[a-z.]{0,12}") {
            let _ = extract_signed_node(&s, &m);
        }

        #[test]
        fn extractor_never_panics_on_near_misses(body in "[{}\"\\\\:a_response ,x]{0,64}") {
            let raw = format!("{{\"a_response\":{body}");
            let _ = extract_signed_node(&raw, "a");
        }
    }
}
