//! The fuzz targets of this crate's parsers (`form_params`, `charset`, `notify_verify`, `response_node`, `amount`, `keys`, `cert`) as plain tests:
//! every seed (`fuzz/seeds/<target>/`) and every minimised crash the
//! fuzzer found (`fuzz/regressions/<target>/`) goes through the same
//! property check the fuzzer runs (`fuzz/src/alipay_checks.rs`, included here).
//! docs/fuzzing.md says how to fuzz and how a crash becomes a file here.

#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::replay;

#[allow(dead_code)]
#[path = "../../../fuzz/src/alipay_checks.rs"]
mod checks;

#[test]
fn form_params() {
    replay("form_params", checks::form_params);
}

#[test]
fn charset() {
    replay("charset", checks::charset);
}

#[test]
fn notify_verify() {
    replay("notify_verify", checks::notify_verify);
}

#[test]
fn response_node() {
    replay("response_node", checks::response_node);
}

#[test]
fn amount() {
    replay("amount", checks::amount);
}

#[test]
fn keys() {
    replay("keys", checks::keys);
}

#[test]
fn cert() {
    replay("cert", checks::cert);
}
