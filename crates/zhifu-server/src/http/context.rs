//! What every request gets, whatever its route: an id (the platform's,
//! [`crate::platform::request_id`], or a new one) echoed in `X-Request-Id`
//! and carried by every log line it causes, its route, status and time in
//! the metrics, and at INFO one line when it is answered (target
//! [`ACTIVITY_TARGET`]).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::ACTIVITY_TARGET;
use crate::platform;
use crate::state::AppState;

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The middleware. The span is at `error` level so that it is on whenever
/// any logging is: a warning deep in a request still names the request.
pub async fn request_context(State(st): State<AppState>, req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let id = match platform::request_id(req.headers()) {
        Some(id) => id.to_owned(),
        None => zhifu_store::new_id("req"),
    };
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let method = req.method().clone();
    // Read only when the line is written: the notify endpoint's replays
    // pay for nothing they do not use. The path without the query string,
    // since a query may carry anything.
    let logged = tracing::enabled!(target: ACTIVITY_TARGET, tracing::Level::INFO);
    let path = if logged {
        req.uri().path().chars().take(200).collect::<String>()
    } else {
        String::new()
    };
    let span = tracing::error_span!("request", id = %id);
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    st.metrics().http_request(route, status, started.elapsed());
    if logged {
        span.in_scope(|| {
            tracing::info!(
                target: ACTIVITY_TARGET,
                kind = "api",
                %method,
                route,
                path,
                status,
                request_id = %id,
                ms = started.elapsed().as_millis() as u64,
                "answered"
            );
        });
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}
