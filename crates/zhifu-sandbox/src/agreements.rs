//! The agreement state machine (docs/agreements.md, Sandbox): an
//! agreement is `TEMP` while its signing page is open, `NORMAL` once the
//! buyer agrees, `STOP` while the buyer has paused it, `UNSIGN` once ended
//! by either side. Signing and unsigning queue a signed `dut_user_sign` /
//! `dut_user_unsign` notification on the trade notifications' schedule.
//! Paying a pay-and-sign order signs its agreement straight to `NORMAL`.

use crate::error::SandboxError;
use crate::ids;
use crate::model::{Agreement, AgreementState};
use crate::notify;
use crate::schedule::Outgoing;
use crate::state::{Ctx, State};

/// How long a signed agreement stays valid; public agreement answers show
/// an `invalid_time` about a century away.
const VALIDITY_DAYS: i64 = 36_500;

impl State {
    pub(crate) fn agreement_by_token(&self, token: &str) -> Option<&Agreement> {
        self.agreements.values().find(|a| a.token == token)
    }

    pub(crate) fn put_agreement(&mut self, a: Agreement) {
        self.dirty.agreements.insert(a.agreement_no.clone());
        self.agreements.insert(a.agreement_no.clone(), a);
    }

    /// The buyer agrees on the signing page: `TEMP` → `NORMAL`, and the
    /// `dut_user_sign` notification is queued. Agreeing twice changes nothing.
    pub(crate) fn agree(&mut self, agreement_no: &str, ctx: &Ctx<'_>) -> Result<(), SandboxError> {
        let now = ctx.now_ms();
        let Some(a) = self.agreements.get_mut(agreement_no) else {
            return Err(SandboxError::InvalidInput(format!(
                "no agreement {agreement_no}"
            )));
        };
        if a.status != AgreementState::Temp {
            return Ok(());
        }
        a.status = AgreementState::Normal;
        a.sign_time = Some(now);
        a.invalid_at = Some(now + VALIDITY_DAYS * 24 * 3600 * 1000);
        self.dirty.agreements.insert(agreement_no.to_owned());
        self.queue_agreement_notification(agreement_no, "dut_user_sign", ctx)
    }

    /// The buyer declines: to the merchant the agreement never existed
    /// (kept, marked, so the signing page can say what happened).
    pub(crate) fn decline(&mut self, agreement_no: &str) -> bool {
        match self.agreements.get_mut(agreement_no) {
            Some(a) if a.status == AgreementState::Temp && !a.declined => {
                a.declined = true;
                self.dirty.agreements.insert(agreement_no.to_owned());
                true
            }
            _ => false,
        }
    }

    /// Ends a `NORMAL` or `STOP` agreement; `notify` queues `dut_user_unsign`.
    /// Returns whether it was still in force.
    pub(crate) fn unsign(
        &mut self,
        agreement_no: &str,
        notify: bool,
        ctx: &Ctx<'_>,
    ) -> Result<bool, SandboxError> {
        let now = ctx.now_ms();
        let Some(a) = self.agreements.get_mut(agreement_no) else {
            return Ok(false);
        };
        if !matches!(a.status, AgreementState::Normal | AgreementState::Stop) {
            return Ok(false);
        }
        a.status = AgreementState::Unsign;
        a.unsign_time = Some(now);
        a.invalid_at = Some(now);
        self.dirty.agreements.insert(agreement_no.to_owned());
        if notify {
            self.queue_agreement_notification(agreement_no, "dut_user_unsign", ctx)?;
        }
        Ok(true)
    }

    /// The buyer pauses (`NORMAL` → `STOP`) or resumes (`STOP` → `NORMAL`)
    /// deductions. No notification: none is documented for it.
    pub(crate) fn set_paused(&mut self, agreement_no: &str, paused: bool) -> bool {
        let Some(a) = self.agreements.get_mut(agreement_no) else {
            return false;
        };
        let next = match (a.status, paused) {
            (AgreementState::Normal, true) => AgreementState::Stop,
            (AgreementState::Stop, false) => AgreementState::Normal,
            _ => return false,
        };
        a.status = next;
        self.dirty.agreements.insert(agreement_no.to_owned());
        true
    }

    /// Pay and sign: the buyer paid an order that carried
    /// `agreement_sign_params`, which signs its agreement at once (`NORMAL`,
    /// no signing page) and sends `dut_user_sign` to `sign_notify_url`, else
    /// to the order's `notify_url`, queued after the trade's own. An
    /// external agreement number already in force (same app, product and
    /// scene) is not signed a second time; the payment stands either way.
    pub(crate) fn sign_paid_agreement(
        &mut self,
        trade_no: &str,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        let Some(t) = self.trades.get(trade_no) else {
            return Ok(());
        };
        let Some(p) = t.terms.agreement_sign.clone() else {
            return Ok(());
        };
        let app_id = t.app_id.clone();
        let principal_id = t.buyer_id.clone();
        let notify_url = p
            .sign_notify_url
            .clone()
            .or_else(|| t.terms.notify_url.clone());
        let (charset, sign_type) = (t.terms.charset.clone(), t.terms.sign_type.clone());
        let in_force = p.external_agreement_no.as_ref().is_some_and(|ext| {
            self.agreements.values().any(|a| {
                a.app_id == app_id
                    && !a.declined
                    && a.external_agreement_no.as_ref() == Some(ext)
                    && a.personal_product_code == p.personal_product_code
                    && a.sign_scene == p.sign_scene
                    && matches!(a.status, AgreementState::Normal | AgreementState::Stop)
            })
        });
        if in_force {
            return Ok(());
        }
        let now = ctx.now_ms();
        let mut agreement_no = ids::agreement_no(ctx.now);
        while self.agreements.contains_key(&agreement_no) {
            agreement_no = ids::agreement_no(ctx.now);
        }
        self.put_agreement(Agreement {
            agreement_no: agreement_no.clone(),
            token: ids::token(16),
            app_id,
            status: AgreementState::Normal,
            personal_product_code: p.personal_product_code,
            sign_scene: p.sign_scene,
            external_agreement_no: p.external_agreement_no,
            external_logon_id: p.external_logon_id,
            product_code: p.product_code,
            period_type: p.period_type,
            period: p.period,
            execute_time: p.execute_time,
            single_fen: p.single_fen,
            total_fen: p.total_fen,
            total_payments: p.total_payments,
            notify_url,
            return_url: None,
            charset,
            sign_type,
            principal_id,
            created_at: now,
            sign_time: Some(now),
            invalid_at: Some(now + VALIDITY_DAYS * 24 * 3600 * 1000),
            unsign_time: None,
            next_deduct_time: None,
            deductions: 0,
            deducted_fen: 0,
            declined: false,
        });
        self.queue_agreement_notification(&agreement_no, "dut_user_sign", ctx)
    }

    fn queue_agreement_notification(
        &mut self,
        agreement_no: &str,
        notify_type: &str,
        ctx: &Ctx<'_>,
    ) -> Result<(), SandboxError> {
        let logon_id = self.buyer_logon_id();
        let Some(a) = self.agreements.get(agreement_no) else {
            return Ok(());
        };
        let Some(url) = a.notify_url.clone() else {
            return Ok(());
        };
        let notify_id = ids::notify_id(ctx.now);
        let body =
            notify::build_agreement(a, notify_type, &logon_id, &notify_id, ctx.now, ctx.signer)?;
        let outgoing = Outgoing {
            app_id: a.app_id.clone(),
            out_trade_no: a.external_agreement_no.clone().unwrap_or_default(),
            trade_no: a.agreement_no.clone(),
            notify_id,
            notify_url: url,
            status: a.status.as_str().to_owned(),
            event: notify_type.to_owned(),
            body,
            charset: a.charset.clone(),
        };
        self.schedule_delivery(outgoing, ctx);
        Ok(())
    }
}
