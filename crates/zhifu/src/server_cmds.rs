//! `zhifu dev`, `zhifu serve`, `zhifu migrate`, `zhifu reconcile`,
//! `zhifu webhooks`: thin shells that choose how to serve `zhifu-server`'s
//! router or run its jobs.
//!
//! `dev` is the newcomer's first command: the backend on SQLite in a data
//! directory, the sandbox's routes on the same port, generated keys
//! registered with it, an API key, and a printout of what to open. `serve`
//! is production: configuration from the environment only, listening where
//! the platform says (Aliyun FC's `FC_CUSTOM_LISTEN_PORT`, Tencent SCF's
//! 9000, a container's `PORT`; see `zhifu_server::platform`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use alipay::AppPrivateKey;
use anyhow::{Context, anyhow};
use clap::Args;
use zhifu_sandbox::{Sandbox, SandboxConfig};
use zhifu_server::config::{CertificateSettings, SigningMode, Source};
use zhifu_server::{ApiKey, AppState, Config, ReconcileOptions, Settings};
use zhifu_store::{EventQuery, SqlStore, Store, StoreOptions, WebhookState};

/// `zhifu dev`.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// Port for the backend and the sandbox (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Directory for the SQLite database, the generated keys and the sandbox state.
    #[arg(long, default_value = ".zhifu")]
    data: PathBuf,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Send the merchant webhooks (`order.paid`, …) to this URL, signed
    /// with `ZHIFU_WEBHOOK_SECRET`, or with a secret generated and kept in
    /// the data directory (printed at start, in both signature schemes).
    #[arg(long)]
    webhook_url: Option<String>,
    /// The address buyers and Alipay's side use to reach this machine (the
    /// cashier links, `notify_url`, `return_url`), e.g. `http://192.168.1.20:8080`
    /// to pay from a phone on the LAN or a tunnel's https URL. Default: the
    /// LAN address when `--host 0.0.0.0`, else the listening address.
    #[arg(long)]
    public_url: Option<String>,
    /// Public-key-certificate mode (公钥证书模式): the sandbox issues the app
    /// certificate and has its own root and Alipay certificate (written to
    /// `DATA/certs/`), every call carries `app_cert_sn` and
    /// `alipay_root_cert_sn`, and a rotated Alipay certificate
    /// (`POST /sandbox/api/certs/rotate`) is downloaded and checked.
    #[arg(long)]
    cert_mode: bool,
}

impl Default for DevArgs {
    fn default() -> Self {
        DevArgs {
            port: 8080,
            data: PathBuf::from(".zhifu"),
            host: "127.0.0.1".into(),
            webhook_url: None,
            public_url: None,
            cert_mode: false,
        }
    }
}

/// The webhook settings of `zhifu dev --webhook-url`: the environment's
/// `ZHIFU_WEBHOOK_*` as `zhifu serve` reads them, with the URL from the
/// flag and, when none is set, a secret kept in the data directory.
fn dev_webhooks(
    url: Option<&str>,
    data: &Path,
) -> anyhow::Result<Option<(zhifu_server::WebhookConfig, bool)>> {
    let Some(url) = url else {
        return Ok(None);
    };
    let mut generated = false;
    let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
    env.insert("ZHIFU_WEBHOOK_URL".into(), url.to_owned());
    let set = |k: &str| env.get(k).is_some_and(|v| !v.is_empty());
    if !set("ZHIFU_WEBHOOK_SECRET") && !set("ZHIFU_WEBHOOK_SECRET_FILE") {
        let secret = load_or_create(&data.join("webhook_secret"), || {
            Ok(format!("zws_{}", ApiKey::generate().expose()))
        })?;
        env.insert("ZHIFU_WEBHOOK_SECRET".into(), secret);
        generated = true;
    }
    let src = Source::from_map(env).context("environment")?;
    Ok(zhifu_server::WebhookConfig::from_source(&src)
        .context("--webhook-url")?
        .map(|w| (w, generated)))
}

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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Function platforms collect stderr into their log service (Aliyun SLS,
    // Tencent CLS), which indexes JSON fields: JSON there, and no colour
    // codes anywhere but a terminal.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if log_as_json(
        std::env::var("ZHIFU_LOG_FORMAT").ok().as_deref(),
        terminal,
        |k| std::env::var_os(k).is_some(),
    ) {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_ansi(terminal).try_init()
    };
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

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
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

/// Reads `path`, or writes what `make` returns there (owner-only) and uses it.
/// This machine's address on its local network (the one its default route
/// leaves by), if it has one. A UDP `connect` sends nothing.
fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.connect(("10.254.254.254", 9)).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

fn load_or_create(
    path: &Path,
    make: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        _ => {
            let v = make()?;
            write_private(path, &v)?;
            Ok(v)
        }
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `zhifu dev --cert-mode`: the sandbox issues the app certificate; the
/// three files are written to `dir` (what a merchant would configure) and
/// checked exactly as `zhifu serve` checks them.
async fn dev_certificates(
    sandbox: &Sandbox,
    app_id: &str,
    app_key: &AppPrivateKey,
    dir: &Path,
) -> anyhow::Result<SigningMode> {
    let issued = sandbox
        .issue_app_cert(
            Some(app_id),
            zhifu_sandbox::certs::AppCertRequest::RegisteredKey,
        )
        .await
        .context("cannot issue the dev app certificate")?;
    let files = sandbox.cert_files()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, pem) in [
        (format!("appCertPublicKey_{app_id}.crt"), &issued.app_cert),
        (
            "alipayCertPublicKey_RSA2.crt".to_owned(),
            &files.alipay_cert,
        ),
        ("alipayRootCert.crt".to_owned(), &files.root_cert),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, pem).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let (_, certs) = CertificateSettings::from_pems(
        app_key,
        issued.app_cert,
        files.alipay_cert,
        files.root_cert,
        // Locally a rotation may be tried again and again.
        std::time::Duration::ZERO,
    )
    .context("the sandbox's certificates")?;
    Ok(SigningMode::Certificates(Box::new(certs)))
}

/// `zhifu dev`.
pub fn dev(a: DevArgs) -> ExitCode {
    init_logs();
    report(runtime().and_then(|rt| rt.block_on(run_dev(a))))
}

async fn run_dev(a: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.data)
        .with_context(|| format!("cannot create the data directory {}", a.data.display()))?;
    let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (is another `zhifu dev` running? try --port)",
                a.host, a.port
            )
        })?;
    let addr = listener.local_addr().context("no local address")?;
    let shown_host = if a.host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        a.host.as_str()
    };
    let base = format!("http://{shown_host}:{}", addr.port());
    // What the buyer's browser (and the sandbox's notifications) use; the
    // backend still calls the in-process gateway at `base`.
    let public = match &a.public_url {
        Some(u) => {
            let u = u.trim().trim_end_matches('/');
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(anyhow!("--public-url must be an http(s) URL"));
            }
            u.to_owned()
        }
        None if a.host == "0.0.0.0" || a.host == "::" => lan_address()
            .map(|ip| format!("http://{ip}:{}", addr.port()))
            .unwrap_or_else(|| base.clone()),
        None => base.clone(),
    };

    let key_text = load_or_create(&a.data.join("app_private_key.pem"), || {
        Ok(AppPrivateKey::generate()?.to_pkcs8_pem()?)
    })?;
    let app_key =
        AppPrivateKey::parse(&key_text).context("the dev app key in the data directory")?;
    let app_id = load_or_create(&a.data.join("app_id"), || Ok("2021000000000001".to_owned()))?;
    let (api_key, key_source) = match std::env::var("ZHIFU_API_KEY") {
        Ok(k) if !k.is_empty() => (
            ApiKey::new(k).context("ZHIFU_API_KEY")?,
            "from ZHIFU_API_KEY",
        ),
        _ => {
            let k = load_or_create(&a.data.join("api_key"), || {
                Ok(ApiKey::generate().expose().to_owned())
            })?;
            (
                ApiKey::new(k).context("the API key in the data directory")?,
                "generated, kept in the data directory",
            )
        }
    };

    let sandbox = Sandbox::start(SandboxConfig {
        public_url: public.clone(),
        state_dir: Some(a.data.join("sandbox")),
        cert_mode: a.cert_mode,
        ..Default::default()
    })
    .await
    .context("cannot start the sandbox")?;
    let reg = sandbox
        .register_app(Some(app_id.clone()), app_key.public_key())
        .await
        .context("cannot register the dev app with the sandbox")?;

    let db_path = a.data.join("zhifu.db");
    let db_url = format!("sqlite://{}", db_path.display());
    let store = SqlStore::connect_and_migrate(&db_url, &StoreOptions::default())
        .await
        .with_context(|| format!("cannot open the database {}", db_path.display()))?;
    let signing = if a.cert_mode {
        dev_certificates(&sandbox, &reg.app_id, &app_key, &a.data.join("certs")).await?
    } else {
        SigningMode::PublicKey
    };
    let signing_line = match &signing {
        SigningMode::Certificates(c) => format!(
            "  Signing        certificates (files in {}; app_cert_sn {})",
            a.data.join("certs").display(),
            c.app_cert_sn
        ),
        SigningMode::PublicKey => "  Signing        public key".to_owned(),
    };
    let settings = Settings {
        app_id: reg.app_id.clone(),
        app_private_key: app_key,
        alipay_public_key: reg.alipay_public_key.clone(),
        seller_id: Some(reg.seller_id.clone()),
        gateway: format!("{base}/gateway.do"),
        public_url: public.clone(),
        api_key: api_key.clone(),
        default_expiry_minutes: 30,
        // The money knobs (`ZHIFU_PAID_AFTER_CLOSE`, …) mean the same here
        // as under `zhifu serve`, so they can be tried locally.
        money: zhifu_server::config::Source::from_env()
            .and_then(|src| zhifu_server::config::MoneyPolicy::from_source(&src))
            .context("environment")?,
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let webhooks = dev_webhooks(a.webhook_url.as_deref(), &a.data)?;
    // A secret this command generated is shown like the API key (both are
    // local to this machine); one from the environment is not.
    let webhook_line = webhooks.as_ref().map(|(w, generated)| {
        let secret = if *generated {
            format!(
                "secret in {} — Standard Webhooks form {}",
                a.data.join("webhook_secret").display(),
                zhifu_server::webhook::standard_secret(w.secret.as_bytes())
            )
        } else {
            "secret from ZHIFU_WEBHOOK_SECRET".to_owned()
        };
        format!("  Webhooks       {} ({secret})", w.url)
    });
    let state = AppState::build_signing(
        settings,
        signing,
        store,
        Arc::new(alipay::SystemClock),
        webhooks.map(|(w, _)| w),
    );
    // The local scheduler: refunds waiting for their spacing, closing
    // orders, lost notifications and webhook retries move by themselves.
    let _ticker = AbortOnDrop(zhifu_server::jobs::reconcile::spawn_ticker(
        state.clone(),
        ReconcileOptions {
            min_age: std::time::Duration::from_secs(30),
            ..Default::default()
        },
        std::time::Duration::from_secs(10),
    ));
    // The checkout (storefront, result page, /admin, zhifu.js) orders through
    // the backend's merchant API in-process.
    let checkout = zhifu_checkout::CheckoutConfig::development(&public, |k| std::env::var(k).ok())
        .context("checkout configuration")?;
    let backend = zhifu_server::router(state);
    let app = zhifu_checkout::router_over_backend(checkout, backend.clone(), api_key.expose())
        .context("checkout configuration")?
        .merge(sandbox.router())
        .merge(backend);

    let k = api_key.expose();
    println!("zhifu dev is running at {base} — everything is local, nothing leaves this machine.");
    println!();
    if public != base {
        println!(
            "  Public URL     {public}   (what a phone on your network opens; notify and return URLs use it)"
        );
    }
    println!("  Storefront     {public}/   (the demo shop: pay with the sandbox)");
    println!("  Orders view    {base}/admin");
    println!("  Merchant API   {base}/v1/orders   (Authorization: Bearer {k}; {key_source})");
    println!("  API document   {base}/openapi.json");
    println!(
        "  Sandbox        {base}/sandbox/   (the local Alipay: cashier, trades, notifications)"
    );
    println!("  Data           {}", a.data.display());
    println!("{signing_line}");
    if let Some(line) = &webhook_line {
        println!("{line}");
    }
    println!();
    println!("Try it:");
    println!(
        "  curl -s -X POST {base}/v1/orders -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' -d '{{\"subject\":\"Mug\",\"total_amount\":\"88.88\"}}'"
    );
    println!(
        "  curl -s -X POST {base}/v1/orders/ORDER_ID/pay -H 'Authorization: Bearer {k}' -H 'Content-Type: application/json' -d '{{\"channel\":\"page\"}}'   # open the url as the buyer"
    );
    println!("  curl -s {base}/v1/orders/ORDER_ID -H 'Authorization: Bearer {k}'");
    println!();
    println!("Stop with Ctrl-C.");

    zhifu_server::serve(listener, app, shutdown_signal())
        .await
        .context("the server failed")?;
    sandbox.shutdown().await;
    Ok(())
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
    let backend = zhifu_server::router(state);
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
struct AbortOnDrop(tokio::task::JoinHandle<()>);

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
