//! The HTTP edge, and the only part of the crate that knows axum: routes,
//! the API-key check, strict request bodies, the error contract and the
//! OpenAPI document. Handlers read the request, call [`crate::payments`] or
//! read the store, and answer with [`crate::view`]; they never call the
//! store's state-changing functions themselves (a test enforces it).
//!
//! | module | owns |
//! |---|---|
//! | [`orders`] | `/v1/orders…` |
//! | [`alipay`] | `POST /alipay/notify`, `GET /alipay/return` |
//! | [`ops`] | `/healthz`, `/metrics`, `/v1/reconcile`, the FC timer router, fallbacks |
//! | [`body`] | strict JSON bodies, `Idempotency-Key` |
//! | [`context`] | every request's id, log span and metrics |
//! | [`error`] | [`ErrorCode`] and [`ApiError`]: one status per code |
//! | [`openapi`] | `/openapi.json` |

pub mod alipay;
pub mod body;
pub mod context;
pub mod error;
pub mod listener;
pub mod openapi;
pub mod ops;
pub mod orders;

use std::future::Future;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use self::error::{ApiError, ErrorCode};
pub use self::listener::{ListenerLimits, serve_with_limits};
pub use self::ops::reconcile_event_router;
use crate::state::AppState;

/// Refuses requests without `Authorization: Bearer <ZHIFU_API_KEY>`.
pub async fn require_api_key(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| st.api_key().matches(k.trim()));
    if !ok {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "missing or wrong API key: send `Authorization: Bearer <ZHIFU_API_KEY>`",
        )
        .into_response();
    }
    next.run(req).await
}

/// The whole HTTP surface: merchant API, notification endpoint, return page,
/// health, metrics and the OpenAPI document.
pub fn router(state: AppState) -> Router {
    let merchant = Router::new()
        .route(
            "/v1/orders",
            post(orders::create_order).get(orders::list_orders),
        )
        .route("/v1/orders/{id}", get(orders::get_order))
        .route("/v1/orders/{id}/pay", post(orders::pay_order))
        .route("/v1/orders/{id}/close", post(orders::close_order))
        .route("/v1/orders/{id}/events", get(orders::order_events))
        .route(
            "/v1/orders/{id}/refunds",
            get(orders::order_refunds).post(orders::refund_order),
        )
        .route(
            "/v1/orders/{id}/notifications",
            get(orders::order_notifications),
        )
        .route("/v1/events", get(orders::list_events))
        .route("/v1/reconcile", post(ops::reconcile_now))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    Router::new()
        .merge(merchant)
        .route("/alipay/notify", post(alipay::notify_endpoint))
        .route("/alipay/return", get(alipay::return_page))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state)
}

/// Serves `app` on `listener` with the default [`ListenerLimits`] until
/// `shutdown` resolves, then drains.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, app, shutdown, ListenerLimits::default()).await
}
