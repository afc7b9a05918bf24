//! Notifications: the retry schedule (docs/protocol.md §6.2), faults, resend and trigger.

use std::time::Duration;

use alipay::{TradePrecreate, TradeRef, TradeRefund, TradeStatus};
use zhifu_sandbox::{DeliveryState, Faults, SandboxConfig, TriggerKind, TriggerRequest};

use crate::helpers::*;

#[tokio::test]
async fn fails_three_times_then_success_gives_exactly_four_deliveries_at_scaled_intervals() {
    let app = spawn_auto().await; // time_scale 0.001: 240 ms, 600 ms, 600 ms, …
    let rx = Receiver::start(&["fail", "fail", "fail"], "success").await;
    let out = unique("RETRY");
    app.client
        .execute(&create_req(no(&out), amt("1.00"), "retry"), &opts(&rx.url))
        .await
        .unwrap();
    app.sandbox.pay(None, &out).await.unwrap();
    let hits: Vec<Hit> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(rx.next().await);
        }
        v
    };
    assert!(
        rx.next_within(Duration::from_millis(1500)).await.is_none(),
        "a fifth delivery arrived"
    );
    let first = app.notification(&hits[0].body);
    for h in &hits {
        assert_eq!(h.body, hits[0].body, "the same body every time");
        assert!(
            h.content_type
                .starts_with("application/x-www-form-urlencoded")
        );
    }
    assert_eq!(first.trade_status, TradeStatus::TradeSuccess);
    for (i, expected_ms) in [240u128, 600, 600].into_iter().enumerate() {
        let gap = hits[i + 1].at.duration_since(hits[i].at).as_millis();
        assert!(
            // Never early; late only by scheduling noise on a busy machine.
            gap + 20 >= expected_ms && gap < expected_ms + 1500,
            "interval {i}: {gap} ms, expected about {expected_ms} ms"
        );
    }
    let n = app.sandbox.notifications().await;
    let d = n.iter().find(|d| d.out_trade_no == out).unwrap();
    assert_eq!(d.state, DeliveryState::Delivered);
    assert_eq!(d.attempts.len(), 4);
    assert_eq!(d.attempts[0].response_body.as_deref(), Some("fail"));
    assert_eq!(d.attempts[3].http_status, Some(200));
    assert!(d.attempts[3].success);
}

#[tokio::test]
async fn a_receiver_that_never_answers_success_gets_eight_and_then_none() {
    // Explicit time: each advance of one interval yields exactly one attempt.
    let app = spawn_explicit().await;
    let rx = Receiver::start(&[], "fail").await;
    app.client
        .execute(&create_req(no("NEVER"), amt("1.00"), "x"), &opts(&rx.url))
        .await
        .unwrap();
    app.sandbox.pay(None, "NEVER").await.unwrap();
    assert!(
        rx.drain_now().await.is_empty(),
        "explicit mode waits for the clock"
    );
    let r = app.sandbox.advance(Duration::ZERO).await.unwrap();
    assert_eq!(r.attempts, 1);
    assert_eq!(rx.drain_now().await.len(), 1);
    for (i, minutes) in [4u64, 10, 10, 60, 120, 360, 900].into_iter().enumerate() {
        let r = app
            .sandbox
            .advance(Duration::from_secs(minutes * 60 - 1))
            .await
            .unwrap();
        assert_eq!(r.attempts, 0, "too early for retry {i}");
        let r = app.sandbox.advance(Duration::from_secs(1)).await.unwrap();
        assert_eq!(r.attempts, 1, "retry {i} after {minutes} min");
        assert_eq!(rx.drain_now().await.len(), 1);
    }
    let r = app
        .sandbox
        .advance(Duration::from_secs(30 * 86_400))
        .await
        .unwrap();
    assert_eq!(r.attempts, 0);
    assert!(rx.drain_now().await.is_empty());
    let n = app.sandbox.notifications().await;
    assert_eq!(n[0].attempts.len(), 8);
    assert_eq!(n[0].state, DeliveryState::GaveUp);
    assert!(n[0].next_attempt_at.is_none());
}

#[tokio::test]
async fn drop_and_duplicate_faults() {
    let app = spawn_with(SandboxConfig {
        seed: Some(1),
        ..explicit_config()
    })
    .await;
    let rx = Receiver::success().await;
    app.sandbox
        .set_faults(Faults {
            drop_rate: 1.0,
            ..Default::default()
        })
        .await;
    app.client
        .execute(&create_req(no("DROP"), amt("1.00"), "x"), &opts(&rx.url))
        .await
        .unwrap();
    app.sandbox.pay(None, "DROP").await.unwrap();
    app.sandbox.advance(Duration::ZERO).await.unwrap();
    assert!(rx.drain_now().await.is_empty());
    let n = app.sandbox.notifications().await;
    assert_eq!(n[0].attempts[0].fault.as_deref(), Some("dropped"));
    assert_eq!(
        n[0].state,
        DeliveryState::Pending,
        "a dropped attempt is retried"
    );
    // The network heals: the retry arrives.
    app.sandbox.set_faults(Faults::default()).await;
    app.sandbox.advance(Duration::from_secs(240)).await.unwrap();
    assert_eq!(rx.drain_now().await.len(), 1);

    app.sandbox
        .set_faults(Faults {
            duplicate_rate: 1.0,
            ..Default::default()
        })
        .await;
    app.client
        .execute(&create_req(no("DUP"), amt("1.00"), "x"), &opts(&rx.url))
        .await
        .unwrap();
    app.sandbox.pay(None, "DUP").await.unwrap();
    app.sandbox.advance(Duration::ZERO).await.unwrap();
    let hits = rx.drain_now().await;
    assert_eq!(hits.len(), 2);
    let (a, b) = (
        app.notification(&hits[0].body),
        app.notification(&hits[1].body),
    );
    assert_eq!(a.notify_id, b.notify_id);
}

#[tokio::test]
async fn reorder_fault_lets_a_later_notification_overtake() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    app.sandbox
        .set_faults(Faults {
            reorder_rate: 1.0,
            reorder_hold_ms: 60_000,
            ..Default::default()
        })
        .await;
    let out = unique("REORDER");
    app.client
        .execute(&create_req(no(&out), amt("9.00"), "x"), &opts(&rx.url))
        .await
        .unwrap();
    app.sandbox.pay(None, &out).await.unwrap();
    assert!(
        rx.next_within(Duration::from_millis(300)).await.is_none(),
        "held back"
    );
    app.sandbox.set_faults(Faults::default()).await;
    app.client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo(out.clone()), amt("1.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap();
    let first = app.notification(&rx.next().await.body);
    let second = app.notification(&rx.next().await.body);
    assert_eq!(
        first.out_biz_no.as_deref(),
        Some("R1"),
        "the refund notification overtook"
    );
    assert!(second.out_biz_no.is_none());
    assert_eq!(second.trade_status, TradeStatus::TradeSuccess);
}

#[tokio::test]
async fn system_errors_and_latency() {
    let app = spawn_auto().await;
    app.sandbox
        .set_faults(Faults {
            system_error_rate: 1.0,
            ..Default::default()
        })
        .await;
    let out = unique("SYSERR");
    let e = app
        .client
        .execute(
            &TradePrecreate::new(no(&out), amt("1.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap_err();
    assert!(e.is_unknown_outcome());
    let g = gw(e);
    assert_eq!(
        (g.code.as_str(), g.sub_code.as_deref()),
        ("20000", Some("ACQ.SYSTEM_ERROR"))
    );
    assert!(g.verified);
    assert!(app.sandbox.trades().await.is_empty());

    // "After commit": the call took effect although 20000 was answered.
    app.sandbox
        .set_faults(Faults {
            system_error_rate: 1.0,
            system_error_after_commit: true,
            ..Default::default()
        })
        .await;
    let e = app
        .client
        .execute(&create_req(no(&out), amt("1.00"), "x"), &Default::default())
        .await
        .unwrap_err();
    assert!(e.is_unknown_outcome());
    assert_eq!(app.sandbox.trades().await.len(), 1);

    app.sandbox
        .set_faults(Faults {
            latency_rate: 1.0,
            latency_ms: 300,
            ..Default::default()
        })
        .await;
    let t = std::time::Instant::now();
    app.client
        .execute(
            &alipay::TradeQuery::by_out_trade_no(&out),
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn resend_delivers_the_same_body_again() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let out = unique("RESEND");
    app.client
        .execute(&create_req(no(&out), amt("1.00"), "x"), &opts(&rx.url))
        .await
        .unwrap();
    app.sandbox.pay(None, &out).await.unwrap();
    let first = rx.next().await;
    let id = app.sandbox.notifications().await[0].id;
    let v = app.sandbox.resend(id).await.unwrap();
    assert_eq!(v.attempts.len(), 2);
    assert_eq!(v.attempts[1].kind, "resend");
    assert_eq!(rx.next().await.body, first.body);
    assert!(matches!(
        app.sandbox.resend(9999).await,
        Err(zhifu_sandbox::SandboxError::DeliveryNotFound(9999))
    ));
}

#[tokio::test]
async fn matrix_wap_close_notifies_and_timeout_close_has_no_refund_fields() {
    let app = spawn_explicit().await;
    let rx = Receiver::success().await;
    let mut wap = alipay::TradeWapPay::new(no("WAPCLOSE"), amt("4.00"), "wap");
    wap.timeout_express = Some("10m".into());
    let signed = app
        .alipay
        .sign_request(&wap, &opts(&rx.url), app.sandbox.now())
        .unwrap();
    let resp = app
        .http
        .get(signed.to_get_url(&app.gateway))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    app.sandbox.open(None, "WAPCLOSE").await.unwrap();
    app.sandbox.advance(Duration::from_secs(600)).await.unwrap();
    let hits = rx.drain_now().await;
    assert_eq!(hits.len(), 1);
    let n = app.notification(&hits[0].body);
    assert_eq!(n.trade_status, TradeStatus::TradeClosed);
    assert!(n.refund_fee.is_none() && n.gmt_close.is_some() && n.gmt_payment.is_none());
}

#[tokio::test]
async fn trigger_sends_signed_tampered_and_duplicate_notifications() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let send = |kind| TriggerRequest {
        kind,
        url: Some(rx.url.clone()),
        app_id: None,
        out_trade_no: Some("TRIG1".into()),
        total_amount: Some("10.00".into()),
        refund_amount: None,
        subject: None,
    };
    let v = app.sandbox.trigger(send(TriggerKind::Paid)).await.unwrap();
    assert_eq!(v.state, DeliveryState::OneShot);
    assert!(v.attempts[0].success);
    let n = app.notification(&rx.next().await.body);
    assert_eq!(
        (n.trade_status, n.total_amount),
        (TradeStatus::TradeSuccess, amt("10.00"))
    );
    assert_eq!(n.app_id, app.app_id);

    app.sandbox
        .trigger(send(TriggerKind::PartialRefund))
        .await
        .unwrap();
    let n = app.notification(&rx.next().await.body);
    assert_eq!(n.refund_fee, Some(amt("5.00")));
    app.sandbox
        .trigger(send(TriggerKind::FullRefund))
        .await
        .unwrap();
    let n = app.notification(&rx.next().await.body);
    assert_eq!(
        (n.trade_status, n.refund_fee),
        (TradeStatus::TradeClosed, Some(amt("10.00")))
    );
    app.sandbox
        .trigger(send(TriggerKind::Closed))
        .await
        .unwrap();
    let n = app.notification(&rx.next().await.body);
    assert_eq!(n.trade_status, TradeStatus::TradeClosed);
    assert!(n.gmt_payment.is_none());

    app.sandbox
        .trigger(send(TriggerKind::Tampered))
        .await
        .unwrap();
    let body = rx.next().await.body;
    assert!(body.contains("total_amount=11.00"));
    assert!(matches!(
        app.verifier().verify_body(body.as_bytes()),
        Err(alipay::Error::BadSignature)
    ));

    app.sandbox
        .trigger(send(TriggerKind::Duplicate))
        .await
        .unwrap();
    let (a, b) = (rx.next().await.body, rx.next().await.body);
    assert_eq!(a, b);
    app.notification(&a);
}
