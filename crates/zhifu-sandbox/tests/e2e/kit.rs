//! The test kit itself: a sandbox mounted in someone else's router, more
//! apps, and the shared "Alipay" signer.

use alipay::{TradePrecreate, TradeQuery, TradeStatus};
use axum::Router;
use axum::routing::get;

use crate::helpers::*;

#[tokio::test]
async fn a_mounted_sandbox_answers_on_the_hosts_port() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let t = mount_at(&base, explicit_config()).await;
    assert_eq!(t.sandbox.config().public_url, base);
    assert_eq!(t.gateway, format!("{base}/gateway.do"));
    let host = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(t.router());
    tokio::spawn(async move { axum::serve(listener, host).await });

    let health = t.http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let out = unique("MOUNT");
    let pre = t
        .client
        .execute(
            &TradePrecreate::new(no(&out), amt("1.00"), "mounted"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(pre.qr_code.starts_with(&format!("{base}/sandbox/scan/")));
    t.sandbox.pay(None, &out).await.unwrap();
    let q = t
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess);
}

#[tokio::test]
async fn more_apps_with_their_own_keys() {
    let t = spawn_explicit().await;
    let key = alipay::AppPrivateKey::generate().unwrap();
    let public = key.public_key();
    let other = t.register(Some(key)).await;
    assert_ne!(other.app_id, t.app_id);
    assert_eq!(other.app_key().public_key(), public);
    assert_eq!(t.app_key().public_key(), app_key().public_key());
    assert_eq!(other.alipay_public_key, t.sandbox.alipay_public_key());
    let out = unique("OTHER");
    other
        .client
        .execute(
            &create_req(no(&out), amt("2.00"), "second app"),
            &Default::default(),
        )
        .await
        .unwrap();
    // The first app does not see the second app's trade.
    let e = gw(t
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));
}

#[tokio::test]
async fn the_shared_signer_signs_as_kit_sandboxes_do() {
    let t = spawn_explicit().await;
    assert_eq!(alipay_signer().public_key(), t.sandbox.alipay_public_key());
    let body = alipay_signer()
        .notification_body(&[
            ("notify_id", "n1"),
            ("app_id", &t.app_id),
            ("out_trade_no", "HAND_SIGNED"),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", "1.00"),
        ])
        .unwrap();
    let v = t.verifier().verify_body(body.as_bytes()).unwrap();
    assert_eq!(v.get().get("out_trade_no"), Some("HAND_SIGNED"));
    let tampered = body.replace("1.00", "9.00");
    assert!(t.verifier().verify_body(tampered.as_bytes()).is_err());
}
