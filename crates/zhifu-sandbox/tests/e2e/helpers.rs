//! Test-local conveniences on top of the crate's test kit
//! (`zhifu_sandbox::testing`, re-exported here): a scripted merchant notify
//! endpoint and short constructors.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use tokio::sync::mpsc;
pub use zhifu_sandbox::testing::*;

/// One notification as received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub body: String,
    pub at: Instant,
    pub content_type: String,
}

/// A merchant notify endpoint that answers from a script, then a default.
pub struct Receiver {
    pub url: String,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Hit>>,
}

impl Receiver {
    /// Answers `script` in order, then `default` forever.
    pub async fn start(script: &[&str], default: &str) -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let script: Arc<Mutex<VecDeque<String>>> =
            Arc::new(Mutex::new(script.iter().map(|s| s.to_string()).collect()));
        let default = default.to_owned();
        let app = Router::new().route(
            "/notify",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let tx = tx.clone();
                let script = script.clone();
                let default = default.clone();
                async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let _ = tx.send(Hit {
                        body,
                        at: Instant::now(),
                        content_type: ct,
                    });
                    script.lock().unwrap().pop_front().unwrap_or(default)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            rx: tokio::sync::Mutex::new(rx),
        }
    }

    pub async fn success() -> Receiver {
        Self::start(&[], "success").await
    }

    /// The next notification, or `None` after `within`.
    pub async fn next_within(&self, within: Duration) -> Option<Hit> {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(within, rx.recv()).await.ok().flatten()
    }

    pub async fn next(&self) -> Hit {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("a notification within 10 s")
    }

    /// Everything already received, without waiting.
    pub async fn drain_now(&self) -> Vec<Hit> {
        let mut rx = self.rx.lock().await;
        let mut v = Vec::new();
        while let Ok(h) = rx.try_recv() {
            v.push(h);
        }
        v
    }
}

pub fn opts(notify_url: &str) -> alipay::RequestOptions {
    alipay::RequestOptions::new().notify_url(notify_url)
}

pub fn no(s: &str) -> alipay::OutTradeNo {
    alipay::OutTradeNo::new(s).unwrap()
}

pub fn amt(s: &str) -> alipay::Amount {
    alipay::Amount::parse(s).unwrap()
}

/// The gateway error of a failed call.
pub fn gw(e: alipay::Error) -> alipay::GatewayError {
    match e {
        alipay::Error::Gateway(g) => *g,
        other => panic!("expected a gateway error, got {other:?}"),
    }
}

pub fn unique(prefix: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "{prefix}{}",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

/// `alipay.trade.create` needs a buyer (JSAPI): the sandbox's test buyer id.
pub fn create_req(
    out: alipay::OutTradeNo,
    total: alipay::Amount,
    subject: &str,
) -> alipay::TradeCreate {
    let mut c = alipay::TradeCreate::new(out, total, subject);
    c.buyer_id = Some("2088102146225135".into());
    c
}
