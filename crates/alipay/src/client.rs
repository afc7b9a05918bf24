//! The async HTTP client (feature `client`): sends what the sans-IO core
//! signs and hands every answer back to it for verification.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::models::ApiRequest;
use crate::protocol::{Alipay, RequestOptions};
use crate::time::{Clock, SystemClock};

/// Timeouts and the retry policy.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Attempts for retry-safe requests whose outcome is unknown (≥ 1).
    pub max_attempts: u32,
    /// First back-off; doubles per attempt.
    pub backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// Calls the v2 gateway. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlipayClient {
    core: Alipay,
    config: ClientConfig,
    clock: Arc<dyn Clock>,
    // Building a TLS client loads the system roots (~6 ms): done on first
    // use, not on a serverless cold start that may never call Alipay.
    http: Arc<OnceLock<reqwest::Client>>,
}

impl AlipayClient {
    /// A client for this configuration with default timeouts and the system clock.
    pub fn new(core: Alipay) -> Self {
        AlipayClient {
            core,
            config: ClientConfig::default(),
            clock: Arc::new(SystemClock),
            http: Arc::new(OnceLock::new()),
        }
    }

    /// Replaces timeouts and retry policy.
    pub fn with_config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self.http = Arc::new(OnceLock::new());
        self
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses a caller-built HTTP client.
    pub fn with_http(self, http: reqwest::Client) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(http);
        AlipayClient {
            http: Arc::new(cell),
            ..self
        }
    }

    /// The sans-IO core.
    pub fn core(&self) -> &Alipay {
        &self.core
    }

    fn http(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let c = reqwest::Client::builder()
            .timeout(self.config.timeout)
            .connect_timeout(self.config.connect_timeout)
            .build()
            .map_err(Error::Http)?;
        Ok(self.http.get_or_init(|| c))
    }

    /// Signs, sends and verifies one call. Retry-safe requests
    /// ([`ApiRequest::retry_safe`]) are repeated while the outcome is unknown.
    ///
    /// # Errors
    /// Everything [`Alipay::sign_request`] and [`Alipay::decode_response`]
    /// return, plus [`Error::Http`] and [`Error::HttpStatus`].
    pub async fn execute<R: ApiRequest + ?Sized>(
        &self,
        req: &R,
        opts: &RequestOptions,
    ) -> Result<R::Response> {
        let attempts = if req.retry_safe() {
            self.config.max_attempts.max(1)
        } else {
            1
        };
        let mut backoff = self.config.backoff;
        let mut attempt = 1;
        loop {
            let result = self.execute_once(req, opts).await;
            match result {
                Err(e) if attempt < attempts && e.is_unknown_outcome() => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One OpenAPI v3 call (docs/protocol.md §9): signs the `Authorization` header over the
    /// exact body sent, and verifies the answer's signature headers before
    /// decoding. `path_and_query` is e.g. `/v3/alipay/trade/query`.
    ///
    /// # Errors
    /// [`Error::MissingSignature`] / [`Error::BadSignature`] for a 2xx
    /// answer that does not verify; [`Error::Gateway`] (unverified) for a
    /// 4xx/5xx error body; [`Error::Http`], [`Error::Json`].
    pub async fn execute_v3(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<&serde_json::Value>,
        app_auth_token: Option<&str>,
    ) -> Result<serde_json::Value> {
        use aws_lc_rs::rand::SecureRandom;
        let body_text = match body {
            Some(b) => serde_json::to_string(b).map_err(|source| Error::Json {
                context: "v3 request body",
                source,
            })?,
            None => String::new(),
        };
        let mut nonce_bytes = [0u8; 16];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut nonce_bytes)
            .map_err(|_| Error::Crypto)?;
        let nonce: String = nonce_bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now_ms = (self.clock.now().unix_timestamp_nanos() / 1_000_000) as u64;
        let auth = crate::v3::V3Auth {
            app_id: self.core.app_id(),
            app_cert_sn: self.core.cert_sns().map(|s| s.app_cert_sn.as_str()),
            nonce: &nonce,
            timestamp_ms: now_ms,
        };
        let req = crate::v3::V3Request {
            http_method: method.as_str(),
            path_and_query,
            body: &body_text,
            app_auth_token,
        };
        let authorization = crate::v3::authorization(self.core.private_key(), &auth, &req)?;
        let mut builder = self
            .http()?
            .request(
                method,
                format!("{}{path_and_query}", self.core.v3_endpoint()),
            )
            .header("authorization", authorization)
            .header("alipay-request-id", &nonce)
            .header("accept", "application/json");
        if !body_text.is_empty() {
            builder = builder
                .header("content-type", "application/json")
                .body(body_text);
        }
        if let Some(t) = app_auth_token {
            builder = builder.header("alipay-app-auth-token", t);
        }
        if let Some(sns) = self.core.cert_sns() {
            builder = builder.header("alipay-root-cert-sn", &sns.alipay_root_cert_sn);
        }
        let resp = builder.send().await.map_err(Error::Http)?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (ts, nonce_h, sig, sn) = (
            header("alipay-timestamp"),
            header("alipay-nonce"),
            header("alipay-signature"),
            header("alipay-sn"),
        );
        let bytes = resp.bytes().await.map_err(Error::Http)?;
        let json = |b: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(b).map_err(|source| Error::Json {
                context: "v3 response body",
                source,
            })
        };
        if status.is_success() {
            let headers = crate::v3::V3ResponseHeaders {
                timestamp: ts.as_deref().unwrap_or_default(),
                nonce: nonce_h.as_deref().unwrap_or_default(),
                signature: sig.as_deref().unwrap_or_default(),
                sn: sn.as_deref(),
            };
            crate::v3::verify_response(self.core.alipay_keys(), &headers, &bytes)?;
            return json(&bytes);
        }
        // Whether Alipay signs v3 error answers is unconfirmed (docs/protocol.md §12): they
        // are reported, never trusted as business results.
        let err = json(&bytes).unwrap_or(serde_json::Value::Null);
        Err(Error::Gateway(Box::new(crate::error::GatewayError {
            code: err["code"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| status.as_u16().to_string()),
            msg: err["message"].as_str().unwrap_or_default().to_owned(),
            sub_code: None,
            sub_msg: None,
            verified: false,
            node: String::from_utf8_lossy(&bytes).into_owned(),
        })))
    }

    /// Signs, sends and verifies one call, once: no retry even for a
    /// retry-safe request. For callers that pace their own retries — Alipay
    /// asks for refunds of one trade to be spaced apart (docs/protocol.md
    /// §5.2), which back-to-back retries would break.
    ///
    /// # Errors
    /// As [`AlipayClient::execute`].
    pub async fn execute_once<R: ApiRequest + ?Sized>(
        &self,
        req: &R,
        opts: &RequestOptions,
    ) -> Result<R::Response> {
        let signed = self.core.sign_request(req, opts, self.clock.now())?;
        let (query, body) = signed.query_and_body();
        let gateway = self.core.gateway();
        let url = format!(
            "{gateway}{}{query}",
            if gateway.contains('?') { '&' } else { '?' }
        );
        let resp = self
            .http()?
            .post(url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .map_err(Error::Http)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::HttpStatus(status.as_u16()));
        }
        let bytes = resp.bytes().await.map_err(Error::Http)?;
        self.core.decode_response(req, &bytes)
    }
}
