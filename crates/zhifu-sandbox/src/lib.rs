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
//! - Trades follow the state machine of docs/protocol.md §5.3 (`WAIT_BUYER_PAY`,
//!   `TRADE_SUCCESS`, `TRADE_CLOSED`, `TRADE_FINISHED`); page/wap/app and
//!   precreate trades exist only once the buyer opens the cashier.
//! - Notifications (docs/protocol.md §6) are signed form POSTs, retried on the real schedule
//!   (4m, 10m, 10m, 1h, 2h, 6h, 15h) × [`SandboxConfig::time_scale`].
//! - [`Faults`] injects dropped, duplicated, delayed and reordered
//!   notifications, `20000` answers and latency, each with a rate.
//! - [`SandboxMode::Explicit`] freezes the clock; [`Sandbox::advance`] moves it.
//! - State lives in memory, or in SQLite under [`SandboxConfig::state_dir`].
//! - Every answered gateway call is kept in a bounded request log
//!   ([`Sandbox::requests`], `GET /sandbox/api/requests`) so tests can count
//!   and inspect what a client sent.
//! - Feature `testing`: `zhifu_sandbox::testing`, the kit every crate's
//!   tests use to get a sandbox on 127.0.0.1:0 with a registered app.
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

// Layers, each using only those before it (tests/layering.rs fails on any
// import cycle): records and vocabulary (error, config, model, ids, store,
// wire, requests); the state and its rules (state, notify, schedule, trade, api); the
// handle (sandbox, views); what drives it (worker, lifecycle, operations,
// trigger); HTTP (lang, intake, html, gateway, pages, agreement_pages, console,
// console_actions, control, routes); clients
// (remote, testing). `impl State` and `impl Sandbox` blocks live with the
// behaviour they add, and call only into earlier layers.
mod agreement_pages;
mod agreements;
mod api;
mod cert_mode;
pub mod certs;
mod config;
mod console;
mod console_actions;
mod console_agreements;
mod control;
mod error;
mod gateway;
mod html;
mod ids;
mod intake;
mod lang;
mod lifecycle;
mod model;
mod notify;
mod operations;
mod pages;
pub mod remote;
mod requests;
mod routes;
mod sandbox;
mod schedule;
mod state;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod trade;
mod trigger;
mod views;
mod wire;
mod worker;

pub use crate::config::{
    DuplicateParams, Faults, NotifyMatrix, NotifyTriggers, OauthIds, RETRY_SCHEDULE, SandboxConfig,
    SandboxMode,
};
pub use crate::error::SandboxError;
#[doc(hidden)]
pub use crate::intake::fuzz_intake;
pub use crate::model::{Attempt, DeliveryState, Product};
pub use crate::requests::{RequestFilter, RequestRecord};
pub use crate::sandbox::Sandbox;
pub use crate::trigger::{TriggerKind, TriggerRequest};
pub use crate::views::{
    AdvanceReport, AgreementView, NotificationView, RefundView, RegisteredApp, TradeView,
};
