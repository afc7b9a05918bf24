//! Error reporting shared by every layer: [`chain`] writes an error with its
//! whole `source()` chain on one line, for logs. Each layer has its own
//! error type ([`crate::payments::PaymentError`], [`crate::http::ApiError`],
//! [`crate::config::ConfigError`], [`crate::webhook::VerifyError`]); none
//! of their messages repeats its source, so the chain reads once.

use std::error::Error as StdError;

/// Describes an error and its `source()` chain on one line, for logs.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
