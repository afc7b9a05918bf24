//! Configuration from the environment (12-factor), optionally backed by a
//! TOML file named by `ZHIFU_CONFIG` whose keys are the variable names in
//! lower case (`alipay_app_id = "…"`). The environment wins over the file.
//!
//! Every problem names the variable; no message ever contains a secret.
//!
//! This file holds the settings every entry point needs ([`Settings`],
//! [`Config`], the API key, the gateway and authorization pages); the
//! rest live by concern: `money` ([`MoneyPolicy`]), `webhooks`
//! ([`WebhookConfig`]), `metrics` ([`MetricsAccess`]), `limits`
//! ([`ReconcileOptions`], [`ListenerLimits`]), `signing` (public-key or
//! certificate mode) and `source` (where values come from).

use std::fmt;
use std::time::Duration;

use alipay::{AlipayPublicKey, AppPrivateKey, PRODUCTION_GATEWAY, SANDBOX_GATEWAY};

pub use self::signing::{CertificateSettings, SigningMode};

pub use self::source::{ConfigError, Source, check_base_url};
use self::source::{parse_bool, parse_num};
pub use crate::domain::MAX_EXPIRY_MINUTES;

mod limits;
mod metrics;
mod money;
mod signing;
mod source;
mod webhooks;

use self::limits::listener_limits;
pub use self::limits::{ListenerLimits, ReconcileOptions};
pub use self::metrics::MetricsAccess;
pub use self::money::{LatePaymentPolicy, MoneyPolicy, REFUND_LEASE};
pub use self::webhooks::{
    DEFAULT_MAX_ATTEMPTS, DELIVERY_TIMEOUT, MIN_SECRET_LEN, WebhookConfig, WebhookDelivery,
    WebhookSecret,
};

/// The merchant API key. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Shortest accepted key: a guessable key protects nothing.
    pub const MIN_LEN: usize = 16;

    /// Validates a key.
    ///
    /// # Errors
    /// When shorter than [`ApiKey::MIN_LEN`] or not printable ASCII.
    pub fn new(key: impl Into<String>) -> Result<Self, ConfigError> {
        let key = key.into();
        if key.len() < Self::MIN_LEN {
            return Err(ConfigError::new(
                "ZHIFU_API_KEY",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "ZHIFU_API_KEY",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(ApiKey(key))
    }

    /// A fresh random key (`zk_` + 32 hex digits).
    pub fn generate() -> Self {
        ApiKey(format!("zk_{}", uuid::Uuid::new_v4().simple()))
    }

    /// The key, for printing it once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a presented key.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// What the payment backend needs to talk to Alipay and to merchants.
#[derive(Debug)]
pub struct Settings {
    /// `ALIPAY_APP_ID`.
    pub app_id: String,
    /// `ALIPAY_APP_PRIVATE_KEY` (or `_FILE`).
    pub app_private_key: AppPrivateKey,
    /// `ALIPAY_PUBLIC_KEY` (or `_FILE`); in certificate mode the key of
    /// `ALIPAY_PUBLIC_CERT` (the serial numbers are in [`Config::signing`]).
    pub alipay_public_key: AlipayPublicKey,
    /// `ALIPAY_SELLER_ID`: checked on notifications when set.
    pub seller_id: Option<String>,
    /// `ALIPAY_GATEWAY`: `production`, `sandbox` or a URL.
    pub gateway: String,
    /// `ZHIFU_PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
    /// `ZHIFU_API_KEY`.
    pub api_key: ApiKey,
    /// `ZHIFU_ORDER_EXPIRY_MINUTES`: default payment deadline (default 30).
    pub default_expiry_minutes: i64,
    /// How money is handled when things go wrong (late payments, refund
    /// pacing, clock margins).
    pub money: MoneyPolicy,
}

impl Settings {
    /// `notify_url` sent with every order.
    pub fn notify_url(&self) -> String {
        format!("{}/alipay/notify", self.public_url)
    }

    /// Default `return_url` for page and wap pay.
    pub fn return_url(&self) -> String {
        format!("{}/alipay/return", self.public_url)
    }
}

/// Everything `zhifu serve` (and the function entry points) need.
#[derive(Debug)]
pub struct Config {
    /// The backend settings.
    pub settings: Settings,
    /// Public-key or certificate mode (`ALIPAY_PUBLIC_KEY`, or
    /// `ALIPAY_APP_CERT`, `ALIPAY_PUBLIC_CERT`, `ALIPAY_ROOT_CERT`).
    pub signing: SigningMode,
    /// `ZHIFU_DATABASE_URL`: `sqlite:…` or `postgres://…`.
    pub database_url: String,
    /// The listen port: `FC_CUSTOM_LISTEN_PORT`, else `FC_SERVER_PORT`, else
    /// `PORT`, else 9000 (see [`crate::platform`]); 0 picks a free port.
    pub port: u16,
    /// `ZHIFU_DB_MAX_CONNECTIONS` (default 4).
    pub db_max_connections: u32,
    /// `ZHIFU_DB_POOLER` (`none` or `transaction`, default `none`): what
    /// sits in front of PostgreSQL; `transaction` for PgBouncer in
    /// transaction mode and other transaction poolers (docs/storage.md).
    /// `?pooler=…` in the URL does the same and wins.
    pub db_pooler: zhifu_store::Pooler,
    /// `ZHIFU_DB_ACQUIRE_TIMEOUT_SECS` (default 5): how long a request waits
    /// for a database connection before answering 503.
    pub db_acquire_timeout: Duration,
    /// `ZHIFU_AUTO_MIGRATE` (default true): run migrations at start-up.
    pub auto_migrate: bool,
    /// `ZHIFU_WEBHOOK_URL` and friends, when webhooks are on.
    pub webhook: Option<WebhookConfig>,
    /// `ZHIFU_RECONCILE_MIN_AGE_SECS`, `ZHIFU_RECONCILE_LEASE_SECS`,
    /// `ZHIFU_RECONCILE_LIMIT`.
    pub reconcile: ReconcileOptions,
    /// `ZHIFU_RECONCILE_EVERY_SECS` (default 60; 0 = never): how often a
    /// long-running `zhifu serve` runs a reconcile pass itself, so pending
    /// refunds, closing orders and webhook retries move without an external
    /// scheduler. Function platforms schedule the pass instead.
    pub reconcile_every: Option<Duration>,
    /// `ZHIFU_HEADER_TIMEOUT_SECS`, `ZHIFU_BODY_TIMEOUT_SECS`,
    /// `ZHIFU_REQUEST_TIMEOUT_SECS`, `ZHIFU_IDLE_TIMEOUT_SECS`,
    /// `ZHIFU_MAX_CONNECTIONS`.
    pub listener: ListenerLimits,
    /// Who may read `GET /metrics` (`ZHIFU_METRICS_TOKEN`,
    /// `ZHIFU_METRICS_PUBLIC`).
    pub metrics: MetricsAccess,
    /// `ZHIFU_ALIPAY_AUTHORIZE_URL`: `production` (default), `sandbox` or a
    /// URL — the user-authorization page `GET /v1/oauth/authorize-url`
    /// sends buyers to (see [`resolve_authorize_url`]).
    pub oauth_authorize_url: String,
    /// `ZHIFU_AGREEMENT_SIGN_SCENE`: the `sign_scene` Alipay assigned to the
    /// merchant's periodic-deduction product (default
    /// [`DEFAULT_AGREEMENT_SIGN_SCENE`]).
    pub agreement_sign_scene: String,
}

/// The `sign_scene` subscriptions are signed under unless
/// `ZHIFU_AGREEMENT_SIGN_SCENE` says otherwise: the digital-media scene of
/// Alipay's periodic-deduction examples (docs/agreements.md §1).
pub const DEFAULT_AGREEMENT_SIGN_SCENE: &str = "INDUSTRY|DIGITAL_MEDIA";

/// Reads `ZHIFU_AGREEMENT_SIGN_SCENE`: `INDUSTRY|…`-style, ASCII letters,
/// digits, `_` and one `|`, not `DEFAULT|DEFAULT` (refused by Alipay when an
/// `external_agreement_no` is sent).
fn agreement_sign_scene(v: Option<&str>) -> Result<String, ConfigError> {
    let Some(v) = v else {
        return Ok(DEFAULT_AGREEMENT_SIGN_SCENE.to_owned());
    };
    let ok = v.len() <= 64
        && v.split('|').count() == 2
        && v.split('|')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        && v != "DEFAULT|DEFAULT";
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ConfigError::new(
            "ZHIFU_AGREEMENT_SIGN_SCENE",
            "must look like INDUSTRY|DIGITAL_MEDIA (two parts of letters, digits and _), not DEFAULT|DEFAULT",
        ))
    }
}

/// Resolves `ALIPAY_GATEWAY`.
pub fn resolve_gateway(v: Option<&str>) -> Result<String, ConfigError> {
    match v {
        None | Some("production") => Ok(PRODUCTION_GATEWAY.to_owned()),
        Some("sandbox") => Ok(SANDBOX_GATEWAY.to_owned()),
        Some(url) => {
            let base = check_base_url("ALIPAY_GATEWAY", url)?;
            Ok(base)
        }
    }
}

/// Resolves `ZHIFU_ALIPAY_AUTHORIZE_URL` like `ALIPAY_GATEWAY`: the
/// page where buyers authorize the app (`auth_base` gives their id for
/// in-app payments). The sandbox page is separate from the sandbox gateway
/// on Alipay's side too, so it is its own setting.
pub fn resolve_authorize_url(v: Option<&str>) -> Result<String, ConfigError> {
    match v {
        None | Some("production") => Ok(alipay::oauth::OAUTH_AUTHORIZE_URL.to_owned()),
        Some("sandbox") => Ok(alipay::oauth::SANDBOX_OAUTH_AUTHORIZE_URL.to_owned()),
        Some(url) => check_base_url("ZHIFU_ALIPAY_AUTHORIZE_URL", url),
    }
}

impl Settings {
    /// Reads the backend settings. In certificate mode this keeps only the
    /// key of Alipay's certificate: [`Settings::from_source_with_signing`]
    /// (what [`Config::from_source`] uses) also returns the serial numbers.
    ///
    /// # Errors
    /// The first [`ConfigError`], naming its variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        Self::from_source_with_signing(src).map(|(s, _)| s)
    }

    /// Reads the backend settings and the signing mode (public key, or
    /// `ALIPAY_APP_CERT`, `ALIPAY_PUBLIC_CERT` and `ALIPAY_ROOT_CERT`).
    ///
    /// # Errors
    /// The first [`ConfigError`], naming its variable: also a bad
    /// combination (a certificate without the others, a public key and a
    /// certificate, an app certificate for another key).
    pub fn from_source_with_signing(src: &Source) -> Result<(Self, SigningMode), ConfigError> {
        let app_id = src.required("ALIPAY_APP_ID")?;
        if app_id.len() > 32 || !app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(
                "ALIPAY_APP_ID",
                "expected the app id's digits, e.g. 2021000122671080",
            ));
        }
        let key_text = src.secret("ALIPAY_APP_PRIVATE_KEY")?.ok_or_else(|| {
            ConfigError::new(
                "ALIPAY_APP_PRIVATE_KEY",
                "must be set (or ALIPAY_APP_PRIVATE_KEY_FILE)",
            )
        })?;
        // The alipay crate's errors describe the key's shape, never its content.
        let app_private_key = AppPrivateKey::parse(&key_text)
            .map_err(|e| ConfigError::new("ALIPAY_APP_PRIVATE_KEY", e.to_string()))?;
        let (alipay_public_key, signing) = signing::read(src, &app_private_key)?;
        let seller_id = src.get("ALIPAY_SELLER_ID");
        if let Some(s) = &seller_id
            && !(s.len() == 16 && s.starts_with("2088") && s.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ConfigError::new(
                "ALIPAY_SELLER_ID",
                "expected 2088 followed by 12 digits",
            ));
        }
        let gateway = resolve_gateway(src.get("ALIPAY_GATEWAY").as_deref())?;
        let public_url = check_base_url("ZHIFU_PUBLIC_URL", &src.required("ZHIFU_PUBLIC_URL")?)?;
        let api_key = ApiKey::new(src.required("ZHIFU_API_KEY")?)?;
        let default_expiry_minutes = match src.get("ZHIFU_ORDER_EXPIRY_MINUTES") {
            Some(v) => parse_num("ZHIFU_ORDER_EXPIRY_MINUTES", &v, (1, MAX_EXPIRY_MINUTES))?,
            None => 30,
        };
        let settings = Settings {
            app_id,
            app_private_key,
            alipay_public_key,
            seller_id,
            gateway,
            public_url,
            api_key,
            default_expiry_minutes,
            money: MoneyPolicy::from_source(src)?,
        };
        Ok((settings, signing))
    }
}

impl Config {
    /// Reads the whole configuration.
    ///
    /// # Errors
    /// The first [`ConfigError`], naming its variable.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let (settings, signing) = Settings::from_source_with_signing(src)?;
        let database_url = database_url(src)?;
        let port = listen_port(src)?;
        let db_max_connections = match src.get("ZHIFU_DB_MAX_CONNECTIONS") {
            Some(v) => parse_num("ZHIFU_DB_MAX_CONNECTIONS", &v, (1u32, 1000))?,
            None => 4,
        };
        let db_pooler = match src.get("ZHIFU_DB_POOLER") {
            Some(v) => match zhifu_store::Pooler::parse(&v) {
                Some(zhifu_store::Pooler::Transaction)
                    if zhifu_store::Backend::from_url(&database_url).ok()
                        != Some(zhifu_store::Backend::Postgres) =>
                {
                    return Err(ConfigError::new(
                        "ZHIFU_DB_POOLER",
                        "`transaction` is for PostgreSQL only",
                    ));
                }
                Some(p) => p,
                None => {
                    return Err(ConfigError::new(
                        "ZHIFU_DB_POOLER",
                        "expected `none` or `transaction`",
                    ));
                }
            },
            None => zhifu_store::Pooler::None,
        };
        let db_acquire_timeout = match src.get("ZHIFU_DB_ACQUIRE_TIMEOUT_SECS") {
            Some(v) => {
                Duration::from_secs(parse_num("ZHIFU_DB_ACQUIRE_TIMEOUT_SECS", &v, (1u64, 300))?)
            }
            None => Duration::from_secs(5),
        };
        let auto_migrate = match src.get("ZHIFU_AUTO_MIGRATE") {
            Some(v) => parse_bool("ZHIFU_AUTO_MIGRATE", &v)?,
            None => true,
        };
        Ok(Config {
            settings,
            signing,
            database_url,
            port,
            db_max_connections,
            db_pooler,
            db_acquire_timeout,
            auto_migrate,
            webhook: WebhookConfig::from_source(src)?,
            reconcile: ReconcileOptions::from_source(src)?,
            reconcile_every: match src.get("ZHIFU_RECONCILE_EVERY_SECS") {
                Some(v) => match parse_num("ZHIFU_RECONCILE_EVERY_SECS", &v, (0u64, 86_400))? {
                    0 => None,
                    n => Some(Duration::from_secs(n)),
                },
                None => Some(Duration::from_secs(60)),
            },
            listener: listener_limits(src)?,
            metrics: MetricsAccess::from_source(src)?,
            oauth_authorize_url: resolve_authorize_url(
                src.get("ZHIFU_ALIPAY_AUTHORIZE_URL").as_deref(),
            )?,
            agreement_sign_scene: agreement_sign_scene(
                src.get("ZHIFU_AGREEMENT_SIGN_SCENE").as_deref(),
            )?,
        })
    }

    /// The pool settings.
    pub fn store_options(&self) -> zhifu_store::StoreOptions {
        zhifu_store::StoreOptions {
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
            pooler: self.db_pooler,
            ..Default::default()
        }
    }

    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// The first [`ConfigError`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_source(&Source::from_env()?)
    }
}

/// The listen port the platform gives: the first of
/// [`crate::platform::PORT_VARS`] that is set, else
/// [`crate::platform::DEFAULT_PORT`].
///
/// # Errors
/// A set variable that is not a port, named.
pub fn listen_port(src: &Source) -> Result<u16, ConfigError> {
    for var in crate::platform::PORT_VARS {
        if let Some(v) = src.get(var) {
            return parse_num(var, &v, (0u16, u16::MAX));
        }
    }
    Ok(crate::platform::DEFAULT_PORT)
}

/// `ZHIFU_DATABASE_URL`, checked.
///
/// # Errors
/// Unset or not a supported URL.
pub fn database_url(src: &Source) -> Result<String, ConfigError> {
    let url = src.required("ZHIFU_DATABASE_URL")?;
    if zhifu_store::Backend::from_url(&url).is_err() {
        return Err(ConfigError::new(
            "ZHIFU_DATABASE_URL",
            "expected sqlite:PATH, sqlite::memory:, postgres://… or mysql://…",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
