//! `alipay.trade.close` (only `WAIT_BUYER_PAY`) and `alipay.trade.cancel`
//! (closes an unpaid trade, refunds a paid one, voids an order nobody
//! opened; refuses finished and refunded trades and trades older than
//! `cancel_window`).

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

/// `ACQ.REASON_TRADE_REFUND_FEE_ERR`: the answer to cancelling a trade that
/// was already (partly or fully) refunded (docs/protocol.md §5.2; which
/// code exactly is unconfirmed, §12.13).
fn has_refunds() -> BizError {
    BizError::acq("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
}

/// `alipay.trade.cancel` (docs/protocol.md §5.2): closes an unpaid trade,
/// refunds a paid one in full, voids an order nobody opened yet; refuses a
/// finished trade, a trade with refunds, and any trade older than
/// `cancel_window`. A repeated cancel answers as the first one did.
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
        // An order nobody opened yet (page, wap, app or precreate): there is
        // no trade, so no window applies; the order is voided, its cashier
        // and QR code stop working, and its out_trade_no is closed.
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
    let window = i64::try_from(ctx.cfg.cancel_window.as_millis()).unwrap_or(i64::MAX);
    let past_window = ctx.now_ms().saturating_sub(t.gmt_create) > window;
    match t.status {
        TradeStatus::TradeClosed => match t.closed_by.as_deref() {
            Some("cancel") => {
                let action = if t.refunds.is_empty() {
                    "close"
                } else {
                    "refund"
                };
                Ok(reply(Some(&no), &t.out_trade_no, action, None))
            }
            Some("refund") => Err(has_refunds()),
            // Closed unpaid (close, timeout): nothing left to undo.
            _ => Ok(reply(Some(&no), &t.out_trade_no, "close", None)),
        },
        TradeStatus::TradeFinished => Err(BizError::acq("ACQ.TRADE_HAS_FINISHED", "交易已完结")),
        _ if past_window => Err(BizError::acq(
            "ACQ.TRADE_CANCEL_TIME_OUT",
            "超过撤销时间范围",
        )),
        TradeStatus::WaitBuyerPay => {
            st.close_trade(&no, "cancel", ctx)
                .map_err(|_| BizError::system_error())?;
            Ok(reply(Some(&no), &t.out_trade_no, "close", None))
        }
        TradeStatus::TradeSuccess if !t.refunds.is_empty() => Err(has_refunds()),
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
        // `TradeStatus` is non-exhaustive; the sandbox makes no other state.
        _ => Err(BizError::acq("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;
    use std::time::Duration;

    use alipay::testing::AlipaySigner;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::config::{Faults, SandboxConfig};
    use crate::ids::SplitMix;
    use crate::model::{Order, OrderTerms, Product};

    fn signer() -> &'static AlipaySigner {
        static S: OnceLock<AlipaySigner> = OnceLock::new();
        S.get_or_init(|| {
            AlipaySigner::new(alipay::AppPrivateKey::generate().expect("a key generates"))
        })
    }

    fn terms(product: Product) -> OrderTerms {
        OrderTerms {
            product,
            total_fen: 1000,
            subject: "x".into(),
            body: None,
            notify_url: None,
            return_url: None,
            quit_url: None,
            passback_params: None,
            charset: "utf-8".into(),
            sign_type: "RSA2".into(),
            timeout_express: Some("15d".into()),
            time_expire: None,
            agreement_sign: None,
        }
    }

    fn biz(out: &str) -> Biz {
        match json!({ "out_trade_no": out }) {
            serde_json::Value::Object(m) => Biz(m),
            _ => unreachable!(),
        }
    }

    fn ctx<'a>(cfg: &'a SandboxConfig, after: Duration) -> Ctx<'a> {
        Ctx {
            now: datetime!(2024-01-01 10:00:00 UTC) + after,
            signer: signer(),
            cfg,
        }
    }

    fn state() -> State {
        State::new(
            "2088000000000001".into(),
            Faults::default(),
            SplitMix::new(1),
        )
    }

    fn sub_code(r: Result<Reply, BizError>) -> &'static str {
        r.err().map_or("", |e| e.sub_code)
    }

    fn action(r: &Result<Reply, BizError>) -> Option<String> {
        r.as_ref()
            .ok()
            .and_then(|r| r.fields.get("action"))
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    #[test]
    fn unpaid_trades_close_within_the_window_and_not_after() {
        let cfg = SandboxConfig::default();
        let mut st = state();
        let t0 = ctx(&cfg, Duration::ZERO);
        st.new_trade("A", "U1", terms(Product::Create), None, None, &t0);
        st.new_trade("A", "U2", terms(Product::Create), None, None, &t0);
        let r = cancel(
            &mut st,
            "A",
            &biz("U1"),
            &ctx(&cfg, Duration::from_secs(3600)),
        );
        assert_eq!(action(&r).as_deref(), Some("close"));
        assert_eq!(
            st.trade_by_out("A", "U1").map(|t| t.status.clone()),
            Some(TradeStatus::TradeClosed)
        );
        // Repeating the cancel answers the same, even after the window.
        let late = ctx(&cfg, Duration::from_secs(48 * 3600));
        assert_eq!(
            action(&cancel(&mut st, "A", &biz("U1"), &late)).as_deref(),
            Some("close")
        );
        let at_edge = ctx(&cfg, cfg.cancel_window);
        assert!(cancel(&mut st, "A", &biz("U2"), &at_edge).is_ok());
        st.new_trade("A", "U3", terms(Product::Create), None, None, &t0);
        let past = ctx(&cfg, cfg.cancel_window + Duration::from_millis(1));
        assert_eq!(
            sub_code(cancel(&mut st, "A", &biz("U3"), &past)),
            "ACQ.TRADE_CANCEL_TIME_OUT"
        );
        assert_eq!(
            st.trade_by_out("A", "U3").map(|t| t.status.clone()),
            Some(TradeStatus::WaitBuyerPay)
        );
    }

    #[test]
    fn paid_trades_are_refunded_unless_refunded_already_finished_or_too_old() {
        let cfg = SandboxConfig {
            cancel_window: Duration::from_secs(600),
            ..Default::default()
        };
        let mut st = state();
        let t0 = ctx(&cfg, Duration::ZERO);
        for out in ["P1", "P2", "P3", "P4", "P5"] {
            let no = st.new_trade("A", out, terms(Product::Barcode), None, None, &t0);
            st.pay_trade(&no, &t0).expect("pays");
        }
        let no = |st: &State, out: &str| st.trade_by_out("A", out).map(|t| t.trade_no.clone());
        let r = cancel(&mut st, "A", &biz("P1"), &t0);
        assert_eq!(action(&r).as_deref(), Some("refund"));
        let t = st.trade_by_out("A", "P1").expect("exists");
        assert_eq!(
            (t.status.clone(), t.refunded_fen()),
            (TradeStatus::TradeClosed, 1000)
        );
        assert_eq!(
            action(&cancel(&mut st, "A", &biz("P1"), &t0)).as_deref(),
            Some("refund"),
            "a repeated cancel answers as the first one"
        );

        let partial = |out: &str, fen: u64| Refund {
            out_request_no: format!("{out}-R"),
            amount_fen: fen,
            reason: None,
            at: t0.now_ms(),
            via: "refund".into(),
        };
        let p2 = no(&st, "P2").expect("exists");
        st.apply_refund(&p2, partial("P2", 100), &t0)
            .expect("refunds");
        assert_eq!(
            sub_code(cancel(&mut st, "A", &biz("P2"), &t0)),
            "ACQ.REASON_TRADE_REFUND_FEE_ERR"
        );
        assert_eq!(st.trades[&p2].refunded_fen(), 100, "nothing more refunded");
        let p3 = no(&st, "P3").expect("exists");
        st.apply_refund(&p3, partial("P3", 1000), &t0)
            .expect("refunds");
        assert_eq!(
            sub_code(cancel(&mut st, "A", &biz("P3"), &t0)),
            "ACQ.REASON_TRADE_REFUND_FEE_ERR",
            "fully refunded by the refund API"
        );

        let past = ctx(&cfg, Duration::from_secs(601));
        assert_eq!(
            sub_code(cancel(&mut st, "A", &biz("P4"), &past)),
            "ACQ.TRADE_CANCEL_TIME_OUT"
        );
        let p5 = no(&st, "P5").expect("exists");
        if let Some(t) = st.trades.get_mut(&p5) {
            t.status = TradeStatus::TradeFinished;
        }
        assert_eq!(
            sub_code(cancel(&mut st, "A", &biz("P5"), &t0)),
            "ACQ.TRADE_HAS_FINISHED"
        );
    }

    #[test]
    fn orders_nobody_opened_are_voided_for_every_product_at_any_time() {
        let cfg = SandboxConfig::default();
        let mut st = state();
        let t0 = ctx(&cfg, Duration::ZERO);
        let products = [
            Product::Precreate,
            Product::Page,
            Product::Wap,
            Product::App,
        ];
        for (i, p) in products.into_iter().enumerate() {
            st.insert_order(Order {
                token: format!("tok{i}"),
                app_id: "A".into(),
                out_trade_no: format!("O{i}"),
                terms: terms(p),
                created_at: t0.now_ms(),
                expires_at: None,
                voided: false,
                trade_no: None,
            });
        }
        let late = ctx(&cfg, Duration::from_secs(30 * 24 * 3600));
        for i in 0..products.len() {
            let out = format!("O{i}");
            let r = cancel(&mut st, "A", &biz(&out), &late);
            assert_eq!(action(&r).as_deref(), Some("close"), "{out}");
            assert!(r.is_ok_and(|r| !r.fields.contains_key("trade_no")));
            assert!(st.orders[&format!("tok{i}")].voided);
            assert!(st.open_order(&format!("tok{i}"), &late).is_err(), "{out}");
        }
        assert_eq!(
            sub_code(cancel(&mut st, "A", &biz("NEVER"), &t0)),
            "ACQ.TRADE_NOT_EXIST"
        );
    }
}
