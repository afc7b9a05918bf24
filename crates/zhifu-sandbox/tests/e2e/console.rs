//! The console pages (`/sandbox/`, a trade, the notification log) driven
//! the way a browser drives them: GET a page, take the form it renders,
//! POST it back. The browser suite (`tests-browser/sandbox.test.js`) covers
//! layout, language switch clicks and accessibility.

use std::time::Duration;

use alipay::{TradePagePay, TradePrecreate, TradeStatus};

use crate::helpers::*;

async fn get(app: &TestSandbox, path: &str) -> (u16, String) {
    let r = app
        .http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The per-process form token a rendered page carries.
fn token(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has an action form");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// POSTs a console form (as a same-origin browser would) and returns the
/// status and the redirect target.
async fn post(app: &TestSandbox, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = app
        .http
        .post(format!("{}{path}", app.base))
        .header("origin", &app.base)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, to)
}

async fn status_of(app: &TestSandbox, out: &str) -> String {
    let t = app.sandbox.trades().await;
    t.iter()
        .find(|t| t.out_trade_no == out)
        .map(|t| t.trade_status.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn pay_refund_and_resend_from_the_pages_notify_the_merchant() {
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let out = unique("CONSOLE");
    // A QR order nobody scanned: no trade yet, but the console lists it.
    app.client
        .execute(
            &TradePrecreate::new(no(&out), amt("12.00"), "Console mug"),
            &opts(&rx.url),
        )
        .await
        .unwrap();
    let (status, html) = get(&app, "/sandbox/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese by default");
    let path = format!("/sandbox/trades/{}/{out}", app.app_id);
    assert!(html.contains(&format!("href=\"{path}\"")), "{html}");
    assert!(html.contains("data-status=\"NOT_OPENED\""));
    assert!(
        !html.contains("Auto") && !html.contains("OneShot"),
        "no Rust names: {html}"
    );

    let (_, page) = get(&app, &path).await;
    assert!(page.contains("id=\"action-pay\"") && page.contains("id=\"action-close\""));
    let csrf = token(&page);

    // A form without the token, or from another origin, does nothing.
    let (s, _) = post(
        &app,
        &format!("{path}/pay"),
        &[("csrf", "0".repeat(32).as_str())],
    )
    .await;
    assert_eq!(s, 403);
    let forged = app
        .http
        .post(format!("{}{path}/pay", app.base))
        .header("origin", "http://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(status_of(&app, &out).await, "", "still no trade");
    assert!(rx.next_within(Duration::from_millis(300)).await.is_none());

    // Pay: the trade exists, is paid, and the merchant is notified.
    let (s, to) = post(&app, &format!("{path}/pay"), &[("csrf", &csrf)]).await;
    assert_eq!(
        (s, to.as_str()),
        (303, format!("{path}?done=paid").as_str())
    );
    let paid = app.notification(&rx.next().await.body);
    assert_eq!(paid.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(status_of(&app, &out).await, "TRADE_SUCCESS");
    let (_, page) = get(&app, &to).await;
    assert!(page.contains("id=\"notice\""));
    assert!(page.contains("data-status=\"TRADE_SUCCESS\""));
    assert!(
        !page.contains("id=\"action-pay\""),
        "a paid trade is not paid twice"
    );

    // Refund part of it, then the rest (empty amount).
    let (s, _) = post(
        &app,
        &format!("{path}/refund"),
        &[("csrf", &csrf), ("amount", "2.50")],
    )
    .await;
    assert_eq!(s, 303);
    let partial = rx.next().await.body;
    assert!(partial.contains("refund_fee=2.50"), "{partial}");
    let (s, _) = post(
        &app,
        &format!("{path}/refund"),
        &[("csrf", &csrf), ("amount", "99.00")],
    )
    .await;
    assert_eq!(s, 400, "more than is left is refused");
    let (s, _) = post(
        &app,
        &format!("{path}/refund"),
        &[("csrf", &csrf), ("amount", "")],
    )
    .await;
    assert_eq!(s, 303);
    let t = app.sandbox.trades().await;
    let t = t.iter().find(|t| t.out_trade_no == out).unwrap();
    assert_eq!(t.refund_fee, "12.00");

    // Resend the payment notification from the log: same body again.
    let (_, log) = get(&app, &format!("/sandbox/notifications?out_trade_no={out}")).await;
    let first = app
        .sandbox
        .notifications()
        .await
        .into_iter()
        .rfind(|d| d.out_trade_no == out)
        .unwrap();
    assert!(log.contains(&format!("data-delivery-id=\"{}\"", first.id)));
    while rx.next_within(Duration::from_millis(200)).await.is_some() {}
    let (s, to) = post(
        &app,
        &format!("/sandbox/notifications/{}/resend", first.id),
        &[("csrf", &csrf), ("back", "https://evil.example/")],
    )
    .await;
    assert_eq!(
        (s, to.as_str()),
        (303, "/sandbox/notifications?done=resent")
    );
    assert_eq!(rx.next().await.body, first.body);
}

#[tokio::test]
async fn english_on_request_and_remembered() {
    let app = spawn_auto().await;
    let r = app
        .http
        .get(format!("{}/sandbox/?lang=en", app.base))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("zhifu_sandbox_lang=en;"), "{cookie}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("Automatic: real-time clock"));
    assert!(!html.contains("交易"), "one language at a time: {html}");
    let again = app
        .http
        .get(format!("{}/sandbox/notifications", app.base))
        .header("cookie", "zhifu_sandbox_lang=en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(again.contains("<html lang=\"en\">") && again.contains("Alipay notifications"));
}

#[tokio::test]
async fn explicit_mode_closes_and_advances_the_clock_from_the_pages() {
    let app = spawn_explicit().await;
    let rx = Receiver::success().await;
    let out = unique("TICK");
    app.client
        .execute(&create_req(no(&out), amt("3.00"), "tick"), &opts(&rx.url))
        .await
        .unwrap();
    let path = format!("/sandbox/trades/{}/{out}", app.app_id);
    let (_, page) = get(&app, &path).await;
    assert!(
        page.contains("id=\"action-advance\""),
        "explicit mode offers the clock"
    );
    let csrf = token(&page);
    let (s, _) = post(&app, &format!("{path}/pay"), &[("csrf", &csrf)]).await;
    assert_eq!(s, 303);
    assert!(
        rx.next_within(Duration::from_millis(300)).await.is_none(),
        "explicit mode waits for the clock"
    );
    let before = app.sandbox.now();
    let (s, to) = post(
        &app,
        "/sandbox/clock/advance",
        &[("csrf", &csrf), ("seconds", "60"), ("back", &path)],
    )
    .await;
    assert_eq!((s, to), (303, format!("{path}?done=advanced")));
    assert!(app.sandbox.now() - before >= time::Duration::seconds(60));
    assert_eq!(
        app.notification(&rx.next().await.body).trade_status,
        TradeStatus::TradeSuccess
    );

    // Close an unpaid trade (no long wait for a delivery in explicit mode).
    let out = unique("SHUT");
    app.client
        .execute(&create_req(no(&out), amt("3.00"), "shut"), &opts(&rx.url))
        .await
        .unwrap();
    let path = format!("/sandbox/trades/{}/{out}", app.app_id);
    let started = std::time::Instant::now();
    let (s, _) = post(&app, &format!("{path}/close"), &[("csrf", &csrf)]).await;
    assert_eq!(s, 303);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(status_of(&app, &out).await, "TRADE_CLOSED");
    let (s, _) = post(&app, &format!("{path}/pay"), &[("csrf", &csrf)]).await;
    assert_eq!(s, 409, "a closed trade cannot be paid");
}

#[tokio::test]
async fn cancel_on_the_cashier_leads_back_to_the_merchant() {
    let app = spawn_auto().await;
    // With a return_url: the link goes there.
    let out = unique("BACK");
    let signed = app
        .alipay
        .sign_request(
            &TradePagePay::new(no(&out), amt("5.00"), "back"),
            &alipay::RequestOptions::new().return_url("https://shop.example/return"),
            app.sandbox.now(),
        )
        .unwrap();
    let r = app
        .http
        .get(signed.to_get_url(&app.gateway))
        .send()
        .await
        .unwrap();
    let cashier = r.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = get(&app, &cashier).await;
    assert!(html.contains("id=\"cancel\""));
    let cancelled = app
        .http
        .post(format!("{}{cashier}/cancel", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cancelled.contains("id=\"back-to-merchant\" href=\"https://shop.example/return\""),
        "{cancelled}"
    );

    // Without one: back to the shop page that sent the buyer.
    let out = unique("SHOP");
    let signed = app
        .alipay
        .sign_request(
            &TradePagePay::new(no(&out), amt("5.00"), "shop"),
            &alipay::RequestOptions::new(),
            app.sandbox.now(),
        )
        .unwrap();
    let r = app
        .http
        .get(signed.to_get_url(&app.gateway))
        .send()
        .await
        .unwrap();
    let cashier = r.headers()["location"].to_str().unwrap().to_owned();
    let html = app
        .http
        .get(format!("{}{cashier}", app.base))
        .header("referer", "https://shop.example/cart?item=1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("name=\"back\" value=\"https://shop.example/cart?item=1\""),
        "{html}"
    );
    let cancelled = app
        .http
        .post(format!("{}{cashier}/cancel", app.base))
        .form(&[("back", "https://shop.example/cart?item=1")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        cancelled.contains("href=\"https://shop.example/cart?item=1\""),
        "{cancelled}"
    );
    // Only web pages are linked.
    let cancelled = app
        .http
        .post(format!("{}{cashier}/cancel", app.base))
        .form(&[("back", "javascript:alert(1)")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!cancelled.contains("back-to-merchant"));
}

/// The `<tr>` of agreement `no` on the agreement list.
fn agreement_row<'a>(html: &'a str, no: &str) -> &'a str {
    let at = html
        .find(&format!("data-agreement-no=\"{no}\""))
        .unwrap_or_else(|| panic!("agreement {no} is listed: {html}"));
    let rest = &html[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

#[tokio::test]
async fn the_agreement_list_follows_signing_deductions_and_the_buyers_unsign() {
    use alipay::{AccessChannel, PeriodRule, PeriodType, TradeAgreementPay, UserAgreementPageSign};
    let app = spawn_auto().await;
    let rx = Receiver::success().await;
    let (_, empty) = get(&app, "/sandbox/agreements").await;
    assert!(empty.contains("id=\"no-agreements\""), "{empty}");

    let external = unique("CONSOLESUB");
    let rule = PeriodRule::new(
        PeriodType::Month,
        1,
        time::macros::date!(2030 - 01 - 15),
        amt("30.00"),
    );
    let req = UserAgreementPageSign::cycle_pay(
        "INDUSTRY|DIGITAL_MEDIA",
        &external,
        AccessChannel::QrCode,
        rule,
    );
    let signed = app
        .app
        .alipay
        .sign_request(&req, &opts(&rx.url), app.sandbox.now())
        .unwrap();
    let opened = app
        .http
        .get(signed.to_get_url(&app.gateway))
        .send()
        .await
        .unwrap();
    let sign_path = opened.headers()["location"].to_str().unwrap().to_owned();
    let agreement_no = app.sandbox.agreements().await[0].agreement_no.clone();

    // Waiting for the buyer: TEMP, linked to the signing page.
    let (status, html) = get(&app, "/sandbox/agreements").await;
    assert_eq!(status, 200);
    assert!(html.contains("<html lang=\"zh-CN\">"), "Chinese by default");
    assert!(
        html.contains("href=\"/sandbox/agreements\""),
        "in the navigation"
    );
    let row = agreement_row(&html, &agreement_no);
    assert!(row.contains(&external), "{row}");
    assert!(
        row.contains("data-status=\"TEMP\"") && row.contains("待签约"),
        "{row}"
    );
    assert!(row.contains(&format!("href=\"{sign_path}\"")), "{row}");

    app.http
        .post(format!("{}{sign_path}/agree", app.base))
        .send()
        .await
        .unwrap();
    rx.next().await;
    app.client
        .execute(
            &TradeAgreementPay::new(
                no(&unique("CONSOLEPAY")),
                amt("30.00"),
                "月度会员",
                &agreement_no,
            ),
            &Default::default(),
        )
        .await
        .unwrap();
    let (_, html) = get(&app, "/sandbox/agreements").await;
    let row = agreement_row(&html, &agreement_no);
    assert!(
        row.contains("data-status=\"NORMAL\"") && row.contains("已签约"),
        "{row}"
    );
    assert!(
        row.contains("<td data-label=\"扣款次数\" class=\"num deductions\">1</td>"),
        "{row}"
    );
    assert!(row.contains("¥30.00"), "{row}");
    assert!(row.contains("每 1 个月"), "{row}");
    let buyer_page = format!("/sandbox/agreements/{agreement_no}");
    assert!(row.contains(&format!("href=\"{buyer_page}\"")), "{row}");

    // The buyer ends it from the linked page.
    let (_, page) = get(&app, &buyer_page).await;
    assert!(page.contains("id=\"unsign\""), "{page}");
    let (status, _) = post(&app, &format!("{buyer_page}/unsign"), &[]).await;
    assert_eq!(status, 303);
    let (_, html) = get(&app, "/sandbox/agreements").await;
    let row = agreement_row(&html, &agreement_no);
    assert!(
        row.contains("data-status=\"UNSIGN\"") && row.contains("已解约"),
        "{row}"
    );
    assert!(row.contains("class=\"num deductions\">1</td>"), "{row}");

    let (_, en) = get(&app, "/sandbox/agreements?lang=en").await;
    assert!(en.contains("<html lang=\"en\">") && en.contains("Recurring agreements"));
    let row = agreement_row(&en, &agreement_no);
    assert!(
        row.contains("Ended") && row.contains("every 1 month(s)"),
        "{row}"
    );
    assert!(!en.contains("协议"), "one language at a time: {en}");

    // The notification log leads from an agreement notification to the agreement.
    let (_, log) = get(&app, "/sandbox/notifications").await;
    assert!(log.contains(&format!("href=\"{buyer_page}\"")), "{log}");
}
