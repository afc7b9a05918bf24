//! The listener's limits against real sockets: a client trickling its
//! headers is cut off, one trickling its body gets `408`, an idle
//! connection is closed, the connection cap holds, and while 200 slow
//! clients hang on, `/healthz` still answers.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zhifu_server::http::{ListenerLimits, serve_with_limits};

async fn start(limits: ListenerLimits) -> String {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/echo", post(|body: axum::body::Bytes| async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve_with_limits(
        listener,
        app,
        std::future::pending::<()>(),
        limits,
    ));
    addr
}

fn short() -> ListenerLimits {
    ListenerLimits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(3),
        max_connections: 1024,
    }
}

/// Reads until the peer closes (or 10 s pass); returns what came and when.
async fn read_to_close(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    (
        String::from_utf8_lossy(&buf).into_owned(),
        started.elapsed(),
    )
}

async fn healthz(addr: &str) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_to_close(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    started.elapsed()
}

#[tokio::test]
async fn a_client_trickling_headers_is_cut_off() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let writer = async {
        for b in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " {
            if s.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    let (text, took) = read_to_close(&mut s).await;
    assert!(!text.contains("200 OK"), "{text}");
    assert!(
        took < Duration::from_secs(5),
        "still connected after {took:?}"
    );
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_408() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    for _ in 0..100 {
        if s.write_all(b"x").await.is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(400), s.read(&mut buf)).await
        {
            answer.push_str(&String::from_utf8_lossy(&buf[..n]));
            break;
        }
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn idle_connections_are_closed_and_the_cap_holds() {
    let addr = start(ListenerLimits {
        max_connections: 2,
        ..short()
    })
    .await;
    // Two idle connections take both slots…
    let mut a = TcpStream::connect(&addr).await.unwrap();
    let mut b = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // …so a third request waits; it is served once the idle ones are cut.
    let waited = healthz(&addr).await;
    assert!(
        waited >= Duration::from_millis(700),
        "served at once: {waited:?}"
    );
    let (_, ta) = read_to_close(&mut a).await;
    let (_, tb) = read_to_close(&mut b).await;
    assert!(ta < Duration::from_secs(3) && tb < Duration::from_secs(3));
}

#[tokio::test]
async fn a_silent_kept_alive_connection_is_closed() {
    let addr = start(short()).await;
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then silent: the next request's head is due within the
    // header timeout (1 s here), so the connection is closed then.
    let (_, took) = read_to_close(&mut s).await;
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}

#[tokio::test]
async fn two_hundred_slow_clients_are_cut_while_health_answers() {
    let addr = start(ListenerLimits {
        header_timeout: Duration::from_secs(2),
        ..short()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    for _ in 0..3 {
        let took = healthz(&addr).await;
        assert!(took < Duration::from_millis(500), "/healthz took {took:?}");
    }
    let started = Instant::now();
    for mut s in slow {
        read_to_close(&mut s).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "every slow client cut within the header timeout"
    );
}
