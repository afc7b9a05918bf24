//! `zhifu dev`, `zhifu serve`, `zhifu migrate`: thin shells that choose how
//! to serve `zhifu-server`'s router.
//!
//! `dev` is the newcomer's first command: the backend on SQLite in a data
//! directory, the sandbox's routes on the same port, generated keys
//! registered with it, an API key, and a printout of what to open. `serve`
//! is production: configuration from the environment only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use alipay::AppPrivateKey;
use anyhow::{Context, anyhow};
use clap::Args;
use zhifu_sandbox::{Sandbox, SandboxConfig};
use zhifu_server::{ApiKey, AppState, Config, Settings};
use zhifu_store::{SqlStore, Store, StoreOptions};

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
}

impl Default for DevArgs {
    fn default() -> Self {
        DevArgs {
            port: 8080,
            data: PathBuf::from(".zhifu"),
            host: "127.0.0.1".into(),
        }
    }
}

/// `zhifu serve` (all configuration from the environment, see the README).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to bind (the port comes from `PORT`).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
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

    let key_text = load_or_create(&a.data.join("app_private_key.pem"), || {
        Ok(AppPrivateKey::generate()?.to_pkcs8_pem()?)
    })?;
    let app_key =
        AppPrivateKey::parse(&key_text).context("the dev app key in the data directory")?;
    let app_id = load_or_create(&a.data.join("app_id"), || Ok("2021000000000001".to_owned()))?;
    let (api_key, key_source) = match std::env::var("ZHIFU_API_KEY") {
        Ok(k) if !k.is_empty() => (
            ApiKey::new(k).map_err(|e| anyhow!("{e}"))?,
            "from ZHIFU_API_KEY",
        ),
        _ => {
            let k = load_or_create(&a.data.join("api_key"), || {
                Ok(ApiKey::generate().expose().to_owned())
            })?;
            (
                ApiKey::new(k).map_err(|e| anyhow!("{e}"))?,
                "generated, kept in the data directory",
            )
        }
    };

    let sandbox = Sandbox::start(SandboxConfig {
        public_url: base.clone(),
        state_dir: Some(a.data.join("sandbox")),
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
    let settings = Settings {
        app_id: reg.app_id.clone(),
        app_private_key: app_key,
        alipay_public_key: reg.alipay_public_key.clone(),
        seller_id: Some(reg.seller_id.clone()),
        gateway: format!("{base}/gateway.do"),
        public_url: base.clone(),
        api_key: api_key.clone(),
        default_expiry_minutes: 30,
    };
    let store: Arc<dyn Store> = Arc::new(store);
    let state = AppState::new(settings, store);
    // The checkout (storefront, result page, /admin, zhifu.js) orders through
    // the backend's merchant API in-process.
    let checkout = zhifu_checkout::CheckoutConfig::development(&base, |k| std::env::var(k).ok())
        .context("checkout configuration")?;
    let backend = zhifu_server::router(state);
    let app = zhifu_checkout::router_over_backend(checkout, backend.clone(), api_key.expose())
        .context("checkout configuration")?
        .merge(sandbox.router())
        .merge(backend);

    let k = api_key.expose();
    println!("zhifu dev is running at {base} — everything is local, nothing leaves this machine.");
    println!();
    println!("  Storefront     {base}/   (the demo shop: pay with the sandbox)");
    println!("  Orders view    {base}/admin");
    println!("  Merchant API   {base}/v1/orders   (Authorization: Bearer {k}; {key_source})");
    println!("  API document   {base}/openapi.json");
    println!(
        "  Sandbox        {base}/sandbox/   (the local Alipay: cashier, trades, notifications)"
    );
    println!("  Data           {}", a.data.display());
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
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    report(runtime().and_then(|rt| rt.block_on(run_serve(a, config))))
}

async fn run_serve(a: ServeArgs, config: Config) -> anyhow::Result<()> {
    let options = StoreOptions {
        max_connections: config.db_max_connections,
        ..Default::default()
    };
    let store = SqlStore::connect(&config.database_url, &options)
        .await
        .context("cannot connect to ZHIFU_DATABASE_URL")?;
    if config.auto_migrate {
        store.migrate().await.context("migrations failed")?;
    }
    let listener = tokio::net::TcpListener::bind((a.host.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", a.host, config.port))?;
    let addr = listener.local_addr().context("no local address")?;
    tracing::info!(%addr, backend = ?store.backend(), "zhifu serve listening");
    println!("zhifu serve listening on http://{addr}");
    let store: Arc<dyn Store> = Arc::new(store);
    let app = zhifu_server::router(AppState::new(config.settings, store));
    zhifu_server::serve(listener, app, shutdown_signal())
        .await
        .context("the server failed")
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
