//! What the crash tests share: a database per test (SQLite file, or a fresh
//! PostgreSQL database), `zhifu serve` / `zhifu reconcile` processes with
//! their stderr watched for fault points, and small HTTP helpers.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use zhifu_sandbox::testing::{self, TestSandbox};
use zhifu_sandbox::{Faults, SandboxConfig, SandboxMode};

/// `ZHIFU_REFUND_LEASE_SECS` of every process these tests start.
pub const REFUND_LEASE_SECS: u64 = 3;

pub const KEY: &str = "crash-test-key-0123456789";

/// How long a fault point, a start-up or a state change may take to show.
pub const WAIT: Duration = Duration::from_secs(30);

/// The variable naming the PostgreSQL server to create test databases on
/// (what `zhifu_store::testing::PG_URL_VAR` names).
pub const PG_URL_VAR: &str = "ZHIFU_TEST_DATABASE_URL";

/// A shell command that restarts that PostgreSQL server (exported by
/// `scripts/lib/postgres.sh`); it keeps the server down for
/// `ZHIFU_TEST_PG_DOWN_SECS` seconds (default 0).
pub const PG_RESTART_VAR: &str = "ZHIFU_TEST_PG_RESTART";

// ---------------------------------------------------------------------------
// Databases

/// The PostgreSQL tests of this binary share one server: each holds this
/// lock shared for its whole run, and the test that restarts the server
/// holds it exclusively, so a restart never lands in another test.
pub static PG_SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A database that exists for one test.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            url: format!("sqlite://{}/zhifu.db", dir.path().display()),
            _dir: Some(dir),
        }
    }

    /// A fresh database on `ZHIFU_TEST_DATABASE_URL`'s server, or `None`
    /// (with a note) when it is not set; in CI its absence fails the test.
    pub fn postgres(test: &str) -> Option<Db> {
        let base = match std::env::var(PG_URL_VAR) {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI is set but {PG_URL_VAR} is not: the PostgreSQL crash tests must run in CI"
                );
                eprintln!("SKIPPED postgres::{test}: {PG_URL_VAR} is not set");
                return None;
            }
        };
        let name = format!(
            "zhifu_crash_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        // zhifu-store's `testing` feature (fresh_database) is not among this
        // crate's dev-dependencies: create the database with psql.
        let out = Command::new(psql())
            .arg(&base)
            .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
            .stdin(Stdio::null())
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "cannot create a test database: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Db {
            url: with_database(&base, &name),
            _dir: None,
        })
    }
}

fn psql() -> String {
    if Command::new("psql")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return "psql".into();
    }
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin/psql"))
        .filter(|p| p.exists())
        .collect();
    bins.sort();
    bins.pop()
        .map(|p| p.display().to_string())
        .expect("psql is installed")
}

/// `base` with its database path replaced by `name`, query kept.
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let after_scheme = head.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match head[after_scheme..].find('/') {
        Some(i) => &head[..after_scheme + i],
        None => head,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// Declares each `async fn NAME(db: Db)` as `sqlite::NAME` and
/// `postgres::NAME`.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::support::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let _shared = super::support::PG_SERVER.read().await;
                    let Some(db) = super::support::Db::postgres(stringify!($name)) else {
                        return;
                    };
                    super::$name(db).await
                }
            )*
        }
    };
}
pub(crate) use backend_tests;

// ---------------------------------------------------------------------------
// The sandbox

/// Auto mode in real time, short retries (0.5 s, 1 s, 1 s, 2 s, 2 s, 4 s,
/// 8 s: about 18 s of attempts) so that a restarted server gets one.
pub async fn sandbox(faults: Faults) -> TestSandbox {
    let ms = Duration::from_millis;
    testing::spawn_with(SandboxConfig {
        mode: SandboxMode::Auto,
        time_scale: 1.0,
        retry_schedule: vec![
            ms(500),
            ms(1000),
            ms(1000),
            ms(2000),
            ms(2000),
            ms(4000),
            ms(8000),
        ],
        notify_timeout: Duration::from_secs(5),
        faults,
        alipay_private_key: Some(testing::alipay_key()),
        ..Default::default()
    })
    .await
}

// ---------------------------------------------------------------------------
// Processes

/// What a `zhifu` process needs: the sandbox app, the database, the port
/// (fixed, so that a restarted server gets the notifications addressed to
/// the one that died).
pub struct Env {
    pub vars: Vec<(String, String)>,
    pub base: String,
}

impl Env {
    pub fn new(t: &TestSandbox, db: &Db) -> Env {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let key_pem = t.app_key().to_pkcs8_pem().unwrap();
        let vars = [
            ("ALIPAY_APP_ID", t.app_id.clone()),
            ("ALIPAY_APP_PRIVATE_KEY", key_pem),
            ("ALIPAY_PUBLIC_KEY", t.alipay_public_key.to_base64()),
            ("ALIPAY_SELLER_ID", t.seller_id.clone()),
            ("ALIPAY_GATEWAY", t.gateway.clone()),
            ("ZHIFU_PUBLIC_URL", base.clone()),
            ("ZHIFU_API_KEY", KEY.to_owned()),
            ("ZHIFU_DATABASE_URL", db.url.clone()),
            ("ZHIFU_RECONCILE_MIN_AGE_SECS", "0".to_owned()),
            ("ZHIFU_RECONCILE_LEASE_SECS", "10".to_owned()),
            // The tests run every reconcile pass themselves (a server's own
            // ticker would race them for the rows they count).
            ("ZHIFU_RECONCILE_EVERY_SECS", "0".to_owned()),
            // A refund's sender holds it this long; a restarted process
            // re-sends only after it (short, so the test does not wait 45 s).
            ("ZHIFU_REFUND_LEASE_SECS", REFUND_LEASE_SECS.to_string()),
            ("ZHIFU_DB_ACQUIRE_TIMEOUT_SECS", "1".to_owned()),
            ("PORT", port.to_string()),
            ("RUST_LOG", "info,sqlx=warn".to_owned()),
        ];
        Env {
            vars: vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            base,
        }
    }

    fn command(&self, fault: Option<&str>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_zhifu"));
        for k in [
            "ZHIFU_CONFIG",
            "ZHIFU_FAULT_POINT",
            "ZHIFU_WEBHOOK_URL",
            "ZHIFU_CATALOG",
            "ZHIFU_AUTO_MIGRATE",
        ] {
            c.env_remove(k);
        }
        c.envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(f) = fault {
            c.env("ZHIFU_FAULT_POINT", f);
        }
        c
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running `zhifu` process: SIGKILLed when dropped. Its stderr is kept
/// (and printed if the test fails) and watched for fault points.
pub struct Proc {
    pub name: String,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    faults: mpsc::UnboundedReceiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command) -> (Proc, std::process::ChildStdout) {
        let mut child = cmd.spawn().expect("zhifu starts");
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, faults) = mpsc::unbounded_channel();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(p) = line.strip_prefix("ZHIFU_FAULT_POINT_REACHED ") {
                    let _ = tx.send(p.trim().to_owned());
                }
                l.lock().unwrap().push(line);
            }
        });
        (
            Proc {
                name: name.to_owned(),
                child,
                log,
                faults,
                stdout: None,
            },
            stdout,
        )
    }

    /// Waits (bounded) until the process stops at fault point `point`.
    pub async fn wait_fault(&mut self, point: &str) {
        match tokio::time::timeout(WAIT, self.faults.recv()).await {
            Ok(Some(p)) => assert_eq!(p, point, "{} stopped at another point", self.name),
            Ok(None) => panic!(
                "{} exited without reaching {point}:\n{}",
                self.name,
                self.log_text()
            ),
            Err(_) => panic!(
                "{} did not reach {point} within {WAIT:?}:\n{}",
                self.name,
                self.log_text()
            ),
        }
    }

    /// SIGKILL (what `Child::kill` sends on Unix), and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "{} was killed: {status}", self.name);
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits for the process to exit (bounded) and returns its stdout.
    pub async fn finish(mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let out = self
                    .stdout
                    .take()
                    .map(|h| h.join().unwrap())
                    .unwrap_or_default();
                assert!(status.success(), "{} failed: {status}\n{}", self.name, {
                    self.log_text()
                });
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not finish:\n{}",
                self.name,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- stderr of {} ----\n{}", self.name, self.log_text());
        }
    }
}

/// Starts `zhifu serve` (with `fault` armed) and waits until it listens on
/// the environment's port. A restart may find the port still held for a
/// moment: it is retried.
pub async fn serve(env: &Env, name: &str, fault: Option<&str>) -> Proc {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut cmd = env.command(fault);
        cmd.args(["serve", "--host", "127.0.0.1"]);
        let (mut p, stdout) = Proc::spawn(name, cmd);
        let (tx, mut rx) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = tx.send(());
                    break;
                }
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let listening = tokio::time::timeout(WAIT, rx.recv()).await;
        if matches!(listening, Ok(Some(()))) {
            return p;
        }
        let log = p.log_text();
        let running = p.is_running();
        drop(p);
        assert!(
            !running && log.contains("cannot listen") && Instant::now() < deadline,
            "{name} did not start listening:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts `zhifu reconcile --json` (short leases, no minimum age) with
/// `fault` armed.
pub fn reconcile_proc(env: &Env, name: &str, fault: Option<&str>) -> Proc {
    let mut cmd = env.command(fault);
    cmd.args(["reconcile", "--min-age", "0", "--lease", "2", "--json"]);
    let (mut p, mut stdout) = Proc::spawn(name, cmd);
    p.stdout = Some(std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    }));
    p
}

/// One `zhifu reconcile` pass, to its end; its JSON report.
pub async fn reconcile(env: &Env) -> Value {
    let out = reconcile_proc(env, "zhifu reconcile", None).finish().await;
    let line = out.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("report {out:?}: {e}"))
}

fn changed(report: &Value) -> bool {
    [
        "paid",
        "closed",
        "refunds_succeeded",
        "refunds_failed",
        "webhooks_delivered",
        "webhooks_given_up",
    ]
    .iter()
    .any(|k| report[k].as_array().is_some_and(|a| !a.is_empty()))
}

/// Runs `zhifu reconcile` passes until one checks nothing, changes nothing
/// and fails nothing (bounded); returns every report.
pub async fn reconcile_until_quiet(env: &Env) -> Vec<Value> {
    let mut reports = Vec::new();
    for _ in 0..20 {
        let r = reconcile(env).await;
        let quiet = !changed(&r)
            && r["orders_checked"] == 0
            && r["refunds_checked"] == 0
            && r["errors"].as_array().is_some_and(Vec::is_empty);
        reports.push(r);
        if quiet {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("reconcile never settled: {reports:#?}");
}

// ---------------------------------------------------------------------------
// HTTP

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A merchant API call; `Err` when no HTTP answer came.
pub async fn try_call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<Value>,
    idempotency_key: Option<&str>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut req = http.request(method.parse().unwrap(), url).bearer_auth(KEY);
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

pub async fn call(http: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> Value {
    let (status, v) = try_call(http, method, url, body, None)
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    assert!((200..300).contains(&status), "{method} {url}: {status} {v}");
    v
}

/// Creates an order and opens its page-pay URL at the sandbox (the trade
/// exists there from then on). Returns the order.
pub async fn order_opened(t: &TestSandbox, base: &str, amount: &str) -> Value {
    let http = http();
    let order = call(
        &http,
        "POST",
        &format!("{base}/v1/orders"),
        Some(json!({"subject": "Crash test", "total_amount": amount})),
    )
    .await;
    let id = order["id"].as_str().unwrap();
    let pay = call(
        &http,
        "POST",
        &format!("{base}/v1/orders/{id}/pay"),
        Some(json!({"channel": "page"})),
    )
    .await;
    open_at_sandbox(t, pay["url"].as_str().unwrap()).await;
    order
}

/// The buyer's browser opening the page-pay URL.
pub async fn open_at_sandbox(t: &TestSandbox, url: &str) {
    let opened = t.http.get(url).send().await.unwrap();
    assert!(
        opened.status().is_success() || opened.status().is_redirection(),
        "opening {url}: {}",
        opened.status()
    );
}

pub async fn get_order(base: &str, id: &str) -> Value {
    call(&http(), "GET", &format!("{base}/v1/orders/{id}"), None).await
}

/// `data` of a list endpoint under the order.
pub async fn order_list(base: &str, id: &str, what: &str) -> Vec<Value> {
    let v = call(
        &http(),
        "GET",
        &format!("{base}/v1/orders/{id}/{what}"),
        None,
    )
    .await;
    v["data"].as_array().unwrap().clone()
}

/// Waits (bounded) until the order has `status`.
pub async fn wait_status(base: &str, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let o = get_order(base, id).await;
        if o["status"] == status {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "order never became {status}: {o}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many of `items` have `field == value`.
pub fn count(items: &[Value], field: &str, value: &str) -> usize {
    items.iter().filter(|i| i[field] == value).count()
}

/// The sandbox's view of the trade for `out_trade_no`.
pub async fn trade(t: &TestSandbox, out_trade_no: &str) -> zhifu_sandbox::TradeView {
    t.sandbox
        .trades()
        .await
        .into_iter()
        .find(|tr| tr.out_trade_no == out_trade_no)
        .unwrap_or_else(|| panic!("the sandbox has no trade {out_trade_no}"))
}
