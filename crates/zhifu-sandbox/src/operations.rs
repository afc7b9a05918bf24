//! The Rust API that tools and tests drive a sandbox with (the control API
//! wraps it): registering apps, the buyer's actions, faults, and listings
//! (trades, notifications, the gateway's request log).

use alipay::AlipayPublicKey;

use crate::config::Faults;
use crate::error::SandboxError;
use crate::ids;
use crate::model::{App, Trade, millis};
use crate::requests::{RequestFilter, RequestRecord};
use crate::sandbox::Sandbox;
use crate::views::{NotificationView, RegisteredApp, TradeView, delivery_view, trade_view};

impl Sandbox {
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
            created_at: millis(self.now()),
            aes_key: st.apps.get(&app_id).and_then(|a| a.aes_key.clone()),
        };
        st.apps.insert(app_id.clone(), app);
        st.dirty.apps.insert(app_id.clone());
        self.flush(&mut st).await?;
        Ok(RegisteredApp {
            app_id,
            seller_id,
            alipay_public_key: self.alipay_public_key(),
        })
    }

    /// Enables (or with `None` disables) AES content encryption (docs/protocol.md §8) for an
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
        let signer = self.signer();
        let ctx = self.ctx(&signer);
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
        let signer = self.signer();
        let ctx = self.ctx(&signer);
        let trade_no = st.open_by_out(&app, out_trade_no, &ctx)?;
        self.flush(&mut st).await?;
        Ok(trade_view(&st.trades[&trade_no]))
    }

    /// Sets what the test buyer has left for agreement deductions (`None`:
    /// never runs out), replacing
    /// [`crate::SandboxConfig::withholding_balance_fen`] until the next
    /// start.
    pub async fn set_withholding_balance(&self, balance: Option<alipay::Amount>) {
        self.lock().await.withholding_balance_fen = balance.map(|a| a.fen());
    }

    /// All agreements, newest first.
    pub async fn agreements(&self) -> Vec<crate::views::AgreementView> {
        let st = self.lock().await;
        let mut v: Vec<_> = st.agreements.values().collect();
        v.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then(b.agreement_no.cmp(&a.agreement_no))
        });
        v.into_iter()
            .map(|a| crate::views::agreement_view(a, &self.config().public_url))
            .collect()
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

    /// The gateway calls in the request log that pass `filter`, oldest
    /// first (at most [`crate::SandboxConfig::request_log_capacity`], the
    /// newest kept). Every call `/gateway.do` answered is there, refusals
    /// included.
    pub fn requests(&self, filter: &RequestFilter) -> Vec<RequestRecord> {
        self.request_log().list(filter)
    }
}
