//! Starting a sandbox (its state, its "Alipay" key, its clock and, in auto
//! mode, its worker) and stopping it; reading the key a state directory
//! holds.

use std::sync::Arc;

use alipay::AppPrivateKey;
use alipay::testing::AlipaySigner;
use time::OffsetDateTime;
use tokio::sync::{Mutex, Notify, watch};

use crate::config::{SandboxConfig, SandboxMode};
use crate::error::SandboxError;
use crate::ids::{self, SplitMix};
use crate::model::{Agreement, App, Delivery, DeliveryState, Order, Trade, instant, millis};
use crate::requests::RequestLog;
use crate::sandbox::{Clock, Inner, Sandbox};
use crate::state::State;
use crate::store::{Store, Table};
use crate::worker;

impl Sandbox {
    /// Starts a sandbox: opens or creates its state, loads or generates its
    /// Alipay key, and (auto mode) spawns the worker on the current runtime.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] for a bad configuration, store and key errors.
    pub async fn start(mut config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let store = Store::open(config.state_dir.as_deref()).await?;
        let key_given = config.alipay_private_key.is_some();
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
        let (certs, key) = if config.cert_mode {
            let (book, key) = crate::cert_mode::open_book(&store, key, key_given).await?;
            (Some(book), key)
        } else {
            (None, key)
        };
        let signing = crate::sandbox::Signing {
            cert_sn: certs.as_ref().map(crate::certs::CertBook::current_sn),
            signer: Arc::new(AlipaySigner::new(key)),
        };
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
                Some(instant(f))
            }
        };
        let rng = config
            .seed
            .map_or_else(SplitMix::from_entropy, SplitMix::new);
        let mut state = State::new(buyer_id, config.faults.clone(), rng);
        state.withholding_balance_fen = config.withholding_balance_fen;
        for a in store.load::<App>(Table::Apps).await? {
            state.apps.insert(a.app_id.clone(), a);
        }
        for o in store.load::<Order>(Table::Orders).await? {
            state.insert_order(o);
        }
        for t in store.load::<Trade>(Table::Trades).await? {
            state.insert_trade(t);
        }
        for a in store.load::<Agreement>(Table::Agreements).await? {
            state.agreements.insert(a.agreement_no.clone(), a);
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
        let requests = std::sync::Mutex::new(RequestLog::new(config.request_log_capacity));
        let sb = Sandbox {
            inner: Arc::new(Inner {
                cfg: config,
                signing: std::sync::RwLock::new(signing),
                certs,
                state: Mutex::new(state),
                store,
                clock: Clock::new(frozen, offset_ms),
                wake: Notify::new(),
                http,
                stop,
                worker: std::sync::Mutex::new(None),
                requests,
            }),
        };
        if sb.inner.cfg.mode == SandboxMode::Auto {
            let worker = tokio::spawn(worker::run(sb.clone()));
            if let Ok(mut w) = sb.inner.worker.lock() {
                *w = Some(worker);
            }
        }
        Ok(sb)
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

    /// The Alipay private key stored in a state directory, if any (lets a
    /// CLI sign exactly as the sandbox that owns the directory).
    ///
    /// # Errors
    /// Store and key errors.
    pub async fn stored_alipay_key(
        state_dir: &std::path::Path,
    ) -> Result<Option<AppPrivateKey>, SandboxError> {
        let store = Store::open(Some(state_dir)).await?;
        let key = match store.get_meta("alipay_private_key").await? {
            Some(text) => Some(AppPrivateKey::parse(&text)?),
            None => None,
        };
        store.close().await;
        Ok(key)
    }
}
