//! # zhifu-lambda — the payment backend on AWS Lambda
//!
//! This crate owns Zhifu's Lambda entry point: one binary, `zhifu-lambda`,
//! deployed as two functions that differ only in `ZHIFU_LAMBDA_HANDLER`:
//!
//! - `http` (the default): `zhifu_server::router` served by `lambda_http`
//!   for API Gateway REST APIs (v1), HTTP APIs (v2), Function URLs and ALB
//!   target groups. `lambda_http` decodes base64 bodies before the router
//!   sees them, so the notification verifier gets Alipay's exact bytes.
//! - `reconcile`: a plain `lambda_runtime` handler that runs one
//!   [`zhifu_server::jobs::reconcile::run_pass`] per event (an EventBridge
//!   schedule, or any manual invoke) and answers the pass's report.
//!
//! Everything here happens once per cold start ([`init`]): configuration is
//! read and the keys parsed once, the database pool is created (its first
//! connection opens on first use), and HTTP clients are built lazily by the
//! server. Migrations run only when `ZHIFU_AUTO_MIGRATE=true` is set
//! explicitly: a deploy step (`zhifu migrate`) is the normal place for them.
//!
//! Lambda needs PostgreSQL (ideally behind RDS Proxy or PgBouncer): SQLite
//! would live in one instance's `/tmp` and vanish with it.

use std::time::{Duration, Instant, SystemTime};

use lambda_http::{Error, LambdaEvent};
use serde_json::Value;
use zhifu_server::config::Source;
use zhifu_server::{AppState, Config, ConfigError, ReconcileOptions};

/// Which handler a function runs (`ZHIFU_LAMBDA_HANDLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The HTTP API behind API Gateway, a Function URL or an ALB.
    Http,
    /// The scheduled reconcile pass.
    Reconcile,
}

/// Why a cold start failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// The configuration is incomplete or wrong; names the variable.
    #[error("configuration error")]
    Config(#[from] ConfigError),
    /// The database could not be set up.
    #[error("database error")]
    Store(#[from] zhifu_store::StoreError),
}

/// Default pool size on Lambda: one invocation at a time per instance, and
/// many instances share the database (or its proxy).
pub const DEFAULT_POOL_SIZE: u32 = 2;

/// Time kept back from a reconcile invocation's deadline, so that the pass
/// finishes its current row and reports before Lambda stops it.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// What a cold start builds.
#[derive(Debug, Clone)]
pub struct Function {
    /// The handler to run.
    pub handler: Handler,
    /// The backend's state.
    pub state: AppState,
    /// Settings of each reconcile pass.
    pub reconcile: ReconcileOptions,
}

/// Reads `ZHIFU_LAMBDA_HANDLER` (`http` or `reconcile`, default `http`).
///
/// # Errors
/// Any other value, named.
pub fn handler(src: &Source) -> Result<Handler, ConfigError> {
    match src.get("ZHIFU_LAMBDA_HANDLER").as_deref() {
        None | Some("http") => Ok(Handler::Http),
        Some("reconcile") => Ok(Handler::Reconcile),
        Some(other) => Err(ConfigError {
            var: "ZHIFU_LAMBDA_HANDLER".into(),
            problem: format!("expected http or reconcile, got {other:?}"),
        }),
    }
}

/// The cold start: configuration, keys, pool; migrations only if asked.
///
/// # Errors
/// [`InitError`]; nothing secret is in its message.
pub async fn init(src: &Source) -> Result<Function, InitError> {
    let handler = handler(src)?;
    let mut config = Config::from_source(src)?;
    if src.get("ZHIFU_DB_MAX_CONNECTIONS").is_none() {
        config.db_max_connections = DEFAULT_POOL_SIZE;
    }
    // Lambda freezes the instance once the invocation answers, so a
    // background attempt would stall until the next invocation: webhooks
    // are tried inline, within their budget, unless told otherwise.
    if let Some(w) = config.webhook.as_mut() {
        w.prefer_inline(w.inline_budget);
    }
    // `Config` defaults to migrating for `zhifu serve`; a function migrates
    // only when told to.
    let migrate = src.get("ZHIFU_AUTO_MIGRATE").is_some() && config.auto_migrate;
    let reconcile = config.reconcile.clone();
    let state = AppState::open(config, migrate).await?;
    Ok(Function {
        handler,
        state,
        reconcile,
    })
}

/// The `Instant` at which a pass should stop starting new work, from the
/// invocation's deadline (epoch ms) less [`DEADLINE_MARGIN`].
pub fn pass_deadline(deadline_epoch_ms: u64) -> Option<Instant> {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_epoch_ms);
    let left = deadline.duration_since(SystemTime::now()).ok()?;
    Some(Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// The HTTP service a function serves: the router, behind a step that
/// removes the API Gateway stage from the path.
///
/// `lambda_http` puts a named stage in front of the path (`/Prod/v1/orders`
/// on a REST API's `Prod` stage) so that URLs built from it stay valid; the
/// router's routes are stage-less. `ZHIFU_PUBLIC_URL` must then include the
/// stage (`https://…/Prod`), so that `notify_url` does too.
pub fn http_service(
    state: AppState,
) -> tower::util::MapRequest<axum::Router, fn(lambda_http::Request) -> lambda_http::Request> {
    use tower::ServiceExt as _;
    zhifu_server::router(state).map_request(strip_stage as fn(_) -> _)
}

/// `/{stage}/rest` → `/rest` for API Gateway requests on a named stage.
pub fn strip_stage(mut req: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::RequestExt as _;
    use lambda_http::request::RequestContext;
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return req;
    };
    let path = req.uri().path();
    let prefix = format!("/{stage}");
    let rest = match path.strip_prefix(&prefix) {
        Some("") => "/",
        Some(r) if r.starts_with('/') => r,
        _ => return req,
    };
    let rebuilt = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_owned(),
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = rebuilt.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = lambda_http::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Whether an event is an EventBridge (CloudWatch Events) scheduled event.
pub fn is_scheduled_event(event: &Value) -> bool {
    event["source"] == "aws.events" && event["detail-type"] == "Scheduled Event"
}

/// The reconcile handler: one bounded pass per event, its report as the
/// answer. Any event shape is accepted (a schedule, EventBridge Scheduler's
/// custom payload, a manual `aws lambda invoke`): whoever may invoke the
/// function may run a pass, which is idempotent.
///
/// # Errors
/// Never: rows that fail are in the report and retried by the next pass.
pub async fn reconcile(
    state: &AppState,
    opts: &ReconcileOptions,
    event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    let mut opts = opts.clone();
    if event.context.deadline > 0 {
        opts.deadline = pass_deadline(event.context.deadline);
    }
    tracing::info!(
        scheduled = is_scheduled_event(&event.payload),
        rule = event.payload["resources"][0].as_str().unwrap_or(""),
        "reconcile invoked"
    );
    let report = zhifu_server::jobs::reconcile::run_pass(state, &opts).await;
    Ok(serde_json::to_value(report)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn src(pairs: &[(&str, &str)]) -> Source {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Source::from_map(m).unwrap()
    }

    #[test]
    fn handler_is_chosen_by_the_variable() {
        assert_eq!(handler(&src(&[])).unwrap(), Handler::Http);
        assert_eq!(
            handler(&src(&[("ZHIFU_LAMBDA_HANDLER", "reconcile")])).unwrap(),
            Handler::Reconcile
        );
        let e = handler(&src(&[("ZHIFU_LAMBDA_HANDLER", "cron")])).unwrap_err();
        assert_eq!(e.var, "ZHIFU_LAMBDA_HANDLER");
    }

    #[test]
    fn scheduled_events_are_recognised() {
        let e: Value =
            serde_json::from_str(include_str!("../tests/events/eventbridge_schedule.json"))
                .unwrap();
        assert!(is_scheduled_event(&e));
        assert!(!is_scheduled_event(&serde_json::json!({})));
    }

    #[test]
    fn the_stage_is_removed_from_api_gateway_paths_only() {
        let v1 = include_str!("../tests/events/apigw_v1_rest.json");
        let req = lambda_http::request::from_str(v1).unwrap();
        assert_eq!(
            req.uri().path(),
            "/test/hello",
            "lambda_http adds the stage"
        );
        let req = strip_stage(req);
        assert_eq!(req.uri().path(), "/hello");
        assert_eq!(req.uri().query(), Some("name=me"));
        let alb = include_str!("../tests/events/alb.json");
        let req = strip_stage(lambda_http::request::from_str(alb).unwrap());
        assert_eq!(req.uri().path(), "/");
        let v2 = include_str!("../tests/events/apigw_v2_http.json");
        let req = strip_stage(lambda_http::request::from_str(v2).unwrap());
        assert_eq!(req.uri().path(), "/my/path");
    }

    #[test]
    fn deadline_keeps_a_margin() {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let d = pass_deadline(now + 10_000).unwrap();
        let left = d.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(7) && left > Duration::from_secs(6),
            "{left:?}"
        );
        assert!(pass_deadline(now - 1_000).is_none());
    }
}
