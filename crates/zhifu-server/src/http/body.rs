//! Strict request-body reading: JSON objects only, unknown fields refused,
//! every problem reported with the field's name and a stable code.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::error::{ApiError, ErrorCode};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON object body. An empty body reads as `{}` (for endpoints whose
/// fields are all optional).
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {MAX_BODY_BYTES} bytes"),
                )
            } else {
                ApiError::new(ErrorCode::InvalidJson, "the body could not be read")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonObject(Map::new()));
        }
        match content_type {
            Some(ct) if ct.starts_with("application/json") => {}
            _ => {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as JSON with `Content-Type: application/json`",
                ));
            }
        }
        let value = strict_json(&bytes).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidJson,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        match value {
            Value::Object(m) => Ok(JsonObject(m)),
            _ => Err(ApiError::new(
                ErrorCode::InvalidJson,
                "the body must be a JSON object",
            )),
        }
    }
}

/// Typed access to the fields of a body, each error naming its field.
#[derive(Debug)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// Refuses fields outside `allowed`.
    ///
    /// # Errors
    /// `400 unknown_field`.
    pub fn new(map: &'a Map<String, Value>, allowed: &[&str]) -> Result<Self, ApiError> {
        if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::new(
                ErrorCode::UnknownField,
                format!(
                    "unknown field `{}` (accepted: {})",
                    truncate(k, 64),
                    allowed.join(", ")
                ),
            ));
        }
        Ok(Fields { map })
    }

    /// An optional string (`null` counts as absent).
    ///
    /// # Errors
    /// `400 invalid_field` when present and not a string.
    pub fn str_opt(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            // Text goes to Alipay, into logs and onto the buyer's screen:
            // control characters (NUL, escapes, line breaks) have no place
            // in any of our text fields.
            Some(Value::String(s)) if s.chars().any(char::is_control) => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{name}` must not contain control characters"),
            )),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{name}` must be a string"),
            )),
        }
    }

    /// A required string.
    ///
    /// # Errors
    /// `400 invalid_field`.
    pub fn str_req(&self, name: &str) -> Result<String, ApiError> {
        self.str_opt(name)?
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidField, format!("`{name}` is required")))
    }

    /// A money amount: a string like `"88.88"`, never a JSON number.
    ///
    /// # Errors
    /// `400 invalid_amount`.
    pub fn amount_req(&self, name: &str) -> Result<alipay::Amount, ApiError> {
        let bad = |why: String| ApiError::new(ErrorCode::InvalidAmount, why);
        match self.map.get(name) {
            None | Some(Value::Null) => Err(bad(format!(
                "`{name}` is required, as a string like \"88.88\""
            ))),
            Some(Value::String(s)) => alipay::Amount::payable(s).map_err(|e| match e {
                alipay::Error::Amount { problem, .. } => bad(format!(
                    "`{name}` is not a valid amount ({problem}); use a string like \"88.88\" between 0.01 and 100000000.00"
                )),
                _ => bad(format!("`{name}` is not a valid amount")),
            }),
            Some(_) => Err(bad(format!(
                "`{name}` must be a string like \"88.88\" (numbers are refused: money is never a float)"
            ))),
        }
    }

    /// An optional integer.
    ///
    /// # Errors
    /// `400 invalid_field`.
    pub fn int_opt(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidField,
                    format!("`{name}` must be an integer"),
                )
            }),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{name}` must be an integer"),
            )),
        }
    }

    /// An optional JSON object.
    ///
    /// # Errors
    /// `400 invalid_field`.
    pub fn object_opt(&self, name: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{name}` must be a JSON object"),
            )),
        }
    }
}

/// Parses JSON text into a [`Value`], refusing what `serde_json::Value`
/// would read ambiguously: an object with the same key twice (where the
/// last one would silently win — `{"total_amount":"1.00","total_amount":
/// "500.00"}` must not become a ¥500 order).
///
/// # Errors
/// Invalid JSON, trailing data, or a duplicate key (named).
pub fn strict_json(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictValue::deserialize(&mut de)?.0;
    de.end()?;
    Ok(v)
}

/// A JSON value read by a visitor that refuses duplicate object keys.
struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    truncate(&key, 64)
                )));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The `Idempotency-Key` header, if sent: 1–255 visible ASCII characters.
///
/// # Errors
/// `400 invalid_idempotency_key`.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
        )
    };
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

/// JSON text with object keys sorted at every level, so that two requests
/// that differ only in key order hash the same.
pub fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// `201 Created` with `body`; `Idempotent-Replayed: true` when this is the
/// first answer to the same `Idempotency-Key` again.
pub fn created(body: Value, replayed: bool) -> Response {
    let mut resp = (StatusCode::CREATED, Json(body)).into_response();
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_deeply() {
        let a = json!({"b": 1, "a": {"y": [1, {"d": 2, "c": 3}], "x": null}});
        let b = json!({"a": {"x": null, "y": [1, {"c": 3, "d": 2}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#
        );
    }

    #[test]
    fn fields_report_names_and_codes() {
        let m = json!({"subject": 1, "total_amount": 88.88, "n": "x"});
        let Value::Object(m) = m else { unreachable!() };
        assert_eq!(
            Fields::new(&m, &["subject"]).unwrap_err().code().as_str(),
            "unknown_field"
        );
        let f = Fields::new(&m, &["subject", "total_amount", "n"]).unwrap();
        assert_eq!(
            f.str_req("subject").unwrap_err().code().as_str(),
            "invalid_field"
        );
        assert_eq!(
            f.amount_req("total_amount").unwrap_err().code().as_str(),
            "invalid_amount"
        );
        assert_eq!(f.int_opt("n").unwrap_err().code().as_str(), "invalid_field");
        assert_eq!(f.str_opt("missing").unwrap(), None);
    }

    #[test]
    fn strict_json_refuses_duplicate_keys_at_every_level() {
        assert!(strict_json(br#"{"a":"1","b":{"c":[1,{"d":null}]}}"#).is_ok());
        for bad in [
            &br#"{"total_amount":"1.00","total_amount":"500.00"}"#[..],
            br#"{"metadata":{"k":1,"k":2}}"#,
            br#"[{"x":1,"x":1}]"#,
            br#"{"a":1} {"b":2}"#,
        ] {
            let e = strict_json(bad).unwrap_err().to_string();
            assert!(e.contains("duplicate key") || e.contains("trailing"), "{e}");
        }
        // The same value as serde_json reads, where there is no ambiguity.
        let text = br#"{"n":-5,"u":18446744073709551615,"f":1.5,"s":"\u4e2d","t":true,"z":null}"#;
        assert_eq!(
            strict_json(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn text_fields_refuse_control_characters() {
        let map: Map<String, Value> =
            serde_json::from_str(r#"{"subject":"Mug\u0000","body":"ok 中文"}"#).unwrap();
        let f = Fields::new(&map, &["subject", "body"]).unwrap();
        assert_eq!(f.str_opt("body").unwrap().as_deref(), Some("ok 中文"));
        let e = f.str_req("subject").unwrap_err();
        assert!(format!("{e:?}").contains("control characters"), "{e:?}");
    }
}
