//! The running sandbox: shared state behind one lock, the clock, the
//! persistence write-through, and the worker that delivers notifications
//! and fires timers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use alipay::{AlipayPublicKey, AppPrivateKey};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard, Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{Faults, SandboxConfig, SandboxMode};
use crate::error::SandboxError;
use crate::ids::{self, SplitMix};
use crate::model::{App, Attempt, Delivery, DeliveryState, Order, Trade, beijing, millis};
use crate::notify::{self, Outcome};
use crate::state::{Ctx, State};
use crate::store::{Store, Table};

/// The sandbox clock: real time (auto) or frozen time (explicit), plus
/// whatever a test advanced it by.
#[derive(Debug)]
pub(crate) struct Clock {
    frozen: Option<OffsetDateTime>,
    offset_ms: AtomicI64,
}

impl Clock {
    pub(crate) fn now(&self) -> OffsetDateTime {
        let base = self.frozen.unwrap_or_else(OffsetDateTime::now_utc);
        base + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}

pub(crate) struct Inner {
    pub cfg: SandboxConfig,
    pub key: AppPrivateKey,
    pub pubkey: AlipayPublicKey,
    pub state: Mutex<State>,
    pub store: Store,
    pub clock: Clock,
    pub wake: Notify,
    pub http: reqwest::Client,
    pub stop: watch::Sender<bool>,
    pub worker: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// A running sandbox. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("public_url", &self.inner.cfg.public_url)
            .field("mode", &self.inner.cfg.mode)
            .field("time_scale", &self.inner.cfg.time_scale)
            .field("persistent", &self.inner.cfg.state_dir.is_some())
            .finish_non_exhaustive()
    }
}

/// An app as registered: what the merchant needs to talk to the sandbox.
#[derive(Debug, Clone)]
pub struct RegisteredApp {
    /// The app id to sign requests with.
    pub app_id: String,
    /// The merchant's payee id (`2088` + 12 digits), as in notifications.
    pub seller_id: String,
    /// The sandbox's "Alipay" public key: verifies responses and notifications.
    pub alipay_public_key: AlipayPublicKey,
}

/// What an explicit clock advance did.
#[derive(Debug, Clone, Serialize)]
pub struct AdvanceReport {
    /// The sandbox time after the advance (Beijing).
    pub now: String,
    /// Notification attempts made while draining.
    pub attempts: usize,
}

/// A trade as the control API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TradeView {
    /// App.
    pub app_id: String,
    /// Alipay trade number.
    pub trade_no: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// `page`, `wap`, `app`, `precreate`, `create`, `barcode`.
    pub product: crate::model::Product,
    /// State (§5.3).
    pub trade_status: String,
    /// `"88.88"`.
    pub total_amount: String,
    /// Cumulative refunds, `"0.00"` when none.
    pub refund_fee: String,
    /// Subject.
    pub subject: String,
    /// Buyer id.
    pub buyer_id: String,
    /// Masked buyer login.
    pub buyer_logon_id: String,
    /// Seller id.
    pub seller_id: String,
    /// Creation time (Beijing).
    pub gmt_create: String,
    /// Payment time.
    pub gmt_payment: Option<String>,
    /// Close time.
    pub gmt_close: Option<String>,
    /// When an unpaid trade closes.
    pub time_expire: Option<String>,
    /// The order's notify_url.
    pub notify_url: Option<String>,
    /// Refunds.
    pub refunds: Vec<RefundView>,
}

/// One refund in a [`TradeView`].
#[derive(Debug, Clone, Serialize)]
pub struct RefundView {
    /// Refund request number.
    pub out_request_no: String,
    /// Amount.
    pub refund_amount: String,
    /// Time (Beijing).
    pub gmt_refund: String,
    /// `refund` or `cancel`.
    pub via: String,
}

/// A notification delivery as the control API lists it.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationView {
    /// Delivery id (for resend).
    pub id: u64,
    /// App.
    pub app_id: String,
    /// Merchant order number.
    pub out_trade_no: String,
    /// Alipay trade number.
    pub trade_no: String,
    /// Constant across attempts.
    pub notify_id: String,
    /// Target.
    pub notify_url: String,
    /// `trade_status` carried.
    pub trade_status: String,
    /// Why it was sent.
    pub event: String,
    /// The exact form body sent.
    pub body: String,
    /// `pending`, `delivered`, `gave_up`, `one_shot`.
    pub state: DeliveryState,
    /// Next scheduled attempt (Beijing), if any.
    pub next_attempt_at: Option<String>,
    /// Attempts, oldest first.
    pub attempts: Vec<Attempt>,
}

fn trade_view(t: &Trade) -> TradeView {
    TradeView {
        app_id: t.app_id.clone(),
        trade_no: t.trade_no.clone(),
        out_trade_no: t.out_trade_no.clone(),
        product: t.terms.product,
        trade_status: t.status.as_str().to_owned(),
        total_amount: crate::model::yuan(t.terms.total_fen),
        refund_fee: crate::model::yuan(t.refunded_fen()),
        subject: t.terms.subject.clone(),
        buyer_id: t.buyer_id.clone(),
        buyer_logon_id: t.buyer_logon_id.clone(),
        seller_id: t.seller_id.clone(),
        gmt_create: beijing(t.gmt_create),
        gmt_payment: t.gmt_payment.map(beijing),
        gmt_close: t.gmt_close.map(beijing),
        time_expire: t.expires_at.map(beijing),
        notify_url: t.terms.notify_url.clone(),
        refunds: t
            .refunds
            .iter()
            .map(|r| RefundView {
                out_request_no: r.out_request_no.clone(),
                refund_amount: crate::model::yuan(r.amount_fen),
                gmt_refund: beijing(r.at),
                via: r.via.clone(),
            })
            .collect(),
    }
}

fn delivery_view(d: &Delivery) -> NotificationView {
    NotificationView {
        id: d.id,
        app_id: d.app_id.clone(),
        out_trade_no: d.out_trade_no.clone(),
        trade_no: d.trade_no.clone(),
        notify_id: d.notify_id.clone(),
        notify_url: d.notify_url.clone(),
        trade_status: d.trade_status.clone(),
        event: d.event.clone(),
        body: d.body.clone(),
        state: d.state,
        next_attempt_at: d.next_attempt_at.map(beijing),
        attempts: d.attempts.clone(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptKind {
    Scheduled,
    Resend,
}

impl Sandbox {
    /// Starts a sandbox: opens or creates its state, loads or generates its
    /// Alipay key, and (auto mode) spawns the worker on the current runtime.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] for a bad configuration, store and key errors.
    pub async fn start(mut config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let store = Store::open(config.state_dir.as_deref()).await?;
        let key = match config.alipay_private_key.take() {
            Some(k) => k,
            None => match store.get_meta("alipay_private_key").await? {
                Some(text) => AppPrivateKey::parse(&text)?,
                None => {
                    let k = AppPrivateKey::generate()?;
                    store
                        .put_meta("alipay_private_key", &k.to_pkcs8_base64()?)
                        .await?;
                    k
                }
            },
        };
        let pubkey = key.public_key();
        let buyer_id = match store.get_meta("buyer_id").await? {
            Some(b) => b,
            None => {
                let b = ids::user_id();
                store.put_meta("buyer_id", &b).await?;
                b
            }
        };
        let offset_ms: i64 = store
            .get_meta("clock_offset_ms")
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let frozen = match config.mode {
            SandboxMode::Auto => None,
            SandboxMode::Explicit => {
                let stored = store
                    .get_meta("clock_frozen_ms")
                    .await?
                    .and_then(|v| v.parse::<i64>().ok());
                let f = stored.unwrap_or_else(|| millis(OffsetDateTime::now_utc()));
                store.put_meta("clock_frozen_ms", &f.to_string()).await?;
                Some(crate::model::instant(f))
            }
        };
        let rng = config
            .seed
            .map_or_else(SplitMix::from_entropy, SplitMix::new);
        let mut state = State::new(buyer_id, config.faults.clone(), rng);
        for a in store.load::<App>(Table::Apps).await? {
            state.apps.insert(a.app_id.clone(), a);
        }
        for o in store.load::<Order>(Table::Orders).await? {
            state.insert_order(o);
        }
        for t in store.load::<Trade>(Table::Trades).await? {
            state.insert_trade(t);
        }
        let now_ms = millis(frozen.unwrap_or_else(OffsetDateTime::now_utc));
        for mut d in store.load::<Delivery>(Table::Deliveries).await? {
            // An attempt interrupted by the restart is due again.
            if d.state == DeliveryState::Pending && d.next_attempt_at.is_none() {
                d.next_attempt_at = Some(now_ms);
            }
            state.insert_delivery(d);
        }
        state.dirty = Default::default();
        let http = reqwest::Client::builder()
            .timeout(config.notify_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SandboxError::Http)?;
        let (stop, _) = watch::channel(false);
        let sb = Sandbox {
            inner: Arc::new(Inner {
                cfg: config,
                key,
                pubkey,
                state: Mutex::new(state),
                store,
                clock: Clock {
                    frozen,
                    offset_ms: AtomicI64::new(offset_ms),
                },
                wake: Notify::new(),
                http,
                stop,
                worker: std::sync::Mutex::new(None),
            }),
        };
        if sb.inner.cfg.mode == SandboxMode::Auto {
            let worker = tokio::spawn(sb.clone().worker());
            if let Ok(mut w) = sb.inner.worker.lock() {
                *w = Some(worker);
            }
        }
        Ok(sb)
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.cfg
    }

    /// The sandbox's own "Alipay" public key.
    pub fn alipay_public_key(&self) -> AlipayPublicKey {
        self.inner.pubkey.clone()
    }

    /// The sandbox clock, now.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            now: self.inner.clock.now(),
            key: &self.inner.key,
            cfg: &self.inner.cfg,
        }
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().await
    }

    /// Writes every changed record, then wakes the worker.
    pub(crate) async fn flush(&self, st: &mut State) -> Result<(), SandboxError> {
        let dirty = std::mem::take(&mut st.dirty);
        let store = &self.inner.store;
        for id in &dirty.apps {
            if let Some(a) = st.apps.get(id) {
                store.put(Table::Apps, id, a).await?;
            }
        }
        for id in &dirty.orders {
            if let Some(o) = st.orders.get(id) {
                store.put(Table::Orders, id, o).await?;
            }
        }
        for id in &dirty.trades {
            if let Some(t) = st.trades.get(id) {
                store.put(Table::Trades, id, t).await?;
            }
        }
        for id in &dirty.deliveries {
            if let Some(d) = st.deliveries.get(id) {
                store.put(Table::Deliveries, &id.to_string(), d).await?;
            }
        }
        if !dirty.deliveries.is_empty() || !dirty.trades.is_empty() {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Registers (or re-keys) an app. With `app_id` `None` a sandbox-style
    /// id is generated.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] for an unusable app id; store errors.
    pub async fn register_app(
        &self,
        app_id: Option<String>,
        app_public_key: AlipayPublicKey,
    ) -> Result<RegisteredApp, SandboxError> {
        if let Some(id) = &app_id
            && (id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err(SandboxError::InvalidInput(
                "app_id must be 1–32 ASCII letters or digits".into(),
            ));
        }
        let mut st = self.lock().await;
        let app_id = match app_id {
            Some(id) => id,
            None => {
                let mut id = ids::app_id();
                while st.apps.contains_key(&id) {
                    id = ids::app_id();
                }
                id
            }
        };
        let seller_id = st
            .apps
            .get(&app_id)
            .map(|a| a.seller_id.clone())
            .unwrap_or_else(ids::user_id);
        let app = App {
            app_id: app_id.clone(),
            seller_id: seller_id.clone(),
            app_public_key: app_public_key.to_base64(),
            created_at: millis(self.inner.clock.now()),
            aes_key: st.apps.get(&app_id).and_then(|a| a.aes_key.clone()),
        };
        st.apps.insert(app_id.clone(), app);
        st.dirty.apps.insert(app_id.clone());
        self.flush(&mut st).await?;
        Ok(RegisteredApp {
            app_id,
            seller_id,
            alipay_public_key: self.inner.pubkey.clone(),
        })
    }

    /// Enables (or with `None` disables) AES content encryption (§8) for an
    /// app: requests may then carry `encrypt_type=AES`, and their answers are
    /// encrypted.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`]; [`SandboxError::Alipay`] for a key that
    /// is not base64 of 16, 24 or 32 bytes.
    pub async fn set_aes_key(
        &self,
        app_id: &str,
        aes_key: Option<&str>,
    ) -> Result<(), SandboxError> {
        if let Some(k) = aes_key {
            alipay::AesKey::from_base64(k)?;
        }
        let mut st = self.lock().await;
        let app = st
            .apps
            .get_mut(app_id)
            .ok_or_else(|| SandboxError::UnknownApp(app_id.to_owned()))?;
        app.aes_key = aes_key.map(|k| k.trim().to_owned());
        st.dirty.apps.insert(app_id.to_owned());
        self.flush(&mut st).await
    }

    /// Registered app ids with their seller ids.
    pub async fn apps(&self) -> Vec<(String, String)> {
        let st = self.lock().await;
        st.apps
            .values()
            .map(|a| (a.app_id.clone(), a.seller_id.clone()))
            .collect()
    }

    /// The buyer pays `out_trade_no` — the same as pressing Pay on the
    /// cashier (a not-yet-created order is opened first). `app_id` may be
    /// `None` when exactly one app is registered.
    ///
    /// # Errors
    /// [`SandboxError::UnknownApp`], [`SandboxError::AmbiguousApp`],
    /// [`SandboxError::TradeNotFound`], [`SandboxError::InvalidTradeState`].
    pub async fn pay(&self, app_id: Option<&str>, out_trade_no: &str) -> Result<(), SandboxError> {
        self.pay_returning(app_id, out_trade_no).await.map(|_| ())
    }

    pub(crate) async fn pay_returning(
        &self,
        app_id: Option<&str>,
        out_trade_no: &str,
    ) -> Result<TradeView, SandboxError> {
        let mut st = self.lock().await;
        let app = st.resolve_app(app_id)?;
        let ctx = self.ctx();
        let trade_no = st.pay_by_out(&app, out_trade_no, &ctx)?;
        self.flush(&mut st).await?;
        Ok(trade_view(&st.trades[&trade_no]))
    }

    /// The buyer opens the cashier / scans the QR code without paying: the
    /// trade starts to exist in `WAIT_BUYER_PAY`.
    ///
    /// # Errors
    /// As [`Sandbox::pay`].
    pub async fn open(
        &self,
        app_id: Option<&str>,
        out_trade_no: &str,
    ) -> Result<TradeView, SandboxError> {
        let mut st = self.lock().await;
        let app = st.resolve_app(app_id)?;
        let ctx = self.ctx();
        let trade_no = st.open_by_out(&app, out_trade_no, &ctx)?;
        self.flush(&mut st).await?;
        Ok(trade_view(&st.trades[&trade_no]))
    }

    /// Replaces the active faults. Rates act as clamped to `0.0 ..= 1.0`
    /// (the control API refuses others; use [`Faults::validate`] to check first).
    pub async fn set_faults(&self, faults: Faults) {
        let mut st = self.lock().await;
        st.faults = faults;
    }

    /// The active faults.
    pub async fn faults(&self) -> Faults {
        self.lock().await.faults.clone()
    }

    /// All trades, newest first.
    pub async fn trades(&self) -> Vec<TradeView> {
        let st = self.lock().await;
        let mut v: Vec<&Trade> = st.trades.values().collect();
        v.sort_by(|a, b| {
            b.gmt_create
                .cmp(&a.gmt_create)
                .then(b.trade_no.cmp(&a.trade_no))
        });
        v.into_iter().map(trade_view).collect()
    }

    /// All notification deliveries, newest first.
    pub async fn notifications(&self) -> Vec<NotificationView> {
        let st = self.lock().await;
        st.deliveries.values().rev().map(delivery_view).collect()
    }

    /// Moves the sandbox clock forward, then runs everything that became due
    /// (timeouts, the refund window, notification attempts) and waits for it.
    ///
    /// # Errors
    /// Store errors.
    pub async fn advance(&self, by: Duration) -> Result<AdvanceReport, SandboxError> {
        let ms = i64::try_from(by.as_millis())
            .map_err(|_| SandboxError::InvalidInput("advance is too large".into()))?;
        let total = self.inner.clock.offset_ms.fetch_add(ms, Ordering::SeqCst) + ms;
        self.inner
            .store
            .put_meta("clock_offset_ms", &total.to_string())
            .await?;
        let attempts = self.drain().await?;
        self.inner.wake.notify_one();
        Ok(AdvanceReport {
            now: alipay::time::format_beijing(self.inner.clock.now()),
            attempts,
        })
    }

    /// Runs everything due until nothing is; returns attempts made.
    async fn drain(&self) -> Result<usize, SandboxError> {
        let mut attempts = 0;
        loop {
            let (handles, _) = self.run_due().await?;
            if handles.is_empty() {
                return Ok(attempts);
            }
            attempts += handles.len();
            for h in handles {
                let _ = h.await;
            }
        }
    }

    /// Fires due timers and starts due delivery attempts. Returns the
    /// attempt tasks and the next instant something is due.
    async fn run_due(&self) -> Result<(Vec<JoinHandle<()>>, Option<i64>), SandboxError> {
        let mut st = self.lock().await;
        let ctx = self.ctx();
        let now = ctx.now_ms();
        let next_timer = st.run_timers(&ctx)?;
        let due: Vec<u64> = st
            .deliveries
            .values()
            .filter(|d| {
                d.state == DeliveryState::Pending
                    && !d.in_flight
                    && d.next_attempt_at.is_some_and(|t| t <= now)
            })
            .map(|d| d.id)
            .collect();
        for id in &due {
            if let Some(d) = st.deliveries.get_mut(id) {
                d.in_flight = true;
                d.next_attempt_at = None;
            }
        }
        let next = [next_timer, st.next_delivery_due()]
            .into_iter()
            .flatten()
            .min();
        st.bills.retain(|_, b| b.expires_at > now);
        self.flush(&mut st).await?;
        drop(st);
        let handles = due
            .into_iter()
            .map(|id| {
                let sb = self.clone();
                tokio::spawn(async move { sb.attempt(id, AttemptKind::Scheduled).await })
            })
            .collect();
        Ok((handles, next))
    }

    async fn worker(self) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            let next = match self.run_due().await {
                Ok((_, next)) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "sandbox worker step failed");
                    Some(millis(self.inner.clock.now()) + 1000)
                }
            };
            let wait = match next {
                Some(t) => {
                    let ms = (t - millis(self.inner.clock.now())).max(0);
                    Duration::from_millis(ms as u64)
                }
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One delivery attempt, with faults applied.
    async fn attempt(&self, id: u64, kind: AttemptKind) {
        let decided = {
            let mut st = self.lock().await;
            let Some(d) = st.deliveries.get(&id) else {
                return;
            };
            let (url, body, charset) = (d.notify_url.clone(), d.body.clone(), d.charset.clone());
            let reordered = d.held && d.attempts.is_empty();
            let f = st.faults.clone();
            let drop = st.rng.chance(f.drop_rate);
            let delay = st.rng.chance(f.delay_rate);
            let dup = st.rng.chance(f.duplicate_rate);
            (
                url,
                body,
                charset,
                drop,
                delay.then_some(f.delay_ms),
                dup,
                reordered,
            )
        };
        let (url, body, charset, dropped, delay, dup, reordered) = decided;
        if let Some(ms) = delay {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let started = self.inner.clock.now();
        let real = OffsetDateTime::now_utc();
        let outcome = if dropped {
            None
        } else {
            Some(notify::post(&self.inner.http, &url, &body, &charset).await)
        };
        let fault = if dropped {
            Some("dropped")
        } else if delay.is_some() {
            Some("delayed")
        } else if reordered {
            Some("reordered")
        } else {
            None
        };
        let success = outcome.as_ref().is_some_and(Outcome::is_success);
        let record = |kind: &str,
                      outcome: Option<&Outcome>,
                      at: OffsetDateTime,
                      real: OffsetDateTime,
                      fault: Option<&str>| {
            let (http_status, response_body, error) = match outcome {
                Some(Outcome::Answered { status, body }) => {
                    (Some(*status), Some(body.clone()), None)
                }
                Some(Outcome::Failed(e)) => (None, None, Some(e.clone())),
                None => (None, None, None),
            };
            Attempt {
                time: alipay::time::format_beijing(at),
                at_ms: millis(at),
                real_ms: millis(real),
                http_status,
                response_body,
                error,
                fault: fault.map(str::to_owned),
                kind: kind.to_owned(),
                success: outcome.is_some_and(Outcome::is_success),
            }
        };
        let mut st = self.lock().await;
        if let Some(d) = st.deliveries.get_mut(&id) {
            let kind_name = match kind {
                AttemptKind::Scheduled => "scheduled",
                AttemptKind::Resend => "resend",
            };
            d.attempts
                .push(record(kind_name, outcome.as_ref(), started, real, fault));
            match kind {
                AttemptKind::Scheduled => {
                    d.in_flight = false;
                    d.held = false;
                    d.scheduled_done += 1;
                    if success {
                        d.state = DeliveryState::Delivered;
                        d.next_attempt_at = None;
                    } else {
                        match self.inner.cfg.retry_after(d.scheduled_done) {
                            Some(iv) => d.next_attempt_at = Some(millis(started + iv)),
                            None => {
                                d.state = DeliveryState::GaveUp;
                                d.next_attempt_at = None;
                            }
                        }
                    }
                }
                AttemptKind::Resend => {
                    if success && matches!(d.state, DeliveryState::Pending | DeliveryState::GaveUp)
                    {
                        d.state = DeliveryState::Delivered;
                        d.next_attempt_at = None;
                    }
                }
            }
            st.dirty.deliveries.insert(id);
        }
        // A held (reordered) notification to the same URL goes right after this one.
        let now = millis(self.inner.clock.now());
        let held: Vec<u64> = st
            .deliveries
            .values()
            .filter(|d| {
                d.id != id
                    && d.held
                    && d.notify_url == url
                    && d.state == DeliveryState::Pending
                    && !d.in_flight
            })
            .map(|d| d.id)
            .collect();
        for h in held {
            if let Some(d) = st.deliveries.get_mut(&h) {
                d.next_attempt_at = Some(now);
                st.dirty.deliveries.insert(h);
            }
        }
        if let Err(e) = self.flush(&mut st).await {
            tracing::warn!(error = %e, "could not persist a delivery attempt");
        }
        drop(st);
        if success && dup && kind == AttemptKind::Scheduled {
            let at = self.inner.clock.now();
            let real = OffsetDateTime::now_utc();
            let again = notify::post(&self.inner.http, &url, &body, &charset).await;
            let mut st = self.lock().await;
            if let Some(d) = st.deliveries.get_mut(&id) {
                d.attempts.push(record(
                    "duplicate",
                    Some(&again),
                    at,
                    real,
                    Some("duplicated"),
                ));
                st.dirty.deliveries.insert(id);
            }
            if let Err(e) = self.flush(&mut st).await {
                tracing::warn!(error = %e, "could not persist a duplicate attempt");
            }
        }
    }

    /// Sends delivery `id` once more now (same body, same `notify_id`) and
    /// returns it with the new attempt.
    ///
    /// # Errors
    /// [`SandboxError::DeliveryNotFound`].
    pub async fn resend(&self, id: u64) -> Result<NotificationView, SandboxError> {
        if !self.lock().await.deliveries.contains_key(&id) {
            return Err(SandboxError::DeliveryNotFound(id));
        }
        self.attempt(id, AttemptKind::Resend).await;
        let st = self.lock().await;
        st.deliveries
            .get(&id)
            .map(delivery_view)
            .ok_or(SandboxError::DeliveryNotFound(id))
    }

    /// Stops the worker and closes the store. Pending work stays persisted
    /// (with a state directory) and resumes at the next start.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let handle = self.inner.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.await;
        }
        self.inner.store.close().await;
    }

    pub(crate) fn key(&self) -> &AppPrivateKey {
        &self.inner.key
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Records a one-shot delivery made outside the schedule (trigger).
    pub(crate) async fn record_one_shot(&self, mut d: Delivery) -> Result<u64, SandboxError> {
        let mut st = self.lock().await;
        let id = st.next_delivery_id;
        d.id = id;
        st.insert_delivery(d);
        self.flush(&mut st).await?;
        Ok(id)
    }

    pub(crate) async fn append_attempt(&self, id: u64, a: Attempt) -> Result<(), SandboxError> {
        let mut st = self.lock().await;
        if let Some(d) = st.deliveries.get_mut(&id) {
            d.attempts.push(a);
            st.dirty.deliveries.insert(id);
        }
        self.flush(&mut st).await
    }

    pub(crate) fn delivery_view_of(d: &Delivery) -> NotificationView {
        delivery_view(d)
    }
}
