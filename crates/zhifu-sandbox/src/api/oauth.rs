//! User authorization (docs/agreements.md §5 and its Sandbox section):
//! one-time `auth_code`s issued by the sandbox's authorize page (or the
//! control API standing in for the Alipay app's `getAuthCode`), and
//! `alipay.system.oauth.token`, whose `grant_type`, `code` and
//! `refresh_token` are top-level parameters. The buyer is always the
//! sandbox's test buyer.

use serde_json::{Map, Value};

use crate::config::OauthIds;
use crate::ids;
use crate::state::{AuthGrant, Ctx, State};
use crate::wire::BizError;

/// The top-level parameters of `alipay.system.oauth.token`. They are
/// credentials, so `Debug` names only which are present.
#[derive(Clone, Default)]
pub(crate) struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub refresh_token: Option<String>,
}

impl std::fmt::Debug for TokenParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenParams")
            .field("grant_type", &self.grant_type)
            .field("code", &self.code.as_ref().map(|_| "…"))
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "…"))
            .finish()
    }
}

fn invalid_arguments(sub_code: &'static str, sub_msg: &str) -> BizError {
    BizError {
        code: "40002",
        msg: "Invalid Arguments",
        sub_code,
        sub_msg: sub_msg.to_owned(),
        extra: Vec::new(),
    }
}

/// Issues a one-time authorization code for the test buyer and `app_id`.
pub(crate) fn issue_code(st: &mut State, app_id: &str, ctx: &Ctx<'_>) -> String {
    let code = ids::token(16);
    let ttl = i64::try_from(ctx.cfg.oauth_code_ttl.as_millis()).unwrap_or(i64::MAX);
    // Expired codes are dropped whenever a new one is issued.
    let now = ctx.now_ms();
    st.auth_codes.retain(|_, g| g.expires_at > now);
    st.auth_codes.insert(
        code.clone(),
        AuthGrant {
            app_id: app_id.to_owned(),
            expires_at: now.saturating_add(ttl),
        },
    );
    code
}

/// `alipay.system.oauth.token`: the answer's fields, or the
/// `error_response` failure (a code works once, for its own app, until it
/// expires).
pub(crate) fn token(
    st: &mut State,
    app_id: &str,
    p: &TokenParams,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, BizError> {
    let now = ctx.now_ms();
    match p.grant_type.as_deref() {
        Some("authorization_code") => {
            let code = p
                .code
                .as_deref()
                .ok_or_else(|| invalid_arguments("isv.code-invalid", "授权码code无效"))?;
            // Taken out whatever happens next: a code is spent by any use.
            let grant = st.auth_codes.remove(code);
            if !grant.is_some_and(|g| g.app_id == app_id && g.expires_at > now) {
                return Err(invalid_arguments("isv.code-invalid", "授权码code无效"));
            }
        }
        Some("refresh_token") => {
            let token = p.refresh_token.as_deref().ok_or_else(|| {
                invalid_arguments("isv.refresh-token-invalid", "刷新令牌refresh_token无效")
            })?;
            let grant = st.refresh_tokens.remove(token);
            if !grant.is_some_and(|g| g.app_id == app_id && g.expires_at > now) {
                return Err(invalid_arguments(
                    "isv.refresh-token-invalid",
                    "刷新令牌refresh_token无效",
                ));
            }
        }
        _ => {
            return Err(invalid_arguments(
                "isv.grant-type-invalid",
                "grant_type 必须是 authorization_code 或 refresh_token",
            ));
        }
    }
    let secs = |d: std::time::Duration| d.as_secs();
    let refresh = format!("authbseB{}", ids::token(16));
    st.refresh_tokens.insert(
        refresh.clone(),
        AuthGrant {
            app_id: app_id.to_owned(),
            expires_at: now.saturating_add(
                i64::try_from(ctx.cfg.oauth_refresh_ttl.as_millis()).unwrap_or(i64::MAX),
            ),
        },
    );
    let mut f = Map::new();
    if ctx.cfg.oauth_ids != OauthIds::OpenId {
        f.insert("user_id".into(), st.buyer_id.clone().into());
    }
    if ctx.cfg.oauth_ids != OauthIds::UserId {
        f.insert("open_id".into(), ids::open_id(&st.buyer_id, app_id).into());
    }
    f.insert(
        "access_token".into(),
        format!("authbseB{}", ids::token(16)).into(),
    );
    f.insert("expires_in".into(), secs(ctx.cfg.oauth_token_ttl).into());
    f.insert("refresh_token".into(), refresh.into());
    f.insert(
        "re_expires_in".into(),
        secs(ctx.cfg.oauth_refresh_ttl).into(),
    );
    f.insert(
        "auth_start".into(),
        alipay::time::format_beijing(ctx.now).into(),
    );
    Ok(f)
}
