//! Configuration from the environment (12-factor), optionally backed by a
//! TOML file named by `ZHIFU_CONFIG` whose keys are the variable names in
//! lower case (`alipay_app_id = "…"`). The environment wins over the file.
//!
//! Every problem names the variable; no message ever contains a secret.

use std::fmt;
use std::time::{Duration, Instant};

use alipay::{AlipayPublicKey, AppPrivateKey, PRODUCTION_GATEWAY, SANDBOX_GATEWAY};

pub use self::signing::{CertificateSettings, SigningMode};

pub use self::source::{ConfigError, Source, check_base_url};
use self::source::{parse_bool, parse_num};
pub use crate::domain::MAX_EXPIRY_MINUTES;

mod signing;
mod source;

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

/// What to do with a payment that arrives for an order we had closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatePaymentPolicy {
    /// Refund it in full, automatically (default).
    #[default]
    Refund,
    /// Keep it: the order is paid, flagged `paid_after_close`.
    Keep,
}

/// The money path's rules that a merchant may tune.
#[derive(Debug, Clone)]
pub struct MoneyPolicy {
    /// `ZHIFU_PAID_AFTER_CLOSE`: `refund` (default) or `keep`.
    pub late_payment: LatePaymentPolicy,
    /// `ZHIFU_REFUND_SPACING_MS` (default 3000): least time between the
    /// starts of two refund calls for one trade (Alipay asks for ≥ 3 s).
    pub refund_spacing: Duration,
    /// `ZHIFU_REFUND_LEASE_SECS` (default 45): how long whoever sends a
    /// refund holds it (no one else sends it meanwhile). Keep it longer
    /// than a refund call plus its refund query (two gateway timeouts).
    pub refund_lease: Duration,
    /// `ZHIFU_CLOSE_MARGIN_SECS` (default 120): how long after an order's
    /// `time_expire` its payment parameters are still treated as live, for
    /// the difference between our clock and Alipay's.
    pub close_margin: Duration,
    /// `ZHIFU_REFUSED_RECORDS_PER_MINUTE` (default 30): how many refused
    /// unauthenticated messages (bad signature, unparseable) one instance
    /// records per minute and reason; the rest are only counted.
    pub refused_records_per_minute: u32,
    /// `ZHIFU_SETTLED_NOTIFICATIONS` (default 8192; 0 turns it off): how
    /// many notifications one instance remembers having answered `success`
    /// for (32-byte digests, about 1 MB at most), so that their replays
    /// are answered after verification without touching the database.
    pub settled_notifications: usize,
}

impl Default for MoneyPolicy {
    fn default() -> Self {
        MoneyPolicy {
            late_payment: LatePaymentPolicy::Refund,
            refund_spacing: Duration::from_millis(3_000),
            refund_lease: REFUND_LEASE,
            close_margin: Duration::from_secs(120),
            refused_records_per_minute: 30,
            settled_notifications: 8192,
        }
    }
}

/// A refund call and its refund query take at most two gateway timeouts
/// (15 s each); the lease outlasts both.
pub const REFUND_LEASE: Duration = Duration::from_secs(45);

impl MoneyPolicy {
    /// Reads `ZHIFU_PAID_AFTER_CLOSE`, `ZHIFU_REFUND_SPACING_MS`,
    /// `ZHIFU_REFUND_LEASE_SECS`, `ZHIFU_CLOSE_MARGIN_SECS`,
    /// `ZHIFU_REFUSED_RECORDS_PER_MINUTE`, `ZHIFU_SETTLED_NOTIFICATIONS`.
    ///
    /// # Errors
    /// A value out of range or not one of the names.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let mut p = MoneyPolicy::default();
        if let Some(v) = src.get("ZHIFU_PAID_AFTER_CLOSE") {
            p.late_payment = match v.trim().to_ascii_lowercase().as_str() {
                "refund" => LatePaymentPolicy::Refund,
                "keep" => LatePaymentPolicy::Keep,
                _ => {
                    return Err(ConfigError::new(
                        "ZHIFU_PAID_AFTER_CLOSE",
                        "expected `refund` or `keep`",
                    ));
                }
            };
        }
        if let Some(v) = src.get("ZHIFU_REFUND_SPACING_MS") {
            p.refund_spacing =
                Duration::from_millis(parse_num("ZHIFU_REFUND_SPACING_MS", &v, (0u64, 60_000))?);
        }
        if let Some(v) = src.get("ZHIFU_REFUND_LEASE_SECS") {
            p.refund_lease =
                Duration::from_secs(parse_num("ZHIFU_REFUND_LEASE_SECS", &v, (1u64, 3_600))?);
        }
        if let Some(v) = src.get("ZHIFU_REFUSED_RECORDS_PER_MINUTE") {
            p.refused_records_per_minute =
                parse_num("ZHIFU_REFUSED_RECORDS_PER_MINUTE", &v, (0u32, 100_000))?;
        }
        if let Some(v) = src.get("ZHIFU_SETTLED_NOTIFICATIONS") {
            p.settled_notifications =
                parse_num("ZHIFU_SETTLED_NOTIFICATIONS", &v, (0usize, 1_000_000))?;
        }
        if let Some(v) = src.get("ZHIFU_CLOSE_MARGIN_SECS") {
            p.close_margin =
                Duration::from_secs(parse_num("ZHIFU_CLOSE_MARGIN_SECS", &v, (0u64, 3_600))?);
        }
        Ok(p)
    }
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

/// Who may read `GET /metrics`. Its counters are business figures (orders
/// by status, payments per minute), so on a server reachable from the
/// internet they are not public unless asked for.
#[derive(Clone, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone (`zhifu dev`, or `ZHIFU_METRICS_PUBLIC=true`).
    Public,
    /// Only requests with `Authorization: Bearer <token>`
    /// (`ZHIFU_METRICS_TOKEN`, ≥ 16 characters).
    Token(String),
    /// Nobody: `/metrics` answers 404 (the default of `zhifu serve` and the
    /// functions when no token is set).
    Off,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricsAccess::Public => "Public",
            MetricsAccess::Token(_) => "Token(<redacted>)",
            MetricsAccess::Off => "Off",
        })
    }
}

impl MetricsAccess {
    /// Whether a request with this `Authorization` header may read.
    pub fn allows(&self, authorization: Option<&str>) -> bool {
        match self {
            MetricsAccess::Public => true,
            MetricsAccess::Off => false,
            MetricsAccess::Token(t) => authorization
                .and_then(|h| h.strip_prefix("Bearer "))
                .is_some_and(|given| {
                    aws_lc_rs::constant_time::verify_slices_are_equal(
                        given.as_bytes(),
                        t.as_bytes(),
                    )
                    .is_ok()
                }),
        }
    }

    /// Reads `ZHIFU_METRICS_TOKEN` (or `_FILE`) and `ZHIFU_METRICS_PUBLIC`.
    ///
    /// # Errors
    /// A token shorter than 16 characters; both set; a bad boolean.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let public = match src.get("ZHIFU_METRICS_PUBLIC") {
            Some(v) => parse_bool("ZHIFU_METRICS_PUBLIC", &v)?,
            None => false,
        };
        match (src.secret("ZHIFU_METRICS_TOKEN")?, public) {
            (Some(_), true) => Err(ConfigError::new(
                "ZHIFU_METRICS_PUBLIC",
                "cannot be true while ZHIFU_METRICS_TOKEN is set",
            )),
            (Some(t), false) if t.chars().count() < MIN_SECRET_LEN => Err(ConfigError::new(
                "ZHIFU_METRICS_TOKEN",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            )),
            (Some(t), false) => Ok(MetricsAccess::Token(t)),
            (None, true) => Ok(MetricsAccess::Public),
            (None, false) => Ok(MetricsAccess::Off),
        }
    }
}

/// How long one webhook delivery may take before it counts as failed.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default webhook retry budget: 12 attempts span about a day with
/// [`crate::webhook::backoff`].
pub const DEFAULT_MAX_ATTEMPTS: i64 = 12;
/// Shortest accepted webhook secret.
pub const MIN_SECRET_LEN: usize = 16;

/// The webhook secret. Its `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Validates a secret from `ZHIFU_WEBHOOK_SECRET`.
    ///
    /// # Errors
    /// When shorter than [`MIN_SECRET_LEN`].
    pub fn new(secret: impl Into<String>) -> Result<Self, ConfigError> {
        let s: String = secret.into();
        let s = s.trim().to_owned();
        if s.len() < MIN_SECRET_LEN {
            return Err(ConfigError::new(
                "ZHIFU_WEBHOOK_SECRET",
                format!("must be at least {MIN_SECRET_LEN} characters"),
            ));
        }
        Ok(WebhookSecret(s))
    }

    /// The bytes the HMAC is keyed with.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Where and how webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `ZHIFU_WEBHOOK_URL`.
    pub url: String,
    /// `ZHIFU_WEBHOOK_SECRET` (or `_FILE`).
    pub secret: WebhookSecret,
    /// `ZHIFU_WEBHOOK_MAX_ATTEMPTS` (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: i64,
    /// Time limit of one delivery ([`DELIVERY_TIMEOUT`]).
    pub timeout: Duration,
    /// `ZHIFU_WEBHOOK_DELIVERY`, when set: when a change's webhooks get
    /// their first attempt ([`WebhookConfig::delivery`]).
    pub delivery: Option<WebhookDelivery>,
    /// `ZHIFU_WEBHOOK_INLINE_BUDGET_MS` (default 1000): the budget of inline
    /// delivery.
    pub inline_budget: Duration,
}

impl WebhookConfig {
    /// When a change's webhooks get their first attempt: as configured,
    /// else after the answer.
    pub fn delivery(&self) -> WebhookDelivery {
        self.delivery.unwrap_or(WebhookDelivery::AfterAnswer)
    }

    /// For entry points that end (or freeze) when they answer — a function
    /// invocation, a job: inline delivery within `budget`, unless
    /// `ZHIFU_WEBHOOK_DELIVERY` chose otherwise.
    pub fn prefer_inline(&mut self, budget: Duration) {
        self.delivery
            .get_or_insert(WebhookDelivery::Inline { budget });
    }
}

/// When a committed change's webhooks get their first attempt. Either way
/// the events are in the outbox first, and the reconcile pass delivers
/// whatever the first attempt did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookDelivery {
    /// After the answer (`ZHIFU_WEBHOOK_DELIVERY=after_answer`, the
    /// default): in a background task, so Alipay's `success` and the
    /// merchant's API answer never wait for the merchant's endpoint. For
    /// long-running servers; a function instance may be frozen right after
    /// its answer, leaving the attempt to the reconcile pass.
    AfterAnswer,
    /// Before the answer, within a budget
    /// (`ZHIFU_WEBHOOK_DELIVERY=inline`, `ZHIFU_WEBHOOK_INLINE_BUDGET_MS`,
    /// default 1000): what a function should use. Events not attempted
    /// within the budget wait for the reconcile pass.
    Inline {
        /// Time the attempts of one change may take in all.
        budget: Duration,
    },
}

/// Settings of one pass.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    /// Orders and refunds younger than this are left alone: their
    /// notification or answer may still be on its way.
    pub min_age: Duration,
    /// How long a claimed row stays reserved for this pass; also the
    /// earliest time a still-pending order is asked about again.
    pub lease: Duration,
    /// At most this many orders, refunds and deliveries each per pass.
    pub limit: usize,
    /// Rows claimed at a time (what a killed pass can leave leased).
    pub batch: usize,
    /// Stop starting new work after this instant (a function's time limit).
    pub deadline: Option<Instant>,
}

impl Default for ReconcileOptions {
    fn default() -> Self {
        ReconcileOptions {
            min_age: Duration::from_secs(120),
            lease: Duration::from_secs(240),
            limit: 200,
            batch: 10,
            deadline: None,
        }
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

impl WebhookConfig {
    /// `ZHIFU_WEBHOOK_URL`, `ZHIFU_WEBHOOK_SECRET` (or `_FILE`, required
    /// with the URL) and `ZHIFU_WEBHOOK_MAX_ATTEMPTS`; `None` without a URL.
    ///
    /// # Errors
    /// The first bad variable, named (never the secret's value).
    pub fn from_source(src: &Source) -> Result<Option<Self>, ConfigError> {
        let Some(url) = src.get("ZHIFU_WEBHOOK_URL") else {
            return Ok(None);
        };
        let parsed = url::Url::parse(&url)
            .map_err(|e| ConfigError::new("ZHIFU_WEBHOOK_URL", format!("not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(ConfigError::new(
                "ZHIFU_WEBHOOK_URL",
                "must be an http(s) URL with a host",
            ));
        }
        let secret = src.secret("ZHIFU_WEBHOOK_SECRET")?.ok_or_else(|| {
            ConfigError::new(
                "ZHIFU_WEBHOOK_SECRET",
                "must be set when ZHIFU_WEBHOOK_URL is (or ZHIFU_WEBHOOK_SECRET_FILE)",
            )
        })?;
        let max_attempts = match src.get("ZHIFU_WEBHOOK_MAX_ATTEMPTS") {
            Some(v) => parse_num("ZHIFU_WEBHOOK_MAX_ATTEMPTS", &v, (1i64, 100))?,
            None => DEFAULT_MAX_ATTEMPTS,
        };
        let inline_budget = match src.get("ZHIFU_WEBHOOK_INLINE_BUDGET_MS") {
            Some(v) => Duration::from_millis(parse_num(
                "ZHIFU_WEBHOOK_INLINE_BUDGET_MS",
                &v,
                (1u64, 60_000),
            )?),
            None => Duration::from_millis(1_000),
        };
        let delivery = match src.get("ZHIFU_WEBHOOK_DELIVERY").as_deref().map(str::trim) {
            None => None,
            Some("after_answer") => Some(WebhookDelivery::AfterAnswer),
            Some("inline") => Some(WebhookDelivery::Inline {
                budget: inline_budget,
            }),
            Some(_) => {
                return Err(ConfigError::new(
                    "ZHIFU_WEBHOOK_DELIVERY",
                    "expected `after_answer` or `inline`",
                ));
            }
        };
        Ok(Some(WebhookConfig {
            url,
            secret: WebhookSecret::new(secret)?,
            max_attempts,
            timeout: DELIVERY_TIMEOUT,
            delivery,
            inline_budget,
        }))
    }
}

/// Limits of one listener (what they do: `crate::http::listener`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLimits {
    /// `ZHIFU_HEADER_TIMEOUT_SECS` (default 10).
    pub header_timeout: Duration,
    /// `ZHIFU_BODY_TIMEOUT_SECS` (default 10).
    pub body_timeout: Duration,
    /// `ZHIFU_REQUEST_TIMEOUT_SECS` (default 30; above the gateway calls a
    /// request may make, each limited to 15 s).
    pub request_timeout: Duration,
    /// `ZHIFU_IDLE_TIMEOUT_SECS` (default 60): a connection with no
    /// traffic either way for this long is closed. Above the request
    /// timeout, so a request being handled is never cut by it.
    pub idle_timeout: Duration,
    /// `ZHIFU_MAX_CONNECTIONS` (default 1024).
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

fn listener_limits(src: &Source) -> Result<ListenerLimits, ConfigError> {
    let mut l = ListenerLimits::default();
    let secs = |var: &str, d: &mut Duration| -> Result<(), ConfigError> {
        if let Some(v) = src.get(var) {
            *d = Duration::from_secs(parse_num(var, &v, (1u64, 3_600))?);
        }
        Ok(())
    };
    secs("ZHIFU_HEADER_TIMEOUT_SECS", &mut l.header_timeout)?;
    secs("ZHIFU_BODY_TIMEOUT_SECS", &mut l.body_timeout)?;
    secs("ZHIFU_REQUEST_TIMEOUT_SECS", &mut l.request_timeout)?;
    secs("ZHIFU_IDLE_TIMEOUT_SECS", &mut l.idle_timeout)?;
    if let Some(v) = src.get("ZHIFU_MAX_CONNECTIONS") {
        l.max_connections = parse_num("ZHIFU_MAX_CONNECTIONS", &v, (1usize, 1_000_000))?;
    }
    Ok(l)
}

impl ReconcileOptions {
    /// `ZHIFU_RECONCILE_MIN_AGE_SECS` (default 120),
    /// `ZHIFU_RECONCILE_LEASE_SECS` (default 240) and `ZHIFU_RECONCILE_LIMIT`
    /// (default 200) over [`ReconcileOptions::default`].
    ///
    /// # Errors
    /// The first bad variable, named.
    pub fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let mut o = ReconcileOptions::default();
        if let Some(v) = src.get("ZHIFU_RECONCILE_MIN_AGE_SECS") {
            o.min_age = Duration::from_secs(parse_num(
                "ZHIFU_RECONCILE_MIN_AGE_SECS",
                &v,
                (0u64, 86_400),
            )?);
        }
        if let Some(v) = src.get("ZHIFU_RECONCILE_LEASE_SECS") {
            o.lease = Duration::from_secs(parse_num(
                "ZHIFU_RECONCILE_LEASE_SECS",
                &v,
                (10u64, 86_400),
            )?);
        }
        if let Some(v) = src.get("ZHIFU_RECONCILE_LIMIT") {
            o.limit = parse_num("ZHIFU_RECONCILE_LIMIT", &v, (1usize, 100_000))?;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests;
