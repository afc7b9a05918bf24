//! `zhifu listen --forward-to URL`: the merchant webhooks of a running Zhifu
//! (`zhifu dev`, or a deployed `zhifu serve` with its API key) delivered to
//! an endpoint on this machine, signed like real deliveries, one printed
//! line per event — what `stripe listen --forward-to` is to Stripe.
//!
//! It polls `GET /v1/events` (the merchant API) rather than opening a
//! tunnel, so it works against a function behind any gateway; events that
//! existed before it started are not forwarded. Each forwarded event
//! carries `Zhifu-Signature` and the Standard Webhooks headers, signed with
//! `--secret` (or a secret generated and printed at start), so the local
//! endpoint runs its real verification code.

use std::collections::{HashSet, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::Value;
use zhifu_server::webhook;

/// `zhifu listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Where to POST each event: your webhook endpoint.
    #[arg(long)]
    forward_to: String,
    /// The Zhifu to watch (default: `zhifu dev` on its default port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// Its API key (default: `ZHIFU_API_KEY`, else the key `zhifu dev`
    /// keeps in `--data`).
    #[arg(long)]
    api_key: Option<String>,
    /// The data directory of `zhifu dev`, for its API key.
    #[arg(long, default_value = ".zhifu")]
    data: PathBuf,
    /// The secret forwarded events are signed with (default:
    /// `ZHIFU_LISTEN_SECRET`, else generated and printed).
    #[arg(long, env = "ZHIFU_LISTEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// How often to ask for new events, in milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Stop after forwarding this many events (scripts, tests).
    #[arg(long)]
    max_events: Option<usize>,
}

/// Runs `zhifu listen`.
pub fn listen(a: ListenArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ids already seen, bounded: the oldest are forgotten first.
struct Seen {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    const CAP: usize = 1_000;

    fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        if self.order.len() > Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

async fn events(http: &reqwest::Client, api: &str, key: &str) -> anyhow::Result<Vec<Value>> {
    let resp = http
        .get(format!("{api}/v1/events?limit=100"))
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {api}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .context("GET /v1/events answered no JSON")?;
    if !status.is_success() {
        return Err(anyhow!(
            "GET /v1/events answered {status}: {}",
            body["error"]["message"].as_str().unwrap_or("")
        ));
    }
    Ok(body["data"].as_array().cloned().unwrap_or_default())
}

async fn run(a: ListenArgs) -> anyhow::Result<()> {
    if !(a.forward_to.starts_with("http://") || a.forward_to.starts_with("https://")) {
        return Err(anyhow!("--forward-to must be an http(s) URL"));
    }
    let api = a.api_url.trim_end_matches('/').to_owned();
    let key = match a.api_key.clone().or_else(|| std::env::var("ZHIFU_API_KEY").ok()) {
        Some(k) if !k.is_empty() => k,
        _ => std::fs::read_to_string(a.data.join("api_key"))
            .map(|k| k.trim().to_owned())
            .with_context(|| {
                format!(
                    "no API key: give --api-key, set ZHIFU_API_KEY, or run where `zhifu dev` keeps {}",
                    a.data.join("api_key").display()
                )
            })?,
    };
    let (secret, generated) = match &a.secret {
        Some(s) if s.chars().count() >= 16 => (s.clone(), false),
        Some(_) => return Err(anyhow!("--secret must be at least 16 characters")),
        None => (
            format!("zls_{}", zhifu_server::ApiKey::generate().expose()),
            true,
        ),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("HTTP client")?;
    let mut seen = Seen {
        set: HashSet::new(),
        order: VecDeque::new(),
    };
    // What exists now is history: only what happens from here on is sent.
    for e in events(&http, &api, &key).await? {
        if let Some(id) = e["id"].as_str() {
            seen.insert(id);
        }
    }
    println!("Ready: forwarding new events of {api} to {}", a.forward_to);
    if generated {
        println!(
            "Signing secret {secret} (Standard Webhooks: {})",
            webhook::standard_secret(secret.as_bytes())
        );
    }
    let _ = std::io::stdout().flush();
    let mut forwarded = 0usize;
    loop {
        tokio::time::sleep(Duration::from_millis(a.interval_ms.max(50))).await;
        let batch = match events(&http, &api, &key).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{e:#}; retrying");
                continue;
            }
        };
        // Newest first from the API: forward oldest first.
        for e in batch.iter().rev() {
            let Some(id) = e["id"].as_str() else { continue };
            if !seen.insert(id) {
                continue;
            }
            let line = forward(&http, &a.forward_to, e, secret.as_bytes()).await;
            println!("{line}");
            let _ = std::io::stdout().flush();
            forwarded += 1;
            if a.max_events.is_some_and(|m| forwarded >= m) {
                return Ok(());
            }
        }
    }
}

/// Posts one event to `url`, signed; the printed line.
async fn forward(http: &reqwest::Client, url: &str, e: &Value, secret: &[u8]) -> String {
    let id = e["id"].as_str().unwrap_or("");
    let kind = e["type"].as_str().unwrap_or("");
    let order = e["data"]["order_id"].as_str().unwrap_or("");
    let body = e.to_string();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let sent = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            webhook::SIGNATURE_HEADER,
            webhook::sign(body.as_bytes(), secret, t),
        )
        .header(webhook::EVENT_ID_HEADER, id)
        .header("Zhifu-Event-Type", kind)
        .header(webhook::STANDARD_ID_HEADER, id)
        .header(webhook::STANDARD_TIMESTAMP_HEADER, t.to_string())
        .header(
            webhook::STANDARD_SIGNATURE_HEADER,
            webhook::sign_standard(id, body.as_bytes(), secret, t),
        )
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(r) => format!("{}", r.status().as_u16()),
        Err(err) => format!("failed ({err})"),
    };
    format!("{kind:<26} {id} order {order} → {answer}")
}
