//! Properties of `zhifu-server`'s parsers of untrusted bytes: the strict
//! JSON body reader of the merchant API and the webhook signature header.
//!
//! Shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and by
//! `crates/zhifu-server/tests/fuzz_regressions.rs`; it uses only
//! `zhifu-server`, `alipay` and `serde_json`.

use std::time::Duration;

use serde_json::Value;
use zhifu_server::http::body::{Fields, canonical_json, strict_json};
use zhifu_server::webhook::{self, DEFAULT_TOLERANCE, VerifyError};

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

/// `server_json`: the strict reader accepts exactly what `serde_json`
/// accepts, with the same value, except an object with a key twice (which
/// `serde_json::Value` would resolve silently, last one winning); its
/// canonical form reads back to itself; the typed field readers never
/// panic.
pub fn server_json(data: &[u8]) {
    let strict = strict_json(data);
    let loose = serde_json::from_slice::<Value>(data);
    match (&strict, &loose) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the strict reader reads another value"),
        (Ok(a), Err(e)) => panic!("accepted what serde_json refuses ({e}): {a}"),
        (Err(e), Ok(_)) => assert!(
            e.to_string().contains("duplicate key"),
            "refused valid JSON without a duplicate key: {e}"
        ),
        (Err(_), Err(_)) => {}
    }
    let Ok(v) = strict else { return };
    let canonical = canonical_json(&v);
    let again = strict_json(canonical.as_bytes())
        .unwrap_or_else(|e| panic!("the canonical form {canonical:?} is refused: {e}"));
    // Floats are left out: serde_json reads a printed f64 back only to the
    // nearest value without its `float_roundtrip` feature.
    if !has_float(&v) {
        assert_eq!(again, v, "canonical JSON reads back to another value");
        assert_eq!(canonical_json(&again), canonical);
    }
    if let Value::Object(m) = &v {
        let allowed = [
            "subject",
            "total_amount",
            "body",
            "out_trade_no",
            "expires_in_minutes",
            "metadata",
            "amount",
        ];
        if let Ok(f) = Fields::new(m, &allowed) {
            for name in allowed {
                if let Ok(Some(s)) = f.str_opt(name) {
                    assert!(!s.chars().any(char::is_control));
                }
                if let Ok(a) = f.amount_req(name) {
                    assert!(a.fen() > 0);
                    let text = m[name].as_str().expect("an amount is a string");
                    assert_eq!(alipay::Amount::parse(text).ok(), Some(a));
                }
                let _ = f.int_opt(name);
                let _ = f.object_opt(name);
            }
        } else {
            assert!(m.keys().any(|k| !allowed.contains(&k.as_str())));
        }
    }
}

const SECRET: &[u8] = b"whsec_fuzz_0123456789abcdef";
const T: i64 = 1_767_225_600;

/// The header as documented: `t=<decimal>` once, `v1=<64 hex digits>`
/// any number of times, other `k=v` ignored, parts separated by `,` with
/// optional blanks. Returns `t` and the `v1` values.
fn documented(header: &str) -> Option<(i64, Vec<&str>)> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "t" if t.is_none() => {
                let digits = v.strip_prefix('-').unwrap_or(v);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                t = Some(v.parse().ok()?);
            }
            "t" => return None,
            "v1" => sigs.push(v),
            _ => {}
        }
    }
    Some((t?, sigs))
}

/// `webhook_signature`: a header verifies only if it carries `t` and the
/// hex HMAC of the payload as documented, with `t` within the tolerance.
///
/// `data[0..2]`: where one byte of the correct header is changed
/// (`data[2]`: to what; `data[3]`: overwrite, insert or delete, or keep the
/// fuzzer's own header from `data[4..]` up to the first `\n`); `data[3]`
/// also moves the receiver's clock; the payload is the rest after the
/// header.
pub fn webhook_signature(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let at = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let byte = data[2];
    let mode = data[3] % 4;
    let skew = i64::from(data[3] / 4) * 5 - 300;
    let now = T + skew;
    let rest = &data[4..];
    let (own, payload) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) if mode == 3 => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    };
    let good = webhook::sign(payload, SECRET, T);
    let expected_hex = good.split_once("v1=").map(|(_, h)| h).expect("v1");
    assert_eq!(
        webhook::verify(payload, &good, SECRET, DEFAULT_TOLERANCE, T),
        Ok(())
    );
    let mut header = match own {
        Some(h) => h.to_vec(),
        None => good.clone().into_bytes(),
    };
    if own.is_none() && !header.is_empty() {
        let at = at % (header.len() + 1);
        match mode {
            0 if at < header.len() => header[at] = byte,
            1 => header.insert(at, byte),
            2 if at < header.len() => {
                header.remove(at);
            }
            _ => {}
        }
    }
    let Ok(header) = String::from_utf8(header) else {
        return;
    };
    let result = webhook::verify(payload, &header, SECRET, DEFAULT_TOLERANCE, now);
    if result.is_ok() {
        let (t, sigs) = documented(&header)
            .unwrap_or_else(|| panic!("a header that is not `t=…,v1=…` verified: {header:?}"));
        assert_eq!(t, T, "a moved timestamp verified: {header:?}");
        assert!(
            sigs.iter().any(|s| s.eq_ignore_ascii_case(expected_hex)),
            "a signature that is not the HMAC's hex verified: {header:?}"
        );
        assert!(now.abs_diff(t) <= DEFAULT_TOLERANCE.as_secs());
    }
    if documented(&header).is_none() {
        assert!(result.is_err());
    }
    // A zero tolerance still accepts the exact time, nothing else.
    if result.is_ok() && now != T {
        assert_eq!(
            webhook::verify(payload, &header, SECRET, Duration::ZERO, now),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }
}
