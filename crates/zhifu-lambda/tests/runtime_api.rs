//! The real `zhifu-lambda` binary's runtime loop against a loopback Lambda
//! Runtime API (a small emulator below), for a full journey: an "API
//! Gateway" (HTTP API v2, base64 bodies) turns HTTP requests — the merchant's
//! and the sandbox's notifications — into invocations of the HTTP function;
//! an EventBridge schedule event invokes the reconcile function. Both are the
//! same binary, started as Lambda starts it (its environment variables), with
//! the configuration as platforms hand it over (a `\n`-escaped PEM key).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use zhifu_store::testing::TestDatabase;
use zhifu_store::{SqlStore, StoreOptions};

zhifu_store::backend_tests!(the_binary_serves_a_full_journey_through_the_runtime_api);

type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>>;

/// A loopback Lambda Runtime API: `invoke` queues an event, the function
/// polls `/next`, posts `/response` or `/error`.
#[derive(Clone)]
struct RuntimeApi {
    addr: String,
    queue: mpsc::UnboundedSender<(String, Value)>,
    next: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>,
    waiters: Waiters,
    init_errors: Arc<Mutex<Vec<String>>>,
    counter: Arc<Mutex<u64>>,
    name: &'static str,
}

impl RuntimeApi {
    async fn start(name: &'static str) -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let api = RuntimeApi {
            addr: listener.local_addr().unwrap().to_string(),
            queue: tx,
            next: Arc::new(tokio::sync::Mutex::new(rx)),
            waiters: Arc::default(),
            init_errors: Arc::default(),
            counter: Arc::default(),
            name,
        };
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(api.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        api
    }

    /// Invokes the function and waits for its answer; returns the request id too.
    async fn invoke(&self, event: Value) -> (String, Result<Value, Value>) {
        let id = {
            let mut c = self.counter.lock().unwrap();
            *c += 1;
            format!("{}-{:04}-0000-0000-000000000000", self.name, *c)
        };
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id.clone(), tx);
        self.queue.send((id.clone(), event)).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{}: no answer to {id}; init errors: {:?}",
                    self.name,
                    self.init_errors.lock().unwrap()
                )
            })
            .expect("the invocation was answered");
        (id, answer)
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    let (id, event) = api.next.lock().await.recv().await.expect("the queue lives");
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    (
        [
            ("lambda-runtime-aws-request-id", id.clone()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                format!(
                    "arn:aws:lambda:us-east-1:123456789012:function:{}",
                    api.name
                ),
            ),
            ("lambda-runtime-trace-id", format!("Root=1-00000000-{id}")),
            ("content-type", "application/json".to_owned()),
        ],
        event.to_string(),
    )
        .into_response()
}

fn settle(api: &RuntimeApi, id: &str, result: Result<Value, Value>) -> StatusCode {
    match api.waiters.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(result);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(
    State(api): State<RuntimeApi>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let v = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    settle(&api, &id, Ok(v))
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body)
        .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()));
    settle(&api, &id, Err(v))
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.init_errors
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// The HTTP API in front of the HTTP function: every request becomes a
/// payload-2.0 event with a base64 body, as HTTP APIs send form bodies.
#[derive(Clone)]
struct Gateway {
    runtime: RuntimeApi,
    log: Arc<Mutex<Vec<(String, String)>>>,
}

async fn gateway(
    State(g): State<Gateway>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut h = serde_json::Map::new();
    for (k, v) in &headers {
        let v = v.to_str().unwrap().to_owned();
        match h.get_mut(k.as_str()) {
            Some(Value::String(prev)) => *prev = format!("{prev},{v}"),
            _ => {
                h.insert(k.as_str().to_owned(), json!(v));
            }
        }
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "loopback",
            "domainName": "127.0.0.1", "domainPrefix": "127",
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent").map(|v| v.to_str().unwrap()).unwrap_or("")},
            "requestId": "gw", "routeKey": "$default", "stage": "$default",
            "time": "25/Nov/2026:10:00:00 +0000", "timeEpoch": 1_795_600_000_000u64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true
    });
    let (id, answer) = g.runtime.invoke(event).await;
    g.log.lock().unwrap().push((uri.path().to_owned(), id));
    let answer = answer.unwrap_or_else(|e| panic!("the function failed: {e}"));
    let status = StatusCode::from_u16(answer["statusCode"].as_u64().unwrap() as u16).unwrap();
    let mut resp = Response::builder().status(status);
    if let Some(hs) = answer["headers"].as_object() {
        for (k, v) in hs {
            resp = resp.header(k, v.as_str().unwrap());
        }
    }
    let body = match (answer["body"].as_str(), answer["isBase64Encoded"].as_bool()) {
        (Some(b), Some(true)) => base64::engine::general_purpose::STANDARD.decode(b).unwrap(),
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    resp.body(axum::body::Body::from(body)).unwrap()
}

/// A child process killed at the end of the test, its output kept.
struct Function {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_function(name: &str, runtime: &RuntimeApi, env: &[(&str, String)]) -> Function {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhifu-lambda"));
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/25/[$LATEST]0123456789abcdef",
        )
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "info,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let output = Arc::new(Mutex::new(String::new()));
    for mut pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let out = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                if std::env::var_os("TEST_LOG").is_some() {
                    eprint!("{text}");
                }
                out.lock().unwrap().push_str(&text);
            }
        });
    }
    Function { child, output }
}

async fn the_binary_serves_a_full_journey_through_the_runtime_api(db: TestDatabase) {
    init_logs();
    let alipay = alipay().await;
    // Migrations are a deploy step; the functions do not run them.
    SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
        .await
        .unwrap()
        .close()
        .await;

    // The merchant's webhook endpoint.
    let hooks: Arc<Mutex<Vec<Value>>> = Arc::default();
    let hook_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hooks", hook_listener.local_addr().unwrap());
    let h = hooks.clone();
    let hook_router = axum::Router::new().route(
        "/hooks",
        post(move |body: Bytes| {
            let h = h.clone();
            async move {
                h.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(hook_listener, hook_router).await.unwrap() });

    let http_rt = RuntimeApi::start("zhifu-api").await;
    let reconcile_rt = RuntimeApi::start("zhifu-reconcile").await;
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_url = format!("http://{}", gw_listener.local_addr().unwrap());
    let gw = Gateway {
        runtime: http_rt.clone(),
        log: Arc::default(),
    };
    let gw_router = axum::Router::new().fallback(gateway).with_state(gw.clone());
    tokio::spawn(async move { axum::serve(gw_listener, gw_router).await.unwrap() });

    // As platforms hand a PEM over: one line, `\n` escaped.
    let pem_one_line = alipay.app_key.to_pkcs8_pem().unwrap().replace('\n', "\\n");
    let env = vec![
        ("ZHIFU_DATABASE_URL", db.url.clone()),
        ("ALIPAY_APP_ID", alipay.app.app_id.clone()),
        ("ALIPAY_APP_PRIVATE_KEY", pem_one_line),
        (
            "ALIPAY_PUBLIC_KEY",
            alipay.app.alipay_public_key.to_base64(),
        ),
        ("ALIPAY_SELLER_ID", alipay.app.seller_id.clone()),
        ("ALIPAY_GATEWAY", alipay.gateway.clone()),
        ("ZHIFU_PUBLIC_URL", gw_url.clone()),
        ("ZHIFU_API_KEY", API_KEY.to_owned()),
        ("ZHIFU_WEBHOOK_URL", hook_url.clone()),
        (
            "ZHIFU_WEBHOOK_SECRET",
            "whsec_lambda_test_0123456789".to_owned(),
        ),
    ];
    let api_fn = spawn_function("zhifu-api", &http_rt, &env);
    let mut reconcile_env = env.clone();
    reconcile_env.push(("ZHIFU_LAMBDA_HANDLER", "reconcile".to_owned()));
    reconcile_env.push(("ZHIFU_RECONCILE_MIN_AGE_SECS", "0".to_owned()));
    let reconcile_fn = spawn_function("zhifu-reconcile", &reconcile_rt, &reconcile_env);

    let http = reqwest::Client::new();
    let call = |method: &str, path: &str, body: Option<Value>| {
        let mut req = http
            .request(method.parse().unwrap(), format!("{gw_url}{path}"))
            .bearer_auth(API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };

    // 1. An order paid through a notification that arrives via the gateway.
    let (status, order) = call(
        "POST",
        "/v1/orders",
        Some(json!({"subject": "Mug 马克杯", "total_amount": "88.88"})),
    )
    .await;
    assert_eq!(status, 201, "{order}\n{}", api_fn.output.lock().unwrap());
    let id = order["id"].as_str().unwrap().to_owned();
    let (status, pay) = call(
        "POST",
        &format!("/v1/orders/{id}/pay"),
        Some(json!({"channel": "qr"})),
    )
    .await;
    assert_eq!(status, 200, "{pay}");
    alipay
        .sandbox
        .pay(None, order["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    alipay.sandbox.advance(Duration::ZERO).await.unwrap();
    let delivery = alipay
        .sandbox
        .notifications()
        .await
        .into_iter()
        .find(|n| n.out_trade_no == order["out_trade_no"])
        .unwrap();
    let attempt = delivery.attempts.last().unwrap();
    assert_eq!(attempt.http_status, Some(200), "{delivery:?}");
    assert_eq!(attempt.response_body.as_deref(), Some("success"));
    let (_, got) = call("GET", &format!("/v1/orders/{id}"), None).await;
    assert_eq!(got["status"], "paid");
    // The notification was answered as text/plain through the gateway.
    let r = http
        .post(format!("{gw_url}/alipay/notify"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(delivery.body.clone())
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(
        r.text().await.unwrap(),
        "success",
        "a redelivery is still success"
    );

    // 2. An order whose notifications are all lost: the schedule fixes it.
    alipay.drop_notifications().await;
    let (_, lost) = call(
        "POST",
        "/v1/orders",
        Some(json!({"subject": "Tea", "total_amount": "12.00"})),
    )
    .await;
    let lost_id = lost["id"].as_str().unwrap().to_owned();
    call(
        "POST",
        &format!("/v1/orders/{lost_id}/pay"),
        Some(json!({"channel": "qr"})),
    )
    .await;
    alipay
        .sandbox
        .pay(None, lost["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    alipay.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(
        call("GET", &format!("/v1/orders/{lost_id}"), None).await.1["status"],
        "pending"
    );
    let schedule: Value =
        serde_json::from_str(include_str!("events/eventbridge_schedule.json")).unwrap();
    let (sched_id, report) = reconcile_rt.invoke(schedule).await;
    let report = report.unwrap_or_else(|e| {
        panic!(
            "reconcile failed: {e}\n{}",
            reconcile_fn.output.lock().unwrap()
        )
    });
    assert_eq!(report["paid"], json!([lost_id]), "{report}");
    assert_eq!(
        call("GET", &format!("/v1/orders/{lost_id}"), None).await.1["status"],
        "paid"
    );

    // 3. The merchant heard about both, once each.
    let got: Vec<(String, String)> = hooks
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap().to_owned(),
                b["data"]["order_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("order.paid".to_owned(), id.clone()),
            ("order.paid".to_owned(), lost_id.clone())
        ]
    );

    // 4. Each invocation's log lines carry its request id.
    let notify_id = gw
        .log
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| p == "/alipay/notify")
        .map(|(_, id)| id.clone())
        .unwrap();
    let api_out = api_fn.output.lock().unwrap().clone();
    assert!(
        api_out
            .lines()
            .any(|l| l.contains(&notify_id) && l.contains("order changed")),
        "no log line with {notify_id}:\n{api_out}"
    );
    let rec_out = reconcile_fn.output.lock().unwrap().clone();
    assert!(
        rec_out
            .lines()
            .any(|l| l.contains(&sched_id) && l.contains("reconcile pass done")),
        "{rec_out}"
    );
    assert!(http_rt.init_errors.lock().unwrap().is_empty());
    // Secrets never reach the logs.
    assert!(!api_out.contains("whsec_lambda_test") && !api_out.contains(API_KEY));
    assert!(!api_out.contains("PRIVATE KEY"));
}
