//! Shared by the Lambda tests: a sandbox ("Alipay") on 127.0.0.1:0 and the
//! recorded-shape events with method, path, headers and body substituted.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::{Value, json};
use zhifu_sandbox::testing::TestApp;
use zhifu_sandbox::{Faults, Sandbox};

pub const API_KEY: &str = "lambda-test-key-0123456789";

pub use zhifu_sandbox::testing::init_logs;

/// A sandbox in explicit mode, served on its own port, with one app (the
/// shared test kit's).
pub struct Alipay {
    pub sandbox: Sandbox,
    pub app: TestApp,
    pub app_key: alipay::AppPrivateKey,
    pub gateway: String,
}

pub async fn alipay() -> Alipay {
    let t = zhifu_sandbox::testing::spawn_explicit().await;
    Alipay {
        app_key: t.app.app_key(),
        gateway: t.app.gateway.clone(),
        app: t.app,
        sandbox: t.sandbox,
    }
}

impl Alipay {
    pub async fn drop_notifications(&self) {
        self.sandbox
            .set_faults(Faults {
                drop_rate: 1.0,
                ..Default::default()
            })
            .await;
    }

    /// The exact signed body of the latest notification for an order.
    pub async fn notification_body(&self, out_trade_no: &str) -> String {
        self.sandbox
            .notifications()
            .await
            .into_iter()
            .find(|n| n.out_trade_no == out_trade_no)
            .expect("the sandbox made a notification")
            .body
    }
}

/// The recorded event shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    RestV1,
    HttpV2,
    FunctionUrl,
    Alb,
}

impl Shape {
    pub const ALL: [Shape; 4] = [Shape::RestV1, Shape::HttpV2, Shape::FunctionUrl, Shape::Alb];

    fn fixture(self) -> &'static str {
        match self {
            Shape::RestV1 => include_str!("../events/apigw_v1_rest.json"),
            Shape::HttpV2 => include_str!("../events/apigw_v2_http.json"),
            Shape::FunctionUrl => include_str!("../events/function_url.json"),
            Shape::Alb => include_str!("../events/alb.json"),
        }
    }

    /// The fixture with this request in it. `base64` sends the body the way
    /// HTTP APIs and Function URLs send binary and form bodies.
    pub fn event(
        self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        base64: bool,
    ) -> String {
        let mut e: Value = serde_json::from_str(self.fixture()).unwrap();
        let mut h = serde_json::Map::new();
        h.insert("host".into(), json!("api.example.com"));
        h.insert("x-forwarded-proto".into(), json!("https"));
        for (k, v) in headers {
            h.insert((*k).to_owned(), json!(v));
        }
        let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
        match self {
            Shape::RestV1 => {
                e["httpMethod"] = json!(method);
                e["path"] = json!(path_only);
                e["requestContext"]["httpMethod"] = json!(method);
                e["pathParameters"] = json!({"proxy": path_only.trim_start_matches('/')});
                e["queryStringParameters"] = query_map(query);
                e["multiValueQueryStringParameters"] = Value::Null;
            }
            Shape::HttpV2 | Shape::FunctionUrl => {
                e["rawPath"] = json!(path_only);
                e["rawQueryString"] = json!(query);
                e["requestContext"]["http"]["method"] = json!(method);
                e["requestContext"]["http"]["path"] = json!(path_only);
                e["queryStringParameters"] = query_map(query);
                e.as_object_mut().unwrap().remove("cookies");
            }
            Shape::Alb => {
                e["httpMethod"] = json!(method);
                e["path"] = json!(path_only);
                // An ALB sends `{}`, never `null`, when there is no query.
                e["queryStringParameters"] = match query_map(query) {
                    Value::Null => json!({}),
                    m => m,
                };
            }
        }
        e["headers"] = Value::Object(h);
        match body {
            None => {
                e["body"] = Value::Null;
                e["isBase64Encoded"] = json!(false);
            }
            Some(b) if base64 => {
                e["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
                e["isBase64Encoded"] = json!(true);
            }
            Some(b) => {
                e["body"] = json!(std::str::from_utf8(b).unwrap());
                e["isBase64Encoded"] = json!(false);
            }
        }
        e.to_string()
    }
}

fn query_map(q: &str) -> Value {
    if q.is_empty() {
        return Value::Null;
    }
    let m: serde_json::Map<String, Value> = form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), json!(v)))
        .collect();
    Value::Object(m)
}
