//! The sandbox handle: one state behind one lock, the clock, the "Alipay"
//! signer, the store and the worker's wake-up, shared by every clone; and
//! the write-through of changed records. Starting and stopping are in
//! `lifecycle`, the worker in `worker`, the Rust API in `operations`, the
//! routes in `routes`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use alipay::AlipayPublicKey;
use alipay::testing::AlipaySigner;
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard, Notify, watch};
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::error::SandboxError;
use crate::requests::{Call, RequestLog};
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
    /// A clock frozen at `frozen` (explicit mode) or running (auto), moved
    /// forward by `offset_ms`.
    pub(crate) fn new(frozen: Option<OffsetDateTime>, offset_ms: i64) -> Self {
        Clock {
            frozen,
            offset_ms: AtomicI64::new(offset_ms),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        let base = self.frozen.unwrap_or_else(OffsetDateTime::now_utc);
        base + time::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `ms`; returns the total offset.
    pub(crate) fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst) + ms
    }
}

/// What the sandbox signs as "Alipay" with.
#[derive(Clone)]
pub(crate) struct Signing {
    pub signer: Arc<AlipaySigner>,
    /// `alipay_cert_sn` of the signer's certificate (certificate mode).
    pub cert_sn: Option<String>,
}

pub(crate) struct Inner {
    pub cfg: SandboxConfig,
    /// The "Alipay" signer now, and in certificate mode the SN of its
    /// certificate; swapped whole when the certificate rotates.
    pub signing: std::sync::RwLock<Signing>,
    /// Certificate mode: the authority and every certificate issued.
    pub certs: Option<crate::certs::CertBook>,
    pub state: Mutex<State>,
    pub store: Store,
    pub clock: Clock,
    pub wake: Notify,
    pub http: reqwest::Client,
    pub stop: watch::Sender<bool>,
    pub worker: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// The gateway's request log (its own lock: refusals are logged
    /// without touching the state).
    pub requests: std::sync::Mutex<RequestLog>,
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

impl Sandbox {
    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.inner.cfg
    }

    /// The sandbox's own "Alipay" public key (in certificate mode, the key
    /// of its current Alipay certificate).
    pub fn alipay_public_key(&self) -> AlipayPublicKey {
        self.signer().public_key()
    }

    /// The sandbox clock, now.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The operation context, signing with `signer` (from
    /// [`Sandbox::signer`], held by the caller).
    pub(crate) fn ctx<'a>(&'a self, signer: &'a AlipaySigner) -> Ctx<'a> {
        Ctx {
            now: self.inner.clock.now(),
            signer,
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
        for id in &dirty.agreements {
            if let Some(a) = st.agreements.get(id) {
                store.put(Table::Agreements, id, a).await?;
            }
        }
        if !dirty.deliveries.is_empty() || !dirty.trades.is_empty() {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Appends an answered gateway call to the request log.
    pub(crate) fn log_request(&self, call: Call) {
        self.request_log().push(call);
    }

    pub(crate) fn request_log(&self) -> std::sync::MutexGuard<'_, RequestLog> {
        // The log holds no invariant a panic elsewhere could break.
        self.inner
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sandbox's "Alipay" signer now.
    pub(crate) fn signer(&self) -> Arc<AlipaySigner> {
        self.signing().signer
    }

    /// The signer and, in certificate mode, its certificate's SN, read
    /// together (a rotation swaps both at once).
    pub(crate) fn signing(&self) -> Signing {
        match self.inner.signing.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The HTTP client that sends notifications.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }
}
