//! The sandbox test kit (feature `testing`): what every crate's tests use
//! to get a real sandbox with a registered app and a ready client.
//!
//! - [`spawn_auto`], [`spawn_explicit`], [`spawn_with`]: a sandbox served on
//!   its own `127.0.0.1:0` port.
//! - [`mount_at`]: a sandbox whose `public_url` is a base URL the test
//!   serves itself; merge [`TestSandbox::router`] into your router (the
//!   backend and the sandbox on one port, as `zhifu dev` runs them).
//! - [`register_app`] / [`TestSandbox::register`]: more apps.
//! - [`TestSandbox::requests`]: the gateway calls the sandbox answered
//!   (its request log), to count and inspect what a client sent.
//! - [`app_key`], [`alipay_key`], [`alipay_signer`]: RSA keys generated once
//!   per test process (generation is slow) and parsed fresh for each caller;
//!   [`alipay_signer`] also serves tests that sign "Alipay" notifications
//!   with no sandbox at all.
//! - [`init_logs`]: the test's tracing output, when `TEST_LOG` is set.
//!
//! It is behind a feature so that normal builds (the CLI, the backend)
//! never compile it; crates enable it from their `[dev-dependencies]`.
//! Functions panic on failure, as test setup does.
//!
//! ```no_run
//! # async fn demo() {
//! use zhifu_sandbox::testing;
//! let t = testing::spawn_explicit().await;
//! // t.client / t.alipay talk to t.gateway as t.app_id; t.sandbox drives it.
//! t.sandbox.pay(None, "ORDER_1").await.ok();
//! # }
//! ```

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use alipay::testing::AlipaySigner;
use alipay::{
    Alipay, AlipayClient, AlipayPublicKey, AppPrivateKey, ClientConfig, NotifyVerifier,
    TradeNotification,
};
use axum::Router;

use crate::config::{SandboxConfig, SandboxMode};
use crate::requests::{RequestFilter, RequestRecord};
use crate::sandbox::Sandbox;

/// Installs a tracing subscriber that writes to the test output, once per
/// process, and only when `TEST_LOG` is set: to a filter such as
/// `info,sqlx=warn`, or to `1` for `debug`.
pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Some(v) = std::env::var_os("TEST_LOG") else {
            return;
        };
        let v = v.to_string_lossy();
        let filter = if v.is_empty() || v == "1" {
            "debug".to_owned()
        } else {
            v.into_owned()
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

fn shared_key(cell: &'static OnceLock<String>) -> AppPrivateKey {
    let text = cell.get_or_init(|| {
        AppPrivateKey::generate()
            .and_then(|k| k.to_pkcs8_base64())
            .expect("an RSA key can be generated and encoded")
    });
    AppPrivateKey::parse(text).expect("a key this kit generated parses")
}

/// The shared app key (one per test process, parsed fresh per call).
pub fn app_key() -> AppPrivateKey {
    static K: OnceLock<String> = OnceLock::new();
    shared_key(&K)
}

/// The shared "Alipay" key that [`auto_config`] and [`explicit_config`]
/// give sandboxes (one per test process, parsed fresh per call).
pub fn alipay_key() -> AppPrivateKey {
    static K: OnceLock<String> = OnceLock::new();
    shared_key(&K)
}

/// A signer over [`alipay_key`]: signs notifications, returns and
/// responses exactly as a kit sandbox does.
pub fn alipay_signer() -> AlipaySigner {
    AlipaySigner::new(alipay_key())
}

/// Auto mode, retry intervals × 0.001 (240 ms, 600 ms, …), the shared
/// Alipay key. `public_url` is set by [`spawn_with`] / [`mount_at`].
pub fn auto_config() -> SandboxConfig {
    SandboxConfig {
        time_scale: 0.001,
        mode: SandboxMode::Auto,
        alipay_private_key: Some(alipay_key()),
        ..Default::default()
    }
}

/// Explicit mode (the clock moves only with [`Sandbox::advance`]), the
/// shared Alipay key.
pub fn explicit_config() -> SandboxConfig {
    SandboxConfig {
        mode: SandboxMode::Explicit,
        alipay_private_key: Some(alipay_key()),
        ..Default::default()
    }
}

/// An app registered with a sandbox: what a merchant configures, and a
/// configured SDK.
#[derive(Debug, Clone)]
pub struct TestApp {
    /// The app id requests are signed as.
    pub app_id: String,
    /// The merchant's `seller_id`, as in notifications.
    pub seller_id: String,
    /// The sandbox's Alipay public key.
    pub alipay_public_key: AlipayPublicKey,
    /// `{public_url}/gateway.do`.
    pub gateway: String,
    /// The SDK core for this app and gateway.
    pub alipay: Alipay,
    /// The async client over [`TestApp::alipay`], without retries (a test
    /// sees the first answer).
    pub client: AlipayClient,
    key: Arc<AppPrivateKey>,
}

impl TestApp {
    /// The app's private key (a fresh copy, e.g. for a backend's settings).
    pub fn app_key(&self) -> AppPrivateKey {
        self.key
            .to_pkcs8_base64()
            .and_then(|text| AppPrivateKey::parse(&text))
            .expect("the app key round-trips through PKCS#8")
    }

    /// Verifies notifications and returns with the sandbox's Alipay key.
    pub fn verifier(&self) -> NotifyVerifier {
        self.alipay.notify_verifier()
    }

    /// Verifies and types a notification body; panics if either fails.
    pub fn notification(&self, body: &str) -> TradeNotification {
        let v = self
            .verifier()
            .verify_body(body.as_bytes())
            .expect("notification verifies");
        TradeNotification::from_verified(&v).expect("notification is complete")
    }
}

/// Registers an app with a generated app id: `app_key` is its key, or the
/// shared [`app_key`] when `None`.
pub async fn register_app(sandbox: &Sandbox, app_key: Option<AppPrivateKey>) -> TestApp {
    let key = app_key.unwrap_or_else(self::app_key);
    let reg = sandbox
        .register_app(None, key.public_key())
        .await
        .expect("the sandbox registers an app");
    let gateway = format!("{}/gateway.do", sandbox.config().public_url);
    let key = Arc::new(key);
    let alipay = Alipay::builder(
        reg.app_id.clone(),
        AppPrivateKey::parse(&key.to_pkcs8_base64().expect("the app key encodes"))
            .expect("the app key parses"),
        reg.alipay_public_key.clone(),
    )
    .gateway(gateway.clone())
    .build();
    let client = AlipayClient::new(alipay.clone()).with_config(ClientConfig {
        max_attempts: 1,
        ..Default::default()
    });
    TestApp {
        app_id: reg.app_id,
        seller_id: reg.seller_id,
        alipay_public_key: reg.alipay_public_key,
        gateway,
        alipay,
        client,
        key,
    }
}

/// A started sandbox with one registered app (its fields are reachable
/// directly, through `Deref`).
#[derive(Debug)]
pub struct TestSandbox {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// Its `public_url` (`http://127.0.0.1:PORT` when the kit serves it).
    pub base: String,
    /// The app registered at start (with the shared [`app_key`]).
    pub app: TestApp,
    /// A plain HTTP client that does not follow redirects.
    pub http: reqwest::Client,
}

impl Deref for TestSandbox {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl TestSandbox {
    /// The sandbox's routes, to merge into the router that serves
    /// [`TestSandbox::base`] (see [`mount_at`]).
    pub fn router(&self) -> Router {
        self.sandbox.router()
    }

    /// Registers another app (see [`register_app`]).
    pub async fn register(&self, app_key: Option<AppPrivateKey>) -> TestApp {
        register_app(&self.sandbox, app_key).await
    }

    /// The gateway calls the sandbox answered, oldest first, optionally
    /// only those of `method` and/or naming `out_trade_no` (exact matches)
    /// — what `GET /sandbox/api/requests` lists, read in process.
    pub fn requests(&self, method: Option<&str>, out_trade_no: Option<&str>) -> Vec<RequestRecord> {
        self.sandbox
            .requests(&RequestFilter::new(method, out_trade_no))
    }
}

async fn start(base: String, mut config: SandboxConfig) -> TestSandbox {
    init_logs();
    config.public_url = base.clone();
    let sandbox = Sandbox::start(config).await.expect("the sandbox starts");
    let app = register_app(&sandbox, None).await;
    TestSandbox {
        sandbox,
        base,
        app,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client builds"),
    }
}

/// A sandbox with `config` (its `public_url` replaced) served on a fresh
/// `127.0.0.1:0` port until the test's runtime ends, with one app.
pub async fn spawn_with(config: SandboxConfig) -> TestSandbox {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port binds");
    let base = format!(
        "http://{}",
        listener.local_addr().expect("a bound port has an address")
    );
    let t = start(base, config).await;
    let router = t.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    t
}

/// [`spawn_with`] [`auto_config`]: real time, fast retries.
pub async fn spawn_auto() -> TestSandbox {
    spawn_with(auto_config()).await
}

/// [`spawn_with`] [`explicit_config`]: the clock moves when the test says.
pub async fn spawn_explicit() -> TestSandbox {
    spawn_with(explicit_config()).await
}

/// A sandbox with `config` whose `public_url` is `base` (no trailing
/// slash), **not** served: the test merges [`TestSandbox::router`] into the
/// router it serves at `base`.
pub async fn mount_at(base: &str, config: SandboxConfig) -> TestSandbox {
    start(base.to_owned(), config).await
}
