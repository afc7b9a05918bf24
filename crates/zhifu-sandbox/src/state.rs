//! The trade state machine (§5.3) and the business rules of each trade API
//! (§5.2), over plain in-memory records. No I/O here: callers hold the lock,
//! pass the time in, and persist whatever [`Dirty`] names afterwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alipay::{AppPrivateKey, TradeStatus};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::config::{Faults, SandboxConfig};
use crate::error::SandboxError;
use crate::ids::{self, SplitMix};
use crate::model::{
    App, Delivery, DeliveryState, Order, OrderTerms, Product, Refund, Trade, beijing, millis, yuan,
};
use crate::notify::{self, Event};

/// Records changed since the last flush.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub apps: BTreeSet<String>,
    pub orders: BTreeSet<String>,
    pub trades: BTreeSet<String>,
    pub deliveries: BTreeSet<u64>,
}

/// A bill download link.
#[derive(Debug, Clone)]
pub(crate) struct Bill {
    pub app_id: String,
    pub bill_type: String,
    pub bill_date: String,
    pub expires_at: i64,
}

/// Everything the sandbox knows.
#[derive(Debug)]
pub(crate) struct State {
    pub apps: BTreeMap<String, App>,
    pub orders: BTreeMap<String, Order>,
    pub order_index: HashMap<(String, String), String>,
    pub trades: BTreeMap<String, Trade>,
    pub trade_index: HashMap<(String, String), String>,
    pub deliveries: BTreeMap<u64, Delivery>,
    pub next_delivery_id: u64,
    pub bills: HashMap<String, Bill>,
    pub buyer_id: String,
    pub faults: Faults,
    pub rng: SplitMix,
    pub dirty: Dirty,
}

/// What an operation needs besides the state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub now: OffsetDateTime,
    pub key: &'a AppPrivateKey,
    pub cfg: &'a SandboxConfig,
}

impl Ctx<'_> {
    pub(crate) fn now_ms(&self) -> i64 {
        millis(self.now)
    }
}

/// A business answer: `code`/`msg` plus the API's fields.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub code: &'static str,
    pub msg: &'static str,
    pub fields: Map<String, Value>,
}

impl Reply {
    pub(crate) fn success(fields: Map<String, Value>) -> Self {
        Reply {
            code: "10000",
            msg: "Success",
            fields,
        }
    }
}

/// A business failure, answered inside the method's node.
#[derive(Debug, Clone)]
pub(crate) struct BizError {
    pub code: &'static str,
    pub msg: &'static str,
    pub sub_code: &'static str,
    pub sub_msg: String,
    /// Business fields failures still carry (e.g. `refund_fee`).
    pub extra: Vec<(&'static str, String)>,
}

impl BizError {
    /// `40004 Business Failed` with an `ACQ.*` sub-code (§4.4).
    pub(crate) fn acq(sub_code: &'static str, sub_msg: impl Into<String>) -> Self {
        BizError {
            code: "40004",
            msg: "Business Failed",
            sub_code,
            sub_msg: sub_msg.into(),
            extra: Vec::new(),
        }
    }

    pub(crate) fn invalid(detail: impl AsRef<str>) -> Self {
        BizError::acq(
            "ACQ.INVALID_PARAMETER",
            format!("参数无效：{}", detail.as_ref()),
        )
    }

    fn with(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.extra.push((k, v.into()));
        self
    }
}

fn not_exist() -> BizError {
    BizError::acq("ACQ.TRADE_NOT_EXIST", "交易不存在")
}

/// `biz_content` as the gateway reads it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Biz(pub Map<String, Value>);

impl Biz {
    /// A text field; JSON numbers are read as their text (the gateway
    /// accepts `"total_amount":88.88`); empty strings count as absent.
    pub(crate) fn str(&self, k: &str) -> Option<String> {
        match self.0.get(k)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub(crate) fn req(&self, k: &str) -> Result<String, BizError> {
        self.str(k)
            .ok_or_else(|| BizError::invalid(format!("缺少必选参数 {k}")))
    }

    pub(crate) fn amount(&self, k: &str) -> Result<u64, BizError> {
        let s = self.req(k)?;
        let a =
            alipay::Amount::parse(&s).map_err(|_| BizError::invalid(format!("{k} 格式错误")))?;
        if a.fen() == 0 {
            return Err(BizError::invalid(format!("{k} 必须大于 0")));
        }
        Ok(a.fen())
    }

    fn has_option(&self, k: &str, option: &str) -> bool {
        match self.0.get(k) {
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(option)),
            Some(Value::String(s)) => s.split(',').any(|x| x.trim() == option),
            _ => false,
        }
    }
}

/// System parameters an order carries into its trade.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sys {
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub charset: String,
    pub sign_type: String,
}

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
    /// `timeout_express` (§5.1), else the product default.
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

/// What a reused `out_trade_no` refers to.
enum Reuse {
    New,
    Trade(String),
    Order(String),
}

impl State {
    pub(crate) fn new(buyer_id: String, faults: Faults, rng: SplitMix) -> Self {
        State {
            apps: BTreeMap::new(),
            orders: BTreeMap::new(),
            order_index: HashMap::new(),
            trades: BTreeMap::new(),
            trade_index: HashMap::new(),
            deliveries: BTreeMap::new(),
            next_delivery_id: 1,
            bills: HashMap::new(),
            buyer_id,
            faults,
            rng,
            dirty: Dirty::default(),
        }
    }

    pub(crate) fn insert_order(&mut self, o: Order) {
        self.order_index
            .insert((o.app_id.clone(), o.out_trade_no.clone()), o.token.clone());
        self.dirty.orders.insert(o.token.clone());
        self.orders.insert(o.token.clone(), o);
    }

    pub(crate) fn insert_trade(&mut self, t: Trade) {
        self.trade_index.insert(
            (t.app_id.clone(), t.out_trade_no.clone()),
            t.trade_no.clone(),
        );
        self.dirty.trades.insert(t.trade_no.clone());
        self.trades.insert(t.trade_no.clone(), t);
    }

    pub(crate) fn insert_delivery(&mut self, d: Delivery) {
        self.next_delivery_id = self.next_delivery_id.max(d.id + 1);
        self.dirty.deliveries.insert(d.id);
        self.deliveries.insert(d.id, d);
    }

    pub(crate) fn buyer_logon_id(&self) -> String {
        // Masked like `xud***@126.com` (§6.3).
        format!(
            "sbx***@{}.sandbox.example",
            &self.buyer_id[self.buyer_id.len() - 4..]
        )
    }

    /// The app to act on: the named one, or the only one registered.
    pub(crate) fn resolve_app(&self, app_id: Option<&str>) -> Result<String, SandboxError> {
        match app_id {
            Some(id) if self.apps.contains_key(id) => Ok(id.to_owned()),
            Some(id) => Err(SandboxError::UnknownApp(id.to_owned())),
            None if self.apps.len() == 1 => {
                Ok(self.apps.keys().next().cloned().unwrap_or_default())
            }
            None => Err(SandboxError::AmbiguousApp(self.apps.len())),
        }
    }

    pub(crate) fn trade_by_out(&self, app_id: &str, out_trade_no: &str) -> Option<&Trade> {
        self.trade_index
            .get(&(app_id.to_owned(), out_trade_no.to_owned()))
            .and_then(|t| self.trades.get(t))
    }

    fn order_by_out(&self, app_id: &str, out_trade_no: &str) -> Option<&Order> {
        self.order_index
            .get(&(app_id.to_owned(), out_trade_no.to_owned()))
            .and_then(|t| self.orders.get(t))
    }

    /// `trade_no` wins over `out_trade_no` (§5.1).
    fn find_trade(&self, app_id: &str, biz: &Biz) -> Result<Option<String>, BizError> {
        if let Some(no) = biz.str("trade_no") {
            return Ok(self
                .trades
                .get(&no)
                .filter(|t| t.app_id == app_id)
                .map(|t| t.trade_no.clone()));
        }
        let out = biz
            .str("out_trade_no")
            .ok_or_else(|| BizError::invalid("out_trade_no 和 trade_no 不能同时为空"))?;
        Ok(self.trade_by_out(app_id, &out).map(|t| t.trade_no.clone()))
    }

    fn check_reuse(
        &self,
        app_id: &str,
        out_trade_no: &str,
        terms: &OrderTerms,
        now_ms: i64,
    ) -> Result<Reuse, BizError> {
        if let Some(t) = self.trade_by_out(app_id, out_trade_no) {
            return match t.status {
                TradeStatus::TradeSuccess | TradeStatus::TradeFinished => {
                    Err(BizError::acq("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"))
                }
                TradeStatus::TradeClosed => {
                    Err(BizError::acq("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"))
                }
                _ if t.terms.same_content(terms) && t.terms.product == terms.product => {
                    Ok(Reuse::Trade(t.trade_no.clone()))
                }
                _ => Err(BizError::acq("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")),
            };
        }
        if let Some(o) = self.order_by_out(app_id, out_trade_no) {
            if o.voided {
                return Err(BizError::acq("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"));
            }
            if o.expires_at.is_some_and(|e| e <= now_ms) {
                return Ok(Reuse::New);
            }
            if o.terms.same_content(terms) && o.terms.product == terms.product {
                return Ok(Reuse::Order(o.token.clone()));
            }
            return Err(BizError::acq("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
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
            },
        ))
    }

    /// Page/wap/app pay and precreate: the order is recorded, the trade is
    /// not created (§5.3). Returns the cashier token.
    pub(crate) fn place_order(
        &mut self,
        app_id: &str,
        out_trade_no: String,
        terms: OrderTerms,
        ctx: &Ctx<'_>,
    ) -> Result<String, BizError> {
        match self.check_reuse(app_id, &out_trade_no, &terms, ctx.now_ms())? {
            Reuse::Trade(trade_no) => {
                let token = self.trades.get(&trade_no).and_then(|t| t.token.clone());
                match token {
                    Some(t) => Ok(t),
                    None => Err(BizError::acq("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")),
                }
            }
            Reuse::Order(token) => {
                // The latest signed request decides where results go.
                if let Some(o) = self.orders.get_mut(&token) {
                    o.terms.notify_url = terms.notify_url;
                    o.terms.return_url = terms.return_url;
                    o.terms.quit_url = terms.quit_url;
                    self.dirty.orders.insert(token.clone());
                }
                Ok(token)
            }
            Reuse::New => {
                let token = ids::token(16);
                let expires_at = Some(millis(terms.deadline(ctx.now)));
                self.insert_order(Order {
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

    fn new_trade(
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
    /// to exist now (§5.3). Idempotent.
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
        self.notify(trade_no, Event::Paid, ctx)
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

    fn close_trade(&mut self, trade_no: &str, by: &str, ctx: &Ctx<'_>) -> Result<(), SandboxError> {
        if let Some(t) = self.trades.get_mut(trade_no) {
            t.status = TradeStatus::TradeClosed;
            t.gmt_close = Some(ctx.now_ms());
            t.closed_by = Some(by.to_owned());
            self.dirty.trades.insert(trade_no.to_owned());
        }
        self.notify(trade_no, Event::Closed, ctx)
    }

    /// Timeouts and the refund window (§5.3), as of `ctx.now`. Returns the
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
            self.notify(&no, Event::Finished, ctx)?;
        }
        Ok(next)
    }

    /// Queues the notification of `event` when the trade has a `notify_url`
    /// and the §6.5 matrix says this product notifies it.
    pub(crate) fn notify(
        &mut self,
        trade_no: &str,
        event: Event,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        let Some(t) = self.trades.get(trade_no) else {
            return Ok(());
        };
        let Some(url) = t.terms.notify_url.clone() else {
            return Ok(());
        };
        let m = &ctx.cfg.notify_matrix;
        let row = match t.terms.product {
            Product::Page => m.page,
            Product::Wap => m.wap,
            Product::App => m.app,
            _ => m.face_to_face,
        };
        let wanted = match event {
            Event::Paid => row.trade_success,
            Event::PartialRefund => row.partial_refund,
            Event::FullRefund | Event::Closed => row.trade_closed,
            Event::Finished => row.trade_finished,
        };
        if !wanted {
            return Ok(());
        }
        let Some(app) = self.apps.get(&t.app_id) else {
            return Ok(());
        };
        let notify_id = ids::notify_id(ctx.now);
        let built = notify::build(t, app, event, &notify_id, ctx)?;
        let now = ctx.now_ms();
        let reorder = self.rng.chance(self.faults.reorder_rate);
        let hold = if self.faults.reorder_hold_ms > 0 {
            self.faults.reorder_hold_ms as i64
        } else {
            crate::config::scale(std::time::Duration::from_secs(60), ctx.cfg.time_scale)
                .whole_milliseconds()
                .max(50) as i64
        };
        let id = self.next_delivery_id;
        self.insert_delivery(Delivery {
            id,
            app_id: t.app_id.clone(),
            out_trade_no: t.out_trade_no.clone(),
            trade_no: t.trade_no.clone(),
            notify_id,
            notify_url: url,
            trade_status: built.trade_status,
            event: event.as_str().to_owned(),
            body: built.body,
            charset: t.terms.charset.clone(),
            created_at: now,
            attempts: Vec::new(),
            state: DeliveryState::Pending,
            scheduled_done: 0,
            next_attempt_at: Some(if reorder { now + hold } else { now }),
            held: reorder,
            in_flight: false,
        });
        Ok(())
    }

    // ---- gateway APIs -------------------------------------------------

    pub(crate) fn precreate(
        &mut self,
        app_id: &str,
        biz: &Biz,
        sys: &Sys,
        ctx: &Ctx<'_>,
    ) -> Result<Reply, BizError> {
        let (out, terms) = Self::order_terms(biz, Product::Precreate, sys)?;
        let token = self.place_order(app_id, out.clone(), terms, ctx)?;
        let mut f = Map::new();
        f.insert("out_trade_no".into(), out.into());
        f.insert(
            "qr_code".into(),
            format!("{}/sandbox/scan/{token}", ctx.cfg.public_url).into(),
        );
        Ok(Reply::success(f))
    }

    pub(crate) fn create(
        &mut self,
        app_id: &str,
        biz: &Biz,
        sys: &Sys,
        ctx: &Ctx<'_>,
    ) -> Result<Reply, BizError> {
        let (out, terms) = Self::order_terms(biz, Product::Create, sys)?;
        let trade_no = match self.check_reuse(app_id, &out, &terms, ctx.now_ms())? {
            Reuse::Trade(no) => no,
            Reuse::Order(_) => {
                return Err(BizError::acq("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
            }
            Reuse::New => {
                let buyer = biz.str("buyer_id").or_else(|| biz.str("buyer_open_id"));
                self.new_trade(app_id, &out, terms, None, buyer, ctx)
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
        &mut self,
        app_id: &str,
        biz: &Biz,
        sys: &Sys,
        ctx: &Ctx<'_>,
    ) -> Result<Reply, BizError> {
        let (out, terms) = Self::order_terms(biz, Product::Barcode, sys)?;
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
        let trade_no = match self.check_reuse(app_id, &out, &terms, ctx.now_ms())? {
            Reuse::Trade(no) => no,
            Reuse::Order(_) => {
                return Err(BizError::acq("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改"));
            }
            Reuse::New => self.new_trade(app_id, &out, terms, None, None, ctx),
        };
        if code.ends_with("0003") {
            let t = &self.trades[&trade_no];
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
        self.pay_trade(&trade_no, ctx)
            .map_err(|_| BizError::acq("ACQ.SYSTEM_ERROR", "系统错误"))?;
        let t = &self.trades[&trade_no];
        let mut f = Map::new();
        f.insert("trade_no".into(), trade_no.clone().into());
        f.insert("out_trade_no".into(), out.into());
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
        Ok(Reply::success(f))
    }

    pub(crate) fn query(&self, app_id: &str, biz: &Biz) -> Result<Reply, BizError> {
        let Some(no) = self.find_trade(app_id, biz)? else {
            let mut e = not_exist()
                .with("buyer_pay_amount", "0.00")
                .with("invoice_amount", "0.00");
            if let Some(out) = biz.str("out_trade_no") {
                e = e.with("out_trade_no", out);
            }
            return Err(e
                .with("point_amount", "0.00")
                .with("receipt_amount", "0.00"));
        };
        let t = &self.trades[&no];
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

    pub(crate) fn refund(
        &mut self,
        app_id: &str,
        biz: &Biz,
        ctx: &Ctx<'_>,
    ) -> Result<Reply, BizError> {
        let fail = |e: BizError| e.with("refund_fee", "0.00").with("send_back_fee", "0.00");
        let Some(no) = self.find_trade(app_id, biz).map_err(fail)? else {
            return Err(fail(not_exist()));
        };
        let amount = biz.amount("refund_amount").map_err(fail)?;
        let explicit_no = biz.str("out_request_no");
        let t = &self.trades[&no];
        // Without out_request_no the refund is keyed by the order number (§5.2).
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
        self.apply_refund(&no, refund.clone(), ctx)
            .map_err(|_| BizError::acq("ACQ.SYSTEM_ERROR", "系统错误"))?;
        Ok(Reply::success(refund_fields(
            &self.trades[&no],
            "Y",
            &refund,
        )))
    }

    /// Records a refund; closes the trade when fully refunded.
    fn apply_refund(
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
        self.notify(
            trade_no,
            if full {
                Event::FullRefund
            } else {
                Event::PartialRefund
            },
            ctx,
        )
    }

    pub(crate) fn refund_query(&self, app_id: &str, biz: &Biz) -> Result<Reply, BizError> {
        let req_no = biz.req("out_request_no")?;
        let Some(no) = self.find_trade(app_id, biz)? else {
            return Err(not_exist());
        };
        let t = &self.trades[&no];
        let mut f = Map::new();
        f.insert("out_request_no".into(), req_no.clone().into());
        f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
        // Absence of refund_status means "not received or failed" (§5.2).
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

    pub(crate) fn close(
        &mut self,
        app_id: &str,
        biz: &Biz,
        ctx: &Ctx<'_>,
    ) -> Result<Reply, BizError> {
        let Some(no) = self.find_trade(app_id, biz)? else {
            return Err(not_exist());
        };
        if self.trades[&no].status != TradeStatus::WaitBuyerPay {
            return Err(BizError::acq("ACQ.TRADE_STATUS_ERROR", "交易状态不合法"));
        }
        self.close_trade(&no, "close", ctx)
            .map_err(|_| BizError::acq("ACQ.SYSTEM_ERROR", "系统错误"))?;
        let t = &self.trades[&no];
        let mut f = Map::new();
        f.insert("trade_no".into(), t.trade_no.clone().into());
        f.insert("out_trade_no".into(), t.out_trade_no.clone().into());
        Ok(Reply::success(f))
    }

    pub(crate) fn cancel(
        &mut self,
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
        let Some(no) = self.find_trade(app_id, biz)? else {
            // A precreate QR nobody scanned yet: it is voided, there is no trade.
            if biz.str("trade_no").is_none()
                && let Some(out) = biz.str("out_trade_no")
                && let Some(token) = self.order_by_out(app_id, &out).map(|o| o.token.clone())
            {
                if let Some(o) = self.orders.get_mut(&token) {
                    o.voided = true;
                }
                self.dirty.orders.insert(token);
                return Ok(reply(None, &out, "close", None));
            }
            return Err(not_exist());
        };
        let t = self.trades[&no].clone();
        match t.status {
            TradeStatus::WaitBuyerPay => {
                self.close_trade(&no, "cancel", ctx)
                    .map_err(|_| BizError::acq("ACQ.SYSTEM_ERROR", "系统错误"))?;
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
                self.apply_refund(&no, refund, ctx)
                    .map_err(|_| BizError::acq("ACQ.SYSTEM_ERROR", "系统错误"))?;
                if let Some(t) = self.trades.get_mut(&no) {
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

    pub(crate) fn bill_url(
        &mut self,
        app_id: &str,
        biz: &Biz,
        ctx: &Ctx<'_>,
    ) -> Result<Reply, BizError> {
        let bill_type = biz.req("bill_type")?;
        let bill_date = biz.req("bill_date")?;
        if !matches!(bill_type.as_str(), "trade" | "signcustomer") {
            return Err(BizError::invalid("bill_type 只能是 trade 或 signcustomer"));
        }
        let today = crate::model::beijing_date_digits(ctx.now);
        let date_digits: String = bill_date.chars().filter(char::is_ascii_digit).collect();
        let shape_ok = crate::bill::date_range(&bill_date).is_some();
        if !shape_ok {
            return Err(BizError::invalid("bill_date 格式错误"));
        }
        // Bills exist for past periods only.
        if date_digits.as_str() >= &today[..date_digits.len()] {
            return Err(BizError {
                code: "40004",
                msg: "Business Failed",
                sub_code: "isp.bill_not_exist",
                sub_msg: "账单不存在".into(),
                extra: Vec::new(),
            });
        }
        let token = ids::token(16);
        let ttl = ctx.cfg.bill_url_ttl.as_millis().min(i64::MAX as u128) as i64;
        self.bills.insert(
            token.clone(),
            Bill {
                app_id: app_id.to_owned(),
                bill_type,
                bill_date,
                expires_at: ctx.now_ms() + ttl,
            },
        );
        let mut f = Map::new();
        f.insert(
            "bill_download_url".into(),
            format!("{}/sandbox/bills/{token}", ctx.cfg.public_url).into(),
        );
        Ok(Reply::success(f))
    }

    /// When the next scheduled notification attempt is due.
    pub(crate) fn next_delivery_due(&self) -> Option<i64> {
        self.deliveries
            .values()
            .filter(|d| d.state == DeliveryState::Pending && !d.in_flight)
            .filter_map(|d| d.next_attempt_at)
            .min()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
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
