//! The payment service: everything that decides or changes the state of
//! money, with no HTTP in it (this module never imports axum; a test
//! enforces it). The HTTP handlers and the jobs call these functions; they
//! call the store and Alipay.
//!
//! | module | owns |
//! |---|---|
//! | [`notification`] | a notification from raw bytes to an outcome: parse once → verify → type → match → commit |
//! | [`trade`] | active query (`refresh_order`), close, applying a verified query answer |
//! | [`orders`] | creating orders, payment parameters per [`crate::domain::Channel`] |
//! | [`refunds`] | creating and driving refunds |
//! | [`oauth`] | user authorization for in-app payments: the authorize URL, `auth_code` → buyer id |
//! | [`subscriptions`] | recurring agreements: create + signing parameters, status from verified agreement notifications or queries, cancel |
//! | [`subscription_charges`] | the charging pass: one order per period, one deduction per attempt, retries, past due |
//! | [`settled`] | notifications already answered `success`, so a replay skips the database |
//! | [`commit`] | the one way a change is made: commit, then the single after-commit hook (webhooks) |
//! | [`error`] | [`PaymentError`] |

pub mod commit;
pub mod error;
pub mod notification;
pub mod oauth;
pub mod orders;
pub mod refunds;
pub mod settled;
pub mod subscription_charges;
pub mod subscriptions;
pub mod trade;

pub use self::commit::{Report, commit_report};
pub use self::error::PaymentError;
pub use self::notification::{NotifyAnswer, handle_notification};
pub use self::orders::{Created, OrderRequest, PayParams, PayRequest, create_order, load, pay};
pub use self::refunds::{RefundRequest, create_refund, drive_refund};
pub use self::trade::{apply_query, close_order, refresh_order};
