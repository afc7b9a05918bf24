//! Refunds: creating one (idempotent, its `out_request_no` fixed when first
//! stored) and driving it to Alipay until the outcome is definite. Alipay
//! never executes one `out_request_no` twice, so re-sending a refund whose
//! outcome is unknown is safe.

use alipay::{Amount, RequestOptions, TradeRef, TradeRefund, TradeRefundQuery};
use zhifu_store::{
    CreateRefundOutcome, NewNotification, NewRefund, Order, Refund, RefundResult, RefundStatus,
    UpdateSource, new_id,
};

use super::commit::settle_refund;
use super::error::PaymentError;
use super::orders::{Created, load};
use crate::domain::{amount, fen, request_hash, yuan};
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
/// # Errors
/// An unknown order, an order that is not paid, an amount above what is
/// left, a reused key with another request, store failures. Alipay's
/// failures do not fail the call: the refund is returned `pending` (outcome
/// unknown) or `failed` (Alipay refused it).
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
    // Earlier refunds whose outcome is unknown are settled first: their
    // amount must be known before more money is promised.
    for earlier in st.store().list_refunds(&order.id).await? {
        let same_request = key.is_some() && earlier.idempotency_key == key;
        if earlier.status == RefundStatus::Pending && !same_request {
            drive_refund(st, &order, earlier).await?;
        }
    }
    let new = NewRefund {
        id: new_id("rf"),
        order_id: order.id.clone(),
        out_request_no: out_request_no(&order.id, key.as_deref()),
        amount_fen: fen(req.amount),
        reason: req.reason,
        idempotency_key: key,
        request_hash: Some(hash.clone()),
        created_at: st.now_ms(),
    };
    match st.store().create_refund(new).await? {
        CreateRefundOutcome::Created(r) => Ok(Created {
            value: drive_refund(st, &order, r).await?,
            replayed: false,
        }),
        CreateRefundOutcome::Existing(r) => {
            if r.request_hash.as_deref() != Some(hash.as_str()) {
                return Err(PaymentError::IdempotencyKeyReused);
            }
            let r = if r.status == RefundStatus::Pending {
                drive_refund(st, &order, r).await?
            } else {
                r
            };
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

/// Sends (or re-sends, with the same `out_request_no`) a pending refund and
/// settles it through [`settle_refund`] when Alipay's answer is definite.
/// An unknown outcome leaves it pending; re-sending later is safe.
///
/// # Errors
/// Store failures.
pub async fn drive_refund(
    st: &AppState,
    order: &Order,
    refund: Refund,
) -> Result<Refund, PaymentError> {
    let mut req = TradeRefund::new(
        TradeRef::OutTradeNo(order.out_trade_no.clone()),
        amount(refund.amount_fen, "amount_fen")?,
        refund.out_request_no.clone(),
    );
    req.refund_reason = refund.reason.clone();
    let result = match st.call(&req, &RequestOptions::default()).await {
        Ok(resp) => {
            // `fund_change=N` means this call moved no money: either an
            // earlier attempt did, or nothing happened. The refund query tells.
            let confirmed = resp.fund_changed() || {
                let q = TradeRefundQuery {
                    trade: TradeRef::OutTradeNo(order.out_trade_no.clone()),
                    out_request_no: refund.out_request_no.clone(),
                    query_options: None,
                };
                st.call(&q, &RequestOptions::default())
                    .await
                    .is_ok_and(|a| a.succeeded())
            };
            if !confirmed {
                return Ok(refund);
            }
            RefundResult::Succeeded {
                refund_fee: Some(fen(resp.refund_fee)),
                record: NewNotification {
                    id: new_id("ntf"),
                    order_id: Some(order.id.clone()),
                    out_trade_no: Some(order.out_trade_no.clone()),
                    notify_id: None,
                    source: UpdateSource::Refund,
                    trade_status: None,
                    anomaly: Vec::new(),
                    payload: serde_json::to_string(&resp).ok(),
                    received_at: st.now_ms(),
                },
            }
        }
        Err(e) if e.is_unknown_outcome() => return Ok(refund),
        Err(alipay::Error::Gateway(g)) => RefundResult::Failed {
            code: g.reason().to_owned(),
            at: st.now_ms(),
        },
        Err(e) => {
            // A response we could not verify: the outcome is unknown.
            tracing::warn!(refund = %refund.id, error = %chain(&e), "refund outcome unknown");
            return Ok(refund);
        }
    };
    Ok(settle_refund(st, order, &refund, &result).await?)
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
