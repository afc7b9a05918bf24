//! `zhifu sandbox`: run the local Alipay gateway emulator, and the developer
//! tools around it (`trigger`, `resend`). A thin shell over `zhifu-sandbox`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use zhifu_sandbox::{Sandbox, SandboxConfig, SandboxMode, TriggerKind, TriggerRequest};

/// `zhifu sandbox`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    // Boxed: the serve flags are large and `Command` is an enum of these.
    #[command(subcommand)]
    action: Option<Box<SandboxAction>>,
    #[command(flatten)]
    serve: Box<ServeArgs>,
}

#[derive(Debug, Subcommand)]
enum SandboxAction {
    /// Send one chosen notification to any URL, signed with the sandbox key.
    Trigger(TriggerArgs),
    /// Deliver a recorded notification once more (same body, same notify_id).
    Resend(ResendArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Port to listen on (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = 9090)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Keep state (trades, notifications, the Alipay key) in SQLite here.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Multiply notification retry intervals (1 = real schedule).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// `auto`: time runs; `explicit`: the clock moves only via the control API.
    #[arg(long, default_value = "auto", value_parser = ["auto", "explicit"])]
    mode: String,
    /// Base URL the sandbox is reachable at (default `http://HOST:PORT`).
    #[arg(long)]
    public_url: Option<String>,
    /// Seed for fault-injection rates (reproducible runs).
    #[arg(long)]
    seed: Option<u64>,
    /// Register an app at start with this public key (file path or the key text).
    #[arg(long)]
    app_public_key: Option<String>,
    /// The app id for `--app-public-key` (generated when left out).
    #[arg(long, requires = "app_public_key")]
    app_id: Option<String>,
    /// Public-key-certificate mode (公钥证书模式): the sandbox has its own
    /// root CA and Alipay certificate, issues app certificates
    /// (`POST /sandbox/api/certs/app`), requires `app_cert_sn` and
    /// `alipay_root_cert_sn` on every request, and can rotate its Alipay
    /// certificate (`POST /sandbox/api/certs/rotate`). With `--state` the
    /// authority and its certificates are kept there across restarts;
    /// otherwise a new one is made at every start.
    #[arg(long)]
    cert_mode: bool,
    /// With `--cert-mode`: write `alipayRootCert.crt`,
    /// `alipayCertPublicKey_RSA2.crt` and (with `--app-public-key`)
    /// `appCertPublicKey_<app_id>.crt` into this directory.
    #[arg(long, requires = "cert_mode")]
    cert_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TriggerArgs {
    /// paid, partial-refund, full-refund, closed, tampered or duplicate.
    kind: String,
    /// Where to POST the notification (default: the trade's own
    /// `notify_url` when `--out-trade-no` names an order the sandbox holds).
    #[arg(long)]
    url: Option<String>,
    /// A running sandbox to sign and record it (default: the one inside
    /// `zhifu dev` on its default port).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        conflicts_with = "state"
    )]
    sandbox: String,
    /// Print the whole delivery as JSON instead of one line per attempt.
    #[arg(long)]
    json: bool,
    /// Sign with the key in this state directory instead (no running sandbox needed).
    #[arg(long)]
    state: Option<PathBuf>,
    /// App id.
    #[arg(long)]
    app_id: Option<String>,
    /// Merchant order number.
    #[arg(long)]
    out_trade_no: Option<String>,
    /// Order amount, e.g. 88.88.
    #[arg(long)]
    amount: Option<String>,
    /// Refund amount for partial-refund.
    #[arg(long)]
    refund_amount: Option<String>,
}

#[derive(Debug, Args)]
struct ResendArgs {
    /// Delivery id (see `GET /sandbox/api/notifications`).
    id: u64,
    /// The running sandbox (default: the one inside `zhifu dev`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    sandbox: String,
    /// Print the whole delivery as JSON instead of one line per attempt.
    #[arg(long)]
    json: bool,
}

/// Runs `zhifu sandbox …`.
/// Writes one certificate file of `--cert-dir`.
fn write_cert(dir: &std::path::Path, name: &str, pem: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))
}

pub fn run(args: SandboxArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match args.action.map(|a| *a) {
            None => serve(*args.serve).await,
            Some(SandboxAction::Trigger(t)) => trigger(t).await,
            Some(SandboxAction::Resend(r)) => resend(r).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn read_key_arg(text: &str) -> anyhow::Result<String> {
    let path = std::path::Path::new(text);
    if path.exists() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    } else {
        Ok(text.to_owned())
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mode: SandboxMode = a.mode.parse()?;
    let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port))
        .await
        .with_context(|| format!("binding {}:{}", a.host, a.port))?;
    let addr = listener.local_addr()?;
    let public_url = a
        .public_url
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{addr}"));
    let sandbox = Sandbox::start(SandboxConfig {
        public_url: public_url.clone(),
        time_scale: a.time_scale,
        mode,
        state_dir: a.state.clone(),
        seed: a.seed,
        cert_mode: a.cert_mode,
        ..Default::default()
    })
    .await
    .context("starting the sandbox")?;
    println!("Zhifu sandbox — a local Alipay gateway");
    println!("Gateway:            {public_url}/gateway.do");
    println!("Control API:        {public_url}/sandbox/api");
    println!("Overview:           {public_url}/sandbox/");
    println!(
        "Mode:               {} (time scale {})",
        a.mode, a.time_scale
    );
    match &a.state {
        Some(d) => println!("State:              {}", d.display()),
        None => println!("State:              in memory"),
    }
    println!(
        "Alipay public key:  {}",
        sandbox.alipay_public_key().to_base64()
    );
    if let Some(k) = a.app_public_key {
        let text = read_key_arg(&k)?;
        let key = alipay::AlipayPublicKey::parse_as(&text, alipay::error::KeyRole::PublicKey)
            .context("--app-public-key")?;
        let app = sandbox.register_app(a.app_id, key).await?;
        println!(
            "App:                {} (seller {})",
            app.app_id, app.seller_id
        );
        if a.cert_mode {
            let cert = sandbox
                .issue_app_cert(
                    Some(&app.app_id),
                    zhifu_sandbox::certs::AppCertRequest::RegisteredKey,
                )
                .await?;
            println!("App cert SN:        {}", cert.app_cert_sn);
            if let Some(dir) = &a.cert_dir {
                write_cert(
                    dir,
                    &format!("appCertPublicKey_{}.crt", app.app_id),
                    &cert.app_cert,
                )?;
            }
        }
    }
    if a.cert_mode {
        let files = sandbox.cert_files()?;
        println!("Signing:            certificates (公钥证书模式)");
        println!("Alipay cert SN:     {}", files.alipay_cert_sn);
        println!("Root cert SN:       {}", files.alipay_root_cert_sn);
        match &a.cert_dir {
            Some(dir) => {
                write_cert(dir, "alipayRootCert.crt", &files.root_cert)?;
                write_cert(dir, "alipayCertPublicKey_RSA2.crt", &files.alipay_cert)?;
                println!("Certificates:       {}", dir.display());
            }
            None => println!("Certificates:       GET {public_url}/sandbox/api/certs"),
        }
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    // Ctrl-C locally, SIGTERM from process managers and containers.
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    sandbox.serve(listener, shutdown).await?;
    Ok(())
}

async fn trigger(t: TriggerArgs) -> anyhow::Result<()> {
    let kind: TriggerKind = t.kind.parse()?;
    let json = t.json;
    let req = TriggerRequest {
        kind,
        url: t.url,
        app_id: t.app_id,
        out_trade_no: t.out_trade_no,
        total_amount: t.amount,
        refund_amount: t.refund_amount,
        subject: None,
    };
    let view = match t.state {
        Some(dir) => {
            let key = Sandbox::stored_alipay_key(&dir)
                .await?
                .ok_or_else(|| anyhow!("{} holds no sandbox key yet", dir.display()))?;
            let sb = Sandbox::start(SandboxConfig {
                mode: SandboxMode::Explicit,
                alipay_private_key: Some(key),
                notify_timeout: Duration::from_secs(15),
                ..Default::default()
            })
            .await?;
            serde_json::to_value(sb.trigger(req).await?)?
        }
        None => zhifu_sandbox::remote::trigger(&t.sandbox, &req).await?,
    };
    print_attempts(&view, json)
}

async fn resend(r: ResendArgs) -> anyhow::Result<()> {
    let view = zhifu_sandbox::remote::resend(&r.sandbox, r.id).await?;
    print_attempts(&view, r.json)
}

/// One line per attempt: what was sent, where, and what came back.
fn attempt_lines(view: &serde_json::Value) -> Vec<String> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    let head = format!(
        "#{} {} {} {} (trade {}) → {}",
        view["id"],
        text(&view["event"]),
        text(&view["trade_status"]),
        text(&view["out_trade_no"]),
        text(&view["trade_no"]),
        text(&view["notify_url"]),
    );
    let attempts = view["attempts"].as_array().cloned().unwrap_or_default();
    if attempts.is_empty() {
        return vec![format!(
            "{head}: queued, not attempted yet (next {})",
            text(&view["next_attempt_at"])
        )];
    }
    attempts
        .iter()
        .map(|a| {
            let answer = match (a["http_status"].as_u64(), a["error"].as_str()) {
                (Some(code), _) => {
                    let body: String = text(&a["response_body"]).chars().take(60).collect();
                    format!("HTTP {code} {body:?}")
                }
                (None, Some(e)) => format!("failed: {e}"),
                (None, None) => "no answer".to_owned(),
            };
            let verdict = if a["success"] == true {
                "ok"
            } else {
                "NOT success"
            };
            format!("{head} [{}]: {answer} — {verdict}", text(&a["kind"]))
        })
        .collect()
}

/// Prints the delivery and fails unless the last attempt got `success`.
fn print_attempts(view: &serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(view)?);
    } else {
        for line in attempt_lines(view) {
            println!("{line}");
        }
    }
    let last = view["attempts"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    if last["success"] == true {
        Ok(())
    } else {
        Err(anyhow!(
            "the receiver did not answer `success` (status {}, body {})",
            last["http_status"],
            last["response_body"]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        a: SandboxArgs,
    }

    #[test]
    fn flags_and_subcommands_parse() {
        let c = Cli::try_parse_from([
            "x",
            "--port",
            "0",
            "--time-scale",
            "0.001",
            "--mode",
            "explicit",
        ])
        .unwrap();
        assert!(c.a.action.is_none());
        assert_eq!(c.a.serve.port, 0);
        assert_eq!(c.a.serve.mode, "explicit");
        let c =
            Cli::try_parse_from(["x", "trigger", "partial-refund", "--url", "http://h/n"]).unwrap();
        match c.a.action.map(|a| *a) {
            Some(SandboxAction::Trigger(t)) => {
                assert_eq!(
                    t.kind.parse::<TriggerKind>().unwrap(),
                    TriggerKind::PartialRefund
                );
                // The sandbox inside `zhifu dev`, on its default port.
                assert_eq!(t.sandbox, "http://127.0.0.1:8080");
                assert_eq!(t.url.as_deref(), Some("http://h/n"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["x", "--mode", "sometimes"]).is_err());
        assert!(
            Cli::try_parse_from(["x", "--app-id", "1"]).is_err(),
            "app id needs a key"
        );
        assert!("refunded".parse::<TriggerKind>().is_err());
    }
}
