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

    async fn execute_once<R: ApiRequest + ?Sized>(
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
