//! Middleware for every API response: the API version header, the per-request log line and
//! metrics, and panics turned into the error envelope.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use prometheus_client::metrics::counter::Counter;

use super::error::{ApiError, ErrorCode};
use crate::metrics::{HttpRequest, Metrics, method_label};

/// The endpoint that served a request, set by the dispatcher for the log line and the
/// metrics' `route` label: always a fixed name, never the path.
#[derive(Debug, Clone, Copy)]
pub struct RouteName(pub &'static str);

/// Adds `Docker-Distribution-API-Version: registry/2.0`, which docker checks on `/v2/`.
pub async fn api_version(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// While the process drains before shutting down (`ready` is false), answers every HTTP/1
/// request with `Connection: close`, so clients and load balancers stop reusing the
/// connection after this response instead of racing a later close of an idle keep-alive
/// connection. HTTP/2 forbids the header (RFC 9113 section 8.2.2); the server ends those
/// connections with a GOAWAY instead.
pub async fn close_when_draining(
    axum::extract::State(ready): axum::extract::State<Arc<std::sync::atomic::AtomicBool>>,
    request: Request,
    next: Next,
) -> Response {
    let http1 = request.version() < axum::http::Version::HTTP_2;
    let mut response = next.run(request).await;
    if http1 && !ready.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// One log line per request and its metrics: method, route, status, bytes in and out,
/// latency (to the response head; streamed bodies continue after it). Never the query string
/// or headers, which may carry credentials. Response bytes are counted in the metrics as the
/// body is actually sent ([`CountedBody`]); the log line has the size known at the head.
pub async fn request_log(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // Count the body bytes actually received (streamed uploads carry no Content-Length).
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let request = request.map(|body| {
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                counter.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            frame
        }))
    });
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let bytes_in = received.load(Ordering::Relaxed);
    let route = response
        .extensions()
        .get::<RouteName>()
        .map_or("unknown", |r| r.0);
    let status = response.status().as_u16();
    let bytes_out = response
        .body()
        .size_hint()
        .exact()
        .unwrap_or_else(|| content_length(response.headers()));
    metrics.http_request(&HttpRequest {
        route,
        method: method_label(&method),
        status,
        duration: elapsed,
        bytes_in,
    });
    // Microsecond precision is plenty and keeps the line short.
    let latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3;
    tracing::info!(
        target: "berth::request",
        %method,
        route,
        status,
        bytes_in,
        bytes_out,
        latency_ms,
        "request"
    );
    let sent = metrics.response_bytes(route);
    response.map(|body| Body::new(CountedBody { inner: body, sent }))
}

/// A response body that counts its bytes as they are handed to the connection, so a
/// download cut short counts what was sent, not what was promised. Size and end-of-stream
/// hints pass through unchanged (they decide `Content-Length` and chunking).
struct CountedBody {
    inner: Body,
    sent: Counter,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.sent.inc_by(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn content_length(headers: &axum::http::HeaderMap) -> u64 {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Turns a handler panic into a `500` envelope that reveals nothing.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "request handler panicked");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unknown,
        "internal server error",
    )
    .into_response()
}
