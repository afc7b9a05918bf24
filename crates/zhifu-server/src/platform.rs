//! What differs between the hosts Zhifu runs on, kept in one place:
//!
//! | host | port | request id header |
//! |---|---|---|
//! | Aliyun Function Compute 3.0 (custom runtime) | `FC_CUSTOM_LISTEN_PORT` (older: `FC_SERVER_PORT`) | `x-fc-request-id` |
//! | Tencent SCF (web function) | 9000 | `X-Scf-Request-Id` |
//! | containers (Cloud Run, Knative, Kubernetes) | `PORT` | `X-Request-Id` (when a proxy sets one) |
//! | AWS Lambda | none (the Runtime API) | the invocation's id, logged by the runtime |
//!
//! Both function platforms require binding `0.0.0.0` and leave only `/tmp`
//! writable.

/// The variables naming the listen port, in the order they are honoured.
pub const PORT_VARS: [&str; 3] = ["FC_CUSTOM_LISTEN_PORT", "FC_SERVER_PORT", "PORT"];

/// The port when no variable names one: what FC and SCF expect.
pub const DEFAULT_PORT: u16 = 9000;

/// Request id headers set by the platforms in front of us, in the order
/// they are looked for.
pub const REQUEST_ID_HEADERS: [&str; 3] = ["x-fc-request-id", "x-scf-request-id", "x-request-id"];

/// The platform's request id of a request, if a platform set one. Only
/// short visible-ASCII values are taken: it goes into every log line.
pub fn request_id(headers: &axum::http::HeaderMap) -> Option<&str> {
    REQUEST_ID_HEADERS.iter().find_map(|h| {
        headers
            .get(*h)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn request_ids_in_platform_order() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h), None);
        h.insert("x-request-id", HeaderValue::from_static("proxy-1"));
        assert_eq!(request_id(&h), Some("proxy-1"));
        h.insert("X-Scf-Request-Id", HeaderValue::from_static("scf-2"));
        assert_eq!(request_id(&h), Some("scf-2"));
        h.insert("x-fc-request-id", HeaderValue::from_static("fc-3"));
        assert_eq!(request_id(&h), Some("fc-3"));
        h.insert("x-fc-request-id", HeaderValue::from_static("has space"));
        assert_eq!(request_id(&h), Some("scf-2"), "unloggable ids are skipped");
    }
}
