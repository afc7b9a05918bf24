//! [`AppState`]: what every layer of one instance shares — the store, the
//! Alipay client and notification verifier, the merchant settings, the
//! clock, the counters and the webhook outbox. Cheap to clone; nothing in it
//! is state another instance would need (that lives in the database).

use std::sync::Arc;
use std::time::Instant;

use alipay::{Alipay, AlipayClient, Clock, NotifyVerifier, RequestOptions, SystemClock};
use zhifu_store::{SqlStore, Store, StoreError};

use crate::budget::RecordBudget;
use crate::config::{
    ApiKey, Config, MetricsAccess, MoneyPolicy, ReconcileOptions, Settings, SigningMode,
    WebhookConfig,
};
use crate::domain::epoch_ms;
use crate::error::chain;
use crate::metrics::{ACTIVITY_TARGET, Metrics};
use crate::outbox::Outbox;
use crate::payments::settled::SettledNotifications;
use crate::rotation::{CertRotation, Learnt};

/// Shared state of every handler, payment operation and job. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
    /// Where buyers authorize the app (`ZHIFU_ALIPAY_AUTHORIZE_URL`); set
    /// after construction ([`AppState::with_oauth_authorize_url`]) so the
    /// constructors keep their signatures.
    oauth_authorize_url: Arc<str>,
    /// `sign_scene` of the agreements buyers sign (`ZHIFU_AGREEMENT_SIGN_SCENE`).
    agreement_sign_scene: Arc<str>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    alipay: AlipayClient,
    verifier: NotifyVerifier,
    app_id: String,
    seller_id: Option<String>,
    notify_url: String,
    return_url: String,
    api_key: ApiKey,
    default_expiry_minutes: i64,
    money: MoneyPolicy,
    refusal_budget: RecordBudget,
    settled: SettledNotifications,
    metrics_access: MetricsAccess,
    /// Certificate mode: learning Alipay's rotated certificate.
    rotation: Option<Arc<CertRotation>>,
    reconcile: ReconcileOptions,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    outbox: Option<Outbox>,
}

impl AppState {
    /// State over `store`, calling Alipay as `settings` say.
    pub fn new(settings: Settings, store: Arc<dyn Store>) -> Self {
        Self::with_clock(settings, store, Arc::new(SystemClock))
    }

    /// As [`AppState::new`] with an injected clock (tests move time).
    pub fn with_clock(settings: Settings, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self::build(settings, store, clock, None)
    }

    /// The full constructor: a clock and, when set, where webhooks go.
    pub fn build(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        webhooks: Option<WebhookConfig>,
    ) -> Self {
        Self::build_signing(settings, SigningMode::PublicKey, store, clock, webhooks)
    }

    /// As [`AppState::build`] in a given signing mode (certificate mode:
    /// requests carry `app_cert_sn` and `alipay_root_cert_sn`, answers are
    /// verified by the Alipay certificate their `alipay_cert_sn` names).
    pub fn build_signing(
        settings: Settings,
        signing: SigningMode,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        webhooks: Option<WebhookConfig>,
    ) -> Self {
        Self::assemble(
            settings,
            signing,
            store,
            clock,
            webhooks,
            ReconcileOptions::default(),
            MetricsAccess::Public,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        settings: Settings,
        signing: SigningMode,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        webhooks: Option<WebhookConfig>,
        reconcile: ReconcileOptions,
        metrics_access: MetricsAccess,
    ) -> Self {
        let notify_url = settings.notify_url();
        let return_url = settings.return_url();
        let mut rotation = None;
        let core = match signing {
            SigningMode::PublicKey => Alipay::builder(
                settings.app_id.clone(),
                settings.app_private_key,
                settings.alipay_public_key,
            ),
            SigningMode::Certificates(certs) => {
                // One store for the client, the notification verifier and
                // rotation: a learnt certificate is used by all at once.
                let shared = Arc::new(certs.alipay_certs.clone());
                rotation = Some(Arc::new(CertRotation::new(
                    shared.clone(),
                    certs.root_cert_pem.clone(),
                    certs.download_interval,
                )));
                Alipay::builder(
                    settings.app_id.clone(),
                    settings.app_private_key,
                    alipay::AlipayKeys::Certificates(shared),
                )
                .cert_sns(certs.cert_sns())
            }
        }
        .gateway(settings.gateway)
        .build();
        let verifier = core.notify_verifier();
        // Request timestamps use the real clock: the gateway checks them, and
        // the injected clock only moves order deadlines in tests.
        let alipay = AlipayClient::new(core);
        let metrics = Arc::new(Metrics::default());
        let outbox =
            webhooks.map(|w| Outbox::new(store.clone(), w, metrics.clone(), clock.clone()));
        AppState {
            oauth_authorize_url: Arc::from(alipay::oauth::OAUTH_AUTHORIZE_URL),
            agreement_sign_scene: Arc::from(crate::config::DEFAULT_AGREEMENT_SIGN_SCENE),
            inner: Arc::new(Inner {
                store,
                alipay,
                verifier,
                app_id: settings.app_id,
                seller_id: settings.seller_id,
                notify_url,
                return_url,
                api_key: settings.api_key,
                default_expiry_minutes: settings.default_expiry_minutes,
                refusal_budget: RecordBudget::new(settings.money.refused_records_per_minute),
                settled: SettledNotifications::new(settings.money.settled_notifications),
                metrics_access,
                rotation,
                reconcile,
                money: settings.money,
                clock,
                metrics,
                outbox,
            }),
        }
    }

    /// What `zhifu serve`, `zhifu reconcile` and the function entry points
    /// all do: connect the pool (lazily: sqlx opens connections on first
    /// use, so a cold start touches the network only when `migrate` asks),
    /// migrate when told to, and build the state with the system clock.
    ///
    /// # Errors
    /// The database URL cannot be used, or the migrations fail.
    pub async fn open(config: Config, migrate: bool) -> Result<Self, StoreError> {
        let store = SqlStore::connect(&config.database_url, &config.store_options()).await?;
        if migrate {
            store.migrate().await?;
        }
        tracing::debug!(backend = ?store.backend(), "database pool ready");
        let oauth_authorize_url = config.oauth_authorize_url;
        let sign_scene = config.agreement_sign_scene;
        let state = Self::assemble(
            config.settings,
            config.signing,
            Arc::new(store),
            Arc::new(SystemClock),
            config.webhook,
            config.reconcile,
            config.metrics,
        )
        .with_oauth_authorize_url(oauth_authorize_url)
        .with_agreement_sign_scene(sign_scene);
        state.load_learnt_certs().await;
        Ok(state)
    }

    /// Certificate mode: adds the Alipay certificates any instance learnt
    /// (see [`crate::rotation`]).
    pub async fn load_learnt_certs(&self) {
        if let Some(r) = &self.inner.rotation {
            let n = r.load(self.inner.store.as_ref()).await;
            if n > 0 {
                tracing::info!(count = n, "learnt Alipay certificates loaded");
            }
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// This state with another user-authorization page (the sandbox's under
    /// `zhifu dev`).
    #[must_use]
    pub fn with_oauth_authorize_url(mut self, url: impl Into<String>) -> Self {
        self.oauth_authorize_url = Arc::from(url.into());
        self
    }

    /// This state with another agreement `sign_scene`.
    #[must_use]
    pub fn with_agreement_sign_scene(mut self, scene: impl Into<String>) -> Self {
        self.agreement_sign_scene = Arc::from(scene.into());
        self
    }

    /// The `sign_scene` of the agreements buyers sign.
    pub fn agreement_sign_scene(&self) -> &str {
        &self.agreement_sign_scene
    }

    /// The user-authorization page buyers are sent to.
    pub fn oauth_authorize_url(&self) -> &str {
        &self.oauth_authorize_url
    }

    /// The Alipay client.
    pub fn alipay(&self) -> &AlipayClient {
        &self.inner.alipay
    }

    /// The verifier of Alipay's notifications and return parameters.
    pub fn verifier(&self) -> &NotifyVerifier {
        &self.inner.verifier
    }

    /// Our `app_id`, which every notification must name.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The configured payee (`ALIPAY_SELLER_ID`), checked when set.
    pub fn seller_id(&self) -> Option<&str> {
        self.inner.seller_id.as_deref()
    }

    /// The `notify_url` sent with every order.
    pub fn notify_url(&self) -> &str {
        &self.inner.notify_url
    }

    /// The default `return_url` of page and wap pay.
    pub fn return_url(&self) -> &str {
        &self.inner.return_url
    }

    /// The merchant API key.
    pub fn api_key(&self) -> &ApiKey {
        &self.inner.api_key
    }

    /// The payment deadline of an order created without one, in minutes.
    pub fn default_expiry_minutes(&self) -> i64 {
        self.inner.default_expiry_minutes
    }

    /// The money path's rules (late payments, refund pacing, margins).
    pub fn money(&self) -> &MoneyPolicy {
        &self.inner.money
    }

    /// The reconcile settings (`ZHIFU_RECONCILE_*`) that `POST
    /// /v1/reconcile` starts from.
    pub fn reconcile_options(&self) -> &ReconcileOptions {
        &self.inner.reconcile
    }

    /// What refused unauthenticated messages may still be recorded.
    pub fn refusal_budget(&self) -> &RecordBudget {
        &self.inner.refusal_budget
    }

    /// Who may read `/metrics`.
    pub fn metrics_access(&self) -> &MetricsAccess {
        &self.inner.metrics_access
    }

    /// Notifications this instance already answered `success` for.
    pub fn settled(&self) -> &SettledNotifications {
        &self.inner.settled
    }

    /// The webhook outbox sender, when `ZHIFU_WEBHOOK_URL` is configured.
    pub fn outbox(&self) -> Option<&Outbox> {
        self.inner.outbox.as_ref()
    }

    /// Whether webhooks are configured.
    pub fn webhooks_enabled(&self) -> bool {
        self.inner.outbox.is_some()
    }

    /// This instance's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Now, in epoch milliseconds, from the injected clock.
    pub fn now_ms(&self) -> i64 {
        epoch_ms(self.inner.clock.now())
    }

    /// Certificate mode: makes Alipay's certificate `sn` known if it can be
    /// trusted (see [`crate::rotation`]); [`Learnt::Skipped`] in key mode.
    pub async fn learn_alipay_cert(&self, sn: &str) -> Learnt {
        match &self.inner.rotation {
            Some(r) => {
                r.learn(sn, self.inner.alipay.core(), self.inner.store.as_ref())
                    .await
            }
            None => Learnt::Skipped,
        }
    }

    /// Certificate mode, for a notification no known certificate verifies:
    /// asks Alipay about `out_trade_no` (rate-limited), which learns its
    /// current certificate if it changed. True when a certificate was
    /// learnt, so verifying again may succeed.
    pub async fn probe_alipay_cert(&self, out_trade_no: &str) -> bool {
        let Some(r) = &self.inner.rotation else {
            return false;
        };
        if alipay::OutTradeNo::new(out_trade_no).is_err() || !r.may_probe() {
            return false;
        }
        let alipay::AlipayKeys::Certificates(certs) = self.inner.alipay.core().alipay_keys() else {
            return false;
        };
        let before = certs.keys().len();
        let _ = self
            .call(
                &alipay::TradeQuery::by_out_trade_no(out_trade_no),
                &RequestOptions::default(),
            )
            .await;
        certs.keys().len() > before
    }

    /// Calls Alipay, counting the call and its latency.
    pub(crate) async fn call<R: alipay::ApiRequest>(
        &self,
        req: &R,
        opts: &RequestOptions,
    ) -> alipay::Result<R::Response> {
        let started = Instant::now();
        let mut result = self.inner.alipay.execute(req, opts).await;
        // Alipay rotated its certificate: learn it, then ask again when
        // asking again can never act twice.
        if let Err(alipay::Error::UnknownAlipayCert(sn)) = &result
            && self.learn_alipay_cert(sn).await == Learnt::Known
            && req.retry_safe()
        {
            result = self.inner.alipay.execute(req, opts).await;
        }
        self.observe(req, started, result)
    }

    /// As [`AppState::call`], one attempt only: for refunds, whose retries
    /// the caller paces itself (lease and spacing).
    pub(crate) async fn call_once<R: alipay::ApiRequest>(
        &self,
        req: &R,
        opts: &RequestOptions,
    ) -> alipay::Result<R::Response> {
        let started = Instant::now();
        let result = self.inner.alipay.execute_once(req, opts).await;
        // The call was made, its answer cannot be read (an unknown outcome
        // the caller handles): learn the certificate for the next calls.
        if let Err(alipay::Error::UnknownAlipayCert(sn)) = &result {
            self.learn_alipay_cert(sn).await;
        }
        self.observe(req, started, result)
    }

    fn observe<R: alipay::ApiRequest>(
        &self,
        req: &R,
        started: Instant,
        result: alipay::Result<R::Response>,
    ) -> alipay::Result<R::Response> {
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) if e.is_unknown_outcome() => "unknown",
            Err(alipay::Error::Gateway(_)) => "refused",
            Err(_) => "error",
        };
        let elapsed = started.elapsed();
        if tracing::enabled!(target: ACTIVITY_TARGET, tracing::Level::INFO) {
            // The request's own `out_trade_no` names the order; reading it
            // back from the serialised request costs nothing when the
            // activity log is off.
            let out_trade_no = serde_json::to_value(req)
                .ok()
                .and_then(|v| v.get("out_trade_no")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            let ms = crate::domain::duration_ms(elapsed);
            match &result {
                Ok(_) => tracing::info!(
                    target: ACTIVITY_TARGET,
                    kind = "gateway",
                    method = req.method(),
                    out_trade_no,
                    code = "10000",
                    outcome,
                    ms,
                    "Alipay call"
                ),
                Err(e) => {
                    let (code, sub_code) = match e {
                        alipay::Error::Gateway(g) => {
                            (g.code.as_str(), g.sub_code.as_deref().unwrap_or(""))
                        }
                        _ => ("", ""),
                    };
                    tracing::warn!(
                        target: ACTIVITY_TARGET,
                        kind = "gateway",
                        method = req.method(),
                        out_trade_no,
                        code,
                        sub_code,
                        outcome,
                        ms,
                        error = %chain(e),
                        "Alipay call failed"
                    );
                }
            }
        } else if let Err(e) = &result {
            tracing::warn!(method = req.method(), outcome, error = %chain(e), "Alipay call failed");
        }
        self.inner
            .metrics
            .alipay_call(req.method(), outcome, elapsed);
        result
    }
}
