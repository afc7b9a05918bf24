//! Recurring agreements and user authorization (docs/agreements.md):
//! signed vectors made with the repository's test keys, the agreement
//! notification tamper matrix, and the async client against a scripted
//! gateway on 127.0.0.1:0 that checks our signatures and signs its answers
//! with `alipay::testing::AlipaySigner`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alipay::agreement::{CYCLE_PAY_PERSONAL_PRODUCT_CODE, app_sign_link};
use alipay::oauth::SANDBOX_OAUTH_AUTHORIZE_URL;
use alipay::response::response_node_name;
use alipay::testing::AlipaySigner;
use alipay::{
    AccessChannel, AgreementExecutionPlanModify, AgreementNotification, AgreementNotifyType,
    AgreementSignParams, AgreementStatus, Alipay, AlipayClient, AlipayPublicKey, AppPrivateKey,
    AuthorizeUrl, BuyerId, Charset, Error, ExpectedAgreement, Mismatch, NotifyVerifier, OutTradeNo,
    PeriodRule, PeriodType, RequestOptions, SignType, SystemOauthToken, TradeAgreementPay,
    TradeCreate, TradeNotification, TradePagePay, UserAgreementPageSign, UserAgreementQuery,
    UserAgreementUnsign,
};
use alipay::{Amount, BizContent};
use axum::extract::{Query, State};
use axum::routing::post;
use time::macros::{date, datetime};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");
const APP_ID: &str = "2021000122671080";
const NOW: time::OffsetDateTime = datetime!(2024-01-01 19:04:05 UTC);

fn read(p: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/upstream/{p}")).unwrap()
}

fn app_key() -> AppPrivateKey {
    AppPrivateKey::parse(&read("nodejs-sdk/keys/app-private-key.pem")).unwrap()
}

/// "Alipay", signing with the repository's fixed test key so the vectors
/// below are stable.
fn alipay_signer() -> AlipaySigner {
    AlipaySigner::new(AppPrivateKey::parse(&read("fzlee-alipay/keys/ali_private_key.pem")).unwrap())
}

fn alipay_public() -> AlipayPublicKey {
    AlipayPublicKey::parse(&read("fzlee-alipay/keys/ali_public_key.pem")).unwrap()
}

fn core(gateway: &str) -> Alipay {
    Alipay::builder(APP_ID, app_key(), alipay_public())
        .gateway(gateway)
        .build()
}

/// Compares `actual` with the stage file, or writes it under UPDATE_VECTORS.
fn stage(case: &Path, file: &str, actual: &str) {
    let path = case.join(file);
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_VECTORS=1 once)", path.display()));
    assert_eq!(actual, expected, "stage {} of {}", file, case.display());
}

fn case_dir(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("{DIR}/zhifu/{name}"));
    std::fs::create_dir_all(&p).unwrap();
    p
}

fn amt(s: &str) -> Amount {
    Amount::parse(s).unwrap()
}

fn monthly_rule() -> PeriodRule {
    PeriodRule::new(PeriodType::Month, 1, date!(2024 - 02 - 01), amt("30"))
        .total_amount(amt("360"))
        .total_payments(12)
}

fn signs_with_app_key(signed: &alipay::SignedRequest) {
    app_key()
        .public_key()
        .verify(
            SignType::Rsa2,
            signed.sign_content().as_bytes(),
            signed.get("sign").unwrap(),
        )
        .unwrap();
}

#[test]
fn page_sign_as_url_and_in_app_link() {
    let case = case_dir("agreement_page_sign");
    let a = core("https://openapi-sandbox.dl.alipaydev.com/gateway.do");
    let opts = RequestOptions::new()
        .notify_url("https://shop.example.com/alipay/notify")
        .return_url("https://shop.example.com/subscriptions/done");
    let page = UserAgreementPageSign::cycle_pay(
        "INDUSTRY|DIGITAL_MEDIA",
        "SUB_1001_01",
        AccessChannel::QrCode,
        monthly_rule(),
    )
    .external_logon_id("buyer@example.com");
    assert_eq!(
        serde_json::to_string(&page).unwrap(),
        r#"{"personal_product_code":"CYCLE_PAY_AUTH_P","sign_scene":"INDUSTRY|DIGITAL_MEDIA","access_params":{"channel":"QRCODE"},"external_agreement_no":"SUB_1001_01","product_code":"GENERAL_WITHHOLDING","period_rule_params":{"period_type":"MONTH","period":1,"execute_time":"2024-02-01","single_amount":"30.00","total_amount":"360.00","total_payments":12},"external_logon_id":"buyer@example.com"}"#
    );
    let signed = a.sign_request(&page, &opts, NOW).unwrap();
    assert_eq!(signed.method(), "alipay.user.agreement.page.sign");
    signs_with_app_key(&signed);
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    stage(&case, "get_url.txt", &signed.to_get_url(a.gateway()));

    let in_app = UserAgreementPageSign::cycle_pay(
        "INDUSTRY|DIGITAL_MEDIA",
        "SUB_1001_01",
        AccessChannel::AlipayApp,
        monthly_rule(),
    );
    let signed = a.sign_request(&in_app, &opts, NOW).unwrap();
    signs_with_app_key(&signed);
    let link = app_sign_link(&signed);
    stage(&case, "alipays_link.txt", &link);
    let (prefix, sign_params) = link.split_once("&sign_params=").unwrap();
    assert_eq!(
        prefix,
        "alipays://platformapi/startapp?appId=60000157&appClearTop=false&startMultApp=YES"
    );
    // Decoding `sign_params` once gives back exactly the signed query.
    let decoded: String = form_urlencoded::parse(format!("x={sign_params}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert_eq!(decoded, signed.to_query_string());
    let pairs: Vec<(String, String)> = form_urlencoded::parse(decoded.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(pairs, signed.params());
}

#[test]
fn signing_rules_are_checked_before_anything_is_signed() {
    let a = core("https://openapi-sandbox.dl.alipaydev.com/gateway.do");
    let opts = RequestOptions::new();
    let sign = |p: &UserAgreementPageSign| a.sign_request(p, &opts, NOW).map(|_| ());
    let field = |r: Result<(), Error>| match r {
        Err(Error::Field { field, .. }) => field,
        Err(Error::Amount { .. }) => "amount",
        other => panic!("expected a field error, got {other:?}"),
    };
    let rule = |t, n, d, single: &str| PeriodRule::new(t, n, d, amt(single));
    let with = |r: PeriodRule| {
        UserAgreementPageSign::cycle_pay("INDUSTRY|DIGITAL_MEDIA", "S1", AccessChannel::QrCode, r)
    };
    assert!(
        sign(&with(rule(
            PeriodType::Day,
            7,
            date!(2024 - 01 - 31),
            "9.90"
        )))
        .is_ok()
    );
    assert!(
        sign(&with(rule(
            PeriodType::Month,
            1,
            date!(2024 - 01 - 28),
            "9.90"
        )))
        .is_ok()
    );
    assert_eq!(
        field(sign(&with(rule(
            PeriodType::Month,
            1,
            date!(2024 - 01 - 29),
            "9.90"
        )))),
        "execute_time"
    );
    assert_eq!(
        field(sign(&with(rule(
            PeriodType::Day,
            0,
            date!(2024 - 01 - 02),
            "9.90"
        )))),
        "period"
    );
    assert_eq!(
        field(sign(&with(rule(
            PeriodType::Day,
            7,
            date!(2024 - 01 - 02),
            "0"
        )))),
        "amount"
    );
    assert_eq!(
        field(sign(&with(
            rule(PeriodType::Day, 7, date!(2024 - 01 - 02), "10").total_amount(amt("9.99"))
        ))),
        "total_amount"
    );
    assert_eq!(
        field(sign(&with(
            rule(PeriodType::Day, 7, date!(2024 - 01 - 02), "10").total_payments(0)
        ))),
        "total_payments"
    );
    let no_rule = UserAgreementPageSign::new(
        CYCLE_PAY_PERSONAL_PRODUCT_CODE,
        "INDUSTRY|DIGITAL_MEDIA",
        AccessChannel::QrCode,
    );
    assert_eq!(field(sign(&no_rule)), "period_rule_params");
    let default_scene = UserAgreementPageSign::cycle_pay(
        "DEFAULT|DEFAULT",
        "S1",
        AccessChannel::QrCode,
        monthly_rule(),
    );
    assert_eq!(field(sign(&default_scene)), "sign_scene");
    for bad in ["", "has space", "订阅", &"x".repeat(33)] {
        let p = UserAgreementPageSign::cycle_pay(
            "INDUSTRY|DIGITAL_MEDIA",
            bad,
            AccessChannel::QrCode,
            monthly_rule(),
        );
        assert_eq!(field(sign(&p)), "external_agreement_no", "{bad:?}");
    }
    let validity = with(monthly_rule()).sign_validity_period("12x");
    assert_eq!(field(sign(&validity)), "sign_validity_period");
    assert!(sign(&with(monthly_rule()).sign_validity_period("12m")).is_ok());

    let r = monthly_rule();
    assert!(r.allows(amt("30")));
    assert!(r.allows(amt("0.01")));
    assert!(!r.allows(amt("30.01")));
    assert!(!r.allows(Amount::ZERO));
}

#[test]
fn pay_and_sign_and_deduction_biz_content() {
    let a = core("https://openapi-sandbox.dl.alipaydev.com/gateway.do");
    let sign_params =
        AgreementSignParams::cycle_pay("INDUSTRY|DIGITAL_MEDIA", "SUB_1001_01", monthly_rule())
            .access_channel(AccessChannel::QrCode)
            .sign_notify_url("https://shop.example.com/alipay/agreement");
    let order = TradePagePay::new(
        OutTradeNo::new("SUB_1001_01_P1").unwrap(),
        amt("30"),
        "Plan",
    )
    .agreement_sign_params(sign_params.clone());
    let signed = a.sign_request(&order, &RequestOptions::new(), NOW).unwrap();
    let biz: serde_json::Value = serde_json::from_str(signed.get("biz_content").unwrap()).unwrap();
    assert_eq!(
        biz["agreement_sign_params"],
        serde_json::json!({
            "personal_product_code": "CYCLE_PAY_AUTH_P",
            "sign_scene": "INDUSTRY|DIGITAL_MEDIA",
            "external_agreement_no": "SUB_1001_01",
            "product_code": "GENERAL_WITHHOLDING",
            "access_params": {"channel": "QRCODE"},
            "period_rule_params": {"period_type": "MONTH", "period": 1, "execute_time": "2024-02-01",
                "single_amount": "30.00", "total_amount": "360.00", "total_payments": 12},
            "sign_notify_url": "https://shop.example.com/alipay/agreement"
        })
    );
    // A bad rule inside the payment stops the payment from being signed.
    let bad = TradePagePay::new(OutTradeNo::new("SUB_1").unwrap(), amt("30"), "Plan")
        .agreement_sign_params(AgreementSignParams::cycle_pay(
            "INDUSTRY|DIGITAL_MEDIA",
            "SUB_1",
            PeriodRule::new(PeriodType::Month, 1, date!(2024 - 01 - 31), amt("30")),
        ));
    assert!(matches!(
        a.sign_request(&bad, &RequestOptions::new(), NOW),
        Err(Error::Field {
            field: "execute_time",
            ..
        })
    ));

    let charge = TradeAgreementPay::new(
        OutTradeNo::new("SUB_1001_01_P2").unwrap(),
        amt("30"),
        "Plan, period 2",
        "20245322000000000001",
    );
    assert_eq!(
        serde_json::to_string(&charge).unwrap(),
        r#"{"out_trade_no":"SUB_1001_01_P2","total_amount":"30.00","subject":"Plan, period 2","product_code":"GENERAL_WITHHOLDING","agreement_params":{"agreement_no":"20245322000000000001"}}"#
    );
    assert_eq!(charge.method(), "alipay.trade.pay");
    let no_agreement = TradeAgreementPay::new(OutTradeNo::new("P").unwrap(), amt("1"), "x", "");
    assert!(no_agreement.validate().is_err());
}

#[test]
fn oauth_token_sends_code_at_top_level() {
    let case = case_dir("oauth_token");
    let a = core("https://openapi-sandbox.dl.alipaydev.com/gateway.do");
    let req = SystemOauthToken::authorization_code("4b203fe6c11548bcabd8da5bb087a83b");
    let signed = a.sign_request(&req, &RequestOptions::new(), NOW).unwrap();
    assert_eq!(signed.get("method"), Some("alipay.system.oauth.token"));
    assert_eq!(signed.get("grant_type"), Some("authorization_code"));
    assert_eq!(signed.get("code"), Some("4b203fe6c11548bcabd8da5bb087a83b"));
    assert_eq!(signed.get("biz_content"), None);
    assert!(
        signed
            .sign_content()
            .contains("&code=4b203fe6c11548bcabd8da5bb087a83b&")
    );
    signs_with_app_key(&signed);
    stage(&case, "sign_content.txt", &signed.sign_content());
    stage(&case, "sign.b64", signed.get("sign").unwrap());
    let (query, body) = signed.query_and_body();
    assert!(!query.contains("code="), "{query}");
    assert_eq!(
        body,
        "grant_type=authorization_code&code=4b203fe6c11548bcabd8da5bb087a83b"
    );
    // The code is a credential: Debug leaves it out.
    assert!(!format!("{req:?}").contains("4b203fe6"));

    let refresh = SystemOauthToken::refresh_token("201208134b203fe6c11548bcabd8da5bb087a83b");
    let signed = a
        .sign_request(&refresh, &RequestOptions::new(), NOW)
        .unwrap();
    assert_eq!(signed.get("grant_type"), Some("refresh_token"));
    assert_eq!(
        signed.get("refresh_token"),
        Some("201208134b203fe6c11548bcabd8da5bb087a83b")
    );
    assert_eq!(signed.get("code"), None);
    for bad in ["", " ", "a b", "码"] {
        assert!(
            a.sign_request(
                &SystemOauthToken::authorization_code(bad),
                &RequestOptions::new(),
                NOW
            )
            .is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn authorize_url_is_built_for_auth_base() {
    let url = AuthorizeUrl::new(
        APP_ID,
        "https://shop.example.com/checkout/authorize?next=/a b",
    )
    .state("st4te-1")
    .to_url();
    assert_eq!(
        url,
        "https://openauth.alipay.com/oauth2/publicAppAuthorize.htm?app_id=2021000122671080&scope=auth_base&redirect_uri=https%3A%2F%2Fshop.example.com%2Fcheckout%2Fauthorize%3Fnext%3D%2Fa+b&state=st4te-1"
    );
    let sandbox = AuthorizeUrl::new(APP_ID, "https://x.test/cb")
        .endpoint(SANDBOX_OAUTH_AUTHORIZE_URL)
        .scope("auth_user")
        .to_url();
    assert!(sandbox.starts_with(
        "https://openauth-sandbox.dl.alipaydev.com/oauth2/publicAppAuthorize.htm?app_id="
    ));
    assert!(sandbox.contains("&scope=auth_user&"));
    assert!(!sandbox.contains("state="));
}

/// A `dut_user_sign` notification in the shape public integrations log.
fn sign_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("notify_id", "2024020100222000000000000000000001"),
        ("notify_time", "2024-02-01 10:00:05"),
        ("notify_type", "dut_user_sign"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", APP_ID),
        ("auth_app_id", APP_ID),
        ("agreement_no", "20245322000000000001"),
        ("external_agreement_no", "SUB_1001_01"),
        ("personal_product_code", "CYCLE_PAY_AUTH_P"),
        ("sign_scene", "INDUSTRY|DIGITAL_MEDIA"),
        ("status", "NORMAL"),
        ("alipay_user_id", "2088102146225135"),
        ("alipay_logon_id", "159******20"),
        ("sign_time", "2024-02-01 10:00:00"),
        ("valid_time", "2024-02-01 10:00:00"),
        ("invalid_time", "2115-02-01 00:00:00"),
    ]
}

fn with(
    fields: &[(&'static str, &'static str)],
    k: &'static str,
    v: &'static str,
) -> Vec<(&'static str, &'static str)> {
    let mut f: Vec<_> = fields
        .iter()
        .filter(|(key, _)| *key != k)
        .copied()
        .collect();
    f.push((k, v));
    f
}

fn typed(body: &str) -> Result<AgreementNotification, Error> {
    let verified = NotifyVerifier::new(alipay_public()).verify_body(body.as_bytes())?;
    AgreementNotification::from_verified(&verified)
}

#[test]
fn agreement_notification_is_verified_typed_and_checked() {
    let signer = alipay_signer();
    let case = case_dir("agreement_notification");
    let body = signer.notification_body(&sign_fields()).unwrap();
    stage(&case, "body.txt", &body);
    let n = typed(&body).unwrap();
    assert_eq!(n.notify_type, AgreementNotifyType::Sign);
    assert_eq!(n.status, AgreementStatus::Normal);
    assert!(n.status.is_active());
    assert_eq!(n.agreement_no, "20245322000000000001");
    assert_eq!(n.external_agreement_no.as_deref(), Some("SUB_1001_01"));
    assert_eq!(n.alipay_user_id.as_deref(), Some("2088102146225135"));
    assert_eq!(n.notify_time, datetime!(2024-02-01 02:00:05 UTC));
    let expected =
        ExpectedAgreement::new(APP_ID, "SUB_1001_01").personal_product_code("CYCLE_PAY_AUTH_P");
    n.check_against(&expected).unwrap();

    // Unsign, and the older field names (`external_sign_no`, `product_code`, `scene`).
    let unsign: Vec<_> = sign_fields()
        .into_iter()
        .map(|(k, v)| match k {
            "notify_type" => (k, "dut_user_unsign"),
            "status" => (k, "UNSIGN"),
            "external_agreement_no" => ("external_sign_no", v),
            "personal_product_code" => ("product_code", v),
            "sign_scene" => ("scene", v),
            _ => (k, v),
        })
        .collect();
    let n = typed(
        &signer
            .notification_body(&with(&unsign, "unsign_time", "2024-05-01 08:00:00"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(n.notify_type, AgreementNotifyType::Unsign);
    assert_eq!(n.status, AgreementStatus::Unsign);
    assert_eq!(n.sign_scene.as_deref(), Some("INDUSTRY|DIGITAL_MEDIA"));
    assert_eq!(n.unsign_time.as_deref(), Some("2024-05-01 08:00:00"));
    n.check_against(&expected).unwrap();
}

#[test]
fn tampered_or_foreign_agreement_notifications_are_refused() {
    let signer = alipay_signer();
    let body = signer.notification_body(&sign_fields()).unwrap();
    let expected = ExpectedAgreement::new(APP_ID, "SUB_1001_01");

    // A changed field breaks the signature, whichever field it is.
    for (from, to) in [
        ("status=NORMAL", "status=UNSIGN"),
        (
            "external_agreement_no=SUB_1001_01",
            "external_agreement_no=SUB_1001_02",
        ),
        (
            "agreement_no=20245322000000000001",
            "agreement_no=20245322000000000002",
        ),
        ("notify_type=dut_user_sign", "notify_type=dut_user_unsign"),
    ] {
        assert!(body.contains(from), "{from}");
        let tampered = body.replacen(from, to, 1);
        assert!(matches!(typed(&tampered), Err(Error::BadSignature)), "{to}");
    }
    // An added field, a dropped signature, another key.
    assert!(matches!(
        typed(&format!("{body}&single_quota=9999")),
        Err(Error::BadSignature)
    ));
    let unsigned: String = body
        .split('&')
        .filter(|kv| !kv.starts_with("sign="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(matches!(typed(&unsigned), Err(Error::MissingSignature)));
    let foreign = AlipaySigner::new(app_key())
        .notification_body(&sign_fields())
        .unwrap();
    assert!(matches!(typed(&foreign), Err(Error::BadSignature)));

    // Genuinely signed, but not for this merchant or this agreement.
    let other_app = typed(
        &signer
            .notification_body(&with(&sign_fields(), "app_id", "2021000199999999"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        other_app.check_against(&expected).unwrap_err(),
        vec![Mismatch::AppId {
            expected: APP_ID.into(),
            got: "2021000199999999".into()
        }]
    );
    let other_no = typed(
        &signer
            .notification_body(&with(&sign_fields(), "external_agreement_no", "SUB_9999"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        other_no.check_against(&expected).unwrap_err(),
        vec![Mismatch::ExternalAgreementNo {
            expected: "SUB_1001_01".into(),
            got: "SUB_9999".into()
        }]
    );
    let no_number: Vec<_> = sign_fields()
        .into_iter()
        .filter(|(k, _)| *k != "external_agreement_no")
        .collect();
    let missing = typed(&signer.notification_body(&no_number).unwrap()).unwrap();
    assert!(matches!(
        missing.check_against(&expected).unwrap_err()[..],
        [Mismatch::ExternalAgreementNo { ref got, .. }] if got.is_empty()
    ));
    let other_product = typed(
        &signer
            .notification_body(&with(
                &sign_fields(),
                "personal_product_code",
                "GENERAL_WITHHOLDING_P",
            ))
            .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        other_product
            .check_against(&expected.personal_product_code("CYCLE_PAY_AUTH_P"))
            .unwrap_err()[..],
        [Mismatch::PersonalProductCode { .. }]
    ));
    let both = typed(
        &signer
            .notification_body(&with(
                &with(&sign_fields(), "app_id", "2021000199999999"),
                "external_agreement_no",
                "SUB_9999",
            ))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(both.check_against(&expected).unwrap_err().len(), 2);

    // A trade notification is not an agreement notification, nor the reverse.
    let trade = signer
        .notification_body(&[
            ("notify_id", "n1"),
            ("notify_time", "2024-02-01 10:00:05"),
            ("notify_type", "trade_status_sync"),
            ("app_id", APP_ID),
            ("trade_no", "2024020122001400000000000001"),
            ("out_trade_no", "SUB_1001_01_P1"),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", "30.00"),
            ("status", "NORMAL"),
            ("agreement_no", "20245322000000000001"),
        ])
        .unwrap();
    assert!(matches!(typed(&trade), Err(Error::MalformedForm(_))));
    let verified = NotifyVerifier::new(alipay_public())
        .verify_body(body.as_bytes())
        .unwrap();
    assert!(TradeNotification::from_verified(&verified).is_err());
    // An unknown status is refused rather than guessed.
    assert!(matches!(
        typed(
            &signer
                .notification_body(&with(&sign_fields(), "status", "PAUSED"))
                .unwrap()
        ),
        Err(Error::MalformedForm(_))
    ));
}

/// One request's parameters, query and body together.
type Params = Vec<(String, String)>;

/// The scripted gateway: checks the app's signature and answers each
/// method with a node signed by "Alipay".
#[derive(Clone)]
struct Gateway {
    signer: Arc<AlipaySigner>,
    app_public: AlipayPublicKey,
    seen: Arc<std::sync::Mutex<Vec<Params>>>,
}

async fn gateway(
    State(g): State<Gateway>,
    Query(q): Query<Vec<(String, String)>>,
    body: String,
) -> String {
    let mut all = q.clone();
    all.extend(form_urlencoded::parse(body.as_bytes()).into_owned());
    g.seen.lock().unwrap().push(all.clone());
    let get = |k: &str| {
        all.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let content =
        alipay::sign::request_sign_content(all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let method = get("method");
    let biz: serde_json::Value = serde_json::from_str(&get("biz_content")).unwrap_or_default();
    let (node, text) = if g
        .app_public
        .verify(SignType::Rsa2, content.as_bytes(), &get("sign"))
        .is_err()
    {
        (
            response_node_name(&method),
            r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}"#
                .to_owned(),
        )
    } else {
        match method.as_str() {
            "alipay.system.oauth.token" if get("code") == "used-code" => (
                "error_response".to_owned(),
                r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.code-invalid","sub_msg":"授权码code无效"}"#.to_owned(),
            ),
            "alipay.system.oauth.token" => (
                response_node_name(&method),
                // Success carries no `code` at all for this API.
                r#"{"user_id":"2088102146225135","open_id":"074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5","access_token":"authusrB1a2b3c","expires_in":1296000,"re_expires_in":"2592000","refresh_token":"authusrR9x8y7","auth_start":"2024-01-02 03:04:05"}"#.to_owned(),
            ),
            "alipay.user.agreement.query" => (
                response_node_name(&method),
                format!(
                    r#"{{"code":"10000","msg":"Success","agreement_no":"20245322000000000001","status":"NORMAL","external_agreement_no":"{}","personal_product_code":"CYCLE_PAY_AUTH_P","sign_scene":"INDUSTRY|DIGITAL_MEDIA","principal_id":"2088102146225135","single_quota":"30.00","sign_time":"2024-02-01 10:00:00"}}"#,
                    biz["external_agreement_no"].as_str().unwrap_or("SUB_1001_01")
                ),
            ),
            "alipay.user.agreement.unsign" => (response_node_name(&method), r#"{"code":"10000","msg":"Success"}"#.to_owned()),
            "alipay.user.agreement.executionplan.modify" => (
                response_node_name(&method),
                format!(
                    r#"{{"code":"10000","msg":"Success","agreement_no":"{}","deduct_time":"{}"}}"#,
                    biz["agreement_no"].as_str().unwrap_or_default(),
                    biz["deduct_time"].as_str().unwrap_or_default()
                ),
            ),
            "alipay.trade.pay" if biz["product_code"] == "GENERAL_WITHHOLDING" => (
                response_node_name(&method),
                format!(
                    r#"{{"code":"10000","msg":"Success","trade_no":"2024030122001400000000000002","out_trade_no":"{}","total_amount":"{}","buyer_user_id":"2088102146225135","gmt_payment":"2024-03-01 09:00:00"}}"#,
                    biz["out_trade_no"].as_str().unwrap_or_default(),
                    biz["total_amount"].as_str().unwrap_or_default()
                ),
            ),
            _ => (response_node_name(&method), r#"{"code":"40004","msg":"Business Failed","sub_code":"isv.invalid-method"}"#.to_owned()),
        }
    };
    g.signer
        .sign_response(&node, &text, SignType::Rsa2, Charset::Utf8)
        .unwrap()
}

async fn start() -> (AlipayClient, Gateway) {
    let state = Gateway {
        signer: Arc::new(alipay_signer()),
        app_public: app_key().public_key(),
        seen: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/gateway.do", post(gateway))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (
        AlipayClient::new(core(&format!("http://{addr}/gateway.do"))),
        state,
    )
}

#[tokio::test]
async fn oauth_token_exchange_through_the_client() {
    let (client, gw) = start().await;
    let opts = RequestOptions::new();
    let token = client
        .execute(
            &SystemOauthToken::authorization_code("4b203fe6c11548bcabd8da5bb087a83b"),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(token.user_id.as_deref(), Some("2088102146225135"));
    assert_eq!(token.expires_in, Some(1_296_000));
    assert_eq!(token.re_expires_in, Some(2_592_000));
    let buyer = token.buyer().unwrap();
    assert_eq!(
        buyer,
        BuyerId::OpenId("074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5".into())
    );
    assert!(
        !format!("{token:?}").contains("authusr"),
        "tokens stay out of Debug"
    );
    {
        let seen = gw.seen.lock().unwrap();
        let sent = seen.last().unwrap();
        assert!(
            sent.iter()
                .any(|(k, v)| k == "grant_type" && v == "authorization_code")
        );
        assert!(!sent.iter().any(|(k, _)| k == "biz_content"));
    }
    // The id goes on the in-app trade as `buyer_open_id`, with `op_app_id`.
    let create = TradeCreate::new(OutTradeNo::new("JSAPI_1").unwrap(), amt("1"), "x")
        .product_code("JSAPI_PAY")
        .op_app_id("2021000122600000")
        .buyer(buyer);
    let biz = serde_json::to_value(&create).unwrap();
    assert_eq!(
        biz["buyer_open_id"],
        "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
    );
    assert_eq!(biz["op_app_id"], "2021000122600000");
    assert!(biz.get("buyer_id").is_none());

    // A spent code: a signed `error_response`, reported verified.
    let e = client
        .execute(&SystemOauthToken::authorization_code("used-code"), &opts)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Gateway(g) if g.verified && g.sub_code.as_deref() == Some("isv.code-invalid")),
        "{e:?}"
    );
}

#[tokio::test]
async fn agreement_calls_through_the_client() {
    let (client, gw) = start().await;
    let opts = RequestOptions::new();
    let q = client
        .execute(
            &UserAgreementQuery::by_external_agreement_no(
                CYCLE_PAY_PERSONAL_PRODUCT_CODE,
                "INDUSTRY|DIGITAL_MEDIA",
                "SUB_1001_01",
            ),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(q.status, AgreementStatus::Normal);
    assert_eq!(q.agreement_no, "20245322000000000001");
    assert_eq!(q.single_quota, Some(amt("30")));
    assert_eq!(q.external_agreement_no.as_deref(), Some("SUB_1001_01"));
    {
        let seen = gw.seen.lock().unwrap();
        let biz = &seen
            .last()
            .unwrap()
            .iter()
            .find(|(k, _)| k == "biz_content")
            .unwrap()
            .1;
        assert_eq!(
            biz,
            r#"{"personal_product_code":"CYCLE_PAY_AUTH_P","sign_scene":"INDUSTRY|DIGITAL_MEDIA","external_agreement_no":"SUB_1001_01"}"#
        );
    }

    let plan = client
        .execute(
            &AgreementExecutionPlanModify::new("20245322000000000001", date!(2024 - 03 - 05))
                .memo("moved by the buyer"),
            &opts,
        )
        .await
        .unwrap();
    assert_eq!(plan.deduct_time.as_deref(), Some("2024-03-05"));

    let charge = TradeAgreementPay::new(
        OutTradeNo::new("SUB_1001_01_P2").unwrap(),
        amt("30"),
        "Plan, period 2",
        "20245322000000000001",
    );
    let paid = client.execute(&charge, &opts).await.unwrap();
    assert_eq!(paid.out_trade_no, "SUB_1001_01_P2");
    assert_eq!(paid.total_amount, amt("30"));

    client
        .execute(
            &UserAgreementUnsign::by_agreement_no("20245322000000000001"),
            &opts,
        )
        .await
        .unwrap();
    {
        let seen = gw.seen.lock().unwrap();
        let biz = &seen
            .last()
            .unwrap()
            .iter()
            .find(|(k, _)| k == "biz_content")
            .unwrap()
            .1;
        assert_eq!(biz, r#"{"agreement_no":"20245322000000000001"}"#);
    }
    // Lookups are checked like everything else before signing.
    assert!(matches!(
        client
            .execute(&UserAgreementQuery::by_agreement_no("no such"), &opts)
            .await,
        Err(Error::Field {
            field: "agreement_no",
            ..
        })
    ));
}
