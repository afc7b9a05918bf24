//! `zhifu serve`, `zhifu migrate`, `zhifu reconcile`, `zhifu webhooks`:
//! thin shells that choose how to serve `zhifu-server`'s router or run its
//! jobs, and the process plumbing (runtime, logs, shutdown) that `zhifu dev`
//! ([`crate::dev_cmd`]) shares with them.
//!
//! `serve` is production: configuration from the environment only,
//! listening where the platform says (Aliyun FC's `FC_CUSTOM_LISTEN_PORT`,
//! Tencent SCF's 9000, a container's `PORT`; see `zhifu_server::platform`).

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use zhifu_server::config::Source;
use zhifu_server::{AppState, Config, ReconcileOptions};
use zhifu_store::{EventQuery, SqlStore, Store, StoreOptions, WebhookState};

/// `zhifu serve` (all configuration from the environment, see the README).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (the port comes from `FC_CUSTOM_LISTEN_PORT`,
    /// `FC_SERVER_PORT` or `PORT`, default 9000).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
}

/// `zhifu reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Leave orders and refunds younger than this many seconds alone
    /// (default `ZHIFU_RECONCILE_MIN_AGE_SECS` or 120).
    #[arg(long)]
    min_age: Option<u64>,
    /// At most this many orders, refunds and deliveries each (default
    /// `ZHIFU_RECONCILE_LIMIT` or 200).
    #[arg(long)]
    limit: Option<usize>,
    /// Seconds a claimed row stays reserved for this pass (default
    /// `ZHIFU_RECONCILE_LEASE_SECS` or 240).
    #[arg(long)]
    lease: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Instead of one pass: listen like `zhifu serve` and run one pass per
    /// `POST /invoke` (Aliyun FC's timer trigger on a custom runtime).
    #[arg(long)]
    listen: bool,
    /// Address to bind with `--listen`.
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
}

/// `zhifu webhooks`.
#[derive(Debug, Args)]
pub struct WebhooksArgs {
    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(Debug, clap::Subcommand)]
enum WebhooksCommand {
    /// List events and their delivery state, newest first (needs only
    /// `ZHIFU_DATABASE_URL`).
    List {
        /// Only `pending`, `delivered` or `failed`.
        #[arg(long)]
        state: Option<String>,
        /// Only this order's events.
        #[arg(long)]
        order: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deliver one event now, whatever its state; a delivered or failed event
    /// is re-armed (needs the full `zhifu serve` configuration).
    Resend {
        /// The event id (`evt_…`).
        event_id: String,
    },
}

/// `zhifu migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Database URL (default: `ZHIFU_DATABASE_URL`).
    #[arg(long, env = "ZHIFU_DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub(crate) fn init_logs() {
    init_logs_with(false);
}

/// The process's logs on stderr (text, or JSON for a platform's log
/// service) and, with `log_requests` (`zhifu dev --log-requests`), the
/// activity lines on stdout instead of among them.
pub(crate) fn init_logs_with(log_requests: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    if log_requests && let Ok(off) = format!("{}=off", crate::logs_cmd::ACTIVITY_TARGET).parse() {
        filter = filter.add_directive(off);
    }
    // Function platforms collect stderr into their log service (Aliyun SLS,
    // Tencent CLS), which indexes JSON fields: JSON there, and no colour
    // codes anywhere but a terminal.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = log_as_json(
        std::env::var("ZHIFU_LOG_FORMAT").ok().as_deref(),
        terminal,
        |k| std::env::var_os(k).is_some(),
    );
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(terminal)
            .with_filter(filter)
            .boxed()
    };
    let activity = log_requests.then(|| {
        crate::logs_cmd::ActivityPrinter.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(crate::logs_cmd::ACTIVITY_TARGET, tracing::Level::INFO)
                .with_target(crate::logs_cmd::REQUEST_SPAN_TARGET, tracing::Level::ERROR),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(activity)
        .try_init();
}

/// Variables that only a function platform sets.
const FUNCTION_PLATFORM_VARS: [&str; 4] = [
    "FC_FUNCTION_NAME",
    "FC_CUSTOM_LISTEN_PORT",
    "SCF_FUNCTIONNAME",
    "AWS_LAMBDA_FUNCTION_NAME",
];

/// `ZHIFU_LOG_FORMAT`: `json` or `text`; unset, JSON on a function
/// platform when stderr is not a terminal, text otherwise.
fn log_as_json(format: Option<&str>, terminal: bool, set: impl Fn(&str) -> bool) -> bool {
    match format.map(str::trim) {
        Some(f) if f.eq_ignore_ascii_case("json") => true,
        Some(f) if f.eq_ignore_ascii_case("text") => false,
        _ => !terminal && FUNCTION_PLATFORM_VARS.iter().any(|k| set(k)),
    }
}

pub(crate) fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// `zhifu serve`.
pub fn serve(a: ServeArgs) -> ExitCode {
    init_logs();
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    report(runtime().and_then(|rt| rt.block_on(run_serve(a, config))))
}

/// The state `serve`, `reconcile` and `webhooks resend` work on. The pool
/// connects lazily (sqlx opens connections on first use), so nothing here
/// touches the network unless migrations are asked for.
async fn open_state(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    AppState::open(config, migrate)
        .await
        .context("cannot open the database at ZHIFU_DATABASE_URL")
}

/// What `zhifu serve` runs with, logged once at start-up: enough to see a
/// wrong app id, gateway or database at a glance, never a secret (no key,
/// no API key, no database credentials).
fn log_start_up(config: &Config, checkout: Option<&zhifu_checkout::CheckoutConfig>) {
    let s = &config.settings;
    let gateway = crate::protocol_cmds::gateway_kind(&s.gateway);
    let database = crate::protocol_cmds::database_kind(&config.database_url);
    let signing = match &config.signing {
        zhifu_server::config::SigningMode::PublicKey => "public key (ALIPAY_PUBLIC_KEY)".to_owned(),
        // Serial numbers of public certificates: not secrets.
        zhifu_server::config::SigningMode::Certificates(c) => format!(
            "certificates (app_cert_sn {}, alipay_cert_sn {}, alipay_root_cert_sn {})",
            c.app_cert_sn, c.alipay_cert_sn, c.alipay_root_cert_sn
        ),
    };
    tracing::info!(
        app_id = %s.app_id,
        gateway = %s.gateway,
        gateway_kind = gateway,
        signing_mode = config.signing.name(),
        signing = %signing,
        app_key_bits = s.app_private_key.bits(),
        alipay_key_fingerprint = %s.alipay_public_key.fingerprint(),
        seller_id = s.seller_id.as_deref().unwrap_or("-"),
        public_url = %s.public_url,
        database = %database,
        webhooks = config.webhook.is_some(),
        checkout = checkout.is_some(),
        "zhifu serve configuration"
    );
    println!("app id {} · gateway {} ({gateway})", s.app_id, s.gateway);
    println!(
        "signing mode: {signing}, Alipay key fingerprint {}",
        s.alipay_public_key.fingerprint()
    );
    println!(
        "public URL {} (notify_url {}) · database {database}",
        s.public_url,
        s.notify_url()
    );
    if let Some(c) = checkout {
        println!("shop name {:?}", c.branding.display_name());
    }
}

async fn run_serve(a: ServeArgs, config: Config) -> anyhow::Result<()> {
    let port = config.port;
    let migrate = config.auto_migrate;
    // The checkout (storefront, result page, /admin, zhifu.js) is served
    // when a catalog is configured (`ZHIFU_CATALOG`); it orders through the
    // merchant API in-process, like any API client.
    let checkout = zhifu_checkout::CheckoutConfig::from_env(&config.settings.public_url, |k| {
        std::env::var(k).ok()
    })
    .context("checkout configuration (ZHIFU_CATALOG …)")?;
    log_start_up(&config, checkout.as_ref());
    let api_key = config.settings.api_key.expose().to_owned();
    let limits = config.listener.clone();
    let ticker = config
        .reconcile_every
        .map(|every| (config.reconcile.clone(), every));
    let state = open_state(config, migrate).await?;
    let _ticker = ticker.map(|(opts, every)| {
        println!(
            "reconcile pass every {}s (ZHIFU_RECONCILE_EVERY_SECS)",
            every.as_secs()
        );
        AbortOnDrop(zhifu_server::jobs::reconcile::spawn_ticker(
            state.clone(),
            opts,
            every,
        ))
    });
    let listener = tokio::net::TcpListener::bind((a.host.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {}:{port}", a.host))?;
    let addr = listener.local_addr().context("no local address")?;
    tracing::info!(%addr, "zhifu serve listening");
    println!("zhifu serve listening on http://{addr}");
    // `/openapi.json` also describes the checkout API when it is served.
    let api_docs = checkout.iter().map(|_| zhifu_checkout::api::openapi());
    let backend = zhifu_server::http::router_with_api_docs(state, api_docs.collect());
    let app = match checkout {
        Some(c) => {
            println!("checkout (storefront, /admin, /zhifu.js) enabled");
            zhifu_checkout::router_over_backend(c, backend.clone(), &api_key)
                .context("checkout configuration")?
                .merge(backend)
        }
        None => backend,
    };
    zhifu_server::http::serve_with_limits(listener, app, shutdown_signal(), limits)
        .await
        .context("the server failed")
}

/// Stops a background task when the command that started it ends.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn config_or_exit() -> Result<Config, ExitCode> {
    Config::from_env().map_err(|e| {
        eprintln!("configuration error: {e}");
        ExitCode::from(2)
    })
}

/// `zhifu reconcile`.
pub fn reconcile(a: ReconcileArgs) -> ExitCode {
    init_logs();
    let config = match config_or_exit() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match runtime().and_then(|rt| rt.block_on(run_reconcile(a, config))) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn reconcile_options(a: &ReconcileArgs, base: &ReconcileOptions) -> ReconcileOptions {
    let mut o = base.clone();
    if let Some(s) = a.min_age {
        o.min_age = std::time::Duration::from_secs(s);
    }
    if let Some(n) = a.limit {
        o.limit = n.max(1);
    }
    if let Some(s) = a.lease {
        o.lease = std::time::Duration::from_secs(s.max(1));
    }
    o
}

async fn run_reconcile(a: ReconcileArgs, mut config: Config) -> anyhow::Result<ExitCode> {
    let opts = reconcile_options(&a, &config.reconcile);
    // A job exits when its pass ends: a first webhook attempt left to a
    // background task would die with it, so its commits try inline.
    if let Some(w) = config.webhook.as_mut() {
        w.prefer_inline(w.timeout);
    }
    let port = config.port;
    // A job never migrates: that is a deploy step (`zhifu migrate`).
    let state = open_state(config, false).await?;
    if a.listen {
        let listener = tokio::net::TcpListener::bind((a.host.as_str(), port))
            .await
            .with_context(|| format!("cannot listen on {}:{port}", a.host))?;
        let addr = listener.local_addr().context("no local address")?;
        println!("zhifu reconcile listening on http://{addr} (POST /invoke runs one pass)");
        let app = zhifu_server::http::reconcile_event_router(state, opts);
        zhifu_server::serve(listener, app, shutdown_signal())
            .await
            .context("the server failed")?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = zhifu_server::jobs::reconcile::run_pass(&state, &opts).await;
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "reconcile: {} orders checked, {} paid, {} closed; {} refunds checked, {} succeeded, {} failed; \
             {} webhooks attempted, {} delivered, {} given up; {} errors{}",
            report.orders_checked,
            report.paid.len(),
            report.closed.len(),
            report.refunds_checked,
            report.refunds_succeeded.len(),
            report.refunds_failed.len(),
            report.webhooks_attempted,
            report.webhooks_delivered.len(),
            report.webhooks_given_up.len(),
            report.errors.len(),
            if report.stopped_at_deadline {
                " (stopped at the deadline)"
            } else {
                ""
            },
        );
        for id in &report.paid {
            println!("  paid     {id}");
        }
        for id in &report.closed {
            println!("  closed   {id}");
        }
        for e in &report.errors {
            println!("  error    {e}");
        }
    }
    // Rows that failed are retried by the next pass; the exit code lets a
    // scheduler notice that some did.
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `zhifu webhooks list|resend`.
pub fn webhooks(a: WebhooksArgs) -> ExitCode {
    init_logs();
    report(runtime().and_then(|rt| rt.block_on(run_webhooks(a))))
}

fn ms_to_rfc3339(ms: i64) -> String {
    zhifu_server::rfc3339(ms).unwrap_or_else(|| ms.to_string())
}

async fn run_webhooks(a: WebhooksArgs) -> anyhow::Result<()> {
    match a.command {
        WebhooksCommand::List {
            state,
            order,
            limit,
            json,
        } => {
            let webhook_state = match state.as_deref() {
                None => None,
                Some(s) => Some(WebhookState::parse(s).ok_or_else(|| {
                    anyhow!("--state must be pending, delivered or failed, not {s:?}")
                })?),
            };
            let src = Source::from_env().context("configuration error")?;
            let url = zhifu_server::config::database_url(&src).context("configuration error")?;
            let store = SqlStore::connect(&url, &StoreOptions::default())
                .await
                .context("cannot connect to ZHIFU_DATABASE_URL")?;
            let events = store
                .query_events(&EventQuery {
                    webhook_state,
                    order_id: order,
                    limit: limit.clamp(1, 10_000),
                })
                .await
                .context("cannot read the events")?;
            if !json {
                println!(
                    "{:<36} {:<26} {:<36} {:<9} {:>8}  {:<20}  LAST ERROR",
                    "EVENT", "TYPE", "ORDER", "STATE", "ATTEMPTS", "CREATED"
                );
            }
            for e in &events {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": e.id, "type": e.event_type.as_str(), "order_id": e.order_id,
                            "state": e.webhook_state.as_str(), "attempts": e.attempts,
                            "created_at": ms_to_rfc3339(e.created_at),
                            "next_attempt_at": e.next_attempt_at.map(ms_to_rfc3339),
                            "delivered_at": e.delivered_at.map(ms_to_rfc3339),
                            "last_error": e.last_error,
                        })
                    );
                } else {
                    println!(
                        "{:<36} {:<26} {:<36} {:<9} {:>8}  {:<20}  {}",
                        e.id,
                        e.event_type.as_str(),
                        e.order_id,
                        e.webhook_state.as_str(),
                        e.attempts,
                        ms_to_rfc3339(e.created_at),
                        e.last_error.as_deref().unwrap_or("")
                    );
                }
            }
            store.close().await;
            Ok(())
        }
        WebhooksCommand::Resend { event_id } => {
            let config = Config::from_env().context("configuration error")?;
            if config.webhook.is_none() {
                anyhow::bail!("ZHIFU_WEBHOOK_URL is not set: there is nowhere to send to");
            }
            let state = open_state(config, false).await?;
            let outbox = state
                .outbox()
                .context("ZHIFU_WEBHOOK_URL is not set: there is nowhere to send to")?;
            match outbox.resend(&event_id).await.context("cannot resend")? {
                Some(r) if r.state == WebhookState::Delivered => {
                    println!(
                        "delivered {event_id} (HTTP {})",
                        r.http_status.unwrap_or_default()
                    );
                    Ok(())
                }
                Some(r) => Err(anyhow!(
                    "not delivered: {}; it stays {} and the reconcile pass retries it",
                    r.error.unwrap_or_default(),
                    r.state.as_str()
                )),
                None => Err(anyhow!("no event {event_id}")),
            }
        }
    }
}

/// `zhifu migrate`.
pub fn migrate(a: MigrateArgs) -> ExitCode {
    init_logs();
    report(runtime().and_then(|rt| {
        rt.block_on(async {
            let store = SqlStore::connect(&a.database_url, &StoreOptions::default())
                .await
                .context("cannot connect to the database")?;
            store.migrate().await.context("migrations failed")?;
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        })
    }))
}
