//! An asynchronous notification from Alipay, from raw bytes to an outcome,
//! each step once and in this order:
//!
//! 1. parse the form once ([`FormParams::parse`]: charset, duplicate keys);
//! 2. verify the signature over those parameters ([`NotifyVerifier::verify`]);
//! 3. answer at once a body this instance already settled
//!    ([`super::settled`]: a replay costs a verification and nothing else);
//!    An agreement notification (`notify_type` `dut_user_sign` /
//!    `dut_user_unsign`) leaves here for [`super::subscriptions`];
//! 4. type the verified fields ([`TradeNotification::from_verified`]);
//! 5. find the order by `out_trade_no` and match `app_id`, `seller_id` (when
//!    configured) and `total_amount` ([`TradeNotification::check_against`]);
//! 6. commit ([`super::commit_report`]), then the after-commit hook. A
//!    payment for an order we had closed is first confirmed with
//!    `alipay.trade.query`, then taken under the late-payment policy.
//!
//! Anything forged, malformed or mismatching changes nothing and is
//! recorded with every reason it was refused for. The answer tells the
//! HTTP layer whether to say `success`: only once the change (or the fact
//! that it was already made) is durable.
//!
//! [`NotifyVerifier::verify`]: alipay::NotifyVerifier::verify

use alipay::{
    ExpectedOrder, FormParams, Mismatch, RequestOptions, TradeNotification, TradeQuery, TradeStatus,
};
use zhifu_store::{AnomalyReason, OrderStatus, Outcome, StoreError, UpdateSource};

use super::commit::{Claim, Evidence, Report, changes_nothing, commit_report, record_refused};
use super::error::PaymentError;
use super::refunds::after_late_payment;
use super::settled::SettledNotifications;
use super::trade::apply_query;
use crate::domain::{amount, epoch_ms, hex};
use crate::error::chain;
use crate::metrics::ACTIVITY_TARGET;
use crate::state::AppState;

/// What the notification endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAnswer {
    /// Applied or already applied: `success` (Alipay stops retrying).
    Success,
    /// Refused for these reasons: `failure` (nothing changed).
    Refused(Vec<AnomalyReason>),
    /// Verified, but it could not be confirmed yet (a payment for a closed
    /// order whose `alipay.trade.query` did not answer): `failure`, so that
    /// Alipay delivers it again; nothing changed.
    Retry,
}

fn mismatch_reason(m: &Mismatch) -> AnomalyReason {
    match m {
        Mismatch::AppId { .. } => AnomalyReason::AppIdMismatch,
        Mismatch::SellerId { .. } => AnomalyReason::SellerIdMismatch,
        Mismatch::TotalAmount { .. } => AnomalyReason::AmountMismatch,
        _ => AnomalyReason::UnknownOrder,
    }
}

/// What the activity log says about a notification: filled in as the
/// steps get that far.
#[derive(Debug, Default)]
struct Seen {
    /// Whether the line is logged at all (else nothing is copied).
    wanted: bool,
    /// The `out_trade_no` it names (claimed until `verified`).
    out_trade_no: Option<String>,
    /// Its `trade_status` (claimed until `verified`).
    trade_status: Option<String>,
    /// Whether its signature verified.
    verified: bool,
}

/// Processes one notification body end to end, and logs one activity line
/// about it (target [`ACTIVITY_TARGET`]): verified or refused and why, and
/// the answer Alipay gets.
///
/// # Errors
/// Store failures: the caller answers `failure` so Alipay retries.
pub async fn handle_notification(st: &AppState, raw: &[u8]) -> Result<NotifyAnswer, StoreError> {
    let started = std::time::Instant::now();
    let mut seen = Seen {
        wanted: tracing::enabled!(target: ACTIVITY_TARGET, tracing::Level::INFO),
        ..Seen::default()
    };
    let answer = process(st, raw, &mut seen).await;
    if seen.wanted {
        let (answer_text, reason) = match &answer {
            Ok(NotifyAnswer::Success) => ("success", String::new()),
            Ok(NotifyAnswer::Refused(reasons)) => ("failure", AnomalyReason::join(reasons)),
            Ok(NotifyAnswer::Retry) => ("failure", "not_confirmed_yet".to_owned()),
            Err(_) => ("failure", "store_error".to_owned()),
        };
        let out_trade_no: String = seen
            .out_trade_no
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(64)
            .collect();
        let trade_status: String = seen
            .trade_status
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(32)
            .collect();
        tracing::info!(
            target: ACTIVITY_TARGET,
            kind = "notification",
            out_trade_no,
            trade_status,
            verified = seen.verified,
            reason,
            answer = answer_text,
            ms = crate::domain::duration_ms(started.elapsed()),
            "notification answered"
        );
    }
    answer
}

async fn process(st: &AppState, raw: &[u8], seen: &mut Seen) -> Result<NotifyAnswer, StoreError> {
    // What an unauthenticated body leaves behind, if anything: its digest
    // and size (see `Evidence::Unverified`).
    let unverified = || Evidence::Unverified {
        body_len: raw.len(),
        sha256: hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, raw).as_ref()),
    };
    let params = match FormParams::parse(raw) {
        Ok(p) => {
            if seen.wanted {
                seen.out_trade_no = p.get("out_trade_no").map(str::to_owned);
                seen.trade_status = p.get("trade_status").map(str::to_owned);
            }
            p
        }
        Err(_) => {
            let reasons = [AnomalyReason::Malformed];
            record_refused(
                st,
                None,
                Claim::default(),
                UpdateSource::Notify,
                &reasons,
                unverified(),
            )
            .await?;
            return Ok(NotifyAnswer::Refused(reasons.to_vec()));
        }
    };
    // What the message claims, for the record of a refusal; none of it is
    // trusted (truncated when recorded). Verification consumes the
    // parameters, so a refusal reads them again from the body: the
    // genuine path, replays included, pays for no copies.
    let claims = |params: Option<&FormParams>| {
        let claimed = |k: &str| {
            params
                .and_then(|p| p.get(k))
                .map(|v| v.chars().take(128).collect::<String>())
        };
        (
            claimed("out_trade_no"),
            claimed("notify_id"),
            claimed("trade_status"),
        )
    };
    let verified = match st.verifier().verify(params) {
        Ok(v) => Ok(v),
        // Certificate mode: Alipay may have rotated its certificate; learn
        // it through a (rate-limited) query of the claimed order, then try
        // once more.
        Err(e)
            if !matches!(
                e,
                alipay::Error::MalformedForm(_) | alipay::Error::UnsupportedCharset(_)
            ) =>
        {
            let (claimed_no, _, _) = claims(FormParams::parse(raw).ok().as_ref());
            match claimed_no {
                Some(no) if st.probe_alipay_cert(&no).await => {
                    FormParams::parse(raw).and_then(|p| st.verifier().verify(p))
                }
                _ => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let verified = match verified {
        Ok(v) => {
            seen.verified = true;
            v
        }
        Err(e) => {
            let (claimed_no, claimed_notify_id, claimed_status) =
                claims(FormParams::parse(raw).ok().as_ref());
            let reason = match e {
                alipay::Error::MalformedForm(_) | alipay::Error::UnsupportedCharset(_) => {
                    AnomalyReason::Malformed
                }
                _ => AnomalyReason::BadSignature,
            };
            let claim = Claim {
                out_trade_no: claimed_no.as_deref(),
                notify_id: claimed_notify_id.as_deref(),
                trade_status: claimed_status.as_deref(),
            };
            record_refused(
                st,
                None,
                claim,
                UpdateSource::Notify,
                &[reason],
                unverified(),
            )
            .await?;
            return Ok(NotifyAnswer::Refused(vec![reason]));
        }
    };
    // Alipay sent it. If this instance already settled these exact bytes,
    // the answer cannot have changed (see `settled`): no database at all.
    let digest = SettledNotifications::digest(raw);
    if st.settled().contains(&digest) {
        st.metrics().notification("duplicate", None);
        return Ok(NotifyAnswer::Success);
    }
    // An agreement's sign/unsign notification comes to the same URL, signed
    // the same way; it has its own record and rules.
    if super::subscriptions::is_agreement(&verified) {
        use super::subscriptions::{AgreementAnswer, handle_agreement_notification};
        return Ok(match handle_agreement_notification(st, &verified).await? {
            AgreementAnswer::Success => {
                st.settled().insert(digest);
                NotifyAnswer::Success
            }
            AgreementAnswer::Refused(reasons) => NotifyAnswer::Refused(reasons),
        });
    }
    // From here on, its fields are the audit payload.
    let payload = || Evidence::Verified(Some(verified.get().to_json().to_string()));
    let n = match TradeNotification::from_verified(&verified) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %chain(&e), "verified notification could not be typed");
            let (claimed_no, claimed_notify_id, claimed_status) = claims(Some(verified.get()));
            let reasons = [AnomalyReason::Malformed];
            let claim = Claim {
                out_trade_no: claimed_no.as_deref(),
                notify_id: claimed_notify_id.as_deref(),
                trade_status: claimed_status.as_deref(),
            };
            record_refused(st, None, claim, UpdateSource::Notify, &reasons, payload()).await?;
            return Ok(NotifyAnswer::Refused(reasons.to_vec()));
        }
    };
    let claim = Claim {
        out_trade_no: Some(&n.out_trade_no),
        notify_id: Some(&n.notify_id),
        trade_status: Some(n.trade_status.as_str()),
    };
    let Some(order) = st
        .store()
        .get_order_by_out_trade_no(&n.out_trade_no)
        .await?
    else {
        let reasons = [AnomalyReason::UnknownOrder];
        record_refused(st, None, claim, UpdateSource::Notify, &reasons, payload()).await?;
        return Ok(NotifyAnswer::Refused(reasons.to_vec()));
    };
    let expected = ExpectedOrder {
        out_trade_no: &order.out_trade_no,
        total_amount: amount(order.total_fen, "total_fen")?,
        app_id: st.app_id(),
        seller_id: st.seller_id(),
    };
    if let Err(mismatches) = n.check_against(&expected) {
        let mut reasons: Vec<AnomalyReason> = mismatches.iter().map(mismatch_reason).collect();
        reasons.dedup();
        record_refused(
            st,
            Some(&order),
            claim,
            UpdateSource::Notify,
            &reasons,
            payload(),
        )
        .await?;
        return Ok(NotifyAnswer::Refused(reasons));
    }
    // A payment for an order we closed is money that arrived: it is taken
    // (never refused into the void), but only on Alipay's own word for the
    // trade's state, asked for now — the notification may be old.
    let pays = matches!(
        n.trade_status,
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished
    );
    if pays && matches!(order.status, OrderStatus::Closing | OrderStatus::Closed) {
        let query = TradeQuery::by_out_trade_no(&order.out_trade_no);
        let answer = match st.call(&query, &RequestOptions::default()).await {
            Ok(resp) => apply_query(st, &order, resp).await,
            Err(e) => Err(PaymentError::Alipay(e)),
        };
        return match answer {
            Ok(r) if matches!(r.order.status, OrderStatus::Paid | OrderStatus::Refunded) => {
                Ok(NotifyAnswer::Success)
            }
            Ok(_) => Ok(NotifyAnswer::Retry),
            Err(PaymentError::Store(e)) => Err(e),
            Err(PaymentError::AlipayMismatch(reason)) => Ok(NotifyAnswer::Refused(vec![reason])),
            Err(e) => {
                tracing::warn!(order = %order.id, error = %chain(&e), "payment after close not confirmed yet");
                Ok(NotifyAnswer::Retry)
            }
        };
    }
    let report = Report {
        source: UpdateSource::Notify,
        notify_id: Some(n.notify_id.clone()),
        trade_status: n.trade_status.clone(),
        trade_no: Some(n.trade_no.clone()),
        buyer_logon_id: n.buyer_logon_id.clone(),
        buyer_id: n.buyer_id.clone(),
        paid_at: n.gmt_payment.map(epoch_ms),
        refund_fee: n.refund_fee,
        payload: None,
    };
    // A replay answers from the read above; only a report that changes
    // something pays for its audit payload.
    if changes_nothing(st, &order, &report) {
        st.metrics().notification("duplicate", None);
        st.settled().insert(digest);
        return Ok(NotifyAnswer::Success);
    }
    let report = Report {
        payload: Some(verified.get().to_json().to_string()),
        ..report
    };
    let result = commit_report(st, &order, report).await?;
    after_late_payment(st, &result).await;
    Ok(match result.outcome {
        Outcome::Applied | Outcome::Duplicate => {
            st.settled().insert(digest);
            NotifyAnswer::Success
        }
        Outcome::Anomaly(reason) => NotifyAnswer::Refused(vec![reason]),
    })
}
