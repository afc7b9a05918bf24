//! The buyer's side of agreements and authorization (docs/agreements.md,
//! Sandbox): the signing page behind `alipay.user.agreement.page.sign`
//! (agree or decline), the buyer's own agreement page (pause, resume,
//! unsign), the OAuth authorize page with its redirect back carrying
//! `auth_code` and `state`, and `POST /sandbox/api/oauth/auth-code`, the
//! stand-in for the Alipay app bridge's `getAuthCode`.

use alipay::protocol::html_escape as esc;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use alipay::Charset;

use axum::extract::rejection::JsonRejection;

use crate::api::oauth;
use crate::control::ApiError;
use crate::error::SandboxError;
use crate::gateway;
use crate::html::{error_page, frame, not_found, page};
use crate::intake;
use crate::lang::{Lang, LangQuery};
use crate::model::{Agreement, AgreementState, beijing, yuan};
use crate::sandbox::Sandbox;

/// The routes of this module.
pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/sandbox/sign/{token}", get(sign_page))
        .route("/sandbox/sign/{token}/{choice}", post(sign_choice))
        .route("/sandbox/agreements/{agreement_no}", get(agreement_page))
        .route(
            "/sandbox/agreements/{agreement_no}/{action}",
            post(agreement_action),
        )
        .route(AUTHORIZE_PATH, get(authorize).post(authorize_consent))
        .route("/sandbox/api/oauth/auth-code", post(auth_code))
        .route("/sandbox/app-sign", get(app_sign))
        .route("/sandbox/api/agreements", get(list_agreements))
        .route(
            "/sandbox/api/withholding-balance",
            axum::routing::put(set_balance).post(set_balance),
        )
}

/// `GET /sandbox/api/agreements`: every agreement, newest first.
pub(crate) async fn list_agreements(State(sb): State<Sandbox>) -> Response {
    Json(sb.agreements().await).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct BalanceRequest {
    /// Yuan text (`"10.00"`); `null` for unlimited.
    balance: Option<String>,
}

/// `PUT /sandbox/api/withholding-balance` `{"balance": "10.00"}` (or
/// `null`): what the test buyer has left for deductions.
pub(crate) async fn set_balance(
    State(sb): State<Sandbox>,
    req: Result<Json<BalanceRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = req?;
    let balance = match req.balance.as_deref() {
        None => None,
        Some(text) => Some(alipay::Amount::parse(text).map_err(|_| {
            SandboxError::InvalidInput(
                "balance must be yuan text such as \"10.00\", or null".into(),
            )
        })?),
    };
    sb.set_withholding_balance(balance).await;
    Ok(Json(
        serde_json::json!({"balance": balance.map(|a| a.to_string())}),
    ))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AppSign {
    #[serde(default)]
    sign_params: Option<String>,
}

/// `GET /sandbox/app-sign?sign_params=…`: plays the Alipay app opening the
/// in-app signing link (`alipays://platformapi/startapp?appId=60000157&…&sign_params=…`,
/// docs/agreements.md §1): the signed request is checked like the gateway
/// would, then the buyer sees the signing page.
pub(crate) async fn app_sign(State(sb): State<Sandbox>, Query(q): Query<AppSign>) -> Response {
    let Some(s) = q.sign_params.filter(|s| !s.trim().is_empty()) else {
        return error_page("40001", "isv.missing-parameter", "缺少 sign_params");
    };
    let cfg = sb.config();
    let params = match intake::intake(
        s.trim().as_bytes(),
        b"",
        Charset::Utf8,
        cfg.duplicate_params,
    ) {
        Ok(p) => p,
        Err(r) => return error_page(r.code, r.sub_code, &r.sub_msg),
    };
    let checked = match intake::check(&sb, &params).await {
        Ok(c) => c,
        Err(r) => return error_page(r.code, r.sub_code, &r.sub_msg),
    };
    if checked.method != "alipay.user.agreement.page.sign" {
        return error_page(
            "40002",
            "isv.invalid-method",
            "sign_params 的 method 必须是 alipay.user.agreement.page.sign",
        );
    }
    match gateway::place_agreement(&sb, &checked).await {
        Ok(token) => Redirect::to(&format!("/sandbox/sign/{token}")).into_response(),
        Err(e) => error_page(e.code, e.sub_code, &e.sub_msg),
    }
}

/// Where the sandbox's authorize page is (the real one is
/// `/oauth2/publicAppAuthorize.htm` on Alipay's auth host).
pub(crate) const AUTHORIZE_PATH: &str = "/sandbox/oauth2/publicAppAuthorize.htm";

pub(crate) fn status_label(lang: Lang, a: &Agreement) -> &'static str {
    if a.declined {
        return lang.pick("已拒绝", "Declined");
    }
    match a.status {
        AgreementState::Temp => lang.pick("待签约", "Waiting for the buyer"),
        AgreementState::Normal => lang.pick("已签约", "Signed"),
        AgreementState::Stop => lang.pick("已暂停", "Paused"),
        AgreementState::Unsign => lang.pick("已解约", "Ended"),
    }
}

fn details(lang: Lang, a: &Agreement) -> String {
    let rule = match (&a.period_type, a.period) {
        (Some(t), Some(n)) => format!(
            "{n} {}",
            match t.as_str() {
                "DAY" => lang.pick("天", "day(s)"),
                _ => lang.pick("个月", "month(s)"),
            }
        ),
        _ => "—".to_owned(),
    };
    format!(
        "<dl><dt>{}</dt><dd id=\"merchant\">{}</dd>\
         <dt>{}</dt><dd id=\"agreement_no\">{}</dd>\
         <dt>{}</dt><dd id=\"external_agreement_no\">{}</dd>\
         <dt>{}</dt><dd id=\"period\">{}</dd>\
         <dt>{}</dt><dd id=\"execute_time\">{}</dd>\
         <dt>{}</dt><dd id=\"single_amount\">{}</dd>\
         <dt>{}</dt><dd id=\"status\" data-status=\"{}\">{}</dd></dl>",
        lang.pick("商户", "Merchant"),
        esc(&a.app_id),
        lang.pick("协议号", "Agreement no."),
        esc(&a.agreement_no),
        lang.pick("商户协议号", "Merchant's agreement no."),
        esc(a.external_agreement_no.as_deref().unwrap_or("—")),
        lang.pick("扣款周期", "Charged every"),
        esc(&rule),
        lang.pick("首次扣款日", "First charge"),
        esc(a.execute_time.as_deref().unwrap_or("—")),
        lang.pick("单次扣款上限", "At most per charge"),
        a.single_fen
            .map_or_else(|| "—".to_owned(), |f| format!("¥{}", yuan(f))),
        lang.pick("状态", "State"),
        if a.declined {
            "DECLINED"
        } else {
            a.status.as_str()
        },
        status_label(lang, a),
    )
}

/// `GET /sandbox/sign/{token}`: what the buyer is asked to sign.
pub(crate) async fn sign_page(
    State(sb): State<Sandbox>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let st = sb.lock().await;
    let Some(a) = st.agreement_by_token(&token) else {
        return not_found(
            lang,
            lang.pick("这个签约链接不存在", "This signing link does not exist"),
        );
    };
    let actions = if a.status == AgreementState::Temp && !a.declined {
        format!(
            "<div class=\"actions\"><form method=\"post\" action=\"/sandbox/sign/{token}/agree\">\
             <button id=\"agree\" type=\"submit\">{}</button></form>\
             <form method=\"post\" action=\"/sandbox/sign/{token}/decline\">\
             <button id=\"decline\" type=\"submit\">{}</button></form></div>",
            lang.pick("同意并签约", "Agree and sign"),
            lang.pick("拒绝", "Decline"),
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>{}</h1><p>{}</p>{}{actions}",
        lang.pick(
            "支付宝 · 周期扣款签约",
            "Alipay · recurring payment agreement"
        ),
        lang.pick(
            "签约后，商户可按以下约定从您的账户扣款。",
            "Once signed, the merchant may charge your account as agreed below."
        ),
        details(lang, a),
    );
    lang.remember(
        frame(
            lang,
            lang.pick("周期扣款签约", "Sign an agreement"),
            &body,
            false,
            true,
        ),
        chosen,
    )
}

fn redirect(to: &str) -> Option<Response> {
    let web = to.starts_with("https://") || to.starts_with("http://");
    (web && HeaderValue::from_str(to).is_ok()).then(|| Redirect::to(to).into_response())
}

/// `POST /sandbox/sign/{token}/agree|decline`: the buyer decides. After
/// agreeing the buyer goes to the request's `return_url` (no parameters:
/// the merchant learns the result from the notification or a query), else
/// sees the signed agreement.
pub(crate) async fn sign_choice(
    State(sb): State<Sandbox>,
    Path((token, choice)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (lang, _) = Lang::of(&headers, None);
    let mut st = sb.lock().await;
    let Some(a) = st.agreement_by_token(&token) else {
        return not_found(
            lang,
            lang.pick("这个签约链接不存在", "This signing link does not exist"),
        );
    };
    let no = a.agreement_no.clone();
    if a.declined || a.status != AgreementState::Temp {
        let body = format!(
            "<h1>{}</h1>{}",
            lang.pick("签约已处理", "Already decided"),
            details(lang, a)
        );
        return page(lang, lang.pick("周期扣款签约", "Sign an agreement"), &body);
    }
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let agreed = match choice.as_str() {
        "agree" => {
            if let Err(e) = st.agree(&no, &ctx) {
                return error_page("20000", "isp.unknow-error", &e.to_string());
            }
            true
        }
        "decline" => {
            st.decline(&no);
            false
        }
        _ => return not_found(lang, lang.pick("没有这个操作", "No such action")),
    };
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
    }
    let a = st.agreements[&no].clone();
    drop(st);
    if agreed && let Some(r) = a.return_url.as_deref().and_then(redirect) {
        return r;
    }
    let title = if agreed {
        lang.pick("签约成功", "Signed")
    } else {
        lang.pick("您已拒绝签约", "You declined")
    };
    let back = a
        .return_url
        .as_deref()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(|u| {
            format!(
                "<p><a id=\"back-to-merchant\" href=\"{}\">{}</a></p>",
                esc(u),
                lang.pick("返回商家", "Back to the merchant")
            )
        })
        .unwrap_or_default();
    let body = format!("<h1 id=\"result\">{title}</h1>{}{back}", details(lang, &a));
    page(lang, title, &body)
}

/// `GET /sandbox/agreements/{agreement_no}`: the buyer's view of one
/// agreement (Alipay app → settings → payments), with pause, resume and
/// unsign.
pub(crate) async fn agreement_page(
    State(sb): State<Sandbox>,
    Path(no): Path<String>,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let st = sb.lock().await;
    let Some(a) = st.agreements.get(&no).filter(|a| !a.declined) else {
        return not_found(lang, lang.pick("没有这个协议", "No such agreement"));
    };
    let button = |action: &str, id: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/sandbox/agreements/{}/{action}\">\
             <button id=\"{id}\" type=\"submit\">{label}</button></form>",
            esc(&a.agreement_no)
        )
    };
    let mut actions = String::new();
    match a.status {
        AgreementState::Normal => {
            actions.push_str(&button("pause", "pause", lang.pick("暂停扣款", "Pause")));
            actions.push_str(&button(
                "unsign",
                "unsign",
                lang.pick("解约", "End the agreement"),
            ));
        }
        AgreementState::Stop => {
            actions.push_str(&button("resume", "resume", lang.pick("恢复扣款", "Resume")));
            actions.push_str(&button(
                "unsign",
                "unsign",
                lang.pick("解约", "End the agreement"),
            ));
        }
        AgreementState::Temp | AgreementState::Unsign => {}
    }
    let used = format!(
        "<p id=\"deductions\">{} {} · ¥{}</p>",
        lang.pick("已扣款次数", "Charges so far"),
        a.deductions,
        yuan(a.deducted_fen)
    );
    let signed = a
        .sign_time
        .map(|t| {
            format!(
                "<p id=\"sign_time\">{} {}</p>",
                lang.pick("签约时间", "Signed"),
                beijing(t)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>{}</h1>{}{signed}{used}<div class=\"actions\">{actions}</div>",
        lang.pick("我的扣款协议", "My payment agreement"),
        details(lang, a),
    );
    lang.remember(
        frame(
            lang,
            lang.pick("扣款协议", "Payment agreement"),
            &body,
            false,
            true,
        ),
        chosen,
    )
}

/// `POST /sandbox/agreements/{agreement_no}/pause|resume|unsign`.
pub(crate) async fn agreement_action(
    State(sb): State<Sandbox>,
    Path((no, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (lang, _) = Lang::of(&headers, None);
    let mut st = sb.lock().await;
    if st.agreements.get(&no).is_none_or(|a| a.declined) {
        return not_found(lang, lang.pick("没有这个协议", "No such agreement"));
    }
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let changed = match action.as_str() {
        "pause" => st.set_paused(&no, true),
        "resume" => st.set_paused(&no, false),
        "unsign" => match st.unsign(&no, true, &ctx) {
            Ok(c) => c,
            Err(e) => return error_page("20000", "isp.unknow-error", &e.to_string()),
        },
        _ => return not_found(lang, lang.pick("没有这个操作", "No such action")),
    };
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
    }
    drop(st);
    if !changed {
        let mut r = page(
            lang,
            lang.pick("无法操作", "Not possible"),
            &format!(
                "<h1>{}</h1><p><a href=\"/sandbox/agreements/{}\">{}</a></p>",
                lang.pick(
                    "协议当前状态不允许该操作",
                    "The agreement's state does not allow this"
                ),
                esc(&no),
                lang.pick("返回协议", "Back to the agreement")
            ),
        );
        *r.status_mut() = StatusCode::CONFLICT;
        return r;
    }
    Redirect::to(&format!("/sandbox/agreements/{no}")).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthorizeQuery {
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    lang: Option<String>,
}

/// Checks the authorize request; the redirect target with a fresh code on
/// success, an error page otherwise.
async fn grant(sb: &Sandbox, q: &AuthorizeQuery) -> Result<String, Response> {
    let app_id = q.app_id.as_deref().unwrap_or_default();
    let scope = q.scope.as_deref().unwrap_or_default();
    let uri = q.redirect_uri.as_deref().unwrap_or_default();
    if !scope
        .split(',')
        .all(|s| matches!(s.trim(), "auth_base" | "auth_user"))
        || scope.is_empty()
    {
        return Err(error_page(
            "40002",
            "isv.invalid-scope",
            "scope 必须是 auth_base 或 auth_user",
        ));
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(error_page(
            "40002",
            "isv.invalid-redirect-uri",
            "redirect_uri 不是有效的网址",
        ));
    }
    let mut st = sb.lock().await;
    if !st.apps.contains_key(app_id) {
        return Err(error_page("40002", "isv.invalid-app-id", "无效的AppID参数"));
    }
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let code = oauth::issue_code(&mut st, app_id, &ctx);
    drop(st);
    let mut q2 = form_urlencoded_pairs(&[
        ("app_id", app_id),
        ("source", "alipay_wallet"),
        ("scope", scope),
        ("auth_code", &code),
    ]);
    if let Some(s) = &q.state {
        q2.push('&');
        q2.push_str(&form_urlencoded_pairs(&[("state", s)]));
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Ok(format!("{uri}{sep}{q2}"))
}

/// What a query value may keep unescaped.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn form_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET /sandbox/oauth2/publicAppAuthorize.htm`: `auth_base` is silent
/// (straight back to `redirect_uri` with `auth_code` and `state`);
/// `auth_user` asks the buyer first.
pub(crate) async fn authorize(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let (lang, chosen) = Lang::of(&headers, q.lang.as_deref());
    let scope = q.scope.as_deref().unwrap_or_default();
    if scope.split(',').any(|s| s.trim() == "auth_user") {
        let hidden = |k: &str, v: Option<&str>| {
            v.map(|v| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
                .unwrap_or_default()
        };
        let body = format!(
            "<h1>{}</h1><p>{}</p><dl><dt>{}</dt><dd id=\"app_id\">{}</dd></dl>\
             <form method=\"post\" action=\"{AUTHORIZE_PATH}\">{}{}{}{}\
             <button id=\"authorize\" type=\"submit\">{}</button></form>",
            lang.pick("支付宝 · 授权", "Alipay · authorization"),
            lang.pick(
                "该应用将获得你的公开信息（昵称、头像）。",
                "The app will see your public profile (nickname, avatar)."
            ),
            lang.pick("应用", "App"),
            esc(q.app_id.as_deref().unwrap_or_default()),
            hidden("app_id", q.app_id.as_deref()),
            hidden("scope", q.scope.as_deref()),
            hidden("redirect_uri", q.redirect_uri.as_deref()),
            hidden("state", q.state.as_deref()),
            lang.pick("同意授权", "Allow"),
        );
        return lang.remember(
            frame(lang, lang.pick("授权", "Authorize"), &body, false, true),
            chosen,
        );
    }
    match grant(&sb, &q).await {
        Ok(to) => redirect(&to).unwrap_or_else(|| {
            error_page(
                "40002",
                "isv.invalid-redirect-uri",
                "redirect_uri 不是有效的网址",
            )
        }),
        Err(r) => r,
    }
}

/// `POST /sandbox/oauth2/publicAppAuthorize.htm`: the buyer allowed `auth_user`.
pub(crate) async fn authorize_consent(
    State(sb): State<Sandbox>,
    axum::Form(q): axum::Form<AuthorizeQuery>,
) -> Response {
    match grant(&sb, &q).await {
        Ok(to) => redirect(&to).unwrap_or_else(|| {
            error_page(
                "40002",
                "isv.invalid-redirect-uri",
                "redirect_uri 不是有效的网址",
            )
        }),
        Err(r) => r,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuthCodeRequest {
    app_id: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// `POST /sandbox/api/oauth/auth-code` `{"app_id": …, "scopes": ["auth_base"]}`:
/// what the Alipay app's `my.getAuthCode` / `AlipayJSBridge` `getAuthCode`
/// hands a mini-program or page, `{"authCode": …, "authSuccessScopes": […]}`.
pub(crate) async fn auth_code(
    State(sb): State<Sandbox>,
    req: Result<Json<AuthCodeRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) = req?;
    let mut st = sb.lock().await;
    if !st.apps.contains_key(&req.app_id) {
        return Err(SandboxError::UnknownApp(req.app_id).into());
    }
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let code = oauth::issue_code(&mut st, &req.app_id, &ctx);
    let scopes = req.scopes.unwrap_or_else(|| vec!["auth_base".to_owned()]);
    Ok(Json(
        serde_json::json!({"authCode": code, "authSuccessScopes": scopes}),
    ))
}
