//! Query strings of the merchant API, read strictly and the same way on
//! every list and get: unknown parameters refused, `refresh=true|false`,
//! `limit` within the page bounds, and opaque cursors
//! (`base64url("{created_at}:{id}")`).

use std::collections::HashMap;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use base64::Engine as _;

use super::error::{ApiError, ErrorCode};

/// Default and largest page of a list.
pub const DEFAULT_PAGE: i64 = 20;
/// Largest page of a list.
pub const MAX_PAGE: i64 = 100;

/// A query string as axum extracts it, parse failures included.
pub type RawQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The parameters, if each is one of `allowed`.
///
/// # Errors
/// `invalid_query` for an unparseable query string or another parameter.
pub fn only_params(q: &RawQuery, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let Ok(Query(q)) = q else {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "the query string could not be parsed",
        ));
    };
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "unknown query parameter `{}` (accepted: {})",
                k.chars().take(64).collect::<String>(),
                allowed.join(", ")
            ),
        ));
    }
    Ok(q.clone())
}

/// `refresh`: absent or `false` → false, `true` → true.
///
/// # Errors
/// `invalid_query` for anything else.
pub fn refresh_flag(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("refresh").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "`refresh` must be true or false",
        )),
    }
}

/// `limit`: [`DEFAULT_PAGE`] when absent, else 1 to [`MAX_PAGE`].
///
/// # Errors
/// `invalid_query` outside that range.
pub fn page_limit(q: &HashMap<String, String>) -> Result<i64, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!("`limit` must be an integer between 1 and {MAX_PAGE}"),
                )
            }),
    }
}

/// `cursor`: where the previous page ended, if given.
///
/// # Errors
/// `invalid_query` for a cursor this API did not hand out.
pub fn page_after(q: &HashMap<String, String>) -> Result<Option<(i64, String)>, ApiError> {
    match q.get("cursor").filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => decode_cursor(c).map(Some).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "`cursor` is not a cursor this API returned",
            )
        }),
    }
}

/// The cursor after a record created at `created_at` with `id`.
pub fn encode_cursor(created_at: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        assert_eq!(
            decode_cursor(&encode_cursor(1234, "ord_1")),
            Some((1234, "ord_1".into()))
        );
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor("eHl6"), None);
        let q = |k: &str, v: &str| HashMap::from([(k.to_owned(), v.to_owned())]);
        assert!(page_after(&q("cursor", "!!")).is_err());
        assert_eq!(page_limit(&HashMap::new()).ok(), Some(DEFAULT_PAGE));
        assert!(page_limit(&q("limit", "101")).is_err());
        assert!(page_limit(&q("limit", "0")).is_err());
        assert_eq!(refresh_flag(&q("refresh", "true")).ok(), Some(true));
        assert!(refresh_flag(&q("refresh", "yes")).is_err());
    }
}
