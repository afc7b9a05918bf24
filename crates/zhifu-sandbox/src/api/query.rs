//! `alipay.trade.query`: a trade as the merchant sees it, or
//! `ACQ.TRADE_NOT_EXIST` with zero amounts.

use serde_json::{Map, json};

use crate::model::{beijing, yuan};
use crate::state::State;
use crate::wire::{Biz, BizError, Reply};

pub(crate) fn query(st: &State, app_id: &str, biz: &Biz) -> Result<Reply, BizError> {
    let Some(no) = st.find_trade(app_id, biz)? else {
        let mut e = BizError::trade_not_exist()
            .with("buyer_pay_amount", "0.00")
            .with("invoice_amount", "0.00");
        if let Some(out) = biz.str("out_trade_no") {
            e = e.with("out_trade_no", out);
        }
        return Err(e
            .with("point_amount", "0.00")
            .with("receipt_amount", "0.00"));
    };
    let t = &st.trades[&no];
    let mut f = Map::new();
    f.insert("buyer_logon_id".into(), t.buyer_logon_id.clone().into());
    let paid = t.is_paid();
    let total = yuan(t.terms.total_fen);
    let paid_amount = if paid { total.clone() } else { "0.00".into() };
    f.insert("buyer_pay_amount".into(), paid_amount.clone().into());
    f.insert("buyer_user_id".into(), t.buyer_id.clone().into());
    if paid {
        f.insert(
            "fund_bill_list".into(),
            json!([{"amount": total.clone(), "fund_channel": "ALIPAYACCOUNT"}]),
        );
    }
    f.insert("invoice_amount".into(), paid_amount.clone().into());
    f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
    f.insert("point_amount".into(), "0.00".into());
    f.insert("receipt_amount".into(), paid_amount.into());
    if let Some(p) = t.gmt_payment {
        f.insert("send_pay_date".into(), beijing(p).into());
    }
    f.insert("total_amount".into(), total.into());
    f.insert("trade_no".into(), t.trade_no.clone().into());
    f.insert("trade_status".into(), t.status.as_str().into());
    Ok(Reply::success(f))
}
