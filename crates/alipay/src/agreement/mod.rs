//! Recurring payments (周期扣款 / 商家扣款): the buyer signs a withholding
//! agreement once, and the merchant charges it each period without the
//! buyer present (docs/agreements.md).
//!
//! The flow, as for trades: sign with [`UserAgreementPageSign`] (a page URL
//! or form through [`crate::Alipay::sign_request`], or the in-app link of
//! [`app_sign_link`]) or pay-and-sign with [`AgreementSignParams`] on
//! page/wap/app pay → verify the `dut_user_sign` notification and type it
//! as an [`AgreementNotification`] → [`AgreementNotification::check_against`]
//! the merchant's own record → charge each period with
//! [`TradeAgreementPay`], within the signed [`PeriodRule`].

use serde::{Deserialize, Serialize, Serializer};
use time::Date;

use crate::amount::Amount;
use crate::error::{Error, Result};
use crate::models::{
    ApiRequest, BizContent, ExtraFields, OutTradeNo, PayResponse, check_id, check_len,
    check_subject, check_time_expire, check_timeout_express,
};
use crate::protocol::SignedRequest;

mod notification;
pub use notification::{AgreementNotification, AgreementNotifyType, ExpectedAgreement};

/// The personal product code of periodic deduction (周期扣款).
pub const CYCLE_PAY_PERSONAL_PRODUCT_CODE: &str = "CYCLE_PAY_AUTH_P";
/// The merchant product code of deductions made against an agreement.
pub const GENERAL_WITHHOLDING: &str = "GENERAL_WITHHOLDING";
/// The Alipay app's signing centre, which opens an in-app signing link.
const APP_SIGN_LINK_PREFIX: &str =
    "alipays://platformapi/startapp?appId=60000157&appClearTop=false&startMultApp=YES&sign_params=";

/// How the unit of a [`PeriodRule`] is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum PeriodType {
    /// `period` days.
    Day,
    /// `period` calendar months, on the same day of the month.
    Month,
}

/// `period_rule_params`: when and how much the merchant may charge. Alipay
/// shows it to the buyer when signing and refuses deductions outside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PeriodRule {
    /// Days or months.
    pub period_type: PeriodType,
    /// How many of `period_type` make one period (≥ 1).
    pub period: u32,
    /// The first charge date (`yyyy-MM-dd`); later charges follow the period.
    #[serde(serialize_with = "serialize_date")]
    pub execute_time: Date,
    /// The most one charge may take.
    pub single_amount: Amount,
    /// The most all charges together may take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<Amount>,
    /// How many successful charges are allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_payments: Option<u32>,
}

impl PeriodRule {
    /// A rule: every `period` × `period_type` from `execute_time`, at most
    /// `single_amount` each time.
    pub fn new(
        period_type: PeriodType,
        period: u32,
        execute_time: Date,
        single_amount: Amount,
    ) -> Self {
        PeriodRule {
            period_type,
            period,
            execute_time,
            single_amount,
            total_amount: None,
            total_payments: None,
        }
    }
    /// Caps the sum of all charges (`total_amount`).
    #[must_use]
    pub fn total_amount(mut self, total: Amount) -> Self {
        self.total_amount = Some(total);
        self
    }
    /// Caps the number of successful charges (`total_payments`).
    #[must_use]
    pub fn total_payments(mut self, n: u32) -> Self {
        self.total_payments = Some(n);
        self
    }
    /// Whether one charge of `amount` fits `single_amount`.
    pub fn allows(&self, amount: Amount) -> bool {
        amount.fen() > 0 && amount <= self.single_amount
    }
    /// The rule's own constraints (docs/agreements.md): a positive period, a
    /// monthly first charge on day 1–28 (every month has that day), amounts
    /// that can be paid, a total no smaller than one charge.
    ///
    /// # Errors
    /// [`Error::Field`] or [`Error::Amount`].
    pub fn validate(&self) -> Result<()> {
        if self.period == 0 {
            return Err(Error::field("period", "must be at least 1"));
        }
        if self.period_type == PeriodType::Month && self.execute_time.day() > 28 {
            return Err(Error::field(
                "execute_time",
                "a monthly rule must start on day 1–28",
            ));
        }
        self.single_amount.require_payable()?;
        if let Some(total) = self.total_amount {
            total.require_payable()?;
            if total < self.single_amount {
                return Err(Error::field(
                    "total_amount",
                    "smaller than single_amount: no charge could ever be made",
                ));
            }
        }
        if self.total_payments == Some(0) {
            return Err(Error::field("total_payments", "must be at least 1"));
        }
        Ok(())
    }
}

fn serialize_date<S: Serializer>(d: &Date, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(&format_date(*d))
}

fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Where the buyer signs (`access_params.channel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AccessChannel {
    /// Inside the Alipay app (an H5 page or the `alipays://` link).
    #[serde(rename = "ALIPAYAPP")]
    AlipayApp,
    /// A QR code the buyer scans (PC pages).
    #[serde(rename = "QRCODE")]
    QrCode,
    /// A QR code, or an SMS to the buyer's phone.
    #[serde(rename = "QRCODEORSMS")]
    QrCodeOrSms,
}

/// `access_params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AccessParams {
    /// The signing channel.
    pub channel: AccessChannel,
}

impl From<AccessChannel> for AccessParams {
    fn from(channel: AccessChannel) -> Self {
        AccessParams { channel }
    }
}

/// Checks what names an agreement: product, scene and the merchant's number.
fn check_agreement_identity(
    personal_product_code: &str,
    sign_scene: &str,
    external_agreement_no: Option<&str>,
) -> Result<()> {
    check_id("personal_product_code", personal_product_code, 64)?;
    if sign_scene.trim().is_empty() {
        return Err(Error::field("sign_scene", "must not be empty"));
    }
    check_len("sign_scene", Some(sign_scene), 64)?;
    if let Some(no) = external_agreement_no {
        check_id("external_agreement_no", no, 32)?;
        // Alipay cannot tell two agreements of one buyer apart in the
        // default scene, so a merchant number needs a real scene.
        if sign_scene == "DEFAULT|DEFAULT" {
            return Err(Error::field(
                "sign_scene",
                "must not be DEFAULT|DEFAULT when external_agreement_no is set",
            ));
        }
    }
    Ok(())
}

/// Checks the fields every way of signing shares.
fn check_sign_fields(
    personal_product_code: &str,
    sign_scene: &str,
    external_agreement_no: Option<&str>,
    period_rule: Option<&PeriodRule>,
) -> Result<()> {
    check_agreement_identity(personal_product_code, sign_scene, external_agreement_no)?;
    match period_rule {
        Some(rule) => rule.validate(),
        None if personal_product_code == CYCLE_PAY_PERSONAL_PRODUCT_CODE => Err(Error::field(
            "period_rule_params",
            "required for CYCLE_PAY_AUTH_P",
        )),
        None => Ok(()),
    }
}

/// `agreement_sign_params` on page/wap/app pay: "pay and sign", the buyer
/// signs the agreement while paying the first order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AgreementSignParams {
    /// Personal product code, e.g. `CYCLE_PAY_AUTH_P`.
    pub personal_product_code: String,
    /// Signing scene agreed with Alipay, e.g. `INDUSTRY|DIGITAL_MEDIA`.
    pub sign_scene: String,
    /// The merchant's own agreement number (unique per merchant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_agreement_no: Option<String>,
    /// Merchant product code (`GENERAL_WITHHOLDING`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// Signing channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_params: Option<AccessParams>,
    /// The period rule (required for `CYCLE_PAY_AUTH_P`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_rule_params: Option<PeriodRule>,
    /// The buyer's login at the merchant, shown on the signing page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_logon_id: Option<String>,
    /// Where the `dut_user_sign` notification goes (default: `notify_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_notify_url: Option<String>,
    /// How long the agreement lasts, e.g. `12m`, `30d` (default: no end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_validity_period: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl AgreementSignParams {
    /// Sign `personal_product_code` in `sign_scene`.
    pub fn new(personal_product_code: impl Into<String>, sign_scene: impl Into<String>) -> Self {
        AgreementSignParams {
            personal_product_code: personal_product_code.into(),
            sign_scene: sign_scene.into(),
            external_agreement_no: None,
            product_code: None,
            access_params: None,
            period_rule_params: None,
            external_logon_id: None,
            sign_notify_url: None,
            sign_validity_period: None,
            extra: ExtraFields::new(),
        }
    }
    /// A periodic-deduction agreement (`CYCLE_PAY_AUTH_P`, `GENERAL_WITHHOLDING`).
    pub fn cycle_pay(
        sign_scene: impl Into<String>,
        external_agreement_no: impl Into<String>,
        rule: PeriodRule,
    ) -> Self {
        let mut p = AgreementSignParams::new(CYCLE_PAY_PERSONAL_PRODUCT_CODE, sign_scene);
        p.external_agreement_no = Some(external_agreement_no.into());
        p.product_code = Some(GENERAL_WITHHOLDING.into());
        p.period_rule_params = Some(rule);
        p
    }
    /// Sets `access_params.channel`.
    #[must_use]
    pub fn access_channel(mut self, channel: AccessChannel) -> Self {
        self.access_params = Some(channel.into());
        self
    }
    /// Sets `period_rule_params`.
    #[must_use]
    pub fn period_rule(mut self, rule: PeriodRule) -> Self {
        self.period_rule_params = Some(rule);
        self
    }
    /// Checks the fields; called by the payment that carries them.
    ///
    /// # Errors
    /// [`Error::Field`] or [`Error::Amount`].
    pub fn validate(&self) -> Result<()> {
        check_sign_fields(
            &self.personal_product_code,
            &self.sign_scene,
            self.external_agreement_no.as_deref(),
            self.period_rule_params.as_ref(),
        )?;
        check_validity_period(self.sign_validity_period.as_deref())
    }
}

macro_rules! text_setters {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                #[must_use]
                pub fn $field(mut self, value: impl Into<String>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
        }
    };
}

text_setters!(AgreementSignParams {
    external_agreement_no,
    product_code,
    external_logon_id,
    sign_notify_url,
    sign_validity_period,
});

/// `sign_validity_period`: an integer followed by `d` (days) or `m` (months).
fn check_validity_period(s: Option<&str>) -> Result<()> {
    let Some(s) = s else { return Ok(()) };
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let ok = !num.is_empty()
        && num.len() <= 5
        && num.bytes().all(|b| b.is_ascii_digit())
        && num.bytes().any(|b| b != b'0')
        && matches!(unit, "d" | "m");
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            "sign_validity_period",
            format!("{s:?} is not `<integer>d` or `<integer>m`"),
        ))
    }
}

/// `alipay.user.agreement.page.sign`: the signing page, as a URL or form
/// ([`SignedRequest::to_get_url`] / [`SignedRequest::to_post_form`]) or as
/// the in-app link ([`app_sign_link`]). Client-side, like page pay: the
/// result arrives as a `dut_user_sign` notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UserAgreementPageSign {
    /// Personal product code, e.g. `CYCLE_PAY_AUTH_P`.
    pub personal_product_code: String,
    /// Signing scene agreed with Alipay.
    pub sign_scene: String,
    /// Where the buyer signs.
    pub access_params: AccessParams,
    /// The merchant's own agreement number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_agreement_no: Option<String>,
    /// Merchant product code (`GENERAL_WITHHOLDING`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// The period rule (required for `CYCLE_PAY_AUTH_P`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_rule_params: Option<PeriodRule>,
    /// The buyer's login at the merchant, shown on the signing page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_logon_id: Option<String>,
    /// How long the agreement lasts, e.g. `12m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_validity_period: Option<String>,
    /// `DIRECT` (default) or `NOTICE` (the merchant activates it later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement_effect_type: Option<String>,
    /// A merchant page the signing flow visits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_process_url: Option<String>,
    /// `PARTNER` (default) or `MERCHANT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub third_party_type: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl UserAgreementPageSign {
    /// Sign `personal_product_code` in `sign_scene` through `channel`.
    pub fn new(
        personal_product_code: impl Into<String>,
        sign_scene: impl Into<String>,
        channel: AccessChannel,
    ) -> Self {
        UserAgreementPageSign {
            personal_product_code: personal_product_code.into(),
            sign_scene: sign_scene.into(),
            access_params: channel.into(),
            external_agreement_no: None,
            product_code: None,
            period_rule_params: None,
            external_logon_id: None,
            sign_validity_period: None,
            agreement_effect_type: None,
            merchant_process_url: None,
            third_party_type: None,
            extra: ExtraFields::new(),
        }
    }
    /// A periodic-deduction agreement (`CYCLE_PAY_AUTH_P`, `GENERAL_WITHHOLDING`).
    pub fn cycle_pay(
        sign_scene: impl Into<String>,
        external_agreement_no: impl Into<String>,
        channel: AccessChannel,
        rule: PeriodRule,
    ) -> Self {
        let mut s =
            UserAgreementPageSign::new(CYCLE_PAY_PERSONAL_PRODUCT_CODE, sign_scene, channel);
        s.external_agreement_no = Some(external_agreement_no.into());
        s.product_code = Some(GENERAL_WITHHOLDING.into());
        s.period_rule_params = Some(rule);
        s
    }
    /// Sets `period_rule_params`.
    #[must_use]
    pub fn period_rule(mut self, rule: PeriodRule) -> Self {
        self.period_rule_params = Some(rule);
        self
    }
    /// Adds a business field this type does not model.
    #[must_use]
    pub fn extra_field(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }
}

text_setters!(UserAgreementPageSign {
    external_agreement_no,
    product_code,
    external_logon_id,
    sign_validity_period,
    agreement_effect_type,
    merchant_process_url,
    third_party_type,
});

impl BizContent for UserAgreementPageSign {
    fn method(&self) -> &str {
        "alipay.user.agreement.page.sign"
    }
    fn validate(&self) -> Result<()> {
        check_sign_fields(
            &self.personal_product_code,
            &self.sign_scene,
            self.external_agreement_no.as_deref(),
            self.period_rule_params.as_ref(),
        )?;
        check_validity_period(self.sign_validity_period.as_deref())?;
        if let Some(t) = self.agreement_effect_type.as_deref()
            && !matches!(t, "DIRECT" | "NOTICE")
        {
            return Err(Error::field(
                "agreement_effect_type",
                "expected DIRECT or NOTICE",
            ));
        }
        Ok(())
    }
}

/// The in-app signing link for a signed [`UserAgreementPageSign`] (channel
/// [`AccessChannel::AlipayApp`]): the Alipay app's signing centre with the
/// whole signed parameter set, URL-encoded once more, as `sign_params`.
pub fn app_sign_link(signed: &SignedRequest) -> String {
    let query = signed.to_query_string();
    let encoded: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    format!("{APP_SIGN_LINK_PREFIX}{encoded}")
}

/// Which agreement a query or unsign is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AgreementRef {
    /// Alipay's `agreement_no` (wins over everything else at Alipay).
    AgreementNo {
        /// Alipay's agreement number.
        agreement_no: String,
    },
    /// The merchant's number, which is only unique within product and scene.
    External {
        /// Personal product code.
        personal_product_code: String,
        /// Signing scene.
        sign_scene: String,
        /// The merchant's agreement number.
        external_agreement_no: String,
    },
}

impl AgreementRef {
    fn validate(&self) -> Result<()> {
        match self {
            AgreementRef::AgreementNo { agreement_no } => {
                check_id("agreement_no", agreement_no, 64)
            }
            AgreementRef::External {
                personal_product_code,
                sign_scene,
                external_agreement_no,
            } => check_agreement_identity(
                personal_product_code,
                sign_scene,
                Some(external_agreement_no),
            ),
        }
    }
}

/// `alipay.user.agreement.query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserAgreementQuery {
    /// The agreement.
    #[serde(flatten)]
    pub agreement: AgreementRef,
}

impl UserAgreementQuery {
    /// By Alipay's agreement number.
    pub fn by_agreement_no(agreement_no: impl Into<String>) -> Self {
        UserAgreementQuery {
            agreement: AgreementRef::AgreementNo {
                agreement_no: agreement_no.into(),
            },
        }
    }
    /// By the merchant's number within a product and scene.
    pub fn by_external_agreement_no(
        personal_product_code: impl Into<String>,
        sign_scene: impl Into<String>,
        external_agreement_no: impl Into<String>,
    ) -> Self {
        UserAgreementQuery {
            agreement: AgreementRef::External {
                personal_product_code: personal_product_code.into(),
                sign_scene: sign_scene.into(),
                external_agreement_no: external_agreement_no.into(),
            },
        }
    }
}

impl BizContent for UserAgreementQuery {
    fn method(&self) -> &str {
        "alipay.user.agreement.query"
    }
    fn validate(&self) -> Result<()> {
        self.agreement.validate()
    }
}

impl ApiRequest for UserAgreementQuery {
    type Response = AgreementQueryResponse;
    fn retry_safe(&self) -> bool {
        true
    }
}

/// An agreement's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum AgreementStatus {
    /// Created, never in force.
    Temp,
    /// In force: deductions allowed.
    Normal,
    /// Suspended.
    Stop,
    /// Ended (by the buyer or the merchant).
    Unsign,
}

impl AgreementStatus {
    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TEMP" => AgreementStatus::Temp,
            "NORMAL" => AgreementStatus::Normal,
            "STOP" => AgreementStatus::Stop,
            "UNSIGN" => AgreementStatus::Unsign,
            _ => return None,
        })
    }
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AgreementStatus::Temp => "TEMP",
            AgreementStatus::Normal => "NORMAL",
            AgreementStatus::Stop => "STOP",
            AgreementStatus::Unsign => "UNSIGN",
        }
    }
    /// Only `NORMAL` allows deductions.
    pub fn is_active(&self) -> bool {
        *self == AgreementStatus::Normal
    }
}

/// Answer of `alipay.user.agreement.query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgreementQueryResponse {
    /// Alipay's agreement number.
    pub agreement_no: String,
    /// The agreement's state.
    pub status: AgreementStatus,
    /// The merchant's agreement number.
    pub external_agreement_no: Option<String>,
    /// Personal product code.
    pub personal_product_code: Option<String>,
    /// Signing scene.
    pub sign_scene: Option<String>,
    /// The signer's `2088…` user id.
    pub principal_id: Option<String>,
    /// The signer's open id (newer apps).
    pub principal_open_id: Option<String>,
    /// Masked Alipay login.
    pub alipay_logon_id: Option<String>,
    /// The buyer's login at the merchant.
    pub external_logon_id: Option<String>,
    /// Signing time (`yyyy-MM-dd HH:mm:ss`).
    pub sign_time: Option<String>,
    /// In force from.
    pub valid_time: Option<String>,
    /// In force until.
    pub invalid_time: Option<String>,
    /// The most one deduction may take.
    pub single_quota: Option<Amount>,
    /// `PARTNER` or `MERCHANT`.
    pub third_party_type: Option<String>,
}

/// `alipay.user.agreement.unsign`: the merchant ends an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct UserAgreementUnsign {
    /// The agreement.
    #[serde(flatten)]
    pub agreement: AgreementRef,
    /// Extension parameters (JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extend_params: Option<String>,
}

impl UserAgreementUnsign {
    /// By Alipay's agreement number.
    pub fn by_agreement_no(agreement_no: impl Into<String>) -> Self {
        UserAgreementUnsign {
            agreement: AgreementRef::AgreementNo {
                agreement_no: agreement_no.into(),
            },
            extend_params: None,
        }
    }
    /// By the merchant's number within a product and scene.
    pub fn by_external_agreement_no(
        personal_product_code: impl Into<String>,
        sign_scene: impl Into<String>,
        external_agreement_no: impl Into<String>,
    ) -> Self {
        UserAgreementUnsign {
            agreement: AgreementRef::External {
                personal_product_code: personal_product_code.into(),
                sign_scene: sign_scene.into(),
                external_agreement_no: external_agreement_no.into(),
            },
            extend_params: None,
        }
    }
}

text_setters!(UserAgreementUnsign { extend_params });

impl BizContent for UserAgreementUnsign {
    fn method(&self) -> &str {
        "alipay.user.agreement.unsign"
    }
    fn validate(&self) -> Result<()> {
        self.agreement.validate()
    }
}

impl ApiRequest for UserAgreementUnsign {
    type Response = AgreementUnsignResponse;
    // Ending an agreement twice ends it once; a repeat after success answers
    // an error, and the caller queries.
    fn retry_safe(&self) -> bool {
        true
    }
}

/// Answer of `alipay.user.agreement.unsign` (no business fields: `code=10000`
/// is the answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AgreementUnsignResponse {}

/// `alipay.user.agreement.executionplan.modify`: move the next deduction date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AgreementExecutionPlanModify {
    /// Alipay's agreement number.
    pub agreement_no: String,
    /// The next deduction date (`yyyy-MM-dd`).
    #[serde(serialize_with = "serialize_date")]
    pub deduct_time: Date,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

impl AgreementExecutionPlanModify {
    /// Moves the next deduction of `agreement_no` to `deduct_time`.
    pub fn new(agreement_no: impl Into<String>, deduct_time: Date) -> Self {
        AgreementExecutionPlanModify {
            agreement_no: agreement_no.into(),
            deduct_time,
            memo: None,
        }
    }
}

text_setters!(AgreementExecutionPlanModify { memo });

impl BizContent for AgreementExecutionPlanModify {
    fn method(&self) -> &str {
        "alipay.user.agreement.executionplan.modify"
    }
    fn validate(&self) -> Result<()> {
        check_id("agreement_no", &self.agreement_no, 64)?;
        check_len("memo", self.memo.as_deref(), 1000)
    }
}

impl ApiRequest for AgreementExecutionPlanModify {
    type Response = ExecutionPlanModifyResponse;
    // Setting the same date twice leaves the same plan.
    fn retry_safe(&self) -> bool {
        true
    }
}

/// Answer of `alipay.user.agreement.executionplan.modify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionPlanModifyResponse {
    /// Alipay's agreement number.
    pub agreement_no: Option<String>,
    /// The new deduction date as Alipay records it.
    pub deduct_time: Option<String>,
}

/// `agreement_params` of a deduction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AgreementParams {
    /// Alipay's agreement number.
    pub agreement_no: String,
    /// Payment authentication token, when the product requires one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_token: Option<String>,
    /// Payment authentication confirmation, when the product requires one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_confirm_no: Option<String>,
}

/// A deduction: `alipay.trade.pay` with `product_code=GENERAL_WITHHOLDING`
/// and `agreement_params`, charged without the buyer present. The answer is
/// the same as a barcode payment's ([`PayResponse`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TradeAgreementPay {
    /// Merchant order number (derive it from agreement + period, so a rerun
    /// cannot charge a period twice).
    pub out_trade_no: OutTradeNo,
    /// Amount to charge (within the rule's `single_amount`).
    pub total_amount: Amount,
    /// Order title.
    pub subject: String,
    /// Always `GENERAL_WITHHOLDING`.
    pub product_code: String,
    /// The agreement charged.
    pub agreement_params: AgreementParams,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Relative timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_express: Option<String>,
    /// Absolute deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_expire: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: ExtraFields,
}

impl TradeAgreementPay {
    /// Charges `total_amount` to `agreement_no`.
    pub fn new(
        out_trade_no: OutTradeNo,
        total_amount: Amount,
        subject: impl Into<String>,
        agreement_no: impl Into<String>,
    ) -> Self {
        TradeAgreementPay {
            out_trade_no,
            total_amount,
            subject: subject.into(),
            product_code: GENERAL_WITHHOLDING.into(),
            agreement_params: AgreementParams {
                agreement_no: agreement_no.into(),
                apply_token: None,
                auth_confirm_no: None,
            },
            body: None,
            timeout_express: None,
            time_expire: None,
            extra: ExtraFields::new(),
        }
    }
    /// Sets `agreement_params.apply_token` and `auth_confirm_no`.
    #[must_use]
    pub fn payment_authentication(
        mut self,
        apply_token: impl Into<String>,
        auth_confirm_no: impl Into<String>,
    ) -> Self {
        self.agreement_params.apply_token = Some(apply_token.into());
        self.agreement_params.auth_confirm_no = Some(auth_confirm_no.into());
        self
    }
}

text_setters!(TradeAgreementPay {
    body,
    timeout_express,
    time_expire
});

impl BizContent for TradeAgreementPay {
    fn method(&self) -> &str {
        "alipay.trade.pay"
    }
    fn validate(&self) -> Result<()> {
        self.total_amount.require_payable()?;
        check_subject(&self.subject)?;
        check_len("body", self.body.as_deref(), 128)?;
        check_timeout_express("timeout_express", self.timeout_express.as_deref())?;
        check_time_expire(self.time_expire.as_deref())?;
        check_id("agreement_no", &self.agreement_params.agreement_no, 64)
    }
}

impl ApiRequest for TradeAgreementPay {
    type Response = PayResponse;
}
