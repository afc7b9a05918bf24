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
    let backend = zhifu_server::router(AppState::new(settings, store));
    // What `zhifu dev` does.
    let config = CheckoutConfig::development(&base, |_| None).unwrap();
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
