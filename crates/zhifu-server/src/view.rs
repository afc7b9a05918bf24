//! The JSON shapes of Zhifu's records, as the merchant API answers them and
//! as webhook payloads carry them: one function per record, so the API and
//! the webhooks can never describe an order differently. Money is shown as
//! `"88.88"`, times as RFC 3339 UTC.

use serde_json::{Value, json};
use zhifu_store::{
    DeliveryAttempt, NotificationRecord, Order, OrderEvent, Refund, Subscription, SubscriptionEvent,
};

use crate::domain::{rfc3339, yuan};

/// An order.
pub fn order(o: &Order) -> Value {
    let metadata = o
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": o.id,
        "out_trade_no": o.out_trade_no,
        "subject": o.subject,
        "body": o.body,
        "total_amount": yuan(o.total_fen),
        "status": o.status.as_str(),
        "refunded_amount": yuan(o.refunded_fen),
        "refund_pending_amount": yuan(o.refund_pending_fen),
        "paid_after_close": o.paid_after_close,
        "trade_no": o.trade_no,
        "buyer_logon_id": o.buyer_logon_id,
        "channel": o.channel,
        "paid_at": o.paid_at.and_then(rfc3339),
        "closed_at": o.closed_at.and_then(rfc3339),
        "created_at": rfc3339(o.created_at),
        "expires_at": rfc3339(o.expires_at),
        "metadata": metadata,
    })
}

/// A refund.
pub fn refund(r: &Refund) -> Value {
    json!({
        "id": r.id,
        "order_id": r.order_id,
        "amount": yuan(r.amount_fen),
        "status": r.status.as_str(),
        "reason": r.reason,
        "out_request_no": r.out_request_no,
        "failure_code": r.failure_code,
        "origin": r.origin.as_str(),
        "created_at": rfc3339(r.created_at),
    })
}

/// An order event with its webhook delivery state and attempts.
pub fn event(e: &OrderEvent, attempts: &[DeliveryAttempt]) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type.as_str(),
        "previous_status": e.from_status.as_str(),
        "status": e.to_status.as_str(),
        "refunded_amount": yuan(e.refunded_fen),
        "source": e.source,
        "created_at": rfc3339(e.created_at),
        "webhook": {
            "state": e.webhook_state.as_str(),
            "attempts": e.attempts,
            "next_attempt_at": e.next_attempt_at.and_then(rfc3339),
            "delivered_at": e.delivered_at.and_then(rfc3339),
            "last_error": e.last_error,
            "deliveries": attempts.iter().map(|a| json!({
                "attempt": a.attempt,
                "at": rfc3339(a.at),
                "http_status": a.http_status,
                "error": a.error,
                "duration_ms": a.duration_ms,
            })).collect::<Vec<_>>(),
        },
    })
}

/// A recorded report (notification, query or refund answer) and its outcome.
pub fn notification(n: &NotificationRecord) -> Value {
    json!({
        "id": n.id,
        "received_at": rfc3339(n.received_at),
        "source": n.source,
        "notify_id": n.notify_id,
        "trade_status": n.trade_status,
        "outcome": n.outcome,
        "reason": n.reason,
    })
}

/// The body of an event's webhook delivery: the event's own immutable
/// fields and the order as it is at delivery time.
pub fn webhook_payload(e: &OrderEvent, current: Option<&Order>) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type.as_str(),
        "created_at": rfc3339(e.created_at),
        "data": {
            "order_id": e.order_id,
            "previous_status": e.from_status.as_str(),
            "status": e.to_status.as_str(),
            "refunded_amount": yuan(e.refunded_fen),
            "source": e.source,
            "order": current.map(order),
        },
    })
}

/// A list answer: `{"data": [...]}`.
pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
    json!({ "data": items.into_iter().collect::<Vec<_>>() })
}

/// A subscription (its charges, when given, newest period first).
pub fn subscription(s: &Subscription, charges: Option<&[(i64, Order)]>) -> Value {
    let metadata = s
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .unwrap_or(Value::Null);
    let mut v = json!({
        "id": s.id,
        "object": "subscription",
        "status": s.status.as_str(),
        "subject": s.subject,
        "amount": yuan(s.amount_fen),
        "currency": "CNY",
        "period": {"unit": s.period_unit, "every": s.period_every},
        "first_charge_date": s.first_charge_date,
        "max_periods": s.max_periods,
        "periods_charged": s.periods_charged,
        "next_charge_date": crate::domain::next_charge_date(s),
        "failed_attempts": s.failed_attempts,
        "external_agreement_no": s.external_agreement_no,
        "agreement_no": s.agreement_no,
        "channel": s.channel,
        "metadata": metadata,
        "created_at": rfc3339(s.created_at),
        "updated_at": rfc3339(s.updated_at),
        "activated_at": s.activated_at.and_then(rfc3339),
        "canceled_at": s.canceled_at.and_then(rfc3339),
    });
    if let Some(charges) = charges {
        v["charges"] = charges.iter().map(|(p, o)| charge(*p, o)).collect();
    }
    v
}

/// A subscription's charge: its order, with the period it charged.
pub fn charge(period: i64, o: &Order) -> Value {
    let mut v = order(o);
    v["subscription_period"] = json!(period);
    v
}

/// The webhook body of a subscription event: the subscription as it is
/// now and, for charges, the period's order.
pub fn subscription_webhook_payload(
    e: &SubscriptionEvent,
    current: Option<&Subscription>,
    charge_order: Option<&Order>,
) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type.as_str(),
        "created_at": rfc3339(e.created_at),
        "data": {
            "subscription_id": e.subscription_id,
            "period": e.period,
            "order_id": e.order_id,
            "subscription": current.map(|s| subscription(s, None)),
            "order": charge_order.map(order),
        },
    })
}
