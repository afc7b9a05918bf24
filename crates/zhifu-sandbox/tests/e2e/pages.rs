//! The buyer's side: page/wap pay to the cashier and back, app pay, QR scan.

use alipay::{
    ExpectedOrder, FormParams, ReturnParams, TradeAppPay, TradePagePay, TradePrecreate, TradeQuery,
    TradeStatus,
};

use crate::helpers::*;

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn page_pay_get_cashier_pay_and_signed_return() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let out = unique("PAGE");
    let order = TradePagePay::new(no(&out), amt("66.60"), "Mug 马克杯");
    let opts = alipay::RequestOptions::new()
        .notify_url(rx.url.clone())
        .return_url("https://shop.example/return?from=alipay");
    let signed = app
        .alipay
        .sign_request(&order, &opts, app.sandbox.now())
        .unwrap();
    let resp = app
        .http
        .get(signed.to_get_url(&app.gateway))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let cashier = format!("{}{}", app.base, location(&resp));
    assert!(cashier.contains("/sandbox/cashier/"));

    // Not yet opened: no trade (docs/protocol.md §5.3).
    let e = gw(app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));

    let html = app
        .http
        .get(&cashier)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<span id=\"amount\">66.60</span>"), "{html}");
    assert!(html.contains("Mug 马克杯"));
    assert!(html.contains("id=\"pay\""));
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);

    let resp = app
        .http
        .post(format!("{cashier}/pay"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    let back = location(&resp);
    let query = back
        .strip_prefix("https://shop.example/return?from=alipay&")
        .expect(&back);
    // The merchant's own query parameter is not part of what Alipay signed.
    let params = FormParams::parse(query.as_bytes()).unwrap();
    let verified = app.verifier().verify(params).unwrap();
    let ret = ReturnParams::from_verified(&verified).unwrap();
    assert_eq!(ret.method, "alipay.trade.page.pay.return");
    assert_eq!(ret.trade_no, q.trade_no);
    ret.check_against(&ExpectedOrder {
        out_trade_no: &out,
        total_amount: amt("66.60"),
        app_id: &app.app_id,
        seller_id: Some(&app.seller_id),
    })
    .unwrap();
    let n = app.notification(&rx.next().await.body);
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);

    // Paying again shows the finished state, no second payment.
    let again = app
        .http
        .get(&cashier)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("TRADE_SUCCESS") && !again.contains("id=\"pay\""));
}

#[tokio::test]
async fn page_pay_post_form_and_bad_signature_page() {
    let app = spawn_auto().await;
    let out = unique("FORM");
    let signed = app
        .alipay
        .sign_request(
            &TradePagePay::new(no(&out), amt("1.00"), "form"),
            &Default::default(),
            app.sandbox.now(),
        )
        .unwrap();
    let (query, body) = signed.query_and_body();
    let resp = app
        .http
        .post(format!("{}?{query}", app.gateway))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());
    let form = signed.to_post_form(&app.gateway);
    assert!(form.contains("name=\"biz_content\""));

    let tampered = body.replace("1.00", "0.01");
    let html = app
        .http
        .post(format!("{}?{query}", app.gateway))
        .body(tampered)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("isv.invalid-signature"), "{html}");
    let resp = app
        .http
        .get(format!("{}/sandbox/cashier/doesnotexist", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn app_pay_order_string_and_qr_scan_page() {
    let app = spawn_auto().await;
    let out = unique("APP");
    let signed = app
        .alipay
        .sign_request(
            &TradeAppPay::new(no(&out), amt("8.00"), "app item"),
            &Default::default(),
            app.sandbox.now(),
        )
        .unwrap();
    let resp = app
        .http
        .post(format!("{}/sandbox/app-pay", app.base))
        .form(&[("order_string", signed.to_order_string())])
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let cashier = format!("{}{}", app.base, location(&resp));
    let html = app
        .http
        .post(format!("{cashier}/pay"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<dd id=\"resultStatus\">9000</dd>"), "{html}");
    let start = html.find("<pre id=\"result\"").unwrap();
    let result = &html[start..];
    let result = &result[result.find('>').unwrap() + 1..result.find("</pre>").unwrap()];
    let result = result.replace("&quot;", "\"");
    let node = alipay::response::extract_signed_node(&result, "alipay.trade.app.pay").unwrap();
    app.sandbox
        .alipay_public_key()
        .verify(
            alipay::SignType::Rsa2,
            node.text.as_bytes(),
            node.sign.as_deref().unwrap(),
        )
        .unwrap();
    assert!(node.text.contains(&out));

    // precreate's qr_code opens the scan page: the trade exists from then on.
    let out = unique("QR");
    let pre = app
        .client
        .execute(
            &TradePrecreate::new(no(&out), amt("2.00"), "qr"),
            &Default::default(),
        )
        .await
        .unwrap();
    let html = app
        .http
        .get(&pre.qr_code)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<span id=\"amount\">2.00</span>"));
    let q = app
        .client
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
}
