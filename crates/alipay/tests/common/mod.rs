//! Helpers shared by the upstream-vector test binaries (`vectors`, `vectors_responses`).

use serde_json::Value;

pub const V: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/upstream");

pub fn text(p: &str) -> String {
    std::fs::read_to_string(format!("{V}/{p}")).unwrap_or_else(|e| panic!("{p}: {e}"))
}
pub fn json(p: &str) -> Value {
    serde_json::from_str(&text(p)).unwrap()
}
pub fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}
pub fn pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), s(v).to_owned()))
        .collect()
}
