//! The async client against a scripted gateway on 127.0.0.1:0: every answer
//! is verified, and only retry-safe requests are retried on unknown outcomes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alipay::response::response_node_name;
use alipay::{
    Alipay, AlipayClient, AlipayPublicKey, AppPrivateKey, ClientConfig, Error, Outcome,
    RequestOptions, SignType, TradeClose, TradeQuery, TradeRef,
};
use axum::extract::{Query, State};
use axum::routing::post;

const V: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/upstream");

fn read(p: &str) -> String {
    std::fs::read_to_string(format!("{V}/{p}")).unwrap()
}

#[derive(Clone)]
struct Gateway {
    ali: Arc<AppPrivateKey>,
    app_public: AlipayPublicKey,
    hits: Arc<AtomicUsize>,
    /// What the node answers: `ok`, `busy` (20000), `tampered`, `unsigned`.
    mode: &'static str,
}

async fn gateway(
    State(g): State<Gateway>,
    Query(q): Query<Vec<(String, String)>>,
    body: String,
) -> String {
    g.hits.fetch_add(1, Ordering::SeqCst);
    // Check the request signature the way the real gateway does.
    let mut all = q.clone();
    all.extend(form_urlencoded::parse(body.as_bytes()).into_owned());
    let sign = all
        .iter()
        .find(|(k, _)| k == "sign")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let content =
        alipay::sign::request_sign_content(all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let method = all
        .iter()
        .find(|(k, _)| k == "method")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let node = if g
        .app_public
        .verify(SignType::Rsa2, content.as_bytes(), &sign)
        .is_err()
    {
        r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature"}"#
            .to_owned()
    } else if g.mode == "busy" {
        r#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"ACQ.SYSTEM_ERROR","sub_msg":"系统错误"}"#.to_owned()
    } else if method == "alipay.trade.close" {
        r#"{"code":"10000","msg":"Success","trade_no":"2024010222001400000000000001","out_trade_no":"A1"}"#.to_owned()
    } else {
        r#"{"code":"10000","msg":"Success","trade_no":"2024010222001400000000000001","out_trade_no":"A1","trade_status":"TRADE_SUCCESS","total_amount":"88.88","send_pay_date":"2024-01-02 03:05:06","buyer_logon_id":"159****5620"}"#.to_owned()
    };
    let sign = g.ali.sign(SignType::Rsa2, node.as_bytes()).unwrap();
    let node = if g.mode == "tampered" {
        node.replace("88.88", "0.01")
    } else {
        node
    };
    let sign = if g.mode == "unsigned" {
        String::new()
    } else {
        sign
    };
    format!(
        "{{\"{}\":{node},\"sign\":\"{sign}\"}}",
        response_node_name(&method)
    )
}

async fn start(mode: &'static str) -> (AlipayClient, Arc<AtomicUsize>) {
    let app = AppPrivateKey::parse(&read("nodejs-sdk/keys/app-private-key.pem")).unwrap();
    let ali = AppPrivateKey::parse(&read("fzlee-alipay/keys/ali_private_key.pem")).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let state = Gateway {
        app_public: app.public_key(),
        ali: Arc::new(ali),
        hits: hits.clone(),
        mode,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/gateway.do", post(gateway))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let core = Alipay::builder("2021000122671080", app, state.ali.public_key())
        .gateway(format!("http://{addr}/gateway.do"))
        .build();
    let client = AlipayClient::new(core).with_config(ClientConfig {
        backoff: Duration::from_millis(1),
        ..ClientConfig::default()
    });
    (client, hits)
}

#[tokio::test]
async fn verified_answers_are_decoded() {
    let (client, hits) = start("ok").await;
    let q = client
        .execute(
            &TradeQuery::by_out_trade_no("A1"),
            &RequestOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.total_amount.fen(), 8888);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tampered_and_unsigned_answers_are_errors() {
    let (client, _) = start("tampered").await;
    let e = client
        .execute(
            &TradeQuery::by_out_trade_no("A1"),
            &RequestOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadSignature), "{e:?}");
    let (client, _) = start("unsigned").await;
    let e = client
        .execute(
            &TradeQuery::by_out_trade_no("A1"),
            &RequestOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::MissingSignature), "{e:?}");
}

#[tokio::test]
async fn only_retry_safe_requests_are_retried() {
    let (client, hits) = start("busy").await;
    let e = client
        .execute(
            &TradeQuery::by_out_trade_no("A1"),
            &RequestOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Gateway(g) if g.outcome() == Outcome::Unknown && g.verified),
        "{e:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "a query is retried up to max_attempts"
    );
    let before = hits.load(Ordering::SeqCst);
    let close = TradeClose::new(TradeRef::OutTradeNo("A1".into()));
    assert!(
        client
            .execute(&close, &RequestOptions::default())
            .await
            .is_err()
    );
    assert_eq!(
        hits.load(Ordering::SeqCst) - before,
        1,
        "close is not retried"
    );
}

#[tokio::test]
async fn connection_refused_is_an_unknown_outcome() {
    let app = AppPrivateKey::parse(&read("nodejs-sdk/keys/app-private-key.pem")).unwrap();
    let ali = AlipayPublicKey::parse(&read("fzlee-alipay/keys/ali_public_key.pem")).unwrap();
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let core = Alipay::builder("2021000122671080", app, ali)
        .gateway(format!("http://127.0.0.1:{port}/gateway.do"))
        .build();
    let client = AlipayClient::new(core).with_config(ClientConfig {
        backoff: Duration::from_millis(1),
        ..ClientConfig::default()
    });
    let e = client
        .execute(
            &TradeQuery::by_out_trade_no("A1"),
            &RequestOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(e.is_unknown_outcome(), "{e:?}");
}

/// A v3 endpoint that checks our Authorization header and signs its answer.
#[tokio::test]
async fn v3_call_signs_and_verifies() {
    use axum::http::{HeaderMap, StatusCode};
    let app = AppPrivateKey::parse(&read("nodejs-sdk/keys/app-private-key.pem")).unwrap();
    let app_public = app.public_key();
    let ali =
        Arc::new(AppPrivateKey::parse(&read("fzlee-alipay/keys/ali_private_key.pem")).unwrap());
    let ali_for_handler = ali.clone();
    let tamper = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tamper_h = tamper.clone();
    let handler = move |headers: HeaderMap, body: String| {
        let ali = ali_for_handler.clone();
        let app_public = app_public.clone();
        let tamper = tamper_h.clone();
        async move {
            let auth = headers["authorization"].to_str().unwrap().to_owned();
            let rest = auth.strip_prefix("ALIPAY-SHA256withRSA ").unwrap();
            let (auth_string, sign) = rest.rsplit_once(",sign=").unwrap();
            let to_sign = format!("{auth_string}\nPOST\n/v3/alipay/trade/query\n{body}\n");
            if app_public
                .verify(SignType::Rsa2, to_sign.as_bytes(), sign)
                .is_err()
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    HeaderMap::new(),
                    r#"{"code":"invalid-signature","message":"bad"}"#.to_owned(),
                );
            }
            let answer = r#"{"trade_no":"2024010222001400000000000001","out_trade_no":"A1","trade_status":"TRADE_SUCCESS","total_amount":"88.88"}"#;
            let sig = ali
                .sign(
                    SignType::Rsa2,
                    format!("1704135845999\nn0nce\n{answer}\n").as_bytes(),
                )
                .unwrap();
            let mut h = HeaderMap::new();
            h.insert("alipay-timestamp", "1704135845999".parse().unwrap());
            h.insert("alipay-nonce", "n0nce".parse().unwrap());
            h.insert("alipay-signature", sig.parse().unwrap());
            let body = if tamper.load(Ordering::SeqCst) {
                answer.replace("88.88", "0.01")
            } else {
                answer.to_owned()
            };
            (StatusCode::OK, h, body)
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/v3/alipay/trade/query", post(handler));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let core = Alipay::builder("2021000122671080", app, ali.public_key())
        .gateway(format!("http://{addr}/gateway.do"))
        .build();
    let client = AlipayClient::new(core);
    let body = serde_json::json!({"out_trade_no": "A1"});
    let v = client
        .execute_v3(
            reqwest::Method::POST,
            "/v3/alipay/trade/query",
            Some(&body),
            None,
        )
        .await
        .unwrap();
    assert_eq!(v["total_amount"], "88.88");
    tamper.store(true, Ordering::SeqCst);
    let e = client
        .execute_v3(
            reqwest::Method::POST,
            "/v3/alipay/trade/query",
            Some(&body),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadSignature), "{e:?}");
}
