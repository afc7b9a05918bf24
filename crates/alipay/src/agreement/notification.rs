//! Agreement notifications (`dut_user_sign` / `dut_user_unsign`): typed
//! from parameters the [`crate::NotifyVerifier`] already verified, then
//! checked against the merchant's own record of the agreement.

use time::OffsetDateTime;

use super::AgreementStatus;
use crate::error::{Error, Mismatch, Result};
use crate::notify::{FormParams, Verified};
use crate::time::parse_beijing;

/// `notify_type` of an agreement notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AgreementNotifyType {
    /// `dut_user_sign`: the buyer signed.
    Sign,
    /// `dut_user_unsign`: the agreement ended.
    Unsign,
}

impl AgreementNotifyType {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AgreementNotifyType::Sign => "dut_user_sign",
            AgreementNotifyType::Unsign => "dut_user_unsign",
        }
    }
}

/// A verified `dut_user_sign` / `dut_user_unsign` notification, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgreementNotification {
    /// `notify_id`: constant across redeliveries.
    pub notify_id: String,
    /// Sign or unsign.
    pub notify_type: AgreementNotifyType,
    /// `notify_time`.
    pub notify_time: OffsetDateTime,
    /// `app_id`.
    pub app_id: String,
    /// `auth_app_id`, if sent.
    pub auth_app_id: Option<String>,
    /// Alipay's agreement number.
    pub agreement_no: String,
    /// The merchant's agreement number (older notifications: `external_sign_no`).
    pub external_agreement_no: Option<String>,
    /// `personal_product_code` (older notifications: `product_code`).
    pub personal_product_code: Option<String>,
    /// `sign_scene` (older notifications: `scene`).
    pub sign_scene: Option<String>,
    /// The agreement's state.
    pub status: AgreementStatus,
    /// The signer's `2088…` user id.
    pub alipay_user_id: Option<String>,
    /// The signer's open id (newer apps).
    pub alipay_open_id: Option<String>,
    /// Masked Alipay login.
    pub alipay_logon_id: Option<String>,
    /// The buyer's login at the merchant.
    pub external_logon_id: Option<String>,
    /// `sign_time`, as sent.
    pub sign_time: Option<String>,
    /// `valid_time`, as sent.
    pub valid_time: Option<String>,
    /// `invalid_time`, as sent.
    pub invalid_time: Option<String>,
    /// `unsign_time`, as sent (unsign notifications).
    pub unsign_time: Option<String>,
}

/// What the merchant's own record says an agreement notification must match.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ExpectedAgreement<'a> {
    /// The merchant's app id.
    pub app_id: &'a str,
    /// The merchant's agreement number.
    pub external_agreement_no: &'a str,
    /// The personal product code signed, when the merchant wants it checked.
    pub personal_product_code: Option<&'a str>,
}

impl<'a> ExpectedAgreement<'a> {
    /// Expects `app_id` and `external_agreement_no`.
    pub fn new(app_id: &'a str, external_agreement_no: &'a str) -> Self {
        ExpectedAgreement {
            app_id,
            external_agreement_no,
            personal_product_code: None,
        }
    }
    /// Also expects this personal product code.
    #[must_use]
    pub fn personal_product_code(mut self, code: &'a str) -> Self {
        self.personal_product_code = Some(code);
        self
    }
}

impl AgreementNotification {
    /// Types a verified notification. Anything but `dut_user_sign` /
    /// `dut_user_unsign` is refused, so a trade notification can never be
    /// taken for an agreement one.
    ///
    /// # Errors
    /// [`Error::MissingField`], [`Error::Timestamp`], [`Error::MalformedForm`]
    /// for another `notify_type` or an unknown `status`.
    pub fn from_verified(v: &Verified<FormParams>) -> Result<Self> {
        let p = v.get();
        let opt = |k: &str| p.get(k).filter(|s| !s.is_empty()).map(str::to_owned);
        let req = |k: &'static str| opt(k).ok_or(Error::MissingField(k));
        let notify_type = match req("notify_type")?.as_str() {
            "dut_user_sign" => AgreementNotifyType::Sign,
            "dut_user_unsign" => AgreementNotifyType::Unsign,
            other => {
                return Err(Error::MalformedForm(format!(
                    "notify_type {:?} is not an agreement notification",
                    other.chars().take(32).collect::<String>()
                )));
            }
        };
        let status_text = req("status")?;
        let status = AgreementStatus::parse(&status_text).ok_or_else(|| {
            Error::MalformedForm(format!(
                "unknown agreement status {:?}",
                status_text.chars().take(32).collect::<String>()
            ))
        })?;
        let notify_time_text = req("notify_time")?;
        let notify_time = parse_beijing(&notify_time_text).ok_or_else(|| Error::Timestamp {
            field: "notify_time",
            value: notify_time_text.chars().take(32).collect(),
        })?;
        Ok(AgreementNotification {
            notify_id: req("notify_id")?,
            notify_type,
            notify_time,
            app_id: req("app_id")?,
            auth_app_id: opt("auth_app_id"),
            agreement_no: req("agreement_no")?,
            external_agreement_no: opt("external_agreement_no").or_else(|| opt("external_sign_no")),
            personal_product_code: opt("personal_product_code").or_else(|| opt("product_code")),
            sign_scene: opt("sign_scene").or_else(|| opt("scene")),
            status,
            alipay_user_id: opt("alipay_user_id"),
            alipay_open_id: opt("alipay_open_id"),
            alipay_logon_id: opt("alipay_logon_id"),
            external_logon_id: opt("external_logon_id"),
            sign_time: opt("sign_time"),
            valid_time: opt("valid_time"),
            invalid_time: opt("invalid_time"),
            unsign_time: opt("unsign_time"),
        })
    }

    /// The merchant-side checks: the notification is for this app and for
    /// the agreement the merchant asked the buyer to sign. Returns every
    /// mismatch, not just the first.
    ///
    /// # Errors
    /// The list of [`Mismatch`]es.
    pub fn check_against(
        &self,
        expected: &ExpectedAgreement<'_>,
    ) -> std::result::Result<(), Vec<Mismatch>> {
        let mut m = Vec::new();
        if self.app_id != expected.app_id {
            m.push(Mismatch::AppId {
                expected: expected.app_id.into(),
                got: self.app_id.clone(),
            });
        }
        if self.external_agreement_no.as_deref() != Some(expected.external_agreement_no) {
            m.push(Mismatch::ExternalAgreementNo {
                expected: expected.external_agreement_no.into(),
                got: self.external_agreement_no.clone().unwrap_or_default(),
            });
        }
        if let Some(code) = expected.personal_product_code
            && self.personal_product_code.as_deref() != Some(code)
        {
            m.push(Mismatch::PersonalProductCode {
                expected: code.into(),
                got: self.personal_product_code.clone().unwrap_or_default(),
            });
        }
        if m.is_empty() { Ok(()) } else { Err(m) }
    }
}
