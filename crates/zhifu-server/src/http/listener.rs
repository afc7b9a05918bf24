//! The listener every long-running entry point serves through (`zhifu
//! serve`, `zhifu dev`, FC/SCF, `zhifu reconcile --listen`): a hyper
//! connection loop with limits on what one slow or idle client can hold.
//!
//! - **headers**: a connection that has not sent a complete request head
//!   within [`ListenerLimits::header_timeout`] is closed (hyper's
//!   `header_read_timeout`; also ends idle keep-alive connections);
//! - **whole request**: a request not answered within
//!   [`ListenerLimits::request_timeout`] — a body trickled one byte at a
//!   time included, since handlers read the body — is answered `408`;
//! - **body**: a body that stalls longer than
//!   [`ListenerLimits::body_timeout`] between two chunks fails the read;
//! - **silence**: a new connection that sends nothing within the header
//!   timeout is closed (hyper's header timer starts only with its first
//!   byte; between kept-alive requests it runs from the previous answer),
//!   and so is one where nothing moved either way for
//!   [`ListenerLimits::idle_timeout`] (a peer that stopped reading);
//! - **connections**: at most [`ListenerLimits::max_connections`] are
//!   served at once; the next one waits in the kernel's accept queue.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

pub use crate::config::ListenerLimits;

/// How long open connections get to finish when the shutdown signal came.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` within `limits` until `shutdown` completes,
/// then lets open connections finish (up to 10 s). The peer address is
/// available to handlers as `ConnectInfo<SocketAddr>`.
///
/// # Errors
/// Never for one connection's failure; only if accepting fails for good.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ListenerLimits,
) -> std::io::Result<()> {
    let app = app
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let svc = app
            .clone()
            .layer(axum::Extension(ConnectInfo(peer)))
            .map_request(|r: axum::http::Request<hyper::body::Incoming>| {
                r.map(axum::body::Body::new)
            });
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        let (first_byte, idle) = (limits.header_timeout, limits.idle_timeout);
        tokio::spawn(async move {
            // A connection that never speaks holds a slot for nothing.
            if !matches!(
                tokio::time::timeout(first_byte, stream.readable()).await,
                Ok(Ok(()))
            ) {
                drop(permit);
                return;
            }
            let io = TokioIo::new(IdleTimeout::new(stream, idle));
            let conn = builder
                .serve_connection_with_upgrades(io, TowerToHyperService::new(svc))
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain time; closing");
    }
    Ok(())
}

/// A stream that fails its pending read or write once nothing moved either
/// way for `after`: how a silent kept-alive connection gives its slot back.
struct IdleTimeout {
    inner: tokio::net::TcpStream,
    after: Duration,
    /// When bytes last moved. Reads and writes only note the time; the
    /// timer is moved when it fires early (at most once per `after`), not
    /// on every read and write of every request.
    last: tokio::time::Instant,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleTimeout {
    fn new(inner: tokio::net::TcpStream, after: Duration) -> Self {
        IdleTimeout {
            inner,
            after,
            last: tokio::time::Instant::now(),
            deadline: Box::pin(tokio::time::sleep(after)),
        }
    }

    fn touch(&mut self) {
        self.last = tokio::time::Instant::now();
    }

    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        while self.deadline.as_mut().poll(cx).is_ready() {
            let due = self.last + self.after;
            if due <= tokio::time::Instant::now() {
                return true;
            }
            // Something moved since the timer was set: wait out the rest.
            self.deadline.as_mut().reset(due);
        }
        false
    }
}

fn idle_error() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "connection idle")
}

impl tokio::io::AsyncRead for IdleTimeout {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                self.touch();
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncWrite for IdleTimeout {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        match std::pin::Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(r) => {
                self.touch();
                Poll::Ready(r)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(idle_error())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
