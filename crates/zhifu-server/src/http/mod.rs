//! The HTTP edge, and the only part of the crate that knows axum: routes,
//! the API-key check, strict request bodies, the error contract and the
//! OpenAPI document. Handlers read the request, call [`crate::payments`] or
//! read the store, and answer with [`crate::view`]; they never call the
//! store's state-changing functions themselves (a test enforces it).
//!
//! | module | owns |
//! |---|---|
//! | [`orders`] | `/v1/orders…` |
//! | [`subscriptions`] | `/v1/subscriptions…`: recurring agreements and their charges |
//! | [`oauth`] | `/v1/oauth/…`: the authorize URL, `auth_code` → buyer id (in-app payments) |
//! | [`activity`] | `GET /v1/activity`, the feed `zhifu logs tail` polls |
//! | [`alipay`] | `POST /alipay/notify`, `GET /alipay/return` |
//! | [`ops`] | `/healthz`, `/metrics`, `/v1/reconcile`, the FC timer router, fallbacks |
//! | [`query`] | strict query strings: known parameters, `refresh`, `limit`, cursors |
//! | [`body`] | strict JSON bodies, `Idempotency-Key` |
//! | [`context`] | every request's id, log span and metrics |
//! | [`error`] | [`ErrorCode`] and [`ApiError`]: one status per code |
//! | [`openapi`] | `/openapi.json`, generated from the routes below |
//! | [`schema`] | the JSON shapes, for the document |

pub mod activity;
pub mod alipay;
pub mod body;
pub mod context;
pub mod error;
pub mod listener;
pub mod oauth;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod query;
pub mod schema;
pub mod subscriptions;

use std::future::Future;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The merchant API: every route here is behind [`require_api_key`], and
/// the document marks it so. Routes are declared only through `routes!`,
/// which registers the handler and its `#[utoipa::path]` together.
fn merchant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::pay_order))
        .routes(routes!(orders::close_order))
        .routes(routes!(orders::order_events))
        .routes(routes!(orders::order_refunds, orders::refund_order))
        .routes(routes!(orders::order_notifications))
        .routes(routes!(orders::list_events))
        .routes(routes!(
            subscriptions::create_subscription,
            subscriptions::list_subscriptions
        ))
        .routes(routes!(subscriptions::get_subscription))
        .routes(routes!(subscriptions::cancel_subscription))
        .routes(routes!(activity::list_activity))
        .routes(routes!(oauth::authorize_url))
        .routes(routes!(oauth::token))
        .routes(routes!(ops::reconcile_now))
}

/// Routes without the API key: Alipay's calls, the buyer's return page,
/// health, metrics (their own access rule) and the document.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(alipay::notify_endpoint))
        .routes(routes!(alipay::return_page))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
}

/// The backend's OpenAPI document, as [`router`] serves it at
/// `/openapi.json` (no state needed: for tools and tests).
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::assemble(
        merchant_routes().into_openapi(),
        public_routes().into_openapi(),
        Vec::new(),
    )
}

/// The whole HTTP surface: merchant API, notification endpoint, return page,
/// health, metrics and the OpenAPI document.
pub fn router(state: AppState) -> Router {
    router_with_api_docs(state, Vec::new())
}

/// [`router`], with `/openapi.json` also describing `parts`: APIs that the
/// same process serves next to this router (the checkout's,
/// `zhifu_checkout::api::openapi()`), so one document covers the port.
pub fn router_with_api_docs(state: AppState, parts: Vec<utoipa::openapi::OpenApi>) -> Router {
    let (merchant, merchant_doc) = merchant_routes().split_for_parts();
    let (public, public_doc) = public_routes().split_for_parts();
    let doc = openapi::ApiDocument::new(&openapi::assemble(merchant_doc, public_doc, parts));
    let merchant = merchant.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        require_api_key,
    ));
    Router::new()
        .merge(merchant)
        .merge(public)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(Extension(doc))
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
