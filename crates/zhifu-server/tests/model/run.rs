//! Carrying out a plan against a running server and sandbox: each
//! operation with the answers it must get, and after each one the
//! invariants that hold at every moment (money safety), not only at rest.

use std::time::Duration;

use serde_json::{Value, json};
use zhifu_sandbox::{Faults, TradeView};
use zhifu_server::ReconcileOptions;
use zhifu_server::jobs::reconcile::run_pass;

use super::plan::{GatewayFault, NotifyFault, Op, Plan};
use crate::common::{Resp, TestApp, s};

pub type Check = Result<(), String>;

/// What the buyer was handed for one channel.
#[derive(Debug, Clone)]
pub enum Params {
    /// page, wap: the signed gateway URL.
    Url(String),
    /// app: the order string.
    OrderString(String),
    /// qr: the code (a sandbox scan URL).
    Qr,
    /// jsapi: the trade exists at Alipay.
    TradeNo,
}

/// What the model knows of one order.
#[derive(Debug, Clone)]
pub struct MOrder {
    pub id: String,
    pub out_trade_no: String,
    pub total_fen: i64,
    pub params: Vec<(&'static str, Params)>,
    /// The buyer took page/wap/app parameters to the gateway.
    pub visited: bool,
    /// Zhifu said `closed` (by a close answer or a read).
    pub said_closed: bool,
    /// Zhifu said `closing` or `closed` at some point.
    pub saw_close: bool,
    /// The sandbox accepted the buyer's payment.
    pub buyer_paid: bool,
}

impl MOrder {
    fn has_params(&self) -> bool {
        !self.params.is_empty()
    }

    /// The buyer has something Alipay knows without a visit (QR, JSAPI).
    fn known_to_alipay(&self) -> bool {
        self.params
            .iter()
            .any(|(_, p)| matches!(p, Params::Qr | Params::TradeNo))
    }

    /// The most recent page/wap/app parameters, as a URL to open.
    fn browser_url(&self, base: &str) -> Option<String> {
        self.params.iter().rev().find_map(|(_, p)| match p {
            Params::Url(u) => Some(u.clone()),
            Params::OrderString(os) => Some(format!("{base}/gateway.do?{os}")),
            _ => None,
        })
    }
}

/// One `Idempotency-Key` the sequence used.
#[derive(Debug, Clone)]
pub struct KeyRec {
    pub o: usize,
    pub key: String,
    pub amount_fen: i64,
    /// The refund it created, if it did.
    pub refund_id: Option<String>,
}

pub struct Runner<'a> {
    pub app: &'a TestApp,
    pub plan: &'a Plan,
    pub orders: Vec<MOrder>,
    pub keys: Vec<KeyRec>,
    notify_fault: NotifyFault,
    gateway_fault: Option<GatewayFault>,
    /// A line per operation: what it did and what came back.
    pub log: Vec<String>,
    /// What the sequence got to exercise, counted.
    pub stats: std::collections::BTreeMap<&'static str, usize>,
}

pub fn fen_of(v: &Value) -> i64 {
    let t = v.as_str().unwrap_or("0.00");
    let (y, f) = t.split_once('.').unwrap_or((t, "0"));
    y.parse::<i64>().unwrap_or(0) * 100 + format!("{f:0<2}")[..2].parse::<i64>().unwrap_or(0)
}

/// Whether a known bug named in `MODEL_ALLOW` (comma list) is tolerated,
/// so that a long run can look past it for others. Strict by default.
pub fn allowed(name: &str) -> bool {
    std::env::var("MODEL_ALLOW").is_ok_and(|v| v.split(',').any(|x| x.trim() == name))
}

pub fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

pub fn code(r: &Resp) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

pub fn brief(r: &Resp) -> String {
    match r.body.get("status").and_then(Value::as_str) {
        Some(st) if r.status < 300 => format!("{} {st}", r.status),
        _ if r.status < 300 => format!("{}", r.status),
        _ => format!("{} {}", r.status, code(r)),
    }
}

/// The sandbox trade of an order, if Alipay has one.
pub fn trade_of<'t>(trades: &'t [TradeView], out_trade_no: &str) -> Option<&'t TradeView> {
    trades.iter().find(|t| t.out_trade_no == out_trade_no)
}

pub fn trade_paid(t: &TradeView) -> bool {
    t.gmt_payment.is_some()
}

/// The reconcile options of the model: rows of any age.
pub fn reconcile_opts() -> ReconcileOptions {
    ReconcileOptions {
        min_age: Duration::ZERO,
        ..Default::default()
    }
}

impl<'a> Runner<'a> {
    pub fn new(app: &'a TestApp, plan: &'a Plan) -> Self {
        Runner {
            app,
            plan,
            orders: Vec::new(),
            keys: Vec::new(),
            notify_fault: NotifyFault::None,
            gateway_fault: None,
            log: Vec::new(),
            stats: Default::default(),
        }
    }

    // ---- clocks ---------------------------------------------------------

    /// Moves the sandbox clock up to ours (it is frozen, ours runs with
    /// real time), which also runs what became due there (timeouts,
    /// notification attempts).
    pub async fn sync_clocks(&self) {
        use alipay::Clock as _;
        let ours = self.app.clock.now();
        let theirs = self.app.sandbox().now();
        let ahead = (ours - theirs).whole_milliseconds().max(0) as u64;
        self.app
            .sandbox()
            .advance(Duration::from_millis(ahead))
            .await
            .unwrap();
    }

    /// Both clocks forward by `d`.
    pub async fn advance_both(&self, d: Duration) {
        self.app.clock.advance(d);
        self.sync_clocks().await;
    }

    /// Like the kit's `reconcile_to_rest`, but the sandbox's clock moves
    /// with ours, so that Alipay's deadlines pass when ours do.
    pub async fn reconcile_to_rest(&self) -> Vec<String> {
        let opts = reconcile_opts();
        let mut errors = Vec::new();
        for _ in 0..12 {
            self.advance_both(opts.lease + Duration::from_secs(1)).await;
            let r = run_pass(&self.app.state, &opts).await;
            errors.extend(r.errors.iter().cloned());
            if !r.changed_anything() {
                break;
            }
        }
        self.sync_clocks().await;
        errors
    }

    // ---- faults ---------------------------------------------------------

    pub async fn apply_faults(&self) {
        let mut f = Faults::default();
        match self.notify_fault {
            NotifyFault::None => {}
            NotifyFault::Drop => f.drop_rate = 1.0,
            NotifyFault::Duplicate => f.duplicate_rate = 1.0,
            NotifyFault::Reorder => {
                f.reorder_rate = 1.0;
                f.reorder_hold_ms = 60_000;
            }
            NotifyFault::Delay => {
                f.delay_rate = 1.0;
                f.delay_ms = 15;
            }
        }
        if let Some(g) = self.gateway_fault {
            f.system_error_rate = 1.0;
            f.system_error_after_commit = g == GatewayFault::ErrorAfterCommit;
        }
        self.app.sandbox().set_faults(f).await;
    }

    pub async fn clear_faults(&mut self) {
        self.notify_fault = NotifyFault::None;
        self.gateway_fault = None;
        self.apply_faults().await;
    }

    // ---- reads ----------------------------------------------------------

    pub async fn order(&self, o: usize) -> Value {
        self.app.order(&self.orders[o].id).await
    }

    pub async fn refunds(&self, o: usize) -> Vec<Value> {
        let r = self
            .app
            .api(
                "GET",
                &format!("/v1/orders/{}/refunds", self.orders[o].id),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["data"].as_array().unwrap().clone()
    }

    /// `alipay.trade.refund` calls the sandbox answered for an order.
    pub fn refund_calls(&self, o: usize) -> usize {
        self.app.refund_calls(&self.orders[o].out_trade_no)
    }

    // ---- set-up ---------------------------------------------------------

    pub async fn create_orders(&mut self) {
        self.sync_clocks().await;
        for (i, spec) in self.plan.orders.iter().enumerate() {
            let mut body = json!({
                "subject": format!("Model {} #{i}", self.plan.seed),
                "total_amount": yuan(spec.total_fen),
            });
            if let Some(m) = spec.expires_in_minutes {
                body["expires_in_minutes"] = json!(m);
            }
            let r = self.app.api("POST", "/v1/orders", Some(body)).await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            self.orders.push(MOrder {
                id: s(&r.body, "id").to_owned(),
                out_trade_no: s(&r.body, "out_trade_no").to_owned(),
                total_fen: spec.total_fen,
                params: Vec::new(),
                visited: false,
                said_closed: false,
                saw_close: false,
                buyer_paid: false,
            });
            self.log.push(format!(
                "create #{i}: {} fen, expires_in_minutes {:?} -> {}",
                spec.total_fen,
                spec.expires_in_minutes,
                s(&r.body, "out_trade_no")
            ));
        }
    }

    // ---- operations -----------------------------------------------------

    /// Runs one operation of the plan and checks its answers.
    pub async fn step(&mut self, op: &Op) -> Check {
        match op {
            Op::WithGatewayFault { fault, op } => {
                self.gateway_fault = Some(*fault);
                self.apply_faults().await;
                self.log.push(format!("gateway fault {fault:?} on:"));
                let r = self.plain(op).await;
                self.gateway_fault = None;
                self.apply_faults().await;
                r
            }
            other => self.plain(other).await,
        }
    }

    pub fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    pub fn faulted(&self) -> bool {
        self.gateway_fault.is_some()
    }

    /// A server error is never an acceptable answer; a gateway error only
    /// while the gateway is failing.
    pub fn acceptable(&self, what: &str, r: &Resp) -> Check {
        ensure!(r.status != 500, "{what}: 500 internal error: {:?}", r.body);
        ensure!(
            !(r.status == 502 || r.status == 503) || self.faulted() || what == "pay",
            "{what}: {} without any injected gateway fault: {:?}",
            r.status,
            r.body
        );
        Ok(())
    }

    async fn plain(&mut self, op: &Op) -> Check {
        match op {
            Op::Pay { o, channel } => self.pay(*o, channel).await,
            Op::BuyerVisit { o } => {
                let got = self.visit(*o).await;
                self.log.push(format!("buyer visits #{o}: {got:?}"));
                Ok(())
            }
            Op::BuyerOpen { o } => {
                if !self.orders[*o].has_params() {
                    self.log.push(format!("buyer opens #{o}: has nothing"));
                    return Ok(());
                }
                if !self.orders[*o].known_to_alipay() && !self.orders[*o].visited {
                    self.visit(*o).await;
                }
                let r = self
                    .app
                    .sandbox()
                    .open(None, &self.orders[*o].out_trade_no)
                    .await;
                self.log.push(format!(
                    "buyer opens #{o}: {}",
                    r.map(|t| t.trade_status).unwrap_or_else(|e| e.to_string())
                ));
                Ok(())
            }
            Op::BuyerPay { o } => {
                let paid = self.buyer_pays(*o).await;
                self.log.push(format!("buyer pays #{o}: {paid:?}"));
                self.check_pay_allowed(*o, &paid)?;
                self.app.deliver_due().await;
                Ok(())
            }
            Op::BuyerAbandon { o } => self.abandon(*o).await,
            Op::Close { o } => self.close(*o).await,
            Op::CloseWhileBuyerPays { o } => self.close_while_paying(*o).await,
            Op::Refund { o, amount, key } => self.refund(*o, *amount, *key).await,
            Op::RefundTwice {
                o,
                amount,
                same_key,
            } => self.refund_twice(*o, *amount, *same_key).await,
            Op::Refresh { o } => {
                let r = self
                    .app
                    .api(
                        "GET",
                        &format!("/v1/orders/{}?refresh=true", self.orders[*o].id),
                        None,
                    )
                    .await;
                self.log.push(format!("refresh #{o}: {}", brief(&r)));
                self.acceptable("refresh", &r)?;
                ensure!(r.status == 200 || self.faulted(), "refresh: {}", brief(&r));
                Ok(())
            }
            Op::NotifyFaults(f) => {
                self.notify_fault = *f;
                self.apply_faults().await;
                self.log.push(format!("notification faults: {f:?}"));
                Ok(())
            }
            Op::WithGatewayFault { op, .. } => Box::pin(self.plain(op)).await,
            Op::Deliver => {
                self.app.deliver_due().await;
                self.log.push("deliver due notifications".into());
                Ok(())
            }
            Op::Advance { secs } => {
                self.advance_both(Duration::from_secs(*secs)).await;
                self.log.push(format!("advance both clocks {secs} s"));
                Ok(())
            }
            Op::Reconcile {
                concurrent,
                past_leases,
            } => {
                let opts = reconcile_opts();
                if *past_leases {
                    self.advance_both(opts.lease + Duration::from_secs(1)).await;
                }
                let errors = if *concurrent {
                    let (a, b) = tokio::join!(
                        run_pass(&self.app.state, &opts),
                        run_pass(&self.app.state, &opts)
                    );
                    let (pa, pb): (Vec<_>, Vec<_>) = (a.paid.clone(), b.paid.clone());
                    ensure!(
                        pa.iter().all(|p| !pb.contains(p)),
                        "two concurrent passes both took the payment of {pa:?} / {pb:?}"
                    );
                    let mut e = a.errors;
                    e.extend(b.errors);
                    e
                } else {
                    run_pass(&self.app.state, &opts).await.errors
                };
                self.log.push(format!(
                    "reconcile (concurrent {concurrent}, past leases {past_leases}): errors {errors:?}"
                ));
                ensure!(
                    errors.is_empty() || self.faulted(),
                    "reconcile errors without injected gateway faults: {errors:?}"
                );
                self.sync_clocks().await;
                Ok(())
            }
            Op::ReconcileWhileDelivering => {
                let opts = reconcile_opts();
                let (r, ()) =
                    tokio::join!(run_pass(&self.app.state, &opts), self.app.deliver_due());
                self.log
                    .push(format!("reconcile while delivering: errors {:?}", r.errors));
                ensure!(
                    r.errors.is_empty(),
                    "reconcile errors without injected gateway faults: {:?}",
                    r.errors
                );
                Ok(())
            }
        }
    }

    async fn pay(&mut self, o: usize, channel: &'static str) -> Check {
        let mut body = json!({ "channel": channel });
        if channel == "jsapi" {
            body["buyer_id"] = json!("2088000000000077");
        }
        let r = self.app.pay(&self.orders[o].id, body).await;
        self.log.push(format!("pay #{o} {channel}: {}", brief(&r)));
        self.acceptable("pay", &r)?;
        match r.status {
            200 => {
                let p = match channel {
                    "page" | "wap" => Params::Url(s(&r.body, "url").to_owned()),
                    "app" => Params::OrderString(s(&r.body, "order_string").to_owned()),
                    "qr" => Params::Qr,
                    _ => Params::TradeNo,
                };
                self.orders[o].params.push((channel, p));
            }
            409 => ensure!(
                matches!(code(&r), "order_not_payable" | "order_expired"),
                "pay: 409 {}",
                code(&r)
            ),
            // Alipay binds an out_trade_no to the product it was first
            // offered with: another channel's call is refused.
            502 if code(&r) == "alipay_error"
                && r.body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("ACQ.CONTEXT_INCONSISTENT")) => {}
            _ => ensure!(self.faulted(), "pay: {}", brief(&r)),
        }
        Ok(())
    }

    /// The buyer's browser takes page/wap/app parameters to the gateway;
    /// returns where it was sent (the cashier), if anywhere.
    async fn visit(&mut self, o: usize) -> Option<String> {
        let url = self.orders[o].browser_url(&self.app.base)?;
        let r = self.app.http.get(&url).send().await.unwrap();
        let loc = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        if r.status().is_redirection() {
            self.orders[o].visited = true;
        }
        loc
    }

    /// The buyer pays at the sandbox (after taking page/wap/app parameters
    /// to the gateway when Alipay has not seen the order yet).
    async fn buyer_pays(&mut self, o: usize) -> Result<(), String> {
        if !self.orders[o].has_params() {
            return Err("the buyer has no payment parameters".into());
        }
        if !self.orders[o].known_to_alipay() && !self.orders[o].visited {
            self.visit(o).await;
        }
        self.app
            .sandbox()
            .pay(None, &self.orders[o].out_trade_no)
            .await
            .map_err(|e| e.to_string())
    }

    /// A payment the sandbox accepted after Zhifu had said `closed`: Zhifu
    /// reports `closed` only when nothing can pay the order any more.
    fn check_pay_allowed(&mut self, o: usize, paid: &Result<(), String>) -> Check {
        if paid.is_ok() {
            ensure!(
                !self.orders[o].said_closed,
                "#{o}: the buyer could pay an order Zhifu had reported `closed`"
            );
            self.orders[o].buyer_paid = true;
        }
        Ok(())
    }

    async fn abandon(&mut self, o: usize) -> Check {
        let Some(cashier) = self.visit(o).await else {
            // QR / JSAPI (or no parameters): the buyer looks and walks away.
            if self.orders[o].has_params() {
                let _ = self
                    .app
                    .sandbox()
                    .open(None, &self.orders[o].out_trade_no)
                    .await;
            }
            self.log.push(format!("buyer looks at #{o} and leaves"));
            return Ok(());
        };
        let url = if cashier.starts_with("http") {
            cashier
        } else {
            self.app.url(&cashier)
        };
        let opened = self.app.http.get(&url).send().await.unwrap().status();
        let cancel = self
            .app
            .http
            .post(format!("{url}/cancel"))
            .send()
            .await
            .unwrap()
            .status();
        self.log.push(format!(
            "buyer opens the cashier of #{o} ({opened}) and cancels ({cancel})"
        ));
        Ok(())
    }

    async fn close(&mut self, o: usize) -> Check {
        let before = self.order(o).await;
        let was = s(&before, "status").to_owned();
        let r = self
            .app
            .api(
                "POST",
                &format!("/v1/orders/{}/close", self.orders[o].id),
                Some(json!({})),
            )
            .await;
        self.log
            .push(format!("close #{o} (was {was}): {}", brief(&r)));
        self.acceptable("close", &r)?;
        self.check_close_answer(o, &was, &r, false)
    }

    fn check_close_answer(&mut self, o: usize, was: &str, r: &Resp, racing: bool) -> Check {
        match r.status {
            200 => {
                let st = s(&r.body, "status");
                ensure!(
                    matches!(st, "closing" | "closed"),
                    "close answered 200 with status {st}"
                );
                if matches!(was, "closing" | "closed") {
                    ensure!(st == was, "closing a {was} order answered {st}");
                }
                let m = &self.orders[o];
                if was == "pending" && !self.faulted() && !racing {
                    // Nothing live the buyer could pay with: final.
                    let only_alipay_side = m
                        .params
                        .iter()
                        .all(|(_, p)| matches!(p, Params::Qr | Params::TradeNo));
                    ensure!(
                        st == "closed" || !only_alipay_side,
                        "close of #{o} (buyer holds {:?}) answered {st}, expected closed",
                        m.params.iter().map(|(c, _)| *c).collect::<Vec<_>>()
                    );
                }
                self.orders[o].saw_close = true;
                if st == "closed" {
                    self.orders[o].said_closed = true;
                }
            }
            409 => {
                ensure!(code(r) == "order_not_closable", "close: 409 {}", code(r));
                ensure!(
                    matches!(was, "paid" | "refunded") || self.orders[o].buyer_paid || racing,
                    "close of a {was} order the buyer never paid: 409 {}",
                    code(r)
                );
            }
            _ => ensure!(self.faulted(), "close: {}", brief(r)),
        }
        Ok(())
    }

    async fn close_while_paying(&mut self, o: usize) -> Check {
        let before = self.order(o).await;
        let was = s(&before, "status").to_owned();
        if !self.orders[o].known_to_alipay() && !self.orders[o].visited {
            self.visit(o).await;
        }
        let has = self.orders[o].has_params();
        let out = self.orders[o].out_trade_no.clone();
        let path = format!("/v1/orders/{}/close", self.orders[o].id);
        let (r, paid) = tokio::join!(self.app.api("POST", &path, Some(json!({}))), async {
            if has {
                self.app
                    .sandbox()
                    .pay(None, &out)
                    .await
                    .map_err(|e| e.to_string())
            } else {
                Err("the buyer has no payment parameters".to_owned())
            }
        });
        self.log.push(format!(
            "close #{o} (was {was}) while the buyer pays: close {}, pay {paid:?}",
            brief(&r)
        ));
        self.acceptable("close", &r)?;
        // The race itself may go either way; what was said before it holds.
        self.check_pay_allowed(o, &paid)?;
        self.check_close_answer(o, &was, &r, true)?;
        self.app.deliver_due().await;
        Ok(())
    }
}
