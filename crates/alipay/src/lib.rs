//! # alipay — the Alipay Open Platform protocol, done carefully
//!
//! This crate owns the Alipay (支付宝) OpenAPI protocol: keys, the v2 signing
//! rule, the client-side payment outputs (page/wap pay URL and form, app pay
//! order string), typed trade APIs, verification of gateway responses,
//! notifications and `return_url` parameters, certificate mode, AES content
//! encryption and OpenAPI v3 signatures.
//!
//! Its core does no I/O: it builds and checks bytes, and time is passed in.
//! The async [`AlipayClient`] (feature `client`) sits on top.
//!
//! | you have | you use |
//! |---|---|
//! | keys in any form (PEM/bare, PKCS#1/PKCS#8, `\n`-escaped) | [`AppPrivateKey::parse`], [`AlipayPublicKey::parse`] |
//! | an order to pay | [`Alipay::sign_request`] → [`SignedRequest::to_get_url`] / [`to_post_form`](SignedRequest::to_post_form) / [`to_order_string`](SignedRequest::to_order_string) |
//! | a server-to-server call | [`AlipayClient::execute`] or [`Alipay::decode_response`] on bytes you fetched |
//! | a notification body | [`NotifyVerifier::verify_body`] → [`TradeNotification::from_verified`] → [`TradeNotification::check_against`] |
//! | a subscription to sign and charge | [`UserAgreementPageSign`] / [`AgreementSignParams`] → [`AgreementNotification`] → [`TradeAgreementPay`] ([`agreement`]) |
//! | an in-app buyer to identify | [`AuthorizeUrl`] → [`SystemOauthToken`] → [`TradeCreate::buyer`] ([`oauth`]) |
//!
//! ## Five minutes to a page-pay URL
//!
//! ```no_run
//! use alipay::{Alipay, AlipayPublicKey, AppPrivateKey, Amount, OutTradeNo, RequestOptions, TradePagePay};
//!
//! # fn main() -> Result<(), alipay::Error> {
//! let key = AppPrivateKey::parse(&std::env::var("ALIPAY_APP_PRIVATE_KEY").unwrap())?;
//! let alipay_key = AlipayPublicKey::parse(&std::env::var("ALIPAY_PUBLIC_KEY").unwrap())?;
//! let alipay = Alipay::builder("2021000122671080", key, alipay_key)
//!     .gateway(alipay::SANDBOX_GATEWAY)
//!     .build();
//!
//! let order = TradePagePay::new(OutTradeNo::new("ORDER_0001")?, Amount::parse("88.88")?, "A mug");
//! let opts = RequestOptions::new()
//!     .notify_url("https://shop.example.com/alipay/notify")
//!     .return_url("https://shop.example.com/alipay/return");
//! let signed = alipay.sign_request(&order, &opts, time::OffsetDateTime::now_utc())?;
//! println!("redirect the buyer to {}", signed.to_get_url(alipay.gateway()));
//! // or serve `signed.to_post_form(alipay.gateway())` as an auto-submitting page.
//! # Ok(()) }
//! ```
//!
//! ## Handling the notification
//!
//! Verify the raw body, type it, compare it with **your** order, and only
//! then change state; answer exactly `success` after your transaction commits.
//!
//! ```no_run
//! use alipay::{Amount, ExpectedOrder, NotifyVerifier, TradeNotification};
//!
//! # fn handle(verifier: &NotifyVerifier, raw_body: &[u8]) -> Result<&'static str, alipay::Error> {
//! let verified = verifier.verify_body(raw_body)?; // bad or missing signature: Err
//! let n = TradeNotification::from_verified(&verified)?;
//! // Look the order up by n.out_trade_no in your database, then:
//! let expected = ExpectedOrder {
//!     out_trade_no: &n.out_trade_no,
//!     total_amount: Amount::parse("88.88")?,
//!     app_id: "2021000122671080",
//!     seller_id: Some("2088721003899159"),
//! };
//! if let Err(mismatches) = n.check_against(&expected) {
//!     eprintln!("ignoring notification: {mismatches:?}");
//!     return Ok("failure");
//! }
//! if n.trade_status.is_paid() {
//!     // mark paid, idempotently (the same notify_id arrives many times)
//! }
//! Ok("success")
//! # }
//! ```
//!
//! ## Where the spec was silent (docs/protocol.md §14)
//!
//! - Notifications: the trade rule (drop `sign` and `sign_type`) is tried
//!   first, then the gateway-message rule (keep `sign_type`); empty values
//!   are tried kept, then dropped. Whether Alipay sends empty values is
//!   unconfirmed, so both are accepted (each still needs Alipay's signature).
//! - `out_trade_no` accepts `-` besides letters, digits and `_`: real
//!   production notifications contain it.
//! - A failed response without `sign` is reported as
//!   [`GatewayError`] with `verified: false`; a success without a valid
//!   signature is always an error.

#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

pub mod aes;
pub mod agreement;
pub mod amount;
pub mod cert;
pub mod charset;
#[cfg(feature = "client")]
pub mod client;
pub mod error;
pub mod keys;
mod legacy_sha1;
pub mod models;
pub mod notify;
pub mod oauth;
pub mod protocol;
pub mod response;
pub mod sign;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod v3;
pub mod verify;

pub use crate::aes::AesKey;
pub use crate::agreement::{
    AccessChannel, AgreementExecutionPlanModify, AgreementNotification, AgreementNotifyType,
    AgreementQueryResponse, AgreementRef, AgreementSignParams, AgreementStatus,
    AgreementUnsignResponse, ExecutionPlanModifyResponse, ExpectedAgreement, PeriodRule,
    PeriodType, TradeAgreementPay, UserAgreementPageSign, UserAgreementQuery, UserAgreementUnsign,
};
pub use crate::amount::Amount;
pub use crate::cert::AlipayCertStore;
pub use crate::charset::Charset;
#[cfg(feature = "client")]
pub use crate::client::{AlipayClient, ClientConfig};
pub use crate::error::{Error, GatewayError, Mismatch, Outcome, Result};
pub use crate::keys::{AlipayPublicKey, AppPrivateKey, SignType};
pub use crate::models::*;
pub use crate::notify::{
    ExpectedOrder, FormParams, FundBill, NotifyVerifier, ReturnParams, TradeNotification,
    TradeStatus, Verified,
};
pub use crate::oauth::{AuthorizeUrl, BuyerId, OauthTokenResponse, SystemOauthToken};
pub use crate::protocol::{
    Alipay, AlipayBuilder, CertSns, PRODUCTION_GATEWAY, RequestOptions, SANDBOX_GATEWAY,
    SignedRequest,
};
pub use crate::time::{Clock, FixedClock, SystemClock};
pub use crate::verify::AlipayKeys;
