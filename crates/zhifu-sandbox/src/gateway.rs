//! `GET`/`POST /gateway.do`: the handler (intake and checks are in
//! `intake`), faults, dispatch to the trade APIs, page/wap/app orders that
//! send the buyer to the cashier, and the signed responses of docs/protocol.md §4.1, built
//! with the sandbox's `alipay::testing::AlipaySigner`. Every answered call
//! goes to the request log (`requests`).

use std::time::Duration;

use alipay::response::response_node_name;
use alipay::testing::response_body;
use alipay::{Charset, SignType};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::api;
use crate::html::error_page;
use crate::ids;
use crate::intake::{Checked, Refusal, check, intake, invalid};
use crate::model::{Product, millis};
use crate::requests::Call;
use crate::sandbox::Sandbox;
use crate::wire::{Biz, BizError, Reply, Sys};

/// Builds `{"<node>":{…},"sign":"…"}` with the node text signed exactly as
/// sent (docs/protocol.md §4.1–4.2). Slashes are escaped as the real gateway does (`\/`).
fn render(
    sb: &Sandbox,
    node: &str,
    fields: Map<String, Value>,
    sign: Option<SignType>,
    charset: Charset,
) -> Response {
    let text = Value::Object(fields).to_string().replace('/', "\\/");
    render_node(sb, node, &text, sign, charset)
}

/// An encrypted answer (docs/protocol.md §8): the node is a JSON string of the ciphertext,
/// and the signed text is that token **with** its quotes.
fn render_encrypted(
    sb: &Sandbox,
    node: &str,
    fields: Map<String, Value>,
    key: &alipay::AesKey,
    sign: SignType,
    charset: Charset,
) -> Response {
    let cipher = key.encrypt(&Value::Object(fields).to_string());
    render_node(sb, node, &format!("\"{cipher}\""), Some(sign), charset)
}

fn render_node(
    sb: &Sandbox,
    node: &str,
    text: &str,
    sign: Option<SignType>,
    charset: Charset,
) -> Response {
    let signing = sb.signing();
    let body = match sign.map(|st| signing.signer.sign(st, &charset.encode(text))) {
        // Certificate mode: `alipay_cert_sn` at the top level, outside the
        // signed text, before `sign` (docs/protocol.md §4.1, §7.4).
        Some(Ok(sig)) => match &signing.cert_sn {
            Some(sn) => format!(
                "{{{}:{text},\"alipay_cert_sn\":\"{sn}\",\"sign\":\"{sig}\"}}",
                Value::from(node)
            ),
            None => response_body(node, text, Some(&sig)),
        },
        // A signing failure cannot happen with a valid key; answer unsigned
        // rather than fail the request.
        Some(Err(_)) | None => response_body(node, text, None),
    };
    let mut resp = (StatusCode::OK, charset.encode(&body).into_owned()).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("text/html;charset={}", charset.as_str())) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&ids::token(12)) {
        h.insert("trace_id", v);
    }
    resp
}

fn status_fields(code: &str, msg: &str, sub: Option<(&str, &str)>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("code".into(), code.into());
    m.insert("msg".into(), msg.into());
    if let Some((c, s)) = sub {
        m.insert("sub_code".into(), c.into());
        m.insert("sub_msg".into(), s.into());
    }
    m
}

fn refusal_response(sb: &Sandbox, method: Option<&str>, r: &Refusal, charset: Charset) -> Response {
    let node = match method {
        Some(m) if !r.error_node => response_node_name(m),
        _ => "error_response".to_owned(),
    };
    render(
        sb,
        &node,
        status_fields(r.code, r.msg, Some((r.sub_code, &r.sub_msg))),
        r.sign,
        charset,
    )
}

fn reply_response(sb: &Sandbox, c: &Checked, result: Result<Reply, BizError>) -> Response {
    let node = response_node_name(&c.method);
    let fields = match result {
        Ok(r) => {
            let mut m = status_fields(r.code, r.msg, None);
            m.extend(r.fields);
            m
        }
        Err(e) => {
            let mut m = status_fields(e.code, e.msg, Some((e.sub_code, &e.sub_msg)));
            for (k, v) in e.extra {
                m.insert(k.to_owned(), Value::String(v));
            }
            m
        }
    };
    match &c.aes {
        Some(key) => render_encrypted(sb, &node, fields, key, c.sign_type, c.charset),
        None => render(sb, &node, fields, Some(c.sign_type), c.charset),
    }
}

/// The signing page's API: client-side like page pay.
const AGREEMENT_PAGE_SIGN: &str = "alipay.user.agreement.page.sign";
/// The token exchange, answered outside the usual `code`/`msg` shape.
const OAUTH_TOKEN: &str = "alipay.system.oauth.token";

fn is_form(headers: &HeaderMap) -> bool {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => true,
        Some(ct) => ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded"),
    }
}

/// The `/gateway.do` handler: answers the call, then logs it (the request
/// log of `requests`).
pub(crate) async fn gateway(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut call = Call {
        at_ms: millis(sb.now()),
        wall_ms: millis(OffsetDateTime::now_utc()),
        ..Default::default()
    };
    let resp = answer(&sb, &method, &uri, &headers, &body, &mut call).await;
    sb.log_request(call);
    resp
}

/// Answers one gateway call, noting in `call` what it learnt and answered.
async fn answer(
    sb: &Sandbox,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    call: &mut Call,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let body: &[u8] = if method == Method::POST && is_form(headers) {
        body
    } else {
        &[]
    };
    let cfg = sb.config();
    let params = match intake(query, body, cfg.default_charset, cfg.duplicate_params) {
        Ok(p) => p,
        Err(r) => {
            call.answered(r.code, Some(r.sub_code));
            return refusal_response(sb, None, &r, Charset::Utf8);
        }
    };
    let charset = params.charset.unwrap_or(Charset::Utf8);
    let api_method = params.get("method").map(str::to_owned);
    call.method.clone_from(&api_method);
    call.app_id = params.get("app_id").map(str::to_owned);
    call.biz = params.get("biz_content").map(str::to_owned);
    let is_page = matches!(
        api_method.as_deref(),
        Some(
            "alipay.trade.page.pay"
                | "alipay.trade.wap.pay"
                | "alipay.trade.app.pay"
                | AGREEMENT_PAGE_SIGN
        )
    );
    let checked = match check(sb, &params).await {
        Ok(c) => c,
        Err(r) => {
            call.answered(r.code, Some(r.sub_code));
            if is_page {
                return error_page(r.code, r.sub_code, &r.sub_msg);
            }
            return refusal_response(sb, api_method.as_deref(), &r, charset);
        }
    };
    // Decrypted, for AES requests.
    call.biz.clone_from(&checked.biz);
    if checked.method == AGREEMENT_PAGE_SIGN {
        return agreement_sign_order(sb, &checked, call).await;
    }
    if is_page {
        return page_order(sb, &checked, call).await;
    }
    // Faults apply to server-to-server calls after verification.
    let (latency, system_error, after_commit) = {
        let mut st = sb.lock().await;
        let f = st.faults.clone();
        let lat = st.rng.chance(f.latency_rate).then_some(f.latency_ms);
        let err = st.rng.chance(f.system_error_rate);
        (lat, err, f.system_error_after_commit)
    };
    if let Some(ms) = latency {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if system_error && !after_commit {
        return system_error_response(sb, &checked, call);
    }
    if checked.method == OAUTH_TOKEN {
        return oauth_token(sb, &checked, call).await;
    }
    let result = dispatch(sb, &checked).await;
    if system_error {
        return system_error_response(sb, &checked, call);
    }
    match result {
        Some(r) => {
            match &r {
                Ok(reply) => call.answered(reply.code, None),
                Err(e) => call.answered(e.code, Some(e.sub_code)),
            }
            reply_response(sb, &checked, r)
        }
        None => {
            let r = Refusal {
                error_node: true,
                ..invalid(
                    "isv.invalid-method",
                    "不存在的方法名",
                    Some(checked.sign_type),
                )
            };
            call.answered(r.code, Some(r.sub_code));
            refusal_response(sb, None, &r, checked.charset)
        }
    }
}

fn system_error_response(sb: &Sandbox, c: &Checked, call: &mut Call) -> Response {
    let sub = if c.method.starts_with("alipay.trade.") {
        ("ACQ.SYSTEM_ERROR", "系统错误")
    } else {
        ("isp.unknow-error", "系统繁忙")
    };
    call.answered("20000", Some(sub.0));
    render(
        sb,
        &response_node_name(&c.method),
        status_fields("20000", "Service Currently Unavailable", Some(sub)),
        Some(c.sign_type),
        c.charset,
    )
}

fn parse_biz(c: &Checked) -> Result<Biz, BizError> {
    match c.biz.as_deref() {
        None => Ok(Biz::default()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Biz(m)),
            _ => Err(BizError::invalid("biz_content 不是合法的JSON对象")),
        },
    }
}

fn sys_of(c: &Checked) -> Sys {
    Sys {
        notify_url: c.notify_url.clone(),
        return_url: c.return_url.clone(),
        charset: c.charset.as_str().to_owned(),
        sign_type: c.sign_type.as_str().to_owned(),
    }
}

/// Runs one API; `None` for an unknown method.
async fn dispatch(sb: &Sandbox, c: &Checked) -> Option<Result<Reply, BizError>> {
    let biz = match parse_biz(c) {
        Ok(b) => b,
        Err(e) => return Some(Err(e)),
    };
    if c.method == crate::certs::DOWNLOAD_METHOD && sb.inner.certs.is_some() {
        return Some(crate::cert_mode::download(sb, c.biz.as_deref()));
    }
    let sys = sys_of(c);
    let mut st = sb.lock().await;
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let r = api::call(&mut st, &c.method, &c.app_id, &biz, &sys, &ctx)?;
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
        return Some(Err(BizError::system_error()));
    }
    Some(r)
}

/// Page/wap pay (and app pay opened in a browser): record the order and
/// send the buyer to the cashier.
async fn page_order(sb: &Sandbox, c: &Checked, call: &mut Call) -> Response {
    let product = match c.method.as_str() {
        "alipay.trade.page.pay" => Product::Page,
        "alipay.trade.wap.pay" => Product::Wap,
        _ => Product::App,
    };
    let token = match place(sb, c, product).await {
        Ok(t) => t,
        Err(e) => {
            call.answered(e.code, Some(e.sub_code));
            return error_page(e.code, e.sub_code, &e.sub_msg);
        }
    };
    call.answered("10000", None);
    Redirect::to(&format!("/sandbox/cashier/{token}")).into_response()
}

/// Records a client-side order (page/wap/app), returning its cashier token.
pub(crate) async fn place(sb: &Sandbox, c: &Checked, product: Product) -> Result<String, BizError> {
    let biz = parse_biz(c)?;
    let sys = sys_of(c);
    let (out, mut terms) = api::pay::order_terms(&biz, product, &sys)?;
    terms.agreement_sign = api::agreement::pay_and_sign(&biz)?;
    let mut st = sb.lock().await;
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let token = api::pay::place_order(&mut st, &c.app_id, out, terms, &ctx)?;
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
        return Err(BizError::system_error());
    }
    Ok(token)
}

/// `alipay.user.agreement.page.sign`: record the `TEMP` agreement and send
/// the buyer to the signing page.
async fn agreement_sign_order(sb: &Sandbox, c: &Checked, call: &mut Call) -> Response {
    match place_agreement(sb, c).await {
        Ok(token) => {
            call.answered("10000", None);
            Redirect::to(&format!("/sandbox/sign/{token}")).into_response()
        }
        Err(e) => {
            call.answered(e.code, Some(e.sub_code));
            error_page(e.code, e.sub_code, &e.sub_msg)
        }
    }
}

/// Records a verified signing request, returning its signing page token.
pub(crate) async fn place_agreement(sb: &Sandbox, c: &Checked) -> Result<String, BizError> {
    let biz = parse_biz(c)?;
    let sys = sys_of(c);
    let mut st = sb.lock().await;
    let signer = sb.signer();
    let ctx = sb.ctx(&signer);
    let token = api::agreement::sign_order(&mut st, &c.app_id, &biz, &sys, &ctx)?;
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
        return Err(BizError::system_error());
    }
    Ok(token)
}

/// `alipay.system.oauth.token`: success is the signed node without
/// `code`/`msg` (as the public answers show, docs/agreements.md §5),
/// failure is a signed `error_response`.
async fn oauth_token(sb: &Sandbox, c: &Checked, call: &mut Call) -> Response {
    let result = {
        let mut st = sb.lock().await;
        let signer = sb.signer();
        let ctx = sb.ctx(&signer);
        api::oauth::token(&mut st, &c.app_id, &c.oauth, &ctx)
    };
    match result {
        Ok(fields) => {
            call.answered("10000", None);
            render(
                sb,
                &response_node_name(&c.method),
                fields,
                Some(c.sign_type),
                c.charset,
            )
        }
        Err(e) => {
            call.answered(e.code, Some(e.sub_code));
            render(
                sb,
                "error_response",
                status_fields(e.code, e.msg, Some((e.sub_code, &e.sub_msg))),
                Some(c.sign_type),
                c.charset,
            )
        }
    }
}
