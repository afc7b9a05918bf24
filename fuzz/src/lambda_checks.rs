//! Properties of the Lambda event decoding: `lambda_http`'s conversion of
//! an API Gateway / Function URL / ALB event into a request, then
//! `zhifu_lambda::strip_stage`, exactly as the function runs them.
//!
//! Shared by the fuzz target (`fuzz/fuzz_targets/lambda_event.rs`) and by
//! `crates/zhifu-lambda/tests/fuzz_regressions.rs`; it uses only
//! `zhifu-lambda`, `lambda_http`, `serde_json` and `base64`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lambda_http::Body;
use serde_json::Value;

/// `lambda_http::request::from_str`, with a panic inside it (it has
/// `expect`s on URIs it builds from the event) reported as `None`: in the
/// function the runtime's panic layer turns such a panic into an
/// invocation error for that one event, which is also what a refusal is.
fn decode(s: &str) -> Option<lambda_http::Request> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(|| lambda_http::request::from_str(s));
    std::panic::set_hook(hook);
    r.ok()?.ok()
}

fn body_bytes(b: &Body) -> &[u8] {
    match b {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(v) => v,
        _ => &[],
    }
}

/// `lambda_event`: the body the router gets is the event's body (base64
/// decoded when the event says so); removing the stage only ever removes
/// a leading `/{stage}` of the API Gateway stage (`/{stage}` alone becomes
/// `/`) and keeps the query, method, headers and body.
pub fn lambda_event(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = serde_json::from_str::<Value>(s).map(|v| zhifu_lambda::is_scheduled_event(&v));
    let Some(req) = decode(s) else {
        return;
    };
    // `serde_json::Value` refuses numbers out of f64's range that the
    // event's typed fields skip; such an event has no body to compare.
    let event = serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    if let Some(text) = event.get("body").and_then(Value::as_str) {
        let b64 = event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true);
        let expected = match (b64, B64.decode(text)) {
            (true, Ok(bytes)) => bytes,
            _ => text.as_bytes().to_vec(),
        };
        assert_eq!(
            body_bytes(req.body()),
            expected.as_slice(),
            "the body is not the event's"
        );
    }
    let stage = {
        use lambda_http::RequestExt as _;
        use lambda_http::request::RequestContext;
        match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
            Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
            _ => None,
        }
    };
    let before_path = req.uri().path().to_owned();
    let before_query = req.uri().query().map(str::to_owned);
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = body_bytes(req.body()).to_vec();
    let out = zhifu_lambda::strip_stage(req);
    let after = out.uri().path();
    if after != before_path {
        // `/{stage}/rest` → `/rest`, and `/{stage}` → `/`.
        let rest = if after == "/" && !before_path.ends_with('/') {
            ""
        } else {
            after
        };
        assert!(
            after.starts_with('/') && before_path.ends_with(rest),
            "{before_path:?} became {after:?}"
        );
        let removed = &before_path[..before_path.len() - rest.len()];
        let stage = stage.filter(|s| !s.is_empty() && s != "$default");
        assert_eq!(
            Some(removed),
            stage.map(|s| format!("/{s}")).as_deref(),
            "{before_path:?} lost {removed:?}"
        );
    }
    assert_eq!(out.uri().query(), before_query.as_deref());
    assert_eq!(out.method(), method);
    assert_eq!(out.headers(), &headers);
    assert_eq!(body_bytes(out.body()), body.as_slice());
}
