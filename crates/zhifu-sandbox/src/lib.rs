//! # zhifu-sandbox — a faithful, stateful local Alipay gateway
//!
//! This crate owns the emulator of Alipay's OpenAPI v2 gateway that every
//! Zhifu end-to-end test runs against and that developers use offline
//! (`zhifu sandbox`, `zhifu dev`). It speaks the real wire protocol with the
//! `alipay` crate's signer and verifier — its own RSA key pair plays
//! "Alipay", and there is no bypass flag anywhere.
//!
//! - [`Sandbox`]: the running emulator; [`Sandbox::router`] serves
//!   `/gateway.do` (GET and POST) and everything under `/sandbox/`.
//! - Trades follow the state machine of spec §5.3 (`WAIT_BUYER_PAY`,
//!   `TRADE_SUCCESS`, `TRADE_CLOSED`, `TRADE_FINISHED`); page/wap/app and
//!   precreate trades exist only once the buyer opens the cashier.
//! - Notifications (§6) are signed form POSTs, retried on the real schedule
//!   (4m, 10m, 10m, 1h, 2h, 6h, 15h) × [`SandboxConfig::time_scale`].
//! - [`Faults`] injects dropped, duplicated, delayed and reordered
//!   notifications, `20000` answers and latency, each with a rate.
//! - [`SandboxMode::Explicit`] freezes the clock; [`Sandbox::advance`] moves it.
//! - State lives in memory, or in SQLite under [`SandboxConfig::state_dir`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use zhifu_sandbox::{Sandbox, SandboxConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let sandbox = Sandbox::start(SandboxConfig { public_url: url, time_scale: 0.001, ..Default::default() }).await?;
//! let app_key = alipay::AppPrivateKey::generate()?;
//! let app = sandbox.register_app(None, app_key.public_key()).await?;
//! tokio::spawn(axum::serve(listener, sandbox.router()).into_future());
//! // sign requests as app.app_id with app_key; verify with app.alipay_public_key
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

mod bill;
mod config;
mod control;
mod error;
mod gateway;
mod ids;
mod model;
mod notify;
mod pages;
pub mod remote;
mod sandbox;
mod state;
mod store;

use axum::Router;
use axum::routing::{get, post};

pub use crate::config::{
    DuplicateParams, Faults, NotifyMatrix, NotifyTriggers, RETRY_SCHEDULE, SandboxConfig,
    SandboxMode,
};
pub use crate::control::{TriggerKind, TriggerRequest};
pub use crate::error::SandboxError;
pub use crate::model::{Attempt, DeliveryState, Product};
pub use crate::sandbox::{
    AdvanceReport, NotificationView, RefundView, RegisteredApp, Sandbox, TradeView,
};

impl Sandbox {
    /// Serves [`Sandbox::router`] on `listener` until `shutdown` resolves,
    /// then stops the worker.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let r = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        self.shutdown().await;
        r
    }

    /// The Alipay private key stored in a state directory, if any (lets a
    /// CLI sign exactly as the sandbox that owns the directory).
    ///
    /// # Errors
    /// Store and key errors.
    pub async fn stored_alipay_key(
        state_dir: &std::path::Path,
    ) -> Result<Option<alipay::AppPrivateKey>, SandboxError> {
        let store = store::Store::open(Some(state_dir)).await?;
        let key = match store.get_meta("alipay_private_key").await? {
            Some(text) => Some(alipay::AppPrivateKey::parse(&text)?),
            None => None,
        };
        store.close().await;
        Ok(key)
    }

    /// All sandbox routes: `/gateway.do` and everything under `/sandbox/`,
    /// so the router can be merged next to another service's.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/gateway.do", get(gateway::gateway).post(gateway::gateway))
            .route("/sandbox", get(pages::index))
            .route("/sandbox/", get(pages::index))
            .route("/sandbox/cashier/{token}", get(pages::cashier))
            .route("/sandbox/cashier/{token}/pay", post(pages::cashier_pay))
            .route(
                "/sandbox/cashier/{token}/cancel",
                post(pages::cashier_cancel),
            )
            .route("/sandbox/scan/{token}", get(pages::cashier))
            .route(
                "/sandbox/app-pay",
                get(pages::app_pay_form).post(pages::app_pay_submit),
            )
            .route("/sandbox/bills/{token}", get(pages::bill))
            .merge(control::routes())
            .with_state(self.clone())
    }
}
