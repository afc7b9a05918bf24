//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong when starting or driving the sandbox.
///
/// Gateway callers never see these: the gateway answers them the way Alipay
/// would (`40001`, `40002`, `40004` …). These are for the Rust API and the
/// control API, whose JSON error body carries the `Display` text (which never
/// includes key material).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A protocol operation of the `alipay` crate failed (key parsing, signing).
    #[error("Alipay protocol operation failed")]
    Alipay(#[from] alipay::Error),
    /// The SQLite state store failed.
    #[error("the sandbox state store failed")]
    Store(#[from] sqlx::Error),
    /// The state directory could not be created or opened.
    #[error("state directory {path} is unusable")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// A stored record could not be decoded (written by an incompatible version?).
    #[error("stored {what} record is corrupt")]
    CorruptState {
        /// Which kind of record.
        what: &'static str,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// No app with this id is registered.
    #[error("no app with app_id {0:?} is registered")]
    UnknownApp(String),
    /// `app_id` was left out but more (or fewer) than one app is registered.
    #[error("app_id is required when {0} apps are registered")]
    AmbiguousApp(usize),
    /// Neither an order nor a trade with this number exists for the app.
    #[error("no order or trade {out_trade_no:?} for app {app_id}")]
    TradeNotFound {
        /// The app.
        app_id: String,
        /// The merchant order number.
        out_trade_no: String,
    },
    /// The trade is in a state that does not allow the action.
    #[error("trade {out_trade_no:?} is {status} and cannot be {action}")]
    InvalidTradeState {
        /// The merchant order number.
        out_trade_no: String,
        /// Its state.
        status: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// A notification delivery id that does not exist.
    #[error("notification delivery {0} does not exist")]
    DeliveryNotFound(u64),
    /// A request to the control API or a configuration value is invalid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A sandbox in another process could not be reached (CLI `trigger`/`resend`).
    #[error("could not reach the sandbox at {url}")]
    RemoteUnreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A sandbox in another process refused a control-API call.
    #[error("the sandbox answered HTTP {status}: {message}")]
    RemoteRefused {
        /// HTTP status.
        status: u16,
        /// The control API's error message.
        message: String,
    },
    /// A certificate could not be issued (certificate mode): the input is
    /// not a public key or CSR, or a key could not be made.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The notification HTTP client could not be built.
    #[error("the notification HTTP client could not be built")]
    Http(#[source] reqwest::Error),
}
