//! The HTTP error contract: every failure of the merchant API is
//! `{"error":{"code","message"}}` with a stable `code`, decided here and only
//! here. Internal detail (database errors, Alipay's raw answers) goes to the
//! log, never into the body.

use std::error::Error as StdError;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API failure: status, stable code, safe message, and an optional
/// internal cause that is logged but not sent.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    internal: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    /// A client error with a stable code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            internal: None,
        }
    }

    /// `400 invalid_request`: the body is not what the endpoint accepts.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// `409` with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// `404 order_not_found`.
    pub fn order_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "order_not_found", "no such order")
    }

    /// `500 internal_error`; the cause is logged.
    pub fn internal(cause: impl StdError + Send + Sync + 'static) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal_error",
            message: "internal error; the request may be retried".into(),
            internal: Some(Box::new(cause)),
        }
    }

    /// Attaches an internal cause (logged, not sent).
    pub fn with_cause(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.internal = Some(Box::new(cause));
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<zhifu_store::StoreError> for ApiError {
    fn from(e: zhifu_store::StoreError) -> Self {
        match e {
            zhifu_store::StoreError::Database(_) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "database_unavailable",
                message: "the database is not available; retry later".into(),
                internal: Some(Box::new(e)),
            },
            other => ApiError::internal(other),
        }
    }
}

/// Describes an error and its `source()` chain on one line, for logs.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            if self.status.is_server_error() {
                tracing::error!(code = self.code, cause = %chain(cause.as_ref()), "request failed");
            } else {
                tracing::warn!(code = self.code, cause = %chain(cause.as_ref()), "request refused");
            }
        }
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Maps a failed Alipay call to the API contract: unknown outcomes are 502
/// `alipay_unavailable` (retry), Alipay's refusals are 502 `alipay_error`
/// with its `sub_code` in the message.
pub fn alipay_failure(e: alipay::Error) -> ApiError {
    match &e {
        alipay::Error::Gateway(g) if !e.is_unknown_outcome() => {
            let msg = format!(
                "Alipay refused the call: {} {}",
                g.reason(),
                g.sub_msg.as_deref().unwrap_or(&g.msg)
            );
            ApiError::new(StatusCode::BAD_GATEWAY, "alipay_error", msg).with_cause(e)
        }
        _ if e.is_unknown_outcome() => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "alipay_unavailable",
            "Alipay could not be reached or did not answer clearly; retry",
        )
        .with_cause(e),
        _ => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "alipay_error",
            "the call to Alipay failed (see the server log)",
        )
        .with_cause(e),
    }
}
