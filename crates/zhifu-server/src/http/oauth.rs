//! User authorization for in-app payments (`/v1/oauth/…`, behind the API
//! key): the authorize-page URL for this app, and the exchange of the
//! buyer's `auth_code` for their id. The caller (the checkout, or a
//! merchant's own server) keeps the id and passes it to
//! `POST /v1/orders/{id}/pay` with `channel: "jsapi"`; the buyer's browser
//! never gets to choose it.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::body::{Fields, JsonObject};
use super::error::{ApiError, ErrorCode};
use super::schema;
use crate::payments::oauth::{self, Scope};
use crate::state::AppState;

type RawQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

const AUTHORIZE_PARAMS: [&str; 3] = ["redirect_uri", "state", "scope"];

/// `GET /v1/oauth/authorize-url`.
#[utoipa::path(
    get,
    path = "/v1/oauth/authorize-url",
    operation_id = "oauthAuthorizeUrl",
    tag = "oauth",
    summary = "The Alipay user-authorization page for this app",
    description = "Send the buyer here (inside the Alipay app the page is silent for `auth_base`); \
                   Alipay sends them back to `redirect_uri` with `auth_code` and `state`. The page \
                   is `ZHIFU_ALIPAY_AUTHORIZE_URL`.",
    params(
        ("redirect_uri" = String, Query, description = "Absolute http(s) URL the buyer comes back to (registered with Alipay as the app's authorization redirect)."),
        ("state" = Option<String>, Query, description = "Echoed back on the redirect (1–512 printable ASCII characters): bind it to the buyer's session."),
        ("scope" = Option<String>, Query, description = "`auth_base` (default: silent, the buyer's id only) or `auth_user`."),
    ),
    responses(
        (status = 200, description = "The URL", body = schema::OauthAuthorizeUrl),
        (status = 400, description = "`invalid_query` or `invalid_field`", body = schema::ErrorBody),
    ),
)]
pub async fn authorize_url(
    State(st): State<AppState>,
    q: RawQuery,
) -> Result<Json<Value>, ApiError> {
    let Ok(Query(q)) = q else {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "the query string could not be parsed",
        ));
    };
    if let Some(k) = q.keys().find(|k| !AUTHORIZE_PARAMS.contains(&k.as_str())) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "unknown query parameter `{}` (accepted: {})",
                k.chars().take(64).collect::<String>(),
                AUTHORIZE_PARAMS.join(", ")
            ),
        ));
    }
    let redirect_uri = q
        .get("redirect_uri")
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, "`redirect_uri` is required"))?;
    let scope = match q.get("scope").map(String::as_str) {
        None => Scope::AuthBase,
        Some(s) => Scope::parse(s).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidField,
                "`scope` must be auth_base or auth_user",
            )
        })?,
    };
    let url = oauth::authorize_url(&st, redirect_uri, q.get("state").map(String::as_str), scope)?;
    Ok(Json(json!({ "url": url })))
}

/// `POST /v1/oauth/token`.
#[utoipa::path(
    post,
    path = "/v1/oauth/token",
    operation_id = "oauthToken",
    tag = "oauth",
    summary = "Exchange the buyer's auth_code for their Alipay id",
    description = "Calls `alipay.system.oauth.token` and verifies the signed answer. Answers only \
                   the buyer's id (`open_id` for apps on open ids, `user_id` otherwise; the other \
                   is null) — never Alipay's access or refresh token. Nothing is stored. A code \
                   works once.",
    request_body = schema::OauthTokenRequest,
    responses(
        (status = 200, description = "The buyer's id", body = schema::OauthBuyer),
        (status = 400, description = "`invalid_field` (malformed code) or `auth_code_invalid` (Alipay refused it: unknown, used or expired)", body = schema::ErrorBody),
        (status = 502, description = "Alipay failed", body = schema::ErrorBody),
    ),
)]
pub async fn token(
    State(st): State<AppState>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&m, &["auth_code"])?;
    let code = f.str_req("auth_code")?;
    let buyer = oauth::exchange_auth_code(&st, &code).await?;
    let (user_id, open_id) = match buyer {
        alipay::BuyerId::UserId(id) => (Some(id), None),
        alipay::BuyerId::OpenId(id) => (None, Some(id)),
        // `BuyerId` may grow; an id of an unknown kind cannot be paid with.
        _ => {
            return Err(ApiError::new(
                ErrorCode::AlipayError,
                "Alipay named the buyer in a way this server does not know",
            ));
        }
    };
    Ok(Json(json!({ "user_id": user_id, "open_id": open_id })))
}
