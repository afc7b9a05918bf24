//! `zhifu sandbox trigger`: one chosen notification (paid, refunds, closed,
//! tampered, duplicate), signed with the sandbox key.
//!
//! When `out_trade_no` names an order or trade the sandbox holds (a real
//! Zhifu order whose payment parameters reached it), the trigger acts on
//! that trade the way the buyer or Alipay would — `paid` pays it,
//! `partial-refund`/`full-refund` refund it, `closed` closes it — so the
//! trade number stays the same and a sequence (paid → partial refund →
//! full refund) follows the real state machine; the notification is then
//! the one Alipay would send (normal delivery, retries included), and the
//! call waits for its first attempt. `tampered` and `duplicate` of a held
//! trade are one-shot copies of its paid notification. With no such
//! trade, a one-shot notification for a made-up trade is sent to `url`;
//! either way it is recorded.

use alipay::TradeStatus;
use alipay::testing::form_body;
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;
use crate::ids;
use crate::model::{
    App, Attempt, Delivery, DeliveryState, OrderTerms, Product, Refund, Trade, millis, yuan,
};
use crate::notify::{self, Event};
use crate::sandbox::Sandbox;
use crate::views::{NotificationView, delivery_view};

/// Which notification `trigger` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// `TRADE_SUCCESS` after payment.
    Paid,
    /// `TRADE_SUCCESS` with `refund_fee`, `gmt_refund`, `out_biz_no`.
    PartialRefund,
    /// `TRADE_CLOSED` after a full refund.
    FullRefund,
    /// `TRADE_CLOSED` of an unpaid trade.
    Closed,
    /// A paid notification whose `total_amount` was changed after signing.
    Tampered,
    /// A paid notification sent twice with the same `notify_id`.
    Duplicate,
}

impl std::str::FromStr for TriggerKind {
    type Err = SandboxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.replace('-', "_"))).map_err(|_| {
            SandboxError::InvalidInput(format!(
                "unknown trigger {s:?} (paid, partial-refund, full-refund, closed, tampered, duplicate)"
            ))
        })
    }
}

/// A notification to send once, outside any trade the sandbox holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerRequest {
    /// What to send.
    pub kind: TriggerKind,
    /// Where to POST it (default: the held trade's `notify_url`).
    #[serde(default)]
    pub url: Option<String>,
    /// App id (default: the only registered app, or a placeholder).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Order number (default: generated).
    #[serde(default)]
    pub out_trade_no: Option<String>,
    /// `"88.88"` (default).
    #[serde(default)]
    pub total_amount: Option<String>,
    /// Refund amount for `partial_refund` (default: half, at least 0.01).
    #[serde(default)]
    pub refund_amount: Option<String>,
    /// Subject (default `Zhifu sandbox trigger`).
    #[serde(default)]
    pub subject: Option<String>,
}

impl Sandbox {
    /// Sends one chosen notification to any URL, signed with the sandbox key
    /// (the Stripe-CLI-style `zhifu sandbox trigger`). It is recorded in the
    /// notification list and never retried.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] for bad amounts or URLs.
    pub async fn trigger(&self, r: TriggerRequest) -> Result<NotificationView, SandboxError> {
        if let Some(view) = self.trigger_held(&r).await? {
            return Ok(view);
        }
        let held = match &r.out_trade_no {
            Some(no) => {
                let st = self.lock().await;
                let app = st.resolve_app(r.app_id.as_deref()).ok();
                app.and_then(|a| st.trade_by_out(&a, no).cloned())
            }
            None => None,
        };
        let url = match (&r.url, &held) {
            (Some(u), _) => u.clone(),
            (None, Some(t)) => t.terms.notify_url.clone().ok_or_else(|| {
                SandboxError::InvalidInput("the trade has no notify_url: give url".into())
            })?,
            (None, None) => {
                return Err(SandboxError::InvalidInput(
                    "url is required for a trade the sandbox does not hold".into(),
                ));
            }
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SandboxError::InvalidInput("url must be http(s)".into()));
        }
        let amount = |s: Option<&str>, default: u64| -> Result<u64, SandboxError> {
            match s {
                None => Ok(default),
                Some(s) => alipay::Amount::payable(s).map(|a| a.fen()).map_err(|_| {
                    SandboxError::InvalidInput(format!("{s:?} is not an amount like 88.88"))
                }),
            }
        };
        let total = match &held {
            Some(t) => t.terms.total_fen,
            None => amount(r.total_amount.as_deref(), 8888)?,
        };
        let refund = amount(r.refund_amount.as_deref(), (total / 2).max(1))?;
        if refund > total {
            return Err(SandboxError::InvalidInput(
                "refund_amount exceeds total_amount".into(),
            ));
        }
        let (app, buyer_id, buyer_logon_id) = {
            let st = self.lock().await;
            let registered = match &r.app_id {
                Some(id) => st.apps.get(id).cloned(),
                None if st.apps.len() == 1 => st.apps.values().next().cloned(),
                None => None,
            };
            let app = registered.unwrap_or_else(|| App {
                app_id: r
                    .app_id
                    .clone()
                    .unwrap_or_else(|| "9021000100000000".into()),
                seller_id: "2088000000000000".into(),
                app_public_key: String::new(),
                created_at: 0,
                aes_key: None,
            });
            (app, st.buyer_id.clone(), st.buyer_logon_id())
        };
        let signer = self.signer();
        let ctx = self.ctx(&signer);
        let now = ctx.now_ms();
        let out_trade_no = r
            .out_trade_no
            .clone()
            .unwrap_or_else(|| format!("TRIGGER_{}", ids::digits(10)));
        let paid = r.kind != TriggerKind::Closed;
        let mut t = if let Some(mut t) = held.clone() {
            // A copy of the held trade as paid (the held record is left as
            // it is: a one-shot notification changes nothing there).
            t.status = TradeStatus::TradeSuccess;
            t.gmt_payment = t.gmt_payment.or(Some(now - 30_000));
            t.refunds.clear();
            t.terms.notify_url = Some(url.clone());
            t
        } else {
            Trade {
                app_id: app.app_id.clone(),
                trade_no: ids::trade_no(ctx.now),
                out_trade_no: out_trade_no.clone(),
                terms: OrderTerms {
                    product: Product::Page,
                    total_fen: total,
                    subject: r
                        .subject
                        .clone()
                        .unwrap_or_else(|| "Zhifu sandbox trigger".into()),
                    body: None,
                    notify_url: Some(url.clone()),
                    return_url: None,
                    quit_url: None,
                    passback_params: None,
                    charset: "utf-8".into(),
                    sign_type: "RSA2".into(),
                    timeout_express: None,
                    time_expire: None,
                    agreement_sign: None,
                },
                status: TradeStatus::TradeSuccess,
                seller_id: app.seller_id.clone(),
                buyer_id,
                buyer_logon_id,
                gmt_create: now - 60_000,
                gmt_payment: paid.then_some(now - 30_000),
                gmt_close: None,
                expires_at: None,
                refunds: Vec::new(),
                closed_by: None,
                token: None,
            }
        };
        let event = match r.kind {
            TriggerKind::Paid | TriggerKind::Tampered | TriggerKind::Duplicate => Event::Paid,
            TriggerKind::PartialRefund => Event::PartialRefund,
            TriggerKind::FullRefund => Event::FullRefund,
            TriggerKind::Closed => Event::Closed,
        };
        if matches!(r.kind, TriggerKind::PartialRefund | TriggerKind::FullRefund) {
            t.refunds.push(Refund {
                out_request_no: format!("R{}", ids::digits(10)),
                amount_fen: if r.kind == TriggerKind::FullRefund {
                    total
                } else {
                    refund
                },
                reason: None,
                at: now,
                via: "refund".into(),
            });
        }
        if matches!(r.kind, TriggerKind::FullRefund | TriggerKind::Closed) {
            t.status = TradeStatus::TradeClosed;
            t.gmt_close = Some(now);
        }
        let notify_id = ids::notify_id(ctx.now);
        let built = notify::build(&t, &app, event, &notify_id, ctx.now, ctx.signer)?;
        let body = if r.kind == TriggerKind::Tampered {
            // Changed after signing: a correct verifier must refuse it.
            let mut p = built.params.clone();
            for (k, v) in &mut p {
                if k == "total_amount" {
                    *v = yuan(total + 100);
                }
            }
            form_body(&p, alipay::Charset::Utf8)
        } else {
            built.body.clone()
        };
        let id = self
            .record_one_shot(Delivery {
                id: 0,
                app_id: app.app_id.clone(),
                out_trade_no,
                trade_no: t.trade_no.clone(),
                notify_id,
                notify_url: url.clone(),
                trade_status: built.trade_status.clone(),
                event: format!(
                    "trigger:{}",
                    serde_json::to_value(r.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ),
                body: body.clone(),
                charset: "utf-8".into(),
                created_at: now,
                attempts: Vec::new(),
                state: DeliveryState::OneShot,
                scheduled_done: 0,
                next_attempt_at: None,
                held: false,
                in_flight: false,
            })
            .await?;
        let times = if r.kind == TriggerKind::Duplicate {
            2
        } else {
            1
        };
        for i in 0..times {
            let at = self.now();
            let real = time::OffsetDateTime::now_utc();
            let out = notify::post(self.http(), &url, &body, "utf-8").await;
            let (http_status, response_body, error) = match &out {
                notify::Outcome::Answered { status, body } => {
                    (Some(*status), Some(body.clone()), None)
                }
                notify::Outcome::Failed(e) => (None, None, Some(e.clone())),
            };
            self.append_attempt(
                id,
                Attempt {
                    time: alipay::time::format_beijing(at),
                    at_ms: millis(at),
                    real_ms: millis(real),
                    http_status,
                    response_body,
                    error,
                    fault: (i > 0).then(|| "duplicated".to_owned()),
                    kind: if i == 0 {
                        "trigger".into()
                    } else {
                        "duplicate".into()
                    },
                    success: out.is_success(),
                },
            )
            .await?;
        }
        let st = self.lock().await;
        st.deliveries
            .get(&id)
            .map(delivery_view)
            .ok_or(SandboxError::DeliveryNotFound(id))
    }
}

impl Sandbox {
    /// The trigger on a trade the sandbox holds (see the module doc), or
    /// `None` when it holds none by that number (or the kind is a one-shot
    /// one: `tampered`, `duplicate`).
    async fn trigger_held(
        &self,
        r: &TriggerRequest,
    ) -> Result<Option<NotificationView>, SandboxError> {
        let Some(no) = r.out_trade_no.as_deref() else {
            return Ok(None);
        };
        if matches!(r.kind, TriggerKind::Tampered | TriggerKind::Duplicate) {
            return Ok(None);
        }
        let mut st = self.lock().await;
        let Ok(app) = st.resolve_app(r.app_id.as_deref()) else {
            return Ok(None);
        };
        if st.trade_by_out(&app, no).is_none() && st.order_by_out(&app, no).is_none() {
            return Ok(None);
        }
        let before = st.deliveries.keys().next_back().copied().unwrap_or(0);
        let signer = self.signer();
        let ctx = self.ctx(&signer);
        let state_error =
            |status: &TradeStatus, action: &'static str| SandboxError::InvalidTradeState {
                out_trade_no: no.to_owned(),
                status: status.as_str(),
                action,
            };
        let trade_no = match r.kind {
            TriggerKind::Paid => st.pay_by_out(&app, no, &ctx)?,
            TriggerKind::Closed => {
                let trade_no = st.open_by_out(&app, no, &ctx)?;
                let status = st.trades[&trade_no].status.clone();
                if status != TradeStatus::WaitBuyerPay {
                    return Err(state_error(
                        &status,
                        "closed (a paid trade is refunded: full-refund)",
                    ));
                }
                st.close_trade(&trade_no, "close", &ctx)?;
                trade_no
            }
            TriggerKind::PartialRefund | TriggerKind::FullRefund => {
                let t = st
                    .trade_by_out(&app, no)
                    .ok_or_else(|| SandboxError::TradeNotFound {
                        app_id: app.clone(),
                        out_trade_no: no.to_owned(),
                    })?;
                if t.status != TradeStatus::TradeSuccess {
                    return Err(state_error(&t.status, "refunded"));
                }
                let left = t.terms.total_fen.saturating_sub(t.refunded_fen());
                let amount = match (r.kind, r.refund_amount.as_deref()) {
                    (TriggerKind::FullRefund, _) => left,
                    (_, Some(a)) => alipay::Amount::payable(a).map(|a| a.fen()).map_err(|_| {
                        SandboxError::InvalidInput(format!("{a:?} is not an amount like 88.88"))
                    })?,
                    (_, None) => (left / 2).max(1),
                };
                if amount == 0 || amount > left {
                    return Err(SandboxError::InvalidInput(format!(
                        "the refund must be between 0.01 and what is left ({})",
                        yuan(left)
                    )));
                }
                let trade_no = t.trade_no.clone();
                let refund = Refund {
                    out_request_no: format!("R{}", ids::digits(10)),
                    amount_fen: amount,
                    reason: Some("zhifu sandbox trigger".into()),
                    at: ctx.now_ms(),
                    via: "refund".into(),
                };
                st.apply_refund(&trade_no, refund, &ctx)?;
                trade_no
            }
            TriggerKind::Tampered | TriggerKind::Duplicate => return Ok(None),
        };
        self.flush(&mut st).await?;
        let queued = st
            .deliveries
            .range(before + 1..)
            .filter(|(_, d)| d.trade_no == trade_no)
            .map(|(id, _)| *id)
            .next_back();
        drop(st);
        let Some(id) = queued else {
            return Err(SandboxError::InvalidInput(format!(
                "done on trade {trade_no}, but Alipay sends no notification for it on this \
                 product (the sandbox's notify_matrix)"
            )));
        };
        // Wait for the first attempt (the worker delivers it), so that the
        // caller sees the merchant's answer. In explicit mode nothing is
        // delivered until the clock is advanced, so there is nothing to wait for.
        let waits = if self.config().mode == crate::config::SandboxMode::Explicit {
            0
        } else {
            300
        };
        for _ in 0..waits {
            {
                let st = self.lock().await;
                if let Some(d) = st.deliveries.get(&id)
                    && !d.attempts.is_empty()
                {
                    return Ok(Some(delivery_view(d)));
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let st = self.lock().await;
        st.deliveries
            .get(&id)
            .map(|d| Some(delivery_view(d)))
            .ok_or(SandboxError::DeliveryNotFound(id))
    }
}
