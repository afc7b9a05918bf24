//! User authorization (用户授权): send the buyer to Alipay's authorization
//! page ([`AuthorizeUrl`]), receive `auth_code` on the redirect, and
//! exchange it with `alipay.system.oauth.token` ([`SystemOauthToken`]) for
//! the buyer's `user_id` / `open_id` — what in-app (JSAPI) payments need as
//! the buyer of `alipay.trade.create` (docs/agreements.md).
//!
//! `grant_type` and `code` are top-level request parameters of
//! `alipay.system.oauth.token`, not `biz_content`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::models::{ApiRequest, BizContent, TradeCreate};

/// Production authorization page for web/H5 apps.
pub const OAUTH_AUTHORIZE_URL: &str = "https://openauth.alipay.com/oauth2/publicAppAuthorize.htm";
/// The sandbox's authorization page (docs/agreements.md: seen in public
/// integrations, not in an official SDK).
pub const SANDBOX_OAUTH_AUTHORIZE_URL: &str =
    "https://openauth-sandbox.dl.alipaydev.com/oauth2/publicAppAuthorize.htm";

/// The authorization page URL: `…publicAppAuthorize.htm?app_id=…&scope=…&redirect_uri=…&state=…`.
///
/// `auth_base` (the default) is silent and yields only the buyer's id;
/// `auth_user` asks the buyer's consent and also allows profile calls.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizeUrl {
    /// The authorization page (production by default).
    pub endpoint: String,
    /// The app id.
    pub app_id: String,
    /// `auth_base` or `auth_user` (comma-separated for several).
    pub scope: String,
    /// Where Alipay sends the buyer back with `auth_code` (must be registered
    /// as the app's authorization redirect domain).
    pub redirect_uri: String,
    /// Echoed back on the redirect: bind it to the buyer's session (CSRF).
    pub state: Option<String>,
}

impl AuthorizeUrl {
    /// `auth_base` authorization of `app_id`, back to `redirect_uri`.
    pub fn new(app_id: impl Into<String>, redirect_uri: impl Into<String>) -> Self {
        AuthorizeUrl {
            endpoint: OAUTH_AUTHORIZE_URL.into(),
            app_id: app_id.into(),
            scope: "auth_base".into(),
            redirect_uri: redirect_uri.into(),
            state: None,
        }
    }
    /// Another authorization page (the sandbox, a local emulator).
    #[must_use]
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = url.into();
        self
    }
    /// Another scope, e.g. `auth_user`.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }
    /// The `state` echoed back on the redirect.
    #[must_use]
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
    /// The URL to send the buyer to.
    pub fn to_url(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("app_id", &self.app_id);
        q.append_pair("scope", &self.scope);
        q.append_pair("redirect_uri", &self.redirect_uri);
        if let Some(state) = &self.state {
            q.append_pair("state", state);
        }
        format!(
            "{}{}{}",
            self.endpoint,
            if self.endpoint.contains('?') {
                '&'
            } else {
                '?'
            },
            q.finish()
        )
    }
}

impl fmt::Display for AuthorizeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_url())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    AuthorizationCode(String),
    RefreshToken(String),
}

/// `alipay.system.oauth.token`: an authorization code (or a refresh token)
/// exchanged for the buyer's id and tokens.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SystemOauthToken {
    grant: Grant,
}

// Codes and tokens are credentials: they never reach a log.
impl fmt::Debug for SystemOauthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let grant = match self.grant {
            Grant::AuthorizationCode(_) => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
        };
        f.debug_struct("SystemOauthToken")
            .field("grant_type", &grant)
            .finish_non_exhaustive()
    }
}

impl SystemOauthToken {
    /// Exchanges the `auth_code` from the authorization redirect.
    pub fn authorization_code(code: impl Into<String>) -> Self {
        SystemOauthToken {
            grant: Grant::AuthorizationCode(code.into()),
        }
    }
    /// Renews tokens with a refresh token.
    pub fn refresh_token(token: impl Into<String>) -> Self {
        SystemOauthToken {
            grant: Grant::RefreshToken(token.into()),
        }
    }
}

impl Serialize for SystemOauthToken {
    // Nothing goes into `biz_content` (see `has_biz_content`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl BizContent for SystemOauthToken {
    fn method(&self) -> &str {
        "alipay.system.oauth.token"
    }
    fn validate(&self) -> Result<()> {
        let (field, value) = match &self.grant {
            Grant::AuthorizationCode(c) => ("code", c),
            Grant::RefreshToken(t) => ("refresh_token", t),
        };
        if value.trim().is_empty() {
            return Err(Error::field(field, "must not be empty"));
        }
        if value.len() > 128 || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::field(
                field,
                "expected at most 128 printable ASCII characters",
            ));
        }
        Ok(())
    }
    fn text_params(&self) -> Vec<(&'static str, String)> {
        match &self.grant {
            Grant::AuthorizationCode(c) => {
                vec![
                    ("grant_type", "authorization_code".into()),
                    ("code", c.clone()),
                ]
            }
            Grant::RefreshToken(t) => vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", t.clone()),
            ],
        }
    }
    fn has_biz_content(&self) -> bool {
        false
    }
}

impl ApiRequest for SystemOauthToken {
    type Response = OauthTokenResponse;
    // An authorization code works once: a blind retry after an unknown
    // outcome would only earn "code used".
}

/// Answer of `alipay.system.oauth.token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OauthTokenResponse {
    /// The buyer's `2088…` user id (apps still on user ids).
    pub user_id: Option<String>,
    /// The buyer's open id (apps created on open ids).
    pub open_id: Option<String>,
    /// Access token for authorized calls.
    pub access_token: String,
    /// Renews the access token.
    pub refresh_token: Option<String>,
    /// Access-token lifetime in seconds.
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
    /// Refresh-token lifetime in seconds.
    #[serde(default, deserialize_with = "seconds")]
    pub re_expires_in: Option<u64>,
    /// When the authorization started (`yyyy-MM-dd HH:mm:ss`).
    pub auth_start: Option<String>,
}

impl fmt::Debug for OauthTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OauthTokenResponse")
            .field("user_id", &self.user_id)
            .field("open_id", &self.open_id)
            .field("expires_in", &self.expires_in)
            .field("re_expires_in", &self.re_expires_in)
            .finish_non_exhaustive()
    }
}

/// The buyer of an in-app payment, as authorization identified them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuyerId {
    /// A `2088…` user id (`buyer_id`).
    UserId(String),
    /// An open id (`buyer_open_id`).
    OpenId(String),
}

impl OauthTokenResponse {
    /// The buyer's id: the open id when Alipay sent one (new apps receive
    /// only that), the user id otherwise.
    pub fn buyer(&self) -> Option<BuyerId> {
        let present = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        present(&self.open_id)
            .map(BuyerId::OpenId)
            .or_else(|| present(&self.user_id).map(BuyerId::UserId))
    }
}

impl TradeCreate {
    /// Sets the buyer from authorization: `buyer_open_id` or `buyer_id`.
    #[must_use]
    pub fn buyer(self, buyer: BuyerId) -> Self {
        match buyer {
            BuyerId::UserId(id) => self.buyer_id(id),
            BuyerId::OpenId(id) => self.buyer_open_id(id),
        }
    }
}

/// Lifetimes arrive as JSON numbers or as strings of digits.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("seconds as a number or a string of digits")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
            u64::try_from(v).map(Some).map_err(E::custom)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse().map(Some).map_err(E::custom)
        }
        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}
