//! The payment APIs: page/wap/app pay and precreate (an order whose trade
//! exists once the buyer opens the cashier), create (JSAPI) and pay
//! (barcode, with the README's test auth codes), and the rules they share:
//! reading the order ([`order_terms`]) and a reused `out_trade_no`.

use alipay::TradeStatus;
use serde_json::{Map, json};
use time::OffsetDateTime;

use crate::ids;
use crate::model::{Order, OrderTerms, Product, beijing, millis, yuan};
use crate::state::{Ctx, State};
use crate::trade::timeout_deadline;
use crate::wire::{Biz, BizError, Reply, Sys};

fn check_out_trade_no(s: &str) -> Result<(), BizError> {
    alipay::OutTradeNo::new(s)
        .map(|_| ())
        .map_err(|_| BizError::invalid("out_trade_no 格式错误"))
}

fn check_subject(s: &str) -> Result<(), BizError> {
    if s.chars().count() > 256 || s.contains(['/', '=', '&']) {
        return Err(BizError::invalid("subject 格式错误"));
    }
    Ok(())
}

pub(crate) fn context_inconsistent() -> BizError {
    BizError::acq("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
}

/// What a reused `out_trade_no` refers to.
pub(crate) enum Reuse {
    New,
    Trade(String),
    Order(String),
}

pub(crate) fn check_reuse(
    st: &State,
    app_id: &str,
    out_trade_no: &str,
    terms: &OrderTerms,
    now_ms: i64,
) -> Result<Reuse, BizError> {
    if let Some(t) = st.trade_by_out(app_id, out_trade_no) {
        return match t.status {
            TradeStatus::TradeSuccess | TradeStatus::TradeFinished => {
                Err(BizError::acq("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"))
            }
            TradeStatus::TradeClosed => Err(BizError::acq("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")),
            _ if t.terms.same_content(terms) && t.terms.product == terms.product => {
                Ok(Reuse::Trade(t.trade_no.clone()))
            }
            _ => Err(context_inconsistent()),
        };
    }
    if let Some(o) = st.order_by_out(app_id, out_trade_no) {
        if o.voided {
            return Err(BizError::acq("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"));
        }
        if o.expires_at.is_some_and(|e| e <= now_ms) {
            return Ok(Reuse::New);
        }
        if o.terms.same_content(terms) && o.terms.product == terms.product {
            return Ok(Reuse::Order(o.token.clone()));
        }
        return Err(context_inconsistent());
    }
    Ok(Reuse::New)
}

/// Reads the common order fields of a payment API.
pub(crate) fn order_terms(
    biz: &Biz,
    product: Product,
    sys: &Sys,
) -> Result<(String, OrderTerms), BizError> {
    let out_trade_no = biz.req("out_trade_no")?;
    check_out_trade_no(&out_trade_no)?;
    let total_fen = biz.amount("total_amount").map_err(|e| {
        // Well-formed but above 100000000.00 is a limit, not a format error.
        let text = biz.str("total_amount").unwrap_or_default();
        let (int, frac) = text.split_once('.').unwrap_or((&text, "0"));
        let well_formed = !int.is_empty()
            && int.bytes().all(|b| b.is_ascii_digit())
            && (1..=2).contains(&frac.len())
            && frac.bytes().all(|b| b.is_ascii_digit());
        if well_formed && int.len() > 8 {
            BizError::acq("ACQ.TOTAL_FEE_EXCEED", "订单金额超过限额")
        } else {
            e
        }
    })?;
    let subject = biz.req("subject")?;
    check_subject(&subject)?;
    let timeout_express = biz
        .str("timeout_express")
        .or_else(|| biz.str("qr_code_timeout_express"));
    if let Some(t) = &timeout_express
        && timeout_deadline(t, OffsetDateTime::UNIX_EPOCH).is_none()
    {
        return Err(BizError::invalid("timeout_express 格式错误"));
    }
    let time_expire = biz.str("time_expire");
    if let Some(t) = &time_expire
        && alipay::time::parse_beijing(t).is_none()
    {
        return Err(BizError::invalid("time_expire 格式错误"));
    }
    Ok((
        out_trade_no,
        OrderTerms {
            product,
            total_fen,
            subject,
            body: biz.str("body"),
            notify_url: sys.notify_url.clone(),
            return_url: sys.return_url.clone(),
            quit_url: biz.str("quit_url"),
            passback_params: biz.str("passback_params"),
            charset: sys.charset.clone(),
            sign_type: sys.sign_type.clone(),
            timeout_express,
            time_expire,
            // Only page/wap/app orders sign while paying; the gateway adds it.
            agreement_sign: None,
        },
    ))
}

/// Page/wap/app pay and precreate: the order is recorded, the trade is
/// not created (docs/protocol.md §5.3). Returns the cashier token.
pub(crate) fn place_order(
    st: &mut State,
    app_id: &str,
    out_trade_no: String,
    terms: OrderTerms,
    ctx: &Ctx<'_>,
) -> Result<String, BizError> {
    match check_reuse(st, app_id, &out_trade_no, &terms, ctx.now_ms())? {
        Reuse::Trade(trade_no) => {
            let token = st.trades.get(&trade_no).and_then(|t| t.token.clone());
            match token {
                Some(t) => Ok(t),
                None => Err(context_inconsistent()),
            }
        }
        Reuse::Order(token) => {
            // The latest signed request decides where results go.
            if let Some(o) = st.orders.get_mut(&token) {
                o.terms.notify_url = terms.notify_url;
                o.terms.return_url = terms.return_url;
                o.terms.quit_url = terms.quit_url;
                st.dirty.orders.insert(token.clone());
            }
            Ok(token)
        }
        Reuse::New => {
            let token = ids::token(16);
            let expires_at = Some(millis(terms.deadline(ctx.now)));
            st.insert_order(Order {
                token: token.clone(),
                app_id: app_id.to_owned(),
                out_trade_no,
                terms,
                created_at: ctx.now_ms(),
                expires_at,
                voided: false,
                trade_no: None,
            });
            Ok(token)
        }
    }
}

/// `alipay.trade.precreate`: an order and the `qr_code` the buyer scans.
pub(crate) fn precreate(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    sys: &Sys,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let (out, terms) = order_terms(biz, Product::Precreate, sys)?;
    let token = place_order(st, app_id, out.clone(), terms, ctx)?;
    let mut f = Map::new();
    f.insert("out_trade_no".into(), out.into());
    f.insert(
        "qr_code".into(),
        format!("{}/sandbox/scan/{token}", ctx.cfg.public_url).into(),
    );
    Ok(Reply::success(f))
}

/// `alipay.trade.create`: the trade exists at once.
pub(crate) fn create(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    sys: &Sys,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let (out, terms) = order_terms(biz, Product::Create, sys)?;
    let trade_no = match check_reuse(st, app_id, &out, &terms, ctx.now_ms())? {
        Reuse::Trade(no) => no,
        Reuse::Order(_) => return Err(context_inconsistent()),
        Reuse::New => {
            let buyer = biz.str("buyer_id").or_else(|| biz.str("buyer_open_id"));
            st.new_trade(app_id, &out, terms, None, buyer, ctx)
        }
    };
    let mut f = Map::new();
    f.insert("out_trade_no".into(), out.into());
    f.insert("trade_no".into(), trade_no.into());
    Ok(Reply::success(f))
}

/// Barcode pay with the documented test auth codes (see the README):
/// a valid code ending `0003` waits for the buyer's password (`10003`),
/// `0004` fails with insufficient balance, `0005` is an expired code;
/// any other valid code pays at once.
pub(crate) fn barcode_pay(
    st: &mut State,
    app_id: &str,
    biz: &Biz,
    sys: &Sys,
    ctx: &Ctx<'_>,
) -> Result<Reply, BizError> {
    let (out, terms) = order_terms(biz, Product::Barcode, sys)?;
    let code = biz.req("auth_code")?;
    let digits_ok = (16..=24).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
        && matches!(code[..2].parse::<u8>(), Ok(25..=30));
    let face_ok = code.len() == 35 && code.starts_with("fp");
    if !(digits_ok || face_ok) || code.ends_with("0005") {
        return Err(BizError::acq(
            "ACQ.PAYMENT_AUTH_CODE_INVALID",
            "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款，如再次收款失败，请联系管理员处理。[SOUNDWAVE_PARSER_FAIL]",
        ));
    }
    if code.ends_with("0004") {
        return Err(BizError::acq(
            "ACQ.BUYER_BALANCE_NOT_ENOUGH",
            "买家余额不足",
        ));
    }
    let trade_no = match check_reuse(st, app_id, &out, &terms, ctx.now_ms())? {
        Reuse::Trade(no) => no,
        Reuse::Order(_) => return Err(context_inconsistent()),
        Reuse::New => st.new_trade(app_id, &out, terms, None, None, ctx),
    };
    if code.ends_with("0003") {
        let t = &st.trades[&trade_no];
        let mut f = Map::new();
        f.insert("trade_no".into(), trade_no.clone().into());
        f.insert("out_trade_no".into(), out.into());
        f.insert("buyer_logon_id".into(), t.buyer_logon_id.clone().into());
        f.insert("total_amount".into(), yuan(t.terms.total_fen).into());
        f.insert("receipt_amount".into(), "0.00".into());
        f.insert("buyer_pay_amount".into(), "0.00".into());
        f.insert("invoice_amount".into(), "0.00".into());
        f.insert("buyer_user_id".into(), t.buyer_id.clone().into());
        return Ok(Reply {
            code: "10003",
            msg: " order success pay inprocess",
            fields: f,
        });
    }
    st.pay_trade(&trade_no, ctx)
        .map_err(|_| BizError::system_error())?;
    Ok(paid_reply(st, &trade_no))
}

/// The `alipay.trade.pay` answer of a paid trade.
pub(crate) fn paid_reply(st: &State, trade_no: &str) -> Reply {
    let t = &st.trades[trade_no];
    let mut f = Map::new();
    f.insert("trade_no".into(), trade_no.into());
    f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
    f.insert("buyer_logon_id".into(), t.buyer_logon_id.clone().into());
    let total = yuan(t.terms.total_fen);
    f.insert("total_amount".into(), total.clone().into());
    f.insert("receipt_amount".into(), total.clone().into());
    f.insert("buyer_pay_amount".into(), total.clone().into());
    f.insert("point_amount".into(), "0.00".into());
    f.insert("invoice_amount".into(), total.clone().into());
    f.insert(
        "gmt_payment".into(),
        beijing(t.gmt_payment.unwrap_or(t.gmt_create)).into(),
    );
    f.insert(
        "fund_bill_list".into(),
        json!([{"fund_channel": "ALIPAYACCOUNT", "amount": total}]),
    );
    f.insert("buyer_user_id".into(), t.buyer_id.clone().into());
    Reply::success(f)
}
