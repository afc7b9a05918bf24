//! A monthly subscription, offline: the signing page URL and the in-app
//! link, the `dut_user_sign` notification verified and matched, and the
//! first period's deduction signed.
//! Run: `cargo run -p alipay --example subscription`.
//!
//! A generated key stands in for Alipay's and signs the notification the
//! way Alipay does (RSA2 over the sorted `k=v` pairs without `sign` and
//! `sign_type`).

use alipay::agreement::app_sign_link;
use alipay::{
    AccessChannel, AgreementNotification, Alipay, Amount, AppPrivateKey, ExpectedAgreement,
    NotifyVerifier, OutTradeNo, PeriodRule, PeriodType, RequestOptions, SignType,
    TradeAgreementPay, UserAgreementPageSign,
};

const APP_ID: &str = "2021000122671080";
const SCENE: &str = "INDUSTRY|DIGITAL_MEDIA";

fn main() -> Result<(), alipay::Error> {
    let app_key = AppPrivateKey::generate()?;
    let alipay_side = AppPrivateKey::generate()?;
    let alipay = Alipay::builder(APP_ID, app_key, alipay_side.public_key())
        .gateway(alipay::SANDBOX_GATEWAY)
        .build();
    let now = time::OffsetDateTime::now_utc();
    let opts = RequestOptions::new().notify_url("https://shop.example.com/alipay/notify");

    // 9.90 a month from 2027-01-05, twelve times at most.
    let first = time::macros::date!(2027 - 01 - 05);
    let rule =
        PeriodRule::new(PeriodType::Month, 1, first, Amount::parse("9.90")?).total_payments(12);
    let external_no = "SUB_42";

    let page =
        UserAgreementPageSign::cycle_pay(SCENE, external_no, AccessChannel::QrCode, rule.clone());
    let signed = alipay.sign_request(&page, &opts, now)?;
    println!(
        "PC: send the buyer to\n{}\n",
        signed.to_get_url(alipay.gateway())
    );
    let in_app = UserAgreementPageSign::cycle_pay(
        SCENE,
        external_no,
        AccessChannel::AlipayApp,
        rule.clone(),
    );
    println!(
        "In the Alipay app: open\n{}\n",
        app_sign_link(&alipay.sign_request(&in_app, &opts, now)?)
    );

    // What Alipay posts once the buyer has signed.
    let mut fields = vec![
        ("agreement_no", "20275322000000000042"),
        ("alipay_user_id", "2088102146225135"),
        ("app_id", APP_ID),
        ("external_agreement_no", external_no),
        ("notify_id", "2027010500222100000000000000000042"),
        ("notify_time", "2027-01-05 10:00:00"),
        ("notify_type", "dut_user_sign"),
        ("personal_product_code", "CYCLE_PAY_AUTH_P"),
        ("sign_scene", SCENE),
        ("status", "NORMAL"),
    ];
    fields.sort();
    let content = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sign = alipay_side.sign(SignType::Rsa2, content.as_bytes())?;
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &fields {
        body.append_pair(k, v);
    }
    body.append_pair("sign_type", "RSA2")
        .append_pair("sign", &sign);
    let body = body.finish();

    let verifier = NotifyVerifier::new(alipay_side.public_key());
    let notification =
        AgreementNotification::from_verified(&verifier.verify_body(body.as_bytes())?)?;
    if let Err(mismatches) =
        notification.check_against(&ExpectedAgreement::new(APP_ID, external_no))
    {
        println!("ignoring the notification: {mismatches:?}");
        return Ok(());
    }
    println!(
        "agreement {} is {:?}: store it, answer `success`",
        notification.agreement_no, notification.status
    );

    // Period 1: the order number comes from agreement + period, so a rerun
    // of the scheduled pass charges nothing twice.
    let amount = Amount::parse("9.90")?;
    assert!(rule.allows(amount));
    let charge = TradeAgreementPay::new(
        OutTradeNo::new(format!("{external_no}_P1"))?,
        amount,
        "Monthly plan, period 1",
        notification.agreement_no.clone(),
    );
    let signed = alipay.sign_request(&charge, &opts, now)?;
    println!(
        "\ndeduction biz_content: {}",
        signed.get("biz_content").unwrap_or_default()
    );
    Ok(())
}
