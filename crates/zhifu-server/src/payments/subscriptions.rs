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
//! - **Charges** ([`charge_due`], run by the reconcile pass): each due
//!   period is charged by one order whose `out_trade_no` is derived from the
//!   subscription and the period (`{external_agreement_no}P{period}`), made
//!   once per period by the store; `alipay.trade.pay` with
//!   `GENERAL_WITHHOLDING` is called once per attempt, and a rerun sends the
//!   same `out_trade_no`, which Alipay charges at most once (a paid one
//!   answers `ACQ.TRADE_HAS_SUCCESS`, then the trade is queried). A refused
//!   charge is retried on [`CHARGE_RETRY_DELAYS`], then the subscription
//!   is `past_due`.
//! - **Cancel** ([`cancel_subscription`]): `alipay.user.agreement.unsign`,
//!   then `canceled`.

use alipay::agreement::{
    AccessChannel, AgreementNotification, AgreementNotifyType, AgreementStatus, ExpectedAgreement,
    PeriodRule, PeriodType, TradeAgreementPay, UserAgreementPageSign, UserAgreementQuery,
    UserAgreementUnsign, app_sign_link,
};
use alipay::{Amount, FormParams, OutTradeNo, RequestOptions, TradeStatus, Verified};
use time::{Date, OffsetDateTime};
use zhifu_store::{
    AnomalyReason, ChargeResult, CreateSubscriptionOutcome, NewOrder, NewSubscription, Order,
    OrderStatus, StoreError, Subscription, SubscriptionStatus, UpdateSource, new_id,
};

use super::commit::{Claim, Evidence, Report, commit_report, record_refused};
use super::error::PaymentError;
use super::orders::{Created, MAX_METADATA_BYTES, MAX_RETURN_URL_LEN};
use super::trade::{apply_query, refresh_order};
use crate::config::WebhookDelivery;
pub use crate::domain::{PeriodUnit, next_charge_date, period_date};
use crate::domain::{
    add_months, amount, beijing_date, due_at, epoch_ms, fen, format_date, parse_date, request_hash,
    stored_unit,
};
use crate::error::chain;
use crate::state::AppState;

/// Waits before retrying a period whose charge Alipay refused; after the
/// last, the subscription is `past_due`. Three attempts over three days:
/// a buyer short of balance has time to top up, and a period is never
/// charged later than the next one is due for a monthly plan.
pub const CHARGE_RETRY_DELAYS: [std::time::Duration; 2] = [
    std::time::Duration::from_secs(24 * 3600),
    std::time::Duration::from_secs(2 * 24 * 3600),
];

/// When an unknown charge outcome is asked about again.
const UNKNOWN_OUTCOME_RETRY_MS: i64 = 60_000;
/// A period's order stays payable this long: past every retry, so the
/// reconcile pass never closes it while a retry may still charge it.
const CHARGE_ORDER_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most periods one subscription may have.
pub const MAX_PERIODS: i64 = 1200;
/// The personal product of periodic deduction.
const CYCLE_PAY: &str = "CYCLE_PAY_AUTH_P";

/// Alipay's answer to a rerun of a period it already charged.
const CHARGE_PAID_ALREADY: &str = "ACQ.TRADE_HAS_SUCCESS";

/// Refusals about the agreement rather than the buyer's money: before one
/// counts as a failed attempt, the agreement is queried (it may have ended).
const AGREEMENT_REFUSALS: [&str; 2] =
    ["ACQ.AGREEMENT_NOT_EXIST", "ACQ.AGREEMENT_STATUS_NOT_NORMAL"];

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

fn field(e: alipay::Error) -> PaymentError {
    match e {
        alipay::Error::Field { field, problem } => {
            PaymentError::InvalidField(format!("`{field}` {problem}"))
        }
        alipay::Error::Amount { problem, .. } => PaymentError::InvalidAmount(problem.to_string()),
        other => PaymentError::Alipay(other),
    }
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
    r.validate().map_err(field)?;
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

/// The after-commit hook of subscription events, delivered as order
/// events are ([`crate::config::WebhookDelivery`]): after the answer on a
/// long-running server, inline within the budget on a function. Never
/// fails the caller; the outbox keeps what was not delivered.
async fn flush(st: &AppState, subscription_id: &str) {
    let Some(outbox) = st.outbox() else {
        return;
    };
    match outbox.delivery() {
        WebhookDelivery::AfterAnswer => {
            let (st, id) = (st.clone(), subscription_id.to_owned());
            tokio::spawn(async move {
                if let Some(outbox) = st.outbox() {
                    outbox.flush_subscription(&id).await;
                }
            });
        }
        WebhookDelivery::Inline { budget } => {
            if tokio::time::timeout(budget, outbox.flush_subscription(subscription_id))
                .await
                .is_err()
            {
                tracing::info!(subscription = %subscription_id, ?budget, "webhook budget spent; the reconcile pass delivers the rest");
            }
        }
    }
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

/// What one charging pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChargePass {
    /// Subscriptions claimed.
    pub claimed: usize,
    /// Periods charged.
    pub charged: usize,
    /// Charges refused.
    pub failed: usize,
    /// Charges whose outcome is not known yet.
    pub unknown: usize,
}

/// Charges every due period (at most `limit` subscriptions), each claimed
/// with a lease so that concurrent passes never charge the same
/// subscription at once; a pass that dies leaves the period to the next
/// pass, which finds the same order and the same `out_trade_no`.
///
/// # Errors
/// Store failures while claiming.
pub async fn charge_due(
    st: &AppState,
    limit: i64,
    lease_ms: i64,
) -> Result<ChargePass, StoreError> {
    let now = st.now_ms();
    let subs = st
        .store()
        .claim_due_subscriptions(now, now.saturating_add(lease_ms.max(1000)), limit)
        .await?;
    let mut pass = ChargePass {
        claimed: subs.len(),
        ..ChargePass::default()
    };
    for sub in subs {
        match charge_period(st, &sub).await {
            Ok(Charged::Paid) => {
                pass.charged += 1;
                st.metrics().subscription_charge("charged");
            }
            Ok(Charged::Failed) => {
                pass.failed += 1;
                st.metrics().subscription_charge("refused");
            }
            Ok(Charged::Unknown) => {
                pass.unknown += 1;
                st.metrics().subscription_charge("unknown");
            }
            Ok(Charged::Ended) => st.metrics().subscription_charge("ended"),
            Err(e) => {
                pass.unknown += 1;
                st.metrics().subscription_charge("unknown");
                tracing::warn!(subscription = %sub.id, error = %chain(&e), "charge not made; retried after the lease");
            }
        }
    }
    Ok(pass)
}

enum Charged {
    Paid,
    Failed,
    Unknown,
    /// The agreement turned out to be over: the subscription is canceled.
    Ended,
}

/// The order that charges the subscription's current period.
async fn period_order(st: &AppState, sub: &Subscription) -> Result<Order, PaymentError> {
    let period = sub.next_period;
    let out_trade_no = format!("{}P{period}", sub.external_agreement_no);
    let now = st.now_ms();
    let metadata = serde_json::json!({
        "subscription_id": sub.id,
        "period": period,
    })
    .to_string();
    let order = NewOrder {
        id: new_id("ord"),
        out_trade_no,
        subject: sub.subject.clone(),
        body: None,
        total_fen: sub.amount_fen,
        metadata: Some(metadata),
        idempotency_key: None,
        request_hash: None,
        created_at: now,
        expires_at: now + CHARGE_ORDER_LIFETIME_MS,
    };
    Ok(st.store().charge_order(&sub.id, period, order).await?)
}

async fn charge_period(st: &AppState, sub: &Subscription) -> Result<Charged, PaymentError> {
    let period = sub.next_period;
    let agreement_no = sub.agreement_no.clone().ok_or(StoreError::Corrupt {
        column: "agreement_no",
    })?;
    let mut order = period_order(st, sub).await?;
    if matches!(order.status, OrderStatus::Closed | OrderStatus::Closing) {
        // The period's one order can no longer be paid (closed by the
        // merchant, or expired while Alipay could not be asked): another
        // `out_trade_no` would break "one order per period", so the
        // subscription stops, visibly, for the merchant to decide.
        tracing::warn!(subscription = %sub.id, period, order = %order.id, "the period's order is closed; past due");
        if let Some(s) = st
            .store()
            .record_charge(
                &sub.id,
                period,
                &ChargeResult::Failed {
                    order_id: order.id.clone(),
                    retry_at: None,
                    reason: "period order closed".into(),
                },
                st.now_ms(),
            )
            .await?
        {
            flush(st, &s.id).await;
        }
        return Ok(Charged::Failed);
    }
    if order.status == OrderStatus::Pending {
        let req = TradeAgreementPay::new(
            OutTradeNo::new(order.out_trade_no.clone()).map_err(PaymentError::Alipay)?,
            amount(order.total_fen, "total_fen")?,
            order.subject.clone(),
            agreement_no,
        );
        let opts = RequestOptions::new().notify_url(st.notify_url());
        order = match st.call_once(&req, &opts).await {
            Ok(resp) => {
                crate::fault::point(crate::fault::SUBSCRIPTION_CHARGED).await;
                if resp.out_trade_no != order.out_trade_no
                    || fen(resp.total_amount) != order.total_fen
                {
                    return Err(PaymentError::AlipayMismatch(AnomalyReason::AmountMismatch));
                }
                let report = Report {
                    source: UpdateSource::Deduction,
                    notify_id: None,
                    trade_status: TradeStatus::TradeSuccess,
                    trade_no: Some(resp.trade_no.clone()),
                    buyer_logon_id: resp.buyer_logon_id.clone(),
                    buyer_id: resp.buyer_user_id.clone(),
                    paid_at: resp
                        .gmt_payment
                        .as_deref()
                        .and_then(alipay::time::parse_beijing)
                        .map(epoch_ms),
                    refund_fee: None,
                    payload: serde_json::to_string(&resp).ok(),
                };
                commit_report(st, &order, report).await?.order
            }
            Err(alipay::Error::Gateway(g)) if g.reason() == CHARGE_PAID_ALREADY => {
                // An earlier attempt charged it: Alipay's trade says how.
                let q = alipay::TradeQuery::by_out_trade_no(&order.out_trade_no);
                let resp = st
                    .call(&q, &RequestOptions::default())
                    .await
                    .map_err(PaymentError::Alipay)?;
                apply_query(st, &order, resp).await?.order
            }
            Err(e) if e.is_unknown_outcome() => {
                // It may have been charged: the next pass asks again with
                // the same `out_trade_no`, which Alipay charges at most once.
                tracing::warn!(subscription = %sub.id, period, error = %chain(&e), "charge outcome unknown");
                let order = match refresh_order(st, order.clone()).await {
                    Ok(o) => o,
                    Err(_) => order.clone(),
                };
                if order.status != OrderStatus::Paid {
                    st.store()
                        .release_subscription(&sub.id, st.now_ms() + UNKNOWN_OUTCOME_RETRY_MS)
                        .await?;
                    return Ok(Charged::Unknown);
                }
                order
            }
            Err(alipay::Error::Gateway(g)) => {
                let reason = g.reason().to_owned();
                // Refused because of the agreement itself: the buyer may
                // have ended it and its `dut_user_unsign` not reached us
                // (dropped, or still on its way). Alipay's signed word on
                // the agreement decides before a failure is counted.
                if AGREEMENT_REFUSALS.contains(&reason.as_str()) {
                    match refresh_subscription(st, sub.clone()).await {
                        Ok(now) if now.status == SubscriptionStatus::Canceled => {
                            tracing::info!(subscription = %sub.id, period, reason, "charge refused: the agreement has ended");
                            return Ok(Charged::Ended);
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(subscription = %sub.id, error = %chain(&e), "agreement not confirmed; counted as a refusal");
                        }
                    }
                }
                let retry_at = usize::try_from(sub.failed_attempts)
                    .ok()
                    .and_then(|i| CHARGE_RETRY_DELAYS.get(i))
                    .map(|d| st.now_ms() + crate::domain::duration_ms(*d));
                tracing::info!(subscription = %sub.id, period, reason, retry = retry_at.is_some(), "charge refused");
                if let Some(s) = st
                    .store()
                    .record_charge(
                        &sub.id,
                        period,
                        &ChargeResult::Failed {
                            order_id: order.id.clone(),
                            retry_at,
                            reason,
                        },
                        st.now_ms(),
                    )
                    .await?
                {
                    flush(st, &s.id).await;
                }
                return Ok(Charged::Failed);
            }
            Err(e) => return Err(PaymentError::Alipay(e)),
        };
    }
    if !matches!(order.status, OrderStatus::Paid | OrderStatus::Refunded) {
        st.store()
            .release_subscription(&sub.id, st.now_ms() + UNKNOWN_OUTCOME_RETRY_MS)
            .await?;
        return Ok(Charged::Unknown);
    }
    let last = sub.max_periods.is_some_and(|n| period >= n);
    let next_charge_at = if last {
        None
    } else {
        let first = parse_date(&sub.first_charge_date).ok_or(StoreError::Corrupt {
            column: "first_charge_date",
        })?;
        Some(due_at(
            period_date(first, stored_unit(sub)?, sub.period_every, period + 1).ok_or(
                StoreError::Corrupt {
                    column: "period_every",
                },
            )?,
        ))
    };
    if let Some(s) = st
        .store()
        .record_charge(
            &sub.id,
            period,
            &ChargeResult::Paid {
                order_id: order.id.clone(),
                next_charge_at,
            },
            st.now_ms(),
        )
        .await?
    {
        flush(st, &s.id).await;
    }
    Ok(Charged::Paid)
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn period_dates_step_by_days_and_by_calendar_months() {
        let first = date!(2026 - 11 - 28);
        assert_eq!(
            period_date(first, PeriodUnit::Month, 1, 1),
            Some(date!(2026 - 11 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Month, 1, 2),
            Some(date!(2026 - 12 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Month, 1, 4),
            Some(date!(2027 - 02 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Month, 3, 5),
            Some(date!(2027 - 11 - 28))
        );
        assert_eq!(
            period_date(first, PeriodUnit::Day, 7, 3),
            Some(date!(2026 - 12 - 12))
        );
        assert_eq!(period_date(first, PeriodUnit::Day, i64::MAX, 3), None);
    }

    #[test]
    fn a_charge_is_due_at_the_start_of_its_beijing_day() {
        // 2026-12-07 00:00 +08:00 is 2026-12-06 16:00 UTC.
        assert_eq!(
            due_at(date!(2026 - 12 - 07)),
            1_796_601_600_000 - 8 * 3_600_000
        );
        assert_eq!(
            beijing_date(1_796_601_600_000 - 8 * 3_600_000),
            Some(date!(2026 - 12 - 07))
        );
        assert_eq!(
            beijing_date(1_796_601_600_000 - 8 * 3_600_000 - 1),
            Some(date!(2026 - 12 - 06))
        );
    }
}
