//! Crash tests: a real `zhifu serve` (or `zhifu reconcile`) process is
//! stopped at a named fault point (`zhifu_server::fault`, compiled into
//! test builds of the binary), killed there with SIGKILL, and restarted on
//! the same database; after the restart and reconcile, nothing is lost and
//! nothing is applied twice. Every count is read back from the sandbox (what
//! "Alipay" did) and from the merchant API (what Zhifu recorded).
//!
//! Each scenario runs on a SQLite file and, when `ZHIFU_TEST_DATABASE_URL`
//! is set, on a fresh PostgreSQL database; the PostgreSQL restart scenario
//! also needs `ZHIFU_TEST_PG_RESTART` (`scripts/lib/postgres.sh` exports it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "crash/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zhifu_sandbox::{DeliveryState, Faults};
use zhifu_server::fault::{
    NOTIFY_COMMITTED, RECONCILE_MID_PASS, REFUND_CALLED, SUBSCRIPTION_CHARGED,
};
use zhifu_store::{OrderStatus, SqlStore, Store, StoreOptions};

use support::*;

support::backend_tests!(
    killed_after_notification_commit,
    killed_after_refund_call,
    killed_mid_reconcile_pass,
    subscription_pass_killed_after_the_charge,
);

/// Killed after a notification's change committed, before `success` was
/// answered: the restarted server answers the sandbox's retry `success` as a
/// duplicate; the order is paid once, with one event.
async fn killed_after_notification_commit(db: Db) {
    let t = sandbox(Faults::default()).await;
    let env = Env::new(&t, &db);
    let mut first = serve(&env, "zhifu serve (killed)", Some(NOTIFY_COMMITTED)).await;
    let order = order_opened(&t, &env.base, "88.88").await;
    let id = order["id"].as_str().unwrap();
    let out_trade_no = order["out_trade_no"].as_str().unwrap();
    t.sandbox.pay(Some(&t.app_id), out_trade_no).await.unwrap();

    first.wait_fault(NOTIFY_COMMITTED).await;
    first.kill();

    // The kill landed after the commit: the database says paid, while the
    // sandbox has not been told `success`.
    let store = SqlStore::connect(&db.url, &StoreOptions::default())
        .await
        .unwrap();
    let stored = store.get_order(id).await.unwrap().unwrap();
    assert_eq!(stored.status, OrderStatus::Paid);
    let delivery = delivery_of(&t, out_trade_no).await;
    assert_eq!(delivery.state, DeliveryState::Pending, "{delivery:?}");
    assert_eq!(successes(&delivery), 0, "{delivery:?}");

    let _second = serve(&env, "zhifu serve (restarted)", None).await;
    // The sandbox's retry reaches the restarted server.
    let deadline = Instant::now() + WAIT;
    let delivery = loop {
        let d = delivery_of(&t, out_trade_no).await;
        if d.state != DeliveryState::Pending {
            break d;
        }
        assert!(Instant::now() < deadline, "never delivered: {d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery.state, DeliveryState::Delivered, "{delivery:?}");
    assert_eq!(successes(&delivery), 1, "{delivery:?}");
    assert!(delivery.attempts.len() >= 2, "{delivery:?}");

    let trade = trade(&t, out_trade_no).await;
    assert_eq!(trade.trade_status, "TRADE_SUCCESS");
    let o = get_order(&env.base, id).await;
    assert_eq!(o["status"], "paid", "{o}");
    assert_eq!(o["trade_no"], trade.trade_no.as_str(), "{o}");
    let events = order_list(&env.base, id, "events").await;
    assert_eq!(count(&events, "type", "order.paid"), 1, "{events:?}");
    assert_eq!(events.len(), 1, "{events:?}");
    // What reached Zhifu: the killed attempt (applied); the answered retry
    // is a replay, answered from a read, so it left no record of its own.
    let notes = order_list(&env.base, id, "notifications").await;
    assert_eq!(count(&notes, "outcome", "applied"), 1, "{notes:?}");
    assert_eq!(
        count(&notes, "outcome", "applied") + count(&notes, "outcome", "duplicate"),
        notes.len(),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .all(|n| n["notify_id"] == delivery.notify_id.as_str()),
        "{notes:?}"
    );
}

/// Killed inside a refund, after Alipay executed it and before the result
/// was stored: the refund stays pending (its lease held by the dead
/// process), then reconcile re-sends it with the same `out_request_no`;
/// Alipay refunds once and Zhifu settles once.
async fn killed_after_refund_call(db: Db) {
    let t = sandbox(Faults::default()).await;
    let env = Env::new(&t, &db);
    let mut first = serve(&env, "zhifu serve (killed)", Some(REFUND_CALLED)).await;
    let order = order_opened(&t, &env.base, "66.60").await;
    let id = order["id"].as_str().unwrap().to_owned();
    let out_trade_no = order["out_trade_no"].as_str().unwrap().to_owned();
    t.sandbox.pay(Some(&t.app_id), &out_trade_no).await.unwrap();
    wait_status(&env.base, &id, "paid").await;

    // A full refund (page trades send no notification for it, so only the
    // refund call and reconcile can tell Zhifu).
    let refund_url = format!("{}/v1/orders/{id}/refunds", env.base);
    let request = {
        let url = refund_url.clone();
        tokio::spawn(async move {
            try_call(
                &http(),
                "POST",
                &url,
                Some(json!({"amount": "66.60"})),
                Some("crash-refund-1"),
            )
            .await
        })
    };
    first.wait_fault(REFUND_CALLED).await;
    let killed_at = Instant::now();
    first.kill();
    let answer = request.await.unwrap();
    assert!(answer.is_err(), "the killed server answered: {answer:?}");

    // Alipay refunded; Zhifu only knows that a refund is pending.
    let refunded = trade(&t, &out_trade_no).await;
    assert_eq!(refunded.refunds.len(), 1, "{refunded:?}");
    assert_eq!(refunded.refund_fee, "66.60");
    let out_request_no = refunded.refunds[0].out_request_no.clone();

    let _second = serve(&env, "zhifu serve (restarted)", None).await;
    let refunds = order_list(&env.base, &id, "refunds").await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["status"], "pending", "{refunds:?}");
    assert_eq!(refunds[0]["out_request_no"], out_request_no.as_str());
    let refund_id = refunds[0]["id"].as_str().unwrap().to_owned();
    let o = get_order(&env.base, &id).await;
    assert_eq!(
        (&o["status"], &o["refunded_amount"]),
        (&json!("paid"), &json!("0.00")),
        "{o}"
    );
    // The client retries its request: the same refund, not a second one.
    let (status, replay) = try_call(
        &http(),
        "POST",
        &refund_url,
        Some(json!({"amount": "66.60"})),
        Some("crash-refund-1"),
    )
    .await
    .unwrap();
    assert!((200..300).contains(&status), "{status} {replay}");
    assert_eq!(replay["id"], refund_id.as_str(), "{replay}");

    // Reconcile until the refund is settled. The dead process's lease
    // (`ZHIFU_REFUND_LEASE_SECS`) is what this waits for.
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut passes = Vec::new();
    loop {
        let report = call(
            &http,
            "POST",
            &format!("{}/v1/reconcile", env.base),
            Some(json!({"min_age_seconds": 0})),
        )
        .await;
        let done = report["refunds_succeeded"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r == refund_id.as_str()));
        passes.push(report);
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the refund was never settled: {passes:#?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let settled_after = killed_at.elapsed();

    let refunds = order_list(&env.base, &id, "refunds").await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["status"], "succeeded", "{refunds:?}");
    let trade = trade(&t, &out_trade_no).await;
    assert_eq!(trade.refunds.len(), 1, "Alipay refunded twice: {trade:?}");
    let o = get_order(&env.base, &id).await;
    assert_eq!(o["status"], "refunded", "{o}");
    assert_eq!(o["refunded_amount"], trade.refund_fee.as_str(), "{o}");
    assert_eq!(o["refund_pending_amount"], "0.00", "{o}");
    let events = order_list(&env.base, &id, "events").await;
    assert_eq!(count(&events, "type", "order.paid"), 1, "{events:?}");
    assert_eq!(count(&events, "type", "order.refunded"), 1, "{events:?}");
    assert_eq!(events.len(), 2, "{events:?}");

    // The gateway saw the refund sent twice, both times under the same
    // out_request_no, the second only after the first sender's lease.
    let calls = t.requests(Some("alipay.trade.refund"), Some(&out_trade_no));
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(
        calls
            .iter()
            .all(|c| c.out_request_no.as_deref() == Some(out_request_no.as_str())),
        "{calls:#?}"
    );
    let gap = calls[1].wall_ms - calls[0].wall_ms;
    let lease_ms = i64::try_from(REFUND_LEASE_SECS * 1000).unwrap();
    assert!(gap >= lease_ms, "re-sent {gap} ms after the first call");
    eprintln!(
        "refund settled {settled_after:?} after the kill ({} reconcile passes)",
        passes.len()
    );
}

/// A reconcile pass killed after its first order: the order it committed
/// stays committed, the rest are picked up by the next passes (after the
/// killed pass's lease), every order paid once.
async fn killed_mid_reconcile_pass(db: Db) {
    // Every notification is dropped: only reconcile can learn of payments.
    let t = sandbox(Faults {
        drop_rate: 1.0,
        ..Default::default()
    })
    .await;
    let env = Env::new(&t, &db);
    let _server = serve(&env, "zhifu serve", None).await;
    let mut orders = Vec::new();
    for i in 0..4 {
        let order = order_opened(&t, &env.base, &format!("1{i}.00")).await;
        let out_trade_no = order["out_trade_no"].as_str().unwrap();
        t.sandbox.pay(Some(&t.app_id), out_trade_no).await.unwrap();
        orders.push(order);
    }
    let statuses = |orders: Vec<Value>, base: String| async move {
        let mut s = Vec::new();
        for o in &orders {
            s.push(get_order(&base, o["id"].as_str().unwrap()).await["status"].clone());
        }
        s
    };
    let before = statuses(orders.clone(), env.base.clone()).await;
    assert!(before.iter().all(|s| s == "pending"), "{before:?}");

    let mut killed = reconcile_proc(&env, "zhifu reconcile (killed)", Some(RECONCILE_MID_PASS));
    killed.wait_fault(RECONCILE_MID_PASS).await;
    killed.kill();
    let after_kill = statuses(orders.clone(), env.base.clone()).await;
    assert_eq!(
        after_kill.iter().filter(|s| *s == "paid").count(),
        1,
        "exactly the first order was committed before the kill: {after_kill:?}"
    );

    // The killed pass leased its batch for 2 s (`--lease 2`).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let reports = reconcile_until_quiet(&env).await;
    let newly_paid: usize = reports
        .iter()
        .map(|r| r["paid"].as_array().unwrap().len())
        .sum();
    assert_eq!(newly_paid, orders.len() - 1, "{reports:#?}");

    for order in &orders {
        let id = order["id"].as_str().unwrap();
        let trade = trade(&t, order["out_trade_no"].as_str().unwrap()).await;
        assert_eq!(trade.trade_status, "TRADE_SUCCESS");
        let o = get_order(&env.base, id).await;
        assert_eq!(o["status"], "paid", "{o}");
        assert_eq!(o["trade_no"], trade.trade_no.as_str(), "{o}");
        let events = order_list(&env.base, id, "events").await;
        assert_eq!(count(&events, "type", "order.paid"), 1, "{events:?}");
        assert_eq!(events.len(), 1, "{events:?}");
        let notes = order_list(&env.base, id, "notifications").await;
        assert_eq!(count(&notes, "outcome", "applied"), 1, "{notes:?}");
        // No notification got through: the sandbox dropped them all.
        assert_eq!(count(&notes, "source", "notify"), 0, "{notes:?}");
    }
}

/// A subscription's charging pass killed after Alipay charged the period
/// and before Zhifu recorded it, while a second pass runs at the same time:
/// the second pass leaves the leased subscription alone, the passes after
/// the lease find the same order and `out_trade_no` (Alipay: already paid),
/// and the period is charged exactly once.
async fn subscription_pass_killed_after_the_charge(db: Db) {
    // Every notification is dropped: Zhifu learns only by asking Alipay.
    let t = sandbox(Faults {
        drop_rate: 1.0,
        ..Default::default()
    })
    .await;
    let env = Env::new(&t, &db);
    let _server = serve(&env, "zhifu serve", None).await;
    let http = http();
    let sub = call(
        &http,
        "POST",
        &format!("{}/v1/subscriptions", env.base),
        Some(json!({"subject": "Crash plan", "amount": "30.00",
                    "period": {"unit": "month", "every": 1}})),
    )
    .await;
    let id = sub["id"].as_str().unwrap();
    // The buyer agrees on the signing page.
    let opened = http
        .get(sub["sign"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let page = format!(
        "{}{}",
        t.base,
        opened.headers()["location"].to_str().unwrap()
    );
    let agreed = http.post(format!("{page}/agree")).send().await.unwrap();
    assert_eq!(agreed.status(), 200);
    // The dut_user_sign notification was dropped: the signed query says NORMAL.
    let sub_url = format!("{}/v1/subscriptions/{id}", env.base);
    let active = call(&http, "GET", &format!("{sub_url}?refresh=true"), None).await;
    assert_eq!(active["status"], "active", "{active}");
    let agreement_no = active["agreement_no"].as_str().unwrap().to_owned();

    let mut killed = reconcile_proc(&env, "zhifu reconcile (killed)", Some(SUBSCRIPTION_CHARGED));
    killed.wait_fault(SUBSCRIPTION_CHARGED).await;
    // Alipay has charged; a second pass at this moment finds the
    // subscription leased and charges nothing.
    let concurrent = reconcile(&env).await;
    assert_eq!(concurrent["subscriptions_checked"], 0, "{concurrent}");
    assert_eq!(
        concurrent["subscription_periods_charged"], 0,
        "{concurrent}"
    );
    killed.kill();
    let deducted = |t: &zhifu_sandbox::testing::TestSandbox| {
        let no = agreement_no.clone();
        let sandbox = t.sandbox.clone();
        async move {
            sandbox
                .agreements()
                .await
                .into_iter()
                .find(|a| a.agreement_no == no)
                .map(|a| a.deductions)
        }
    };
    assert_eq!(deducted(&t).await, Some(1));
    let before = call(&http, "GET", &sub_url, None).await;
    assert_eq!(
        before["periods_charged"], 0,
        "not recorded before the kill: {before}"
    );

    // After the killed pass's lease (2 s), the next passes finish the period.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    reconcile_until_quiet(&env).await;
    let after = call(&http, "GET", &sub_url, None).await;
    assert_eq!(after["periods_charged"], 1, "{after}");
    let charges = after["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1, "{after}");
    assert_eq!(charges[0]["status"], "paid", "{after}");
    let no = charges[0]["out_trade_no"].as_str().unwrap();
    assert_eq!(trade(&t, no).await.trade_status, "TRADE_SUCCESS");
    assert_eq!(deducted(&t).await, Some(1), "charged once at Alipay");
    let more = reconcile(&env).await;
    assert_eq!(more["subscription_periods_charged"], 0, "{more}");
    assert_eq!(deducted(&t).await, Some(1));
}

/// PostgreSQL restarted (down for 3 s) while orders are created and paid
/// through a running server: the server answers 503 during the gap and
/// recovers by itself; after reconcile, every order the sandbox has paid is
/// paid once in Zhifu.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_mid_traffic() {
    let restart = match std::env::var(PG_RESTART_VAR) {
        Ok(c) if !c.is_empty() => c,
        _ => {
            eprintln!(
                "SKIPPED postgres_restarted_mid_traffic: {PG_RESTART_VAR} is not set \
                 (source scripts/lib/postgres.sh and run start_postgres)"
            );
            return;
        }
    };
    // Not while another test of this binary uses the server.
    let _exclusive = PG_SERVER.write().await;
    let Some(db) = Db::postgres("postgres_restarted_mid_traffic") else {
        return;
    };
    let t = sandbox(Faults::default()).await;
    let env = Env::new(&t, &db);
    let mut server = serve(&env, "zhifu serve", None).await;

    // Every answer the server gave (0: no answer), from the traffic and from
    // a /healthz probe that runs throughout.
    let seen: Arc<Mutex<Vec<u16>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let (seen, stop, url) = (seen.clone(), stop.clone(), format!("{}/healthz", env.base));
        tokio::spawn(async move {
            let http = http();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = match http.get(&url).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                seen.lock().unwrap().push(s);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    let client = http();
    let mut restarting = None;
    let mut paid = BTreeMap::new();
    for i in 0..16 {
        if i == 5 {
            let cmd = restart.clone();
            restarting = Some(tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh")
                    .args(["-c", &cmd])
                    .env("ZHIFU_TEST_PG_DOWN_SECS", "3")
                    .stdin(std::process::Stdio::null())
                    .status()
                    .unwrap()
            }));
            // Let the stop begin before the next request.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let key = format!("crash-pg-{i}");
        let create_url = format!("{}/v1/orders", env.base);
        let order = until_answered(&seen, || {
            try_call(
                &client,
                "POST",
                &create_url,
                Some(json!({"subject": "Restart", "total_amount": format!("2.{i:02}")})),
                Some(&key),
            )
        })
        .await;
        let id = order["id"].as_str().unwrap().to_owned();
        let pay_url = format!("{}/v1/orders/{id}/pay", env.base);
        let pay = until_answered(&seen, || {
            try_call(
                &client,
                "POST",
                &pay_url,
                Some(json!({"channel": "page"})),
                None,
            )
        })
        .await;
        open_at_sandbox(&t, pay["url"].as_str().unwrap()).await;
        let out_trade_no = order["out_trade_no"].as_str().unwrap().to_owned();
        t.sandbox.pay(Some(&t.app_id), &out_trade_no).await.unwrap();
        paid.insert(out_trade_no, id);
    }
    let status = restarting.unwrap().await.unwrap();
    assert!(status.success(), "{PG_RESTART_VAR} failed: {status}");
    // Recovered by itself: the same process answers again.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = http().get(format!("{}/healthz", env.base)).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the server never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    probe.await.unwrap();
    assert!(
        server.is_running(),
        "the server died:\n{}",
        server.log_text()
    );
    let seen = seen.lock().unwrap().clone();
    let unavailable = seen.iter().filter(|s| **s == 503).count();
    assert!(
        unavailable > 0,
        "no 503 while PostgreSQL was down: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| matches!(s, 200 | 201 | 503)),
        "answers other than 2xx/503: {seen:?}"
    );
    eprintln!(
        "{} answers during the run, {unavailable} of them 503, {} without an answer",
        seen.len(),
        seen.iter().filter(|s| **s == 0).count()
    );

    reconcile_until_quiet(&env).await;
    let trades: Vec<_> = t
        .sandbox
        .trades()
        .await
        .into_iter()
        .filter(|tr| tr.trade_status == "TRADE_SUCCESS")
        .collect();
    assert_eq!(trades.len(), paid.len(), "{trades:#?}");
    for trade in &trades {
        let id = paid
            .get(&trade.out_trade_no)
            .unwrap_or_else(|| panic!("the sandbox paid an unknown order: {trade:?}"));
        let o = get_order(&env.base, id).await;
        assert_eq!(o["status"], "paid", "{o}");
        assert_eq!(o["trade_no"], trade.trade_no.as_str(), "{o}");
        let events = order_list(&env.base, id, "events").await;
        assert_eq!(count(&events, "type", "order.paid"), 1, "{events:?}");
        assert_eq!(events.len(), 1, "{events:?}");
        let notes = order_list(&env.base, id, "notifications").await;
        assert_eq!(count(&notes, "outcome", "applied"), 1, "{notes:?}");
    }
}

/// Retries a merchant call while the server answers 503 or not at all
/// (bounded), recording each answer; the 2xx body.
async fn until_answered<F, Fut>(seen: &Mutex<Vec<u16>>, mut call: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(u16, Value), reqwest::Error>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = call().await;
        let status = answer.as_ref().map_or(0, |(s, _)| *s);
        seen.lock().unwrap().push(status);
        match &answer {
            Ok((s, v)) if (200..300).contains(s) => return v.clone(),
            Ok((503, v)) => assert_eq!(v["error"]["code"], "database_unavailable", "{v}"),
            Ok((s, v)) => panic!("{s} {v}"),
            Err(_) => {}
        }
        assert!(Instant::now() < deadline, "never answered: {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delivery_of(
    t: &zhifu_sandbox::testing::TestSandbox,
    out_trade_no: &str,
) -> zhifu_sandbox::NotificationView {
    let mut d: Vec<_> = t
        .sandbox
        .notifications()
        .await
        .into_iter()
        .filter(|n| n.out_trade_no == out_trade_no)
        .collect();
    assert_eq!(d.len(), 1, "{d:?}");
    d.pop().unwrap()
}

/// Attempts the merchant answered `success` to.
fn successes(d: &zhifu_sandbox::NotificationView) -> usize {
    d.attempts
        .iter()
        .filter(|a| a.http_status == Some(200) && a.response_body.as_deref() == Some("success"))
        .count()
}
