//! The webhook signature: what a merchant's endpoint checks to know a
//! delivery came from its Zhifu. Pure functions over bytes, a Unix time and
//! the secret; sending lives in [`crate::outbox`], the secret and the
//! endpoint in [`crate::config::WebhookConfig`].
//!
//! ## The signature (the scheme merchants know from Stripe)
//!
//! ```text
//! Zhifu-Signature: t=1767225600,v1=<64 lower-case hex digits>
//! ```
//!
//! `v1` is the lower-case hex HMAC-SHA256, keyed with `ZHIFU_WEBHOOK_SECRET`
//! (its UTF-8 bytes), of `"{t}.{body}"`: the decimal Unix time `t`, a dot,
//! and the exact request body bytes. A receiver recomputes it over the raw
//! body (before any JSON parsing), compares in constant time, and refuses a
//! `t` further than a tolerance (five minutes is usual) from its own clock,
//! which bounds replays. Several `v1=` entries may appear; any match is
//! enough. Rust receivers call [`verify`].
//!
//! ## The same delivery under the Standard Webhooks spec
//!
//! Each delivery also carries `webhook-id` (the event id),
//! `webhook-timestamp` (the same `t`) and `webhook-signature: v1,<base64>`,
//! the standard base64 HMAC-SHA256 of `"{id}.{t}.{body}"` with the same
//! key ([`sign_standard`]), so receivers can verify with a Standard
//! Webhooks library (npm `standardwebhooks`, PyPI `standardwebhooks`, …).
//! Those libraries take the key as `whsec_` + base64 of its bytes:
//! [`standard_secret`] (`zhifu dev --webhook-url` prints it).

use std::time::Duration;

use aws_lc_rs::hmac;

use crate::domain::hex;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Zhifu-Signature";
/// The request header that carries the event id (also in the body).
pub const EVENT_ID_HEADER: &str = "Zhifu-Event-Id";
/// The tolerance receivers should use unless they have a reason not to.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a webhook did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The header is not `t=<unix>,v1=<hex>[,v1=<hex>…]`.
    #[error("the signature header is malformed")]
    MalformedHeader,
    /// No `v1` signature matches the body and the secret.
    #[error("no signature matches the payload")]
    SignatureMismatch,
    /// `t` is further from now than the tolerance allows.
    #[error("the signature's timestamp is outside the tolerance")]
    TimestampOutOfTolerance,
}

fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

fn signed_content(t: i64, payload: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(payload.len() + 12);
    msg.extend_from_slice(t.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(payload);
    msg
}

/// The `Zhifu-Signature` header value for `payload` signed at Unix time `t`
/// (what the sender puts on each delivery; receivers' tests can use it too).
pub fn sign(payload: &[u8], secret: &[u8], t: i64) -> String {
    let tag = hmac::sign(&key(secret), &signed_content(t, payload));
    format!("t={t},v1={}", hex(tag.as_ref()))
}

/// Standard Webhooks: the event id header.
pub const STANDARD_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks: the Unix time header.
pub const STANDARD_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks: the signature header.
pub const STANDARD_SIGNATURE_HEADER: &str = "webhook-signature";

/// The `webhook-signature` value (`v1,<base64>`) of a delivery of event
/// `id` with `payload` at Unix time `t`, under the Standard Webhooks spec.
pub fn sign_standard(id: &str, payload: &[u8], secret: &[u8], t: i64) -> String {
    use base64::Engine as _;
    let mut msg = Vec::with_capacity(id.len() + payload.len() + 14);
    msg.extend_from_slice(id.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(t.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(payload);
    let tag = hmac::sign(&key(secret), &msg);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// The webhook secret as Standard Webhooks libraries take it:
/// `whsec_` + base64 of the key bytes.
pub fn standard_secret(secret: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(secret)
    )
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    // Hex digits only: `from_str_radix` alone would also take a sign
    // (`+a` as 0x0a), so one signature would have many spellings.
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a delivery: `payload` is the raw request body, `header` the
/// `Zhifu-Signature` value, `now` the receiver's Unix time in seconds. The
/// comparison is constant-time (aws-lc's HMAC verify).
///
/// # Errors
/// [`VerifyError`]: a malformed header, no matching signature, or a
/// timestamp further than `tolerance` from `now`.
pub fn verify(
    payload: &[u8],
    header: &str,
    secret: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), VerifyError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedHeader)?;
        match k {
            "t" if t.is_none() => {
                // Decimal digits as `sign` writes them (`i64::from_str`
                // would also take `+`).
                let digits = v.strip_prefix('-').unwrap_or(v);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VerifyError::MalformedHeader);
                }
                t = Some(v.parse::<i64>().map_err(|_| VerifyError::MalformedHeader)?);
            }
            "t" => return Err(VerifyError::MalformedHeader),
            "v1" => sigs.push(v),
            // Other schemes may be added later; they are not ours to judge.
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::MalformedHeader)?;
    if sigs.is_empty() {
        return Err(VerifyError::MalformedHeader);
    }
    let k = key(secret);
    let msg = signed_content(t, payload);
    let matched = sigs
        .iter()
        .filter_map(|s| unhex(s))
        .any(|tag| hmac::verify(&k, &msg, &tag).is_ok());
    if !matched {
        return Err(VerifyError::SignatureMismatch);
    }
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(t) > tolerance.unsigned_abs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    Ok(())
}

/// Wait before attempt `n + 1` after `n` failed attempts: 30 s doubling,
/// at most 6 h (30 s, 1 min, 2 min, … about a day for 12 attempts).
pub fn backoff(failed_attempts: i64) -> Duration {
    let exp = u32::try_from(failed_attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(30u64.saturating_mul(1u64 << exp)).min(Duration::from_secs(6 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_vector() {
        use base64::Engine as _;
        // The example of the Standard Webhooks specification (its README
        // and its libraries' tests).
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        assert_eq!(
            sign_standard(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                br#"{"test": 2432232314}"#,
                &key,
                1_614_265_330
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(
            standard_secret(&key),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        );
    }
    use crate::config::DEFAULT_MAX_ATTEMPTS;

    const SECRET: &[u8] = b"whsec_test_0123456789abcdef";

    #[test]
    fn known_vector() {
        // HMAC-SHA256("whsec_test_0123456789abcdef", "1700000000.{\"a\":1}"),
        // computed independently with `openssl dgst -sha256 -hmac`.
        let h = sign(br#"{"a":1}"#, SECRET, 1_700_000_000);
        assert_eq!(
            h,
            "t=1700000000,v1=07728d7e7b1736bac3de36a46c9bc0b660d59aa4a6f251544124fede1dc42a6c"
        );
    }

    #[test]
    fn roundtrip_tamper_tolerance_and_rotation() {
        let body = br#"{"id":"evt_1","type":"order.paid"}"#;
        let h = sign(body, SECRET, 1_000_000);
        assert_eq!(
            verify(body, &h, SECRET, DEFAULT_TOLERANCE, 1_000_100),
            Ok(())
        );
        assert_eq!(
            verify(
                br#"{"id":"evt_1","type":"order.refunded"}"#,
                &h,
                SECRET,
                DEFAULT_TOLERANCE,
                1_000_000
            ),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(
                body,
                &h,
                b"another-secret-0123456",
                DEFAULT_TOLERANCE,
                1_000_000
            ),
            Err(VerifyError::SignatureMismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = h.replace("t=1000000", "t=1000001");
        assert_eq!(
            verify(body, &moved, SECRET, DEFAULT_TOLERANCE, 1_000_000),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify(body, &h, SECRET, DEFAULT_TOLERANCE, 1_000_301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(body, &h, SECRET, DEFAULT_TOLERANCE, 999_699),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        // Secret rotation: the old and the new signature side by side.
        let old = sign(body, b"old-secret-0123456789", 1_000_000);
        let both = format!("{h},v1={}", old.split("v1=").nth(1).unwrap());
        assert_eq!(
            verify(
                body,
                &both,
                b"old-secret-0123456789",
                DEFAULT_TOLERANCE,
                1_000_000
            ),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers() {
        for h in [
            "",
            "garbage",
            "t=abc,v1=00",
            "v1=00",
            "t=1",
            "t=1,t=2,v1=00",
            "t=+1,v1=00",
        ] {
            assert_eq!(
                verify(b"x", h, SECRET, DEFAULT_TOLERANCE, 1),
                Err(VerifyError::MalformedHeader),
                "{h:?}"
            );
        }
        assert_eq!(
            verify(b"x", "t=1,v1=zz", SECRET, DEFAULT_TOLERANCE, 1),
            Err(VerifyError::SignatureMismatch)
        );
        // A signature spelt with a sign in a hex pair is not that signature
        // (found by fuzz/fuzz_targets/webhook_signature.rs).
        let h = sign(b"x", SECRET, 1);
        let hex = h.split_once("v1=").unwrap().1;
        let i = (0..hex.len()).step_by(2).find(|&i| &hex[i..=i] == "0");
        if let Some(i) = i {
            let plus = format!("t=1,v1={}+{}", &hex[..i], &hex[i + 1..]);
            assert_eq!(
                verify(b"x", &plus, SECRET, DEFAULT_TOLERANCE, 1),
                Err(VerifyError::SignatureMismatch)
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(40), Duration::from_secs(6 * 3600));
        let total: Duration = (1..DEFAULT_MAX_ATTEMPTS).map(backoff).sum();
        assert!(total > Duration::from_secs(12 * 3600) && total < Duration::from_secs(48 * 3600));
    }
}
