//! The sans-IO core: an [`Alipay`] configuration that turns typed requests
//! into signed parameter sets ([`SignedRequest`]) and raw gateway bytes into
//! verified, typed answers. No sockets, no clock of its own.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::aes::AesKey;
use crate::charset::Charset;
use crate::error::Result;
use crate::keys::{AppPrivateKey, SignType};
use crate::models::{ApiRequest, BizContent};
use crate::notify::NotifyVerifier;
use crate::response::{ResponseCheck, VerifiedResponse, verify_response};
use crate::sign::request_sign_content;
use crate::time::format_beijing;
use crate::verify::AlipayKeys;

/// Production v2 gateway.
pub const PRODUCTION_GATEWAY: &str = "https://openapi.alipay.com/gateway.do";
/// The current ("new", since 2023) sandbox gateway.
pub const SANDBOX_GATEWAY: &str = "https://openapi-sandbox.dl.alipaydev.com/gateway.do";

/// Certificate-mode serial numbers sent with every request (docs/protocol.md §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSns {
    /// `app_cert_sn`.
    pub app_cert_sn: String,
    /// `alipay_root_cert_sn`.
    pub alipay_root_cert_sn: String,
}

impl CertSns {
    /// Computes both SNs from the app's public-key certificate
    /// (`appCertPublicKey_<appid>.crt`) and Alipay's root bundle
    /// (`alipayRootCert.crt`), as docs/protocol.md §7.2–§7.3 describe.
    ///
    /// # Errors
    /// [`crate::Error::Certificate`].
    pub fn from_certs(app_cert_pem: &[u8], alipay_root_cert_pem: &[u8]) -> Result<Self> {
        Ok(CertSns {
            app_cert_sn: crate::cert::cert_sn(app_cert_pem)?,
            alipay_root_cert_sn: crate::cert::root_cert_sn(alipay_root_cert_pem)?,
        })
    }
}

/// A merchant's Alipay configuration: who signs, who is trusted, where to go.
#[derive(Clone)]
pub struct Alipay {
    inner: Arc<Inner>,
}

struct Inner {
    app_id: String,
    private_key: AppPrivateKey,
    keys: AlipayKeys,
    gateway: String,
    sign_type: SignType,
    cert_sns: Option<CertSns>,
    aes: Option<AesKey>,
}

impl fmt::Debug for Alipay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alipay")
            .field("app_id", &self.inner.app_id)
            .field("gateway", &self.inner.gateway)
            .field("sign_type", &self.inner.sign_type)
            .field("cert_mode", &self.inner.cert_sns.is_some())
            .field("aes", &self.inner.aes.is_some())
            .finish_non_exhaustive()
    }
}

/// Builder for [`Alipay`].
#[derive(Debug)]
pub struct AlipayBuilder {
    app_id: String,
    private_key: AppPrivateKey,
    keys: AlipayKeys,
    gateway: String,
    sign_type: SignType,
    cert_sns: Option<CertSns>,
    aes: Option<AesKey>,
}

impl AlipayBuilder {
    /// The gateway URL (default: production). Use [`SANDBOX_GATEWAY`] or a
    /// local emulator's `http://127.0.0.1:PORT/gateway.do`.
    pub fn gateway(mut self, url: impl Into<String>) -> Self {
        self.gateway = url.into();
        self
    }
    /// `RSA2` (default) or legacy `RSA`.
    pub fn sign_type(mut self, st: SignType) -> Self {
        self.sign_type = st;
        self
    }
    /// Certificate mode: the SNs sent with each request. Pair it with an
    /// [`AlipayKeys::Certificates`] store.
    pub fn cert_sns(mut self, sns: CertSns) -> Self {
        self.cert_sns = Some(sns);
        self
    }
    /// Content encryption key (`encrypt_type=AES`).
    pub fn aes_key(mut self, key: AesKey) -> Self {
        self.aes = Some(key);
        self
    }
    /// Finishes the configuration.
    pub fn build(self) -> Alipay {
        Alipay {
            inner: Arc::new(Inner {
                app_id: self.app_id,
                private_key: self.private_key,
                keys: self.keys,
                gateway: self.gateway,
                sign_type: self.sign_type,
                cert_sns: self.cert_sns,
                aes: self.aes,
            }),
        }
    }
}

/// Per-request system parameters beyond the common ones.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// `notify_url`: where this order's asynchronous notifications go.
    pub notify_url: Option<String>,
    /// `return_url`: where the buyer's browser lands (page/wap only).
    pub return_url: Option<String>,
    /// `app_auth_token`: acting for a merchant as an ISV.
    pub app_auth_token: Option<String>,
    /// Encrypt `biz_content` with the configured AES key.
    pub encrypt: bool,
    /// Any other top-level parameters (`prod_code`, `terminal_type`, …).
    pub extra: Vec<(String, String)>,
}

impl RequestOptions {
    /// No per-request parameters.
    pub fn new() -> Self {
        RequestOptions::default()
    }
    /// Sets `notify_url`.
    #[must_use]
    pub fn notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }
    /// Sets `return_url`.
    #[must_use]
    pub fn return_url(mut self, url: impl Into<String>) -> Self {
        self.return_url = Some(url.into());
        self
    }
    /// Sets `app_auth_token` (acting for a merchant as an ISV).
    #[must_use]
    pub fn app_auth_token(mut self, token: impl Into<String>) -> Self {
        self.app_auth_token = Some(token.into());
        self
    }
    /// Encrypts `biz_content` with the configured AES key.
    #[must_use]
    pub fn encrypt(mut self) -> Self {
        self.encrypt = true;
        self
    }
    /// Adds another top-level parameter (`prod_code`, `terminal_type`, …).
    #[must_use]
    pub fn extra_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }
}

impl Alipay {
    /// Starts a configuration for `app_id`, signing with `private_key` and
    /// trusting `alipay_keys` (Alipay's public key, or its certificates).
    pub fn builder(
        app_id: impl Into<String>,
        private_key: AppPrivateKey,
        alipay_keys: impl Into<AlipayKeys>,
    ) -> AlipayBuilder {
        AlipayBuilder {
            app_id: app_id.into(),
            private_key,
            keys: alipay_keys.into(),
            gateway: PRODUCTION_GATEWAY.into(),
            sign_type: SignType::Rsa2,
            cert_sns: None,
            aes: None,
        }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }
    /// The gateway URL.
    pub fn gateway(&self) -> &str {
        &self.inner.gateway
    }
    /// The configured sign type.
    pub fn sign_type(&self) -> SignType {
        self.inner.sign_type
    }
    /// Certificate-mode SNs, when configured.
    pub fn cert_sns(&self) -> Option<&CertSns> {
        self.inner.cert_sns.as_ref()
    }
    /// The OpenAPI v3 endpoint: the gateway URL without `/gateway.do`.
    pub fn v3_endpoint(&self) -> &str {
        self.inner.gateway.trim_end_matches("/gateway.do")
    }
    /// Alipay's keys.
    pub fn alipay_keys(&self) -> &AlipayKeys {
        &self.inner.keys
    }
    /// The app private key (for v3 signing).
    pub fn private_key(&self) -> &AppPrivateKey {
        &self.inner.private_key
    }
    /// A verifier for notifications and returns.
    pub fn notify_verifier(&self) -> NotifyVerifier {
        NotifyVerifier::new(self.inner.keys.clone())
    }

    /// Validates, serialises and signs a request at time `now`.
    ///
    /// # Errors
    /// [`crate::Error::Field`] / [`crate::Error::Amount`] from validation
    /// (nothing is signed then), [`crate::Error::Json`], [`crate::Error::Aes`],
    /// [`crate::Error::Crypto`].
    pub fn sign_request<R: BizContent + ?Sized>(
        &self,
        req: &R,
        opts: &RequestOptions,
        now: OffsetDateTime,
    ) -> Result<SignedRequest> {
        req.validate()?;
        let mut biz = serde_json::to_string(req).map_err(|source| crate::Error::Json {
            context: "biz_content",
            source,
        })?;
        let i = &self.inner;
        let mut params: Vec<(String, String)> = Vec::with_capacity(16);
        let mut push = |k: &str, v: &str| {
            if !v.trim().is_empty() {
                params.push((k.to_owned(), v.to_owned()));
            }
        };
        push("app_id", &i.app_id);
        push("method", req.method());
        push("format", "JSON");
        push("charset", Charset::Utf8.as_str());
        push("sign_type", i.sign_type.as_str());
        push("timestamp", &format_beijing(now));
        push("version", "1.0");
        if let Some(u) = &opts.notify_url {
            push("notify_url", u);
        }
        if let Some(u) = &opts.return_url {
            push("return_url", u);
        }
        if let Some(t) = &opts.app_auth_token {
            push("app_auth_token", t);
        }
        if let Some(sns) = &i.cert_sns {
            push("app_cert_sn", &sns.app_cert_sn);
            push("alipay_root_cert_sn", &sns.alipay_root_cert_sn);
        }
        // Only `biz_content` is ever encrypted; a call without it has nothing to hide.
        if opts.encrypt && req.has_biz_content() {
            let key = i.aes.as_ref().ok_or(crate::Error::Aes(
                "encryption requested but no AES key is configured",
            ))?;
            biz = key.encrypt(&biz);
            push("encrypt_type", "AES");
        }
        for (k, v) in &opts.extra {
            push(k, v);
        }
        for (k, v) in req.text_params() {
            push(k, &v);
        }
        if req.has_biz_content() {
            push("biz_content", &biz);
        }
        SignedRequest::sign(params, &i.private_key, i.sign_type)
    }

    /// Verifies and decodes a raw response body to `R`'s typed answer.
    ///
    /// # Errors
    /// See [`verify_response`].
    pub fn decode_response<R: ApiRequest + ?Sized>(
        &self,
        req: &R,
        raw: &[u8],
    ) -> Result<R::Response> {
        Ok(self.verify_response::<R::Response>(req.method(), raw)?.body)
    }

    /// Verifies a raw response of `method` and decodes it to any type.
    ///
    /// # Errors
    /// See [`verify_response`].
    pub fn verify_response<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        raw: &[u8],
    ) -> Result<VerifiedResponse<T>> {
        verify_response(
            raw,
            &ResponseCheck {
                method,
                keys: &self.inner.keys,
                sign_type: self.inner.sign_type,
                charset: Charset::Utf8,
                aes: self.inner.aes.as_ref(),
            },
        )
    }
}

/// System parameters the Java SDK puts in the URL query (docs/protocol.md §2.3); everything
/// else travels in the form body.
const QUERY_PARAMS: &[&str] = &[
    "method",
    "version",
    "app_id",
    "sign_type",
    "terminal_type",
    "terminal_info",
    "notify_url",
    "return_url",
    "charset",
    "target_app_id",
    "encrypt_type",
    "app_cert_sn",
    "alipay_root_cert_sn",
    "timestamp",
    "sign",
    "format",
    "auth_token",
    "alipay_sdk",
    "prod_code",
];

/// A complete, signed parameter set, ready for any of the docs/protocol.md §2.4 outputs or
/// for an HTTP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    params: Vec<(String, String)>,
}

impl SignedRequest {
    /// Signs an arbitrary parameter set (must include `sign_type` and the
    /// other system params). Used by [`Alipay::sign_request`] and by tools
    /// that sign what they are given. Empty values are dropped: they are not
    /// signed (docs/protocol.md §3.1), so they must not be sent either.
    ///
    /// # Errors
    /// [`crate::Error::Crypto`].
    pub fn sign(
        mut params: Vec<(String, String)>,
        key: &AppPrivateKey,
        sign_type: SignType,
    ) -> Result<Self> {
        params.retain(|(k, v)| k != "sign" && !v.trim().is_empty());
        let content = request_sign_content(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let sign = key.sign(sign_type, content.as_bytes())?;
        params.push(("sign".into(), sign));
        Ok(SignedRequest { params })
    }

    /// The value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All parameters, `sign` last.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The exact text that was signed.
    pub fn sign_content(&self) -> String {
        request_sign_content(self.params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The method.
    pub fn method(&self) -> &str {
        self.get("method").unwrap_or_default()
    }

    /// The Java SDK's split: system parameters URL-encoded for the query
    /// string, the rest (`biz_content`, `app_auth_token`, …) for the form body.
    pub fn query_and_body(&self) -> (String, String) {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let mut b = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            if QUERY_PARAMS.contains(&k.as_str()) {
                q.append_pair(k, v);
            } else {
                b.append_pair(k, v);
            }
        }
        (q.finish(), b.finish())
    }

    /// Every parameter, `sign` last, form-URL-encoded: the query of
    /// [`to_get_url`](SignedRequest::to_get_url) without the gateway.
    pub fn to_query_string(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            q.append_pair(k, v);
        }
        q.finish()
    }

    /// `GET` form of page/wap pay: the gateway URL with every parameter in
    /// the query (charset included).
    pub fn to_get_url(&self, gateway: &str) -> String {
        format!(
            "{gateway}{}{}",
            if gateway.contains('?') { '&' } else { '?' },
            self.to_query_string()
        )
    }

    /// `POST` form of page/wap pay: an auto-submitting HTML form whose action
    /// carries the system parameters and whose hidden inputs carry the rest.
    pub fn to_post_form(&self, gateway: &str) -> String {
        let (query, _) = self.query_and_body();
        let action = format!(
            "{gateway}{}{query}",
            if gateway.contains('?') { '&' } else { '?' }
        );
        let mut html = format!(
            "<form id=\"alipaysubmit\" name=\"alipaysubmit\" action=\"{}\" method=\"POST\">",
            html_escape(&action)
        );
        for (k, v) in &self.params {
            if !QUERY_PARAMS.contains(&k.as_str()) {
                html.push_str(&format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    html_escape(k),
                    html_escape(v)
                ));
            }
        }
        html.push_str(
            "<input type=\"submit\" value=\"Pay with Alipay\" style=\"display:none\"></form>",
        );
        html.push_str("<script>document.forms['alipaysubmit'].submit();</script>");
        html
    }

    /// The `sdkExecute` order string for the Alipay app SDK / `my.tradePay`:
    /// every signed parameter, sorted, `key=urlencode(value)` joined by `&`.
    pub fn to_order_string(&self) -> String {
        let mut sorted: Vec<&(String, String)> = self.params.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in sorted {
            q.append_pair(k, v);
        }
        q.finish()
    }
}

/// Escapes text for an HTML attribute value or element content.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
