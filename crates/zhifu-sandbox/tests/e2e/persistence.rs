//! `--state DIR`: everything survives a restart.

use alipay::{TradeQuery, TradeStatus};
use zhifu_sandbox::{Sandbox, SandboxConfig, SandboxMode};

use crate::helpers::*;

#[tokio::test]
async fn state_and_key_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || SandboxConfig {
        state_dir: Some(dir.path().to_owned()),
        mode: SandboxMode::Explicit,
        ..Default::default()
    };
    let app = spawn_with(cfg()).await;
    let rx = Receiver::start(&[], "fail").await;
    app.client
        .execute(
            &create_req(no("KEEP1"), amt("3.21"), "persist"),
            &opts(&rx.url),
        )
        .await
        .unwrap();
    app.sandbox.pay(None, "KEEP1").await.unwrap();
    app.sandbox
        .advance(std::time::Duration::ZERO)
        .await
        .unwrap();
    let key_before = app.sandbox.alipay_public_key().to_base64();
    let now_before = app.sandbox.now();
    app.sandbox.shutdown().await;

    // What `zhifu sandbox trigger --state DIR` signs with.
    let stored = Sandbox::stored_alipay_key(dir.path())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.public_key().to_base64(), key_before);
    let empty = tempfile::tempdir().unwrap();
    assert!(
        Sandbox::stored_alipay_key(empty.path())
            .await
            .unwrap()
            .is_none()
    );

    let again = Sandbox::start(cfg()).await.unwrap();
    assert_eq!(
        again.alipay_public_key().to_base64(),
        key_before,
        "the Alipay key is kept"
    );
    assert_eq!(again.now(), now_before, "the explicit clock is kept");
    let trades = again.trades().await;
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].trade_status, "TRADE_SUCCESS");
    let n = again.notifications().await;
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].attempts.len(), 1);
    assert!(
        n[0].next_attempt_at.is_some(),
        "the retry is still scheduled"
    );
    // The app and its key are still registered: the same client works.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    let router = again.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let alipay = alipay::Alipay::builder(app.app_id.clone(), app_key(), again.alipay_public_key())
        .gateway(gateway)
        .build();
    let q = alipay::AlipayClient::new(alipay)
        .execute(&TradeQuery::by_out_trade_no("KEEP1"), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(q.total_amount, amt("3.21"));
    let r = again
        .advance(std::time::Duration::from_secs(240))
        .await
        .unwrap();
    assert_eq!(r.attempts, 1, "the retry resumes after the restart");
    again.shutdown().await;
}
