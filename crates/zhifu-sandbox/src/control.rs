//! The test control API under `/sandbox/api` (JSON). Other tools script
//! against these paths; keep them stable.
//!
//! | route | does |
//! |---|---|
//! | `GET  /sandbox/api/info` | public key, mode, time scale, gateway URL, clock |
//! | `POST /sandbox/api/apps` | register an app `{app_id?, app_public_key, aes_key?}` |
//! | `GET  /sandbox/api/apps` | list apps |
//! | `POST /sandbox/api/trades/pay` | the buyer pays `{out_trade_no, app_id?}` |
//! | `POST /sandbox/api/trades/open` | the buyer opens the cashier / scans, without paying |
//! | `GET  /sandbox/api/trades` | list trades, newest first (`?out_trade_no=`) |
//! | `GET  /sandbox/api/notifications` | list deliveries, newest first (`?out_trade_no=`) |
//! | `POST /sandbox/api/notifications/{id}/resend` | deliver once more now |
//! | `GET  /sandbox/api/clock`, `POST /sandbox/api/clock/advance` | `{seconds}` or `{ms}` |
//! | `GET/PUT/POST /sandbox/api/faults` | fault rates (see [`Faults`]) |
//! | `POST /sandbox/api/trigger` | send a chosen notification to any URL |

use std::time::Duration;

use alipay::{AlipayPublicKey, TradeStatus};
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Faults;
use crate::error::SandboxError;
use crate::model::{
    App, Attempt, Delivery, DeliveryState, OrderTerms, Product, Refund, Trade, millis,
};
use crate::notify::{self, Event};
use crate::sandbox::{NotificationView, Sandbox};

/// The control API's error answer: `{"error":{"code":…,"message":…}}`.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, &'static str, String);

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> Self {
        let (status, code) = match &e {
            SandboxError::UnknownApp(_) => (StatusCode::NOT_FOUND, "unknown_app"),
            SandboxError::TradeNotFound { .. } => (StatusCode::NOT_FOUND, "trade_not_found"),
            SandboxError::DeliveryNotFound(_) => (StatusCode::NOT_FOUND, "delivery_not_found"),
            SandboxError::AmbiguousApp(_) => (StatusCode::BAD_REQUEST, "app_id_required"),
            SandboxError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            SandboxError::Alipay(_) => (StatusCode::BAD_REQUEST, "invalid_key"),
            SandboxError::InvalidTradeState { .. } => (StatusCode::CONFLICT, "invalid_trade_state"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        ApiError(status, code, msg)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, "invalid_json", e.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error": {"code": self.1, "message": self.2}})),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

pub(crate) fn routes() -> Router<Sandbox> {
    Router::new()
        .route("/sandbox/api/info", get(info))
        .route("/sandbox/api/apps", get(list_apps).post(register_app))
        .route("/sandbox/api/trades", get(list_trades))
        .route("/sandbox/api/trades/pay", post(pay))
        .route("/sandbox/api/trades/open", post(open))
        .route("/sandbox/api/notifications", get(list_notifications))
        .route("/sandbox/api/notifications/{id}/resend", post(resend))
        .route("/sandbox/api/clock", get(clock))
        .route("/sandbox/api/clock/advance", post(advance))
        .route(
            "/sandbox/api/faults",
            get(get_faults).put(set_faults).post(set_faults),
        )
        .route("/sandbox/api/trigger", post(trigger))
}

async fn info(State(sb): State<Sandbox>) -> Json<serde_json::Value> {
    let c = sb.config();
    Json(json!({
        "alipay_public_key": sb.alipay_public_key().to_base64(),
        "gateway_url": format!("{}/gateway.do", c.public_url),
        "public_url": c.public_url,
        "mode": c.mode,
        "time_scale": c.time_scale,
        "now": alipay::time::format_beijing(sb.now()),
        "notify_matrix": c.notify_matrix,
        "refund_window_seconds": c.refund_window.as_secs(),
    }))
}

#[derive(Debug, Deserialize)]
struct RegisterApp {
    app_id: Option<String>,
    app_public_key: String,
    /// Enables AES content encryption with this console key (base64).
    #[serde(default)]
    aes_key: Option<String>,
}

#[derive(Debug, Serialize)]
struct AppView {
    app_id: String,
    seller_id: String,
    alipay_public_key: String,
}

async fn register_app(
    State(sb): State<Sandbox>,
    body: Result<Json<RegisterApp>, JsonRejection>,
) -> ApiResult<AppView> {
    let Json(r) = body?;
    let key = AlipayPublicKey::parse_as(&r.app_public_key, alipay::error::KeyRole::PublicKey)
        .map_err(SandboxError::from)?;
    if let Some(k) = &r.aes_key {
        alipay::AesKey::from_base64(k).map_err(SandboxError::from)?;
    }
    let app = sb
        .register_app(r.app_id.filter(|s| !s.is_empty()), key)
        .await?;
    sb.set_aes_key(&app.app_id, r.aes_key.as_deref()).await?;
    Ok(Json(AppView {
        app_id: app.app_id,
        seller_id: app.seller_id,
        alipay_public_key: app.alipay_public_key.to_base64(),
    }))
}

async fn list_apps(State(sb): State<Sandbox>) -> Json<Vec<AppView>> {
    let key = sb.alipay_public_key().to_base64();
    Json(
        sb.apps()
            .await
            .into_iter()
            .map(|(app_id, seller_id)| AppView {
                app_id,
                seller_id,
                alipay_public_key: key.clone(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize)]
struct TradeRef {
    out_trade_no: String,
    app_id: Option<String>,
}

async fn pay(
    State(sb): State<Sandbox>,
    body: Result<Json<TradeRef>, JsonRejection>,
) -> ApiResult<crate::sandbox::TradeView> {
    let Json(r) = body?;
    Ok(Json(
        sb.pay_returning(r.app_id.as_deref(), &r.out_trade_no)
            .await?,
    ))
}

async fn open(
    State(sb): State<Sandbox>,
    body: Result<Json<TradeRef>, JsonRejection>,
) -> ApiResult<crate::sandbox::TradeView> {
    let Json(r) = body?;
    Ok(Json(sb.open(r.app_id.as_deref(), &r.out_trade_no).await?))
}

#[derive(Debug, Deserialize)]
struct Filter {
    out_trade_no: Option<String>,
}

async fn list_trades(
    State(sb): State<Sandbox>,
    Query(f): Query<Filter>,
) -> Json<Vec<crate::sandbox::TradeView>> {
    let mut v = sb.trades().await;
    if let Some(o) = f.out_trade_no {
        v.retain(|t| t.out_trade_no == o);
    }
    Json(v)
}

async fn list_notifications(
    State(sb): State<Sandbox>,
    Query(f): Query<Filter>,
) -> Json<Vec<NotificationView>> {
    let mut v = sb.notifications().await;
    if let Some(o) = f.out_trade_no {
        v.retain(|n| n.out_trade_no == o);
    }
    Json(v)
}

async fn resend(State(sb): State<Sandbox>, Path(id): Path<u64>) -> ApiResult<NotificationView> {
    Ok(Json(sb.resend(id).await?))
}

async fn clock(State(sb): State<Sandbox>) -> Json<serde_json::Value> {
    Json(json!({
        "now": alipay::time::format_beijing(sb.now()),
        "now_ms": millis(sb.now()),
        "mode": sb.config().mode,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: Option<u64>,
    ms: Option<u64>,
}

async fn advance(
    State(sb): State<Sandbox>,
    body: Result<Json<Advance>, JsonRejection>,
) -> ApiResult<crate::sandbox::AdvanceReport> {
    let Json(a) = body?;
    let by = match (a.seconds, a.ms) {
        (Some(s), None) => Duration::from_secs(s),
        (None, Some(ms)) => Duration::from_millis(ms),
        (None, None) => Duration::ZERO,
        _ => {
            return Err(
                SandboxError::InvalidInput("give `seconds` or `ms`, not both".into()).into(),
            );
        }
    };
    Ok(Json(sb.advance(by).await?))
}

async fn get_faults(State(sb): State<Sandbox>) -> Json<Faults> {
    Json(sb.faults().await)
}

async fn set_faults(
    State(sb): State<Sandbox>,
    body: Result<Json<Faults>, JsonRejection>,
) -> ApiResult<Faults> {
    let Json(f) = body?;
    f.validate()?;
    sb.set_faults(f.clone()).await;
    Ok(Json(f))
}

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
    /// Where to POST it.
    pub url: String,
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

async fn trigger(
    State(sb): State<Sandbox>,
    body: Result<Json<TriggerRequest>, JsonRejection>,
) -> ApiResult<NotificationView> {
    let Json(r) = body?;
    Ok(Json(sb.trigger(r).await?))
}

impl Sandbox {
    /// Sends one chosen notification to any URL, signed with the sandbox key
    /// (the Stripe-CLI-style `zhifu sandbox trigger`). It is recorded in the
    /// notification list and never retried.
    ///
    /// # Errors
    /// [`SandboxError::InvalidInput`] for bad amounts or URLs.
    pub async fn trigger(&self, r: TriggerRequest) -> Result<NotificationView, SandboxError> {
        if !(r.url.starts_with("http://") || r.url.starts_with("https://")) {
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
        let total = amount(r.total_amount.as_deref(), 8888)?;
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
        let ctx = self.ctx();
        let now = ctx.now_ms();
        let out_trade_no = r
            .out_trade_no
            .clone()
            .unwrap_or_else(|| format!("TRIGGER_{}", crate::ids::digits(10)));
        let paid = r.kind != TriggerKind::Closed;
        let mut t = Trade {
            app_id: app.app_id.clone(),
            trade_no: crate::ids::trade_no(ctx.now),
            out_trade_no: out_trade_no.clone(),
            terms: OrderTerms {
                product: Product::Page,
                total_fen: total,
                subject: r
                    .subject
                    .clone()
                    .unwrap_or_else(|| "Zhifu sandbox trigger".into()),
                body: None,
                notify_url: Some(r.url.clone()),
                return_url: None,
                quit_url: None,
                passback_params: None,
                charset: "utf-8".into(),
                sign_type: "RSA2".into(),
                timeout_express: None,
                time_expire: None,
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
        };
        let event = match r.kind {
            TriggerKind::Paid | TriggerKind::Tampered | TriggerKind::Duplicate => Event::Paid,
            TriggerKind::PartialRefund => Event::PartialRefund,
            TriggerKind::FullRefund => Event::FullRefund,
            TriggerKind::Closed => Event::Closed,
        };
        if matches!(r.kind, TriggerKind::PartialRefund | TriggerKind::FullRefund) {
            t.refunds.push(Refund {
                out_request_no: format!("R{}", crate::ids::digits(10)),
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
        let notify_id = crate::ids::notify_id(ctx.now);
        let built = notify::build(&t, &app, event, &notify_id, &ctx)?;
        let body = if r.kind == TriggerKind::Tampered {
            // Changed after signing: a correct verifier must refuse it.
            let mut p = built.params.clone();
            for (k, v) in &mut p {
                if k == "total_amount" {
                    *v = crate::model::yuan(total + 100);
                }
            }
            notify::encode_form(&p, alipay::Charset::Utf8)
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
                notify_url: r.url.clone(),
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
            let out = notify::post(self.http(), &r.url, &body, "utf-8").await;
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
            .map(Sandbox::delivery_view_of)
            .ok_or(SandboxError::DeliveryNotFound(id))
    }
}
