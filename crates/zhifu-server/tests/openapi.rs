//! `/openapi.json` against the server that serves it: the backend, the
//! checkout and the sandbox on one port, as `zhifu dev` runs them.
//!
//! - every documented operation is routed (not the router's 404 or 405);
//! - on a documented path, every undocumented method is 405, so no method
//!   is served without being documented;
//! - routes are declared only through `routes!` (which documents them), so
//!   a path served without documentation cannot be added either;
//! - real answers (created, paid, refunded, listed …) match the schema of
//!   their documented status, field for field;
//! - the document is valid: it reads back as OpenAPI 3.1, every `$ref`
//!   resolves, every operation has a unique `operationId`, and no schema is
//!   a JSON number (money is a string).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zhifu_checkout::CheckoutConfig;
use zhifu_sandbox::Sandbox;
use zhifu_sandbox::testing as kit;
use zhifu_server::{ApiKey, AppState, Settings};
use zhifu_store::testing::{TestDatabase, fresh_database};
use zhifu_store::{Backend, SqlStore, Store, StoreOptions};

const API_KEY: &str = "zk_openapi_test_0123456789";

struct App {
    base: String,
    http: reqwest::Client,
    sandbox: Sandbox,
    _db: TestDatabase,
}

struct Answer {
    status: u16,
    body: Value,
}

impl App {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .http
            .request(
                method.to_ascii_uppercase().parse().unwrap(),
                format!("{}{path}", self.base),
            )
            .bearer_auth(API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }

    async fn document(&self) -> Value {
        let d = self.call("GET", "/openapi.json", None).await;
        assert_eq!(d.status, 200);
        d.body
    }
}

/// What `zhifu dev` serves: checkout, sandbox and backend on one port, the
/// backend's document covering the checkout's API.
async fn spawn() -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let sb = kit::mount_at(&base, kit::explicit_config()).await;
    let settings = Settings {
        app_id: sb.app_id.clone(),
        app_private_key: sb.app_key(),
        alipay_public_key: sb.alipay_public_key.clone(),
        seller_id: Some(sb.seller_id.clone()),
        gateway: sb.gateway.clone(),
        public_url: base.clone(),
        api_key: ApiKey::new(API_KEY).unwrap(),
        default_expiry_minutes: 30,
        money: zhifu_server::config::MoneyPolicy {
            refund_spacing: Duration::ZERO,
            ..Default::default()
        },
    };
    let backend = zhifu_server::http::router_with_api_docs(
        AppState::new(settings, store),
        vec![zhifu_checkout::api::openapi()],
    );
    let config = CheckoutConfig::development(&base, |_| None).unwrap();
    let app = zhifu_checkout::router_over_backend(config, backend.clone(), API_KEY)
        .unwrap()
        .merge(sb.router())
        .merge(backend);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    App {
        base,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        sandbox: sb.sandbox,
        _db: db,
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(method, path)` of every operation under `paths`.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.push((m.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// The router's own refusals: an unknown path, or a known path with a
/// method it does not serve.
fn refused_by_router(a: &Answer) -> bool {
    a.status == 405 || (a.status == 404 && a.body["error"]["code"] == "not_found")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_nothing_else_on_its_path() {
    let app = spawn().await;
    let doc = app.document().await;
    let ops = operations(&doc);
    // The merchant API, the Alipay endpoints, operations, and the checkout.
    for needed in [
        ("post", "/v1/orders"),
        ("post", "/v1/orders/{id}/refunds"),
        ("get", "/openapi.json"),
        ("post", "/alipay/notify"),
        ("post", "/checkout"),
        ("get", "/checkout/{id}"),
    ] {
        assert!(
            ops.contains(&(needed.0.to_owned(), needed.1.to_owned())),
            "{needed:?} is not documented"
        );
    }
    for (method, path) in &ops {
        let concrete = path.replace("{id}", "ord_none");
        let body = (method == "post").then(|| json!({}));
        let a = app.call(method, &concrete, body).await;
        assert!(
            !refused_by_router(&a),
            "{method} {path} is documented but the router refuses it: {} {}",
            a.status,
            a.body
        );
        for other in METHODS {
            if doc["paths"][path].get(other).is_some() {
                continue;
            }
            let a = app.call(other, &concrete, Some(json!({}))).await;
            assert_eq!(
                a.status, 405,
                "{other} {path} is served ({}) but not documented",
                a.status
            );
        }
    }
}

/// The routers declare routes only through `routes!`, which registers the
/// handler and its operation together; a plain `.route(` would serve a path
/// the document does not know. The exceptions are named: the FC timer
/// router (a separate function with no HTTP trigger) and the checkout's
/// HTML pages and assets.
#[test]
fn routes_are_declared_only_with_their_documentation() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("src/http")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let plain: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.contains(".route(") || l.contains(".nest(") || l.contains(".route_service(")
            })
            .collect();
        let allowed = if path.ends_with("ops.rs") {
            vec![
                r#"        .route("/invoke", post(run.clone()))"#,
                r#"        .route("/", post(run))"#,
            ]
        } else {
            vec![]
        };
        assert_eq!(
            plain,
            allowed,
            "{} declares routes outside `routes!`",
            path.display()
        );
    }
    let checkout = root.join("../zhifu-checkout/src");
    let api = std::fs::read_to_string(checkout.join("api.rs")).unwrap();
    assert!(
        !api.contains(".route("),
        "checkout API routes outside routes!"
    );
    let lib = std::fs::read_to_string(checkout.join("lib.rs")).unwrap();
    for line in lib.lines().filter(|l| l.contains(".route(\"/checkout")) {
        assert!(
            line.contains("\"/checkout/result\"") || line.contains("\"/checkout/assets/"),
            "a checkout route outside `api::routes()`: {line}"
        );
    }
}

/// Follows `$ref`, `allOf`, `oneOf`/`anyOf`, types, enums, properties
/// (an undocumented field is an error), `required` and array items.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "unresolved {r}");
        return check(doc, target, v, at, errors);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, v, at, errors);
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            let fits = any.iter().any(|s| {
                let mut e = Vec::new();
                check(doc, s, v, at, &mut e);
                e.is_empty()
            });
            if !fits {
                errors.push(format!("{at}: {v} fits none of {key}"));
            }
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let actual = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let integer_as_number = actual == "integer" && types.contains(&"number");
        if !(types.contains(&actual) || integer_as_number) {
            errors.push(format!("{at}: {v} is {actual}, documented {types:?}"));
            return;
        }
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} not in {e:?}"));
    }
    if let (Some(props), Value::Object(m)) = (schema["properties"].as_object(), v) {
        for (k, val) in m {
            match props.get(k) {
                Some(s) => check(doc, s, val, &format!("{at}.{k}"), errors),
                None => errors.push(format!("{at}.{k} is not documented")),
            }
        }
        for r in schema["required"].as_array().into_iter().flatten() {
            let r = r.as_str().unwrap();
            if !m.contains_key(r) {
                errors.push(format!("{at}.{r} is required but absent"));
            }
        }
    }
    if let (Some(items), Value::Array(a)) = (schema.get("items"), v) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

/// Checks an answer against the schema documented for its status.
fn conforms(doc: &Value, method: &str, path: &str, a: &Answer) {
    let response = &doc["paths"][path][method]["responses"][a.status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {} ({}), which is not documented",
        a.status,
        a.body
    );
    let Some(schema) = response["content"]["application/json"].get("schema") else {
        return;
    };
    let mut errors = Vec::new();
    check(
        doc,
        schema,
        &a.body,
        &format!("{method} {path} {}", a.status),
        &mut errors,
    );
    assert!(errors.is_empty(), "{errors:#?}\n{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_match_their_documented_schemas() {
    let app = spawn().await;
    let doc = app.document().await;
    let o = |m: &str, p: &str, a: &Answer| conforms(&doc, m, p, a);

    let created = app
        .call(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Mug", "total_amount": "9.90", "metadata": {"k": "v"}})),
        )
        .await;
    assert_eq!(created.status, 201);
    o("post", "/v1/orders", &created);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let out_trade_no = created.body["out_trade_no"].as_str().unwrap().to_owned();
    let pay = app
        .call(
            "POST",
            &format!("/v1/orders/{id}/pay"),
            Some(json!({"channel": "qr"})),
        )
        .await;
    o("post", "/v1/orders/{id}/pay", &pay);
    app.sandbox.pay(None, &out_trade_no).await.unwrap();
    app.sandbox.advance(Duration::ZERO).await.unwrap();
    let paid = app.call("GET", &format!("/v1/orders/{id}"), None).await;
    assert_eq!(paid.body["status"], "paid", "{}", paid.body);
    o("get", "/v1/orders/{id}", &paid);
    let refund = app
        .call(
            "POST",
            &format!("/v1/orders/{id}/refunds"),
            Some(json!({"amount": "1.00", "reason": "chipped"})),
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.body);
    o("post", "/v1/orders/{id}/refunds", &refund);
    let other = app
        .call(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Cup", "total_amount": "1.00"})),
        )
        .await;
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    let closed = app
        .call("POST", &format!("/v1/orders/{other_id}/close"), None)
        .await;
    o("post", "/v1/orders/{id}/close", &closed);

    for (path, template) in [
        (
            format!("/v1/orders/{id}/refunds"),
            "/v1/orders/{id}/refunds",
        ),
        (format!("/v1/orders/{id}/events"), "/v1/orders/{id}/events"),
        (
            format!("/v1/orders/{id}/notifications"),
            "/v1/orders/{id}/notifications",
        ),
        ("/v1/orders?limit=5".to_owned(), "/v1/orders"),
        ("/v1/events".to_owned(), "/v1/events"),
        ("/v1/activity".to_owned(), "/v1/activity"),
        ("/healthz".to_owned(), "/healthz"),
        ("/checkout/catalog".to_owned(), "/checkout/catalog"),
    ] {
        let a = app.call("GET", &path, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        if template == "/v1/events" || template.ends_with("/events") {
            assert!(!a.body["data"].as_array().unwrap().is_empty(), "{path}");
        }
        o("get", template, &a);
    }
    let report = app
        .call("POST", "/v1/reconcile", Some(json!({"max_seconds": 5})))
        .await;
    o("post", "/v1/reconcile", &report);

    // A subscription: created, signed on the sandbox's page, charged once.
    let sub = app
        .call(
            "POST",
            "/v1/subscriptions",
            Some(json!({"subject": "Pro", "amount": "30.00",
                        "period": {"unit": "month", "every": 1}, "metadata": {"k": "v"}})),
        )
        .await;
    assert_eq!(sub.status, 201, "{}", sub.body);
    o("post", "/v1/subscriptions", &sub);
    let sub_id = sub.body["id"].as_str().unwrap().to_owned();
    let opened = app
        .http
        .get(sub.body["sign"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let page = format!(
        "{}{}",
        app.base,
        opened.headers()["location"].to_str().unwrap()
    );
    let agreed = app.http.post(format!("{page}/agree")).send().await.unwrap();
    assert_eq!(agreed.status(), 200);
    app.sandbox.advance(Duration::ZERO).await.unwrap();
    let charged = app
        .call("POST", "/v1/reconcile", Some(json!({"min_age_seconds": 0})))
        .await;
    assert_eq!(
        charged.body["subscription_periods_charged"], 1,
        "{}",
        charged.body
    );
    let got = app
        .call(
            "GET",
            &format!("/v1/subscriptions/{sub_id}?refresh=true"),
            None,
        )
        .await;
    assert_eq!(got.body["status"], "active", "{}", got.body);
    assert_eq!(got.body["charges"][0]["status"], "paid", "{}", got.body);
    o("get", "/v1/subscriptions/{id}", &got);
    let list = app.call("GET", "/v1/subscriptions?limit=5", None).await;
    o("get", "/v1/subscriptions", &list);
    let canceled = app
        .call("POST", &format!("/v1/subscriptions/{sub_id}/cancel"), None)
        .await;
    assert_eq!(canceled.body["status"], "canceled", "{}", canceled.body);
    o("post", "/v1/subscriptions/{id}/cancel", &canceled);
    let events = app.call("GET", "/v1/events?limit=100", None).await;
    let types: Vec<&str> = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for t in [
        "subscription.canceled",
        "subscription.charged",
        "subscription.active",
        "order.paid",
    ] {
        assert!(types.contains(&t), "{t} missing in {types:?}");
    }
    o("get", "/v1/events", &events);
    let none = app.call("GET", "/v1/subscriptions/sub_none", None).await;
    assert_eq!(none.status, 404);
    o("get", "/v1/subscriptions/{id}", &none);

    // Errors carry the documented error body.
    let missing = app.call("GET", "/v1/orders/ord_none", None).await;
    assert_eq!(missing.status, 404);
    o("get", "/v1/orders/{id}", &missing);
    let bad = app
        .call(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "x", "total_amount": 9.9})),
        )
        .await;
    assert_eq!(bad.status, 400);
    o("post", "/v1/orders", &bad);

    // The checkout API.
    let sku = {
        let c = app.call("GET", "/checkout/catalog", None).await;
        c.body["products"][0]["sku"].as_str().unwrap().to_owned()
    };
    let checkout = app
        .call(
            "POST",
            "/checkout",
            Some(json!({"sku": sku, "quantity": 1, "channel": "qr"})),
        )
        .await;
    assert_eq!(checkout.status, 201, "{}", checkout.body);
    o("post", "/checkout", &checkout);
    let cid = checkout.body["checkout_id"].as_str().unwrap();
    let status = app.call("GET", &format!("/checkout/{cid}"), None).await;
    o("get", "/checkout/{id}", &status);
    let unknown = app
        .call(
            "POST",
            "/checkout",
            Some(json!({"sku": sku, "quantity": 1, "channel": "qr", "price": "0.01"})),
        )
        .await;
    assert_eq!(unknown.status, 400);
    o("post", "/checkout", &unknown);
}

fn walk<'a>(v: &'a Value, out: &mut Vec<(&'a str, &'a Value)>, key: &'a str) {
    out.push((key, v));
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| walk(x, out, k)),
        Value::Array(a) => a.iter().for_each(|x| walk(x, out, key)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_3_1() {
    let app = spawn().await;
    let doc = app.document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    // It reads back with utoipa's own model, unchanged.
    let typed: utoipa::openapi::OpenApi = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), doc);
    assert!(!doc["servers"].as_array().unwrap().is_empty());
    for scheme in ["apiKey", "metricsToken"] {
        assert_eq!(
            doc["components"]["securitySchemes"][scheme]["scheme"],
            "bearer"
        );
    }

    let mut nodes = Vec::new();
    walk(&doc, &mut nodes, "");
    for (key, v) in &nodes {
        if *key == "$ref" {
            let r = v.as_str().unwrap();
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "unresolved {r}"
            );
        }
        if *key == "type" {
            assert_ne!(*v, &json!("number"), "a JSON number in the document");
        }
    }
    let money = &doc["components"]["schemas"]["Money"];
    assert_eq!(money["type"], "string");
    assert!(money["pattern"].is_string());

    let mut ids = BTreeSet::new();
    for section in ["paths", "webhooks"] {
        for (path, item) in doc[section].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let id = op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{m} {path} has no operationId"));
                assert!(ids.insert(id.to_owned()), "operationId {id} twice");
                assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let t = &p["schema"]["type"];
                    assert!(
                        t != "null" && !t.as_array().is_some_and(|a| a.contains(&json!("null"))),
                        "{m} {path}: parameter {} may be null",
                        p["name"]
                    );
                }
                // Merchant operations carry the key scheme and its 401.
                if path.starts_with("/v1/") {
                    assert_eq!(op["security"], json!([{"apiKey": []}]), "{m} {path}");
                    assert!(op["responses"]["401"].is_object(), "{m} {path}");
                }
            }
        }
    }
    for event in [
        "order.paid",
        "order.partially_refunded",
        "order.refunded",
        "order.closed",
        "order.paid_after_close",
    ] {
        let hook = &doc["webhooks"][event]["post"];
        let headers: Vec<&str> = hook["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for h in [
            "Zhifu-Signature",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        ] {
            assert!(headers.contains(&h), "{event} lacks {h}");
        }
    }
}

/// The `ErrorCode` schema is the server's list of codes, in order.
#[test]
fn every_error_code_is_in_the_document() {
    let doc = serde_json::to_value(zhifu_server::http::openapi_document()).unwrap();
    let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("the ErrorCode schema lists its codes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let all: Vec<&str> = zhifu_server::http::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(listed, all);
}
