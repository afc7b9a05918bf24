//! The operational endpoints: `/healthz`, `/metrics`, `POST /v1/reconcile`,
//! the FC timer router, and the answers for unknown paths and methods.

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::body::{Fields, JsonObject};
use super::error::{ApiError, ErrorCode};
use super::schema;
use crate::config::ReconcileOptions;
use crate::jobs::reconcile::ReconcileReport;
use crate::jobs::reconcile::run_pass;
use crate::state::AppState;

/// `POST /v1/reconcile`: runs one reconcile pass now and answers its report
/// (for schedulers that can only make HTTP calls). Body fields, all
/// optional: `min_age_seconds` (default 120), `limit` (default 200),
/// `max_seconds` (stop starting new work after this long; default 20).
#[utoipa::path(
    post,
    path = "/v1/reconcile",
    operation_id = "reconcile",
    tag = "operations",
    summary = "Run one reconcile pass now (for schedulers that can only make HTTP calls)",
    request_body(content = Option<schema::ReconcileRequest>),
    responses((status = 200, description = "What the pass did", body = ReconcileReport)),
)]
pub async fn reconcile_now(
    State(st): State<AppState>,
    JsonObject(m): JsonObject,
) -> Result<Json<Value>, ApiError> {
    let f = Fields::new(&m, &["min_age_seconds", "limit", "max_seconds"])?;
    let range = |name: &str, v: Option<i64>, lo: i64, hi: i64| -> Result<Option<u64>, ApiError> {
        match v {
            None => Ok(None),
            Some(n) if (lo..=hi).contains(&n) => Ok(u64::try_from(n).ok()),
            Some(_) => Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("`{name}` must be an integer between {lo} and {hi}"),
            )),
        }
    };
    let mut opts = st.reconcile_options().clone();
    if let Some(s) = range("min_age_seconds", f.int_opt("min_age_seconds")?, 0, 86_400)? {
        opts.min_age = std::time::Duration::from_secs(s);
    }
    if let Some(n) = range("limit", f.int_opt("limit")?, 1, 10_000)? {
        opts.limit = usize::try_from(n).unwrap_or(opts.limit);
    }
    let max = range("max_seconds", f.int_opt("max_seconds")?, 1, 900)?.unwrap_or(20);
    opts.deadline = Some(std::time::Instant::now() + std::time::Duration::from_secs(max));
    let report = run_pass(&st, &opts).await;
    Ok(Json(
        serde_json::to_value(&report).map_err(ApiError::internal)?,
    ))
}

/// For a function platform's timer: a router whose `POST /invoke` (what
/// Aliyun FC's custom runtime sends for timer and other event invocations)
/// and `POST /` run one pass and answer its report as JSON. Serve it as a
/// separate function that has no HTTP trigger.
pub fn reconcile_event_router(state: AppState, opts: ReconcileOptions) -> axum::Router {
    use axum::routing::post;
    let layer_state = state.clone();
    let run = move || {
        let state = state.clone();
        let opts = opts.clone();
        async move { Json(run_pass(&state, &opts).await) }
    };
    axum::Router::new()
        .route("/invoke", post(run.clone()))
        .route("/", post(run))
        .layer(axum::middleware::from_fn_with_state(
            layer_state,
            super::context::request_context,
        ))
}

/// `GET /healthz`: 200 when the database answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "health",
    tag = "operations",
    summary = "Database check",
    responses(
        (status = 200, description = "The database answers", body = schema::Health),
        (status = 503, description = "`database_unavailable`", body = schema::ErrorBody),
    ),
)]
pub async fn healthz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    st.store().ping().await?;
    Ok(Json(json!({"status": "ok"})))
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Public under `zhifu dev`; with `ZHIFU_METRICS_TOKEN`, for that bearer token only; otherwise the same 404 as an unknown path.",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 404, description = "`not_found`: metrics are not exposed to this caller", body = schema::ErrorBody),
    ),
)]
pub async fn metrics(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !st.metrics_access().allows(authorization) {
        // Off, or a wrong token: the same answer as any unknown path, so
        // the endpoint's existence tells a stranger nothing.
        return Ok(not_found().await.into_response());
    }
    let counts = st.store().count_orders_by_status().await?;
    let events = st.store().count_events_by_state().await?;
    let subscriptions = st.store().count_subscriptions_by_status().await?;
    let text = st.metrics().render_all(&counts, &events, &subscriptions);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /openapi.json`: the document built with the router
/// ([`super::openapi::ApiDocument`]).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "The document", body = Object)),
)]
pub async fn openapi(Extension(doc): Extension<super::openapi::ApiDocument>) -> Response {
    doc.response()
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such endpoint")
}

/// Known paths, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    )
}
