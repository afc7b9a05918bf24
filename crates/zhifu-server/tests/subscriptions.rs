//! Subscriptions end to end (issue 13): the real server with the real
//! sandbox on one port, a fresh database per test, on SQLite and (with
//! `ZHIFU_TEST_DATABASE_URL`) PostgreSQL. The buyer signs on the sandbox's
//! signing page, the signed `dut_user_sign` notification activates the
//! subscription, the reconcile pass charges each period as the clocks
//! advance, a refused charge is retried, and the buyer's unsign ends it.
//! Agreement notifications that are forged, foreign or about another
//! agreement change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use zhifu_store::Store;
use zhifu_store::testing::TestDatabase;

zhifu_store::backend_tests!(
    sign_charge_three_periods_retry_then_the_buyer_unsigns,
    concurrent_passes_charge_a_period_once,
    refused_charges_are_retried_then_past_due,
    a_lost_unsign_is_found_when_the_charge_is_refused,
    merchant_cancel_unsigns_at_alipay,
    agreement_notifications_tamper_matrix,
    create_is_validated_and_idempotent,
);

const DAY: Duration = Duration::from_secs(24 * 3600);

fn plan() -> Value {
    json!({
        "subject": "Pro plan 专业版",
        "amount": "30.00",
        "period": {"unit": "day", "every": 30},
        "max_periods": 12,
        "metadata": {"customer": "c_42"},
    })
}

/// One reconcile pass over rows of any age, at the clocks' current time.
async fn pass(app: &TestApp) -> zhifu_server::ReconcileReport {
    let opts = zhifu_server::ReconcileOptions {
        min_age: Duration::ZERO,
        ..Default::default()
    };
    zhifu_server::jobs::reconcile::run_pass(&app.state, &opts).await
}

/// Both clocks (ours and the sandbox's) move by `d`.
async fn advance(app: &TestApp, d: Duration) {
    app.clock.advance(d);
    app.sandbox().advance(d).await.unwrap();
}

async fn subscription(app: &TestApp, id: &str) -> Value {
    let r = app
        .api("GET", &format!("/v1/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

/// Creates a subscription and has the buyer agree on the signing page;
/// the `dut_user_sign` notification is delivered. Returns the subscription
/// as created.
async fn signed(app: &TestApp) -> Value {
    let r = app.api("POST", "/v1/subscriptions", Some(plan())).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let sub = r.body;
    assert_eq!(sub["status"], "pending_signature");
    let url = s(&sub["sign"], "url");
    assert!(url.starts_with(&app.url("/gateway.do?")), "{url}");
    assert!(url.contains("alipay.user.agreement.page.sign"), "{url}");
    assert!(s(&sub["sign"], "form_html").contains("<form"));
    agree(app, url).await;
    sub
}

/// The buyer opens the signing URL like a browser and presses Agree; the
/// sandbox's notification is then delivered.
async fn agree(app: &TestApp, url: &str) {
    let r = open_in_browser(app, url).await;
    let page = app.url(
        r.headers()
            .get("location")
            .expect("the gateway redirects to the signing page")
            .to_str()
            .unwrap(),
    );
    assert!(page.contains("/sandbox/sign/"), "{page}");
    let html = app
        .http
        .get(&page)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"agree\""), "{html}");
    let done = app.http.post(format!("{page}/agree")).send().await.unwrap();
    assert_eq!(done.status(), 200);
    app.deliver_due().await;
}

/// `(type, period)` of every webhook the receiver accepted, in order.
fn webhook_types(rx: &Receiver) -> Vec<(String, Option<i64>)> {
    rx.deliveries()
        .iter()
        .filter(|d| d.answered == 200)
        .map(|d| {
            let v: Value = serde_json::from_slice(&d.body).unwrap();
            (
                v["type"].as_str().unwrap().to_owned(),
                v["data"]["period"].as_i64(),
            )
        })
        .filter(|(t, _)| t.starts_with("subscription."))
        .collect()
}

async fn sign_charge_three_periods_retry_then_the_buyer_unsigns(db: TestDatabase) {
    let rx = Receiver::start(ReceiverMode::Accept).await;
    let app = spawn_app(
        db,
        Options {
            webhook: Some(webhook_config(&rx.url, 5)),
            ..Options::default()
        },
    )
    .await;
    let created = signed(&app).await;
    let id = s(&created, "id");
    let sub = subscription(&app, id).await;
    assert_eq!(sub["status"], "active", "{sub}");
    let agreement_no = s(&sub, "agreement_no").to_owned();
    assert!(
        sub.get("sign").is_none(),
        "no signing parameters once signed: {sub}"
    );
    assert_eq!(sub["next_charge_date"], created["first_charge_date"]);

    // Period 1 is due today: the pass charges it, once.
    let r = pass(&app).await;
    assert_eq!(r.subscription_periods_charged, 1, "{r:?}");
    let r = pass(&app).await;
    assert_eq!(r.subscription_periods_charged, 0, "not due again: {r:?}");
    let sub = subscription(&app, id).await;
    assert_eq!(sub["periods_charged"], 1, "{sub}");
    let first = &sub["charges"][0];
    assert_eq!(first["status"], "paid", "{sub}");
    assert_eq!(first["total_amount"], "30.00");
    assert_eq!(first["subscription_period"], 1);
    let ext = s(&sub, "external_agreement_no");
    assert_eq!(first["out_trade_no"], format!("{ext}P1"));
    assert_eq!(first["metadata"]["subscription_id"], id);
    // The charge is an ordinary order of the merchant API, paid on the
    // deduction's signed answer (its audit record says so).
    let order = app.order(s(first, "id")).await;
    assert_eq!(order["status"], "paid");
    let records = app.store.list_notifications(s(first, "id")).await.unwrap();
    assert!(
        records
            .iter()
            .any(|n| n.source == "deduction" && n.outcome == "applied"),
        "{records:?}"
    );

    // Period 2, thirty days later.
    advance(&app, 30 * DAY).await;
    assert_eq!(pass(&app).await.subscription_periods_charged, 1);

    // Period 3: the buyer's balance is short; refused, then retried a day later.
    app.sandbox()
        .set_withholding_balance(Some("10.00".parse().unwrap()))
        .await;
    advance(&app, 30 * DAY).await;
    let r = pass(&app).await;
    assert_eq!(
        (
            r.subscription_periods_charged,
            r.subscription_charges_failed
        ),
        (0, 1),
        "{r:?}"
    );
    let sub = subscription(&app, id).await;
    assert_eq!(sub["status"], "active", "{sub}");
    assert_eq!(sub["failed_attempts"], 1, "{sub}");
    assert_eq!(sub["charges"][0]["status"], "pending", "{sub}");
    assert_eq!(
        pass(&app).await.subscription_charges_failed,
        0,
        "retry not due yet"
    );
    app.sandbox().set_withholding_balance(None).await;
    advance(&app, DAY + Duration::from_secs(60)).await;
    assert_eq!(pass(&app).await.subscription_periods_charged, 1);
    let sub = subscription(&app, id).await;
    assert_eq!(sub["periods_charged"], 3, "{sub}");
    assert_eq!(sub["failed_attempts"], 0, "{sub}");
    let charges = sub["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 3, "{sub}");
    assert!(charges.iter().all(|c| c["status"] == "paid"), "{sub}");
    // One trade per period at "Alipay", whatever the attempts.
    let mut attempts = BTreeMap::new();
    for c in charges {
        let no = s(c, "out_trade_no");
        let calls = app.gateway_calls(Some("alipay.trade.pay"), Some(no)).len();
        attempts.insert(no.to_owned(), calls);
    }
    assert_eq!(
        attempts.values().copied().collect::<Vec<_>>(),
        vec![1, 1, 2],
        "{attempts:?}"
    );
    let agreements = app.sandbox().agreements().await;
    let at_alipay = agreements
        .iter()
        .find(|a| a.agreement_no == agreement_no)
        .unwrap();
    assert_eq!(at_alipay.deductions, 3, "{at_alipay:?}");

    // The buyer unsigns on the sandbox's own page: canceled, never charged again.
    let r = app
        .http
        .post(app.url(&format!("/sandbox/agreements/{agreement_no}/unsign")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status().is_success());
    app.deliver_due().await;
    let sub = subscription(&app, id).await;
    assert_eq!(sub["status"], "canceled", "{sub}");
    assert!(sub["next_charge_date"].is_null(), "{sub}");
    advance(&app, 30 * DAY).await;
    assert_eq!(pass(&app).await.subscription_periods_charged, 0);

    // Every change was told once, in order.
    pass(&app).await;
    assert_eq!(
        webhook_types(&rx),
        vec![
            ("subscription.active".to_owned(), None),
            ("subscription.charged".to_owned(), Some(1)),
            ("subscription.charged".to_owned(), Some(2)),
            ("subscription.payment_failed".to_owned(), Some(3)),
            ("subscription.charged".to_owned(), Some(3)),
            ("subscription.canceled".to_owned(), None),
        ]
    );
    // The figures an operator alerts on.
    let by_status = app.store.count_subscriptions_by_status().await.unwrap();
    let text = app.state.metrics().render_all(&[], &[], &by_status);
    for line in [
        "zhifu_subscriptions{status=\"canceled\"} 1\n",
        "zhifu_subscriptions{status=\"active\"} 0\n",
        "zhifu_subscription_charges_total{result=\"charged\"} 3\n",
        "zhifu_subscription_charges_total{result=\"refused\"} 1\n",
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
    // An operator's resend (`zhifu webhooks resend evt_…`) works on
    // subscription events too: the same event id, delivered again.
    let active_event = app.store.list_subscription_events(id).await.unwrap()[0].clone();
    assert_eq!(active_event.event_type.as_str(), "subscription.active");
    let before = rx.deliveries().len();
    let resent = app
        .state
        .outbox()
        .unwrap()
        .resend(&active_event.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resent.state.as_str(), "delivered");
    let deliveries = rx.deliveries();
    assert_eq!(deliveries.len(), before + 1);
    assert_eq!(deliveries.last().unwrap().event_id, active_event.id);
    let list = app
        .api("GET", "/v1/subscriptions?status=canceled", None)
        .await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["data"][0]["id"], id);
}

async fn concurrent_passes_charge_a_period_once(db: TestDatabase) {
    let app = app(db).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(s(&signed(&app).await, "id").to_owned());
    }
    let (a, b) = tokio::join!(pass(&app), pass(&app));
    assert_eq!(
        a.subscription_periods_charged + b.subscription_periods_charged,
        3,
        "{a:?} {b:?}"
    );
    assert_eq!(a.subscriptions_checked + b.subscriptions_checked, 3);
    for id in &ids {
        let sub = subscription(&app, id).await;
        assert_eq!(sub["periods_charged"], 1, "{sub}");
        let no = s(&sub["charges"][0], "out_trade_no");
        assert_eq!(
            app.gateway_calls(Some("alipay.trade.pay"), Some(no)).len(),
            1
        );
    }
}

async fn refused_charges_are_retried_then_past_due(db: TestDatabase) {
    let app = app(db).await;
    let id = s(&signed(&app).await, "id").to_owned();
    app.sandbox()
        .set_withholding_balance(Some("1.00".parse().unwrap()))
        .await;
    // Attempt 1 now, 2 a day later, 3 two days after that: then past due.
    let mut failed = 0;
    for wait in [Duration::ZERO, DAY, 2 * DAY] {
        advance(&app, wait + Duration::from_secs(1)).await;
        let r = pass(&app).await;
        failed += r.subscription_charges_failed;
        assert_eq!(r.subscription_periods_charged, 0, "{r:?}");
        // Between attempts, passes leave the period's order alone: a
        // refused deduction left no trade to ask about.
        advance(&app, Duration::from_secs(6 * 3600)).await;
        let quiet = pass(&app).await;
        assert_eq!(quiet.orders_checked, 0, "{quiet:?}");
    }
    assert_eq!(failed, 3);
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "past_due", "{sub}");
    assert_eq!(sub["failed_attempts"], 3, "{sub}");
    assert_eq!(sub["periods_charged"], 0, "{sub}");
    let charges = sub["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "one order for the period: {sub}");
    assert_eq!(charges[0]["status"], "pending", "{sub}");
    // Nothing more is tried, even with money back and time passing.
    app.sandbox().set_withholding_balance(None).await;
    advance(&app, 40 * DAY).await;
    let r = pass(&app).await;
    assert_eq!(
        (r.subscriptions_checked, r.subscription_periods_charged),
        (0, 0),
        "{r:?}"
    );
    let no = s(&charges[0], "out_trade_no");
    assert_eq!(
        app.gateway_calls(Some("alipay.trade.pay"), Some(no)).len(),
        3
    );
    let events = app.store.list_subscription_events(&id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "subscription.active",
            "subscription.payment_failed",
            "subscription.payment_failed",
            "subscription.payment_failed"
        ]
    );
    // The merchant can still end it.
    let r = app
        .api("POST", &format!("/v1/subscriptions/{id}/cancel"), None)
        .await;
    assert_eq!(r.body["status"], "canceled", "{:?}", r.body);

    // A period whose order the merchant closed between attempts stops the
    // subscription (past due) rather than trying it forever.
    let id = s(&signed(&app).await, "id").to_owned();
    app.sandbox()
        .set_withholding_balance(Some("1.00".parse().unwrap()))
        .await;
    assert_eq!(pass(&app).await.subscription_charges_failed, 1);
    let sub = subscription(&app, &id).await;
    let order_id = s(&sub["charges"][0], "id").to_owned();
    let closed = app
        .api("POST", &format!("/v1/orders/{order_id}/close"), None)
        .await;
    assert_eq!(closed.body["status"], "closed", "{:?}", closed.body);
    app.sandbox().set_withholding_balance(None).await;
    advance(&app, DAY + Duration::from_secs(1)).await;
    let r = pass(&app).await;
    assert_eq!(
        (
            r.subscription_periods_charged,
            r.subscription_charges_failed
        ),
        (0, 1),
        "{r:?}"
    );
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "past_due", "{sub}");
    let no = s(&sub["charges"][0], "out_trade_no");
    assert_eq!(
        app.gateway_calls(Some("alipay.trade.pay"), Some(no)).len(),
        1,
        "a closed order is never charged"
    );
}

/// The buyer unsigns and the `dut_user_unsign` notification has not
/// reached us when the next period is due: the refusal
/// (`ACQ.AGREEMENT_STATUS_NOT_NORMAL`) makes the pass ask Alipay, which
/// says UNSIGN: canceled, and no failure is counted.
async fn a_lost_unsign_is_found_when_the_charge_is_refused(db: TestDatabase) {
    let app = app(db).await;
    let id = s(&signed(&app).await, "id").to_owned();
    assert_eq!(pass(&app).await.subscription_periods_charged, 1);
    let agreement_no = s(&subscription(&app, &id).await, "agreement_no").to_owned();
    let r = app
        .http
        .post(app.url(&format!("/sandbox/agreements/{agreement_no}/unsign")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection() || r.status().is_success());
    // Not delivered (explicit mode): the notification is still queued.
    assert_eq!(subscription(&app, &id).await["status"], "active");
    app.clock.advance(30 * DAY);
    let r = pass(&app).await;
    assert_eq!(
        (
            r.subscription_periods_charged,
            r.subscription_charges_failed
        ),
        (0, 0),
        "{r:?}"
    );
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "canceled", "{sub}");
    assert_eq!(sub["failed_attempts"], 0, "{sub}");
    assert_eq!(
        app.gateway_calls(Some("alipay.user.agreement.query"), None)
            .len(),
        1
    );
    // The notification arrives late: answered success, nothing new.
    app.deliver_due().await;
    let events = app.store.list_subscription_events(&id).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "subscription.active",
            "subscription.charged",
            "subscription.canceled"
        ]
    );
}

async fn merchant_cancel_unsigns_at_alipay(db: TestDatabase) {
    let app = app(db).await;
    let id = s(&signed(&app).await, "id").to_owned();
    let r = app
        .api("POST", &format!("/v1/subscriptions/{id}/cancel"), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["status"], "canceled");
    assert_eq!(
        app.gateway_calls(Some("alipay.user.agreement.unsign"), None)
            .len(),
        1
    );
    let agreement_no = s(&r.body, "agreement_no");
    let at_alipay = app.sandbox().agreements().await;
    let a = at_alipay
        .iter()
        .find(|a| a.agreement_no == agreement_no)
        .unwrap();
    assert_eq!(a.status, "UNSIGN", "{a:?}");
    // Canceling again changes nothing and calls nobody.
    let again = app
        .api("POST", &format!("/v1/subscriptions/{id}/cancel"), None)
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        app.gateway_calls(Some("alipay.user.agreement.unsign"), None)
            .len(),
        1
    );
    assert_eq!(pass(&app).await.subscription_periods_charged, 0);
    // An unsigned, never-signed subscription is canceled without Alipay.
    let r = app.api("POST", "/v1/subscriptions", Some(plan())).await;
    let pending = s(&r.body, "id");
    let r = app
        .api("POST", &format!("/v1/subscriptions/{pending}/cancel"), None)
        .await;
    assert_eq!(r.body["status"], "canceled", "{:?}", r.body);
}

/// Agreement notifications signed by the test's "Alipay" key (no sandbox).
async fn agreement_notifications_tamper_matrix(db: TestDatabase) {
    let app = spawn_app(
        db,
        Options {
            sandbox: false,
            ..Options::default()
        },
    )
    .await;
    let r = app.api("POST", "/v1/subscriptions", Some(plan())).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = s(&r.body, "id").to_owned();
    let ext = s(&r.body, "external_agreement_no").to_owned();
    let fields = |notify_id: &str, kind: &str, status: &str, agreement_no: &str| {
        vec![
            ("notify_id".to_owned(), notify_id.to_owned()),
            ("notify_type".to_owned(), kind.to_owned()),
            ("notify_time".to_owned(), "2026-12-07 10:00:00".to_owned()),
            ("app_id".to_owned(), app.app_id.clone()),
            ("charset".to_owned(), "utf-8".to_owned()),
            ("version".to_owned(), "1.0".to_owned()),
            ("agreement_no".to_owned(), agreement_no.to_owned()),
            ("external_agreement_no".to_owned(), ext.clone()),
            (
                "personal_product_code".to_owned(),
                "CYCLE_PAY_AUTH_P".to_owned(),
            ),
            ("sign_scene".to_owned(), "INDUSTRY|DIGITAL_MEDIA".to_owned()),
            ("status".to_owned(), status.to_owned()),
            ("alipay_user_id".to_owned(), "2088000000000042".to_owned()),
            ("sign_time".to_owned(), "2026-12-07 09:59:58".to_owned()),
        ]
    };
    let good = fields("n1", "dut_user_sign", "NORMAL", "20265607000000001");

    // Forged: signed by someone else's key.
    let forged = kit_forged(&good);
    assert_eq!(app.post_notify(&forged).await, (400, "failure".into()));
    // Alipay-signed, each with one thing wrong.
    let mut cases = Vec::new();
    let mut foreign_app = good.clone();
    set(&mut foreign_app, "app_id", "2021000000000000");
    cases.push(("foreign app", foreign_app));
    let mut unknown = good.clone();
    set(&mut unknown, "external_agreement_no", "ZSNOTOURS0001");
    cases.push(("unknown agreement", unknown));
    let mut product = good.clone();
    set(
        &mut product,
        "personal_product_code",
        "GENERAL_WITHHOLDING_P",
    );
    cases.push(("other product", product));
    let mut typo = good.clone();
    set(&mut typo, "notify_type", "dut_user_signed");
    cases.push(("unknown notify_type", typo));
    for (what, f) in &cases {
        let body = app.signed_notification(&as_refs(f));
        assert_eq!(
            app.post_notify(&body).await,
            (400, "failure".into()),
            "{what}"
        );
        assert_eq!(
            subscription(&app, &id).await["status"],
            "pending_signature",
            "{what}"
        );
    }
    // A tampered body of a genuine message: the signature no longer holds.
    let genuine = app.signed_notification(&as_refs(&good));
    let tampered = genuine.replace("NORMAL", "UNSIGN");
    assert_ne!(tampered, genuine);
    assert_eq!(app.post_notify(&tampered).await, (400, "failure".into()));
    assert_eq!(subscription(&app, &id).await["status"], "pending_signature");

    // The genuine one activates it; its replay changes nothing.
    assert_eq!(app.post_notify(&genuine).await, (200, "success".into()));
    assert_eq!(app.post_notify(&genuine).await, (200, "success".into()));
    let sub = subscription(&app, &id).await;
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["agreement_no"], "20265607000000001");
    let events = app.store.list_subscription_events(&id).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");

    // An unsign naming another Alipay agreement is refused.
    let other = fields("n2", "dut_user_unsign", "UNSIGN", "20265607000000999");
    let body = app.signed_notification(&as_refs(&other));
    assert_eq!(app.post_notify(&body).await, (400, "failure".into()));
    assert_eq!(subscription(&app, &id).await["status"], "active");
    // Every refusal is on record, none on an order.
    let refused = app.store.list_orphan_notifications(50).await.unwrap();
    let reasons: Vec<_> = refused.iter().filter_map(|n| n.reason.clone()).collect();
    for want in [
        "bad_signature",
        "app_id_mismatch",
        "unknown_order",
        "agreement_mismatch",
        "malformed",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "{want} missing in {reasons:?}"
        );
    }
    // The right unsign ends it.
    let end = fields("n3", "dut_user_unsign", "UNSIGN", "20265607000000001");
    let body = app.signed_notification(&as_refs(&end));
    assert_eq!(app.post_notify(&body).await, (200, "success".into()));
    assert_eq!(subscription(&app, &id).await["status"], "canceled");
}

/// The same fields signed with a key that is not Alipay's.
fn kit_forged(fields: &[(String, String)]) -> String {
    // The app's own key: a valid RSA key that is not Alipay's.
    let stranger = alipay::testing::AlipaySigner::new(zhifu_sandbox::testing::app_key());
    stranger.notification_body(&as_refs(fields)).unwrap()
}

async fn create_is_validated_and_idempotent(db: TestDatabase) {
    let app = app(db).await;
    let key = [("Idempotency-Key", "sub-key-1")];
    let first = app
        .api_with("POST", "/v1/subscriptions", Some(plan()), &key)
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = app
        .api_with("POST", "/v1/subscriptions", Some(plan()), &key)
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let mut other = plan();
    other["amount"] = json!("31.00");
    let reused = app
        .api_with("POST", "/v1/subscriptions", Some(other), &key)
        .await;
    assert_eq!(reused.status, 409);
    assert_eq!(reused.body["error"]["code"], "idempotency_key_reused");

    let bad = [
        (json!({"amount": 30}), "invalid_amount"),
        (json!({"amount": "0.00"}), "invalid_amount"),
        (
            json!({"period": {"unit": "week", "every": 1}}),
            "invalid_field",
        ),
        (
            json!({"period": {"unit": "month", "every": 0}}),
            "invalid_field",
        ),
        (json!({"first_charge_date": "2020-01-01"}), "invalid_field"),
        (
            json!({"first_charge_date": "2099-01-29", "period": {"unit": "month", "every": 1}}),
            "invalid_field",
        ),
        (json!({"max_periods": 0}), "invalid_field"),
        (json!({"channel": "jsapi"}), "invalid_field"),
        (json!({"price": "1.00"}), "unknown_field"),
    ];
    for (patch, code) in bad {
        let mut body = plan();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app
            .api("POST", "/v1/subscriptions", Some(body.clone()))
            .await;
        assert_eq!(r.body["error"]["code"], code, "{body}: {:?}", r.body);
    }
    let list = app.api("GET", "/v1/subscriptions", None).await;
    assert_eq!(
        list.body["data"].as_array().unwrap().len(),
        1,
        "{:?}",
        list.body
    );
    let missing = app.api("GET", "/v1/subscriptions/sub_nope", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "subscription_not_found");
    // The in-app channel gets the alipays:// link.
    let mut app_plan = plan();
    app_plan["channel"] = json!("app");
    let r = app.api("POST", "/v1/subscriptions", Some(app_plan)).await;
    let link = s(&r.body["sign"], "app_link");
    assert!(
        link.starts_with("alipays://platformapi/startapp?appId=60000157"),
        "{link}"
    );
}
