//! The activity log: one human line per thing that happens — each Alipay
//! gateway call, each notification received (verified or refused, and the
//! answer), each webhook attempt, each merchant API request — what
//! `stripe logs tail` is to Stripe.
//!
//! Two ways in, one line format ([`format_line`]):
//! - `zhifu dev --log-requests` prints them live from inside the process:
//!   [`ActivityPrinter`] is a `tracing` layer over the events the server
//!   already emits under the target [`ACTIVITY_TARGET`], so nothing is
//!   logged twice by two systems;
//! - `zhifu logs tail` watches any running Zhifu (dev or deployed) through
//!   the merchant API's `GET /v1/activity`, which is read from what the
//!   database holds (requests themselves are not stored, so it shows
//!   orders created instead).
//!
//! Neither ever prints a secret: the events carry none (the webhook URL is
//! cut to scheme, host and path), and the API key is only sent, never shown.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
pub(crate) use zhifu_server::metrics::ACTIVITY_TARGET;

/// `zhifu logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(subcommand)]
    command: LogsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LogsCommand {
    /// Follow the activity of a running Zhifu: gateway answers,
    /// notifications, webhook attempts and new orders, one line each.
    Tail(TailArgs),
}

/// `zhifu logs tail`.
#[derive(Debug, Args)]
struct TailArgs {
    /// The Zhifu to watch (default: `zhifu dev` on its default port).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Its API key (default: `ZHIFU_API_KEY`, else the key `zhifu dev`
    /// keeps in `--data`).
    #[arg(long)]
    api_key: Option<String>,
    /// The data directory of `zhifu dev`, for its API key.
    #[arg(long, default_value = ".zhifu")]
    data: PathBuf,
    /// Print each entry as a JSON line (the API's fields) instead.
    #[arg(long)]
    json: bool,
    /// Stop after this many lines (scripts, tests).
    #[arg(long)]
    max_lines: Option<usize>,
    /// Show this many of the most recent entries first (0: only what
    /// happens from now on; at most 100).
    #[arg(long, default_value_t = 10)]
    history: usize,
    /// How often to ask for new entries, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

/// Runs `zhifu logs …`.
pub fn logs(a: LogsArgs) -> ExitCode {
    let LogsCommand::Tail(t) = a.command;
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
    match rt.block_on(tail(t)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One page of `GET /v1/activity`: entries newest first, the next cursor
/// and whether more are waiting.
async fn page(
    http: &reqwest::Client,
    api: &str,
    key: &str,
    query: &[(&str, String)],
) -> anyhow::Result<(Vec<Value>, Option<String>, bool)> {
    let mut url = reqwest::Url::parse(&format!("{api}/v1/activity")).context("--url")?;
    url.query_pairs_mut().extend_pairs(query);
    let resp = http
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("cannot reach {api}"))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .context("GET /v1/activity answered no JSON")?;
    if !status.is_success() {
        return Err(anyhow!(
            "GET /v1/activity answered {status}: {}",
            body["error"]["message"].as_str().unwrap_or("")
        ));
    }
    Ok((
        body["data"].as_array().cloned().unwrap_or_default(),
        body["next_cursor"].as_str().map(str::to_owned),
        body["has_more"].as_bool().unwrap_or(false),
    ))
}

async fn tail(a: TailArgs) -> anyhow::Result<()> {
    let api = a.url.trim_end_matches('/').to_owned();
    if !(api.starts_with("http://") || api.starts_with("https://")) {
        return Err(anyhow!("--url must be an http(s) URL"));
    }
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("HTTP client")?;
    // What exists now is history: the newest `--history` entries are
    // printed, the rest only remembered so the first rounds skip them.
    let (recent, next, _) = page(&http, &api, &key, &[("limit", "100".to_owned())]).await?;
    let history = a.history.min(recent.len());
    let mut shown = Shown::default();
    for e in &recent[history..] {
        shown.insert(e["cursor"].as_str().unwrap_or(""));
    }
    let mut printed = 0usize;
    let mut print = |entries: &[Value]| -> bool {
        let mut out = std::io::stdout().lock();
        // The API lists newest first; a log reads oldest first.
        for e in entries.iter().rev() {
            if !shown.insert(e["cursor"].as_str().unwrap_or("")) {
                continue;
            }
            let line = if a.json {
                e.to_string()
            } else {
                let empty = Map::new();
                let fields = e.as_object().unwrap_or(&empty);
                format_line(&clock_of(e["at"].as_str().unwrap_or("")), fields)
            };
            let _ = writeln!(out, "{line}");
            printed += 1;
            if a.max_lines.is_some_and(|m| printed >= m) {
                let _ = out.flush();
                return true;
            }
        }
        let _ = out.flush();
        false
    };
    if print(&recent[..history]) {
        return Ok(());
    }
    // Before the first entry ever: everything that comes is new.
    let mut newest = next.as_deref().and_then(cursor_at).unwrap_or(0);
    loop {
        // An entry's time is taken when it starts (a webhook attempt's
        // before the request is sent) and it is stored when it ends, so it
        // can appear after a newer one was shown: each round reads again
        // from `LATE_MS` before the newest time seen, and `shown` keeps
        // every line to once.
        let mut from = format!("{}.", newest.saturating_sub(LATE_MS).max(0));
        loop {
            let (entries, next, more) = match page(
                &http,
                &api,
                &key,
                &[("after", from.clone()), ("limit", "100".to_owned())],
            )
            .await
            {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e:#}; retrying");
                    break;
                }
            };
            if print(&entries) {
                return Ok(());
            }
            if let Some(at) = next.as_deref().and_then(cursor_at) {
                newest = newest.max(at);
            }
            match next {
                Some(n) if more => from = n,
                _ => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(a.interval_ms.max(100))).await;
    }
}

/// How far back each round of `logs tail` reads again: longer than a
/// webhook attempt can take (`zhifu_server::config::DELIVERY_TIMEOUT`, 5 s).
const LATE_MS: i64 = 15_000;

/// The time of a cursor (`at.id`).
fn cursor_at(c: &str) -> Option<i64> {
    c.split_once('.')?.0.parse().ok()
}

/// Cursors of the entries already printed, bounded: the oldest are
/// forgotten first (they are long out of the window read again).
#[derive(Default)]
struct Shown {
    set: std::collections::HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl Shown {
    const CAP: usize = 10_000;

    fn insert(&mut self, cursor: &str) -> bool {
        if !self.set.insert(cursor.to_owned()) {
            return false;
        }
        self.order.push_back(cursor.to_owned());
        if self.order.len() > Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// `HH:MM:SS` of an RFC 3339 time (UTC, as the API gives it).
fn clock_of(at: &str) -> String {
    at.split_once('T')
        .map(|(_, t)| t.chars().take(8).collect())
        .unwrap_or_default()
}

/// `HH:MM:SS` now, UTC, for the live lines (the same clock as the API's).
fn clock_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:02}:{:02}:{:02}", now.hour(), now.minute(), now.second())
}

fn text<'a>(f: &'a Map<String, Value>, k: &str) -> &'a str {
    f.get(k).and_then(Value::as_str).unwrap_or("")
}

fn number(f: &Map<String, Value>, k: &str) -> Option<i64> {
    f.get(k).and_then(Value::as_i64)
}

/// The one-line form of an activity entry, whether it came from a live
/// event or from `GET /v1/activity` (same field names).
pub(crate) fn format_line(clock: &str, f: &Map<String, Value>) -> String {
    let kind = text(f, "kind");
    let mut parts: Vec<String> = Vec::new();
    let out_trade_no = text(f, "out_trade_no");
    let trade_no_part =
        || (!out_trade_no.is_empty()).then(|| format!("out_trade_no={out_trade_no}"));
    match kind {
        "api" => {
            parts.push(format!("{} {}", text(f, "method"), text(f, "path")));
            if let Some(s) = number(f, "status") {
                parts.push(format!("→ {s}"));
            }
            parts.push(text(f, "request_id").to_owned());
        }
        "gateway" => {
            parts.push(text(f, "method").to_owned());
            parts.extend(trade_no_part());
            let code = text(f, "code");
            let sub_code = text(f, "sub_code");
            let answer = match (code.is_empty(), sub_code.is_empty()) {
                (true, _) => format!("→ {}", text(f, "outcome")),
                (false, true) => format!("→ {code}"),
                (false, false) => format!("→ {code} {sub_code}"),
            };
            parts.push(answer);
            let trade_status = text(f, "trade_status");
            if !trade_status.is_empty() {
                parts.push(trade_status.to_owned());
            }
            let amount = text(f, "amount");
            if !amount.is_empty() {
                parts.push(format!("¥{amount}"));
            }
        }
        "notification" => {
            parts.extend(trade_no_part());
            let trade_status = text(f, "trade_status");
            if !trade_status.is_empty() {
                parts.push(trade_status.to_owned());
            }
            let verified = f.get("verified").and_then(Value::as_bool).unwrap_or(false);
            let reason = text(f, "reason");
            parts.push(match (verified, reason.is_empty()) {
                (true, true) => "verified".to_owned(),
                (true, false) => format!("verified, refused ({reason})"),
                (false, _) => format!("refused ({reason})"),
            });
            parts.push(format!("→ {}", text(f, "answer")));
        }
        "webhook" => {
            parts.push(format!("{} {}", text(f, "event_type"), text(f, "event_id")));
            parts.push(format!("→ {}", text(f, "url")));
            match (number(f, "http_status"), text(f, "error")) {
                (Some(s), _) => parts.push(s.to_string()),
                (None, e) if !e.is_empty() => parts.push(format!("failed ({e})")),
                _ => parts.push("failed".to_owned()),
            }
            if let Some(n) = number(f, "attempt") {
                parts.push(format!("attempt {n}"));
            }
        }
        "order" => {
            parts.push(format!("created {}", text(f, "order_id")));
            parts.extend(trade_no_part());
            let amount = text(f, "amount");
            if !amount.is_empty() {
                parts.push(format!("¥{amount}"));
            }
        }
        _ => parts.push(text(f, "message").to_owned()),
    }
    if let Some(ms) = number(f, "ms") {
        parts.push(format!("{ms}ms"));
    }
    parts.retain(|p| !p.is_empty());
    format!("{clock}  {kind:<12}  {}", parts.join("  "))
}

/// The fields of one event or span, as JSON values.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

/// Where the server's per-request span (named `request`, field `id`) is
/// created.
pub(crate) const REQUEST_SPAN_TARGET: &str = "zhifu_server::http::context";

/// The id of the request a span belongs to, kept on the `request` span.
struct RequestId(String);

/// `zhifu dev --log-requests`: prints each event of [`ACTIVITY_TARGET`] as
/// one line on stdout. Merchant API lines are limited to `/v1/` (the
/// notification endpoint has its own line; health and metrics are not API
/// calls) without `/v1/activity` (polled by `zhifu logs tail`); other lines
/// get the id of the request that caused them, when there was one. Its
/// filter must also let the request span through ([`REQUEST_SPAN_TARGET`]).
pub(crate) struct ActivityPrinter;

impl<S> tracing_subscriber::Layer<S> for ActivityPrinter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if attrs.metadata().name() != "request" {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(Value::String(rid)), Some(span)) = (fields.0.remove("id"), ctx.span(id)) {
            span.extensions_mut().insert(RequestId(rid));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if event.metadata().target() != ACTIVITY_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut f = fields.0;
        // `zhifu logs tail`'s own polling would drown everything else.
        let path = text(&f, "path");
        if text(&f, "kind") == "api" && (!path.starts_with("/v1/") || path == "/v1/activity") {
            return;
        }
        if !f.contains_key("request_id")
            && let Some(scope) = ctx.event_scope(event)
        {
            for span in scope {
                if let Some(rid) = span.extensions().get::<RequestId>() {
                    f.insert("request_id".into(), Value::from(rid.0.clone()));
                    break;
                }
            }
        }
        let mut line = format_line(&clock_now(), &f);
        if text(&f, "kind") != "api" {
            let rid = text(&f, "request_id");
            if !rid.is_empty() {
                line.push_str("  ");
                line.push_str(rid);
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn lines_name_what_happened() {
        let gw = format_line(
            "10:00:00",
            &fields(serde_json::json!({
                "kind": "gateway", "method": "alipay.trade.refund", "out_trade_no": "T1",
                "code": "40004", "sub_code": "ACQ.TRADE_NOT_EXIST", "ms": 12
            })),
        );
        assert_eq!(
            gw,
            "10:00:00  gateway       alipay.trade.refund  out_trade_no=T1  → 40004 ACQ.TRADE_NOT_EXIST  12ms"
        );
        let n = format_line(
            "10:00:01",
            &fields(serde_json::json!({
                "kind": "notification", "out_trade_no": "T1", "verified": false,
                "reason": "bad_signature", "answer": "failure"
            })),
        );
        assert_eq!(
            n,
            "10:00:01  notification  out_trade_no=T1  refused (bad_signature)  → failure"
        );
        let w = format_line(
            "10:00:02",
            &fields(serde_json::json!({
                "kind": "webhook", "event_type": "order.paid", "event_id": "evt_1",
                "url": "http://h/x", "http_status": 500, "attempt": 2, "ms": 3
            })),
        );
        assert_eq!(
            w,
            "10:00:02  webhook       order.paid evt_1  → http://h/x  500  attempt 2  3ms"
        );
    }

    #[test]
    fn clock_of_takes_the_time_of_day() {
        assert_eq!(clock_of("2026-12-07T02:21:07.123Z"), "02:21:07");
        assert_eq!(clock_of("nonsense"), "");
    }
}
