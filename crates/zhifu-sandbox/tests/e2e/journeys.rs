//! The payment journeys of issue 3 with our own `alipay` client.

use std::time::Duration;

use alipay::{
    ExpectedOrder, TradeCancel, TradeClose, TradePay, TradePrecreate, TradeQuery, TradeRef,
    TradeRefund, TradeRefundQuery, TradeStatus,
};

use crate::helpers::*;

#[tokio::test]
async fn precreate_pay_query_refunds_until_closed() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let out = unique("JOURNEY");
    let pre = app
        .client
        .execute(
            &TradePrecreate::new(no(&out), amt("88.88"), "一杯咖啡 coffee"),
            &opts(&rx.url),
        )
        .await
        .unwrap();
    assert_eq!(pre.out_trade_no, out);
    assert!(
        pre.qr_code
            .starts_with(&format!("{}/sandbox/scan/", app.base)),
        "{}",
        pre.qr_code
    );

    // Before the buyer scans, the trade does not exist (docs/protocol.md §5.3).
    let e = gw(app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));
    assert!(e.verified);

    app.sandbox.pay(None, &out).await.unwrap();
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(q.total_amount, amt("88.88"));
    assert_eq!(q.buyer_pay_amount, Some(amt("88.88")));
    assert_eq!(q.receipt_amount, Some(amt("88.88")));
    assert_eq!(q.trade_no.len(), 28);
    assert_eq!(q.fund_bill_list.len(), 1);

    let paid = app.notification(&rx.next().await.body);
    assert_eq!(paid.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(paid.trade_no, q.trade_no);
    assert!(
        paid.check_against(&ExpectedOrder {
            out_trade_no: &out,
            total_amount: amt("88.88"),
            app_id: &app.app_id,
            seller_id: Some(&app.seller_id),
        })
        .is_ok()
    );
    assert_eq!(paid.subject.as_deref(), Some("一杯咖啡 coffee"));

    let by = || TradeRef::OutTradeNo(out.clone());
    let r1 = app
        .client
        .execute(
            &TradeRefund::new(by(), amt("10.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r1.fund_change, "Y");
    assert_eq!(r1.refund_fee, amt("10.00"));
    // Same out_request_no again: idempotent, no money moves.
    let again = app
        .client
        .execute(
            &TradeRefund::new(by(), amt("10.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(again.fund_change, "N");
    assert_eq!(again.refund_fee, amt("10.00"));
    let e = gw(app
        .client
        .execute(
            &TradeRefund::new(by(), amt("11.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.DISCORDANT_REPEAT_REQUEST"));
    let e = gw(app
        .client
        .execute(
            &TradeRefund::new(by(), amt("80.00"), "R2"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.REASON_TRADE_REFUND_FEE_ERR")
    );
    assert!(e.node.contains("\"refund_fee\":\"0.00\""), "{}", e.node);

    let rq = app
        .client
        .execute(&TradeRefundQuery::new(by(), "R1"), &Default::default())
        .await
        .unwrap();
    assert!(rq.succeeded());
    assert_eq!(rq.refund_amount, Some(amt("10.00")));
    assert_eq!(rq.total_amount, Some(amt("88.88")));
    let unknown = app
        .client
        .execute(&TradeRefundQuery::new(by(), "NOPE"), &Default::default())
        .await
        .unwrap();
    assert!(!unknown.succeeded());

    let partial = app.notification(&rx.next().await.body);
    assert_eq!(partial.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(partial.refund_fee, Some(amt("10.00")));
    assert_eq!(partial.out_biz_no.as_deref(), Some("R1"));
    assert_ne!(partial.notify_id, paid.notify_id);

    let r2 = app
        .client
        .execute(
            &TradeRefund::new(by(), amt("78.88"), "R2"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r2.refund_fee, amt("88.88"));
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);
    // Face-to-face: a full refund's TRADE_CLOSED does not notify by default (docs/protocol.md §6.5).
    assert!(rx.next_within(Duration::from_millis(300)).await.is_none());
    let e = gw(app
        .client
        .execute(
            &TradeRefund::new(by(), amt("1.00"), "R3"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_STATUS_ERROR"));
}

#[tokio::test]
async fn create_close_cancel_and_out_trade_no_reuse() {
    let app = spawn_auto().await;
    let out = unique("CREATE");
    let create = || create_req(no(&out), amt("5.00"), "ticket");
    let c1 = app
        .client
        .execute(&create(), &Default::default())
        .await
        .unwrap();
    let c2 = app
        .client
        .execute(&create(), &Default::default())
        .await
        .unwrap();
    assert_eq!(c1.trade_no, c2.trade_no, "same content, same trade");
    let e = gw(app
        .client
        .execute(
            &create_req(no(&out), amt("6.00"), "ticket"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.CONTEXT_INCONSISTENT"));
    let q = app
        .client
        .execute(&TradeQuery::by_trade_no(&c1.trade_no), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
    assert_eq!(q.buyer_pay_amount, Some(amt("0.00")));

    let closed = app
        .client
        .execute(
            &TradeClose::new(TradeRef::OutTradeNo(out.clone())),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(closed.trade_no.as_deref(), Some(c1.trade_no.as_str()));
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);
    let e = gw(app
        .client
        .execute(
            &TradeClose::new(TradeRef::OutTradeNo(out.clone())),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_STATUS_ERROR"));
    let e = gw(app
        .client
        .execute(&create(), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_CLOSE"));
    let e = gw(app
        .client
        .execute(
            &TradeClose::new(TradeRef::OutTradeNo("NEVER_MADE".into())),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));

    // Cancel of an unpaid trade closes it; of a paid one refunds it.
    let out2 = unique("CANCEL");
    app.client
        .execute(
            &create_req(no(&out2), amt("3.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap();
    let c = app
        .client
        .execute(
            &TradeCancel::new(TradeRef::OutTradeNo(out2.clone())),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(c.action.as_deref(), Some("close"));
    let out3 = unique("CANCEL");
    app.client
        .execute(
            &TradePrecreate::new(no(&out3), amt("3.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap();
    app.sandbox.pay(Some(&app.app_id), &out3).await.unwrap();
    let e = gw(app
        .client
        .execute(
            &TradePrecreate::new(no(&out3), amt("3.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
    let c = app
        .client
        .execute(
            &TradeCancel::new(TradeRef::OutTradeNo(out3.clone())),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(c.action.as_deref(), Some("refund"));
    assert_eq!(c.retry_flag.as_deref(), Some("N"));
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out3), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);
    let trades = app.sandbox.trades().await;
    let t = trades.iter().find(|t| t.out_trade_no == out3).unwrap();
    assert_eq!(t.refund_fee, "3.00");
}

#[tokio::test]
async fn barcode_pay_test_auth_codes() {
    let app = spawn_auto().await;
    let pay = |out: &str, code: &str| TradePay::new(no(out), amt("12.34"), "barcode", code);
    let ok = app
        .client
        .execute(
            &pay(&unique("BAR"), "281234567890123456"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(ok.total_amount, amt("12.34"));
    assert!(
        ok.buyer_logon_id
            .as_deref()
            .is_some_and(|b| b.contains("***"))
    );

    let waiting = unique("BAR");
    let e = gw(app
        .client
        .execute(&pay(&waiting, "281234567890120003"), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.code, "10003");
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&waiting), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
    app.sandbox.pay(None, &waiting).await.unwrap(); // the buyer types the password
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&waiting), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess);

    let e = gw(app
        .client
        .execute(
            &pay(&unique("BAR"), "281234567890120004"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"));
    for bad in ["123", "181234567890123456", "281234567890120005"] {
        let e = gw(app
            .client
            .execute(&pay(&unique("BAR"), bad), &Default::default())
            .await
            .unwrap_err());
        assert_eq!(
            e.sub_code.as_deref(),
            Some("ACQ.PAYMENT_AUTH_CODE_INVALID"),
            "{bad}"
        );
    }
}
