//! Pooled HTTP/1.1 connections to one plaintext upstream.
//!
//! hyper-util's general client serves any scheme and authority from one pool: every request
//! hashes its pool key, builds a connect future it rarely needs, races it against the pool
//! checkout, and spawns a task that waits for the connection to become ready again. A service
//! has exactly one upstream, so this pool is a stack of idle connections behind a mutex:
//!
//! * checkout pops the most recently used connection (its socket and buffers are warm) and
//!   connects a new one only when none is left;
//! * a connection goes back on the stack when the upstream's response body has been read to
//!   its end (or had none) and hyper is ready for the next request on it — if the upstream
//!   answered before the request body was all sent, a task of its own waits for that, so no
//!   request ever waits on another's upload; never while a response is still streaming, never
//!   after an upgrade, and never when the request or its body was cut short (hyper closes such
//!   connections);
//! * a request that the connection refused before sending a byte of it (the upstream had just
//!   closed an idle connection) is sent again on another connection; one that was sent is not,
//!   since the upstream may have acted on it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

use crate::upstream::BoxError;

/// Idle connections kept per upstream; more are closed when they come back.
const MAX_IDLE: usize = 512;

/// An idle connection older than this is closed rather than reused (the upstream may be about
/// to close it; hyper-util's client uses the same 90 s). Stale ones at the bottom of the stack,
/// left there after a burst, are closed when the next connection comes back.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request reached no upstream response.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// No connection could be made.
    Connect(BoxError),
    /// The connection failed while the request was sent or the response awaited.
    Http(hyper::Error),
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Connect(e) => write!(f, "cannot connect: {e}"),
            PoolError::Http(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Connect(e) => Some(&**e),
            PoolError::Http(e) => Some(e),
        }
    }
}

struct Idle {
    sender: SendRequest<Incoming>,
    since: Instant,
}

struct Inner {
    /// `host:port`, as connected to.
    authority: String,
    /// `http://host:port`, for the connector.
    uri: http::Uri,
    /// hyper-util's connector: name resolution, every address tried (IPv6 and IPv4 raced), the
    /// connect timeout, `TCP_NODELAY`.
    connector: HttpConnector,
    /// Oldest first: connections are pushed as they come back.
    idle: Mutex<Vec<Idle>>,
    idle_timeout: Duration,
}

impl Inner {
    /// Takes a connection back. One that is not ready yet (hyper is still sending the request
    /// body that the upstream answered early) is put back only once it is, by a task of its
    /// own, so no request ever waits on another's upload.
    fn put_when_ready(self: &Arc<Self>, mut sender: SendRequest<Incoming>) {
        if sender.is_ready() {
            return self.put(sender);
        }
        if sender.is_closed() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.clone();
        runtime.spawn(async move {
            if sender.ready().await.is_ok() {
                pool.put(sender);
            }
        });
    }

    fn put(&self, sender: SendRequest<Incoming>) {
        if !sender.is_ready() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Only the most recent connections are reused, so after a burst the older ones would
        // sit here for good: close those idle too long (one comparison when there are none).
        if idle
            .first()
            .is_some_and(|i| now - i.since > self.idle_timeout)
        {
            let stale = idle.partition_point(|i| now - i.since > self.idle_timeout);
            idle.drain(..stale);
        }
        if idle.len() < MAX_IDLE {
            idle.push(Idle { sender, since: now });
        }
    }

    fn pop(&self) -> Option<Idle> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }
}

/// The connection pool of one plaintext HTTP/1.1 upstream. Cheap to clone.
#[derive(Clone)]
pub(crate) struct H1Pool {
    inner: Arc<Inner>,
    /// The `Host` header every request carries (the authority, without a default port).
    host: HeaderValue,
}

impl H1Pool {
    /// A pool for `authority` (`host:port`), connecting within `connect_timeout`.
    pub(crate) fn new(authority: &str, connect_timeout: Duration) -> Result<Self, String> {
        let host = authority.strip_suffix(":80").unwrap_or(authority);
        let host = HeaderValue::from_str(host)
            .map_err(|_| format!("upstream address {authority:?} is not a valid Host header"))?;
        let uri = format!("http://{authority}")
            .parse()
            .map_err(|e| format!("upstream address {authority:?}: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        Ok(H1Pool {
            inner: Arc::new(Inner {
                authority: authority.to_owned(),
                uri,
                connector,
                idle: Mutex::new(Vec::new()),
                idle_timeout: IDLE_TIMEOUT,
            }),
            host,
        })
    }

    /// The `Host` header value for requests to this upstream.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Connections idle in the pool now.
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.inner.idle.lock().unwrap().len()
    }

    /// An idle connection that is ready for a request, if one is left. Connections are pooled
    /// only when ready; one that is not any more has closed since, and is dropped.
    fn checkout(&self) -> Option<SendRequest<Incoming>> {
        while let Some(Idle { sender, since }) = self.inner.pop() {
            if sender.is_ready() && since.elapsed() <= self.inner.idle_timeout {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, PoolError> {
        let io = self
            .inner
            .connector
            .clone()
            .oneshot(self.inner.uri.clone())
            .await
            .map_err(|e| PoolError::Connect(e.into()))?;
        let (sender, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(PoolError::Http)?;
        let authority = self.inner.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(upstream = %authority, error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Sends `req` (origin-form target, `Host` set) on a pooled or new connection. The
    /// response's body hands the connection back when it has been read to its end; `upgrade`
    /// requests keep theirs.
    pub(crate) async fn send(
        &self,
        mut req: Request<Incoming>,
        upgrade: bool,
    ) -> Result<Response<PooledBody>, PoolError> {
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(s) => (s, true),
                // Boxed: the common path's future need not carry a connect's state.
                None => (Box::pin(self.connect()).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    let keep = !upgrade && resp.status() != http::StatusCode::SWITCHING_PROTOCOLS;
                    let back = keep.then(|| (sender, self.inner.clone()));
                    return Ok(resp.map(|body| PooledBody { body, back }));
                }
                Err(mut e) => match e.take_message() {
                    // Not sent: the pooled connection was closing. A fresh one gets it.
                    Some(r) if reused => req = r,
                    _ => return Err(PoolError::Http(e.into_error())),
                },
            }
        }
    }
}

/// An upstream response body that returns its connection to the pool once read to the end.
pub(crate) struct PooledBody {
    body: Incoming,
    back: Option<(SendRequest<Incoming>, Arc<Inner>)>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((sender, pool)) = self.back.take() {
            pool.put_when_ready(sender);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.body).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body nobody read because it had nothing (HEAD, 204, 304, `Content-Length: 0`) still
        // leaves a reusable connection; a body dropped part-way does not.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper_util::rt::TokioIo;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A raw HTTP/1.1 upstream: `respond(n)` gives the bytes of the n-th response on a
    /// connection; counts the connections it accepted.
    async fn upstream(
        respond: fn(usize, &str) -> Vec<u8>,
    ) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut n = 0;
                    loop {
                        let mut chunk = [0u8; 4096];
                        let Ok(k) = s.read(&mut chunk).await else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                            buf.drain(..end + 4);
                            if head.contains("x-slow: 1") {
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            let out = respond(n, &head);
                            n += 1;
                            if out.is_empty() {
                                return; // close without answering
                            }
                            if s.write_all(&out).await.is_err() {
                                return;
                            }
                            if head.contains("x-close: 1") {
                                return; // the response said `connection: close`
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    /// A proxy-side request: the pool needs an `Incoming` body, which only hyper makes, so a
    /// small front server turns client requests into pool sends.
    async fn through_pool(pool: H1Pool) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                let pool = pool.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                        let pool = pool.clone();
                        async move {
                            req.headers_mut()
                                .insert(http::header::HOST, pool.host().clone());
                            let drop_body = req.headers().contains_key("x-drop-body");
                            match pool.send(req, false).await {
                                // The proxy's client went away after the head: the upstream
                                // body is dropped unread.
                                Ok(r) if drop_body => {
                                    let status = r.status();
                                    drop(r);
                                    Ok(Response::builder()
                                        .status(status)
                                        .body(Empty::new().map_err(|n| match n {}).boxed_unsync())
                                        .unwrap())
                                }
                                Ok(mut r) => {
                                    // Hop-by-hop, as the proxy strips it.
                                    r.headers_mut().remove(http::header::CONNECTION);
                                    Ok::<_, std::convert::Infallible>(r.map(|b| {
                                        b.map_err(crate::upstream::BoxError::from).boxed_unsync()
                                    }))
                                }
                                Err(e) => Ok(Response::builder()
                                    .status(502)
                                    .body(
                                        Full::new(Bytes::from(e.to_string()))
                                            .map_err(|n| match n {})
                                            .boxed_unsync(),
                                    )
                                    .unwrap()),
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        addr
    }

    async fn client(addr: std::net::SocketAddr) -> http1::SendRequest<Empty<Bytes>> {
        let s = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = http1::handshake(TokioIo::new(s)).await.unwrap();
        tokio::spawn(conn);
        sender
    }

    async fn get(
        c: &mut http1::SendRequest<Empty<Bytes>>,
        method: &str,
        path: &str,
        extra: Option<(&'static str, &'static str)>,
    ) -> (u16, String) {
        c.ready().await.unwrap();
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "front");
        if let Some((k, v)) = extra {
            b = b.header(k, v);
        }
        let resp = c.send_request(b.body(Empty::new()).unwrap()).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn ok(n: usize, head: &str) -> Vec<u8> {
        let body = format!("n={n} host={}", head.contains("host: 127.0.0.1:"));
        if head.contains("x-close: 1") {
            return format!(
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
        }
        if head.starts_with("HEAD") {
            return format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                .into_bytes();
        }
        if head.contains("/empty") {
            return b"HTTP/1.1 204 No Content\r\n\r\n".to_vec();
        }
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn sequential_requests_reuse_one_connection_and_carry_the_host() {
        let (up, accepted) = upstream(ok).await;
        let pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        let mut c = client(front).await;
        for i in 0..5 {
            assert_eq!(
                get(&mut c, "GET", "/x", None).await,
                (200, format!("n={i} host=true"))
            );
        }
        // Bodiless responses give their connection back too.
        assert_eq!(get(&mut c, "HEAD", "/x", None).await.0, 200);
        assert_eq!(get(&mut c, "GET", "/empty", None).await.0, 204);
        assert_eq!(
            get(&mut c, "GET", "/x", None).await,
            (200, "n=7 host=true".into())
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one upstream connection"
        );
        assert_eq!(pool.idle_count(), 1);
    }

    #[tokio::test]
    async fn connections_left_idle_after_a_burst_are_closed() {
        let (up, accepted) = upstream(ok).await;
        let mut pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        Arc::get_mut(&mut pool.inner).unwrap().idle_timeout = Duration::from_millis(300);
        let front = through_pool(pool.clone()).await;
        // A burst of two at once: two upstream connections, both idle afterwards.
        let (mut a, mut b) = (client(front).await, client(front).await);
        let (ra, rb) = tokio::join!(
            get(&mut a, "GET", "/x", Some(("x-slow", "1"))),
            get(&mut b, "GET", "/x", Some(("x-slow", "1")))
        );
        assert_eq!((ra.0, rb.0), (200, 200));
        assert_eq!((accepted.load(Ordering::SeqCst), pool.idle_count()), (2, 2));
        // Steady traffic reuses the newest; the other goes stale and is closed.
        let until = Instant::now() + Duration::from_millis(700);
        while Instant::now() < until {
            assert_eq!(get(&mut a, "GET", "/x", None).await.0, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_the_upstream_closes_are_not_reused() {
        let (up, accepted) = upstream(ok).await;
        let pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        let mut c = client(front).await;
        // The upstream answers and closes (it saw `x-close`): the next request needs a new
        // connection and still succeeds.
        assert_eq!(
            get(&mut c, "GET", "/x", Some(("x-close", "1"))).await.0,
            200
        );
        assert_eq!(
            get(&mut c, "GET", "/x", None).await,
            (200, "n=0 host=true".into())
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_idle_connection_closed_by_the_upstream_is_replaced() {
        // Answers the first request, then closes on the second without answering: a request
        // sent there fails (it was sent), and the connection is never pooled again.
        fn once(n: usize, head: &str) -> Vec<u8> {
            if n == 0 { ok(n, head) } else { Vec::new() }
        }
        let (up, accepted) = upstream(once).await;
        let pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        let mut c = client(front).await;
        assert_eq!(get(&mut c, "GET", "/x", None).await.0, 200);
        let (status, why) = get(&mut c, "GET", "/x", None).await;
        assert_eq!(status, 502, "{why}");
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(get(&mut c, "GET", "/x", None).await.0, 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_body_cut_short_does_not_poison_the_pool() {
        fn big(n: usize, _head: &str) -> Vec<u8> {
            let body = vec![b'a' + n as u8; 1 << 20];
            let mut out =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            out.extend_from_slice(&body);
            out
        }
        let (up, accepted) = upstream(big).await;
        let pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        let mut c = client(front).await;
        // The body is dropped after its head: the upstream connection is mid-body.
        assert_eq!(
            get(&mut c, "GET", "/x", Some(("x-drop-body", "1"))).await.0,
            200
        );
        assert_eq!(pool.idle_count(), 0);
        let (status, body) = get(&mut c, "GET", "/x", None).await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), 1 << 20);
        assert!(
            body.bytes().all(|b| b == b'a'),
            "a fresh connection's first response"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// A request body that sends one chunk and then never another.
    struct Stalled(bool);

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"first chunk")))))
        }
    }

    #[tokio::test]
    async fn a_request_never_waits_on_another_clients_upload() {
        let (up, accepted) = upstream(ok).await;
        let pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        // Client A uploads a body it never finishes; the upstream answers at once.
        let s = TcpStream::connect(front).await.unwrap();
        let (mut a, conn) = http1::handshake::<_, Stalled>(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = a
            .send_request(
                Request::post("/upload")
                    .header("host", "front")
                    .body(Stalled(false))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.into_body().collect().await.unwrap().to_bytes(),
            "n=0 host=true"
        );
        // The upstream connection is still sending A's body: client B gets another one
        // instead of waiting for it (before, B waited until the upstream timeout).
        let mut b = client(front).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), get(&mut b, "GET", "/x", None))
            .await
            .expect("B is not held up by A's upload");
        assert_eq!(answer, (200, "n=0 host=true".into()));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let pool = H1Pool::new(&addr.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool).await;
        let mut c = client(front).await;
        let (status, why) = get(&mut c, "GET", "/x", None).await;
        assert_eq!(status, 502);
        assert!(why.starts_with("cannot connect"), "{why}");
    }

    #[test]
    fn the_default_port_is_left_out_of_the_host() {
        assert_eq!(
            H1Pool::new("api.internal:80", Duration::from_secs(1))
                .unwrap()
                .host(),
            "api.internal"
        );
        assert_eq!(
            H1Pool::new("10.0.0.2:8080", Duration::from_secs(1))
                .unwrap()
                .host(),
            "10.0.0.2:8080"
        );
    }
}
