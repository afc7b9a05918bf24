//! Refunds: creating one (idempotent, its `out_request_no` fixed when first
//! stored) and driving it to Alipay until the outcome is definite — each
//! refund by one holder at a time (its lease), each call in the trade's
//! refund slot (Alipay's spacing), and never marked failed on a refusal
//! alone. Alipay never executes one `out_request_no` twice, so re-sending a
//! refund whose outcome is unknown is safe.

use alipay::{Amount, RequestOptions, TradeRef, TradeRefund, TradeRefundQuery};
use zhifu_store::{
    ApplyResult, CreateRefundOutcome, EventType, NewNotification, NewRefund, Order, Refund,
    RefundOrigin, RefundResult, RefundSlot, RefundStatus, UpdateSource, new_id,
};

use super::commit::settle_refund;
use super::error::PaymentError;
use super::orders::{Created, load};
use crate::domain::{amount, duration_ms as ms, fen, request_hash, yuan};
use crate::error::chain;
use crate::state::AppState;

/// What a merchant asks for when refunding.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    /// How much.
    pub amount: Amount,
    /// Why (shown to the buyer by Alipay).
    pub reason: Option<String>,
    /// The `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
}

/// The `out_request_no` of a refund: derived from the idempotency key when
/// there is one, so a retry can never become a second refund at Alipay even
/// if our own record of the first attempt were lost.
fn out_request_no(order_id: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("R{}", &request_hash(&["refund-key", order_id, k])[..31]),
        None => format!("R{}", uuid::Uuid::now_v7().simple())
            .chars()
            .take(32)
            .collect(),
    }
}

/// Refunds part or all of a paid order.
///
/// The request that creates a refund sends it (it holds the refund's lease
/// from the moment it is stored); a retry with the same key only reads it.
/// No request ever sends another refund: pending ones are the reconcile
/// pass's job. When another refund of the trade was sent less than the
/// spacing ago, the new one is returned `pending` and sent by a later pass.
///
/// # Errors
/// An unknown order, an order that is not paid, an amount above what is
/// left, a reused key with another request, store failures. Alipay's
/// failures do not fail the call: the refund is returned `pending` (outcome
/// unknown) or `failed` (Alipay refused it and a refund query confirmed
/// that no money moved).
pub async fn create_refund(
    st: &AppState,
    order_id: &str,
    req: RefundRequest,
) -> Result<Created<Refund>, PaymentError> {
    let order = load(st, order_id).await?;
    let hash = request_hash(&[
        "refund",
        &req.amount.fen().to_string(),
        req.reason.as_deref().unwrap_or("\u{1}"),
    ]);
    let key = req.idempotency_key;
    let now = st.now_ms();
    let new = NewRefund {
        id: new_id("rf"),
        order_id: order.id.clone(),
        out_request_no: out_request_no(&order.id, key.as_deref()),
        amount_fen: fen(req.amount),
        reason: req.reason,
        idempotency_key: key,
        request_hash: Some(hash.clone()),
        created_at: now,
        lease_until: now.saturating_add(ms(st.money().refund_lease)),
    };
    match st.store().create_refund(new).await? {
        // The creator may wait once for the trade's refund slot (at most
        // the spacing, 3 s by default), so that two refunds in a row both
        // go out now; beyond that the refund is answered `pending`.
        CreateRefundOutcome::Created(r) => Ok(Created {
            value: send_refund(st, &order, r, st.money().refund_spacing).await?,
            replayed: false,
        }),
        CreateRefundOutcome::Existing(r) => {
            if r.request_hash.as_deref() != Some(hash.as_str()) {
                return Err(PaymentError::IdempotencyKeyReused);
            }
            Ok(Created {
                value: r,
                replayed: true,
            })
        }
        CreateRefundOutcome::NotPaid(s) => Err(PaymentError::NotRefundable(s)),
        CreateRefundOutcome::ExceedsRemaining { remaining_fen } => {
            Err(PaymentError::RefundExceedsRemaining {
                remaining: yuan(remaining_fen),
            })
        }
    }
}

/// Sends (or re-sends, with the same `out_request_no`) a pending refund
/// that the caller holds the lease of, and settles it through
/// [`settle_refund`] when the outcome is definite:
///
/// - the call starts only when the order's refund slot is free (Alipay's
///   spacing between refunds of one trade); otherwise the refund stays
///   pending, due when the slot frees;
/// - `fund_change=Y` settles it as succeeded; `N` means this call moved no
///   money, and the refund query says whether an earlier one did;
/// - a business refusal is **not** trusted alone: a refund is marked failed
///   only when `alipay.trade.fastpay.refund.query` confirms that Alipay has
///   no refund for this `out_request_no` (a duplicate send can be refused
///   while the first one succeeded);
/// - anything else (timeout, 20000, unverifiable answer) leaves it pending;
///   re-sending later is safe, Alipay never executes one `out_request_no`
///   twice.
///
/// # Errors
/// Store failures.
pub async fn drive_refund(
    st: &AppState,
    order: &Order,
    refund: Refund,
) -> Result<Refund, PaymentError> {
    send_refund(st, order, refund, std::time::Duration::ZERO).await
}

/// [`drive_refund`], waiting up to `patience` (once) for the trade's
/// refund slot when another refund holds it.
async fn send_refund(
    st: &AppState,
    order: &Order,
    refund: Refund,
    patience: std::time::Duration,
) -> Result<Refund, PaymentError> {
    let spacing = ms(st.money().refund_spacing);
    let mut waited = false;
    let refund = loop {
        match st
            .store()
            .take_refund_slot(&refund.id, st.now_ms(), spacing)
            .await?
        {
            RefundSlot::Granted(r) => break r,
            RefundSlot::Settled(r) => return Ok(r),
            RefundSlot::Wait { until } => {
                let wait = until.saturating_sub(st.now_ms());
                if waited || wait > ms(patience) {
                    tracing::debug!(refund = %refund.id, until, "refund waits for the trade's refund spacing");
                    return Ok(refund);
                }
                waited = true;
                let wait = u64::try_from(wait.max(0)).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
        }
    };
    let mut req = TradeRefund::new(
        TradeRef::OutTradeNo(order.out_trade_no.clone()),
        amount(refund.amount_fen, "amount_fen")?,
        refund.out_request_no.clone(),
    );
    req.refund_reason = refund.reason.clone();
    let result = match st.call_once(&req, &RequestOptions::default()).await {
        Ok(resp) if resp.fund_changed() => succeeded(
            st,
            order,
            Some(fen(resp.refund_fee)),
            serde_json::to_string(&resp).ok(),
        ),
        Ok(resp) => match refund_query(st, order, &refund).await {
            Some(true) => succeeded(
                st,
                order,
                Some(fen(resp.refund_fee)),
                serde_json::to_string(&resp).ok(),
            ),
            _ => return Ok(refund),
        },
        Err(e) if e.is_unknown_outcome() => return Ok(refund),
        Err(alipay::Error::Gateway(g)) => match refund_query(st, order, &refund).await {
            Some(true) => succeeded(st, order, None, Some(g.node.clone())),
            Some(false) => RefundResult::Failed {
                code: g.reason().to_owned(),
                at: st.now_ms(),
            },
            None => {
                tracing::warn!(refund = %refund.id, code = g.reason(), "refund refused, but the refund query did not answer; left pending");
                return Ok(refund);
            }
        },
        Err(e) => {
            // A response we could not verify: the outcome is unknown.
            tracing::warn!(refund = %refund.id, error = %chain(&e), "refund outcome unknown");
            return Ok(refund);
        }
    };
    crate::fault::point(crate::fault::REFUND_CALLED).await;
    Ok(settle_refund(st, order, &refund, &result).await?)
}

/// Whether Alipay has the refund: `Some(true)` refunded, `Some(false)` a
/// verified answer without `refund_status=REFUND_SUCCESS` (no refund under
/// this `out_request_no`), `None` no usable answer.
async fn refund_query(st: &AppState, order: &Order, refund: &Refund) -> Option<bool> {
    let q = TradeRefundQuery::new(
        TradeRef::OutTradeNo(order.out_trade_no.clone()),
        refund.out_request_no.clone(),
    );
    match st.call(&q, &RequestOptions::default()).await {
        Ok(a) => Some(a.succeeded()),
        // A trade Alipay does not know has no refund either.
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => Some(false),
        Err(e) => {
            tracing::warn!(refund = %refund.id, error = %chain(&e), "refund query failed");
            None
        }
    }
}

fn succeeded(
    st: &AppState,
    order: &Order,
    refund_fee: Option<i64>,
    payload: Option<String>,
) -> RefundResult {
    RefundResult::Succeeded {
        refund_fee,
        record: NewNotification {
            id: new_id("ntf"),
            order_id: Some(order.id.clone()),
            out_trade_no: Some(order.out_trade_no.clone()),
            notify_id: None,
            source: UpdateSource::Refund,
            trade_status: None,
            anomaly: Vec::new(),
            payload,
            received_at: st.now_ms(),
        },
    }
}

/// After a commit that took a payment for a closed order: sends the refund
/// the policy recorded (durable already, leased to us), so the money goes
/// back now rather than at the next reconcile pass. Failures leave it
/// pending for that pass.
pub async fn after_late_payment(st: &AppState, result: &ApplyResult) {
    if result.events.contains(&EventType::PaidAfterClose) {
        drive_late_refund(st, &result.order).await;
    }
}

async fn drive_late_refund(st: &AppState, order: &Order) {
    let refunds = match st.store().list_refunds(&order.id).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(order = %order.id, error = %chain(&e), "late refund left to reconcile");
            return;
        }
    };
    for r in refunds {
        if r.origin == RefundOrigin::PaidAfterClose
            && r.status == RefundStatus::Pending
            && let Err(e) = drive_refund(st, order, r).await
        {
            tracing::warn!(order = %order.id, error = %chain(&e), "late refund left to reconcile");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_request_no_is_stable_per_key_and_valid() {
        let a = out_request_no("ord_1", Some("k"));
        assert_eq!(a, out_request_no("ord_1", Some("k")));
        assert_ne!(a, out_request_no("ord_2", Some("k")));
        assert_ne!(out_request_no("ord_1", None), out_request_no("ord_1", None));
        for s in [a, out_request_no("o", None)] {
            assert!(
                s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{s}"
            );
        }
    }
}
