//! The trade state machine (docs/protocol.md §5.3): trades are created (at once, or when the
//! buyer opens an order's cashier), paid, closed, refunded, timed out and
//! finished here, and every transition queues its notification. The API
//! rules that lead to these transitions live in `api`.

use alipay::TradeStatus;
use time::OffsetDateTime;

use crate::error::SandboxError;
use crate::ids;
use crate::model::{OrderTerms, Refund, Trade, millis};
use crate::notify::Event;
use crate::state::{Ctx, State};

/// Parses `timeout_express` (`Nm`, `Nh`, `Nd`, `1c`) into a deadline from `base`.
pub(crate) fn timeout_deadline(expr: &str, base: OffsetDateTime) -> Option<OffsetDateTime> {
    if expr == "1c" {
        let local = base.to_offset(alipay::time::BEIJING);
        let midnight = local
            .date()
            .next_day()?
            .midnight()
            .assume_offset(alipay::time::BEIJING);
        return Some(midnight);
    }
    let (num, unit) = expr.split_at(expr.len().checked_sub(1)?);
    let n: i64 = num.parse().ok().filter(|n| *n > 0)?;
    let d = match unit {
        "m" => time::Duration::minutes(n),
        "h" => time::Duration::hours(n),
        "d" => time::Duration::days(n),
        _ => return None,
    };
    (d <= time::Duration::days(15)).then_some(base + d)
}

impl OrderTerms {
    /// The deadline of a trade created at `base`: `time_expire` wins over
    /// `timeout_express` (docs/protocol.md §5.1), else the product default.
    pub(crate) fn deadline(&self, base: OffsetDateTime) -> OffsetDateTime {
        if let Some(t) = self
            .time_expire
            .as_deref()
            .and_then(alipay::time::parse_beijing)
        {
            return t;
        }
        self.timeout_express
            .as_deref()
            .and_then(|e| timeout_deadline(e, base))
            .unwrap_or(base + self.product.default_timeout())
    }
}

impl State {
    /// Creates a `WAIT_BUYER_PAY` trade; returns its `trade_no`.
    pub(crate) fn new_trade(
        &mut self,
        app_id: &str,
        out_trade_no: &str,
        terms: OrderTerms,
        token: Option<String>,
        buyer_id: Option<String>,
        ctx: &Ctx<'_>,
    ) -> String {
        let seller_id = self
            .apps
            .get(app_id)
            .map(|a| a.seller_id.clone())
            .unwrap_or_default();
        let mut trade_no = ids::trade_no(ctx.now);
        while self.trades.contains_key(&trade_no) {
            trade_no = ids::trade_no(ctx.now);
        }
        let expires_at = Some(millis(terms.deadline(ctx.now)));
        let buyer_logon_id = self.buyer_logon_id();
        let t = Trade {
            app_id: app_id.to_owned(),
            trade_no: trade_no.clone(),
            out_trade_no: out_trade_no.to_owned(),
            terms,
            status: TradeStatus::WaitBuyerPay,
            seller_id,
            buyer_id: buyer_id.unwrap_or_else(|| self.buyer_id.clone()),
            buyer_logon_id,
            gmt_create: ctx.now_ms(),
            gmt_payment: None,
            gmt_close: None,
            expires_at,
            refunds: Vec::new(),
            closed_by: None,
            token,
        };
        self.insert_trade(t);
        trade_no
    }

    /// The buyer opens the cashier (or scans the QR code): the trade starts
    /// to exist now (docs/protocol.md §5.3). Idempotent.
    pub(crate) fn open_order(
        &mut self,
        token: &str,
        ctx: &Ctx<'_>,
    ) -> Result<String, SandboxError> {
        let o = self
            .orders
            .get(token)
            .cloned()
            .ok_or_else(|| SandboxError::InvalidInput("no such cashier link".into()))?;
        if let Some(t) = o.trade_no {
            return Ok(t);
        }
        if o.voided {
            return Err(SandboxError::InvalidTradeState {
                out_trade_no: o.out_trade_no,
                status: "TRADE_CLOSED",
                action: "opened",
            });
        }
        if o.expires_at.is_some_and(|e| e <= ctx.now_ms()) {
            return Err(SandboxError::InvalidTradeState {
                out_trade_no: o.out_trade_no,
                status: "expired",
                action: "opened",
            });
        }
        let trade_no = self.new_trade(
            &o.app_id,
            &o.out_trade_no,
            o.terms.clone(),
            Some(token.to_owned()),
            None,
            ctx,
        );
        if let Some(o) = self.orders.get_mut(token) {
            o.trade_no = Some(trade_no.clone());
        }
        self.dirty.orders.insert(token.to_owned());
        Ok(trade_no)
    }

    /// The buyer pays a waiting trade.
    pub(crate) fn pay_trade(&mut self, trade_no: &str, ctx: &Ctx<'_>) -> Result<(), SandboxError> {
        let now = ctx.now_ms();
        let t = self
            .trades
            .get_mut(trade_no)
            .ok_or_else(|| SandboxError::InvalidInput(format!("no trade {trade_no}")))?;
        if t.status != TradeStatus::WaitBuyerPay {
            return Err(SandboxError::InvalidTradeState {
                out_trade_no: t.out_trade_no.clone(),
                status: t.status.as_str(),
                action: "paid",
            });
        }
        if t.expires_at.is_some_and(|e| e <= now) {
            return Err(SandboxError::InvalidTradeState {
                out_trade_no: t.out_trade_no.clone(),
                status: "expired",
                action: "paid",
            });
        }
        t.status = TradeStatus::TradeSuccess;
        t.gmt_payment = Some(now);
        self.dirty.trades.insert(trade_no.to_owned());
        self.queue_notification(trade_no, Event::Paid, ctx)?;
        self.sign_paid_agreement(trade_no, ctx)
    }

    /// Pays by `out_trade_no`: opens a not-yet-created order first, as a
    /// buyer who scans and pays at once.
    pub(crate) fn pay_by_out(
        &mut self,
        app_id: &str,
        out_trade_no: &str,
        ctx: &Ctx<'_>,
    ) -> Result<String, SandboxError> {
        let trade_no = match self.trade_by_out(app_id, out_trade_no) {
            Some(t) => t.trade_no.clone(),
            None => {
                let token = self
                    .order_by_out(app_id, out_trade_no)
                    .map(|o| o.token.clone())
                    .ok_or_else(|| SandboxError::TradeNotFound {
                        app_id: app_id.to_owned(),
                        out_trade_no: out_trade_no.to_owned(),
                    })?;
                self.open_order(&token, ctx)?
            }
        };
        self.pay_trade(&trade_no, ctx)?;
        Ok(trade_no)
    }

    /// Opens (scans) an order by `out_trade_no` without paying.
    pub(crate) fn open_by_out(
        &mut self,
        app_id: &str,
        out_trade_no: &str,
        ctx: &Ctx<'_>,
    ) -> Result<String, SandboxError> {
        if let Some(t) = self.trade_by_out(app_id, out_trade_no) {
            return Ok(t.trade_no.clone());
        }
        let token = self
            .order_by_out(app_id, out_trade_no)
            .map(|o| o.token.clone())
            .ok_or_else(|| SandboxError::TradeNotFound {
                app_id: app_id.to_owned(),
                out_trade_no: out_trade_no.to_owned(),
            })?;
        self.open_order(&token, ctx)
    }

    /// Closes a trade (`by`: `close`, `timeout`, `cancel`).
    pub(crate) fn close_trade(
        &mut self,
        trade_no: &str,
        by: &str,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        if let Some(t) = self.trades.get_mut(trade_no) {
            t.status = TradeStatus::TradeClosed;
            t.gmt_close = Some(ctx.now_ms());
            t.closed_by = Some(by.to_owned());
            self.dirty.trades.insert(trade_no.to_owned());
        }
        self.queue_notification(trade_no, Event::Closed, ctx)
    }

    /// Records a refund; closes the trade when fully refunded.
    pub(crate) fn apply_refund(
        &mut self,
        trade_no: &str,
        refund: Refund,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        let Some(t) = self.trades.get_mut(trade_no) else {
            return Ok(());
        };
        t.refunds.push(refund);
        let full = t.refunded_fen() >= t.terms.total_fen;
        if full {
            t.status = TradeStatus::TradeClosed;
            t.gmt_close = Some(ctx.now_ms());
            t.closed_by = Some("refund".into());
        }
        self.dirty.trades.insert(trade_no.to_owned());
        self.queue_notification(
            trade_no,
            if full {
                Event::FullRefund
            } else {
                Event::PartialRefund
            },
            ctx,
        )
    }

    /// Timeouts and the refund window (docs/protocol.md §5.3), as of `ctx.now`. Returns the
    /// next instant at which something here becomes due.
    pub(crate) fn run_timers(&mut self, ctx: &Ctx<'_>) -> Result<Option<i64>, SandboxError> {
        let now = ctx.now_ms();
        let window = ctx.cfg.refund_window.as_millis().min(i64::MAX as u128) as i64;
        let mut expired = Vec::new();
        let mut finished = Vec::new();
        let mut next: Option<i64> = None;
        for t in self.trades.values() {
            match t.status {
                TradeStatus::WaitBuyerPay => {
                    if let Some(e) = t.expires_at {
                        if e <= now {
                            expired.push(t.trade_no.clone());
                        } else {
                            next = Some(next.map_or(e, |n| n.min(e)));
                        }
                    }
                }
                TradeStatus::TradeSuccess => {
                    if let Some(p) = t.gmt_payment {
                        let e = p.saturating_add(window);
                        if e <= now {
                            finished.push(t.trade_no.clone());
                        } else {
                            next = Some(next.map_or(e, |n| n.min(e)));
                        }
                    }
                }
                _ => {}
            }
        }
        for no in expired {
            self.close_trade(&no, "timeout", ctx)?;
        }
        for no in finished {
            if let Some(t) = self.trades.get_mut(&no) {
                t.status = TradeStatus::TradeFinished;
                t.gmt_close = Some(now);
                self.dirty.trades.insert(no.clone());
            }
            self.queue_notification(&no, Event::Finished, ctx)?;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Product;
    use time::macros::datetime;

    #[test]
    fn timeout_express_forms() {
        let base = datetime!(2024-01-01 10:00:00 UTC); // 18:00 in Beijing
        assert_eq!(
            timeout_deadline("90m", base),
            Some(base + time::Duration::minutes(90))
        );
        assert_eq!(
            timeout_deadline("2h", base),
            Some(base + time::Duration::hours(2))
        );
        assert_eq!(
            timeout_deadline("15d", base),
            Some(base + time::Duration::days(15))
        );
        // `1c`: midnight of the Beijing day, i.e. 16:00 UTC.
        assert_eq!(
            timeout_deadline("1c", base),
            Some(datetime!(2024-01-01 16:00:00 UTC))
        );
        for bad in ["16d", "0m", "1.5h", "m", "", "5s", "-5m"] {
            assert_eq!(timeout_deadline(bad, base), None, "{bad}");
        }
    }

    #[test]
    fn time_expire_wins_and_products_have_defaults() {
        let base = datetime!(2024-01-01 10:00:00 UTC);
        let mut t = OrderTerms {
            product: Product::Page,
            total_fen: 100,
            subject: "x".into(),
            body: None,
            notify_url: None,
            return_url: None,
            quit_url: None,
            passback_params: None,
            charset: "utf-8".into(),
            sign_type: "RSA2".into(),
            timeout_express: None,
            time_expire: None,
            agreement_sign: None,
        };
        assert_eq!(t.deadline(base), base + time::Duration::days(15));
        t.product = Product::Create;
        assert_eq!(t.deadline(base), base + time::Duration::hours(3));
        t.timeout_express = Some("10m".into());
        assert_eq!(t.deadline(base), base + time::Duration::minutes(10));
        t.time_expire = Some("2024-01-01 18:30:00".into());
        assert_eq!(t.deadline(base), datetime!(2024-01-01 10:30:00 UTC));
    }
}
