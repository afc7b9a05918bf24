//! Asking Alipay about a trade and acting on the verified answer: the
//! active query (`?refresh=true`, the return page, the reconcile pass) and
//! closing an order so that it cannot strand money: an order is reported
//! `closed` only when no live payment parameters remain (docs/protocol.md
//! §5.3: page/wap/app/QR trades exist at Alipay only once the buyer acts).

use alipay::{QueryResponse, RequestOptions, TradeCancel, TradeClose, TradeQuery, TradeRef};
use zhifu_store::{AnomalyReason, ApplyResult, Order, OrderStatus, UpdateSource};

use super::commit::{Claim, Evidence, Report, commit_report, record_refused};
use super::error::PaymentError;
use super::refunds::after_late_payment;
use crate::domain::{Channel, duration_ms, epoch_ms, fen};
use crate::error::chain;
use crate::state::AppState;

/// Whether a buyer may still hold payment parameters for `order` that
/// Alipay would accept: some were handed out, and their `time_expire` (the
/// order's deadline, plus a margin for the two clocks) has not passed.
fn params_may_be_live(st: &AppState, order: &Order) -> bool {
    let margin = duration_ms(st.money().close_margin);
    order.channel.is_some() && st.now_ms() < order.expires_at.saturating_add(margin)
}

/// Brings an order up to date by asking Alipay (`alipay.trade.query`) and
/// applying the verified answer through [`commit_report`]:
///
/// - a pending order past its deadline is then closed (as `close_order` does);
/// - a `closing` order whose trade now exists unpaid is closed at Alipay,
///   and one Alipay still has no trade for becomes `closed` once its
///   parameters are dead;
/// - a closed order whose parameters are still alive is watched: a payment
///   found there is taken by the late-payment policy.
///
/// Other orders are returned as they are.
///
/// # Errors
/// Alipay or store failures (nothing changed then), or an answer about
/// another trade ([`PaymentError::AlipayMismatch`], recorded).
pub async fn refresh_order(st: &AppState, order: Order) -> Result<Order, PaymentError> {
    let watch = match order.status {
        OrderStatus::Pending | OrderStatus::Closing => true,
        OrderStatus::Closed => params_may_be_live(st, &order),
        OrderStatus::Paid | OrderStatus::Refunded => false,
    };
    if !watch {
        return Ok(order);
    }
    let mut order = order;
    let mut exists = true;
    match st
        .call(
            &TradeQuery::by_out_trade_no(&order.out_trade_no),
            &RequestOptions::default(),
        )
        .await
    {
        Ok(resp) => order = apply_query(st, &order, resp).await?.order,
        // Page, wap, app and QR trades exist only once the buyer opened the
        // cashier or scanned.
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => exists = false,
        Err(e) => return Err(PaymentError::Alipay(e)),
    }
    match order.status {
        OrderStatus::Pending if st.now_ms() >= order.expires_at => {
            order = close_at_alipay(st, &order).await?;
        }
        // Waiting at Alipay although we closed it: close it there.
        OrderStatus::Closing if exists => order = close_at_alipay(st, &order).await?,
        OrderStatus::Closing if !params_may_be_live(st, &order) => {
            order = commit_report(st, &order, Report::closed_by_us(None))
                .await?
                .order;
        }
        _ => {}
    }
    Ok(order)
}

/// Closes an order at the merchant's request. The answer is `closed` only
/// when nothing can pay it any more; `closing` when the buyer may still
/// hold live payment parameters (it becomes `closed` by itself, or `paid`
/// — and by default refunded — if the buyer pays). A closing or closed
/// order is returned as it is.
///
/// # Errors
/// [`PaymentError::NotClosable`] for paid or refunded orders,
/// [`PaymentError::PaidWhileClosing`] when Alipay turns out to have the
/// trade paid (the order now says so), Alipay or store failures.
pub async fn close_order(st: &AppState, order: Order) -> Result<Order, PaymentError> {
    let order = match order.status {
        OrderStatus::Closed | OrderStatus::Closing => order,
        OrderStatus::Pending => close_at_alipay(st, &order).await?,
        s => return Err(PaymentError::NotClosable(s)),
    };
    if !matches!(order.status, OrderStatus::Closed | OrderStatus::Closing) {
        return Err(PaymentError::PaidWhileClosing(order.status));
    }
    Ok(order)
}

/// Closes a pending (or closing) order at Alipay, then locally through
/// [`commit_report`]:
///
/// - a trade waiting for the buyer is closed (`alipay.trade.close`): final;
/// - a trade Alipay has not created yet: a QR code is voided with
///   `alipay.trade.cancel` (face-to-face trades allow it), which is final
///   when Alipay answers `action=close`; otherwise, while the buyer may
///   still hold live parameters, the order becomes `closing`, and `closed`
///   when they cannot be used any more;
/// - a trade that is no longer waiting is queried and what Alipay says is
///   applied (a payment found there is taken, never lost).
async fn close_at_alipay(st: &AppState, order: &Order) -> Result<Order, PaymentError> {
    let req = TradeClose::new(TradeRef::OutTradeNo(order.out_trade_no.clone()));
    match st.call(&req, &RequestOptions::default()).await {
        Ok(resp) => Ok(
            commit_report(st, order, Report::closed_by_us(resp.trade_no))
                .await?
                .order,
        ),
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => {
            if order.channel.as_deref() == Some(Channel::Qr.as_str()) {
                let cancel = TradeCancel::new(TradeRef::OutTradeNo(order.out_trade_no.clone()));
                match st.call(&cancel, &RequestOptions::default()).await {
                    Ok(resp) if resp.action.as_deref() == Some("close") => {
                        return Ok(
                            commit_report(st, order, Report::closed_by_us(resp.trade_no))
                                .await?
                                .order,
                        );
                    }
                    // Paid (and now refunded by the cancel), or an answer we
                    // cannot read as a void: learn the trade's state.
                    Ok(_) => return query_and_apply(st, order).await,
                    Err(e) => {
                        tracing::warn!(order = %order.id, error = %chain(&e), "QR code not voided; closing until it expires");
                    }
                }
            }
            if params_may_be_live(st, order) {
                Ok(st.store().begin_closing(&order.id, st.now_ms()).await?)
            } else {
                Ok(commit_report(st, order, Report::closed_by_us(None))
                    .await?
                    .order)
            }
        }
        Err(alipay::Error::Gateway(g))
            if matches!(
                g.reason(),
                "ACQ.TRADE_STATUS_ERROR" | "ACQ.TRADE_HAS_SUCCESS" | "ACQ.TRADE_HAS_CLOSE"
            ) =>
        {
            // Alipay's trade is not waiting any more: learn what it is.
            query_and_apply(st, order).await
        }
        Err(e) => Err(PaymentError::Alipay(e)),
    }
}

async fn query_and_apply(st: &AppState, order: &Order) -> Result<Order, PaymentError> {
    let resp = st
        .call(
            &TradeQuery::by_out_trade_no(&order.out_trade_no),
            &RequestOptions::default(),
        )
        .await
        .map_err(PaymentError::Alipay)?;
    Ok(apply_query(st, order, resp).await?.order)
}

/// Feeds a verified `alipay.trade.query` answer into [`commit_report`],
/// after checking it is about this order and this amount.
///
/// # Errors
/// [`PaymentError::AlipayMismatch`] when the answer is about another trade
/// or amount (recorded as an anomaly); store failures.
pub async fn apply_query(
    st: &AppState,
    order: &Order,
    resp: QueryResponse,
) -> Result<ApplyResult, PaymentError> {
    let payload = serde_json::to_string(&resp).ok();
    let reason = if resp.out_trade_no != order.out_trade_no {
        Some(AnomalyReason::UnknownOrder)
    } else if fen(resp.total_amount) != order.total_fen {
        Some(AnomalyReason::AmountMismatch)
    } else {
        None
    };
    if let Some(reason) = reason {
        record_refused(
            st,
            Some(order),
            Claim {
                out_trade_no: Some(&resp.out_trade_no),
                notify_id: None,
                trade_status: Some(resp.trade_status.as_str()),
            },
            UpdateSource::Query,
            &[reason],
            Evidence::Verified(payload),
        )
        .await?;
        return Err(PaymentError::AlipayMismatch(reason));
    }
    let report = Report {
        source: UpdateSource::Query,
        notify_id: None,
        trade_status: resp.trade_status.clone(),
        trade_no: Some(resp.trade_no.clone()),
        buyer_logon_id: resp.buyer_logon_id.clone(),
        buyer_id: resp.buyer_user_id.clone().or(resp.buyer_open_id.clone()),
        paid_at: resp
            .send_pay_date
            .as_deref()
            .and_then(alipay::time::parse_beijing)
            .map(epoch_ms),
        refund_fee: None,
        payload,
    };
    let result = commit_report(st, order, report).await?;
    after_late_payment(st, &result).await;
    Ok(result)
}
