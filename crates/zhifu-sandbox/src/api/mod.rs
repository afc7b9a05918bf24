//! The business rules of each gateway API (docs/protocol.md §5.2), one module per family,
//! over the in-memory [`State`]; [`call`] is the method table. Each API
//! reads its `biz_content` ([`Biz`]) and answers a [`Reply`] or a
//! [`BizError`]; the gateway turns either into a signed response.

pub(crate) mod agreement;
pub(crate) mod bill;
mod close_cancel;
pub(crate) mod oauth;
pub(crate) mod pay;
mod query;
mod refund;

use crate::state::{Ctx, State};
use crate::wire::{Biz, BizError, Reply, Sys};

/// Runs the server-to-server API `method`; `None` when there is no such API.
pub(crate) fn call(
    st: &mut State,
    method: &str,
    app_id: &str,
    biz: &Biz,
    sys: &Sys,
    ctx: &Ctx<'_>,
) -> Option<Result<Reply, BizError>> {
    Some(match method {
        "alipay.trade.precreate" => pay::precreate(st, app_id, biz, sys, ctx),
        "alipay.trade.create" => pay::create(st, app_id, biz, sys, ctx),
        "alipay.trade.pay" if agreement::is_deduction(biz) => {
            agreement::deduct(st, app_id, biz, sys, ctx)
        }
        "alipay.trade.pay" => pay::barcode_pay(st, app_id, biz, sys, ctx),
        "alipay.user.agreement.query" => agreement::query(st, app_id, biz, ctx),
        "alipay.user.agreement.unsign" => agreement::unsign(st, app_id, biz, ctx),
        "alipay.user.agreement.executionplan.modify" => agreement::modify_plan(st, app_id, biz),
        "alipay.trade.query" => query::query(st, app_id, biz),
        "alipay.trade.refund" => refund::refund(st, app_id, biz, ctx),
        "alipay.trade.fastpay.refund.query" => refund::refund_query(st, app_id, biz),
        "alipay.trade.close" => close_cancel::close(st, app_id, biz, ctx),
        "alipay.trade.cancel" => close_cancel::cancel(st, app_id, biz, ctx),
        "alipay.data.dataservice.bill.downloadurl.query" => bill::bill_url(st, app_id, biz, ctx),
        _ => return None,
    })
}
