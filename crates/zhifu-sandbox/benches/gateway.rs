//! Cost of one gateway call inside the process: intake, signature check,
//! state lookup, signed response. RSA-2048 signing of the answer dominates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark's setup may panic

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;
use zhifu_sandbox::{Sandbox, SandboxConfig, SandboxMode};

fn gateway(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (router, query) = rt.block_on(async {
        let sb = Sandbox::start(SandboxConfig {
            mode: SandboxMode::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
        let key = alipay::AppPrivateKey::generate().unwrap();
        let app = sb.register_app(None, key.public_key()).await.unwrap();
        let alipay = alipay::Alipay::builder(app.app_id, key, app.alipay_public_key).build();
        let mut create = alipay::TradeCreate::new(
            alipay::OutTradeNo::new("BENCH1").unwrap(),
            alipay::Amount::parse("1.00").unwrap(),
            "bench",
        );
        create.buyer_id = Some("2088102146225135".into());
        let signed = alipay
            .sign_request(&create, &Default::default(), sb.now())
            .unwrap();
        let router = sb.router();
        let resp = router
            .clone()
            .oneshot(
                Request::get(format!("/gateway.do?{}", form(signed.params())))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let q = alipay
            .sign_request(
                &alipay::TradeQuery::by_out_trade_no("BENCH1"),
                &Default::default(),
                sb.now(),
            )
            .unwrap();
        (router, form(q.params()))
    });
    c.bench_function("gateway alipay.trade.query (verify + signed answer)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get(format!("/gateway.do?{query}"))
                    .body(Body::empty())
                    .unwrap();
                let resp = router.clone().oneshot(req).await.unwrap();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .unwrap();
                assert!(body.starts_with(b"{\"alipay_trade_query_response\":{\"code\":\"10000\""));
            })
        })
    });
}

fn form(p: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in p {
        s.append_pair(k, v);
    }
    s.finish()
}

criterion_group!(benches, gateway);
criterion_main!(benches);
