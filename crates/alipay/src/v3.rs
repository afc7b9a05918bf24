//! OpenAPI v3 (docs/protocol.md §9): the `Authorization: ALIPAY-SHA256withRSA …` request
//! header and the verification of signed responses.

use crate::error::{Error, Result};
use crate::keys::{AppPrivateKey, SignType};
use crate::verify::AlipayKeys;

/// The parts of a v3 request that are signed.
#[derive(Debug, Clone, Copy)]
pub struct V3Request<'a> {
    /// `GET`, `POST`, … (upper-cased when signed).
    pub http_method: &'a str,
    /// Path plus `?query` if any, without scheme and host.
    pub path_and_query: &'a str,
    /// The body exactly as sent (empty for GET; ciphertext when encrypted).
    pub body: &'a str,
    /// The app auth token, when calling on behalf of a merchant.
    pub app_auth_token: Option<&'a str>,
}

/// The identity part of the header.
#[derive(Debug, Clone, Copy)]
pub struct V3Auth<'a> {
    /// `app_id`.
    pub app_id: &'a str,
    /// `app_cert_sn` in certificate mode.
    pub app_cert_sn: Option<&'a str>,
    /// A unique random string per request.
    pub nonce: &'a str,
    /// Unix epoch milliseconds.
    pub timestamp_ms: u64,
}

impl V3Auth<'_> {
    /// The authString (`app_id=…,[app_cert_sn=…,]nonce=…,timestamp=…`).
    pub fn auth_string(&self) -> String {
        let mut s = format!("app_id={}", self.app_id);
        if let Some(sn) = self.app_cert_sn {
            s.push_str(&format!(",app_cert_sn={sn}"));
        }
        s.push_str(&format!(
            ",nonce={},timestamp={}",
            self.nonce, self.timestamp_ms
        ));
        s
    }
}

/// The string to sign (docs/protocol.md §9.2): authString, method, URI, body, and the app
/// auth token when used, each line ending in `\n`.
pub fn string_to_sign(auth_string: &str, req: &V3Request<'_>) -> String {
    let mut s = format!(
        "{auth_string}\n{}\n{}\n{}\n",
        req.http_method.to_ascii_uppercase(),
        req.path_and_query,
        req.body
    );
    if let Some(t) = req.app_auth_token {
        s.push_str(t);
        s.push('\n');
    }
    s
}

/// The complete `Authorization` header value.
///
/// # Errors
/// [`Error::Crypto`].
pub fn authorization(
    key: &AppPrivateKey,
    auth: &V3Auth<'_>,
    req: &V3Request<'_>,
) -> Result<String> {
    let auth_string = auth.auth_string();
    let sign = key.sign(SignType::Rsa2, string_to_sign(&auth_string, req).as_bytes())?;
    Ok(format!("ALIPAY-SHA256withRSA {auth_string},sign={sign}"))
}

/// The signature headers of a v3 response.
#[derive(Debug, Clone, Copy)]
pub struct V3ResponseHeaders<'a> {
    /// `alipay-timestamp`.
    pub timestamp: &'a str,
    /// `alipay-nonce`.
    pub nonce: &'a str,
    /// `alipay-signature`.
    pub signature: &'a str,
    /// `alipay-sn` (certificate mode).
    pub sn: Option<&'a str>,
}

/// Verifies a v3 response: `timestamp\nnonce\nbody\n` with SHA256withRSA.
///
/// # Errors
/// [`Error::BadSignature`], [`Error::MissingSignature`], [`Error::UnknownAlipayCert`].
pub fn verify_response(
    keys: &AlipayKeys,
    headers: &V3ResponseHeaders<'_>,
    body: &[u8],
) -> Result<()> {
    if headers.signature.is_empty() {
        return Err(Error::MissingSignature);
    }
    let mut msg = Vec::with_capacity(body.len() + 64);
    msg.extend_from_slice(headers.timestamp.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(headers.nonce.as_bytes());
    msg.push(b'\n');
    msg.extend_from_slice(body);
    msg.push(b'\n');
    keys.verify_named(SignType::Rsa2, &msg, headers.signature, headers.sn)
}
