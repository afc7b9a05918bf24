//! The reconcile pass: notifications get lost, so a scheduled job brings
//! every order up to date by asking Alipay.
//!
//! One pass is bounded (a row limit per stage and an optional deadline) and
//! does three things:
//!
//! 1. pending orders older than [`ReconcileOptions::min_age`] (or past their
//!    deadline) are queried with `alipay.trade.query`, and the verified answer
//!    goes through [`crate::payments::commit_report`] — the same state-change
//!    path as notifications; orders past their deadline are closed at Alipay
//!    and then locally ([`payments::refresh_order`]);
//! 2. refunds still `pending` (outcome unknown) are re-sent with their own
//!    `out_request_no`, which Alipay never executes twice, and re-queried when
//!    the answer says no money moved ([`payments::drive_refund`]);
//! 3. subscriptions whose next period is due are charged, each claimed
//!    with the pass's lease; a period is charged by one order with a
//!    derived `out_trade_no` however many passes try
//!    ([`payments::subscription_charges::charge_due`]);
//! 4. webhook events (orders' and subscriptions') whose delivery is due are
//!    delivered (retries with backoff, see [`crate::outbox`]).
//!
//! Every row is *claimed* with a lease before it is worked on (see
//! `zhifu_store::Store::claim_reconcile_orders`), in small batches: passes
//! running at the same time never work on the same row, and a pass killed
//! mid-way leaves at most one batch leased, due again when the lease ends.
//! Everything a pass committed stays committed (events included, so their
//! webhooks are delivered by a later pass).

use std::time::{Duration, Instant};

use serde::Serialize;
use zhifu_store::{OrderStatus, ReconcileClaim, RefundStatus, WebhookState};

pub use crate::config::ReconcileOptions;
use crate::domain::duration_ms as ms;
use crate::payments;
use crate::state::AppState;

/// What a pass did. Serialised as the scheduled handlers' answer and by
/// `zhifu reconcile --json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReconcileReport {
    /// Pending orders asked about.
    pub orders_checked: usize,
    /// Orders that became `paid`.
    pub paid: Vec<String>,
    /// Orders that became `closed`.
    pub closed: Vec<String>,
    /// Refunds re-sent or re-queried.
    pub refunds_checked: usize,
    /// Refunds that became `succeeded`.
    pub refunds_succeeded: Vec<String>,
    /// Refunds that became `failed`.
    pub refunds_failed: Vec<String>,
    /// Subscriptions whose due period was worked on.
    pub subscriptions_checked: usize,
    /// Subscription periods charged in this pass.
    pub subscription_periods_charged: usize,
    /// Subscription charges Alipay refused in this pass.
    pub subscription_charges_failed: usize,
    /// Webhook deliveries attempted.
    pub webhooks_attempted: usize,
    /// Events delivered.
    pub webhooks_delivered: Vec<String>,
    /// Events whose retry budget ran out in this pass.
    pub webhooks_given_up: Vec<String>,
    /// Rows that could not be handled (`id: code`); they are retried by a
    /// later pass when their lease ends.
    pub errors: Vec<String>,
    /// The deadline stopped the pass before the limits did.
    pub stopped_at_deadline: bool,
    /// Records of refused messages naming no order that were pruned.
    pub refused_pruned: u64,
}

impl ReconcileReport {
    /// Whether the pass changed anything.
    pub fn changed_anything(&self) -> bool {
        !(self.paid.is_empty()
            && self.closed.is_empty()
            && self.refunds_succeeded.is_empty()
            && self.refunds_failed.is_empty()
            && self.subscription_periods_charged == 0
            && self.subscription_charges_failed == 0
            && self.webhooks_delivered.is_empty()
            && self.webhooks_given_up.is_empty())
    }
}

/// A short, stable word for a row that failed, for the pass's report.
fn failure_code(e: &payments::PaymentError) -> &'static str {
    use payments::PaymentError as E;
    match e {
        E::Alipay(a) if a.is_unknown_outcome() => "alipay_unavailable",
        E::Alipay(_) => "alipay_error",
        E::AlipayMismatch(_) => "alipay_mismatch",
        E::Store(zhifu_store::StoreError::Database(_)) => "database_unavailable",
        E::OrderNotFound => "order_not_found",
        _ => "internal_error",
    }
}

struct Budget<'a> {
    opts: &'a ReconcileOptions,
    done: usize,
}

impl Budget<'_> {
    /// How many rows to claim next, or `None` when this stage is done.
    fn next_batch(&self, report: &mut ReconcileReport) -> Option<i64> {
        if self.opts.deadline.is_some_and(|d| Instant::now() >= d) {
            report.stopped_at_deadline = true;
            return None;
        }
        let left = self.opts.limit.saturating_sub(self.done);
        let n = left.min(self.opts.batch.max(1));
        (n > 0).then(|| i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// Runs one bounded pass. Never fails as a whole: a row that cannot be
/// handled is reported in [`ReconcileReport::errors`] and left for a later
/// pass; a store failure while claiming ends that stage.
pub async fn run_pass(st: &AppState, opts: &ReconcileOptions) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    orders(st, opts, &mut report).await;
    refunds(st, opts, &mut report).await;
    subscriptions(st, opts, &mut report).await;
    webhooks(st, opts, &mut report).await;
    prune(st, &mut report).await;
    tracing::info!(
        checked = report.orders_checked,
        paid = report.paid.len(),
        closed = report.closed.len(),
        refunds = report.refunds_checked,
        delivered = report.webhooks_delivered.len(),
        errors = report.errors.len(),
        "reconcile pass done"
    );
    report
}

/// Runs a pass every `every` (the first one `every` from now) until the
/// returned handle is aborted or the runtime stops: the built-in scheduler
/// of a long-running server. Passes never overlap within this ticker, and
/// across instances the leases keep them apart.
pub fn spawn_ticker(
    st: AppState,
    opts: ReconcileOptions,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = tokio::time::Instant::now() + every;
        let mut tick = tokio::time::interval_at(start, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_pass(&st, &opts).await;
        }
    })
}

/// How long refused messages that name no order are kept.
pub const REFUSED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How many of them are kept at most, whatever their age.
pub const REFUSED_KEEP: i64 = 10_000;

/// Bounds what strangers left behind: refused records that name no order
/// go after [`REFUSED_RETENTION`], and beyond the newest [`REFUSED_KEEP`].
async fn prune(st: &AppState, report: &mut ReconcileReport) {
    let before = st.now_ms().saturating_sub(ms(REFUSED_RETENTION));
    match st.store().prune_refused(before, REFUSED_KEEP).await {
        Ok(n) => report.refused_pruned = n,
        Err(e) => report.errors.push(format!("prune: {e}")),
    }
}

fn claim(st: &AppState, opts: &ReconcileOptions, limit: i64) -> ReconcileClaim {
    let now = st.now_ms();
    ReconcileClaim {
        now,
        created_before: now.saturating_sub(ms(opts.min_age)),
        lease_until: now.saturating_add(ms(opts.lease)),
        limit,
    }
}

async fn orders(st: &AppState, opts: &ReconcileOptions, report: &mut ReconcileReport) {
    let mut budget = Budget { opts, done: 0 };
    while let Some(n) = budget.next_batch(report) {
        let batch = match st.store().claim_reconcile_orders(&claim(st, opts, n)).await {
            Ok(b) => b,
            Err(e) => {
                report.errors.push(format!("orders: {e}"));
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        budget.done += batch.len();
        for order in batch {
            report.orders_checked += 1;
            let id = order.id.clone();
            match payments::refresh_order(st, order).await {
                Ok(o) if o.status == OrderStatus::Paid || o.status == OrderStatus::Refunded => {
                    report.paid.push(id);
                }
                Ok(o) if o.status == OrderStatus::Closed => report.closed.push(id),
                Ok(_) => {}
                Err(e) => report.errors.push(format!("{id}: {}", failure_code(&e))),
            }
            crate::fault::point(crate::fault::RECONCILE_MID_PASS).await;
        }
    }
}

async fn refunds(st: &AppState, opts: &ReconcileOptions, report: &mut ReconcileReport) {
    let mut budget = Budget { opts, done: 0 };
    while let Some(n) = budget.next_batch(report) {
        let batch = match st
            .store()
            .claim_reconcile_refunds(&claim(st, opts, n))
            .await
        {
            Ok(b) => b,
            Err(e) => {
                report.errors.push(format!("refunds: {e}"));
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        budget.done += batch.len();
        for refund in batch {
            report.refunds_checked += 1;
            let id = refund.id.clone();
            let order = match st.store().get_order(&refund.order_id).await {
                Ok(Some(o)) => o,
                Ok(None) => {
                    report.errors.push(format!("{id}: order_not_found"));
                    continue;
                }
                Err(e) => {
                    report.errors.push(format!("{id}: {e}"));
                    continue;
                }
            };
            match payments::drive_refund(st, &order, refund).await {
                Ok(r) if r.status == RefundStatus::Succeeded => report.refunds_succeeded.push(id),
                Ok(r) if r.status == RefundStatus::Failed => report.refunds_failed.push(id),
                Ok(_) => {}
                Err(e) => report.errors.push(format!("{id}: {}", failure_code(&e))),
            }
        }
    }
}

async fn subscriptions(st: &AppState, opts: &ReconcileOptions, report: &mut ReconcileReport) {
    let mut budget = Budget { opts, done: 0 };
    while let Some(n) = budget.next_batch(report) {
        match payments::subscription_charges::charge_due(st, n, ms(opts.lease)).await {
            Ok(pass) => {
                report.subscriptions_checked += pass.claimed;
                report.subscription_periods_charged += pass.charged;
                report.subscription_charges_failed += pass.failed;
                if pass.claimed == 0 {
                    return;
                }
                budget.done += pass.claimed;
            }
            Err(e) => {
                report.errors.push(format!("subscriptions: {e}"));
                return;
            }
        }
    }
}

async fn webhooks(st: &AppState, opts: &ReconcileOptions, report: &mut ReconcileReport) {
    let Some(outbox) = st.outbox() else {
        return;
    };
    let mut budget = Budget { opts, done: 0 };
    while let Some(n) = budget.next_batch(report) {
        let batch = match outbox.claim_due(ms(opts.lease), n).await {
            Ok(b) => b,
            Err(e) => {
                report.errors.push(format!("webhooks: {e}"));
                return;
            }
        };
        if batch.is_empty() {
            return;
        }
        budget.done += batch.len();
        for event in batch {
            report.webhooks_attempted += 1;
            match outbox.deliver_claimed(&event).await {
                Ok(r) if r.state == WebhookState::Delivered => {
                    report.webhooks_delivered.push(r.event_id);
                }
                Ok(r) if r.state == WebhookState::Failed => {
                    report.webhooks_given_up.push(r.event_id);
                }
                Ok(_) => {}
                Err(e) => report.errors.push(format!("{}: {e}", event.id)),
            }
        }
    }
    let limit = i64::try_from(opts.limit).unwrap_or(i64::MAX);
    match outbox.deliver_due_subscription_events(limit).await {
        Ok(n) => report.webhooks_attempted += n,
        Err(e) => report.errors.push(format!("subscription webhooks: {e}")),
    }
}
