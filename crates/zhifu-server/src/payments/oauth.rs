//! User authorization for in-app (JSAPI) payments: the authorize-page URL
//! for this app, and the exchange of the `auth_code` Alipay hands back for
//! the buyer's id (`alipay.system.oauth.token`, docs/agreements.md §5).
//!
//! Only the buyer's id leaves this module: the access and refresh tokens
//! Alipay also returns are dropped here, never stored, logged or answered,
//! because nothing in Zhifu calls Alipay on the buyer's behalf. Nothing is
//! written to the store either: the id is handed to the caller, who passes
//! it to `POST /v1/orders/{id}/pay`.

use alipay::{AuthorizeUrl, BuyerId, RequestOptions, SystemOauthToken};

use super::error::PaymentError;
use crate::state::AppState;

/// Longest `auth_code` accepted (Alipay's are 32–40 characters; the SDK's
/// own bound is 128).
pub const MAX_AUTH_CODE: usize = 128;
/// Longest `state` echoed through the authorize page.
pub const MAX_STATE: usize = 512;
/// Longest `redirect_uri`.
pub const MAX_REDIRECT_URI: usize = 1024;

/// The scopes an app may ask for on the authorize page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Silent; only the buyer's id (all a payment needs).
    AuthBase,
    /// Asks the buyer's consent; also allows profile calls.
    AuthUser,
}

impl Scope {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auth_base" => Some(Scope::AuthBase),
            "auth_user" => Some(Scope::AuthUser),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AuthBase => "auth_base",
            Scope::AuthUser => "auth_user",
        }
    }
}

/// The authorize page URL for this app: the buyer goes there and comes back
/// to `redirect_uri` with `auth_code` and `state`.
///
/// # Errors
/// [`PaymentError::InvalidField`] for a `redirect_uri` that is not an
/// absolute http(s) URL or a `state` that is too long.
pub fn authorize_url(
    st: &AppState,
    redirect_uri: &str,
    state: Option<&str>,
    scope: Scope,
) -> Result<String, PaymentError> {
    let parsed = url::Url::parse(redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            PaymentError::InvalidField("`redirect_uri` must be an absolute http(s) URL".into())
        })?;
    if redirect_uri.len() > MAX_REDIRECT_URI || parsed.fragment().is_some() {
        return Err(PaymentError::InvalidField(format!(
            "`redirect_uri` must be at most {MAX_REDIRECT_URI} characters, without a fragment"
        )));
    }
    let mut url = AuthorizeUrl::new(st.app_id(), redirect_uri)
        .endpoint(st.oauth_authorize_url())
        .scope(scope.as_str());
    if let Some(s) = state {
        if s.is_empty() || s.len() > MAX_STATE || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PaymentError::InvalidField(format!(
                "`state` must be 1 to {MAX_STATE} printable ASCII characters"
            )));
        }
        url = url.state(s);
    }
    Ok(url.to_url())
}

/// Checks an `auth_code` before it goes anywhere: bounded, and only the
/// characters codes are made of (no separators to smuggle parameters).
///
/// # Errors
/// [`PaymentError::InvalidField`].
pub fn check_auth_code(code: &str) -> Result<(), PaymentError> {
    if code.is_empty()
        || code.len() > MAX_AUTH_CODE
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(PaymentError::InvalidField(format!(
            "`auth_code` must be 1 to {MAX_AUTH_CODE} letters, digits, `_` or `-`"
        )));
    }
    Ok(())
}

/// Exchanges an `auth_code` for the buyer's id with
/// `alipay.system.oauth.token`; the answer's signature is verified by the
/// client. A code works once: the call is not retried.
///
/// # Errors
/// [`PaymentError::InvalidField`] for a malformed code,
/// [`PaymentError::AuthCodeRejected`] when Alipay refuses the code (unknown,
/// used, expired, another app's), [`PaymentError::Alipay`] otherwise.
pub async fn exchange_auth_code(st: &AppState, code: &str) -> Result<BuyerId, PaymentError> {
    check_auth_code(code)?;
    let answer = st
        .call_once(
            &SystemOauthToken::authorization_code(code),
            &RequestOptions::default(),
        )
        .await
        .map_err(|e| match &e {
            alipay::Error::Gateway(g)
                if !e.is_unknown_outcome()
                    && g.sub_code.as_deref().is_some_and(is_code_refusal) =>
            {
                PaymentError::AuthCodeRejected(g.sub_code.clone().unwrap_or_default())
            }
            _ => PaymentError::Alipay(e),
        })?;
    // A signed answer naming no buyer (neither `open_id` nor `user_id`).
    answer
        .buyer()
        .ok_or(PaymentError::Alipay(alipay::Error::MissingField("user_id")))
}

/// Alipay's refusals of the code itself (`isv.code-invalid` and its
/// variants), as opposed to refusals of the app or the call.
fn is_code_refusal(sub_code: &str) -> bool {
    sub_code.starts_with("isv.code-") || sub_code == "isv.auth-code-invalid"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_codes_are_bounded_and_plain() {
        assert!(check_auth_code("6d2b3a1f0c9e4b7aa8e1b2c3d4e5f6a7").is_ok());
        assert!(check_auth_code("a_b-C9").is_ok());
        for bad in [
            "",
            "a b",
            "a&grant_type=refresh_token",
            "a=b",
            "码",
            &"a".repeat(MAX_AUTH_CODE + 1),
        ] {
            assert!(check_auth_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_code_refusals_are_the_callers_fault() {
        assert!(is_code_refusal("isv.code-invalid"));
        assert!(is_code_refusal("isv.code-expired"));
        assert!(!is_code_refusal("isv.invalid-app-id"));
        assert!(!is_code_refusal("isv.invalid-signature"));
    }

    #[test]
    fn scopes_round_trip() {
        for s in [Scope::AuthBase, Scope::AuthUser] {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("auth_base,auth_user"), None);
    }
}
