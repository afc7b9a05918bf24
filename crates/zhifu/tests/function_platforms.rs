//! The payment backend started exactly as Aliyun Function Compute 3.0 and
//! Tencent SCF start it: their start-up scripts from `deploy/` (`bootstrap`,
//! `scf_bootstrap`) executed from a code directory holding the `zhifu`
//! binary, with the platforms' variables and ports, then the e2e flow over
//! HTTP with their request-id headers (which must reach every log line), the
//! sandbox's notifications delivered to the function, and FC's timer
//! invocation (`POST /invoke`) running the reconcile pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use zhifu_sandbox::testing as kit;
use zhifu_sandbox::{Faults, Sandbox};

const KEY: &str = "fn-test-key-0123456789";

/// A started function, killed when the test ends; its stderr (the logs) kept.
struct Running {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// A code directory as the platform unpacks it: the start-up script and the
/// binary side by side.
fn code_dir(root: &Path, script: &str) -> PathBuf {
    let code = root.join("code");
    std::fs::create_dir_all(&code).unwrap();
    let name = Path::new(script).file_name().unwrap();
    std::fs::copy(deploy(script), code.join(name)).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_zhifu"), code.join("zhifu")).unwrap();
    code
}

/// Runs the script as the platform does and waits for the line announcing
/// the address; returns it.
fn start(code: &Path, script: &str, env: &[(&str, String)]) -> (Running, String) {
    let mut cmd = Command::new(code.join(script));
    cmd.current_dir(code)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().unwrap();
    let l = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("{line}");
            }
            l.lock().unwrap().push(line);
        }
    });
    let stdout = child.stdout.take().unwrap();
    let running = Running { child, logs };
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = match lines.next() {
            Some(l) => l.unwrap(),
            None => panic!(
                "{script} exited before listening:\n{}",
                running.logs().join("\n")
            ),
        };
        if line.contains("listening on http://") {
            let addr = line
                .split("http://")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (running, addr);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct World {
    sandbox: Sandbox,
    env: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// A sandbox ("Alipay"), keys, and a migrated SQLite database under what
/// plays the platform's `/tmp`.
async fn world(public_url: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let t = kit::spawn_explicit().await;
    let sb_url = t.base.clone();
    let (reg, app_key, sandbox) = (t.app.clone(), t.app.app_key(), t.sandbox);
    let tmp = root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let db = format!("sqlite://{}/zhifu.db", tmp.display());
    // The deploy step: migrations run once, not at each cold start.
    let out = Command::new(env!("CARGO_BIN_EXE_zhifu"))
        .args(["migrate", "--database-url", &db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env = vec![
        ("ZHIFU_DATABASE_URL", db),
        ("ALIPAY_APP_ID", reg.app_id.clone()),
        // As consoles hand PEMs to environment variables: `\n`-escaped.
        (
            "ALIPAY_APP_PRIVATE_KEY",
            app_key.to_pkcs8_pem().unwrap().replace('\n', "\\n"),
        ),
        ("ALIPAY_PUBLIC_KEY", reg.alipay_public_key.to_base64()),
        ("ALIPAY_SELLER_ID", reg.seller_id.clone()),
        ("ALIPAY_GATEWAY", format!("{sb_url}/gateway.do")),
        ("ZHIFU_PUBLIC_URL", public_url.to_owned()),
        ("ZHIFU_API_KEY", KEY.to_owned()),
    ];
    World {
        sandbox,
        env,
        _dir: dir,
        root,
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    id_header: &'static str,
}

impl Client {
    async fn call(
        &self,
        request_id: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .header(self.id_header, request_id);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Order → QR payment parameters → the buyer pays in the sandbox → its
    /// notification reaches the function → `paid`.
    async fn pay_flow(&self, w: &World, tag: &str) -> Value {
        let (status, order) = self
            .call(
                &format!("{tag}-create"),
                "POST",
                "/v1/orders",
                Some(json!({"subject": "Mug", "total_amount": "18.80"})),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().unwrap();
        let (status, pay) = self
            .call(
                &format!("{tag}-pay"),
                "POST",
                &format!("/v1/orders/{id}/pay"),
                Some(json!({"channel": "qr"})),
            )
            .await;
        assert_eq!(status, 200, "{pay}");
        w.sandbox
            .pay(None, order["out_trade_no"].as_str().unwrap())
            .await
            .unwrap();
        w.sandbox.advance(Duration::ZERO).await.unwrap();
        let (_, got) = self
            .call(
                &format!("{tag}-get"),
                "GET",
                &format!("/v1/orders/{id}"),
                None,
            )
            .await;
        got
    }
}

/// On a function platform the logs are JSON, one object per line (what
/// SLS/CLS index): a line as `k=v` words — its fields, its span's fields
/// and its message — so that tests can look for `id=…` and `status=…`.
fn words(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
    let mut out = Vec::new();
    for obj in [&v, &v["span"]] {
        if let Some(m) = obj.as_object() {
            for (k, x) in m {
                match x {
                    serde_json::Value::String(t) if k == "message" => out.push(t.clone()),
                    serde_json::Value::String(t) => out.push(format!("{k}={t}")),
                    serde_json::Value::Object(_) => {}
                    other => out.push(format!("{k}={other}")),
                }
            }
        }
    }
    out.join(" ")
}

/// The function writes the line before answering, but the pipe is read by
/// another thread: allow it a bounded moment to arrive.
fn assert_logged_with_id(run: &Running, id: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let logs: Vec<String> = run.logs().iter().map(|l| words(l)).collect();
        if logs
            .iter()
            .any(|l| l.contains(&format!("id={id}")) && l.contains(what))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with id={id} and {what:?}:\n{}",
            logs.join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_fc_custom_runtime_serves_and_its_timer_reconciles() {
    let port = free_port();
    let w = world(&format!("http://127.0.0.1:{port}")).await;
    let code = code_dir(&w.root, "aliyun-fc/bootstrap");
    let mut env = w.env.clone();
    env.extend([
        // FC's variables; the listen port wins over the older name and PORT.
        ("FC_CUSTOM_LISTEN_PORT", port.to_string()),
        ("FC_SERVER_PORT", "1".to_owned()),
        ("PORT", "2".to_owned()),
        ("FC_FUNCTION_NAME", "zhifu-api".to_owned()),
        ("FC_REGION", "cn-hangzhou".to_owned()),
        ("FC_ACCOUNT_ID", "1234567890123456".to_owned()),
        ("FC_FUNCTION_MEMORY_SIZE", "256".to_owned()),
    ]);
    let (api, addr) = start(&code, "bootstrap", &env);
    assert_eq!(
        addr,
        format!("0.0.0.0:{port}"),
        "FC needs 0.0.0.0 on its port"
    );
    let c = Client {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
        id_header: "x-fc-request-id",
    };
    let paid = c.pay_flow(&w, "fc-1").await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_logged_with_id(&api, "fc-1-create", "status=201");
    assert_logged_with_id(&api, "fc-1-get", "status=200");

    // A second order whose notifications are lost, then FC's timer trigger
    // invokes the reconcile function (the same code, ZHIFU_FUNCTION=reconcile).
    w.sandbox
        .set_faults(Faults {
            drop_rate: 1.0,
            ..Default::default()
        })
        .await;
    let lost = c.pay_flow(&w, "fc-2").await;
    assert_eq!(lost["status"], "pending");
    let rport = free_port();
    let mut renv = w.env.clone();
    renv.extend([
        ("FC_CUSTOM_LISTEN_PORT", rport.to_string()),
        ("FC_FUNCTION_NAME", "zhifu-reconcile".to_owned()),
        ("ZHIFU_FUNCTION", "reconcile".to_owned()),
        ("ZHIFU_RECONCILE_MIN_AGE_SECS", "0".to_owned()),
    ]);
    let rcode = code_dir(&w.root.join("reconcile"), "aliyun-fc/bootstrap");
    let (timer, raddr) = start(&rcode, "bootstrap", &renv);
    assert_eq!(raddr, format!("0.0.0.0:{rport}"));
    let r = c
        .http
        .post(format!("http://127.0.0.1:{rport}/invoke"))
        .header("x-fc-request-id", "fc-timer-1")
        .header("content-type", "application/json")
        .body(r#"{"triggerTime":"2026-11-25T10:00:00Z","triggerName":"reconcile","payload":""}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["paid"], json!([lost["id"]]), "{report}");
    assert_logged_with_id(&timer, "fc-timer-1", "reconcile pass done");
    let (_, got) = c
        .call(
            "fc-3",
            "GET",
            &format!("/v1/orders/{}", lost["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(got["status"], "paid");
    // A bad ZHIFU_FUNCTION is refused by the script, naming the variable.
    let mut bad = w.env.clone();
    bad.push(("ZHIFU_FUNCTION", "cron".to_owned()));
    let out = Command::new(code.join("bootstrap"))
        .current_dir(&code)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(bad.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ZHIFU_FUNCTION"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tencent_scf_web_function_serves_on_9000() {
    // SCF's web functions listen on 9000, always: this test needs that port.
    assert!(
        std::net::TcpListener::bind("127.0.0.1:9000").is_ok(),
        "port 9000 is taken on this machine; SCF's start-up contract needs it"
    );
    let w = world("http://127.0.0.1:9000").await;
    let code = code_dir(&w.root, "tencent-scf/scf_bootstrap");
    let mut env = w.env.clone();
    env.extend([
        ("SCF_FUNCTIONNAME", "zhifu-api".to_owned()),
        ("SCF_FUNCTIONVERSION", "$LATEST".to_owned()),
        ("TENCENTCLOUD_REGION", "ap-guangzhou".to_owned()),
        ("SCF_RUNTIME", "custom".to_owned()),
    ]);
    let (api, addr) = start(&code, "scf_bootstrap", &env);
    assert_eq!(addr, "0.0.0.0:9000");
    let c = Client {
        http: reqwest::Client::new(),
        base: "http://127.0.0.1:9000".into(),
        id_header: "X-Scf-Request-Id",
    };
    let (status, health) = c.call("scf-health", "GET", "/healthz", None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let paid = c.pay_flow(&w, "scf-1").await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_logged_with_id(&api, "scf-1-create", "status=201");
    assert_logged_with_id(&api, "scf-health", "status=200");
    // Nothing secret in the logs.
    let logs = api.logs().join("\n");
    assert!(!logs.contains(KEY) && !logs.contains("PRIVATE KEY"));
}
