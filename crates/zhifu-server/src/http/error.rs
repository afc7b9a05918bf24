//! The HTTP error contract: every failure of the merchant API is
//! `{"error":{"code","message"}}` with a stable [`ErrorCode`], decided here
//! and only here. Each code has one status; `/openapi.json` lists
//! [`ErrorCode::ALL`], and a test proves every code is documented. Internal
//! detail (database errors, Alipay's raw answers) goes to the log, never
//! into the body.

use std::error::Error as StdError;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use zhifu_store::StoreError;

use crate::error::chain;
use crate::payments::PaymentError;

/// Every error code the HTTP API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON, or not an object.
    InvalidJson,
    /// The body has a field the endpoint does not accept.
    UnknownField,
    /// A field has the wrong type or breaks a rule.
    InvalidField,
    /// An amount is not a `"88.88"` string in Alipay's range.
    InvalidAmount,
    /// The query string is malformed or has an unknown parameter.
    InvalidQuery,
    /// The `Idempotency-Key` header is malformed.
    InvalidIdempotencyKey,
    /// Missing or wrong API key.
    Unauthorized,
    /// No such order.
    OrderNotFound,
    /// No such endpoint.
    NotFound,
    /// The endpoint does not accept the method.
    MethodNotAllowed,
    /// An `Idempotency-Key` came back with a different body.
    IdempotencyKeyReused,
    /// Another order has this `out_trade_no`.
    OutTradeNoTaken,
    /// The order cannot be paid (not pending, or Alipay says so).
    OrderNotPayable,
    /// The order's payment deadline has passed.
    OrderExpired,
    /// Only paid orders can be refunded.
    OrderNotRefundable,
    /// The refund is larger than what is left.
    RefundExceedsRemaining,
    /// Only pending orders can be closed.
    OrderNotClosable,
    /// The body is too large.
    PayloadTooLarge,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// Something failed on our side; the request may be retried.
    InternalError,
    /// Alipay refused the call.
    AlipayError,
    /// Alipay could not be reached or did not answer clearly; retry.
    AlipayUnavailable,
    /// Alipay's verified answer is about another trade or amount.
    AlipayMismatch,
    /// The database is not available; retry.
    DatabaseUnavailable,
    /// Alipay refused a user-authorization code (unknown, used or expired):
    /// send the buyer to authorize again.
    AuthCodeInvalid,
    /// No such subscription.
    SubscriptionNotFound,
    /// A completed subscription cannot be canceled.
    SubscriptionNotCancelable,
}

impl ErrorCode {
    /// Every code, in the order the API document lists them.
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownField,
        ErrorCode::InvalidField,
        ErrorCode::InvalidAmount,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::Unauthorized,
        ErrorCode::OrderNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::OutTradeNoTaken,
        ErrorCode::OrderNotPayable,
        ErrorCode::OrderExpired,
        ErrorCode::OrderNotRefundable,
        ErrorCode::RefundExceedsRemaining,
        ErrorCode::OrderNotClosable,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::InternalError,
        ErrorCode::AlipayError,
        ErrorCode::AlipayUnavailable,
        ErrorCode::AlipayMismatch,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::AuthCodeInvalid,
        ErrorCode::SubscriptionNotFound,
        ErrorCode::SubscriptionNotCancelable,
    ];

    /// The stable code in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::InvalidAmount => "invalid_amount",
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidIdempotencyKey => "invalid_idempotency_key",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::OrderNotFound => "order_not_found",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::OutTradeNoTaken => "out_trade_no_taken",
            ErrorCode::OrderNotPayable => "order_not_payable",
            ErrorCode::OrderExpired => "order_expired",
            ErrorCode::OrderNotRefundable => "order_not_refundable",
            ErrorCode::RefundExceedsRemaining => "refund_exceeds_remaining",
            ErrorCode::OrderNotClosable => "order_not_closable",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::InternalError => "internal_error",
            ErrorCode::AlipayError => "alipay_error",
            ErrorCode::AlipayUnavailable => "alipay_unavailable",
            ErrorCode::AlipayMismatch => "alipay_mismatch",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::AuthCodeInvalid => "auth_code_invalid",
            ErrorCode::SubscriptionNotFound => "subscription_not_found",
            ErrorCode::SubscriptionNotCancelable => "subscription_not_cancelable",
        }
    }

    /// The one status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidJson
            | ErrorCode::UnknownField
            | ErrorCode::InvalidField
            | ErrorCode::InvalidAmount
            | ErrorCode::InvalidQuery
            | ErrorCode::InvalidIdempotencyKey
            | ErrorCode::AuthCodeInvalid => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::OrderNotFound | ErrorCode::NotFound | ErrorCode::SubscriptionNotFound => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::IdempotencyKeyReused
            | ErrorCode::OutTradeNoTaken
            | ErrorCode::OrderNotPayable
            | ErrorCode::OrderExpired
            | ErrorCode::OrderNotRefundable
            | ErrorCode::RefundExceedsRemaining
            | ErrorCode::OrderNotClosable
            | ErrorCode::SubscriptionNotCancelable => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::AlipayError | ErrorCode::AlipayUnavailable | ErrorCode::AlipayMismatch => {
                StatusCode::BAD_GATEWAY
            }
            ErrorCode::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An API failure: a stable code (which fixes the status), a safe message,
/// and an optional internal cause that is logged but not sent.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    internal: Option<Box<dyn StdError + Send + Sync>>,
}

impl ApiError {
    /// An error with a stable code and a message safe to show.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            internal: None,
        }
    }

    /// `500 internal_error`; the cause is logged.
    pub fn internal(cause: impl StdError + Send + Sync + 'static) -> Self {
        Self::new(
            ErrorCode::InternalError,
            "internal error; the request may be retried",
        )
        .with_cause(cause)
    }

    /// Attaches an internal cause (logged, not sent).
    pub fn with_cause(mut self, cause: impl StdError + Send + Sync + 'static) -> Self {
        self.internal = Some(Box::new(cause));
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(_) => ApiError::new(
                ErrorCode::DatabaseUnavailable,
                "the database is not available; retry later",
            )
            .with_cause(e),
            other => ApiError::internal(other),
        }
    }
}

/// Maps a failed Alipay call: unknown outcomes are 502 `alipay_unavailable`
/// (retry), Alipay's refusals are 502 `alipay_error` with its `sub_code` in
/// the message.
fn alipay_failure(e: alipay::Error) -> ApiError {
    match &e {
        alipay::Error::Gateway(g) if !e.is_unknown_outcome() => {
            let msg = format!(
                "Alipay refused the call: {} {}",
                g.reason(),
                g.sub_msg.as_deref().unwrap_or(&g.msg)
            );
            ApiError::new(ErrorCode::AlipayError, msg).with_cause(e)
        }
        _ if e.is_unknown_outcome() => ApiError::new(
            ErrorCode::AlipayUnavailable,
            "Alipay could not be reached or did not answer clearly; retry",
        )
        .with_cause(e),
        _ => ApiError::new(
            ErrorCode::AlipayError,
            "the call to Alipay failed (see the server log)",
        )
        .with_cause(e),
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        use PaymentError as P;
        let e = match e {
            P::Alipay(a) => return alipay_failure(a),
            P::Store(s) => return s.into(),
            other => other,
        };
        let code = match &e {
            P::InvalidField(_) => ErrorCode::InvalidField,
            P::InvalidAmount(_) => ErrorCode::InvalidAmount,
            P::OrderNotFound => ErrorCode::OrderNotFound,
            P::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            P::OutTradeNoTaken => ErrorCode::OutTradeNoTaken,
            P::NotPayable(_) | P::TradeNotPayable(_) => ErrorCode::OrderNotPayable,
            P::Expired => ErrorCode::OrderExpired,
            P::NotRefundable(_) => ErrorCode::OrderNotRefundable,
            P::RefundExceedsRemaining { .. } => ErrorCode::RefundExceedsRemaining,
            P::NotClosable(_) | P::PaidWhileClosing(_) => ErrorCode::OrderNotClosable,
            P::AlipayMismatch(_) => ErrorCode::AlipayMismatch,
            P::AuthCodeRejected(_) => ErrorCode::AuthCodeInvalid,
            P::SubscriptionNotFound => ErrorCode::SubscriptionNotFound,
            P::NotCancelable(_) => ErrorCode::SubscriptionNotCancelable,
            // Returned above; listed so that a new variant must be mapped.
            P::Alipay(_) | P::Store(_) => ErrorCode::InternalError,
        };
        ApiError::new(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        if let Some(cause) = &self.internal {
            if status.is_server_error() {
                tracing::error!(code = self.code.as_str(), cause = %chain(cause.as_ref()), "request failed");
            } else {
                tracing::warn!(code = self.code.as_str(), cause = %chain(cause.as_ref()), "request refused");
            }
        }
        let body = json!({"error": {"code": self.code.as_str(), "message": self.message}});
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once_with_a_distinct_name() {
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        // A new variant must be added to ALL: this match has no wildcard, so
        // it stops compiling until the variant is handled here too.
        for c in ErrorCode::ALL {
            let listed = match c {
                ErrorCode::InvalidJson
                | ErrorCode::UnknownField
                | ErrorCode::InvalidField
                | ErrorCode::InvalidAmount
                | ErrorCode::InvalidQuery
                | ErrorCode::InvalidIdempotencyKey
                | ErrorCode::Unauthorized
                | ErrorCode::OrderNotFound
                | ErrorCode::NotFound
                | ErrorCode::MethodNotAllowed
                | ErrorCode::IdempotencyKeyReused
                | ErrorCode::OutTradeNoTaken
                | ErrorCode::OrderNotPayable
                | ErrorCode::OrderExpired
                | ErrorCode::OrderNotRefundable
                | ErrorCode::RefundExceedsRemaining
                | ErrorCode::OrderNotClosable
                | ErrorCode::PayloadTooLarge
                | ErrorCode::UnsupportedMediaType
                | ErrorCode::InternalError
                | ErrorCode::AlipayError
                | ErrorCode::AlipayUnavailable
                | ErrorCode::AlipayMismatch
                | ErrorCode::DatabaseUnavailable
                | ErrorCode::AuthCodeInvalid
                | ErrorCode::SubscriptionNotFound
                | ErrorCode::SubscriptionNotCancelable => true,
            };
            assert!(listed);
            assert!(c.status().is_client_error() || c.status().is_server_error());
        }
    }

    #[test]
    fn payment_errors_keep_their_codes() {
        let cases = [
            (PaymentError::OrderNotFound, "order_not_found", 404),
            (PaymentError::Expired, "order_expired", 409),
            (
                PaymentError::SubscriptionNotFound,
                "subscription_not_found",
                404,
            ),
            (
                PaymentError::NotCancelable(zhifu_store::SubscriptionStatus::Completed),
                "subscription_not_cancelable",
                409,
            ),
            (
                PaymentError::NotClosable(zhifu_store::OrderStatus::Paid),
                "order_not_closable",
                409,
            ),
            (
                PaymentError::Store(StoreError::NotFound("order")),
                "internal_error",
                500,
            ),
        ];
        for (e, code, status) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.code().as_str(), api.status().as_u16()), (code, status));
        }
    }
}
