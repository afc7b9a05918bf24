//! `alipay.trade.cancel`'s refusals (a trade with refunds, past
//! `cancel_window`, finished), cancel of unpaid trades and of orders nobody
//! opened, and `TRADE_FINISHED` at the end of the refund window, queried and
//! notified as the matrix says.

use std::time::Duration;

use alipay::{
    TradeCancel, TradeClose, TradePay, TradePrecreate, TradeQuery, TradeRef, TradeRefund,
};
use zhifu_sandbox::SandboxConfig;

use crate::helpers::*;

fn cancel(out: &str) -> TradeCancel {
    TradeCancel::new(TradeRef::OutTradeNo(out.to_owned()))
}

async fn status(t: &TestSandbox, out: &str) -> alipay::TradeStatus {
    t.client
        .execute(&TradeQuery::by_out_trade_no(out), &Default::default())
        .await
        .unwrap()
        .trade_status
}

/// A barcode payment that succeeds at once.
async fn paid(t: &TestSandbox, out: &str) {
    t.client
        .execute(
            &TradePay::new(no(out), amt("10.00"), "cancel me", "281234567890123456"),
            &Default::default(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn cancel_refuses_refunded_and_too_old_trades_and_closes_unpaid_ones() {
    let t = spawn_explicit().await;
    // After a partial refund: refused, nothing else refunded.
    let refunded = unique("CXL_REFUNDED");
    paid(&t, &refunded).await;
    t.client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo(refunded.clone()), amt("1.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap();
    let e = gw(t
        .client
        .execute(&cancel(&refunded), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(
        (e.code.as_str(), e.sub_code.as_deref()),
        ("40004", Some("ACQ.REASON_TRADE_REFUND_FEE_ERR"))
    );
    assert_eq!(
        status(&t, &refunded).await,
        alipay::TradeStatus::TradeSuccess
    );
    let trades = t.sandbox.trades().await;
    let view = trades.iter().find(|v| v.out_trade_no == refunded).unwrap();
    assert_eq!(view.refund_fee, "1.00");

    // Within the window: an unpaid trade is closed, a paid one refunded.
    let unpaid = unique("CXL_UNPAID");
    t.client
        .execute(
            &create_req(no(&unpaid), amt("3.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap();
    let c = t
        .client
        .execute(&cancel(&unpaid), &Default::default())
        .await
        .unwrap();
    assert_eq!(c.action.as_deref(), Some("close"));
    assert_eq!(status(&t, &unpaid).await, alipay::TradeStatus::TradeClosed);

    // Past the window (default 24 h after the trade was created): refused,
    // paid or not; the unpaid one can still be closed, the paid one refunded.
    let old_paid = unique("CXL_OLD_PAID");
    paid(&t, &old_paid).await;
    let old_unpaid = unique("CXL_OLD_UNPAID");
    let mut c = create_req(no(&old_unpaid), amt("3.00"), "x");
    c.timeout_express = Some("3d".into());
    t.client.execute(&c, &Default::default()).await.unwrap();
    let within = unique("CXL_WITHIN");
    t.sandbox
        .advance(Duration::from_secs(23 * 3600))
        .await
        .unwrap();
    paid(&t, &within).await;
    t.sandbox
        .advance(Duration::from_secs(3600 + 1))
        .await
        .unwrap();
    for out in [&old_paid, &old_unpaid] {
        let e = gw(t
            .client
            .execute(&cancel(out), &Default::default())
            .await
            .unwrap_err());
        assert_eq!(
            e.sub_code.as_deref(),
            Some("ACQ.TRADE_CANCEL_TIME_OUT"),
            "{out}"
        );
    }
    assert_eq!(
        status(&t, &old_paid).await,
        alipay::TradeStatus::TradeSuccess
    );
    assert_eq!(
        status(&t, &old_unpaid).await,
        alipay::TradeStatus::WaitBuyerPay
    );
    t.client
        .execute(
            &TradeClose::new(TradeRef::OutTradeNo(old_unpaid.clone())),
            &Default::default(),
        )
        .await
        .unwrap();
    t.client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo(old_paid.clone()), amt("10.00"), "FULL"),
            &Default::default(),
        )
        .await
        .unwrap();
    // Created one hour ago: still cancellable, refunded in full.
    let c = t
        .client
        .execute(&cancel(&within), &Default::default())
        .await
        .unwrap();
    assert_eq!(c.action.as_deref(), Some("refund"));
    assert_eq!(status(&t, &within).await, alipay::TradeStatus::TradeClosed);

    // The request log saw each refusal with its code.
    let cancels = t.requests(Some("alipay.trade.cancel"), None);
    let subs: Vec<Option<&str>> = cancels.iter().map(|r| r.sub_code.as_deref()).collect();
    assert_eq!(
        subs,
        [
            Some("ACQ.REASON_TRADE_REFUND_FEE_ERR"),
            None,
            Some("ACQ.TRADE_CANCEL_TIME_OUT"),
            Some("ACQ.TRADE_CANCEL_TIME_OUT"),
            None,
        ]
    );
}

#[tokio::test]
async fn cancel_voids_orders_nobody_opened_whatever_the_product() {
    let t = spawn_explicit().await;
    let qr = unique("CXL_QR");
    t.client
        .execute(
            &TradePrecreate::new(no(&qr), amt("2.00"), "qr"),
            &Default::default(),
        )
        .await
        .unwrap();
    let wap = unique("CXL_WAP");
    let signed = t
        .alipay
        .sign_request(
            &alipay::TradeWapPay::new(no(&wap), amt("2.00"), "wap"),
            &Default::default(),
            t.sandbox.now(),
        )
        .unwrap();
    let resp = t
        .http
        .get(signed.to_get_url(&t.gateway))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    // Long after: an order has no trade, so no cancel window applies.
    t.sandbox
        .advance(Duration::from_secs(2 * 24 * 3600))
        .await
        .unwrap();
    for out in [&qr, &wap] {
        let c = t
            .client
            .execute(&cancel(out), &Default::default())
            .await
            .unwrap();
        assert_eq!(c.action.as_deref(), Some("close"), "{out}");
        assert_eq!(c.trade_no, None, "{out}");
        // Voided: the buyer can no longer open or pay it.
        assert!(t.sandbox.open(None, out).await.is_err(), "{out}");
        assert!(t.sandbox.pay(None, out).await.is_err(), "{out}");
    }
    let e = gw(t
        .client
        .execute(
            &TradePrecreate::new(no(&qr), amt("2.00"), "qr"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_CLOSE"));
}

#[tokio::test]
async fn the_refund_window_finishes_paid_trades_as_queried_and_notified() {
    let t = spawn_with(SandboxConfig {
        refund_window: Duration::from_secs(86_400),
        ..explicit_config()
    })
    .await;
    let rx = Receiver::success().await;
    // Wap pay notifies TRADE_FINISHED under the default matrix; face-to-face
    // does not (docs/protocol.md §6.5).
    let wap = unique("FIN_WAP");
    let signed = t
        .alipay
        .sign_request(
            &alipay::TradeWapPay::new(no(&wap), amt("4.00"), "wap"),
            &opts(&rx.url),
            t.sandbox.now(),
        )
        .unwrap();
    t.http
        .get(signed.to_get_url(&t.gateway))
        .send()
        .await
        .unwrap();
    let f2f = unique("FIN_F2F");
    t.client
        .execute(&create_req(no(&f2f), amt("4.00"), "f2f"), &opts(&rx.url))
        .await
        .unwrap();
    t.sandbox.pay(None, &wap).await.unwrap();
    t.sandbox.pay(None, &f2f).await.unwrap();
    t.sandbox.advance(Duration::ZERO).await.unwrap();
    let paid = rx.drain_now().await;
    assert_eq!(paid.len(), 2, "two payment notifications");

    t.sandbox
        .advance(Duration::from_secs(86_399))
        .await
        .unwrap();
    assert_eq!(status(&t, &wap).await, alipay::TradeStatus::TradeSuccess);
    assert!(rx.drain_now().await.is_empty());
    t.sandbox.advance(Duration::from_secs(1)).await.unwrap();
    for out in [&wap, &f2f] {
        assert_eq!(status(&t, out).await, alipay::TradeStatus::TradeFinished);
    }
    let hits = rx.drain_now().await;
    assert_eq!(hits.len(), 1, "only the wap trade notifies");
    let n = t.notification(&hits[0].body);
    assert_eq!(n.out_trade_no.as_str(), wap);
    assert_eq!(n.trade_status, alipay::TradeStatus::TradeFinished);
    // Finished: neither refund nor cancel any more.
    let e = gw(t
        .client
        .execute(&cancel(&f2f), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_FINISHED"));
}
