//! The payment journeys of issue 3, continued: refund rules, trade timeouts and the
//! refund window, and bill downloads (split from `journeys.rs`).

use std::time::Duration;

use alipay::{GenericRequest, TradeQuery, TradeRef, TradeRefund, TradeRefundQuery, TradeStatus};
use serde_json::json;

use crate::helpers::*;

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
    let generic = |biz: serde_json::Value| GenericRequest::new("alipay.trade.refund", biz);
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
            &TradeRefundQuery::new(by(), out.clone()).query_options(["gmt_refund_pay"]),
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
            &GenericRequest::new(
                "alipay.trade.create",
                json!({"out_trade_no": unique("F"), "total_amount": 0.1 + 0.2, "subject": "x"}),
            ),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.INVALID_PARAMETER"));
    let e = gw(app
        .client
        .execute(
            &GenericRequest::new("alipay.trade.precreate", json!({"out_trade_no": unique("F"), "total_amount": "100000000.01", "subject": "x"})),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TOTAL_FEE_EXCEED"));
    let e = gw(app
        .client
        .execute(
            &GenericRequest::new(
                "alipay.trade.create",
                json!({"out_trade_no": unique("F"), "total_amount": "1.00", "subject": "a/b"}),
            ),
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
    let q = |d: &str| alipay::BillDownloadUrlQuery::trade(d);
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
