//! Asking Alipay about a trade and acting on the verified answer: the
//! active query (`?refresh=true`, the return page, the reconcile pass) and
//! closing an order.

use alipay::{QueryResponse, RequestOptions, TradeClose, TradeQuery, TradeRef};
use zhifu_store::{AnomalyReason, ApplyResult, Order, OrderStatus, UpdateSource};

use super::commit::{Claim, Report, commit_report, record_refused};
use super::error::PaymentError;
use crate::domain::{epoch_ms, fen};
use crate::state::AppState;

/// Brings a pending order up to date: asks Alipay (`alipay.trade.query`)
/// and applies the verified answer through [`commit_report`], closing the
/// order when its deadline has passed. Orders that are not pending are
/// returned as they are.
///
/// # Errors
/// Alipay or store failures (nothing changed then), or an answer about
/// another trade ([`PaymentError::AlipayMismatch`], recorded).
pub async fn refresh_order(st: &AppState, order: Order) -> Result<Order, PaymentError> {
    if order.status != OrderStatus::Pending {
        return Ok(order);
    }
    let mut order = order;
    match st
        .call(
            &TradeQuery::by_out_trade_no(&order.out_trade_no),
            &RequestOptions::default(),
        )
        .await
    {
        Ok(resp) => order = apply_query(st, &order, resp).await?.order,
        // Page, wap and QR trades exist only once the buyer opened the cashier.
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => {}
        Err(e) => return Err(PaymentError::Alipay(e)),
    }
    if order.status == OrderStatus::Pending && st.now_ms() >= order.expires_at {
        order = close_at_alipay(st, &order).await?;
    }
    Ok(order)
}

/// Closes a pending order at the merchant's request; a closed order is
/// returned as it is.
///
/// # Errors
/// [`PaymentError::NotClosable`] for paid or refunded orders,
/// [`PaymentError::PaidWhileClosing`] when Alipay turns out to have the
/// trade paid (the order now says so), Alipay or store failures.
pub async fn close_order(st: &AppState, order: Order) -> Result<Order, PaymentError> {
    let order = match order.status {
        OrderStatus::Closed => order,
        OrderStatus::Pending => close_at_alipay(st, &order).await?,
        s => return Err(PaymentError::NotClosable(s)),
    };
    if order.status != OrderStatus::Closed {
        return Err(PaymentError::PaidWhileClosing(order.status));
    }
    Ok(order)
}

/// Closes a pending order at Alipay, then locally through [`commit_report`].
async fn close_at_alipay(st: &AppState, order: &Order) -> Result<Order, PaymentError> {
    let req = TradeClose {
        trade: TradeRef::OutTradeNo(order.out_trade_no.clone()),
        operator_id: None,
    };
    let trade_no = match st.call(&req, &RequestOptions::default()).await {
        Ok(resp) => resp.trade_no,
        // Never created at Alipay: nothing to close there. The signed payment
        // parameters carry `time_expire`, so they die with the order.
        Err(alipay::Error::Gateway(g)) if g.reason() == "ACQ.TRADE_NOT_EXIST" => None,
        Err(alipay::Error::Gateway(g))
            if matches!(
                g.reason(),
                "ACQ.TRADE_STATUS_ERROR" | "ACQ.TRADE_HAS_SUCCESS" | "ACQ.TRADE_HAS_CLOSE"
            ) =>
        {
            // Alipay's trade is not waiting any more: learn what it is.
            let resp = st
                .call(
                    &TradeQuery::by_out_trade_no(&order.out_trade_no),
                    &RequestOptions::default(),
                )
                .await
                .map_err(PaymentError::Alipay)?;
            return Ok(apply_query(st, order, resp).await?.order);
        }
        Err(e) => return Err(PaymentError::Alipay(e)),
    };
    Ok(commit_report(st, order, Report::closed_by_us(trade_no))
        .await?
        .order)
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
            payload,
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
    Ok(commit_report(st, order, report).await?)
}
