//! Everything the sandbox knows, as plain in-memory records with their
//! indexes, and [`Ctx`], what an operation needs besides them. No I/O here:
//! callers hold the lock, pass the time in, and persist whatever [`Dirty`]
//! names afterwards. The rules that change these records live in `trade`
//! (the state machine), `schedule` (notifications) and `api` (one module per
//! API family).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use alipay::testing::AlipaySigner;
use time::OffsetDateTime;

use crate::config::{Faults, SandboxConfig};
use crate::error::SandboxError;
use crate::ids::SplitMix;
use crate::model::{Agreement, App, Delivery, Order, Trade, millis};
use crate::wire::{Biz, BizError};

/// Records changed since the last flush.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub apps: BTreeSet<String>,
    pub orders: BTreeSet<String>,
    pub trades: BTreeSet<String>,
    pub deliveries: BTreeSet<u64>,
    pub agreements: BTreeSet<String>,
}

/// A bill download link.
#[derive(Debug, Clone)]
pub(crate) struct Bill {
    pub app_id: String,
    pub bill_type: String,
    pub bill_date: String,
    pub expires_at: i64,
}

/// Who an OAuth code or refresh token was issued to, until when.
#[derive(Debug, Clone)]
pub(crate) struct AuthGrant {
    pub app_id: String,
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
    /// Agreements by `agreement_no`.
    pub agreements: BTreeMap<String, Agreement>,
    /// Unused OAuth authorization codes (memory only: they live minutes).
    pub auth_codes: HashMap<String, AuthGrant>,
    /// Refresh tokens (memory only, like the codes).
    pub refresh_tokens: HashMap<String, AuthGrant>,
    /// The test buyer's balance for deductions, in fen; `None` is unlimited.
    pub withholding_balance_fen: Option<u64>,
    pub buyer_id: String,
    pub faults: Faults,
    pub rng: SplitMix,
    pub dirty: Dirty,
}

/// What an operation needs besides the state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub now: OffsetDateTime,
    /// The sandbox's "Alipay" key.
    pub signer: &'a AlipaySigner,
    pub cfg: &'a SandboxConfig,
}

impl Ctx<'_> {
    pub(crate) fn now_ms(&self) -> i64 {
        millis(self.now)
    }
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
            agreements: BTreeMap::new(),
            auth_codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            withholding_balance_fen: None,
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
        // Masked like `xud***@126.com` (docs/protocol.md §6.3).
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

    pub(crate) fn order_by_out(&self, app_id: &str, out_trade_no: &str) -> Option<&Order> {
        self.order_index
            .get(&(app_id.to_owned(), out_trade_no.to_owned()))
            .and_then(|t| self.orders.get(t))
    }

    /// The trade a request names: `trade_no` wins over `out_trade_no` (docs/protocol.md §5.1).
    pub(crate) fn find_trade(&self, app_id: &str, biz: &Biz) -> Result<Option<String>, BizError> {
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
}
