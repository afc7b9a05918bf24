//! The gateway's request log (`GET /sandbox/api/requests`,
//! `Sandbox::requests`, `TestSandbox::requests`): every answered call,
//! refusals included, with its code, filtered exactly, bounded.

use std::time::Duration;

use alipay::{GenericRequest, TradePagePay, TradeQuery, TradeRef, TradeRefund};
use serde_json::{Value, json};
use zhifu_sandbox::{Faults, RequestRecord, SandboxConfig};

use crate::helpers::*;

async fn requests(t: &TestSandbox, query: &str) -> (u16, Value) {
    let r = t
        .http
        .get(format!("{}/sandbox/api/requests{query}", t.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn listed(t: &TestSandbox, query: &str) -> Vec<RequestRecord> {
    let (status, v) = requests(t, query).await;
    assert_eq!(status, 200, "{v}");
    serde_json::from_value(v["requests"].clone()).unwrap()
}

fn codes(v: &[RequestRecord]) -> Vec<(&str, Option<&str>)> {
    v.iter()
        .map(|r| (r.code.as_str(), r.sub_code.as_deref()))
        .collect()
}

fn encode(params: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

#[tokio::test]
async fn every_answered_call_is_logged_with_its_code_and_filters_match_exactly() {
    let t = spawn_explicit().await;
    let out = unique("LOG");
    let query = || TradeQuery::by_out_trade_no(&out);
    t.client
        .execute(
            &create_req(no(&out), amt("8.00"), "log"),
            &Default::default(),
        )
        .await
        .unwrap();
    let first_wall = t.requests(None, None)[0].wall_ms;
    tokio::time::sleep(Duration::from_millis(60)).await;
    t.client
        .execute(&query(), &Default::default())
        .await
        .unwrap();
    t.client
        .execute(&query(), &Default::default())
        .await
        .unwrap();
    let e = gw(t
        .client
        .execute(
            &TradeRefund::new(TradeRef::OutTradeNo(out.clone()), amt("1.00"), "R1"),
            &Default::default(),
        )
        .await
        .unwrap_err());
    assert_eq!(e.sub_code.as_deref(), Some("ACQ.TRADE_STATUS_ERROR"));
    gw(t.client
        .execute(&TradeQuery::by_out_trade_no("NOPE"), &Default::default())
        .await
        .unwrap_err());
    // A valid signature on a method the gateway does not know.
    gw(t.client
        .execute(
            &GenericRequest::new("alipay.trade.nope", json!({"out_trade_no": out}))
                .mark_retry_safe(),
            &Default::default(),
        )
        .await
        .unwrap_err());
    // Refused before any business logic: a tampered biz_content (bad
    // signature, the claimed method is logged) and no app_id at all.
    let mut p = t
        .alipay
        .sign_request(&query(), &Default::default(), t.sandbox.now())
        .unwrap()
        .params()
        .to_vec();
    for (k, v) in &mut p {
        if k == "biz_content" {
            *v = json!({"out_trade_no": out, "x": 1}).to_string();
        }
    }
    let resp = t
        .http
        .get(format!("{}?{}", t.gateway, encode(&p)))
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("isv.invalid-signature"));
    p.retain(|(k, _)| k != "app_id");
    t.http
        .get(format!("{}?{}", t.gateway, encode(&p)))
        .send()
        .await
        .unwrap();
    // A page order sends the buyer to the cashier: logged as answered.
    let page = unique("LOGPAGE");
    let signed = t
        .alipay
        .sign_request(
            &TradePagePay::new(no(&page), amt("1.00"), "page"),
            &Default::default(),
            t.sandbox.now(),
        )
        .unwrap();
    let resp = t
        .http
        .get(signed.to_get_url(&t.gateway))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection());

    let all = listed(&t, "").await;
    assert_eq!(all.len(), 9, "{all:#?}");
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>(),
        "oldest first"
    );
    assert_eq!(
        all.iter().map(|r| r.method.as_deref()).collect::<Vec<_>>(),
        [
            Some("alipay.trade.create"),
            Some("alipay.trade.query"),
            Some("alipay.trade.query"),
            Some("alipay.trade.refund"),
            Some("alipay.trade.query"),
            Some("alipay.trade.nope"),
            Some("alipay.trade.query"),
            Some("alipay.trade.query"),
            Some("alipay.trade.page.pay"),
        ]
    );
    assert_eq!(
        codes(&all),
        [
            ("10000", None),
            ("10000", None),
            ("10000", None),
            ("40004", Some("ACQ.TRADE_STATUS_ERROR")),
            ("40004", Some("ACQ.TRADE_NOT_EXIST")),
            ("40002", Some("isv.invalid-method")),
            ("40002", Some("isv.invalid-signature")),
            ("40001", Some("isv.missing-app-id")),
            ("10000", None),
        ]
    );
    let refund = &all[3];
    assert_eq!(refund.app_id.as_deref(), Some(t.app_id.as_str()));
    assert_eq!(refund.out_trade_no.as_deref(), Some(out.as_str()));
    assert_eq!(refund.out_request_no.as_deref(), Some("R1"));
    assert_eq!(refund.trade_no, None);
    assert_eq!(refund.biz_content["refund_amount"], "1.00");
    assert_eq!(all[6].biz_content["x"], 1, "what the refused call carried");
    assert_eq!(all[7].app_id, None);
    assert_eq!(all[8].out_trade_no.as_deref(), Some(page.as_str()));
    // Explicit mode: the sandbox clock stood still, the real one did not.
    let now_ms = (t.sandbox.now().unix_timestamp_nanos() / 1_000_000) as i64;
    assert!(all.iter().all(|r| r.at_ms == now_ms), "{all:#?}");
    assert!(all.windows(2).all(|w| w[0].wall_ms <= w[1].wall_ms));
    assert_eq!(all[0].wall_ms, first_wall);
    assert!(all[1].wall_ms - all[0].wall_ms >= 60, "{all:#?}");

    // Filters: exact matches, combinable; the kit and the handle agree.
    let queries = listed(&t, "?method=alipay.trade.query").await;
    assert_eq!(queries.len(), 5);
    let mine = listed(
        &t,
        &format!("?method=alipay.trade.query&out_trade_no={out}"),
    )
    .await;
    assert_eq!(
        mine.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3, 7, 8],
        "the refused calls name the order too"
    );
    assert_eq!(t.requests(Some("alipay.trade.query"), Some(&out)), mine);
    assert_eq!(listed(&t, &format!("?out_trade_no={out}")).await.len(), 7);
    assert!(listed(&t, "?method=alipay.trade").await.is_empty());
    assert_eq!(
        t.sandbox
            .requests(&zhifu_sandbox::RequestFilter::new(None, Some("NOPE")))
            .len(),
        1
    );
    let (status, v) = requests(&t, "?nope=1").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // An injected system error is logged as answered (20000).
    t.sandbox
        .set_faults(Faults {
            system_error_rate: 1.0,
            ..Default::default()
        })
        .await;
    gw(t.client
        .execute(&query(), &Default::default())
        .await
        .unwrap_err());
    let last = t.requests(None, None).pop().unwrap();
    assert_eq!(
        (last.seq, last.code.as_str(), last.sub_code.as_deref()),
        (10, "20000", Some("ACQ.SYSTEM_ERROR"))
    );
}

#[tokio::test]
async fn the_log_keeps_only_the_newest_entries() {
    let t = spawn_with(SandboxConfig {
        request_log_capacity: 3,
        ..explicit_config()
    })
    .await;
    for i in 0..5 {
        gw(t.client
            .execute(
                &TradeQuery::by_out_trade_no(format!("CAP{i}")),
                &Default::default(),
            )
            .await
            .unwrap_err());
    }
    let kept = listed(&t, "").await;
    assert_eq!(
        kept.iter()
            .map(|r| (r.seq, r.out_trade_no.clone().unwrap()))
            .collect::<Vec<_>>(),
        [(3, "CAP2".into()), (4, "CAP3".into()), (5, "CAP4".into())]
    );
    assert!(listed(&t, "?out_trade_no=CAP0").await.is_empty());
    let info: Value = t
        .http
        .get(format!("{}/sandbox/api/info", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["request_log_capacity"], 3);
    assert_eq!(info["cancel_window_seconds"], 86_400);
}
