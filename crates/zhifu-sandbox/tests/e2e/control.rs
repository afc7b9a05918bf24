//! The JSON control API under `/sandbox/api`.

use alipay::TradePrecreate;
use serde_json::{Value, json};

use crate::helpers::*;

async fn post(app: &TestSandbox, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}{path}", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get(app: &TestSandbox, path: &str) -> Value {
    app.http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn register_pay_list_and_errors() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let out = unique("CTL");
    app.client
        .execute(
            &TradePrecreate::new(no(&out), amt("5.55"), "ctl"),
            &opts(&rx.url),
        )
        .await
        .unwrap();
    // One app registered: app_id may be left out.
    let (s, v) = post(
        &app,
        "/sandbox/api/trades/pay",
        json!({"out_trade_no": out}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["trade_status"], "TRADE_SUCCESS");
    assert_eq!(v["total_amount"], "5.55");
    rx.next().await;

    let trades = get(&app, "/sandbox/api/trades").await;
    assert_eq!(trades[0]["out_trade_no"], out.as_str());
    let notes = get(
        &app,
        &format!("/sandbox/api/notifications?out_trade_no={out}"),
    )
    .await;
    let n = &notes[0];
    assert!(n["id"].as_u64().is_some());
    assert_eq!(n["notify_url"], rx.url.as_str());
    assert!(
        n["body"]
            .as_str()
            .unwrap()
            .contains("trade_status=TRADE_SUCCESS")
    );
    assert_eq!(n["attempts"][0]["http_status"], 200);
    assert_eq!(n["attempts"][0]["response_body"], "success");
    assert!(n["attempts"][0]["time"].as_str().is_some());
    let (s, v) = post(
        &app,
        &format!("/sandbox/api/notifications/{}/resend", n["id"]),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["attempts"].as_array().unwrap().len(), 2);

    // A second app: now app_id is required, and keys are checked.
    let key = alipay::AppPrivateKey::generate().unwrap();
    let (s, v) = post(
        &app,
        "/sandbox/api/apps",
        json!({"app_id": "2021000122671080", "app_public_key": key.public_key().to_pem()}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["app_id"], "2021000122671080");
    assert!(v["seller_id"].as_str().unwrap().starts_with("2088"));
    assert_eq!(
        v["alipay_public_key"],
        app.sandbox.alipay_public_key().to_base64()
    );
    let (s, v) = post(
        &app,
        "/sandbox/api/trades/pay",
        json!({"out_trade_no": out}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("app_id_required"))
    );
    let (s, v) = post(
        &app,
        "/sandbox/api/trades/pay",
        json!({"out_trade_no": "NOPE", "app_id": app.app_id}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("trade_not_found"))
    );
    let (s, v) = post(
        &app,
        "/sandbox/api/trades/pay",
        json!({"out_trade_no": out, "app_id": app.app_id}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("invalid_trade_state"))
    );
    let (s, v) = post(
        &app,
        "/sandbox/api/apps",
        json!({"app_public_key": "not a key"}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = post(&app, "/sandbox/api/apps", json!({"nope": 1})).await;
    assert_eq!(s, 400);

    let (s, v) = post(&app, "/sandbox/api/faults", json!({"drop_rate": 2.0})).await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = post(
        &app,
        "/sandbox/api/faults",
        json!({"drop_rate": 0.5, "delay_rate": 0.1, "delay_ms": 5}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(get(&app, "/sandbox/api/faults").await["drop_rate"], 0.5);
    let info = get(&app, "/sandbox/api/info").await;
    assert_eq!(info["gateway_url"], app.gateway.as_str());
    let (s, v) = post(&app, "/sandbox/api/clock/advance", json!({"seconds": 60})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &app,
        "/sandbox/api/trigger",
        json!({"kind": "paid", "url": rx.url, "app_id": app.app_id}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["attempts"][0]["success"], true);
}
