//! The HTTP side of [`crate::authorize`]: `GET /checkout/authorize`, `GET
//! /checkout/authorize/callback` and `POST /checkout/authorize/code`.
//!
//! Extra error codes: `invalid_return_path` (400), `authorization_failed`
//! (400: the state is forged or expired, or Alipay refused the code —
//! authorize again), and `POST /checkout` answers `authorization_required`
//! (401) for a jsapi checkout without the buyer cookie and
//! `buyer_not_accepted` (400) for a buyer id in its body.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use self::schema::{AuthorizeCode, Authorized};
use super::schema::CheckoutErrorBody;
use super::{ApiError, Peer, limit, no_store, now_ms};
use crate::CheckoutState;
use crate::authorize::{buyer_cookie, open_state, return_path, seal_state};
use crate::error::CheckoutError;

/// Where Alipay sends the buyer back, under the public URL.
pub(crate) const CALLBACK_PATH: &str = "/checkout/authorize/callback";
/// Longest `auth_code` passed on (the backend's own bound).
const MAX_AUTH_CODE: usize = 128;

#[derive(Debug, Deserialize)]
pub(crate) struct StartQuery {
    #[serde(default, rename = "return")]
    return_to: Option<String>,
}

/// `GET /checkout/authorize`.
#[utoipa::path(
    get,
    path = "/checkout/authorize",
    operation_id = "checkoutAuthorize",
    tag = "checkout",
    summary = "Send the buyer to Alipay's authorization page (in-app payments)",
    description = "Inside the Alipay app, before a jsapi checkout: redirects to Alipay's \
                   `auth_base` authorization page, which sends the buyer back to \
                   `/checkout/authorize/callback` and from there to `return`.",
    params(("return" = Option<String>, Query, description = "A path on this site to come back to (default `/`).")),
    responses(
        (status = 303, description = "To Alipay's authorization page", headers(("Location" = String, description = "The authorization page"))),
        (status = 400, description = "`invalid_return_path`", body = CheckoutErrorBody),
        (status = 502, description = "`payment_unavailable`", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn start(
    State(st): State<CheckoutState>,
    Query(q): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let back = q.return_to.as_deref().unwrap_or("/");
    let back = return_path(back).ok_or_else(|| {
        ApiError::bad(
            "invalid_return_path",
            "return must be a path on this site, such as /?buy=mug",
        )
    })?;
    let state = seal_state(&st.inner.secret, back, now_ms());
    let redirect_uri = format!("{}{CALLBACK_PATH}", st.config().public_url);
    let url = st
        .inner
        .backend
        .authorize_url(&redirect_uri, &state)
        .await?;
    Ok(see_other(&url, None))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    auth_code: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

/// `GET /checkout/authorize/callback`: where Alipay sends the buyer back.
#[utoipa::path(
    get,
    path = "/checkout/authorize/callback",
    operation_id = "checkoutAuthorizeCallback",
    tag = "checkout",
    summary = "Alipay's redirect after authorization: remembers the buyer, back to the page",
    description = "Exchanges `auth_code` through the backend (a verified \
                   `alipay.system.oauth.token`), sets the buyer cookie (HttpOnly, SameSite=Lax, \
                   30 minutes) and redirects to the path sealed in `state`. Alipay's other \
                   parameters are ignored.",
    params(
        ("auth_code" = String, Query, description = "From Alipay."),
        ("state" = String, Query, description = "The state `/checkout/authorize` sealed."),
    ),
    responses(
        (status = 303, description = "Back to the page, with the buyer cookie", headers(
            ("Location" = String, description = "The return path"),
            ("Set-Cookie" = String, description = "`zhifu_buyer`, sealed"))),
        (status = 400, description = "`authorization_failed`: a forged or expired state, or a code Alipay refused", body = CheckoutErrorBody),
        (status = 429, description = "`rate_limited`", body = CheckoutErrorBody),
        (status = 502, description = "`payment_unavailable`", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn callback(
    State(st): State<CheckoutState>,
    peer: Peer,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    limit(&st, &st.inner.create_limiter, &headers, &peer)?;
    let now = now_ms();
    let back = q
        .state
        .as_deref()
        .and_then(|s| open_state(&st.inner.secret, s, now))
        .ok_or_else(|| {
            ApiError::bad(
                "authorization_failed",
                "this authorization link is not genuine or has expired; start again",
            )
        })?;
    let code = q.auth_code.as_deref().unwrap_or_default();
    let cookie = exchange(&st, code, now).await?;
    Ok(see_other(&back, Some(cookie)))
}

/// `POST /checkout/authorize/code`: a code from the app bridge's
/// `getAuthCode`.
#[utoipa::path(
    post,
    path = "/checkout/authorize/code",
    operation_id = "checkoutAuthorizeCode",
    tag = "checkout",
    summary = "Remember the buyer from an auth code the Alipay app bridge gave the page",
    request_body = AuthorizeCode,
    responses(
        (status = 200, description = "The buyer cookie is set", body = Authorized, headers(("Set-Cookie" = String, description = "`zhifu_buyer`, sealed"))),
        (status = 400, description = "`invalid_request` or `authorization_failed`", body = CheckoutErrorBody),
        (status = 429, description = "`rate_limited`", body = CheckoutErrorBody),
        (status = 502, description = "`payment_unavailable`", body = CheckoutErrorBody),
        (status = 503, description = "`payment_unavailable`", body = CheckoutErrorBody),
    ),
)]
pub(crate) async fn code(
    State(st): State<CheckoutState>,
    peer: Peer,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    limit(&st, &st.inner.create_limiter, &headers, &peer)?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    let parsed: Option<Value> = json.then(|| serde_json::from_slice(&body).ok()).flatten();
    let code = parsed
        .as_ref()
        .and_then(Value::as_object)
        .filter(|m| m.len() == 1)
        .and_then(|m| m.get("auth_code"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad(
                "invalid_request",
                "send {\"auth_code\": \"…\"} as JSON with `Content-Type: application/json`",
            )
        })?;
    let cookie = exchange(&st, code, now_ms()).await?;
    let mut r = (StatusCode::OK, axum::Json(json!({ "authorized": true }))).into_response();
    set_cookie(r.headers_mut(), &cookie);
    no_store(r.headers_mut());
    Ok(r)
}

/// The code → the backend → the buyer cookie.
async fn exchange(st: &CheckoutState, code: &str, now: i64) -> Result<String, ApiError> {
    let failed = || {
        ApiError::bad(
            "authorization_failed",
            "Alipay did not accept this authorization; authorize again",
        )
    };
    if code.is_empty()
        || code.len() > MAX_AUTH_CODE
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(failed());
    }
    let buyer = match st.inner.backend.exchange_auth_code(code).await {
        Ok(b) => b,
        Err(CheckoutError::BackendRejected {
            status: 400,
            code: error_code,
            ..
        }) => {
            // The backend's error code only; the auth code is a credential.
            tracing::info!(%error_code, "checkout: authorization code refused");
            return Err(failed());
        }
        Err(e) => return Err(e.into()),
    };
    let secure = st.config().public_url.starts_with("https://");
    Ok(buyer_cookie(&st.inner.secret, &buyer, now, secure))
}

fn set_cookie(h: &mut HeaderMap, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        h.append(header::SET_COOKIE, v);
    }
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie {
        set_cookie(r.headers_mut(), &c);
    }
    no_store(r.headers_mut());
    r
}

/// This module's routes, merged into [`super::routes`].
pub(crate) fn routes() -> utoipa_axum::router::OpenApiRouter<CheckoutState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(callback))
        .routes(routes!(code))
}

#[allow(dead_code, missing_docs)]
mod schema {
    use serde::Deserialize;
    use utoipa::ToSchema;

    /// `POST /checkout/authorize/code`.
    #[derive(Debug, ToSchema, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct AuthorizeCode {
        /// `authCode` from `AlipayJSBridge.call('getAuthCode', {scopeNicks: ['auth_base']})`.
        #[schema(min_length = 1, max_length = 128)]
        auth_code: String,
    }

    /// The answer to `POST /checkout/authorize/code`.
    #[derive(Debug, ToSchema)]
    pub struct Authorized {
        authorized: bool,
    }
}
