//! # zhifu-server — the payment backend as a library
//!
//! This crate owns Zhifu's HTTP backend: [`router`] returns an axum
//! [`Router`] over an [`AppState`] (a [`zhifu_store::Store`], the Alipay
//! client and the [`Settings`]); binaries only decide how to serve it
//! ([`serve`] on a TCP listener, a function runtime, or mounted next to the
//! sandbox by `zhifu dev`). State lives only in the database, so any number
//! of instances can run side by side.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | configuration from the environment and an optional TOML file |
//! | `api` | the merchant API (`/v1/orders…`), auth, idempotency keys |
//! | [`notify`] | the notification path and the verified state-change path shared with `?refresh=true` |
//! | `pages` | the `return_url` landing page |
//! | [`metrics`], `openapi` | `/metrics`, `/openapi.json` |
//! | [`error`] | the `{"error":{"code","message"}}` contract |
//! | [`webhook`] | signed merchant webhooks from the outbox, [`webhook::verify`] for receivers |
//! | [`reconcile`] | the bounded, concurrent-safe, resumable reconcile pass |
//! | [`platform`] | what differs per host: listen port, platform request ids in logs |
//!
//! ## Invariant
//!
//! An order's payment state changes only through
//! [`notify::commit_report`] → [`zhifu_store::Store::apply_trade_update`],
//! after the report was verified (signature for notifications, signed
//! response for queries) and matched against the stored order. The buyer's
//! browser (`/alipay/return`) never changes state by itself.
//!
//! Every committed change has its outbox event; a webhook is only ever sent
//! for an event that committed, and is tried until delivered or given up.
//! Nothing expensive happens when the router is built: HTTP clients are
//! created on first use, so a function's cold start pays only for what the
//! first request needs.

#![deny(missing_docs)]

mod api;
pub mod body;
pub mod config;
pub mod error;
pub mod metrics;
pub mod notify;
mod openapi;
mod pages;
pub mod platform;
pub mod reconcile;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use alipay::{Alipay, AlipayClient, Clock, NotifyVerifier, RequestOptions, SystemClock};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use zhifu_store::Store;

pub use crate::config::{ApiKey, Config, ConfigError, Settings};
pub use crate::error::ApiError;
pub use crate::reconcile::{ReconcileOptions, ReconcileReport};
pub use crate::webhook::{WebhookConfig, WebhookSecret};

/// Shared state of every handler. Cheap to clone.
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
    clock: Arc<dyn Clock>,
    metrics: metrics::Metrics,
    webhooks: Option<webhook::Sender>,
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
                clock,
                metrics: metrics::Metrics::default(),
                webhooks: webhooks.map(webhook::Sender::new),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The Alipay client.
    pub fn alipay(&self) -> &AlipayClient {
        &self.inner.alipay
    }

    /// The webhook sender, when `ZHIFU_WEBHOOK_URL` is configured.
    pub(crate) fn webhooks(&self) -> Option<&webhook::Sender> {
        self.inner.webhooks.as_ref()
    }

    /// Whether webhooks are configured.
    pub fn webhooks_enabled(&self) -> bool {
        self.inner.webhooks.is_some()
    }

    /// This instance's counters.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        let t = self.inner.clock.now();
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }

    /// Brings a pending order up to date: asks Alipay (`alipay.trade.query`)
    /// and applies the verified answer through the notification path's
    /// state-change function, closing the order when its deadline has passed.
    /// What `?refresh=true` does, and what a reconcile pass calls per order.
    ///
    /// # Errors
    /// [`ApiError`] for Alipay or store failures (nothing changed then).
    pub async fn refresh_order(
        &self,
        order: zhifu_store::Order,
    ) -> Result<zhifu_store::Order, ApiError> {
        api::refresh_order(self, order).await
    }

    /// Re-sends a `pending` refund with its own `out_request_no` (Alipay
    /// never refunds twice for one) and settles it when the answer is definite.
    ///
    /// # Errors
    /// [`ApiError`] for store failures.
    pub async fn retry_refund(
        &self,
        order: &zhifu_store::Order,
        refund: zhifu_store::Refund,
    ) -> Result<zhifu_store::Refund, ApiError> {
        api::drive_refund(self, order, refund).await
    }

    /// Calls Alipay, counting the call and its latency.
    pub(crate) async fn call<R: alipay::ApiRequest>(
        &self,
        req: &R,
        opts: &RequestOptions,
    ) -> alipay::Result<R::Response> {
        let started = Instant::now();
        let result = self.inner.alipay.execute(req, opts).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) if e.is_unknown_outcome() => "unknown",
            Err(alipay::Error::Gateway(_)) => "refused",
            Err(_) => "error",
        };
        if let Err(e) = &result {
            tracing::warn!(method = req.method(), outcome, error = %error::chain(e), "Alipay call failed");
        }
        self.inner
            .metrics
            .alipay_call(req.method(), outcome, started.elapsed());
        result
    }
}

/// Epoch milliseconds as RFC 3339 UTC, as the API shows times.
pub fn rfc3339(ms: i64) -> Option<String> {
    api::rfc3339(ms)
}

/// Amount to fen as stored. Amounts are at most 100000000.00 yuan, far inside `i64`.
pub(crate) fn notify_fen(a: alipay::Amount) -> i64 {
    i64::try_from(a.fen()).unwrap_or(i64::MAX)
}

/// The whole HTTP surface: merchant API, notification endpoint, return page,
/// health, metrics and the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let merchant = Router::new()
        .route("/v1/orders", post(api::create_order).get(api::list_orders))
        .route("/v1/orders/{id}", get(api::get_order))
        .route("/v1/orders/{id}/pay", post(api::pay_order))
        .route("/v1/orders/{id}/close", post(api::close_order))
        .route("/v1/orders/{id}/events", get(api::order_events))
        .route(
            "/v1/orders/{id}/refunds",
            get(api::order_refunds).post(api::refund_order),
        )
        .route(
            "/v1/orders/{id}/notifications",
            get(api::order_notifications),
        )
        .route("/v1/reconcile", post(api::reconcile_now))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::require_api_key,
        ));
    Router::new()
        .merge(merchant)
        .route("/alipay/notify", post(notify::notify_endpoint))
        .route("/alipay/return", get(pages::return_page))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi::document))
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(platform::request_span))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The peer address feeds per-client rate limits (the checkout's).
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
