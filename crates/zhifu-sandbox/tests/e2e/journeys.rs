//! The payment journeys of issue 3 with our own `alipay` client.

use std::time::Duration;

use alipay::{
    ExpectedOrder, GenericRequest, TradeCancel, TradeClose, TradePay, TradePrecreate, TradeQuery,
    TradeRef, TradeRefund, TradeRefundQuery, TradeStatus,
};
use serde_json::json;

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
        .execute(
            &TradeRefundQuery {
                trade: by(),
                out_request_no: "R1".into(),
                query_options: None,
            },
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(rq.succeeded());
    assert_eq!(rq.refund_amount, Some(amt("10.00")));
    assert_eq!(rq.total_amount, Some(amt("88.88")));
    let unknown = app
        .client
        .execute(
            &TradeRefundQuery {
                trade: by(),
                out_request_no: "NOPE".into(),
                query_options: None,
            },
            &Default::default(),
        )
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
            &TradeClose {
                trade: TradeRef::OutTradeNo(out.clone()),
                operator_id: None,
            },
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
            &TradeClose {
                trade: TradeRef::OutTradeNo(out.clone()),
                operator_id: None,
            },
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
            &TradeClose {
                trade: TradeRef::OutTradeNo("NEVER_MADE".into()),
                operator_id: None,
            },
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
            &TradeCancel {
                trade: TradeRef::OutTradeNo(out2.clone()),
            },
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
            &TradeCancel {
                trade: TradeRef::OutTradeNo(out3.clone()),
            },
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

#[tokio::test]
async fn refund_rules_and_biz_validation() {
    let app = spawn_auto().await;
    let out = unique("REF");
    app.client
        .execute(
            &create_req(no(&out), amt("20.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap();
    let by = || TradeRef::OutTradeNo(out.clone());
    let e = gw(app
        .client
        .execute(
            &TradeRefund::new(by(), amt("1.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.TRADE_STATUS_ERROR"),
        "unpaid trade"
    );
    app.sandbox.pay(None, &out).await.unwrap();

    // Without out_request_no only a full refund is allowed (docs/protocol.md §5.2).
    let generic = |biz: serde_json::Value| GenericRequest {
        method: "alipay.trade.refund".into(),
        biz_content: biz,
        retry_safe: false,
    };
    let e = gw(app
        .client
        .execute(
            &generic(json!({"out_trade_no": out, "refund_amount": "5.00"})),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    );
    let e = gw(app
        .client
        .execute(
            &generic(json!({"out_trade_no": out, "refund_amount": "20.001"})),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.INVALID_PARAMETER"));
    let e = gw(app
        .client
        .execute(
            &generic(
                json!({"out_trade_no": out, "refund_amount": "21.00", "out_request_no": "BIG"}),
            ),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    );
    let full = app
        .client
        .execute(
            &generic(json!({"out_trade_no": out, "refund_amount": "20.00"})),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(full["fund_change"], "Y");
    // Refund query of a refund made without out_request_no uses out_trade_no.
    let rq = app
        .client
        .execute(
            &TradeRefundQuery {
                trade: by(),
                out_request_no: out.clone(),
                query_options: Some(vec!["gmt_refund_pay".into()]),
            },
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(rq.succeeded());
    assert!(rq.gmt_refund_pay.is_some());

    let e = gw(app
        .client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo("NOPE".into()), amt("1.00"), "R"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));

    // A numeric amount with float noise is refused, as the gateway does.
    let e = gw(app
        .client
        .execute(
            &GenericRequest {
                method: "alipay.trade.create".into(),
                biz_content: json!({"out_trade_no": unique("F"), "total_amount": 0.1 + 0.2, "subject": "x"}),
                retry_safe: false,
            },
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.INVALID_PARAMETER"));
    let e = gw(app
        .client
        .execute(
            &GenericRequest {
                method: "alipay.trade.precreate".into(),
                biz_content: json!({"out_trade_no": unique("F"), "total_amount": "100000000.01", "subject": "x"}),
                retry_safe: false,
            },
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TOTAL_FEE_EXCEED"));
    let e = gw(app
        .client
        .execute(
            &GenericRequest {
                method: "alipay.trade.create".into(),
                biz_content: json!({"out_trade_no": unique("F"), "total_amount": "1.00", "subject": "a/b"}),
                retry_safe: false,
            },
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.INVALID_PARAMETER"));
}

#[tokio::test]
async fn timeouts_close_unpaid_trades_and_the_refund_window_finishes_paid_ones() {
    let app = spawn_with(zhifu_sandbox::SandboxConfig {
        refund_window: Duration::from_secs(86_400),
        ..explicit_config()
    })
    .await;
    let mut c = create_req(no("TIMEOUT1"), amt("1.00"), "x");
    c.timeout_express = Some("5m".into());
    app.client.execute(&c, &Default::default()).await.unwrap();
    app.client
        .execute(
            &create_req(no("PAID1"), amt("1.00"), "x"),
            &Default::default(),
        )
        .await
        .unwrap();
    app.sandbox.pay(None, "PAID1").await.unwrap();

    app.sandbox
        .advance(Duration::from_secs(4 * 60))
        .await
        .unwrap();
    let q = app
        .client
        .execute(
            &TradeQuery::by_out_trade_no("TIMEOUT1"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
    app.sandbox
        .advance(Duration::from_secs(2 * 60))
        .await
        .unwrap();
    let q = app
        .client
        .execute(
            &TradeQuery::by_out_trade_no("TIMEOUT1"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);
    let e = app.sandbox.pay(None, "TIMEOUT1").await.unwrap_err();
    assert!(
        matches!(e, zhifu_sandbox::SandboxError::InvalidTradeState { .. }),
        "{e:?}"
    );

    app.sandbox
        .advance(Duration::from_secs(86_400))
        .await
        .unwrap();
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no("PAID1"), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeFinished);
    let e = gw(app
        .client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo("PAID1".into()), amt("1.00"), "R"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_FINISHED"));

    // time_expire (absolute, Beijing) wins over timeout_express.
    let mut c = create_req(no("EXPIRE1"), amt("1.00"), "x");
    c.timeout_express = Some("15d".into());
    c.time_expire = Some(alipay::time::format_beijing(
        app.sandbox.now() + time::Duration::minutes(1),
    ));
    app.client.execute(&c, &Default::default()).await.unwrap();
    app.sandbox.advance(Duration::from_secs(61)).await.unwrap();
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no("EXPIRE1"), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeClosed);
}

#[tokio::test]
async fn bill_download_lists_yesterdays_trades() {
    let app = spawn_explicit().await;
    app.client
        .execute(
            &create_req(no("BILL1"), amt("7.50"), "bill item"),
            &Default::default(),
        )
        .await
        .unwrap();
    app.sandbox.pay(None, "BILL1").await.unwrap();
    app.client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo("BILL1".into()), amt("2.50"), "BR1"),
            &Default::default(),
        )
        .await
        .unwrap();
    let day = alipay::time::format_beijing(app.sandbox.now())[..10].to_owned();
    let q = |d: &str| alipay::BillDownloadUrlQuery {
        bill_type: "trade".into(),
        bill_date: d.into(),
    };
    let e = gw(app
        .client
        .execute(&q(&day), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("isp.bill_not_exist"),
        "today's bill does not exist yet"
    );
    app.sandbox
        .advance(Duration::from_secs(86_400))
        .await
        .unwrap();
    let r = app
        .client
        .execute(&q(&day), &Default::default())
        .await
        .unwrap();
    assert!(r.bill_download_url.starts_with(&app.base));
    let csv = app
        .http
        .get(&r.bill_download_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("BILL1"), "{csv}");
    assert!(csv.contains(",交易,bill item,"), "{csv}");
    assert!(
        csv.contains(",退款,") && csv.contains("-2.50") && csv.contains("BR1"),
        "{csv}"
    );
    assert!(csv.contains("#交易合计：1笔，商家实收共7.50元"), "{csv}");
    // The link expires (~30 s).
    app.sandbox.advance(Duration::from_secs(31)).await.unwrap();
    let resp = app.http.get(&r.bill_download_url).send().await.unwrap();
    assert_eq!(resp.status(), 404);
}
