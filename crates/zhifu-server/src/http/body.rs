//! Strict request-body reading: JSON objects only, unknown fields refused,
//! every problem reported with the field's name and a stable code.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
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
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
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
}
