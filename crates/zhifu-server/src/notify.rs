//! The notification path, and the verified state-change path it shares with
//! `?refresh=true` and the reconcile pass.
//!
//! Notification: verify the signature over the raw body → type it → find the
//! order by `out_trade_no` → check `app_id`, `seller_id` (when configured) and
//! `total_amount` → [`commit_report`], which applies the change and records the
//! notification in one transaction → only then answer `success`. Anything
//! forged, malformed or mismatching changes nothing, is recorded as an
//! anomaly with its reason, and is answered `failure`.

use alipay::{
    Amount, ExpectedOrder, FormParams, Mismatch, QueryResponse, TradeNotification, TradeStatus,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use zhifu_store::{
    AnomalyReason, ApplyResult, NewNotification, Order, Outcome, StoreError, TradeState,
    TradeUpdate, UpdateSource, new_id,
};

use crate::AppState;
use crate::error::{ApiError, chain};

/// What the notification endpoint answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAnswer {
    /// Applied or already applied: `success` (Alipay stops retrying).
    Success,
    /// Refused with this reason: `failure` (nothing changed).
    Refused(String),
}

/// A verified report about one order's trade, from a notification or a
/// query answer.
#[derive(Debug, Clone)]
pub struct Report {
    /// What produced it.
    pub source: UpdateSource,
    /// `notify_id` of a notification.
    pub notify_id: Option<String>,
    /// The trade state.
    pub trade_status: TradeStatus,
    /// Alipay's trade number.
    pub trade_no: Option<String>,
    /// Masked buyer login.
    pub buyer_logon_id: Option<String>,
    /// Buyer id.
    pub buyer_id: Option<String>,
    /// Payment time, epoch ms.
    pub paid_at: Option<i64>,
    /// Cumulative refunded amount.
    pub refund_fee: Option<Amount>,
    /// The message's fields, for the audit record.
    pub payload: Option<String>,
}

fn trade_state(s: &TradeStatus) -> Option<TradeState> {
    Some(match s {
        TradeStatus::WaitBuyerPay => TradeState::WaitBuyerPay,
        TradeStatus::TradeSuccess => TradeState::Success,
        TradeStatus::TradeFinished => TradeState::Finished,
        TradeStatus::TradeClosed => TradeState::Closed,
        _ => return None,
    })
}

fn fen(a: Amount) -> i64 {
    // Amounts are at most 100000000.00 yuan, far inside i64.
    i64::try_from(a.fen()).unwrap_or(i64::MAX)
}

fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The single place where a verified, matched report becomes a state
/// change: one transaction applies it with conditional updates and records
/// it (with its outbox events). Duplicates are no-ops; contradictions are
/// recorded as anomalies. After a change commits, its webhooks are tried
/// once at once.
///
/// # Errors
/// Store failures (nothing was changed then).
pub async fn commit_report(
    st: &AppState,
    order: &Order,
    r: Report,
) -> Result<ApplyResult, StoreError> {
    let now = st.now_ms();
    let record = NewNotification {
        id: new_id("ntf"),
        order_id: Some(order.id.clone()),
        out_trade_no: Some(order.out_trade_no.clone()),
        notify_id: r.notify_id.clone(),
        source: r.source,
        trade_status: Some(r.trade_status.as_str().to_owned()),
        anomaly: None,
        payload: r.payload.clone(),
        received_at: now,
    };
    let Some(state) = trade_state(&r.trade_status) else {
        let mut rec = record;
        rec.anomaly = Some(AnomalyReason::Malformed.as_str().to_owned());
        st.store().record_notification(&rec).await?;
        let order = st
            .store()
            .get_order(&order.id)
            .await?
            .ok_or(StoreError::NotFound("order"))?;
        return Ok(ApplyResult {
            outcome: Outcome::Anomaly(AnomalyReason::Malformed.as_str().to_owned()),
            order,
            events: Vec::new(),
        });
    };
    let update = TradeUpdate {
        order_id: order.id.clone(),
        source: r.source,
        notify_id: r.notify_id,
        trade_state: state,
        trade_no: r.trade_no,
        buyer_logon_id: r.buyer_logon_id,
        buyer_id: r.buyer_id,
        paid_at: r.paid_at,
        refund_fee: r.refund_fee.map(fen),
        at: now,
    };
    let result = st.store().apply_trade_update(&update, &record).await?;
    let reason = match &result.outcome {
        Outcome::Anomaly(reason) => Some(reason.as_str()),
        _ => None,
    };
    if r.source == UpdateSource::Notify {
        st.metrics().notification(result.outcome.as_str(), reason);
    }
    if !result.events.is_empty() {
        tracing::info!(order = %order.id, source = r.source.as_str(), events = ?result.events, "order changed");
        crate::webhook::flush_order(st, &order.id).await;
    } else if let Some(reason) = reason {
        tracing::warn!(order = %order.id, source = r.source.as_str(), reason, "report refused");
    }
    Ok(result)
}

/// What a refused message claimed about itself (recorded, never trusted).
#[derive(Debug, Default)]
struct Claim<'a> {
    out_trade_no: Option<&'a str>,
    notify_id: Option<&'a str>,
    trade_status: Option<&'a str>,
}

async fn record_anomaly(
    st: &AppState,
    order: Option<&Order>,
    claim: Claim<'_>,
    source: UpdateSource,
    reason: &str,
    payload: Option<String>,
) -> Result<(), StoreError> {
    let rec = NewNotification {
        id: new_id("ntf"),
        order_id: order.map(|o| o.id.clone()),
        out_trade_no: claim.out_trade_no.map(|s| s.chars().take(64).collect()),
        notify_id: claim.notify_id.map(|s| s.chars().take(128).collect()),
        source,
        trade_status: claim.trade_status.map(|s| s.chars().take(32).collect()),
        anomaly: Some(reason.to_owned()),
        payload,
        received_at: st.now_ms(),
    };
    st.store().record_notification(&rec).await?;
    if source == UpdateSource::Notify {
        st.metrics().notification("anomaly", Some(reason));
    }
    tracing::warn!(reason, source = source.as_str(), "message refused");
    Ok(())
}

fn mismatch_reason(m: &Mismatch) -> &'static str {
    match m {
        Mismatch::AppId { .. } => AnomalyReason::AppIdMismatch.as_str(),
        Mismatch::SellerId { .. } => AnomalyReason::SellerIdMismatch.as_str(),
        Mismatch::TotalAmount { .. } => AnomalyReason::AmountMismatch.as_str(),
        _ => AnomalyReason::UnknownOrder.as_str(),
    }
}

/// Largest raw payload kept in an anomaly record.
const MAX_PAYLOAD: usize = 8 * 1024;

/// Processes one notification body end to end.
///
/// # Errors
/// Store failures: the caller answers `failure` so Alipay retries.
pub async fn handle_notification(st: &AppState, raw: &[u8]) -> Result<NotifyAnswer, StoreError> {
    let parsed = FormParams::parse(raw).ok();
    let payload = match &parsed {
        Some(p) => Some(p.to_json().to_string()),
        None => Some(String::from_utf8_lossy(&raw[..raw.len().min(MAX_PAYLOAD)]).into_owned()),
    };
    let claimed = |k: &str| parsed.as_ref().and_then(|p| p.get(k)).map(str::to_owned);
    let verified = match st.inner.verifier.verify_body(raw) {
        Ok(v) => v,
        Err(e) => {
            let reason = match e {
                alipay::Error::MalformedForm(_) | alipay::Error::UnsupportedCharset(_) => {
                    AnomalyReason::Malformed
                }
                _ => AnomalyReason::BadSignature,
            };
            // The claimed order is linked for the audit trail only; nothing
            // in an unverified message is trusted.
            let claimed_no = claimed("out_trade_no");
            let order = match &claimed_no {
                Some(no) => st.store().get_order_by_out_trade_no(no).await?,
                None => None,
            };
            record_anomaly(
                st,
                order.as_ref(),
                Claim {
                    out_trade_no: claimed_no.as_deref(),
                    notify_id: claimed("notify_id").as_deref(),
                    trade_status: claimed("trade_status").as_deref(),
                },
                UpdateSource::Notify,
                reason.as_str(),
                payload,
            )
            .await?;
            return Ok(NotifyAnswer::Refused(reason.as_str().to_owned()));
        }
    };
    let n = match TradeNotification::from_verified(&verified) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %chain(&e), "verified notification could not be typed");
            record_anomaly(
                st,
                None,
                Claim {
                    out_trade_no: claimed("out_trade_no").as_deref(),
                    notify_id: claimed("notify_id").as_deref(),
                    trade_status: claimed("trade_status").as_deref(),
                },
                UpdateSource::Notify,
                AnomalyReason::Malformed.as_str(),
                payload,
            )
            .await?;
            return Ok(NotifyAnswer::Refused(
                AnomalyReason::Malformed.as_str().into(),
            ));
        }
    };
    let Some(order) = st
        .store()
        .get_order_by_out_trade_no(&n.out_trade_no)
        .await?
    else {
        record_anomaly(
            st,
            None,
            Claim {
                out_trade_no: Some(&n.out_trade_no),
                notify_id: Some(&n.notify_id),
                trade_status: Some(n.trade_status.as_str()),
            },
            UpdateSource::Notify,
            AnomalyReason::UnknownOrder.as_str(),
            payload,
        )
        .await?;
        return Ok(NotifyAnswer::Refused(
            AnomalyReason::UnknownOrder.as_str().into(),
        ));
    };
    let total = u64::try_from(order.total_fen)
        .ok()
        .and_then(|f| Amount::from_fen(f).ok())
        .ok_or(StoreError::Corrupt {
            column: "total_fen",
        })?;
    let expected = ExpectedOrder {
        out_trade_no: &order.out_trade_no,
        total_amount: total,
        app_id: &st.inner.app_id,
        seller_id: st.inner.seller_id.as_deref(),
    };
    if let Err(mismatches) = n.check_against(&expected) {
        let mut reasons: Vec<&str> = mismatches.iter().map(mismatch_reason).collect();
        reasons.dedup();
        let reason = reasons.join(",");
        record_anomaly(
            st,
            Some(&order),
            Claim {
                out_trade_no: Some(&n.out_trade_no),
                notify_id: Some(&n.notify_id),
                trade_status: Some(n.trade_status.as_str()),
            },
            UpdateSource::Notify,
            &reason,
            payload,
        )
        .await?;
        return Ok(NotifyAnswer::Refused(reason));
    }
    let report = Report {
        source: UpdateSource::Notify,
        notify_id: Some(n.notify_id.clone()),
        trade_status: n.trade_status.clone(),
        trade_no: Some(n.trade_no.clone()),
        buyer_logon_id: n.buyer_logon_id.clone(),
        buyer_id: n.buyer_id.clone(),
        paid_at: n.gmt_payment.map(ms),
        refund_fee: n.refund_fee,
        payload,
    };
    let result = commit_report(st, &order, report).await?;
    Ok(match result.outcome {
        Outcome::Applied | Outcome::Duplicate => NotifyAnswer::Success,
        Outcome::Anomaly(reason) => NotifyAnswer::Refused(reason),
    })
}

/// `POST /alipay/notify`: answers exactly `success` once the change (or the
/// fact that it was already made) is committed.
pub async fn notify_endpoint(State(st): State<AppState>, body: Bytes) -> Response {
    let text = |status: StatusCode, body: &'static str| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    };
    match handle_notification(&st, &body).await {
        Ok(NotifyAnswer::Success) => text(StatusCode::OK, "success"),
        Ok(NotifyAnswer::Refused(_)) => text(StatusCode::BAD_REQUEST, "failure"),
        Err(e) => {
            tracing::error!(error = %chain(&e), "notification not processed; Alipay will retry");
            text(StatusCode::INTERNAL_SERVER_ERROR, "failure")
        }
    }
}

/// Feeds a verified `alipay.trade.query` answer into [`commit_report`],
/// after checking it is about this order and this amount.
///
/// # Errors
/// `502 alipay_mismatch` when the answer is about another trade or amount
/// (recorded as an anomaly); store failures.
pub async fn apply_query(
    st: &AppState,
    order: &Order,
    resp: QueryResponse,
) -> Result<ApplyResult, ApiError> {
    let payload = serde_json::to_string(&resp).ok();
    let reason = if resp.out_trade_no != order.out_trade_no {
        Some(AnomalyReason::UnknownOrder)
    } else if fen(resp.total_amount) != order.total_fen {
        Some(AnomalyReason::AmountMismatch)
    } else {
        None
    };
    if let Some(reason) = reason {
        record_anomaly(
            st,
            Some(order),
            Claim {
                out_trade_no: Some(&resp.out_trade_no),
                notify_id: None,
                trade_status: Some(resp.trade_status.as_str()),
            },
            UpdateSource::Query,
            reason.as_str(),
            payload,
        )
        .await?;
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "alipay_mismatch",
            format!(
                "Alipay's answer does not match the order ({}); nothing was changed",
                reason.as_str()
            ),
        ));
    }
    let report = Report {
        source: UpdateSource::Query,
        notify_id: None,
        trade_status: resp.trade_status.clone(),
        trade_no: Some(resp.trade_no.clone()),
        buyer_logon_id: resp.buyer_logon_id.clone(),
        buyer_id: resp.buyer_user_id.clone().or(resp.buyer_open_id.clone()),
        paid_at: resp
            .send_pay_date
            .as_deref()
            .and_then(alipay::time::parse_beijing)
            .map(ms),
        refund_fee: None,
        payload,
    };
    Ok(commit_report(st, order, report).await?)
}
