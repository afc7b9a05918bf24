//! `alipay.trade.refund` and `alipay.trade.fastpay.refund.query`:
//! `out_request_no` idempotency, partial and cumulative limits, and what a
//! refund query reports.

use alipay::TradeStatus;
use serde_json::{Map, Value};

use crate::model::{Refund, Trade, beijing, yuan};
use crate::state::{Ctx, State};
use crate::wire::{Biz, BizError, Reply};

fn refund_fields(t: &Trade, fund_change: &str, r: &Refund) -> Map<String, Value> {
    let mut f = Map::new();
    f.insert("buyer_logon_id".into(), t.buyer_logon_id.clone().into());
    f.insert("buyer_user_id".into(), t.buyer_id.clone().into());
    f.insert("fund_change".into(), fund_change.into());
    f.insert("gmt_refund_pay".into(), beijing(r.at).into());
    f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
    f.insert("refund_fee".into(), yuan(t.refunded_fen()).into());
    f.insert("send_back_fee".into(), yuan(r.amount_fen).into());
    f.insert("trade_no".into(), t.trade_no.clone().into());
    f
}

pub(crate) fn refund(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let fail = |e: BizError| e.with("refund_fee", "0.00").with("send_back_fee", "0.00");
    let Some(no) = st.find_trade(app_id, biz).map_err(fail)? else {
        return Err(fail(BizError::trade_not_exist()));
    };
    let amount = biz.amount("refund_amount").map_err(fail)?;
    let explicit_no = biz.str("out_request_no");
    let t = &st.trades[&no];
    // Without out_request_no the refund is keyed by the order number (docs/protocol.md §5.2).
    let req_no = explicit_no
        .clone()
        .unwrap_or_else(|| t.out_trade_no.clone());
    if let Some(prev) = t.refunds.iter().find(|r| r.out_request_no == req_no) {
        if prev.amount_fen != amount {
            return Err(fail(BizError::acq(
                "ACQ.DISCORDANT_REPEAT_REQUEST",
                "不一致的请求",
            )));
        }
        return Ok(Reply::success(refund_fields(t, "N", prev)));
    }
    match t.status {
        TradeStatus::WaitBuyerPay | TradeStatus::TradeClosed => {
            return Err(fail(BizError::acq(
                "ACQ.TRADE_STATUS_ERROR",
                "交易状态不合法",
            )));
        }
        TradeStatus::TradeFinished => {
            return Err(fail(BizError::acq("ACQ.TRADE_HAS_FINISHED", "交易已完结")));
        }
        _ => {}
    }
    let total = t.terms.total_fen;
    if explicit_no.is_none() && amount != total {
        return Err(fail(BizError::acq(
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            "退款金额与订单金额不一致，部分退款请传入退款请求号 out_request_no",
        )));
    }
    if amount > total {
        return Err(fail(BizError::acq(
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            "退款金额超限",
        )));
    }
    if t.refunded_fen() + amount > total {
        return Err(fail(BizError::acq(
            "ACQ.REASON_TRADE_REFUND_FEE_ERR",
            "退款金额无效",
        )));
    }
    let refund = Refund {
        out_request_no: req_no,
        amount_fen: amount,
        reason: biz.str("refund_reason"),
        at: ctx.now_ms(),
        via: "refund".into(),
    };
    st.apply_refund(&no, refund.clone(), ctx)
        .map_err(|_| BizError::system_error())?;
    Ok(Reply::success(refund_fields(&st.trades[&no], "Y", &refund)))
}

pub(crate) fn refund_query(st: &State, app_id: &str, biz: &Biz) -> Result<Reply, BizError> {
    let req_no = biz.req("out_request_no")?;
    let Some(no) = st.find_trade(app_id, biz)? else {
        return Err(BizError::trade_not_exist());
    };
    let t = &st.trades[&no];
    let mut f = Map::new();
    f.insert("out_request_no".into(), req_no.clone().into());
    f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
    // Absence of refund_status means "not received or failed" (docs/protocol.md §5.2).
    if let Some(r) = t.refunds.iter().find(|r| r.out_request_no == req_no) {
        f.insert("refund_amount".into(), yuan(r.amount_fen).into());
        if let Some(reason) = &r.reason {
            f.insert("refund_reason".into(), reason.clone().into());
        }
        f.insert("refund_status".into(), "REFUND_SUCCESS".into());
        f.insert("total_amount".into(), yuan(t.terms.total_fen).into());
        if biz.has_option("query_options", "gmt_refund_pay") {
            f.insert("gmt_refund_pay".into(), beijing(r.at).into());
        }
    }
    f.insert("trade_no".into(), t.trade_no.clone().into());
    Ok(Reply::success(f))
}
