//! Intake of a gateway request (docs/protocol.md §2) and the checks before any business
//! logic (docs/protocol.md §3.2, §4.3): parameters merged from the query and the body and
//! decoded once in the request's charset, the common parameters in the
//! order the real gateway reports them, the app's signature, and AES
//! content decryption. The page-pay paths and the app-pay stand-in share it.

use alipay::{AlipayPublicKey, Charset, SignType};

use crate::config::DuplicateParams;
use crate::sandbox::Sandbox;

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

pub(crate) fn invalid(
    sub_code: &'static str,
    sub_msg: impl Into<String>,
    sign: Option<SignType>,
) -> Refusal {
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
fn raw_pairs(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
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

/// The SDK's decoding: the signature is checked over the text encoded
/// again, so only text that encodes back to what was received is read.
fn decode(charset: Charset, b: &[u8]) -> Option<String> {
    charset.decode(b)
}

/// Intake of docs/protocol.md §2.1/§2.3: `charset` from the query (else the configured
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

/// [`intake`] for the fuzz targets (`fuzz/`): the merged, once-decoded
/// pairs, or the refusal's `sub_code`.
#[doc(hidden)]
pub fn fuzz_intake(
    query: &[u8],
    body: &[u8],
    default_charset: Charset,
    dup: DuplicateParams,
) -> Result<Vec<(String, String)>, &'static str> {
    intake(query, body, default_charset, dup)
        .map(|p| p.pairs)
        .map_err(|r| r.sub_code)
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
    /// `alipay.system.oauth.token`'s top-level parameters.
    pub oauth: crate::api::oauth::TokenParams,
}

/// The common-parameter checks and signature verification of docs/protocol.md §2.2/§3.2, in
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
        // The gateway cannot tell who is asking: nothing to sign for (docs/protocol.md §4.1).
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
    // Certificate mode: the app certificate named by `app_cert_sn` holds
    // the key that checks the signature, so it is looked up first; then the
    // root bundle's SN (an inferred order: docs/protocol.md, sandbox section).
    let cert_key = match &sb.inner.certs {
        None => None,
        Some(book) => {
            let key = p
                .get("app_cert_sn")
                .and_then(|sn| book.app_key(app_id, sn))
                .ok_or_else(|| invalid("isv.app-cert-not-exist", "应用公钥证书不存在", signed))?;
            if p.get("alipay_root_cert_sn") != Some(book.root_sn()) {
                return Err(invalid(
                    "isv.invalid-alipay-root-cert-sn",
                    "无效支付宝根证书序列号",
                    signed,
                ));
            }
            Some(key)
        }
    };
    let key = match cert_key {
        Some(k) => Ok(k),
        None => AlipayPublicKey::parse(&app_key),
    };
    let verified = key
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
            // encrypt-then-sign (docs/protocol.md §8): the signature covered the ciphertext.
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
        oauth: crate::api::oauth::TokenParams {
            grant_type: p.get("grant_type").map(str::to_owned),
            code: p.get("code").map(str::to_owned),
            refresh_token: p.get("refresh_token").map(str::to_owned),
        },
    })
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
