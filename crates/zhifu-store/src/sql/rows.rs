//! Which columns each record is read from, and how a row becomes a record.
//! The column lists and the mappings live together so that they cannot
//! drift apart; every statement that returns a record selects its list.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::Result;
use crate::error::StoreError;
use crate::model::{
    DeliveryAttempt, EventType, NotificationRecord, Order, OrderEvent, OrderStatus, Refund,
    RefundOrigin, RefundStatus, WebhookState,
};

macro_rules! order_cols {
    () => {
        "id, out_trade_no, subject, body, total_fen, refunded_fen, refund_pending_fen, status, \
         trade_no, buyer_logon_id, buyer_id, channel, metadata, idempotency_key, request_hash, \
         created_at, updated_at, expires_at, paid_at, closed_at, paid_after_close"
    };
}

macro_rules! refund_cols {
    () => {
        "id, order_id, out_request_no, amount_fen, reason, status, failure_code, \
         idempotency_key, request_hash, created_at, updated_at, origin, gateway_calls"
    };
}

macro_rules! notification_cols {
    () => {
        "id, order_id, out_trade_no, notify_id, source, trade_status, outcome, reason, payload, \
         received_at"
    };
}

macro_rules! event_cols {
    () => {
        "id, order_id, type, from_status, to_status, refunded_fen, source, notify_id, created_at, \
         webhook_state, attempts, next_attempt_at, delivered_at, last_error"
    };
}

// Macros, not constants, because `concat!` only takes literals.
pub(super) use {event_cols, notification_cols, order_cols, refund_cols};

pub(super) fn order_from_row(r: &AnyRow) -> Result<Order> {
    let status: String = r.try_get("status")?;
    Ok(Order {
        id: r.try_get("id")?,
        out_trade_no: r.try_get("out_trade_no")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        total_fen: r.try_get("total_fen")?,
        refunded_fen: r.try_get("refunded_fen")?,
        refund_pending_fen: r.try_get("refund_pending_fen")?,
        status: OrderStatus::parse(&status).ok_or(StoreError::Corrupt { column: "status" })?,
        trade_no: r.try_get("trade_no")?,
        buyer_logon_id: r.try_get("buyer_logon_id")?,
        buyer_id: r.try_get("buyer_id")?,
        channel: r.try_get("channel")?,
        metadata: r.try_get("metadata")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_hash: r.try_get("request_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        expires_at: r.try_get("expires_at")?,
        paid_at: r.try_get("paid_at")?,
        closed_at: r.try_get("closed_at")?,
        paid_after_close: r.try_get::<i64, _>("paid_after_close")? != 0,
    })
}
pub(super) fn refund_from_row(r: &AnyRow) -> Result<Refund> {
    let status: String = r.try_get("status")?;
    let origin: String = r.try_get("origin")?;
    Ok(Refund {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        out_request_no: r.try_get("out_request_no")?,
        amount_fen: r.try_get("amount_fen")?,
        reason: r.try_get("reason")?,
        status: RefundStatus::parse(&status).ok_or(StoreError::Corrupt { column: "status" })?,
        failure_code: r.try_get("failure_code")?,
        idempotency_key: r.try_get("idempotency_key")?,
        request_hash: r.try_get("request_hash")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        origin: RefundOrigin::parse(&origin).ok_or(StoreError::Corrupt { column: "origin" })?,
        gateway_calls: r.try_get("gateway_calls")?,
    })
}
pub(super) fn notification_from_row(r: &AnyRow) -> Result<NotificationRecord> {
    Ok(NotificationRecord {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        out_trade_no: r.try_get("out_trade_no")?,
        notify_id: r.try_get("notify_id")?,
        source: r.try_get("source")?,
        trade_status: r.try_get("trade_status")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        payload: r.try_get("payload")?,
        received_at: r.try_get("received_at")?,
    })
}
pub(super) fn event_from_row(r: &AnyRow) -> Result<OrderEvent> {
    let t: String = r.try_get("type")?;
    let from: String = r.try_get("from_status")?;
    let to: String = r.try_get("to_status")?;
    let state: String = r.try_get("webhook_state")?;
    Ok(OrderEvent {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        event_type: EventType::parse(&t).ok_or(StoreError::Corrupt { column: "type" })?,
        from_status: OrderStatus::parse(&from).ok_or(StoreError::Corrupt {
            column: "from_status",
        })?,
        to_status: OrderStatus::parse(&to).ok_or(StoreError::Corrupt {
            column: "to_status",
        })?,
        refunded_fen: r.try_get("refunded_fen")?,
        source: r.try_get("source")?,
        notify_id: r.try_get("notify_id")?,
        created_at: r.try_get("created_at")?,
        webhook_state: WebhookState::parse(&state).ok_or(StoreError::Corrupt {
            column: "webhook_state",
        })?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        delivered_at: r.try_get("delivered_at")?,
        last_error: r.try_get("last_error")?,
    })
}
pub(super) fn attempt_from_row(r: &AnyRow) -> Result<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        id: r.try_get("id")?,
        event_id: r.try_get("event_id")?,
        attempt: r.try_get("attempt")?,
        at: r.try_get("at")?,
        http_status: r.try_get("http_status")?,
        error: r.try_get("error")?,
        duration_ms: r.try_get("duration_ms")?,
    })
}
