//! The end of a sequence: faults off, notifications drained, both clocks
//! past every deadline and lease, reconcile to rest; then Zhifu must agree
//! with Alipay (the sandbox) on every order, to the fen and to the refund.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use zhifu_sandbox::{DeliveryState, TradeView};

use super::run::{Check, Runner, fen_of, trade_of, trade_paid, yuan};
use crate::common::s;

fn fen(v: &str) -> i64 {
    let (y, f) = v.split_once('.').unwrap_or((v, "0"));
    y.parse::<i64>().unwrap_or(0) * 100 + format!("{f:0<2}")[..2].parse::<i64>().unwrap_or(0)
}

fn fen_v(v: &Value) -> i64 {
    fen(v.as_str().unwrap_or("0"))
}

fn epoch_ms(t: time::OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Runner<'_> {
    /// Delivers every notification still scheduled, moving both clocks to
    /// each next attempt (a dropped one is retried 4 min later, and so on).
    async fn drain_notifications(&self) {
        for _ in 0..12 {
            let now = epoch_ms(self.app.sandbox().now());
            let next = self
                .app
                .sandbox()
                .notifications()
                .await
                .into_iter()
                .filter(|d| d.state == DeliveryState::Pending)
                .map(|d| {
                    d.next_attempt_at
                        .as_deref()
                        .and_then(alipay::time::parse_beijing)
                        .map(epoch_ms)
                        .unwrap_or(now + 60_000)
                })
                .min();
            let Some(next) = next else {
                return;
            };
            let wait = (next - now).max(0) as u64 + 1_000;
            self.advance_both(Duration::from_millis(wait)).await;
        }
    }

    /// Faults off, notifications drained, both clocks past every order's
    /// deadline plus the close margin and past every lease, reconcile until
    /// nothing changes — twice over if notifications were still arriving.
    pub async fn settle(&mut self) -> Check {
        use alipay::Clock as _;
        self.clear_faults().await;
        let margin = self.app.state.money().close_margin;
        let mut latest = 0;
        for o in 0..self.orders.len() {
            let z = self.order(o).await;
            let at = time::OffsetDateTime::parse(
                s(&z, "expires_at"),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            latest = latest.max(epoch_ms(at));
        }
        let mut errors = Vec::new();
        for _ in 0..3 {
            self.drain_notifications().await;
            let now = epoch_ms(self.app.clock.now());
            let past = latest + margin.as_millis() as i64 + 1_000;
            if now < past {
                self.advance_both(Duration::from_millis((past - now) as u64))
                    .await;
            }
            errors.extend(self.reconcile_to_rest().await);
            if !self.unsettled().await {
                break;
            }
        }
        self.drain_notifications().await;
        self.log
            .push(format!("settle: reconcile errors {errors:?}"));
        ensure!(
            errors.is_empty(),
            "reconcile errors with a healthy gateway: {errors:?}"
        );
        Ok(())
    }

    async fn unsettled(&self) -> bool {
        for o in 0..self.orders.len() {
            let z = self.order(o).await;
            if matches!(s(&z, "status"), "pending" | "closing")
                || fen_v(&z["refund_pending_amount"]) > 0
            {
                return true;
            }
        }
        self.app
            .sandbox()
            .notifications()
            .await
            .iter()
            .any(|d| d.state == DeliveryState::Pending)
    }

    /// Everything at rest: Zhifu and Alipay agree.
    pub async fn check_at_rest(&mut self) -> Check {
        let trades = self.app.sandbox().trades().await;
        for o in 0..self.orders.len() {
            self.check_order_at_rest(o, &trades).await?;
        }
        Ok(())
    }

    /// Counts what the sequence reached, from the state at rest.
    pub async fn tally(&mut self) {
        for o in 0..self.orders.len() {
            let z = self.order(o).await;
            let st: &'static str = match s(&z, "status") {
                "paid" => "orders paid",
                "refunded" => "orders refunded",
                "closed" => "orders closed",
                _ => "orders in another state",
            };
            self.count(st);
            if z["paid_after_close"] == json!(true) {
                self.count("orders paid after close");
            }
            if self.orders[o].saw_close {
                self.count("orders seen closing/closed");
            }
            for r in self.refunds(o).await {
                self.count(match (s(&r, "status"), s(&r, "origin")) {
                    ("succeeded", "paid_after_close") => "automatic refunds succeeded",
                    ("succeeded", _) => "refunds succeeded",
                    ("failed", _) => "refunds failed",
                    _ => "refunds in another state",
                });
                let no = s(&r, "out_request_no").to_owned();
                let unknown = self
                    .app
                    .gateway_calls(None, Some(&self.orders[o].out_trade_no))
                    .iter()
                    .any(|c| c.out_request_no.as_deref() == Some(&no) && c.code == "20000");
                if unknown {
                    self.count("refunds that saw an unknown outcome");
                }
            }
        }
    }

    async fn check_order_at_rest(&self, o: usize, trades: &[TradeView]) -> Check {
        let m = &self.orders[o];
        let z = self.order(o).await;
        let refunds = self.refunds(o).await;
        let t = trade_of(trades, &m.out_trade_no);
        let st = s(&z, "status");
        let total = m.total_fen;
        let alipay_refunded = t.map(|t| fen(&t.refund_fee)).unwrap_or(0);
        let paid = t.is_some_and(trade_paid);
        let by_cancel = t.is_some_and(|t| t.refunds.iter().any(|r| r.via == "cancel"));
        let what = format!(
            "#{o} ({}): Zhifu {st} refunded {}; Alipay {}",
            m.out_trade_no,
            s(&z, "refunded_amount"),
            t.map(|t| format!(
                "{} paid {} refund_fee {} refunds {:?}",
                t.trade_status,
                t.gmt_payment.is_some(),
                t.refund_fee,
                t.refunds
                    .iter()
                    .map(|r| format!("{}:{}:{}", r.via, r.out_request_no, r.refund_amount))
                    .collect::<Vec<_>>()
            ))
            .unwrap_or_else(|| "has no trade".into())
        );

        // The status is Alipay's, mapped.
        let want = match t {
            None => "closed",
            Some(t) if !trade_paid(t) => {
                ensure!(
                    t.trade_status == "TRADE_CLOSED",
                    "{what}: an unpaid trade still open at rest"
                );
                "closed"
            }
            // Paid, then refunded by a cancel that raced the payment:
            // the money is back; Zhifu may never have seen it.
            Some(_) if by_cancel => {
                ensure!(
                    alipay_refunded == total && matches!(st, "closed" | "refunded"),
                    "{what}: cancelled after payment"
                );
                st
            }
            Some(_) if alipay_refunded >= total => "refunded",
            Some(_) => "paid",
        };
        ensure!(st == want, "{what}: expected {want}");
        // No money held at Alipay for an order Zhifu calls closed.
        if st == "closed" {
            ensure!(
                !paid || alipay_refunded == total,
                "{what}: money held at Alipay"
            );
        }
        if !by_cancel {
            ensure!(
                fen_v(&z["refunded_amount"]) == alipay_refunded,
                "{what}: refunded amounts differ"
            );
        }
        ensure!(
            fen_v(&z["refund_pending_amount"]) == 0,
            "{what}: {} still pending at rest",
            s(&z, "refund_pending_amount")
        );

        // Refunds: Zhifu's succeeded ones are exactly Alipay's.
        let at_alipay: HashMap<&str, i64> = t
            .map(|t| {
                t.refunds
                    .iter()
                    .filter(|r| r.via == "refund")
                    .map(|r| (r.out_request_no.as_str(), fen(&r.refund_amount)))
                    .collect()
            })
            .unwrap_or_default();
        let mut succeeded = HashMap::new();
        for r in &refunds {
            let no = s(r, "out_request_no");
            match s(r, "status") {
                "succeeded" => {
                    succeeded.insert(no, fen_v(&r["amount"]));
                }
                "failed" => ensure!(
                    !at_alipay.contains_key(no),
                    "{what}: refund {no} reported failed, Alipay made it"
                ),
                other => return Err(format!("{what}: refund {no} still {other} at rest")),
            }
        }
        ensure!(
            succeeded == at_alipay,
            "{what}: succeeded refunds {succeeded:?} != Alipay's {at_alipay:?}"
        );

        // Each refund reached Alipay, and was sent again only after an
        // outcome Zhifu could not know.
        for r in &refunds {
            let no = s(r, "out_request_no");
            let log = self.app.gateway_calls(None, Some(&m.out_trade_no));
            let mine: Vec<_> = log
                .iter()
                .filter(|c| c.out_request_no.as_deref() == Some(no))
                .collect();
            let sent = mine
                .iter()
                .filter(|c| c.method.as_deref() == Some("alipay.trade.refund"))
                .count();
            let unknown = mine.iter().filter(|c| c.code == "20000").count();
            if !self.plan.gateway_faulted() {
                ensure!(
                    sent == 1 && unknown == 0,
                    "{what}: refund {no} sent {sent} times with a healthy gateway"
                );
            }
            ensure!(
                sent >= 1 && sent <= 1 + unknown,
                "{what}: refund {no} ({}) sent {sent} times after {unknown} unknown outcome(s)",
                s(r, "status")
            );
        }

        // A payment taken after Zhifu said closing/closed is flagged, and
        // the policy applies to it.
        let late = z["paid_after_close"] == json!(true);
        if m.saw_close && paid && !by_cancel {
            ensure!(
                late,
                "{what}: paid after Zhifu said closing/closed, not flagged"
            );
        }
        let late_refunds: Vec<&Value> = refunds
            .iter()
            .filter(|r| r["origin"] == "paid_after_close")
            .collect();
        if late {
            let events = self
                .app
                .api("GET", &format!("/v1/orders/{}/events", m.id), None)
                .await
                .body;
            let types: Vec<&str> = events["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["type"].as_str())
                .collect();
            ensure!(
                types.contains(&"order.paid_after_close"),
                "{what}: no order.paid_after_close event: {types:?}"
            );
            if self.plan.variant.keep {
                ensure!(
                    late_refunds.is_empty(),
                    "{what}: policy keep, yet refunded automatically"
                );
            } else {
                ensure!(
                    st == "refunded" && alipay_refunded == total,
                    "{what}: paid after close under the refund policy, not refunded"
                );
                ensure!(
                    late_refunds.len() == 1 && late_refunds[0]["status"] == "succeeded",
                    "{what}: the automatic refund: {late_refunds:?}"
                );
                ensure!(
                    types.contains(&"order.refunded"),
                    "{what}: no order.refunded event: {types:?}"
                );
            }
        } else {
            ensure!(
                late_refunds.is_empty(),
                "{what}: an automatic refund without paid_after_close"
            );
        }
        Ok(())
    }

    // ---- invariants at every moment -------------------------------------

    /// What must hold after every operation: Zhifu never claims more than
    /// Alipay did. Also notes what Zhifu says for the pay checks.
    pub async fn check_always(&mut self) -> Check {
        let trades = self.app.sandbox().trades().await;
        let mut statuses = HashMap::new();
        for o in 0..self.orders.len() {
            let z = self.order(o).await;
            let refunds = self.refunds(o).await;
            let m = &self.orders[o];
            let t = trade_of(&trades, &m.out_trade_no);
            let st = s(&z, "status").to_owned();
            ensure!(
                matches!(
                    st.as_str(),
                    "pending" | "closing" | "paid" | "closed" | "refunded"
                ),
                "#{o}: unknown status {st}"
            );
            if matches!(st.as_str(), "paid" | "refunded") {
                ensure!(
                    t.is_some_and(trade_paid),
                    "#{o}: Zhifu says {st}, Alipay has no payment ({:?})",
                    t.map(|t| &t.trade_status)
                );
            }
            let alipay_refunded = t.map(|t| fen_of(&json!(t.refund_fee))).unwrap_or(0);
            let refunded = fen_of(&z["refunded_amount"]);
            ensure!(
                refunded <= alipay_refunded,
                "#{o}: Zhifu says {} refunded, Alipay {}",
                yuan(refunded),
                yuan(alipay_refunded)
            );
            if st == "refunded" {
                ensure!(
                    alipay_refunded == m.total_fen,
                    "#{o}: refunded, but Alipay refunded {} of {}",
                    yuan(alipay_refunded),
                    yuan(m.total_fen)
                );
            }
            let at_alipay: HashMap<&str, i64> = t
                .map(|t| {
                    t.refunds
                        .iter()
                        .filter(|r| r.via == "refund")
                        .map(|r| (r.out_request_no.as_str(), fen_of(&json!(r.refund_amount))))
                        .collect()
                })
                .unwrap_or_default();
            for r in &refunds {
                let no = s(r, "out_request_no");
                match s(r, "status") {
                    "succeeded" => ensure!(
                        at_alipay.get(no) == Some(&fen_of(&r["amount"])),
                        "#{o}: refund {no} succeeded in Zhifu, Alipay has {:?}",
                        at_alipay.get(no)
                    ),
                    "failed" => ensure!(
                        !at_alipay.contains_key(no),
                        "#{o}: refund {no} failed in Zhifu, but Alipay made it"
                    ),
                    _ => {}
                }
            }
            for no in at_alipay.keys() {
                ensure!(
                    refunds.iter().any(|r| r["out_request_no"] == *no),
                    "#{o}: Alipay has refund {no} Zhifu has no record of"
                );
            }
            statuses.insert(o, st);
        }
        for (o, st) in statuses {
            if st == "closed" {
                self.orders[o].said_closed = true;
            }
            if st == "closed" || st == "closing" {
                self.orders[o].saw_close = true;
            }
        }
        Ok(())
    }
}
