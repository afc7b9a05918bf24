//! `GET`/`POST /gateway.do`: parameter intake (§2), request verification
//! (§3.2), the answers of the real gateway for bad requests (§4.3), faults,
//! dispatch to the trade APIs, and signed responses (§4.1).

use std::time::Duration;

use alipay::response::response_node_name;
use alipay::{AlipayPublicKey, Charset, SignType};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value};

use crate::config::DuplicateParams;
use crate::model::Product;
use crate::pages;
use crate::sandbox::Sandbox;
use crate::state::{Biz, BizError, Reply, State as St, Sys};

/// A request the gateway refuses before any business logic.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub code: &'static str,
    pub msg: &'static str,
    pub sub_code: &'static str,
    pub sub_msg: String,
    /// Sign the answer with this algorithm; `None` when the app is unknown.
    pub sign: Option<SignType>,
    /// Answer under `error_response` instead of the method's node.
    pub error_node: bool,
}

fn missing(sub_code: &'static str, sub_msg: &str, sign: Option<SignType>) -> Refusal {
    Refusal {
        code: "40001",
        msg: "Missing Required Arguments",
        sub_code,
        sub_msg: sub_msg.into(),
        sign,
        error_node: false,
    }
}

fn invalid(sub_code: &'static str, sub_msg: impl Into<String>, sign: Option<SignType>) -> Refusal {
    Refusal {
        code: "40002",
        msg: "Invalid Arguments",
        sub_code,
        sub_msg: sub_msg.into(),
        sign,
        error_node: false,
    }
}

/// Parameters after intake: merged, decoded once, in received order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pub pairs: Vec<(String, String)>,
    pub charset: Option<Charset>,
}

impl Params {
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
}

/// Splits a form/query into once-decoded byte pairs (`+` is a space).
pub(crate) fn raw_pairs(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|&b| b == b'&')
        .filter(|s| !s.is_empty())
        .map(|seg| {
            let (k, v) = match seg.iter().position(|&b| b == b'=') {
                Some(i) => (&seg[..i], &seg[i + 1..]),
                None => (seg, &[][..]),
            };
            let dec = |x: &[u8]| -> Vec<u8> {
                let plus: Vec<u8> = x
                    .iter()
                    .map(|&b| if b == b'+' { b' ' } else { b })
                    .collect();
                percent_encoding::percent_decode(&plus).collect()
            };
            (dec(k), dec(v))
        })
        .collect()
}

fn decode(charset: Charset, b: &[u8]) -> Option<String> {
    match charset {
        Charset::Utf8 => String::from_utf8(b.to_vec()).ok(),
        _ => encoding_rs::GBK
            .decode_without_bom_handling_and_without_replacement(b)
            .map(|c| c.into_owned()),
    }
}

/// Intake of §2.1/§2.3: `charset` from the query (else the configured
/// default), query and body merged, every value decoded once in that charset.
pub(crate) fn intake(
    query: &[u8],
    body: &[u8],
    default_charset: Charset,
    dup: DuplicateParams,
) -> Result<Params, Refusal> {
    let q = raw_pairs(query);
    let b = raw_pairs(body);
    let named = q
        .iter()
        .find(|(k, _)| k == b"charset")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    let charset = match &named {
        Some(c) => {
            Charset::parse(c).map_err(|_| invalid("isv.invalid-charset", "字符集错误", None))?
        }
        None => default_charset,
    };
    let bad = || {
        invalid(
            "isv.invalid-charset",
            format!("参数值不是有效的{}编码", charset.as_str()),
            None,
        )
    };
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(q.len() + b.len());
    for (k, v) in q {
        let (k, v) = (
            decode(charset, &k).ok_or_else(bad)?,
            decode(charset, &v).ok_or_else(bad)?,
        );
        if !pairs.iter().any(|(x, _)| *x == k) {
            pairs.push((k, v));
        }
    }
    for (k, v) in b {
        let (k, v) = (
            decode(charset, &k).ok_or_else(bad)?,
            decode(charset, &v).ok_or_else(bad)?,
        );
        match pairs.iter().position(|(x, _)| *x == k) {
            None => pairs.push((k, v)),
            Some(i) => match dup {
                DuplicateParams::BodyWins => pairs[i].1 = v,
                DuplicateParams::QueryWins => {}
                DuplicateParams::Reject => {
                    return Err(invalid(
                        "isv.invalid-parameter",
                        format!("参数{k}在URL和表单中重复出现"),
                        None,
                    ));
                }
            },
        }
    }
    Ok(Params {
        pairs,
        charset: Some(charset),
    })
}

/// A request that passed the common checks and the signature.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub app_id: String,
    pub method: String,
    pub sign_type: SignType,
    pub charset: Charset,
    pub biz: Option<String>,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    /// Set when the request was AES-encrypted: the answer is encrypted too.
    pub aes: Option<alipay::AesKey>,
}

/// The common-parameter checks and signature verification of §2.2/§3.2, in
/// the order the real gateway reports them.
pub(crate) async fn check(sb: &Sandbox, p: &Params) -> Result<Checked, Refusal> {
    let cfg = sb.config();
    let charset = p.charset.unwrap_or(Charset::Utf8);
    let sign_type_guess = p
        .get("sign_type")
        .and_then(|s| SignType::parse(s).ok())
        .unwrap_or(SignType::Rsa2);
    let Some(app_id) = p.get("app_id") else {
        return Err(Refusal {
            error_node: true,
            ..missing("isv.missing-app-id", "缺少AppID参数", None)
        });
    };
    let app = {
        let st = sb.lock().await;
        st.apps
            .get(app_id)
            .map(|a| (a.app_public_key.clone(), a.aes_key.clone()))
    };
    let Some((app_key, app_aes)) = app else {
        // The gateway cannot tell who is asking: nothing to sign for (§4.1).
        return Err(Refusal {
            error_node: true,
            ..invalid("isv.invalid-app-id", "无效的AppID参数", None)
        });
    };
    let signed = Some(sign_type_guess);
    let Some(method) = p.get("method") else {
        return Err(Refusal {
            error_node: true,
            ..missing("isv.missing-method", "缺少方法名参数", signed)
        });
    };
    let Some(sign) = p.get("sign") else {
        return Err(missing("isv.missing-signature", "缺少签名参数", signed));
    };
    let Some(sign_type_text) = p.get("sign_type") else {
        return Err(missing(
            "isv.missing-signature-type",
            "缺少签名类型参数",
            signed,
        ));
    };
    let Ok(sign_type) = SignType::parse(sign_type_text) else {
        return Err(invalid(
            "isv.invalid-signature-type",
            "无效签名类型",
            signed,
        ));
    };
    let Some(ts) = p.get("timestamp") else {
        return Err(missing("isv.missing-timestamp", "缺少时间戳参数", signed));
    };
    if p.get("version").is_none() {
        return Err(missing("isv.missing-version", "缺少版本参数", signed));
    }
    let Some(when) = alipay::time::parse_beijing(ts) else {
        return Err(invalid("isv.invalid-timestamp", "非法的时间戳参数", signed));
    };
    if let Some(skew) = cfg.max_timestamp_skew {
        let diff = (when - sb.now()).abs();
        if diff > time::Duration::try_from(skew).unwrap_or(time::Duration::MAX) {
            return Err(invalid("isv.invalid-timestamp", "非法的时间戳参数", signed));
        }
    }
    let pairs = p.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let content = if cfg.drop_blank_values {
        alipay::sign::request_sign_content(pairs)
    } else {
        alipay::sign::notify_sign_content(pairs, alipay::sign::NotifySignRule::KeepSignType, false)
    };
    let verified = AlipayPublicKey::parse(&app_key)
        .and_then(|k| k.verify(sign_type, &charset.encode(&content), sign))
        .is_ok();
    if !verified {
        return Err(invalid(
            "isv.invalid-signature",
            format!(
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{}",
                alipay::protocol::html_escape(&content)
            ),
            signed,
        ));
    }
    let mut biz = p.get("biz_content").map(str::to_owned);
    let aes = match p.get("encrypt_type") {
        None => None,
        Some("AES") => {
            let key = app_aes
                .as_deref()
                .and_then(|k| alipay::AesKey::from_base64(k).ok())
                .ok_or_else(|| invalid("isv.invalid-encrypt", "应用未开启接口内容加密", signed))?;
            // encrypt-then-sign (§8): the signature covered the ciphertext.
            if let Some(cipher) = &biz {
                let plain = key
                    .decrypt(cipher)
                    .map_err(|_| invalid("isv.decryption-error", "解密出错, 未知错误", signed))?;
                biz = Some(plain);
            }
            Some(key)
        }
        Some(_) => {
            return Err(invalid("isv.invalid-encrypt-type", "加密类型错误", signed));
        }
    };
    Ok(Checked {
        app_id: app_id.to_owned(),
        method: method.to_owned(),
        sign_type,
        charset,
        biz,
        notify_url: p.get("notify_url").map(str::to_owned),
        return_url: p.get("return_url").map(str::to_owned),
        aes,
    })
}

/// Builds `{"<node>":{…},"sign":"…"}` with the node text signed exactly as
/// sent (§4.1–4.2). Slashes are escaped as the real gateway does (`\/`).
pub(crate) fn render(
    sb: &Sandbox,
    node: &str,
    fields: Map<String, Value>,
    sign: Option<SignType>,
    charset: Charset,
) -> Response {
    let text = Value::Object(fields).to_string().replace('/', "\\/");
    render_node(sb, node, &text, sign, charset)
}

/// An encrypted answer (§8): the node is a JSON string of the ciphertext,
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
    let node_key = serde_json::to_string(node).unwrap_or_else(|_| "\"error_response\"".into());
    let body = match sign.map(|st| sb.key().sign(st, &charset.encode(text))) {
        Some(Ok(sig)) => format!("{{{node_key}:{text},\"sign\":\"{sig}\"}}"),
        // A signing failure cannot happen with a valid key; answer unsigned
        // rather than fail the request.
        Some(Err(_)) | None => format!("{{{node_key}:{text}}}"),
    };
    let mut resp = (StatusCode::OK, charset.encode(&body).into_owned()).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("text/html;charset={}", charset.as_str())) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&crate::ids::token(12)) {
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

/// The `/gateway.do` handler.
pub(crate) async fn gateway(
    State(sb): State<Sandbox>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri.query().unwrap_or("").as_bytes();
    let body: &[u8] = if method == Method::POST && is_form(&headers) {
        &body
    } else {
        &[]
    };
    let cfg = sb.config();
    let params = match intake(query, body, cfg.default_charset, cfg.duplicate_params) {
        Ok(p) => p,
        Err(r) => return refusal_response(&sb, None, &r, Charset::Utf8),
    };
    let charset = params.charset.unwrap_or(Charset::Utf8);
    let api_method = params.get("method").map(str::to_owned);
    let is_page = matches!(
        api_method.as_deref(),
        Some("alipay.trade.page.pay" | "alipay.trade.wap.pay" | "alipay.trade.app.pay")
    );
    let checked = match check(&sb, &params).await {
        Ok(c) => c,
        Err(r) if is_page => return pages::error_page(r.code, r.sub_code, &r.sub_msg),
        Err(r) => return refusal_response(&sb, api_method.as_deref(), &r, charset),
    };
    if is_page {
        return page_order(&sb, &checked).await;
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
        return system_error_response(&sb, &checked);
    }
    let result = dispatch(&sb, &checked).await;
    if system_error {
        return system_error_response(&sb, &checked);
    }
    match result {
        Some(r) => reply_response(&sb, &checked, r),
        None => refusal_response(
            &sb,
            None,
            &Refusal {
                error_node: true,
                ..invalid(
                    "isv.invalid-method",
                    "不存在的方法名",
                    Some(checked.sign_type),
                )
            },
            checked.charset,
        ),
    }
}

fn system_error_response(sb: &Sandbox, c: &Checked) -> Response {
    let sub = if c.method.starts_with("alipay.trade.") {
        ("ACQ.SYSTEM_ERROR", "系统错误")
    } else {
        ("isp.unknow-error", "系统繁忙")
    };
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
    let sys = sys_of(c);
    let mut st = sb.lock().await;
    let ctx = sb.ctx();
    let app = c.app_id.as_str();
    let r = match c.method.as_str() {
        "alipay.trade.precreate" => st.precreate(app, &biz, &sys, &ctx),
        "alipay.trade.create" => st.create(app, &biz, &sys, &ctx),
        "alipay.trade.pay" => st.barcode_pay(app, &biz, &sys, &ctx),
        "alipay.trade.query" => St::query(&st, app, &biz),
        "alipay.trade.refund" => st.refund(app, &biz, &ctx),
        "alipay.trade.fastpay.refund.query" => St::refund_query(&st, app, &biz),
        "alipay.trade.close" => st.close(app, &biz, &ctx),
        "alipay.trade.cancel" => st.cancel(app, &biz, &ctx),
        "alipay.data.dataservice.bill.downloadurl.query" => st.bill_url(app, &biz, &ctx),
        _ => return None,
    };
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
        return Some(Err(BizError::acq("ACQ.SYSTEM_ERROR", "系统错误")));
    }
    Some(r)
}

/// Page/wap pay (and app pay opened in a browser): record the order and
/// send the buyer to the cashier.
async fn page_order(sb: &Sandbox, c: &Checked) -> Response {
    let product = match c.method.as_str() {
        "alipay.trade.page.pay" => Product::Page,
        "alipay.trade.wap.pay" => Product::Wap,
        _ => Product::App,
    };
    let token = match place(sb, c, product).await {
        Ok(t) => t,
        Err(e) => return pages::error_page(e.code, e.sub_code, &e.sub_msg),
    };
    Redirect::to(&format!("/sandbox/cashier/{token}")).into_response()
}

/// Records a client-side order (page/wap/app), returning its cashier token.
pub(crate) async fn place(sb: &Sandbox, c: &Checked, product: Product) -> Result<String, BizError> {
    let biz = parse_biz(c)?;
    let sys = sys_of(c);
    let (out, terms) = St::order_terms(&biz, product, &sys)?;
    let mut st = sb.lock().await;
    let ctx = sb.ctx();
    let token = st.place_order(&c.app_id, out, terms, &ctx)?;
    if let Err(e) = sb.flush(&mut st).await {
        tracing::warn!(error = %e, "could not persist sandbox state");
        return Err(BizError::acq("ACQ.SYSTEM_ERROR", "系统错误"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intake_merges_decodes_once_and_applies_the_duplicate_policy() {
        let q = b"charset=utf-8&a=1&sign=x%2By";
        let b = "a=2&biz_content=%7B%22s%22%3A%22%E4%BD%A0+%2B%25%22%7D".as_bytes();
        let p = intake(q, b, Charset::Gbk, DuplicateParams::BodyWins).unwrap();
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.get("sign"), Some("x+y"));
        assert_eq!(p.get("biz_content"), Some("{\"s\":\"你 +%\"}"));
        let p = intake(q, b, Charset::Gbk, DuplicateParams::QueryWins).unwrap();
        assert_eq!(p.get("a"), Some("1"));
        let r = intake(q, b, Charset::Gbk, DuplicateParams::Reject).unwrap_err();
        assert_eq!(r.sub_code, "isv.invalid-parameter");
    }

    #[test]
    fn charset_comes_from_the_query_and_defaults_to_the_configured_one() {
        // "你" in GBK is C4 E3.
        let p = intake(b"s=%C4%E3", b"", Charset::Gbk, DuplicateParams::BodyWins).unwrap();
        assert_eq!(p.get("s"), Some("你"));
        let r = intake(b"s=%C4%E3", b"", Charset::Utf8, DuplicateParams::BodyWins).unwrap_err();
        assert_eq!(r.sub_code, "isv.invalid-charset");
        let r = intake(
            b"charset=latin-9",
            b"",
            Charset::Utf8,
            DuplicateParams::BodyWins,
        )
        .unwrap_err();
        assert_eq!(r.sub_code, "isv.invalid-charset");
    }
}
