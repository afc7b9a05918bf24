//! Periodic deduction (docs/agreements.md, Sandbox): the signing order of
//! `alipay.user.agreement.page.sign` (the buyer then decides on the
//! signing page), `alipay.user.agreement.query`, `.unsign`,
//! `.executionplan.modify`, and deductions — `alipay.trade.pay` with
//! `product_code` `GENERAL_WITHHOLDING` — that create an ordinary paid
//! trade or fail by the agreement's state, its limits and the test buyer's
//! balance ([`crate::SandboxConfig::withholding_balance_fen`]); and the
//! `agreement_sign_params` of pay and sign, kept on the order until the
//! buyer pays.

use serde_json::{Map, Value};

use crate::api::pay::{Reuse, check_reuse, context_inconsistent, order_terms, paid_reply};
use crate::ids;
use crate::model::{Agreement, AgreementState, PayAndSign, Product, beijing, yuan};
use crate::state::{Ctx, State};
use crate::wire::{Biz, BizError, Reply, Sys};

/// `product_code` of a deduction.
pub(crate) const GENERAL_WITHHOLDING: &str = "GENERAL_WITHHOLDING";

fn not_exist() -> BizError {
    BizError::acq("USER_AGREEMENT_NOT_EXIST", "用户协议不存在")
}

fn amount_of(v: Option<&Value>, k: &str) -> Result<Option<u64>, BizError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(BizError::invalid(format!("{k} 格式错误"))),
    };
    alipay::Amount::parse(&text)
        .map(|a| Some(a.fen()))
        .map_err(|_| BizError::invalid(format!("{k} 格式错误")))
}

fn count_of(v: Option<&Value>, k: &str) -> Result<Option<u64>, BizError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| BizError::invalid(format!("{k} 格式错误"))),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| BizError::invalid(format!("{k} 格式错误"))),
        Some(_) => Err(BizError::invalid(format!("{k} 格式错误"))),
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `alipay.user.agreement.page.sign`: records a `TEMP` agreement and
/// returns its signing page's token. Signing the same external agreement
/// again while it is still `TEMP` reopens the same page.
pub(crate) fn sign_order(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    sys: &Sys,
    ctx: &Ctx<'_>,
) -> Result<String, BizError> {
    let personal_product_code = biz.req("personal_product_code")?;
    let sign_scene = biz.req("sign_scene")?;
    let external_agreement_no = biz.str("external_agreement_no");
    let rule = match biz.0.get("period_rule_params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(BizError::invalid("period_rule_params 格式错误")),
    };
    if personal_product_code == "CYCLE_PAY_AUTH_P" && rule.is_none() {
        return Err(BizError::invalid("缺少必选参数 period_rule_params"));
    }
    let rule = rule.unwrap_or_default();
    if let Some(ext) = &external_agreement_no {
        let same = st.agreements.values().find(|a| {
            a.app_id == app_id
                && !a.declined
                && a.external_agreement_no.as_ref() == Some(ext)
                && a.personal_product_code == personal_product_code
                && a.sign_scene == sign_scene
                && a.status != AgreementState::Unsign
        });
        if let Some(a) = same {
            if a.status != AgreementState::Temp {
                return Err(BizError::acq(
                    "USER_AGREEMENT_ALREADY_EXIST",
                    "用户已签约该协议",
                ));
            }
            let (no, token) = (a.agreement_no.clone(), a.token.clone());
            if let Some(a) = st.agreements.get_mut(&no) {
                // The latest signed request decides where results go.
                a.notify_url.clone_from(&sys.notify_url);
                a.return_url.clone_from(&sys.return_url);
                st.dirty.agreements.insert(no);
            }
            return Ok(token);
        }
    }
    let mut agreement_no = ids::agreement_no(ctx.now);
    while st.agreements.contains_key(&agreement_no) {
        agreement_no = ids::agreement_no(ctx.now);
    }
    let token = ids::token(16);
    let principal_id = st.buyer_id.clone();
    st.put_agreement(Agreement {
        agreement_no,
        token: token.clone(),
        app_id: app_id.to_owned(),
        status: AgreementState::Temp,
        personal_product_code,
        sign_scene,
        external_agreement_no,
        external_logon_id: biz.str("external_logon_id"),
        product_code: biz.str("product_code"),
        period_type: text_of(rule.get("period_type")),
        period: count_of(rule.get("period"), "period")?,
        execute_time: text_of(rule.get("execute_time")),
        single_fen: amount_of(rule.get("single_amount"), "single_amount")?,
        total_fen: amount_of(rule.get("total_amount"), "total_amount")?,
        total_payments: count_of(rule.get("total_payments"), "total_payments")?,
        notify_url: sys.notify_url.clone(),
        return_url: sys.return_url.clone(),
        charset: sys.charset.clone(),
        sign_type: sys.sign_type.clone(),
        principal_id,
        created_at: ctx.now_ms(),
        sign_time: None,
        invalid_at: None,
        unsign_time: None,
        next_deduct_time: None,
        deductions: 0,
        deducted_fen: 0,
        declined: false,
    });
    Ok(token)
}

/// `agreement_sign_params` of a page/wap/app order (pay and sign): the
/// agreement to sign when the buyer pays. `personal_product_code` and
/// `sign_scene` are required, and `CYCLE_PAY_AUTH_P` needs its period rule,
/// as on `alipay.user.agreement.page.sign`.
pub(crate) fn pay_and_sign(biz: &Biz) -> Result<Option<PayAndSign>, BizError> {
    let p = match biz.0.get("agreement_sign_params") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(BizError::invalid("agreement_sign_params 格式错误")),
    };
    let required = |k: &str| {
        text_of(p.get(k))
            .ok_or_else(|| BizError::invalid(format!("缺少必选参数 agreement_sign_params.{k}")))
    };
    let personal_product_code = required("personal_product_code")?;
    let sign_scene = required("sign_scene")?;
    let rule = match p.get("period_rule_params") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m.clone()),
        Some(_) => return Err(BizError::invalid("period_rule_params 格式错误")),
    };
    if personal_product_code == "CYCLE_PAY_AUTH_P" && rule.is_none() {
        return Err(BizError::invalid(
            "缺少必选参数 agreement_sign_params.period_rule_params",
        ));
    }
    let rule = rule.unwrap_or_default();
    Ok(Some(PayAndSign {
        personal_product_code,
        sign_scene,
        external_agreement_no: text_of(p.get("external_agreement_no")),
        external_logon_id: text_of(p.get("external_logon_id")),
        product_code: text_of(p.get("product_code")),
        sign_notify_url: text_of(p.get("sign_notify_url")),
        period_type: text_of(rule.get("period_type")),
        period: count_of(rule.get("period"), "period")?,
        execute_time: text_of(rule.get("execute_time")),
        single_fen: amount_of(rule.get("single_amount"), "single_amount")?,
        total_fen: amount_of(rule.get("total_amount"), "total_amount")?,
        total_payments: count_of(rule.get("total_payments"), "total_payments")?,
    }))
}

/// The agreement a query or unsign names: `agreement_no` wins; otherwise
/// product, scene and external number together.
fn find(st: &State, app_id: &str, biz: &Biz) -> Result<String, BizError> {
    let visible = |a: &&Agreement| a.app_id == app_id && !a.declined;
    if let Some(no) = biz.str("agreement_no") {
        return st
            .agreements
            .get(&no)
            .filter(visible)
            .map(|a| a.agreement_no.clone())
            .ok_or_else(not_exist);
    }
    let ext = biz
        .str("external_agreement_no")
        .ok_or_else(|| BizError::invalid("agreement_no 和 external_agreement_no 不能同时为空"))?;
    let ppc = biz.req("personal_product_code")?;
    let scene = biz.req("sign_scene")?;
    // The newest one: an external number may be signed again after an unsign.
    st.agreements
        .values()
        .filter(visible)
        .filter(|a| {
            a.external_agreement_no.as_deref() == Some(ext.as_str())
                && a.personal_product_code == ppc
                && a.sign_scene == scene
        })
        .max_by_key(|a| a.created_at)
        .map(|a| a.agreement_no.clone())
        .ok_or_else(not_exist)
}

/// `alipay.user.agreement.query`.
pub(crate) fn query(st: &State, app_id: &str, biz: &Biz, ctx: &Ctx<'_>) -> Result<Reply, BizError> {
    let no = find(st, app_id, biz)?;
    let a = &st.agreements[&no];
    let mut f = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            f.insert(k.to_owned(), Value::String(v));
        }
    };
    put("agreement_no", Some(a.agreement_no.clone()));
    put("status", Some(a.status.as_str().to_owned()));
    put("external_agreement_no", a.external_agreement_no.clone());
    put(
        "personal_product_code",
        Some(a.personal_product_code.clone()),
    );
    put("sign_scene", Some(a.sign_scene.clone()));
    put("product_code", a.product_code.clone());
    if ctx.cfg.oauth_ids != crate::config::OauthIds::OpenId {
        put("principal_id", Some(a.principal_id.clone()));
    }
    if ctx.cfg.oauth_ids != crate::config::OauthIds::UserId {
        put(
            "principal_open_id",
            Some(ids::open_id(&a.principal_id, &a.app_id)),
        );
    }
    put("alipay_logon_id", Some(st.buyer_logon_id()));
    put("external_logon_id", a.external_logon_id.clone());
    put("sign_time", a.sign_time.map(beijing));
    put("valid_time", a.sign_time.map(beijing));
    put("invalid_time", a.invalid_at.map(beijing));
    put("single_quota", a.single_fen.map(yuan));
    Ok(Reply::success(f))
}

/// `alipay.user.agreement.unsign` by the merchant.
pub(crate) fn unsign(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let no = find(st, app_id, biz)?;
    let ended = st
        .unsign(&no, ctx.cfg.notify_merchant_unsign, ctx)
        .map_err(|_| BizError::system_error())?;
    if !ended {
        return Err(not_exist());
    }
    Ok(Reply::success(Map::new()))
}

/// `alipay.user.agreement.executionplan.modify`: moves the next deduction
/// date of a `NORMAL` agreement. The sandbox does not deduct by itself, so
/// the date is only kept and echoed.
pub(crate) fn modify_plan(st: &mut State, app_id: &str, biz: &Biz) -> Result<Reply, BizError> {
    let no = biz.req("agreement_no")?;
    let deduct_time = biz.req("deduct_time")?;
    let date_part = deduct_time.get(..10).unwrap_or_default();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if time::Date::parse(date_part, fmt).is_err() {
        return Err(BizError::invalid("deduct_time 格式错误"));
    }
    let Some(a) = st
        .agreements
        .get_mut(&no)
        .filter(|a| a.app_id == app_id && !a.declined)
    else {
        return Err(not_exist());
    };
    if a.status != AgreementState::Normal {
        return Err(BizError::acq(
            "AGREEMENT_STATUS_NOT_NORMAL",
            "协议状态非正常状态",
        ));
    }
    a.next_deduct_time = Some(deduct_time.clone());
    st.dirty.agreements.insert(no.clone());
    let mut f = Map::new();
    f.insert("agreement_no".into(), no.into());
    f.insert("deduct_time".into(), deduct_time.into());
    Ok(Reply::success(f))
}

/// Whether an `alipay.trade.pay` request is a deduction.
pub(crate) fn is_deduction(biz: &Biz) -> bool {
    biz.str("product_code").as_deref() == Some(GENERAL_WITHHOLDING)
}

/// `alipay.trade.pay` with `GENERAL_WITHHOLDING`: charges a `NORMAL`
/// agreement's buyer at once, creating a paid trade and its notification.
///
/// A reused `out_trade_no` is looked at first, before the agreement: a
/// merchant rerunning a period must learn that it was already charged
/// (`ACQ.TRADE_HAS_SUCCESS`) even if the buyer has unsigned since, and an
/// existing trade is never paid, counted or debited a second time. A
/// refused deduction leaves no trade behind, so the same `out_trade_no`
/// can be retried later.
pub(crate) fn deduct(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    sys: &Sys,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let (out, terms) = order_terms(biz, Product::Withholding, sys)?;
    let agreement_no = match biz.0.get("agreement_params") {
        Some(Value::Object(m)) => text_of(m.get("agreement_no")),
        _ => None,
    }
    .ok_or_else(|| BizError::invalid("缺少必选参数 agreement_params.agreement_no"))?;
    match check_reuse(st, app_id, &out, &terms, ctx.now_ms())? {
        Reuse::New => {}
        // Deductions pay at once, so an unpaid trade under this number came
        // from another API (or a failed payment): never charge through it.
        Reuse::Trade(_) | Reuse::Order(_) => return Err(context_inconsistent()),
    }
    let Some(a) = st
        .agreements
        .get(&agreement_no)
        .filter(|a| a.app_id == app_id && !a.declined)
    else {
        return Err(BizError::acq("ACQ.AGREEMENT_NOT_EXIST", "协议不存在"));
    };
    if a.status != AgreementState::Normal {
        return Err(BizError::acq(
            "ACQ.AGREEMENT_STATUS_NOT_NORMAL",
            "协议状态非正常状态",
        ));
    }
    let principal = a.principal_id.clone();
    let amount = terms.total_fen;
    let over_limit = a.single_fen.is_some_and(|s| amount > s)
        || a.total_fen.is_some_and(|t| a.deducted_fen + amount > t)
        || a.total_payments.is_some_and(|n| a.deductions >= n);
    if over_limit {
        return Err(BizError::acq(
            "ACQ.BEYOND_PAY_RESTRICTION",
            "超出协议约定的扣款额度或次数",
        ));
    }
    if st.withholding_balance_fen.is_some_and(|b| b < amount) {
        return Err(BizError::acq(
            "ACQ.BUYER_BALANCE_NOT_ENOUGH",
            "买家余额不足",
        ));
    }
    let trade_no = st.new_trade(app_id, &out, terms, None, Some(principal), ctx);
    let paid = st.pay_trade(&trade_no, ctx);
    // Counted by what happened to the trade, not by the notification
    // queueing that follows it inside `pay_trade`.
    if st.trades[&trade_no].status == alipay::TradeStatus::TradeSuccess {
        if let Some(b) = st.withholding_balance_fen.as_mut() {
            *b = b.saturating_sub(amount);
        }
        if let Some(a) = st.agreements.get_mut(&agreement_no) {
            a.deductions += 1;
            a.deducted_fen += amount;
            st.dirty.agreements.insert(agreement_no);
        }
    }
    paid.map_err(|_| BizError::system_error())?;
    Ok(paid_reply(st, &trade_no))
}
