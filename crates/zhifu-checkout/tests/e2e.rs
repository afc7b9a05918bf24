//! End to end, without a browser: the checkout in front of the real payment
//! backend (fresh SQLite) and the real sandbox, all on one 127.0.0.1:0 port
//! as `zhifu dev` serves them. The browser journeys (tests-browser/) walk
//! the same paths through the pages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zhifu_checkout::{CheckoutConfig, DEV_BUYER_ID as DEV_BUYER};
use zhifu_sandbox::Sandbox;
use zhifu_sandbox::testing as kit;
use zhifu_server::{ApiKey, AppState, Settings};
use zhifu_store::testing::{TestDatabase, fresh_database};
use zhifu_store::{Backend, SqlStore, Store, StoreOptions};

const API_KEY: &str = "zk_checkout_e2e_0123456789";

struct App {
    base: String,
    http: reqwest::Client,
    sandbox: Sandbox,
    _db: TestDatabase,
}

async fn spawn() -> App {
    spawn_with(|_| {}).await
}

/// [`spawn`] with the checkout's configuration adjusted.
async fn spawn_with(tweak: impl FnOnce(&mut CheckoutConfig)) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db = fresh_database(Backend::Sqlite).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let sb = kit::mount_at(&base, kit::auto_config()).await;
    let settings = Settings {
        app_id: sb.app_id.clone(),
        app_private_key: sb.app_key(),
        alipay_public_key: sb.alipay_public_key.clone(),
        seller_id: Some(sb.seller_id.clone()),
        gateway: sb.gateway.clone(),
        public_url: base.clone(),
        api_key: ApiKey::new(API_KEY).unwrap(),
        default_expiry_minutes: 30,
        money: Default::default(),
    };
    // What `zhifu dev` does: authorization on the sandbox's page.
    let state = AppState::new(settings, store)
        .with_oauth_authorize_url(format!("{base}/sandbox/oauth2/publicAppAuthorize.htm"));
    let backend = zhifu_server::router(state);
    let mut config = CheckoutConfig::development(&base, |_| None).unwrap();
    tweak(&mut config);
    let app_router = zhifu_checkout::router_over_backend(config, backend.clone(), API_KEY)
        .unwrap()
        .merge(sb.router())
        .merge(backend);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app_router.into_make_service_with_connect_info::<SocketAddr>(),
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

impl App {
    async fn checkout(&self, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/checkout", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    async fn status(&self, id: &str, refresh: bool) -> Value {
        let q = if refresh { "?refresh=true" } else { "" };
        let r = self
            .http
            .get(format!("{}/checkout/{id}{q}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Polls (without refresh: only the notification can flip it) until
    /// paid, for at most ~5 s.
    async fn until_paid(&self, id: &str) -> Value {
        for _ in 0..100 {
            let s = self.status(id, false).await;
            if s["paid"] == true {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("checkout {id} never became paid");
    }

    async fn merchant_order(&self, out_trade_no: &str) -> Value {
        let list: Value = self
            .http
            .get(format!("{}/v1/orders?limit=100", self.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["out_trade_no"] == out_trade_no)
            .cloned()
            .expect("the checkout's order is in the merchant API")
    }

    async fn follow(&self, resp: reqwest::Response) -> String {
        let loc = resp.headers()["location"].to_str().unwrap().to_owned();
        if loc.starts_with('/') {
            format!("{}{loc}", self.base)
        } else {
            loc
        }
    }
}

/// The cashier token in the sandbox's cashier URL.
fn cashier_token(url: &str) -> String {
    url.rsplit("/sandbox/cashier/").next().unwrap().to_owned()
}

#[tokio::test]
async fn page_pay_through_the_cashier_to_the_result_page() {
    let app = spawn().await;
    let c = app
        .checkout(json!({"sku": "mug", "quantity": 2, "channel": "page"}))
        .await;
    assert_eq!(c["total_amount"], "177.76");
    let id = c["checkout_id"].as_str().unwrap();

    // The buyer's browser: gateway → cashier, which shows our subject and amount.
    let r = app
        .http
        .get(c["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let cashier = app.follow(r).await;
    let html = app
        .http
        .get(&cashier)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("支付马克杯 × 2"), "{html}");
    assert!(html.contains("177.76"));

    // Pay → redirected to our result page with the checkout id.
    let r = app
        .http
        .post(format!(
            "{}/sandbox/cashier/{}/pay",
            app.base,
            cashier_token(&cashier)
        ))
        .send()
        .await
        .unwrap();
    let back = app.follow(r).await;
    assert!(
        back.starts_with(&format!(
            "{}/checkout/result?zhifu_checkout={id}&",
            app.base
        )),
        "{back}"
    );
    let page = app.http.get(&back).send().await.unwrap();
    assert_eq!(page.status(), 200);

    let s = app.until_paid(id).await;
    assert_eq!(s["status"], "paid");
    assert_eq!(
        app.merchant_order(c["out_trade_no"].as_str().unwrap())
            .await["status"],
        "paid"
    );
}

#[tokio::test]
async fn wap_cancel_returns_to_the_result_page_unpaid() {
    let app = spawn().await;
    let c = app
        .checkout(json!({"sku": "tea", "quantity": 1, "channel": "wap"}))
        .await;
    let id = c["checkout_id"].as_str().unwrap();
    let r = app
        .http
        .get(c["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let cashier = app.follow(r).await;
    let r = app
        .http
        .post(format!(
            "{}/sandbox/cashier/{}/cancel",
            app.base,
            cashier_token(&cashier)
        ))
        .send()
        .await
        .unwrap();
    let back = app.follow(r).await;
    assert!(back.contains(&format!("zhifu_checkout={id}")), "{back}");
    let s = app.status(id, true).await;
    assert_eq!(
        (s["status"].as_str(), s["paid"].as_bool()),
        (Some("pending"), Some(false))
    );
    assert_eq!(
        app.merchant_order(c["out_trade_no"].as_str().unwrap())
            .await["status"],
        "pending"
    );
}

#[tokio::test]
async fn qr_paid_by_the_sandbox_flips_the_status() {
    let app = spawn().await;
    let c = app
        .checkout(json!({"sku": "sticker", "quantity": 5, "channel": "qr"}))
        .await;
    assert!(c["qr_svg"].as_str().unwrap().starts_with("<svg"));
    assert!(c["qr_code"].as_str().unwrap().starts_with(&app.base));
    let id = c["checkout_id"].as_str().unwrap();
    assert_eq!(app.status(id, false).await["status"], "pending");
    app.sandbox
        .pay(None, c["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    let s = app.until_paid(id).await;
    assert_eq!(s["total_amount"], "0.05");
}

#[tokio::test]
async fn forged_return_parameters_change_nothing() {
    let app = spawn().await;
    let c = app
        .checkout(json!({"sku": "mug", "quantity": 1, "channel": "page"}))
        .await;
    let id = c["checkout_id"].as_str().unwrap();
    let out = c["out_trade_no"].as_str().unwrap();
    let forged = format!(
        "{}/checkout/result?zhifu_checkout={id}&out_trade_no={out}&trade_no=2024010122001499999999999999\
         &total_amount=88.88&trade_status=TRADE_SUCCESS&sign_type=RSA2&sign=Zm9yZ2Vk",
        app.base
    );
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 200);
    // The backend's own return page, same parameters: not trusted either.
    let backend_return = forged.replace("/checkout/result", "/alipay/return");
    app.http.get(&backend_return).send().await.unwrap();
    let s = app.status(id, true).await;
    assert_eq!(
        (s["status"].as_str(), s["paid"].as_bool()),
        (Some("pending"), Some(false))
    );
    assert_eq!(app.merchant_order(out).await["status"], "pending");
}

#[tokio::test]
async fn jsapi_trade_paid_in_the_app_is_seen() {
    let app = spawn().await;
    let c = app
        .checkout(json!({"sku": "tea", "quantity": 2, "channel": "jsapi"}))
        .await;
    let trade_no = c["trade_no"].as_str().unwrap();
    // What the stand-in bridge does on tradePay: find the trade, pay it.
    let trades: Value = app
        .http
        .get(format!("{}/sandbox/api/trades", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trade = trades
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["trade_no"] == trade_no)
        .expect("alipay.trade.create made the trade");
    assert_eq!(trade["buyer_id"], DEV_BUYER);
    assert_eq!(trade["total_amount"], "73.00");
    let r = app
        .http
        .post(format!("{}/sandbox/api/trades/pay", app.base))
        .json(&json!({"out_trade_no": trade["out_trade_no"], "app_id": trade["app_id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.until_paid(c["checkout_id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn unknown_ids_are_404_and_every_page_is_served() {
    let app = spawn().await;
    let r = app
        .http
        .get(format!(
            "{}/checkout/co_bm9wZQ.AAAAAAAAAAAAAAAAAAAAAA",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Every page and script the browser needs comes from this server.
    for path in [
        "/",
        "/admin",
        "/checkout/result",
        "/zhifu.js",
        "/zhifu.d.ts",
        "/sandbox/jsbridge.js",
    ] {
        let r = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // The merchant API still needs its key.
    let r = app
        .http
        .get(format!("{}/v1/orders", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// A subscription product, end to end: `POST /checkout/subscriptions` →
/// the sandbox gateway → its signing page → Agree → back on our result
/// page; the signed `dut_user_sign` notification makes it active at the
/// backend, and the buyer's status endpoint says so.
#[tokio::test]
async fn subscribe_sign_on_the_sandbox_and_become_active() {
    let app = spawn().await;
    let r = app
        .http
        .post(format!("{}/checkout/subscriptions", app.base))
        .json(&json!({"sku": "pro-monthly", "channel": "page"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["status"], "pending_signature");
    assert_eq!(c["amount"], "30.00");
    let id = c["checkout_id"].as_str().unwrap();

    // The buyer's browser: gateway → the signing page, which shows the plan.
    let r = app
        .http
        .get(c["sign"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let sign = app.follow(r).await;
    assert!(sign.contains("/sandbox/sign/"), "{sign}");
    let html = app
        .http
        .get(&sign)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("30.00"), "{html}");
    let r = app.http.post(format!("{sign}/agree")).send().await.unwrap();
    let back = app.follow(r).await;
    assert_eq!(
        back,
        format!("{}/checkout/result?zhifu_subscription=returned", app.base)
    );

    // Without refresh: only the verified notification can make it active.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = app
            .http
            .get(format!("{}/checkout/subscriptions/{id}", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["status"] == "active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "active", "{status}");
    assert_eq!(status["active"], true);
    assert!(status.get("agreement_no").is_none());

    // The merchant sees it with the catalog's plan.
    let list: Value = app
        .http
        .get(format!("{}/v1/subscriptions?limit=10", app.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = &list["data"][0];
    assert_eq!(
        (
            s["status"].as_str(),
            s["amount"].as_str(),
            s["max_periods"].as_u64()
        ),
        (Some("active"), Some("30.00"), Some(12))
    );
    assert_eq!(s["period"], json!({"unit": "month", "every": 1}));
    assert_eq!(s["metadata"]["sku"], "pro-monthly");

    // The merchant cancels; the buyer's status follows the backend.
    let r = app
        .http
        .post(format!(
            "{}/v1/subscriptions/{}/cancel",
            app.base,
            s["id"].as_str().unwrap()
        ))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let status: Value = app
        .http
        .get(format!("{}/checkout/subscriptions/{id}", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (status["status"].as_str(), status["active"].as_bool()),
        (Some("canceled"), Some(false))
    );
    assert!(status["canceled_at"].is_i64(), "{status}");
}

/// Inside the Alipay app without a development buyer: the storefront
/// authorizes (checkout → sandbox authorize page → callback), and the jsapi
/// trade is created for the authorized buyer and paid.
#[tokio::test]
async fn jsapi_buyer_comes_from_authorization_only() {
    let app = spawn_with(|c| c.dev_buyer_id = None).await;
    let body = json!({"sku": "tea", "quantity": 1, "channel": "jsapi"});
    let post = |body: &Value, cookie: Option<&str>| {
        let mut r = app.http.post(format!("{}/checkout", app.base)).json(body);
        if let Some(c) = cookie {
            r = r.header("cookie", c);
        }
        r.send()
    };
    let r = post(&body, None).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "authorization_required");

    // The buyer's browser: our redirect → the authorize page → back.
    let r = app
        .http
        .get(format!(
            "{}/checkout/authorize?return=%2F%3Fbuy%3Dtea",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to_alipay = app.follow(r).await;
    assert!(
        to_alipay.starts_with(&format!(
            "{}/sandbox/oauth2/publicAppAuthorize.htm?",
            app.base
        )),
        "{to_alipay}"
    );
    let r = app.http.get(&to_alipay).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let callback = app.follow(r).await;
    assert!(
        callback.starts_with(&format!("{}/checkout/authorize/callback?", app.base)),
        "{callback}"
    );
    let r = app.http.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/?buy=tea");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // The same link again: the code is spent, nothing is set.
    let again = app.http.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.headers().get("set-cookie").is_none());

    // A buyer named by the page is refused, cookie or not.
    let mut forged = body.clone();
    forged["buyer_id"] = json!("2088000000000009");
    for c in [None, Some(cookie.as_str())] {
        let r = post(&forged, c).await.unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "buyer_not_accepted");
    }

    let r = post(&body, Some(&cookie)).await.unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    let requests: Value = app
        .http
        .get(format!(
            "{}/sandbox/api/requests?method=alipay.trade.create",
            app.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let create = requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["out_trade_no"] == c["out_trade_no"])
        .expect("alipay.trade.create was called");
    let open_id = create["biz_content"]["buyer_open_id"].as_str().unwrap();
    assert!(!open_id.is_empty());
    assert!(create["biz_content"].get("buyer_id").is_none(), "{create}");
    let r = app
        .http
        .post(format!("{}/sandbox/api/trades/pay", app.base))
        .json(&json!({"out_trade_no": c["out_trade_no"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.until_paid(c["checkout_id"].as_str().unwrap()).await;
}
