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
//! | `GET  /sandbox/api/requests` | the gateway's request log, oldest first (`?method=&out_trade_no=`) |
//! | `POST /sandbox/api/trigger` | send a chosen notification to any URL |

use std::time::Duration;

use alipay::AlipayPublicKey;
use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::Faults;
use crate::error::SandboxError;
use crate::model::millis;
use crate::requests::{RequestFilter, RequestRecord};
use crate::sandbox::Sandbox;
use crate::trigger::TriggerRequest;
use crate::views::{AdvanceReport, NotificationView, TradeView};

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

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
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
        .route("/sandbox/api/requests", get(list_requests))
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
        "cancel_window_seconds": c.cancel_window.as_secs(),
        "request_log_capacity": c.request_log_capacity,
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
) -> ApiResult<TradeView> {
    let Json(r) = body?;
    Ok(Json(
        sb.pay_returning(r.app_id.as_deref(), &r.out_trade_no)
            .await?,
    ))
}

async fn open(
    State(sb): State<Sandbox>,
    body: Result<Json<TradeRef>, JsonRejection>,
) -> ApiResult<TradeView> {
    let Json(r) = body?;
    Ok(Json(sb.open(r.app_id.as_deref(), &r.out_trade_no).await?))
}

#[derive(Debug, Deserialize)]
struct Filter {
    out_trade_no: Option<String>,
}

async fn list_trades(State(sb): State<Sandbox>, Query(f): Query<Filter>) -> Json<Vec<TradeView>> {
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
) -> ApiResult<AdvanceReport> {
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

async fn trigger(
    State(sb): State<Sandbox>,
    body: Result<Json<TriggerRequest>, JsonRejection>,
) -> ApiResult<NotificationView> {
    let Json(r) = body?;
    Ok(Json(sb.trigger(r).await?))
}

#[derive(Debug, Serialize)]
struct RequestList {
    requests: Vec<RequestRecord>,
}

async fn list_requests(
    State(sb): State<Sandbox>,
    filter: Result<Query<RequestFilter>, QueryRejection>,
) -> ApiResult<RequestList> {
    let Query(f) = filter?;
    Ok(Json(RequestList {
        requests: sb.requests(&f),
    }))
}
