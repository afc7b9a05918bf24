//! Issue 13, sandbox half: the SDK's agreement and OAuth types against the
//! real sandbox over HTTP — signing on the signing page, agreement
//! notifications, queries, deductions and their refusals, the buyer's
//! unsign, and the authorization code exchange.

use std::time::Duration;

use alipay::{
    AccessChannel, AgreementExecutionPlanModify, AgreementNotification, AgreementNotifyType,
    AgreementStatus, AuthorizeUrl, BuyerId, ExpectedAgreement, ExpectedOrder, PeriodRule,
    PeriodType, SystemOauthToken, TradeAgreementPay, TradeQuery, TradeStatus,
    UserAgreementPageSign, UserAgreementQuery, UserAgreementUnsign,
};
use time::macros::date;

use crate::helpers::*;

const SCENE: &str = "INDUSTRY|DIGITAL_MEDIA";
const PPC: &str = "CYCLE_PAY_AUTH_P";

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

fn monthly() -> PeriodRule {
    PeriodRule::new(PeriodType::Month, 1, date!(2030 - 01 - 15), amt("30.00")).total_payments(12)
}

/// Signs `alipay.user.agreement.page.sign` for `external`, opens it on the
/// gateway and returns the signing page's URL.
async fn open_signing_page(t: &TestSandbox, external: &str, notify_url: &str) -> String {
    let req = UserAgreementPageSign::cycle_pay(SCENE, external, AccessChannel::QrCode, monthly());
    let signed = t
        .app
        .alipay
        .sign_request(&req, &opts(notify_url), t.sandbox.now())
        .unwrap();
    let resp = t
        .http
        .get(signed.to_get_url(&t.gateway))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let page = format!("{}{}", t.base, location(&resp));
    assert!(page.contains("/sandbox/sign/"), "{page}");
    page
}

/// Opens the signing page, agrees, and returns the verified `dut_user_sign`
/// notification.
async fn sign(t: &TestSandbox, external: &str, rx: &Receiver) -> AgreementNotification {
    let page = open_signing_page(t, external, &rx.url).await;
    let html = t
        .http
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"agree\""), "{html}");
    assert!(html.contains(external), "{html}");
    let done = t.http.post(format!("{page}/agree")).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("data-status=\"NORMAL\"")
    );
    agreement_notification(t, &rx.next().await.body)
}

fn agreement_notification(t: &TestSandbox, body: &str) -> AgreementNotification {
    let verified = t.app.verifier().verify_body(body.as_bytes()).unwrap();
    AgreementNotification::from_verified(&verified).unwrap()
}

fn query_by_external(external: &str) -> UserAgreementQuery {
    UserAgreementQuery::by_external_agreement_no(PPC, SCENE, external)
}

fn deduction(out: &str, amount: &str, agreement_no: &str) -> TradeAgreementPay {
    TradeAgreementPay::new(no(out), amt(amount), "月度会员 membership", agreement_no)
}

#[tokio::test]
async fn sign_notify_query_deduct_then_refused_after_unsign() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let external = unique("SUB");

    // While the buyer looks at the page the agreement is TEMP.
    let page = open_signing_page(&t, &external, &rx.url).await;
    let temp = c
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap();
    assert_eq!(temp.status, AgreementStatus::Temp);
    let done = t.http.post(format!("{page}/agree")).send().await.unwrap();
    assert_eq!(done.status(), 200);

    let signed = agreement_notification(&t, &rx.next().await.body);
    assert_eq!(signed.notify_type, AgreementNotifyType::Sign);
    assert_eq!(signed.status, AgreementStatus::Normal);
    assert_eq!(signed.agreement_no, temp.agreement_no);
    signed
        .check_against(&ExpectedAgreement::new(&t.app.app_id, &external).personal_product_code(PPC))
        .unwrap();
    assert!(
        signed
            .alipay_user_id
            .as_deref()
            .is_some_and(|u| u.starts_with("2088"))
    );
    assert!(signed.sign_time.is_some() && signed.invalid_time.is_some());
    let agreement_no = signed.agreement_no.clone();

    let q = c
        .execute(
            &UserAgreementQuery::by_agreement_no(&agreement_no),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Normal);
    assert_eq!(q.external_agreement_no.as_deref(), Some(external.as_str()));
    assert_eq!(q.principal_id, signed.alipay_user_id);
    assert_eq!(q.single_quota, Some(amt("30.00")));

    // A deduction within the rule: an ordinary paid trade and its notification.
    let out = unique("SUBPAY");
    let paid = c
        .execute(&deduction(&out, "30.00", &agreement_no), &opts(&rx.url))
        .await
        .unwrap();
    assert_eq!(paid.out_trade_no, out);
    assert_eq!(paid.total_amount, amt("30.00"));
    let n = t.app.notification(&rx.next().await.body);
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);
    n.check_against(&ExpectedOrder {
        out_trade_no: &out,
        total_amount: amt("30.00"),
        app_id: &t.app.app_id,
        seller_id: Some(&t.app.seller_id),
    })
    .unwrap();
    assert_eq!(n.buyer_id, signed.alipay_user_id);
    let tq = c
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(tq.trade_status, TradeStatus::TradeSuccess);

    // The same period again cannot charge twice.
    let e = gw(c
        .execute(
            &deduction(&out, "30.00", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
    // Above the agreed single amount.
    let e = gw(c
        .execute(
            &deduction(&unique("SUBPAY"), "30.01", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.BEYOND_PAY_RESTRICTION"));
    // The buyer's balance runs short: refused, nothing created.
    t.sandbox.set_withholding_balance(Some(amt("10.00"))).await;
    let short = unique("SUBPAY");
    let e = gw(c
        .execute(
            &deduction(&short, "20.00", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"));
    assert!(e.verified);
    let e = gw(c
        .execute(&TradeQuery::by_out_trade_no(&short), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_NOT_EXIST"));
    t.sandbox.set_withholding_balance(None).await;

    let plan = c
        .execute(
            &AgreementExecutionPlanModify::new(&agreement_no, date!(2030 - 02 - 20)),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(plan.deduct_time.as_deref(), Some("2030-02-20"));

    // The merchant ends it: a dut_user_unsign notification, then refusals.
    c.execute(
        &UserAgreementUnsign::by_agreement_no(&agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();
    let ended = agreement_notification(&t, &rx.next().await.body);
    assert_eq!(ended.notify_type, AgreementNotifyType::Unsign);
    assert_eq!(ended.status, AgreementStatus::Unsign);
    assert!(ended.unsign_time.is_some());
    let q = c
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Unsign);
    let e = gw(c
        .execute(
            &deduction(&unique("SUBPAY"), "30.00", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.AGREEMENT_STATUS_NOT_NORMAL")
    );
    let e = gw(c
        .execute(
            &deduction(&unique("SUBPAY"), "30.00", "20300101012345678901"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.AGREEMENT_NOT_EXIST"));
    let e = gw(c
        .execute(
            &UserAgreementUnsign::by_agreement_no(&agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("USER_AGREEMENT_NOT_EXIST"));
}

#[tokio::test]
async fn a_declined_agreement_never_exists() {
    let t = spawn_auto().await;
    let rx = Receiver::success().await;
    let external = unique("DECL");
    let page = open_signing_page(&t, &external, &rx.url).await;
    let resp = t.http.post(format!("{page}/decline")).send().await.unwrap();
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("data-status=\"DECLINED\"")
    );
    // Deciding again changes nothing.
    let again = t.http.post(format!("{page}/agree")).send().await.unwrap();
    assert!(
        !again
            .text()
            .await
            .unwrap()
            .contains("data-status=\"NORMAL\"")
    );
    let e = gw(t
        .app
        .client
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("USER_AGREEMENT_NOT_EXIST"));
    assert!(rx.next_within(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn the_buyer_pauses_and_unsigns_from_the_sandbox_page() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let external = unique("BUYER");
    let signed = sign(&t, &external, &rx).await;
    let page = format!("{}/sandbox/agreements/{}", t.base, signed.agreement_no);
    let html = t
        .http
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("id=\"unsign\"") && html.contains("id=\"pause\""),
        "{html}"
    );

    let r = t.http.post(format!("{page}/pause")).send().await.unwrap();
    assert!(r.status().is_redirection());
    let q = c
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Stop);
    let e = gw(c
        .execute(
            &deduction(&unique("P"), "1.00", &signed.agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(
        e.sub_code.as_deref(),
        Some("ACQ.AGREEMENT_STATUS_NOT_NORMAL")
    );

    t.http.post(format!("{page}/resume")).send().await.unwrap();
    c.execute(
        &deduction(&unique("P"), "1.00", &signed.agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();

    let r = t.http.post(format!("{page}/unsign")).send().await.unwrap();
    assert!(r.status().is_redirection());
    let ended = agreement_notification(&t, &rx.next().await.body);
    assert_eq!(ended.notify_type, AgreementNotifyType::Unsign);
    assert_eq!(ended.agreement_no, signed.agreement_no);
    let html = t
        .http
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-status=\"UNSIGN\"") && !html.contains("id=\"unsign\""));
    let again = t.http.post(format!("{page}/unsign")).send().await.unwrap();
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn agreement_notifications_are_retried_on_the_trade_schedule() {
    let t = spawn_auto().await;
    let rx = Receiver::start(&["fail"], "success").await;
    let first_signed = sign(&t, &unique("RETRY"), &rx).await;
    let first = rx.drain_now().await;
    assert!(first.is_empty());
    let second = rx.next().await;
    assert_eq!(
        agreement_notification(&t, &second.body).notify_id,
        first_signed.notify_id
    );
    // The receiver sees the retry before the sandbox records its answer.
    let mut d = None;
    for _ in 0..100 {
        d = t
            .sandbox
            .notifications()
            .await
            .into_iter()
            .find(|d| d.trade_no == first_signed.agreement_no && d.attempts.len() == 2);
        if d.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = d.expect("the agreement's delivery with two attempts");
    assert_eq!(d.event, "dut_user_sign");
    assert_eq!(d.attempts.len(), 2);
    let gap = d.attempts[1].at_ms - d.attempts[0].at_ms;
    // First retry after 4 minutes × time_scale.
    let expected = (240_000.0 * t.sandbox.config().time_scale) as i64;
    assert!(gap >= expected, "{gap} < {expected}");
}

#[tokio::test]
async fn tampered_or_foreign_agreement_notifications_are_refused() {
    let t = spawn_auto().await;
    let rx = Receiver::success().await;
    let external = unique("TAMPER");
    let page = open_signing_page(&t, &external, &rx.url).await;
    t.http.post(format!("{page}/agree")).send().await.unwrap();
    let body = rx.next().await.body;
    let good = agreement_notification(&t, &body);

    let tampered = body.replace("status=NORMAL", "status=UNSIGN");
    assert_ne!(tampered, body);
    assert!(t.app.verifier().verify_body(tampered.as_bytes()).is_err());
    let other_agreement = body.replace(&good.agreement_no, "20300101099999999999");
    assert!(
        t.app
            .verifier()
            .verify_body(other_agreement.as_bytes())
            .is_err()
    );
    // Signed by someone else than the sandbox's "Alipay".
    let forged = alipay::testing::AlipaySigner::new(alipay::AppPrivateKey::generate().unwrap())
        .notification_body(&[
            ("notify_id", "n1"),
            ("notify_type", "dut_user_sign"),
            ("notify_time", "2030-01-01 00:00:00"),
            ("app_id", &t.app.app_id),
            ("agreement_no", &good.agreement_no),
            ("external_agreement_no", &external),
            ("status", "NORMAL"),
        ])
        .unwrap();
    assert!(t.app.verifier().verify_body(forged.as_bytes()).is_err());
    // Genuine, but for another merchant agreement / another app.
    let mismatches = good
        .check_against(&ExpectedAgreement::new(&t.app.app_id, "SOMEONE_ELSES"))
        .unwrap_err();
    assert_eq!(mismatches.len(), 1);
    assert!(
        good.check_against(&ExpectedAgreement::new("2021000000000000", &external))
            .is_err()
    );
}

#[tokio::test]
async fn oauth_code_for_token_once() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let authorize = AuthorizeUrl::new(&t.app.app_id, "https://shop.example/authorized?x=1")
        .endpoint(format!("{}/sandbox/oauth2/publicAppAuthorize.htm", t.base))
        .state("st-42");
    let resp = t.http.get(authorize.to_url()).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let back = reqwest::Url::parse(&location(&resp)).unwrap();
    assert_eq!(back.host_str(), Some("shop.example"));
    let q: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("st-42"));
    assert_eq!(q.get("x").map(String::as_str), Some("1"));
    let code = q.get("auth_code").expect("auth_code").clone();

    let token = c
        .execute(
            &SystemOauthToken::authorization_code(&code),
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(
        token
            .user_id
            .as_deref()
            .is_some_and(|u| u.starts_with("2088"))
    );
    assert!(!token.access_token.is_empty());
    assert!(token.expires_in.is_some_and(|s| s > 0));
    let Some(BuyerId::OpenId(open_id)) = token.buyer() else {
        panic!("an open id");
    };
    // One buyer, one open id per app.
    let code2 = {
        let r = t.http.get(authorize.to_url()).send().await.unwrap();
        let u = reqwest::Url::parse(&location(&r)).unwrap();
        u.query_pairs()
            .find(|(k, _)| k == "auth_code")
            .unwrap()
            .1
            .into_owned()
    };
    let token2 = c
        .execute(
            &SystemOauthToken::authorization_code(&code2),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(token2.open_id.as_deref(), Some(open_id.as_str()));

    // A code works once.
    let e = gw(c
        .execute(
            &SystemOauthToken::authorization_code(&code),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("isv.code-invalid"));
    assert!(e.verified);
    // A refresh token gives new tokens.
    let refresh = token.refresh_token.clone().expect("a refresh token");
    let renewed = c
        .execute(
            &SystemOauthToken::refresh_token(&refresh),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_ne!(renewed.access_token, token.access_token);

    // The in-app bridge's getAuthCode stand-in, and an unknown app.
    let bridge: serde_json::Value = t
        .http
        .post(format!("{}/sandbox/api/oauth/auth-code", t.base))
        .json(&serde_json::json!({"app_id": t.app.app_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code3 = bridge["authCode"].as_str().unwrap();
    c.execute(
        &SystemOauthToken::authorization_code(code3),
        &Default::default(),
    )
    .await
    .unwrap();
    let unknown = t
        .http
        .post(format!("{}/sandbox/api/oauth/auth-code", t.base))
        .json(&serde_json::json!({"app_id": "9999"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let other = AuthorizeUrl::new("9999", "https://shop.example/cb")
        .endpoint(format!("{}/sandbox/oauth2/publicAppAuthorize.htm", t.base));
    let html = t
        .http
        .get(other.to_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("isv.invalid-app-id"), "{html}");
}

#[tokio::test]
async fn the_in_app_signing_link_opens_the_signing_page() {
    let t = spawn_auto().await;
    let external = unique("INAPP");
    let req =
        UserAgreementPageSign::cycle_pay(SCENE, &external, AccessChannel::AlipayApp, monthly());
    let signed = t
        .app
        .alipay
        .sign_request(&req, &Default::default(), t.sandbox.now())
        .unwrap();
    let link = alipay::agreement::app_sign_link(&signed);
    let (_, sign_params) = link.split_once("sign_params=").expect("sign_params");
    let resp = t
        .http
        .get(format!(
            "{}/sandbox/app-sign?sign_params={sign_params}",
            t.base
        ))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert!(location(&resp).starts_with("/sandbox/sign/"));
    let q = t
        .app
        .client
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Temp);
    // A tampered link is refused like a tampered gateway request.
    let tampered = sign_params.replace("INAPP", "INAPX");
    let html = t
        .http
        .get(format!(
            "{}/sandbox/app-sign?sign_params={tampered}",
            t.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("isv.invalid-signature"), "{html}");
}

#[tokio::test]
async fn agreements_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || zhifu_sandbox::SandboxConfig {
        state_dir: Some(dir.path().to_owned()),
        ..auto_config()
    };
    let t = spawn_with(cfg()).await;
    let rx = Receiver::success().await;
    let external = unique("KEEPSUB");
    let signed = sign(&t, &external, &rx).await;
    t.sandbox.shutdown().await;

    let again = zhifu_sandbox::Sandbox::start(cfg()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    let router = again.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = alipay::AlipayClient::new(
        alipay::Alipay::builder(t.app.app_id.clone(), app_key(), again.alipay_public_key())
            .gateway(gateway)
            .build(),
    );
    let q = client
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Normal);
    assert_eq!(q.agreement_no, signed.agreement_no);
    client
        .execute(
            &deduction(&unique("KEEPPAY"), "5.00", &signed.agreement_no),
            &Default::default(),
        )
        .await
        .unwrap();
    again.shutdown().await;
}

#[tokio::test]
async fn the_control_api_lists_agreements_and_sets_the_balance() {
    let t = spawn_auto().await;
    let rx = Receiver::success().await;
    let external = unique("CTL");
    let page = open_signing_page(&t, &external, &rx.url).await;
    let list: serde_json::Value = t
        .http
        .get(format!("{}/sandbox/api/agreements", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["external_agreement_no"], external.as_str());
    assert_eq!(list[0]["status"], "TEMP");
    assert_eq!(list[0]["sign_url"], page.as_str());
    t.http.post(format!("{page}/agree")).send().await.unwrap();
    let agreement_no = agreement_notification(&t, &rx.next().await.body).agreement_no;

    let set = |body: serde_json::Value| {
        t.http
            .put(format!("{}/sandbox/api/withholding-balance", t.base))
            .json(&body)
            .send()
    };
    assert_eq!(
        set(serde_json::json!({"balance": "abc"}))
            .await
            .unwrap()
            .status(),
        400
    );
    assert!(
        set(serde_json::json!({"balance": "5.00"}))
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let c = &t.app.client;
    c.execute(
        &deduction(&unique("CTLPAY"), "5.00", &agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();
    // Spent: the next one is short.
    let e = gw(c
        .execute(
            &deduction(&unique("CTLPAY"), "0.01", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"));
    set(serde_json::json!({"balance": null})).await.unwrap();
    c.execute(
        &deduction(&unique("CTLPAY"), "0.01", &agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();
    let listed = t.sandbox.agreements().await;
    assert_eq!(listed[0].status, "NORMAL");
    assert_eq!(listed[0].deductions, 2);
    assert_eq!(listed[0].deducted_amount, "5.01");
    assert_eq!(listed[0].sign_url, None);
}

#[tokio::test]
async fn an_oauth_code_expires_with_the_sandbox_clock() {
    let t = spawn_explicit().await;
    let code = |t: &TestSandbox| {
        let http = t.http.clone();
        let url = format!("{}/sandbox/api/oauth/auth-code", t.base);
        let app_id = t.app.app_id.clone();
        async move {
            let v: serde_json::Value = http
                .post(url)
                .json(&serde_json::json!({"app_id": app_id}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["authCode"].as_str().unwrap().to_owned()
        }
    };
    let fresh = code(&t).await;
    let stale = code(&t).await;
    t.sandbox.advance(Duration::from_secs(299)).await.unwrap();
    t.app
        .client
        .execute(
            &SystemOauthToken::authorization_code(&fresh),
            &Default::default(),
        )
        .await
        .unwrap();
    t.sandbox.advance(Duration::from_secs(2)).await.unwrap();
    let e = gw(t
        .app
        .client
        .execute(
            &SystemOauthToken::authorization_code(&stale),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("isv.code-invalid"));
}

/// The deduction row of the agreement listing.
async fn listed(t: &TestSandbox, agreement_no: &str) -> zhifu_sandbox::AgreementView {
    t.sandbox
        .agreements()
        .await
        .into_iter()
        .find(|a| a.agreement_no == agreement_no)
        .expect("the agreement is listed")
}

#[tokio::test]
async fn a_rerun_deduction_never_charges_twice() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let signed = sign(&t, &unique("RERUN"), &rx).await;
    let agreement_no = signed.agreement_no.clone();
    t.sandbox.set_withholding_balance(Some(amt("100.00"))).await;

    let out = unique("PERIOD");
    let paid = c
        .execute(&deduction(&out, "30.00", &agreement_no), &opts(&rx.url))
        .await
        .unwrap();
    assert_eq!(
        t.app.notification(&rx.next().await.body).trade_status,
        TradeStatus::TradeSuccess
    );
    // Rerun as is, and rerun with other terms: both answered "already paid".
    for amount in ["30.00", "29.00"] {
        let e = gw(c
            .execute(&deduction(&out, amount, &agreement_no), &opts(&rx.url))
            .await
            .unwrap_err());
        assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
        assert!(e.verified);
    }
    // Still "already paid" once the buyer has paused the agreement: the
    // period's fate comes before the agreement's.
    let page = format!("{}/sandbox/agreements/{agreement_no}", t.base);
    t.http.post(format!("{page}/pause")).send().await.unwrap();
    let e = gw(c
        .execute(&deduction(&out, "30.00", &agreement_no), &opts(&rx.url))
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
    t.http.post(format!("{page}/resume")).send().await.unwrap();

    let row = listed(&t, &agreement_no).await;
    assert_eq!(row.deductions, 1);
    assert_eq!(row.deducted_amount, "30.00");
    let trades: Vec<_> = t
        .sandbox
        .trades()
        .await
        .into_iter()
        .filter(|x| x.out_trade_no == out)
        .collect();
    assert_eq!(trades.len(), 1);
    assert_eq!(trades[0].trade_no, paid.trade_no);
    assert!(rx.next_within(Duration::from_millis(300)).await.is_none());
    // The balance was debited once: 70.00 is left for two more periods and 10.00.
    for _ in 0..2 {
        c.execute(
            &deduction(&unique("PERIOD"), "30.00", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap();
    }
    let e = gw(c
        .execute(
            &deduction(&unique("PERIOD"), "10.01", &agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"));
    c.execute(
        &deduction(&unique("PERIOD"), "10.00", &agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();
    let row = listed(&t, &agreement_no).await;
    assert_eq!(row.deductions, 4);
    assert_eq!(row.deducted_amount, "100.00");
}

#[tokio::test]
async fn a_deduction_refused_for_balance_leaves_the_out_trade_no_free() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let signed = sign(&t, &unique("SHORT"), &rx).await;
    let out = unique("PERIOD");
    t.sandbox.set_withholding_balance(Some(amt("10.00"))).await;
    let e = gw(c
        .execute(
            &deduction(&out, "20.00", &signed.agreement_no),
            &opts(&rx.url),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.BUYER_BALANCE_NOT_ENOUGH"));
    assert!(t.sandbox.trades().await.is_empty());
    assert!(rx.next_within(Duration::from_millis(300)).await.is_none());

    // The buyer tops up; the merchant retries the same period number.
    t.sandbox.set_withholding_balance(Some(amt("25.00"))).await;
    let paid = c
        .execute(
            &deduction(&out, "20.00", &signed.agreement_no),
            &opts(&rx.url),
        )
        .await
        .unwrap();
    assert_eq!(paid.out_trade_no, out);
    let n = t.app.notification(&rx.next().await.body);
    assert_eq!(n.out_trade_no, out);
    let row = listed(&t, &signed.agreement_no).await;
    assert_eq!((row.deductions, row.deducted_amount.as_str()), (1, "20.00"));
    let e = gw(c
        .execute(
            &deduction(&out, "20.00", &signed.agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
    // 5.00 left: the rerun took nothing.
    c.execute(
        &deduction(&unique("PERIOD"), "5.00", &signed.agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_deduction_whose_answer_was_lost_is_found_paid_on_rerun() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let signed = sign(&t, &unique("LOST"), &rx).await;
    let out = unique("PERIOD");
    t.sandbox
        .set_faults(zhifu_sandbox::Faults {
            system_error_rate: 1.0,
            system_error_after_commit: true,
            ..Default::default()
        })
        .await;
    let e = c
        .execute(
            &deduction(&out, "30.00", &signed.agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err();
    assert!(e.is_unknown_outcome());
    t.sandbox.set_faults(zhifu_sandbox::Faults::default()).await;

    let e = gw(c
        .execute(
            &deduction(&out, "30.00", &signed.agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_HAS_SUCCESS"));
    let q = c
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::TradeSuccess);
    let row = listed(&t, &signed.agreement_no).await;
    assert_eq!((row.deductions, row.deducted_amount.as_str()), (1, "30.00"));
}

#[tokio::test]
async fn a_deduction_cannot_reuse_another_apis_unpaid_trade() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let signed = sign(&t, &unique("OTHER"), &rx).await;
    let out = unique("PERIOD");
    c.execute(
        &create_req(no(&out), amt("30.00"), "月度会员 membership"),
        &Default::default(),
    )
    .await
    .unwrap();
    let e = gw(c
        .execute(
            &deduction(&out, "30.00", &signed.agreement_no),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.CONTEXT_INCONSISTENT"));
    let q = c
        .execute(&TradeQuery::by_out_trade_no(&out), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.trade_status, TradeStatus::WaitBuyerPay);
    assert_eq!(listed(&t, &signed.agreement_no).await.deductions, 0);
}

/// Opens a page-pay order on the gateway and returns its cashier URL.
async fn open_cashier(t: &TestSandbox, order: &alipay::TradePagePay, notify_url: &str) -> String {
    let signed = t
        .app
        .alipay
        .sign_request(order, &opts(notify_url), t.sandbox.now())
        .unwrap();
    let resp = t
        .http
        .get(signed.to_get_url(&t.gateway))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    format!("{}{}", t.base, location(&resp))
}

#[tokio::test]
async fn paying_a_pay_and_sign_order_signs_its_agreement() {
    let t = spawn_auto().await;
    let c = &t.app.client;
    let rx = Receiver::success().await;
    let rx_sign = Receiver::success().await;
    let external = unique("PAYSIGN");
    let out = unique("FIRST");
    let mut order = alipay::TradePagePay::new(no(&out), amt("30.00"), "首月会员 first month");
    order.agreement_sign_params = Some(
        alipay::AgreementSignParams::cycle_pay(SCENE, &external, monthly())
            .sign_notify_url(&rx_sign.url),
    );
    let cashier = open_cashier(&t, &order, &rx.url).await;
    // Nothing is signed before the buyer pays.
    let e = gw(c
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("USER_AGREEMENT_NOT_EXIST"));

    let paid = t.http.post(format!("{cashier}/pay")).send().await.unwrap();
    assert!(paid.status().is_success() || paid.status().is_redirection());
    let n = t.app.notification(&rx.next().await.body);
    assert_eq!(n.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(n.out_trade_no, out);

    // The dut_user_sign notification goes to sign_notify_url, not notify_url.
    let signed = agreement_notification(&t, &rx_sign.next().await.body);
    assert_eq!(signed.notify_type, AgreementNotifyType::Sign);
    assert_eq!(signed.status, AgreementStatus::Normal);
    signed
        .check_against(&ExpectedAgreement::new(&t.app.app_id, &external).personal_product_code(PPC))
        .unwrap();
    assert_eq!(signed.alipay_user_id, n.buyer_id);
    assert!(rx.next_within(Duration::from_millis(300)).await.is_none());

    let q = c
        .execute(&query_by_external(&external), &Default::default())
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Normal);
    assert_eq!(q.agreement_no, signed.agreement_no);
    assert_eq!(q.single_quota, Some(amt("30.00")));
    // The next period is an ordinary deduction.
    c.execute(
        &deduction(&unique("NEXT"), "30.00", &signed.agreement_no),
        &Default::default(),
    )
    .await
    .unwrap();
    let row = t
        .sandbox
        .agreements()
        .await
        .into_iter()
        .find(|a| a.agreement_no == signed.agreement_no)
        .unwrap();
    assert_eq!((row.status.as_str(), row.deductions), ("NORMAL", 1));

    // The same external number paid again while in force: paid, not signed twice.
    let mut again = alipay::TradePagePay::new(no(&unique("AGAIN")), amt("30.00"), "again");
    again.agreement_sign_params = Some(alipay::AgreementSignParams::cycle_pay(
        SCENE,
        &external,
        monthly(),
    ));
    let cashier = open_cashier(&t, &again, &rx.url).await;
    t.http.post(format!("{cashier}/pay")).send().await.unwrap();
    rx.next().await;
    let same: Vec<_> = t
        .sandbox
        .agreements()
        .await
        .into_iter()
        .filter(|a| a.external_agreement_no.as_deref() == Some(external.as_str()))
        .collect();
    assert_eq!(same.len(), 1);
    assert!(rx.next_within(Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn pay_and_sign_without_sign_notify_url_notifies_the_orders_url_and_needs_its_fields() {
    let t = spawn_auto().await;
    let rx = Receiver::success().await;
    let external = unique("PAYSIGN");
    let mut order = alipay::TradePagePay::new(no(&unique("FIRST")), amt("9.90"), "trial");
    order.agreement_sign_params = Some(alipay::AgreementSignParams::cycle_pay(
        SCENE,
        &external,
        monthly(),
    ));
    let cashier = open_cashier(&t, &order, &rx.url).await;
    t.http.post(format!("{cashier}/pay")).send().await.unwrap();
    // Both arrive at the order's notify_url (delivered concurrently, in either order).
    let (a, b) = (rx.next().await.body, rx.next().await.body);
    let (sign_body, trade_body) = if a.contains("notify_type=dut_user_sign") {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(
        t.app.notification(&trade_body).trade_status,
        TradeStatus::TradeSuccess
    );
    let signed = agreement_notification(&t, &sign_body);
    assert_eq!(
        signed.external_agreement_no.as_deref(),
        Some(external.as_str())
    );

    // agreement_sign_params without sign_scene: the gateway's error page, no order.
    let bad_out = unique("BAD");
    let mut manual = alipay::TradePagePay::new(no(&bad_out), amt("9.90"), "bad");
    manual.extra.insert(
        "agreement_sign_params".into(),
        serde_json::json!({"personal_product_code": PPC, "external_agreement_no": "X1"}),
    );
    let signed_req = t
        .app
        .alipay
        .sign_request(&manual, &opts(&rx.url), t.sandbox.now())
        .unwrap();
    let html = t
        .http
        .get(signed_req.to_get_url(&t.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("ACQ.INVALID_PARAMETER"), "{html}");
    assert!(html.contains("agreement_sign_params.sign_scene"), "{html}");
    assert!(
        !t.sandbox
            .trades()
            .await
            .iter()
            .any(|x| x.out_trade_no == bad_out)
    );
}
