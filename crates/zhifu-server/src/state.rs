//! [`AppState`]: what every layer of one instance shares — the store, the
//! Alipay client and notification verifier, the merchant settings, the
//! clock, the counters and the webhook outbox. Cheap to clone; nothing in it
//! is state another instance would need (that lives in the database).

use std::sync::Arc;
use std::time::Instant;

use alipay::{Alipay, AlipayClient, Clock, NotifyVerifier, RequestOptions, SystemClock};
use zhifu_store::{SqlStore, Store, StoreError};

use crate::budget::RecordBudget;
use crate::config::{ApiKey, Config, MoneyPolicy, ReconcileOptions, Settings, WebhookConfig};
use crate::domain::epoch_ms;
use crate::error::chain;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::payments::settled::SettledNotifications;

/// Shared state of every handler, payment operation and job. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
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
        Self::assemble(
            settings,
            store,
            clock,
            webhooks,
            ReconcileOptions::default(),
        )
    }

    fn assemble(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        webhooks: Option<WebhookConfig>,
        reconcile: ReconcileOptions,
    ) -> Self {
        let notify_url = settings.notify_url();
        let return_url = settings.return_url();
        let core = Alipay::builder(
            settings.app_id.clone(),
            settings.app_private_key,
            settings.alipay_public_key,
        )
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
        Ok(Self::assemble(
            config.settings,
            Arc::new(store),
            Arc::new(SystemClock),
            config.webhook,
            config.reconcile,
        ))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
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

    /// Calls Alipay, counting the call and its latency.
    pub(crate) async fn call<R: alipay::ApiRequest>(
        &self,
        req: &R,
        opts: &RequestOptions,
    ) -> alipay::Result<R::Response> {
        let started = Instant::now();
        let result = self.inner.alipay.execute(req, opts).await;
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
        if let Err(e) = &result {
            tracing::warn!(method = req.method(), outcome, error = %chain(e), "Alipay call failed");
        }
        self.inner
            .metrics
            .alipay_call(req.method(), outcome, started.elapsed());
        result
    }
}
