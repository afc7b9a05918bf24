//! Subscriptions: Alipay recurring agreements (周期扣款) from the
//! merchant's side (docs/agreements.md).
//!
//! - **Create** ([`create_subscription`]): a `pending_signature` record and
//!   the signed `alipay.user.agreement.page.sign` parameters the buyer opens
//!   (page/wap URL and form, or the in-app `alipays://` link).
//! - **Status** changes only on Alipay's word: a verified `dut_user_sign` /
//!   `dut_user_unsign` notification matched against the record
//!   ([`handle_agreement_notification`]), or a signed
//!   `alipay.user.agreement.query` answer ([`refresh_subscription`]).
//! - **Charges**: [`super::subscription_charges`], run by the reconcile pass.
//! - **Cancel** ([`cancel_subscription`]): `alipay.user.agreement.unsign`,
//!   then `canceled`.

use alipay::agreement::{
    AccessChannel, AgreementNotification, AgreementNotifyType, AgreementStatus, ExpectedAgreement,
    PeriodRule, PeriodType, UserAgreementPageSign, UserAgreementQuery, UserAgreementUnsign,
    app_sign_link,
};
use alipay::{Amount, FormParams, RequestOptions, Verified};
use time::{Date, OffsetDateTime};
use zhifu_store::{
    AnomalyReason, CreateSubscriptionOutcome, NewSubscription, StoreError, Subscription,
    SubscriptionStatus, UpdateSource, new_id,
};

use super::commit::{Claim, Committed, Evidence, after_commit, record_refused};
use super::error::PaymentError;
use super::orders::{Created, MAX_METADATA_BYTES, MAX_RETURN_URL_LEN, alipay_field_error};
pub use crate::domain::{PeriodUnit, next_charge_date, period_date};
use crate::domain::{
    add_months, amount, beijing_date, due_at, fen, format_date, parse_date, request_hash,
    stored_unit,
};
use crate::error::chain;
use crate::state::AppState;

/// Most periods one subscription may have.
pub const MAX_PERIODS: i64 = 1200;
/// The personal product of periodic deduction.
pub(super) const CYCLE_PAY: &str = "CYCLE_PAY_AUTH_P";

/// How the buyer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignChannel {
    /// Desktop web: the signing page shows a QR code to scan.
    Page,
    /// Mobile web: the signing page opens the Alipay app.
    Wap,
    /// Inside a mobile app: the `alipays://` link.
    App,
}

impl SignChannel {
    /// Wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignChannel::Page => "page",
            SignChannel::Wap => "wap",
            SignChannel::App => "app",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "page" => Some(SignChannel::Page),
            "wap" => Some(SignChannel::Wap),
            "app" => Some(SignChannel::App),
            _ => None,
        }
    }

    fn access(self) -> AccessChannel {
        match self {
            SignChannel::Page => AccessChannel::QrCode,
            SignChannel::Wap | SignChannel::App => AccessChannel::AlipayApp,
        }
    }
}

/// What a merchant asks for when creating a subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    /// Title of every charge.
    pub subject: String,
    /// Charged each period.
    pub amount: Amount,
    /// Period unit.
    pub unit: PeriodUnit,
    /// Units per period.
    pub every: i64,
    /// The first charge's date (Beijing); when absent today, or for a
    /// monthly plan after the 28th the 1st of next month.
    pub first_charge_date: Option<Date>,
    /// Most periods.
    pub max_periods: Option<i64>,
    /// How the buyer signs.
    pub channel: SignChannel,
    /// Where Alipay sends the buyer after signing.
    pub return_url: Option<String>,
    /// Merchant data, canonical JSON text.
    pub metadata: Option<String>,
    /// The `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
}

/// What the buyer opens to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignParams {
    /// A signed gateway URL, and the same as an auto-submitting form.
    Redirect {
        /// GET URL.
        url: String,
        /// POST form.
        form_html: String,
    },
    /// The in-app `alipays://` link.
    AppLink(String),
}

fn rule(
    unit: PeriodUnit,
    every: i64,
    first: Date,
    amount: Amount,
    max_periods: Option<i64>,
) -> Result<PeriodRule, PaymentError> {
    let period = u32::try_from(every)
        .map_err(|_| PaymentError::InvalidField("`period.every` is too large".into()))?;
    let mut r = PeriodRule::new(
        match unit {
            PeriodUnit::Day => PeriodType::Day,
            PeriodUnit::Month => PeriodType::Month,
        },
        period,
        first,
        amount,
    );
    if let Some(n) = max_periods {
        let n = u32::try_from(n)
            .map_err(|_| PaymentError::InvalidField("`max_periods` is too large".into()))?;
        r = r.total_payments(n);
    }
    r.validate().map_err(alipay_field_error)?;
    Ok(r)
}

/// Creates a `pending_signature` subscription (idempotent on its key).
///
/// # Errors
/// Rule violations, a reused key with another request, store failures.
pub async fn create_subscription(
    st: &AppState,
    req: SubscriptionRequest,
) -> Result<Created<Subscription>, PaymentError> {
    if req.subject.trim().is_empty() || req.subject.chars().count() > 256 {
        return Err(PaymentError::InvalidField(
            "`subject` must be 1 to 256 characters".into(),
        ));
    }
    if !(1..=366).contains(&req.every) {
        return Err(PaymentError::InvalidField(
            "`period.every` must be between 1 and 366".into(),
        ));
    }
    if req
        .max_periods
        .is_some_and(|n| !(1..=MAX_PERIODS).contains(&n))
    {
        return Err(PaymentError::InvalidField(format!(
            "`max_periods` must be between 1 and {MAX_PERIODS}"
        )));
    }
    if req
        .return_url
        .as_ref()
        .is_some_and(|u| u.len() > MAX_RETURN_URL_LEN)
    {
        return Err(PaymentError::InvalidField(format!(
            "`return_url` is longer than {MAX_RETURN_URL_LEN} bytes"
        )));
    }
    if req
        .metadata
        .as_ref()
        .is_some_and(|t| t.len() > MAX_METADATA_BYTES)
    {
        return Err(PaymentError::InvalidField(format!(
            "`metadata` is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    let now = st.now_ms();
    let today = beijing_date(now).ok_or(StoreError::Corrupt { column: "clock" })?;
    // Monthly plans start on day 1–28 (Alipay's rule): after the 28th the
    // default is the 1st of next month.
    let first = match req.first_charge_date {
        Some(d) => d,
        None if req.unit == PeriodUnit::Month && today.day() > 28 => {
            add_months(today.replace_day(1).unwrap_or(today), 1).unwrap_or(today)
        }
        None => today,
    };
    if first < today {
        return Err(PaymentError::InvalidField(
            "`first_charge_date` is in the past".into(),
        ));
    }
    // Alipay's own rule checks (month day ≤ 28, amounts), before storing.
    rule(req.unit, req.every, first, req.amount, req.max_periods)?;
    let hash = request_hash(&[
        "subscription",
        &req.subject,
        &req.amount.fen().to_string(),
        req.unit.as_str(),
        &req.every.to_string(),
        &req.first_charge_date.map(format_date).unwrap_or_default(),
        &req.max_periods.map(|n| n.to_string()).unwrap_or_default(),
        req.channel.as_str(),
        req.return_url.as_deref().unwrap_or("\u{1}"),
        req.metadata.as_deref().unwrap_or("\u{1}"),
    ]);
    let id = new_id("sub");
    // Letters and digits, at most 32 (docs/agreements.md §1); period charges
    // append `P` and the period, within `out_trade_no`'s 64.
    let external: String = format!("ZS{}", id.trim_start_matches("sub_"))
        .chars()
        .take(32)
        .collect();
    let new = NewSubscription {
        id,
        external_agreement_no: external,
        subject: req.subject,
        amount_fen: fen(req.amount),
        period_unit: req.unit.as_str().into(),
        period_every: req.every,
        first_charge_date: format_date(first),
        first_charge_at: due_at(first),
        max_periods: req.max_periods,
        channel: req.channel.as_str().into(),
        return_url: req.return_url,
        metadata: req.metadata,
        request_hash: req.idempotency_key.as_ref().map(|_| hash.clone()),
        idempotency_key: req.idempotency_key,
        created_at: now,
    };
    match st.store().create_subscription(new).await? {
        CreateSubscriptionOutcome::Created(s) => Ok(Created {
            value: s,
            replayed: false,
        }),
        CreateSubscriptionOutcome::Existing(s) => {
            if s.request_hash.as_deref() == Some(hash.as_str()) {
                Ok(Created {
                    value: s,
                    replayed: true,
                })
            } else {
                Err(PaymentError::IdempotencyKeyReused)
            }
        }
    }
}

/// The subscription with this id.
///
/// # Errors
/// [`PaymentError::SubscriptionNotFound`], store failures.
pub async fn load(st: &AppState, id: &str) -> Result<Subscription, PaymentError> {
    st.store()
        .get_subscription(id)
        .await?
        .ok_or(PaymentError::SubscriptionNotFound)
}

/// The signed signing parameters of a subscription not signed yet
/// (`None` once it left `pending_signature`).
///
/// # Errors
/// Signing failures, corrupt records.
pub fn sign_params(st: &AppState, sub: &Subscription) -> Result<Option<SignParams>, PaymentError> {
    if sub.status != SubscriptionStatus::PendingSignature {
        return Ok(None);
    }
    let channel =
        SignChannel::parse(&sub.channel).ok_or(StoreError::Corrupt { column: "channel" })?;
    let first = parse_date(&sub.first_charge_date).ok_or(StoreError::Corrupt {
        column: "first_charge_date",
    })?;
    let r = rule(
        stored_unit(sub)?,
        sub.period_every,
        first,
        amount(sub.amount_fen, "amount_fen")?,
        sub.max_periods,
    )?;
    let req = UserAgreementPageSign::cycle_pay(
        st.agreement_sign_scene(),
        sub.external_agreement_no.clone(),
        channel.access(),
        r,
    );
    let mut opts = RequestOptions::new().notify_url(st.notify_url());
    if let Some(url) = &sub.return_url {
        opts = opts.return_url(url.clone());
    }
    let core = st.alipay().core();
    // The signed `timestamp` uses the real clock (see `orders::pay`).
    let signed = core
        .sign_request(&req, &opts, OffsetDateTime::now_utc())
        .map_err(PaymentError::Alipay)?;
    Ok(Some(match channel {
        SignChannel::App => SignParams::AppLink(app_sign_link(&signed)),
        SignChannel::Page | SignChannel::Wap => SignParams::Redirect {
            url: signed.to_get_url(core.gateway()),
            form_html: signed.to_post_form(core.gateway()),
        },
    }))
}

fn is_agreement_notification(params: &FormParams) -> bool {
    params
        .get("notify_type")
        .is_some_and(|t| t.starts_with("dut_user_"))
}

/// Whether a verified notification is about an agreement (and so belongs
/// to [`handle_agreement_notification`]).
pub fn is_agreement(verified: &Verified<FormParams>) -> bool {
    is_agreement_notification(verified.get())
}

/// What became of an agreement notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgreementAnswer {
    /// Applied, already applied, or nothing to do: answer `success`.
    Success,
    /// Refused for these reasons (recorded): answer `failure`.
    Refused(Vec<AnomalyReason>),
}

/// A verified agreement notification: typed, matched against the
/// subscription it names (app id, our agreement number, the product, and
/// Alipay's agreement number once known), then applied once.
///
/// # Errors
/// Store failures (answer `failure`; Alipay retries).
pub async fn handle_agreement_notification(
    st: &AppState,
    verified: &Verified<FormParams>,
) -> Result<AgreementAnswer, StoreError> {
    let payload = || Evidence::Verified(Some(verified.get().to_json().to_string()));
    let claimed = |k: &str| {
        verified
            .get()
            .get(k)
            .map(|v| v.chars().take(128).collect::<String>())
    };
    let (claimed_no, claimed_id, claimed_status) = (
        claimed("external_agreement_no").or_else(|| claimed("external_sign_no")),
        claimed("notify_id"),
        claimed("status"),
    );
    let claim = Claim {
        out_trade_no: claimed_no.as_deref(),
        notify_id: claimed_id.as_deref(),
        trade_status: claimed_status.as_deref(),
    };
    let refuse = |reasons: Vec<AnomalyReason>| async move {
        record_refused(st, None, claim, UpdateSource::Notify, &reasons, payload()).await?;
        Ok::<_, StoreError>(AgreementAnswer::Refused(reasons))
    };
    let n = match AgreementNotification::from_verified(verified) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %chain(&e), "verified agreement notification could not be typed");
            return refuse(vec![AnomalyReason::Malformed]).await;
        }
    };
    let Some(no) = n.external_agreement_no.as_deref() else {
        return refuse(vec![AnomalyReason::UnknownOrder]).await;
    };
    let Some(sub) = st.store().get_subscription_by_external_no(no).await? else {
        return refuse(vec![AnomalyReason::UnknownOrder]).await;
    };
    let expected = ExpectedAgreement::new(st.app_id(), &sub.external_agreement_no)
        .personal_product_code(CYCLE_PAY);
    let mut reasons = Vec::new();
    if let Err(mismatches) = n.check_against(&expected) {
        for m in mismatches {
            reasons.push(match m {
                alipay::Mismatch::AppId { .. } => AnomalyReason::AppIdMismatch,
                _ => AnomalyReason::AgreementMismatch,
            });
        }
    }
    if sub
        .agreement_no
        .as_deref()
        .is_some_and(|known| known != n.agreement_no)
    {
        reasons.push(AnomalyReason::AgreementMismatch);
    }
    reasons.dedup();
    if !reasons.is_empty() {
        return refuse(reasons).await;
    }
    let now = st.now_ms();
    match (n.notify_type, n.status) {
        (AgreementNotifyType::Sign, AgreementStatus::Normal) => {
            let buyer = n.alipay_user_id.as_deref().or(n.alipay_open_id.as_deref());
            if let Some(s) = st
                .store()
                .activate_subscription(&sub.id, &n.agreement_no, buyer, now)
                .await?
            {
                tracing::info!(subscription = %s.id, "subscription signed");
                flush(st, &s.id).await;
            }
            Ok(AgreementAnswer::Success)
        }
        (AgreementNotifyType::Unsign, _) | (_, AgreementStatus::Unsign) => {
            if let Some(s) = st.store().cancel_subscription(&sub.id, now).await? {
                tracing::info!(subscription = %s.id, "subscription ended by Alipay or the buyer");
                flush(st, &s.id).await;
            }
            Ok(AgreementAnswer::Success)
        }
        // A sign notification in another state (TEMP, STOP): nothing to do
        // until the agreement is NORMAL; acknowledged so it is not resent.
        _ => Ok(AgreementAnswer::Success),
    }
}

/// The after-commit hook of a subscription's events (the same hook as
/// orders': [`super::commit::after_commit`]).
pub(super) async fn flush(st: &AppState, subscription_id: &str) {
    after_commit(st, Committed::Subscription(subscription_id.to_owned())).await;
}

/// Asks Alipay about the agreement (`alipay.user.agreement.query`) and
/// applies the signed answer: NORMAL activates a pending subscription,
/// UNSIGN cancels. A subscription Alipay has no agreement for yet is
/// returned unchanged.
///
/// # Errors
/// Alipay or store failures.
pub async fn refresh_subscription(
    st: &AppState,
    sub: Subscription,
) -> Result<Subscription, PaymentError> {
    if sub.status.is_final() {
        return Ok(sub);
    }
    let query = match &sub.agreement_no {
        Some(no) => UserAgreementQuery::by_agreement_no(no.clone()),
        None => UserAgreementQuery::by_external_agreement_no(
            CYCLE_PAY,
            st.agreement_sign_scene(),
            sub.external_agreement_no.clone(),
        ),
    };
    let answer = match st.call(&query, &RequestOptions::default()).await {
        Ok(a) => a,
        Err(alipay::Error::Gateway(g)) if g.reason().contains("NOT_EXIST") => return Ok(sub),
        Err(e) => return Err(PaymentError::Alipay(e)),
    };
    if answer.external_agreement_no.as_deref() != Some(sub.external_agreement_no.as_str())
        || sub
            .agreement_no
            .as_deref()
            .is_some_and(|n| n != answer.agreement_no)
    {
        return Err(PaymentError::AlipayMismatch(
            AnomalyReason::AgreementMismatch,
        ));
    }
    let now = st.now_ms();
    let buyer = answer
        .principal_id
        .as_deref()
        .or(answer.principal_open_id.as_deref());
    let changed = match answer.status {
        AgreementStatus::Normal => st
            .store()
            .activate_subscription(&sub.id, &answer.agreement_no, buyer, now)
            .await?
            .is_some(),
        AgreementStatus::Unsign => st
            .store()
            .cancel_subscription(&sub.id, now)
            .await?
            .is_some(),
        _ => false,
    };
    if changed {
        flush(st, &sub.id).await;
    }
    load(st, &sub.id).await
}

/// Ends a subscription: unsigns the agreement at Alipay when it was signed,
/// then records `canceled`. Canceling a canceled one returns it.
///
/// # Errors
/// [`PaymentError::NotCancelable`] for a completed one; Alipay or store
/// failures (nothing changed then).
pub async fn cancel_subscription(
    st: &AppState,
    sub: Subscription,
) -> Result<Subscription, PaymentError> {
    match sub.status {
        SubscriptionStatus::Canceled => return Ok(sub),
        SubscriptionStatus::Completed => return Err(PaymentError::NotCancelable(sub.status)),
        _ => {}
    }
    // An agreement signed while we were not told yet must be unsigned too.
    let sub = match sub.agreement_no {
        Some(_) => sub,
        None => refresh_subscription(st, sub).await?,
    };
    if let Some(no) = &sub.agreement_no
        && sub.status != SubscriptionStatus::Canceled
    {
        match st
            .call(
                &UserAgreementUnsign::by_agreement_no(no.clone()),
                &RequestOptions::default(),
            )
            .await
        {
            Ok(_) => {}
            // Already ended at Alipay (a repeated unsign): confirm by query.
            Err(alipay::Error::Gateway(g)) => {
                tracing::info!(subscription = %sub.id, reason = g.reason(), "unsign refused; asking Alipay");
                let now = refresh_subscription(st, sub.clone()).await?;
                if now.status != SubscriptionStatus::Canceled {
                    return Err(PaymentError::Alipay(alipay::Error::Gateway(g)));
                }
                return Ok(now);
            }
            Err(e) => return Err(PaymentError::Alipay(e)),
        }
    }
    if st
        .store()
        .cancel_subscription(&sub.id, st.now_ms())
        .await?
        .is_some()
    {
        flush(st, &sub.id).await;
    }
    load(st, &sub.id).await
}
