//! `GET /v1/activity`: what happened lately, one entry per thing, newest
//! first — the feed `zhifu logs tail` polls.
//!
//! Everything comes from what is already stored, so every instance answers
//! the same: orders created, notifications received (verified or refused,
//! and the answer Alipay got), the verified answers of gateway calls that
//! were recorded (`alipay.trade.query` and `alipay.trade.close` reports,
//! settled refunds) and each webhook attempt. Requests themselves are not
//! stored; `zhifu dev --log-requests` shows those live.
//!
//! An entry's position is `(at, id)`, neither of which changes once the
//! entry exists, written as an opaque cursor. With `after=CURSOR` the page
//! holds the *oldest* entries newer than the cursor (listed newest first),
//! so a client that keeps asking with the page's `next_cursor` sees every
//! entry once, in order, and never the same one twice.
//!
//! The feed is read from the orders that changed or were created most
//! recently ([`SCAN_ORDERS`] of each), plus refused notifications that name
//! no order: a bounded read, at the price that a webhook retried for an
//! order that has not changed in a long time does not appear.

use std::collections::{BTreeSet, HashMap};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Serialize;
use utoipa::ToSchema;
use zhifu_store::{AnomalyReason, NotificationRecord, Order, OrderQuery, RefundStatus};

use super::error::{ApiError, ErrorCode};
use crate::domain::{rfc3339, yuan};
use crate::state::AppState;

/// How many of the most recently created orders, and of the most recent
/// events' orders, one page reads.
pub const SCAN_ORDERS: i64 = 20;

/// Largest `limit`.
pub const MAX_LIMIT: usize = 100;

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// An order was created (merchant API).
    Order,
    /// A notification from Alipay was received and answered.
    Notification,
    /// A gateway call whose verified answer was recorded.
    Gateway,
    /// One webhook delivery attempt.
    Webhook,
}

/// One thing that happened. Fields that do not apply to its kind are left
/// out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActivityEntry {
    /// Its position, for `after`.
    pub cursor: String,
    /// When (RFC 3339).
    pub at: String,
    /// When, epoch milliseconds.
    pub at_ms: i64,
    /// What it is about.
    pub kind: ActivityKind,
    /// The order (`ord_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// The merchant order number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_trade_no: Option<String>,
    /// Amount in yuan (`"88.88"`): the order's or the refund's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// Gateway: the API method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Gateway: Alipay's `code` (`10000` for success), or the refund's
    /// failure code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Gateway or notification: the reported `trade_status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade_status: Option<String>,
    /// Notification or gateway: `applied`, `duplicate` or `anomaly`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Notification: whether its signature verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// Why it was refused (reason names joined with `,`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Notification: what Alipay was answered (`success` or `failure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Gateway (refund): the refund (`ref_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    /// Webhook: the event (`evt_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Webhook: the event type (`order.paid`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Webhook: where it went (scheme, host and path only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: the endpoint's HTTP status, if it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i64>,
    /// Webhook: why the attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Webhook: 1 for the first attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// Webhook: how long the attempt took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ms: Option<i64>,
}

impl ActivityEntry {
    fn new(kind: ActivityKind, at_ms: i64, id: &str) -> Self {
        ActivityEntry {
            cursor: format!("{at_ms}.{id}"),
            at: rfc3339(at_ms).unwrap_or_default(),
            at_ms,
            kind,
            order_id: None,
            out_trade_no: None,
            amount: None,
            method: None,
            code: None,
            trade_status: None,
            outcome: None,
            verified: None,
            reason: None,
            answer: None,
            refund_id: None,
            event_id: None,
            event_type: None,
            url: None,
            http_status: None,
            error: None,
            attempt: None,
            ms: None,
        }
    }

    fn key(&self) -> (i64, &str) {
        let id = self.cursor.split_once('.').map_or("", |(_, id)| id);
        (self.at_ms, id)
    }
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPage {
    /// Newest first.
    pub data: Vec<ActivityEntry>,
    /// Ask again with `after=` this to get only what is newer (the
    /// newest entry's cursor, or the one given when nothing is newer).
    pub next_cursor: Option<String>,
    /// With `after`: more newer entries than `limit` are waiting.
    pub has_more: bool,
}

fn parse_cursor(c: &str) -> Option<(i64, String)> {
    let (at, id) = c.split_once('.')?;
    Some((at.parse().ok()?, id.chars().take(80).collect()))
}

type RawQuery = Result<Query<HashMap<String, String>>, QueryRejection>;

/// `GET /v1/activity?limit=N&after=CURSOR`.
#[utoipa::path(
    get,
    path = "/v1/activity",
    operation_id = "listActivity",
    tag = "events",
    summary = "Recent activity (orders, notifications, gateway answers, webhook attempts), newest first",
    description = "What `zhifu logs tail` polls. With `after`, only entries newer than that cursor: the oldest `limit` of them, listed newest first.",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "How many (default 50)"),
        ("after" = Option<String>, Query, description = "A `next_cursor` or `cursor` from an earlier page"),
    ),
    responses(
        (status = 200, description = "The entries", body = ActivityPage),
        (status = 400, description = "`invalid_query`", body = super::schema::ErrorBody),
    ),
)]
pub async fn list_activity(
    State(st): State<AppState>,
    params: RawQuery,
) -> Result<Json<ActivityPage>, ApiError> {
    let Query(params) = params
        .map_err(|_| ApiError::new(ErrorCode::InvalidQuery, "the query string is malformed"))?;
    let mut limit = 50usize;
    let mut after = None;
    for (k, v) in &params {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 100")
                    })?;
            }
            "after" => {
                after = Some(parse_cursor(v).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidQuery,
                        "after must be a cursor from a page",
                    )
                })?);
            }
            other => {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!(
                        "unknown query parameter `{}`",
                        other.chars().take(32).collect::<String>()
                    ),
                ));
            }
        }
    }
    let mut entries = collect(&st).await?;
    entries.sort_by(|a, b| a.key().cmp(&b.key()));
    let (data, has_more) = match &after {
        Some((at, id)) => {
            let newer: Vec<ActivityEntry> = entries
                .into_iter()
                .filter(|e| e.key() > (*at, id.as_str()))
                .collect();
            let has_more = newer.len() > limit;
            let mut page: Vec<ActivityEntry> = newer.into_iter().take(limit).collect();
            page.reverse();
            (page, has_more)
        }
        None => {
            let page: Vec<ActivityEntry> = entries.into_iter().rev().take(limit).collect();
            (page, false)
        }
    };
    let next_cursor = data
        .first()
        .map(|e| e.cursor.clone())
        .or_else(|| after.map(|(at, id)| format!("{at}.{id}")));
    Ok(Json(ActivityPage {
        data,
        next_cursor,
        has_more,
    }))
}

/// Every entry of the orders in view and of the refused notifications that
/// name no order, unsorted.
async fn collect(st: &AppState) -> Result<Vec<ActivityEntry>, ApiError> {
    let mut orders: HashMap<String, Order> = HashMap::new();
    for o in st
        .store()
        .list_orders(&OrderQuery {
            status: None,
            limit: SCAN_ORDERS,
            after: None,
        })
        .await?
    {
        orders.insert(o.id.clone(), o);
    }
    let changed: BTreeSet<String> = st
        .store()
        .query_events(&zhifu_store::EventQuery {
            webhook_state: None,
            order_id: None,
            limit: SCAN_ORDERS,
        })
        .await?
        .into_iter()
        .map(|e| e.order_id)
        .collect();
    for id in changed {
        if !orders.contains_key(&id)
            && let Some(o) = st.store().get_order(&id).await?
        {
            orders.insert(id, o);
        }
    }
    let url = st.outbox().map(|o| o.loggable_url());
    let mut out = Vec::new();
    for order in orders.values() {
        let mut e = ActivityEntry::new(ActivityKind::Order, order.created_at, &order.id);
        e.order_id = Some(order.id.clone());
        e.out_trade_no = Some(order.out_trade_no.clone());
        e.amount = Some(yuan(order.total_fen));
        out.push(e);
        // A refund's answer is also recorded as a report (source `refund`)
        // when it moved the order; the refund row below is the one line
        // per refund call, failed ones included.
        for n in st.store().list_notifications(&order.id).await? {
            if n.source != "refund" {
                out.push(notification_entry(&n));
            }
        }
        for r in st.store().list_refunds(&order.id).await? {
            if r.status == RefundStatus::Pending {
                continue;
            }
            // Settled: Alipay's answer (or the refund query's) is known.
            let mut e = ActivityEntry::new(ActivityKind::Gateway, r.updated_at, &r.id);
            e.order_id = Some(order.id.clone());
            e.out_trade_no = Some(order.out_trade_no.clone());
            e.method = Some("alipay.trade.refund".to_owned());
            e.refund_id = Some(r.id.clone());
            e.amount = Some(yuan(r.amount_fen));
            e.outcome = Some(r.status.as_str().to_owned());
            e.code = Some(match r.status {
                RefundStatus::Succeeded => "10000".to_owned(),
                _ => r.failure_code.clone().unwrap_or_default(),
            });
            out.push(e);
        }
        for ev in st.store().list_events(&order.id).await? {
            for a in st.store().list_delivery_attempts(&ev.id).await? {
                let mut e = ActivityEntry::new(ActivityKind::Webhook, a.at, &a.id);
                e.order_id = Some(order.id.clone());
                e.out_trade_no = Some(order.out_trade_no.clone());
                e.event_id = Some(ev.id.clone());
                e.event_type = Some(ev.event_type.as_str().to_owned());
                e.url.clone_from(&url);
                e.http_status = a.http_status;
                e.error.clone_from(&a.error);
                e.attempt = Some(a.attempt);
                e.ms = Some(a.duration_ms);
                out.push(e);
            }
        }
    }
    for n in st
        .store()
        .list_orphan_notifications(SCAN_ORDERS * 5)
        .await?
    {
        out.push(notification_entry(&n));
    }
    Ok(out)
}

/// A stored report: from a notification, or the verified answer of a
/// gateway call (`query`, `close`, `refund`).
fn notification_entry(n: &NotificationRecord) -> ActivityEntry {
    let method = match n.source.as_str() {
        "notify" => None,
        "query" => Some("alipay.trade.query"),
        "close" => Some("alipay.trade.close"),
        "refund" => Some("alipay.trade.refund"),
        "deduction" => Some("alipay.trade.pay"),
        _ => Some("alipay"),
    };
    let kind = if method.is_some() {
        ActivityKind::Gateway
    } else {
        ActivityKind::Notification
    };
    let mut e = ActivityEntry::new(kind, n.received_at, &n.id);
    e.order_id.clone_from(&n.order_id);
    e.out_trade_no.clone_from(&n.out_trade_no);
    e.trade_status.clone_from(&n.trade_status);
    e.outcome = Some(n.outcome.clone());
    e.reason.clone_from(&n.reason);
    match method {
        Some(m) => {
            e.method = Some(m.to_owned());
            e.code = Some("10000".to_owned());
        }
        None => {
            let reasons = n.reasons();
            e.verified = Some(
                !reasons
                    .iter()
                    .any(|r| matches!(r, AnomalyReason::BadSignature | AnomalyReason::Malformed)),
            );
            e.answer = Some(if n.outcome == "anomaly" {
                "failure".to_owned()
            } else {
                "success".to_owned()
            });
        }
    }
    e
}
