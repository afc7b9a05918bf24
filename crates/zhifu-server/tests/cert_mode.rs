//! Certificate mode end to end: the backend configured exactly as `zhifu
//! serve` reads it (`ALIPAY_APP_CERT`, `ALIPAY_PUBLIC_CERT`,
//! `ALIPAY_ROOT_CERT`) against the sandbox in certificate mode, on one port
//! as `zhifu dev` runs them: page pay through the cashier, the verified
//! notification, a query, a refund — every gateway call carrying the
//! serial numbers the sandbox checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use zhifu_sandbox::SandboxConfig;
use zhifu_sandbox::certs::AppCertRequest;
use zhifu_sandbox::testing::{self as kit, TestSandbox};
use zhifu_server::AppState;
use zhifu_server::config::{Config, SigningMode, Source};
use zhifu_store::testing::TestDatabase;
use zhifu_store::{SqlStore, Store, StoreOptions};

const API_KEY: &str = "test-api-key-0123456789";

zhifu_store::backend_tests!(
    a_full_journey_in_certificate_mode,
    rotation_mid_journey_needs_no_restart,
);

struct Server {
    base: String,
    config_env: HashMap<String, String>,
    http: reqwest::Client,
    sb: TestSandbox,
    store: Arc<SqlStore>,
    _db: TestDatabase,
}

impl Server {
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(API_KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A page-pay order the buyer paid; its notification not delivered yet.
    async fn paid_page_order(&self, amount: &str) -> (String, String) {
        let (status, order) = self
            .api(
                "POST",
                "/v1/orders",
                Some(json!({"subject": "Mug", "total_amount": amount})),
            )
            .await;
        assert_eq!(status, 201, "{order}");
        let id = order["id"].as_str().unwrap().to_owned();
        let out = order["out_trade_no"].as_str().unwrap().to_owned();
        let (status, pay) = self
            .api(
                "POST",
                &format!("/v1/orders/{id}/pay"),
                Some(json!({"channel": "page"})),
            )
            .await;
        assert_eq!(status, 200, "{pay}");
        let r = self
            .http
            .get(pay["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_redirection(), "{}", r.status());
        self.sb.sandbox.pay(None, &out).await.unwrap();
        (id, out)
    }

    async fn status(&self, id: &str) -> String {
        let (_, o) = self.api("GET", &format!("/v1/orders/{id}"), None).await;
        o["status"].as_str().unwrap().to_owned()
    }

    /// Downloads the sandbox answered for `sn`.
    fn downloads(&self, sn: &str) -> usize {
        self.sb
            .requests(Some("alipay.open.app.alipaycert.download"), None)
            .into_iter()
            .filter(|r| r.biz_content["alipay_cert_sn"] == sn)
            .count()
    }

    /// The gateway calls of `method` and the codes they were answered with.
    fn answers(&self, method: &str) -> Vec<(String, Option<String>)> {
        self.sb
            .requests(Some(method), None)
            .into_iter()
            .map(|r| (r.code, r.sub_code))
            .collect()
    }
}

/// The sandbox in certificate mode, an app certificate issued for the
/// registered app, and the server configured from the three files.
async fn start(db: TestDatabase) -> Server {
    start_with(db, &[]).await
}

async fn start_with(db: TestDatabase, extra: &[(&str, &str)]) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sb = kit::mount_at(
        &base,
        SandboxConfig {
            cert_mode: true,
            ..kit::explicit_config()
        },
    )
    .await;
    let issued = sb
        .sandbox
        .issue_app_cert(Some(&sb.app_id), AppCertRequest::RegisteredKey)
        .await
        .unwrap();
    let files = sb.sandbox.cert_files().unwrap();
    let env: HashMap<String, String> = [
        ("ALIPAY_APP_ID", sb.app_id.clone()),
        (
            "ALIPAY_APP_PRIVATE_KEY",
            sb.app_key().to_pkcs8_pem().unwrap(),
        ),
        ("ALIPAY_APP_CERT", issued.app_cert),
        ("ALIPAY_PUBLIC_CERT", files.alipay_cert),
        ("ALIPAY_ROOT_CERT", files.root_cert),
        ("ALIPAY_SELLER_ID", sb.seller_id.clone()),
        ("ALIPAY_GATEWAY", sb.gateway.clone()),
        ("ZHIFU_PUBLIC_URL", base.clone()),
        ("ZHIFU_API_KEY", API_KEY.to_owned()),
        ("ZHIFU_DATABASE_URL", db.url.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
    .collect();
    let config = Config::from_source(&Source::from_map(env.clone()).unwrap()).unwrap();
    assert!(matches!(config.signing, SigningMode::Certificates(_)));
    let store = Arc::new(
        SqlStore::connect_and_migrate(&db.url, &StoreOptions::default())
            .await
            .unwrap(),
    );
    let store_dyn: Arc<dyn Store> = store.clone();
    let state = AppState::build_signing(
        config.settings,
        config.signing,
        store_dyn,
        Arc::new(alipay::SystemClock),
        None,
    );
    let router = zhifu_server::router(state).merge(sb.router());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Server {
        base,
        config_env: env,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        sb,
        store,
        _db: db,
    }
}

async fn a_full_journey_in_certificate_mode(db: TestDatabase) {
    let s = start(db).await;
    let (status, order) = s
        .api(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Ceramic mug 马克杯", "total_amount": "66.60"})),
        )
        .await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let out = order["out_trade_no"].as_str().unwrap().to_owned();

    // Page pay: the buyer's browser opens the signed URL; the gateway checks
    // the serial numbers and sends it to the cashier.
    let (status, pay) = s
        .api(
            "POST",
            &format!("/v1/orders/{id}/pay"),
            Some(json!({"channel": "page"})),
        )
        .await;
    assert_eq!(status, 200, "{pay}");
    let url = pay["url"].as_str().unwrap();
    assert!(
        url.contains("app_cert_sn=") && url.contains("alipay_root_cert_sn="),
        "{url}"
    );
    let r = s.http.get(url).send().await.unwrap();
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no cashier: {}", r.status()));
    assert!(to.starts_with("/sandbox/cashier/"), "{to}");
    assert_eq!(
        s.answers("alipay.trade.page.pay"),
        [("10000".to_owned(), None)]
    );

    // The buyer pays; the notification (signed with the Alipay
    // certificate's key) is verified and applied.
    s.sb.sandbox.pay(None, &out).await.unwrap();
    s.sb.sandbox.advance(Duration::ZERO).await.unwrap();
    let (_, paid) = s.api("GET", &format!("/v1/orders/{id}"), None).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    let notes = s.store.list_notifications(&id).await.unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n.source == "notify" && n.outcome == "applied"),
        "{notes:?}"
    );

    // A full refund.
    let (status, refund) = s
        .api(
            "POST",
            &format!("/v1/orders/{id}/refunds"),
            Some(json!({"amount": "66.60", "reason": "broken"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["status"], "succeeded");
    s.sb.sandbox.advance(Duration::ZERO).await.unwrap();
    let (_, refunded) = s.api("GET", &format!("/v1/orders/{id}"), None).await;
    assert_eq!(refunded["status"], "refunded", "{refunded}");
    assert_eq!(refunded["refunded_amount"], "66.60");
    assert!(
        s.answers("alipay.trade.refund")
            .iter()
            .all(|(code, _)| code == "10000")
    );
    // A query: a second order paid while its notification is held back;
    // the refresh asks Alipay, whose answer carries alipay_cert_sn and is
    // verified by that certificate.
    let (_, order2) = s
        .api(
            "POST",
            "/v1/orders",
            Some(json!({"subject": "Teapot", "total_amount": "12.00"})),
        )
        .await;
    let id2 = order2["id"].as_str().unwrap().to_owned();
    let (status, pay2) = s
        .api(
            "POST",
            &format!("/v1/orders/{id2}/pay"),
            Some(json!({"channel": "page"})),
        )
        .await;
    assert_eq!(status, 200, "{pay2}");
    s.http
        .get(pay2["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    s.sb.sandbox
        .pay(None, order2["out_trade_no"].as_str().unwrap())
        .await
        .unwrap();
    let (status, refreshed) = s
        .api("GET", &format!("/v1/orders/{id2}?refresh=true"), None)
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["status"], "paid", "{refreshed}");
    let events = s.store.list_events(&id2).await.unwrap();
    assert_eq!(events[0].source, "query");
    let queries = s.answers("alipay.trade.query");
    assert!(!queries.is_empty());
    assert!(
        queries.iter().all(|(code, _)| code == "10000"),
        "{queries:?}"
    );

    // No call anywhere was refused for its certificates.
    let refused: Vec<_> =
        s.sb.requests(None, None)
            .into_iter()
            .filter(|r| r.sub_code.as_deref().is_some_and(|c| c.starts_with("isv.")))
            .map(|r| (r.method, r.sub_code))
            .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

async fn rotation_mid_journey_needs_no_restart(db: TestDatabase) {
    let s = start_with(db, &[("ALIPAY_CERT_DOWNLOAD_INTERVAL_SECS", "0")]).await;
    // Paid and notified under the first certificate.
    let (id1, _) = s.paid_page_order("30.00").await;
    s.sb.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(s.status(&id1).await, "paid");

    // Alipay rotates. The next answer names a certificate the server does
    // not hold: it downloads it, checks it against the root, and goes on.
    let rotated = s.sb.sandbox.rotate_alipay_cert(false).unwrap();
    let (id2, _) = s.paid_page_order("40.00").await;
    let (status, o2) = s
        .api("GET", &format!("/v1/orders/{id2}?refresh=true"), None)
        .await;
    assert_eq!(status, 200, "{o2}");
    assert_eq!(o2["status"], "paid", "{o2}");
    assert_eq!(s.downloads(&rotated.alipay_cert_sn), 1);
    let rec = s
        .store
        .get_alipay_cert(&rotated.alipay_cert_sn)
        .await
        .unwrap()
        .expect("recorded");
    assert!(rec.accepted);
    assert_eq!(rec.pem.as_deref(), Some(rotated.alipay_cert.as_str()));

    // A refund and a notification signed with the new key work too.
    let (status, refund) = s
        .api(
            "POST",
            &format!("/v1/orders/{id1}/refunds"),
            Some(json!({"amount": "30.00"})),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["status"], "succeeded");
    let (id3, _) = s.paid_page_order("50.00").await;
    s.sb.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(s.status(&id3).await, "paid");
    assert_eq!(s.status(&id1).await, "refunded");
    assert_eq!(s.downloads(&rotated.alipay_cert_sn), 1, "downloaded once");

    // Another instance over the same database knows it from the start.
    let config = Config::from_source(&Source::from_map(s.config_env.clone()).unwrap()).unwrap();
    let other = AppState::build_signing(
        config.settings,
        config.signing,
        s.store.clone(),
        Arc::new(alipay::SystemClock),
        None,
    );
    other.load_learnt_certs().await;
    let alipay::AlipayKeys::Certificates(certs) = other.alipay().core().alipay_keys() else {
        panic!("certificate mode");
    };
    assert!(certs.contains(&rotated.alipay_cert_sn));

    // Alipay rotates again and the first message under the new certificate
    // is a notification (which names no certificate): the server asks
    // Alipay about the order, learns the certificate, and accepts it.
    let again = s.sb.sandbox.rotate_alipay_cert(false).unwrap();
    let (id5, _) = s.paid_page_order("70.00").await;
    s.sb.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(s.status(&id5).await, "paid");
    let events = s.store.list_events(&id5).await.unwrap();
    assert_eq!(events[0].source, "notify", "{events:?}");
    assert_eq!(s.downloads(&again.alipay_cert_sn), 1);

    // A certificate that does not chain to the root is refused and
    // recorded, and not downloaded again.
    let bad = s.sb.sandbox.rotate_alipay_cert(true).unwrap();
    let (id4, _) = s.paid_page_order("60.00").await;
    for _ in 0..2 {
        s.api("GET", &format!("/v1/orders/{id4}?refresh=true"), None)
            .await;
    }
    assert_eq!(s.status(&id4).await, "pending");
    let rec = s
        .store
        .get_alipay_cert(&bad.alipay_cert_sn)
        .await
        .unwrap()
        .expect("the refusal is recorded");
    assert!(!rec.accepted);
    assert!(
        rec.reason
            .as_deref()
            .unwrap_or("")
            .contains("does not chain"),
        "{rec:?}"
    );
    assert_eq!(s.downloads(&bad.alipay_cert_sn), 1);
    // Its notification is refused too.
    s.sb.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(s.status(&id4).await, "pending");
}
