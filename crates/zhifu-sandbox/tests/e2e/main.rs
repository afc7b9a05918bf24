//! End-to-end tests: the real sandbox on 127.0.0.1:0, driven by the real
//! `alipay` client, with real HTTP receivers for notifications.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

mod agreements;
mod cancel_finish;
mod cert_mode;
mod console;
mod control;
mod gateway_errors;
mod helpers;
mod journeys;
mod journeys_settlement;
mod kit;
mod notifications;
mod pages;
mod persistence;
mod request_log;
