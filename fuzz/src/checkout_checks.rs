//! Properties of `zhifu-checkout`'s parser of untrusted bytes: the
//! `POST /checkout` body, read straight into its struct.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/checkout_body.rs`) and
//! by `crates/zhifu-checkout/tests/fuzz_regressions.rs`; it uses only
//! `zhifu-checkout`, `zhifu-server` (its strict reader, the reference for
//! "unambiguous") and `serde_json`.

use serde_json::Value;
use zhifu_checkout::api::parse_create_body;
use zhifu_server::http::body::strict_json;

const FIELDS: [&str; 6] = [
    "sku",
    "quantity",
    "channel",
    "return_url",
    "buyer_id",
    "buyer_open_id",
];

/// Whether the handler could act on these fields (it refuses the rest by
/// type before looking further).
fn usable(v: &Value) -> bool {
    v["sku"].is_string() && v["quantity"].is_u64() && v["channel"].is_string()
}

/// `checkout_body`: a body the handler can act on is one that the strict
/// reader (duplicate keys refused at every level) reads to the same
/// fields, and the other way round: no field given twice, no unknown
/// field, no trailing data slips through either way.
pub fn checkout_body(data: &[u8]) {
    let parsed = parse_create_body(data);
    let strict = strict_json(data);
    if let Ok(v) = &parsed
        && usable(v)
    {
        let s = strict
            .as_ref()
            .unwrap_or_else(|e| panic!("the checkout accepted an ambiguous body ({e}): {v}"));
        let m = s.as_object().expect("the body is an object");
        for name in FIELDS {
            assert_eq!(
                m.get(name).unwrap_or(&Value::Null),
                &v[name],
                "`{name}` reads differently"
            );
        }
        assert!(m.keys().all(|k| FIELDS.contains(&k.as_str())));
    }
    if let Ok(Value::Object(m)) = &strict {
        let as_expected = m.keys().all(|k| FIELDS.contains(&k.as_str()))
            && ["return_url", "buyer_id", "buyer_open_id"]
                .iter()
                .all(|k| m.get(*k).is_none_or(|v| v.is_null() || v.is_string()))
            && ["sku", "quantity", "channel"]
                .iter()
                .all(|k| m.contains_key(*k));
        if as_expected {
            let v = parsed
                .as_ref()
                .unwrap_or_else(|e| panic!("the checkout refused a well-formed body: {e}"));
            for name in FIELDS {
                assert_eq!(m.get(name).unwrap_or(&Value::Null), &v[name]);
            }
        }
    }
}
