//! Charging subscriptions, run by the reconcile pass ([`charge_due`]):
//! each due period is charged by one order whose `out_trade_no` is derived
//! from the subscription and the period (`{external_agreement_no}P{period}`),
//! made once per period by the store; `alipay.trade.pay` with
//! `GENERAL_WITHHOLDING` is called once per attempt, and a rerun sends the
//! same `out_trade_no`, which Alipay charges at most once (a paid one
//! answers `ACQ.TRADE_HAS_SUCCESS`, then the trade is queried). A refused
//! charge is retried on [`CHARGE_RETRY_DELAYS`], then the subscription is
//! `past_due` (docs/agreements.md §8).

use alipay::agreement::TradeAgreementPay;
use alipay::{OutTradeNo, RequestOptions, TradeStatus};
use zhifu_store::{
    AnomalyReason, ChargeResult, NewOrder, Order, OrderStatus, StoreError, Subscription,
    SubscriptionStatus, UpdateSource, new_id,
};

use super::commit::{Report, commit_report};
use super::error::PaymentError;
use super::subscriptions::{flush, refresh_subscription};
use super::trade::{apply_query, refresh_order};
use crate::domain::{amount, due_at, epoch_ms, fen, parse_date, period_date, stored_unit};
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
/// Alipay's answer to a rerun of a period it already charged.
const CHARGE_PAID_ALREADY: &str = "ACQ.TRADE_HAS_SUCCESS";

/// Refusals about the agreement rather than the buyer's money: before one
/// counts as a failed attempt, the agreement is queried (it may have ended).
const AGREEMENT_REFUSALS: [&str; 2] =
    ["ACQ.AGREEMENT_NOT_EXIST", "ACQ.AGREEMENT_STATUS_NOT_NORMAL"];

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
