//! `zhifu dev`: the newcomer's first command. The backend on SQLite in a
//! data directory, the sandbox's routes on the same port, generated keys
//! registered with it, an API key, and a printout of what to open.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use alipay::AppPrivateKey;
use anyhow::{Context, anyhow};
use clap::Args;
use zhifu_sandbox::{Sandbox, SandboxConfig};
use zhifu_server::config::{CertificateSettings, SigningMode, Source};
use zhifu_server::{ApiKey, AppState, ReconcileOptions, Settings};
use zhifu_store::{SqlStore, Store, StoreOptions};

use crate::server_cmds::{AbortOnDrop, init_logs_with, report, runtime, shutdown_signal};

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
    /// Print one line per thing as it happens, on stdout: each Alipay
    /// gateway call, notification, webhook attempt and merchant API
    /// request (`zhifu logs tail` shows the same for a running Zhifu).
    #[arg(long)]
    log_requests: bool,
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
            log_requests: false,
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

/// This machine's address on its local network (the one its default route
/// leaves by), if it has one. A UDP `connect` sends nothing.
fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    s.connect(("10.254.254.254", 9)).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
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
    init_logs_with(a.log_requests);
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
    )
    // In-app (jsapi) buyers authorize on the sandbox's page.
    .with_oauth_authorize_url(format!("{public}/sandbox/oauth2/publicAppAuthorize.htm"));
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
    let mut checkout =
        zhifu_checkout::CheckoutConfig::development(&public, |k| std::env::var(k).ok())
            .context("checkout configuration")?;
    // The storefront gets the jsapi buyer through authorization (the
    // sandbox's authorize page), not from the stand-in buyer.
    checkout.dev_buyer_id = None;
    // `/openapi.json` also describes the checkout API served on this port.
    let backend =
        zhifu_server::http::router_with_api_docs(state, vec![zhifu_checkout::api::openapi()]);
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
