//! `alipay.trade.close` (only `WAIT_BUYER_PAY`) and `alipay.trade.cancel`
//! (closes an unpaid trade, refunds a paid one, voids an unscanned QR code).

use alipay::TradeStatus;
use serde_json::Map;

use crate::model::{Refund, beijing};
use crate::state::{Ctx, State};
use crate::wire::{Biz, BizError, Reply};

pub(crate) fn close(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let Some(no) = st.find_trade(app_id, biz)? else {
        return Err(BizError::trade_not_exist());
    };
    if st.trades[&no].status != TradeStatus::WaitBuyerPay {
        return Err(BizError::acq("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
    }
    st.close_trade(&no, "close", ctx)
        .map_err(|_| BizError::system_error())?;
    let t = &st.trades[&no];
    let mut f = Map::new();
    f.insert("trade_no".into(), t.trade_no.clone().into());
    f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
    Ok(Reply::success(f))
}

pub(crate) fn cancel(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let reply = |trade_no: Option<&str>, out: &str, action: &str, refund_at: Option<i64>| {
        let mut f = Map::new();
        if let Some(no) = trade_no {
            f.insert("trade_no".into(), no.into());
        }
        f.insert("out_trade_no".into(), out.into());
        f.insert("retry_flag".into(), "N".into());
        f.insert("action".into(), action.into());
        if let Some(at) = refund_at {
            f.insert("gmt_refund_pay".into(), beijing(at).into());
        }
        Reply::success(f)
    };
    let Some(no) = st.find_trade(app_id, biz)? else {
        // A precreate QR nobody scanned yet: it is voided, there is no trade.
        if biz.str("trade_no").is_none()
            && let Some(out) = biz.str("out_trade_no")
            && let Some(token) = st.order_by_out(app_id, &out).map(|o| o.token.clone())
        {
            if let Some(o) = st.orders.get_mut(&token) {
                o.voided = true;
            }
            st.dirty.orders.insert(token);
            return Ok(reply(None, &out, "close", None));
        }
        return Err(BizError::trade_not_exist());
    };
    let t = st.trades[&no].clone();
    match t.status {
        TradeStatus::WaitBuyerPay => {
            st.close_trade(&no, "cancel", ctx)
                .map_err(|_| BizError::system_error())?;
            Ok(reply(Some(&no), &t.out_trade_no, "close", None))
        }
        TradeStatus::TradeSuccess => {
            let rest = t.terms.total_fen - t.refunded_fen();
            let refund = Refund {
                out_request_no: format!("{}-cancel", t.out_trade_no),
                amount_fen: rest,
                reason: Some("撤销".into()),
                at: ctx.now_ms(),
                via: "cancel".into(),
            };
            st.apply_refund(&no, refund, ctx)
                .map_err(|_| BizError::system_error())?;
            if let Some(t) = st.trades.get_mut(&no) {
                t.closed_by = Some("cancel".into());
            }
            Ok(reply(
                Some(&no),
                &t.out_trade_no,
                "refund",
                Some(ctx.now_ms()),
            ))
        }
        TradeStatus::TradeClosed => {
            let action = if t.refunds.is_empty() {
                "close"
            } else {
                "refund"
            };
            Ok(reply(Some(&no), &t.out_trade_no, action, None))
        }
        _ => Err(BizError::acq("ACQ.TRADE_HAS_FINISHED", "交易已完结")),
    }
}
