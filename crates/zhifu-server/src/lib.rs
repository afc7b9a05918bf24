//! # zhifu-server — the payment backend as a library
//!
//! This crate owns Zhifu's HTTP backend: [`router`] returns an axum
//! [`Router`](axum::Router) over an [`AppState`] (a [`zhifu_store::Store`],
//! the Alipay client and the [`Settings`]); binaries only decide how to
//! serve it ([`serve`] on a TCP listener, a function runtime, or mounted
//! next to the sandbox by `zhifu dev`). State lives only in the database,
//! so any number of instances can run side by side.
//!
//! ## Layers
//!
//! Dependencies go one way: `http` → `jobs` → `payments` → `outbox` →
//! `state`, `view`, `domain` → the store and the `alipay` crate.
//!
//! | module | owns |
//! |---|---|
//! | [`http`] | axum only: routes, auth, strict bodies, [`http::ErrorCode`], the OpenAPI document, the notify and return endpoints |
//! | [`payments`] | every decision about money, no HTTP: notifications, query/refresh/close, orders and payment parameters, refunds, the one commit path and its after-commit hook |
//! | [`jobs`] | the reconcile pass, calling `payments` and `outbox` directly |
//! | [`outbox`] | webhook delivery from the outbox (the after-commit hook and retries) |
//! | [`webhook`] | the webhook signature: [`webhook::sign`], [`webhook::verify`] for receivers |
//! | [`view`] | the JSON shapes of records, shared by the API and webhook payloads |
//! | [`state`] | [`AppState`], [`AppState::open`] |
//! | [`domain`] | money (fen ↔ `Amount` ↔ `"88.88"`), time, [`domain::Channel`], request fingerprints |
//! | [`config`] | configuration from the environment and an optional TOML file |
//! | [`metrics`] | in-process counters and the Prometheus text |
//! | [`platform`] | what differs per host: listen port, platform request ids in logs |
//! | [`error`] | [`error::chain`] for logging an error with its sources |
//!
//! ## Invariants
//!
//! An order's payment state changes only through
//! [`payments::commit_report`] (trade reports) or
//! `payments::commit::settle_refund` (refund answers) → the store's
//! conditional updates, after the report was verified (signature for
//! notifications, signed response for queries) and matched against the
//! stored order. The buyer's browser (`/alipay/return`) never changes state
//! by itself. `payments` never imports axum; `http` never calls the store's
//! state-changing functions (`tests` below check both, and that no two
//! files of the crate import each other, directly or through others).
//!
//! Every committed change has its outbox event; a webhook is only ever sent
//! for an event that committed, and is tried until delivered or given up.
//! Nothing expensive happens when the router is built: HTTP clients are
//! created on first use, so a function's cold start pays only for what the
//! first request needs.

#![deny(missing_docs)]

pub mod budget;
pub mod config;
pub mod domain;
pub mod error;
pub mod fault;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod outbox;
pub mod payments;
pub mod platform;
pub mod rotation;
pub mod state;
pub mod view;
pub mod webhook;

pub use crate::config::{
    ApiKey, Config, ConfigError, MetricsAccess, ReconcileOptions, Settings, WebhookConfig,
    WebhookSecret,
};
pub use crate::domain::rfc3339;
pub use crate::http::{ApiError, router, serve};
pub use crate::jobs::reconcile::ReconcileReport;
pub use crate::state::AppState;

#[cfg(test)]
mod layering;
