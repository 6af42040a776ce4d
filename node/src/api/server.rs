//! The HTTP server around the API router, with the protections a public
//! endpoint needs against slow and hostile clients:
//!
//! - [`HEADER_READ_TIMEOUT`]: a client must send a complete request head
//!   within this time (slowloris: headers a byte at a time), and an idle
//!   keep-alive connection is closed after it.
//! - [`REQUEST_TIMEOUT`]: from head to response (the body read included:
//!   a body trickled in is cut off), answered `408 request_timeout`.
//! - [`WRITE_STALL_TIMEOUT`]: a response write that makes no progress for
//!   this long closes the connection (clients that never read their
//!   responses would otherwise hold buffers forever).
//! - [`CONNECTIONS_MAX`]: connections served at once; more wait in the
//!   kernel's accept queue until one closes, so memory is bounded by
//!   connections × ([`HEADER_BYTES_MAX`] + [`super::BODY_BYTES_MAX`]).
//!
//! HTTP/1.1 only: wallets, merchants' tills and the explorer speak it, and
//! one request at a time per connection makes the connection cap a request
//! cap too.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use super::ApiError;

/// Time to send a complete request head; also the idle keep-alive limit.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time from a request's head to its response, body read included. The
/// API's handlers answer in milliseconds; this only stops slow senders and
/// stuck requests from holding a connection.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A response write with no progress for this long closes the connection.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Connections served at once (leaves room under a 1024 file-descriptor
/// limit for libp2p's 512 connections and the store).
pub const CONNECTIONS_MAX: usize = 384;

/// Largest request head (request line and headers) buffered per connection.
pub const HEADER_BYTES_MAX: usize = 16 * 1024;

/// After an accept error (out of file descriptors), wait this long before
/// accepting again instead of spinning.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Middleware: a request that has no response after [`REQUEST_TIMEOUT`] is
/// answered `408 request_timeout` (and its handler dropped).
pub async fn request_timeout(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("no complete request and response within {REQUEST_TIMEOUT:?}"),
        )
        .into_response(),
    }
}

/// Largest error body rewritten by [`json_errors`]: extractor rejections
/// are one line.
const PLAIN_ERROR_BYTES_MAX: usize = 4 * 1024;

/// Middleware: every error answer is JSON. Handlers answer with
/// [`ApiError`] already; this rewrites what axum's extractors and router
/// answer in plain text (a path segment or query string that is not valid
/// UTF-8 or not the right type, a wrong method) into
/// `{"error": {"code", "message"}}` with the same status.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "malformed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        _ if status.is_server_error() => "internal",
        _ => "bad_request",
    };
    let body = axum::body::to_bytes(response.into_body(), PLAIN_ERROR_BYTES_MAX)
        .await
        .unwrap_or_default();
    let mut message = String::from_utf8_lossy(&body).trim().to_string();
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    ApiError::new(status, code, message).into_response()
}

/// Serves `router` on `listener` until the task is dropped. Never returns
/// on its own: accept errors are logged and retried.
pub async fn serve(listener: TcpListener, router: Router) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "API accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let io = TokioIo::new(WriteStallGuard::new(stream, WRITE_STALL_TIMEOUT));
            let result = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(HEADER_BYTES_MAX)
                .keep_alive(true)
                .serve_connection(io, service)
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "API connection closed");
            }
            drop(permit);
        });
    }
}

/// A TCP stream whose writes fail with `TimedOut` once they have been
/// blocked (the peer's receive window full) for the stall timeout.
struct WriteStallGuard {
    inner: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteStallGuard {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        WriteStallGuard {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Maps a write poll: progress clears the stall clock, `Pending` starts
    /// it, and a stall past the timeout becomes an error.
    fn guard<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client stopped reading its response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncRead for WriteStallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteStallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_stalled_write_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The peer connects and never reads.
        let _peer = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut guarded = WriteStallGuard::new(stream, Duration::from_millis(200));
        let chunk = vec![0u8; 64 * 1024];
        let started = std::time::Instant::now();
        let err = loop {
            if let Err(e) = guarded.write_all(&chunk).await {
                break e;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never stalled");
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn progress_resets_the_stall_clock() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut peer = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let mut guarded = WriteStallGuard::new(stream, Duration::from_millis(300));
        let reader = tokio::spawn(async move {
            // A slow but steady reader.
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0;
            while total < 8 * 1024 * 1024 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                match peer.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            total
        });
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..8 {
            guarded
                .write_all(&chunk)
                .await
                .expect("a reading peer never stalls");
        }
        drop(guarded);
        assert_eq!(reader.await.unwrap(), 8 * 1024 * 1024);
    }
}
