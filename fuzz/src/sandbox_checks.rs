//! Properties of the sandbox's gateway intake (`zhifu-sandbox`'s
//! `intake`): the query and the body of a gateway request, merged and
//! decoded once in the request's charset.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/sandbox_intake.rs`) and by
//! `crates/zhifu-sandbox/tests/fuzz_regressions.rs`; it uses only
//! `zhifu-sandbox` and `alipay`.

use alipay::{Charset, FormParams};
use zhifu_sandbox::{DuplicateParams, fuzz_intake};

fn form_encode(bytes: &[u8]) -> String {
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

fn form_body(pairs: &[(String, String)], charset: Charset) -> String {
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

/// `sandbox_intake`: keys come out unique; a body-only request serialised
/// again in its charset reads back to the same pairs; and the sandbox reads
/// a UTF-8 body without `charset` or repeated keys exactly as the SDK's
/// notification parser does.
///
/// `data[0]`: bit 0 the default charset (UTF-8/GBK), bits 1–2 the
/// duplicate policy; `data[1..]`: the query, a `\n`, the body (no `\n`:
/// all body).
pub fn sandbox_intake(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let default = if flags & 1 == 0 {
        Charset::Utf8
    } else {
        Charset::Gbk
    };
    let dup = match (flags >> 1) % 3 {
        0 => DuplicateParams::BodyWins,
        1 => DuplicateParams::QueryWins,
        _ => DuplicateParams::Reject,
    };
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let Ok(pairs) = fuzz_intake(query, body, default, dup) else {
        return;
    };
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), pairs.len(), "a key came out twice");
    if query.is_empty() {
        let again = form_body(&pairs, default);
        let back = fuzz_intake(b"", again.as_bytes(), default, dup)
            .unwrap_or_else(|e| panic!("the re-serialised body {again:?} is refused: {e}"));
        assert_eq!(back, pairs, "intake → serialise → intake changed the pairs");
        if default == Charset::Utf8 && !pairs.iter().any(|(k, _)| k == "charset") {
            // Same bytes, no repeated key (the SDK refuses those): the
            // notification parser reads the same pairs.
            let raw_keys = body.split(|&b| b == b'&').filter(|s| !s.is_empty()).count();
            if raw_keys == pairs.len() {
                let sdk = FormParams::parse(body)
                    .unwrap_or_else(|e| panic!("the SDK refuses what the sandbox read: {e}"));
                let sdk: Vec<(String, String)> = sdk
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
                assert_eq!(sdk, pairs, "the SDK and the sandbox decode differently");
            }
        }
    }
}
