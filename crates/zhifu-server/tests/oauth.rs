//! User authorization for in-app payments, against the real sandbox on the
//! server's own port: `GET /v1/oauth/authorize-url` → the sandbox's
//! authorize page → back with `auth_code` → `POST /v1/oauth/token` → the
//! buyer's id → a jsapi payment made with it.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use zhifu_store::testing::TestDatabase;

zhifu_store::backend_tests!(
    authorize_page_code_pays_a_jsapi_order,
    bridge_code_is_exchanged_once,
    bad_requests_are_refused_with_their_codes,
);

const SANDBOX_AUTHORIZE: &str = "/sandbox/oauth2/publicAppAuthorize.htm";

/// The query pairs of a URL.
fn query(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(url: &str, k: &str) -> Option<String> {
    query(url).into_iter().find(|(n, _)| n == k).map(|(_, v)| v)
}

async fn exchange(app: &TestApp, code: &str) -> Resp {
    app.api(
        "POST",
        "/v1/oauth/token",
        Some(json!({ "auth_code": code })),
    )
    .await
}

/// The buyer's browser follows the authorize URL on the sandbox (the
/// server's configured page is production's, so only its query is kept)
/// and lands back on `redirect_uri` with a code.
async fn authorize_in_browser(app: &TestApp, authorize_url: &str) -> String {
    let q = reqwest::Url::parse(authorize_url).unwrap();
    let on_sandbox = format!("{}{SANDBOX_AUTHORIZE}?{}", app.base, q.query().unwrap());
    let r = app.http.get(&on_sandbox).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "{}: {}",
        r.status(),
        r.text().await.unwrap()
    );
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn authorize_page_code_pays_a_jsapi_order(db: TestDatabase) {
    let app = app(db).await;
    let r = app
        .api(
            "GET",
            "/v1/oauth/authorize-url?redirect_uri=https%3A%2F%2Fshop.example%2Fcb%3Fx%3D1&state=st-42",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let url = s(&r.body, "url").to_owned();
    assert!(
        url.starts_with(&format!("{}?", alipay::oauth::OAUTH_AUTHORIZE_URL)),
        "production page by default: {url}"
    );
    assert_eq!(param(&url, "app_id").as_deref(), Some(app.app_id.as_str()));
    assert_eq!(param(&url, "scope").as_deref(), Some("auth_base"));
    assert_eq!(
        param(&url, "redirect_uri").as_deref(),
        Some("https://shop.example/cb?x=1")
    );
    assert_eq!(param(&url, "state").as_deref(), Some("st-42"));

    let back = authorize_in_browser(&app, &url).await;
    assert!(back.starts_with("https://shop.example/cb?x=1&"), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("st-42"));
    let code = param(&back, "auth_code").expect("auth_code on the redirect");

    let t = exchange(&app, &code).await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    let obj = t.body.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["open_id", "user_id"],
        "never the tokens: {:?}",
        t.body
    );
    // The sandbox answers both ids; the open id wins, as for new apps.
    let open_id = s(&t.body, "open_id").to_owned();
    assert_eq!(t.body["user_id"], Value::Null);
    let calls = app.gateway_calls(Some("alipay.system.oauth.token"), None);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].code, "10000");

    // The id pays: the trade is created for that buyer, then paid.
    let order = app.create_order("12.30").await;
    let id = s(&order, "id");
    let pay = app
        .pay(id, json!({"channel": "jsapi", "buyer_open_id": open_id}))
        .await;
    assert_eq!(pay.status, 200, "{:?}", pay.body);
    assert!(pay.body["trade_no"].is_string());
    let create = app.gateway_calls(Some("alipay.trade.create"), Some(s(&order, "out_trade_no")));
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].biz_content["buyer_open_id"], json!(open_id));
    app.buyer_pays(s(&order, "out_trade_no")).await;
    assert_eq!(app.order(id).await["status"], "paid");
}

async fn bridge_code_is_exchanged_once(db: TestDatabase) {
    let app = app(db).await;
    // What the Alipay app's `getAuthCode` hands a page, from the sandbox's
    // stand-in.
    let r = app
        .http
        .post(app.url("/sandbox/api/oauth/auth-code"))
        .json(&json!({"app_id": app.app_id, "scopes": ["auth_base"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    let code = s(&v, "authCode").to_owned();
    let first = exchange(&app, &code).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert!(first.body["open_id"].is_string());
    // A code works once: the second use is the caller's problem (4xx), and
    // says to authorize again.
    let again = exchange(&app, &code).await;
    assert_eq!(again.status, 400, "{:?}", again.body);
    assert_eq!(again.body["error"]["code"], "auth_code_invalid");
    // So is a code Alipay never issued.
    let made_up = exchange(&app, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(made_up.body["error"]["code"], "auth_code_invalid");
    assert!(
        !made_up.body.to_string().contains("0123456789abcdef"),
        "the code is not echoed: {:?}",
        made_up.body
    );
}

async fn bad_requests_are_refused_with_their_codes(db: TestDatabase) {
    let app = app(db).await;
    for (path, code) in [
        ("/v1/oauth/authorize-url", "invalid_query"),
        (
            "/v1/oauth/authorize-url?redirect_uri=%2Fcb",
            "invalid_field",
        ),
        (
            "/v1/oauth/authorize-url?redirect_uri=https%3A%2F%2Fa.example%2F&scope=auth_all",
            "invalid_field",
        ),
        (
            "/v1/oauth/authorize-url?redirect_uri=https%3A%2F%2Fa.example%2F&app_id=1",
            "invalid_query",
        ),
        (
            "/v1/oauth/authorize-url?redirect_uri=https%3A%2F%2Fa.example%2F&state=a%20b",
            "invalid_field",
        ),
    ] {
        let r = app.api("GET", path, None).await;
        assert_eq!(r.status, 400, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{path}");
    }
    for (body, code) in [
        (json!({}), "invalid_field"),
        (json!({"auth_code": ""}), "invalid_field"),
        (
            json!({"auth_code": "a&grant_type=refresh_token"}),
            "invalid_field",
        ),
        (json!({"auth_code": "a".repeat(129)}), "invalid_field"),
        (json!({"auth_code": 42}), "invalid_field"),
        (
            json!({"auth_code": "abc", "user_id": "2088"}),
            "unknown_field",
        ),
    ] {
        let r = app.api("POST", "/v1/oauth/token", Some(body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], code, "{body}");
    }
    // Nothing malformed reached Alipay.
    assert!(
        app.gateway_calls(Some("alipay.system.oauth.token"), None)
            .is_empty()
    );
    // Behind the API key, like the rest of the merchant API.
    let anon = app
        .http
        .post(app.url("/v1/oauth/token"))
        .json(&json!({"auth_code": "abc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    // Another authorize page (the sandbox's under `zhifu dev`) is taken as
    // configured.
    let page = format!("{}{SANDBOX_AUTHORIZE}", app.base);
    let st = app.state.clone().with_oauth_authorize_url(page.clone());
    let url = zhifu_server::payments::oauth::authorize_url(
        &st,
        "https://a.example/cb",
        None,
        zhifu_server::payments::oauth::Scope::AuthBase,
    )
    .unwrap();
    assert!(url.starts_with(&format!("{page}?app_id=")), "{url}");
    assert_eq!(param(&url, "state"), None);
}
