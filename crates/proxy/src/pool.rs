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
//!
//! Requests without a body that ask for no upgrade — most API calls — take the *direct lane*:
//! no hyper client connection and no task of its own, the request's task writes the head and
//! reads the response on the socket itself ([`crate::h1`] frames it), and the response body
//! reads the socket as it is polled. That saves, per request, the hand-over to a connection
//! task and back (a channel send, two task wake-ups) and hyper's client state machine. Direct
//! connections have a stack of their own and never carry a body request. A pooled one that
//! became readable while idle (the upstream closed it, timed it out with a `408`, or sent
//! anything else) is dropped at checkout: bytes nobody asked for are never taken for the next
//! request's answer. A request whose connection still turns out closed before any byte of an
//! answer came back, or that gets a `408` on a reused connection, is sent once more on a new
//! connection if its method is idempotent (RFC 9110 §9.2.2, as Go's and curl's clients do);
//! `POST` and `PATCH` are never sent twice. A read that leaves the socket empty forgets its
//! readiness then and there, from a readiness snapshot taken before the read, so whatever
//! arrives after it (however soon) marks the socket readable again.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::h1::{self, Chunk, ChunkedDecoder, Framing};
use crate::upstream::{Added, BoxError, ReqBody};

/// Idle connections kept per upstream; more are closed when they come back.
const MAX_IDLE: usize = 512;

/// An idle connection older than this is closed rather than reused (the upstream may be about
/// to close it; hyper-util's client uses the same 90 s). Stale ones at the bottom of the stack,
/// left there after a burst, are closed when the next connection comes back.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A direct connection's read buffer grows by this much when nearly full; a read that fills
/// it doubles the next one, up to [`READ_MAX`] (large bodies come in large reads).
const READ_CHUNK: usize = 16 * 1024;

/// The most a direct connection reads at once.
const READ_MAX: usize = 256 * 1024;

/// A direct connection whose request-head buffer grew past this (a client's large head) goes
/// back to the pool with a fresh one.
const WRITE_KEEP: usize = 16 * 1024;

/// A direct connection whose read buffer grew past this (a large response read in one piece)
/// goes back to the pool with a fresh one.
const READ_KEEP: usize = 64 * 1024;

/// Why a request reached no upstream response.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// No connection could be made.
    Connect(BoxError),
    /// The connection failed while the request was sent or the response awaited.
    Http(hyper::Error),
    /// A direct-lane socket failed while the request was sent or the response head read.
    Io(io::Error),
    /// The upstream closed a direct-lane connection before its response head was complete.
    Closed,
    /// The upstream's response head is not valid HTTP/1.1.
    Protocol(h1::ProtocolError),
    /// No response head before the request's deadline.
    TimedOut,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Connect(e) => write!(f, "cannot connect: {e}"),
            PoolError::Http(e) => write!(f, "{e}"),
            PoolError::Io(e) => write!(f, "upstream connection failed: {e}"),
            PoolError::Closed => write!(f, "upstream closed the connection before answering"),
            PoolError::Protocol(e) => write!(f, "{e}"),
            PoolError::TimedOut => write!(f, "upstream did not answer in time"),
        }
    }
}

impl std::error::Error for PoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PoolError::Connect(e) => Some(&**e),
            PoolError::Http(e) => Some(e),
            PoolError::Io(e) => Some(e),
            PoolError::Closed | PoolError::TimedOut => None,
            PoolError::Protocol(e) => Some(e),
        }
    }
}

/// A pooled connection and when it went idle.
struct Idle<C> {
    conn: C,
    since: Instant,
}

/// A connection of the direct lane: the socket and its buffers, nothing else.
struct Direct {
    stream: TcpStream,
    /// Bytes read and not consumed yet. Response heads and body frames are split off it, so
    /// they share its allocation; it is reclaimed once they have been dropped.
    read: BytesMut,
    /// The request head (kept between requests for its allocation).
    write: Vec<u8>,
    /// How much the read buffer grows by next.
    grow: usize,
    /// The deadline of the request in progress: one timer for the connection's life, moved
    /// to each request's deadline (a later deadline is a cheap update, not a new timer).
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Direct {
    fn new(stream: TcpStream) -> Self {
        Direct {
            stream,
            read: BytesMut::new(),
            write: Vec::new(),
            grow: READ_CHUNK,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        }
    }

    /// Whether the request's deadline has passed (if not, the task is woken when it does).
    fn poll_late(&mut self, cx: &mut Context<'_>) -> bool {
        self.timer.as_mut().poll(cx).is_ready()
    }
}

/// Puts `conn` on an idle stack, closing connections idle longer than `timeout` first.
fn push_idle<C>(stack: &Mutex<Vec<Idle<C>>>, conn: C, timeout: Duration) {
    let now = Instant::now();
    let mut idle = stack.lock().unwrap_or_else(|p| p.into_inner());
    // Only the most recent connections are reused, so after a burst the older ones would sit
    // here for good: close those idle too long (one comparison when there are none).
    if idle.first().is_some_and(|i| now - i.since > timeout) {
        let stale = idle.partition_point(|i| now - i.since > timeout);
        idle.drain(..stale);
    }
    if idle.len() < MAX_IDLE {
        idle.push(Idle { conn, since: now });
    }
}

fn pop_idle<C>(stack: &Mutex<Vec<Idle<C>>>) -> Option<Idle<C>> {
    stack.lock().unwrap_or_else(|p| p.into_inner()).pop()
}

struct Inner {
    /// `host:port`, as connected to.
    authority: String,
    /// `http://host:port`, for the connector.
    uri: http::Uri,
    /// hyper-util's connector: name resolution, every address tried (IPv6 and IPv4 raced), the
    /// connect timeout, `TCP_NODELAY`.
    connector: HttpConnector,
    /// hyper connections (requests with bodies, upgrades). Oldest first: connections are
    /// pushed as they come back.
    idle: Mutex<Vec<Idle<SendRequest<ReqBody>>>>,
    /// Direct-lane connections, oldest first.
    direct: Mutex<Vec<Idle<Direct>>>,
    idle_timeout: Duration,
}

impl Inner {
    /// Takes a connection back. One that is not ready yet (hyper is still sending the request
    /// body that the upstream answered early) is put back only once it is, by a task of its
    /// own, so no request ever waits on another's upload.
    fn put_when_ready(self: &Arc<Self>, mut sender: SendRequest<ReqBody>) {
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

    fn put(&self, sender: SendRequest<ReqBody>) {
        if sender.is_ready() {
            push_idle(&self.idle, sender, self.idle_timeout);
        }
    }

    /// Takes a direct connection back after a response that left it reusable.
    fn put_direct(&self, mut conn: Direct) {
        if !conn.read.is_empty() {
            // The upstream sent more than the response: nothing it says there can be trusted.
            return;
        }
        if conn.read.capacity() > READ_KEEP || conn.grow > READ_CHUNK {
            conn.read = BytesMut::new();
            conn.grow = READ_CHUNK;
        }
        if conn.write.capacity() > WRITE_KEEP {
            conn.write = Vec::new();
        }
        push_idle(&self.direct, conn, self.idle_timeout);
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
                direct: Mutex::new(Vec::new()),
                idle_timeout: IDLE_TIMEOUT,
            }),
            host,
        })
    }

    /// The `Host` header value for requests to this upstream.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Connections idle in the pool now (both lanes).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.inner.idle.lock().unwrap().len() + self.inner.direct.lock().unwrap().len()
    }

    /// An idle connection that is ready for a request, if one is left. Connections are pooled
    /// only when ready; one that is not any more has closed since, and is dropped.
    fn checkout(&self) -> Option<SendRequest<ReqBody>> {
        while let Some(Idle { conn, since }) = pop_idle(&self.inner.idle) {
            if conn.is_ready() && since.elapsed() <= self.inner.idle_timeout {
                return Some(conn);
            }
        }
        None
    }

    /// An idle direct connection, if one is left that has been quiet since it went idle. One
    /// that became readable meanwhile (or whose last read did not drain the socket) is read
    /// once (a system call): if the read would block it is fine; if the upstream closed it or
    /// sent anything, it is dropped — bytes nobody asked for are never taken for the next
    /// request's answer.
    fn checkout_direct(&self) -> Option<Direct> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while let Some(Idle { conn, since }) = pop_idle(&self.inner.direct) {
            if since.elapsed() > self.inner.idle_timeout {
                continue;
            }
            match conn.stream.poll_read_ready(&mut cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => match conn.stream.try_read(&mut [0u8; 1]) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // Closed, failed, or sent something unasked.
                    _ => continue,
                },
                Poll::Ready(Err(_)) => continue,
            }
            return Some(conn);
        }
        None
    }

    async fn connect_stream(&self) -> Result<TcpStream, PoolError> {
        Ok(self
            .inner
            .connector
            .clone()
            .oneshot(self.inner.uri.clone())
            .await
            .map_err(|e| PoolError::Connect(e.into()))?
            .into_inner())
    }

    async fn connect(&self) -> Result<SendRequest<ReqBody>, PoolError> {
        let io = hyper_util::rt::TokioIo::new(self.connect_stream().await?);
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
    /// requests keep theirs. With `raw`, a response read on the direct lane carries its fields
    /// as an [`h1::RawFields`] extension (hop-by-hop ones left out) and an empty header map.
    pub(crate) async fn send(
        &self,
        mut req: Request<ReqBody>,
        upgrade: bool,
        added: Added<'_>,
        deadline: tokio::time::Instant,
        raw: bool,
    ) -> Result<Response<PooledBody>, PoolError> {
        if takes_direct_lane(&req, upgrade) {
            return self.send_direct(req, &added, deadline, raw).await;
        }
        added.insert_into(req.headers_mut());
        // Boxed: the direct lane's future need not carry this one's state.
        let sent = Box::pin(tokio::time::timeout_at(
            deadline,
            self.send_hyper(req, upgrade),
        ));
        sent.await.unwrap_or(Err(PoolError::TimedOut))
    }

    /// Sends a request with a body, or an upgrade, on an idle or new hyper connection.
    async fn send_hyper(
        &self,
        mut req: Request<ReqBody>,
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
                    return Ok(resp.map(|body| PooledBody::Hyper(HyperBody { body, back })));
                }
                Err(mut e) => match e.take_message() {
                    // Not sent: the pooled connection was closing. A fresh one gets it.
                    Some(r) if reused => req = r,
                    _ => return Err(PoolError::Http(e.into_error())),
                },
            }
        }
    }

    /// The direct lane: `req` has no body and asks for no upgrade (see [`takes_direct_lane`]).
    /// [`send`](Self::send) calls it for such requests; a caller that awaits it itself saves
    /// moving `send`'s larger future on every request.
    pub(crate) async fn send_direct(
        &self,
        req: Request<ReqBody>,
        added: &Added<'_>,
        deadline: tokio::time::Instant,
        raw: bool,
    ) -> Result<Response<PooledBody>, PoolError> {
        let (parts, _empty) = req.into_parts();
        let head_request = parts.method == Method::HEAD;
        // Idempotent methods may be sent again when a pooled connection turns out closed.
        let replayable = parts.method.is_idempotent();
        let mut head = Vec::new();
        let mut reuse = true;
        loop {
            let (mut conn, reused) = match reuse.then(|| self.checkout_direct()).flatten() {
                Some(c) => (c, true),
                None => {
                    let connect =
                        Box::pin(tokio::time::timeout_at(deadline, self.connect_stream()));
                    let stream = connect.await.unwrap_or(Err(PoolError::TimedOut))?;
                    (Direct::new(stream), false)
                }
            };
            if head.is_empty() {
                head = std::mem::take(&mut conn.write);
                encode_request_head(&parts, added, &mut head);
            }
            match exchange(&mut conn, &head, head_request, deadline, raw).await {
                // An upstream timing out a connection just as it was reused answers 408 and
                // closes it; it did not act on the request, so an idempotent one goes again.
                Ok(h) if h.status == http::StatusCode::REQUEST_TIMEOUT && reused && replayable => {
                    reuse = false;
                }
                Ok(h) => {
                    head.clear();
                    conn.write = head;
                    let state = match h.framing {
                        Framing::Empty => BodyState::Done,
                        Framing::Length(n) => BodyState::Length(n),
                        Framing::Chunked => BodyState::Chunked(ChunkedDecoder::default()),
                        Framing::Close => BodyState::Close,
                    };
                    let mut resp = Response::new(PooledBody::Direct(DirectBody {
                        conn: Some(conn),
                        state,
                        reusable: h.reusable,
                        pool: self.inner.clone(),
                    }));
                    *resp.status_mut() = h.status;
                    *resp.version_mut() = h.version;
                    *resp.headers_mut() = h.headers;
                    if let Some(raw) = h.raw {
                        resp.extensions_mut().insert(raw);
                    }
                    // A reason phrase of the upstream's own goes on (hyper's client keeps it
                    // the same way).
                    if let Some(reason) = h.reason
                        && let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason)
                    {
                        resp.extensions_mut().insert(reason);
                    }
                    return Ok(resp);
                }
                // Nothing came back on a connection the upstream had closed while it was
                // idle: an idempotent request goes once more, on a new connection.
                Err(Exchange::Lost(_)) if reused && replayable => reuse = false,
                Err(Exchange::Lost(e)) => return Err(e),
                Err(Exchange::Failed(e)) => return Err(e),
            }
        }
    }
}

/// Whether [`H1Pool::send`] sends `req` on the direct lane: no body, no upgrade, not `CONNECT`.
pub(crate) fn takes_direct_lane(req: &Request<ReqBody>, upgrade: bool) -> bool {
    !upgrade && req.body().is_end_stream() && req.method() != Method::CONNECT
}

/// Writes the head of a bodiless request: request line, `Host`, the request's header fields,
/// then the others the proxy adds.
pub(crate) fn encode_request_head(
    parts: &http::request::Parts,
    added: &Added<'_>,
    out: &mut Vec<u8>,
) {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    // `out` is the connection's buffer: after its first request it already has room for a
    // typical head, so it is not sized by walking the fields first.
    out.reserve(target.len() + 1024);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = &added.host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    added.write(out);
    // A method that normally has a body says it has none (hyper's client does the same).
    let needs_length = !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
    );
    if needs_length && !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Why a direct exchange produced no response head.
enum Exchange {
    /// Nothing at all came back: the connection was found closed or reset.
    Lost(PoolError),
    /// Anything else (a bad or partial head, a failure after bytes arrived).
    Failed(PoolError),
}

/// Sends `head` on `conn` and reads the final response head, by `deadline`.
async fn exchange(
    conn: &mut Direct,
    head: &[u8],
    head_request: bool,
    deadline: tokio::time::Instant,
    raw: bool,
) -> Result<h1::Head, Exchange> {
    conn.timer.as_mut().reset(deadline);
    let mut written = 0;
    let sent = std::future::poll_fn(|cx| {
        while written < head.len() {
            match conn.stream.poll_write_ready(cx) {
                Poll::Pending if conn.poll_late(cx) => {
                    return Poll::Ready(Err(PoolError::TimedOut));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(PoolError::Io(e))),
                Poll::Ready(Ok(())) => {}
            }
            match conn.stream.try_write(&head[written..]) {
                Ok(0) => return Poll::Ready(Err(PoolError::Closed)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(PoolError::Io(e))),
            }
        }
        Poll::Ready(Ok(()))
    });
    match sent.await {
        Ok(()) => {}
        Err(PoolError::TimedOut) => return Err(Exchange::Failed(PoolError::TimedOut)),
        Err(e) => return Err(Exchange::Lost(e)),
    }
    let mut received = false;
    let mut informational = 0;
    loop {
        if !conn.read.is_empty() {
            received = true;
            match h1::parse_head(&mut conn.read, head_request, &mut informational, raw) {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(Exchange::Failed(PoolError::Protocol(e))),
            }
        }
        let failed = |e: PoolError| {
            if received {
                Exchange::Failed(e)
            } else {
                Exchange::Lost(e)
            }
        };
        let filled = std::future::poll_fn(|cx| match poll_fill(conn, cx) {
            Poll::Pending if conn.poll_late(cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => Poll::Ready(Some(r)),
        });
        match filled.await {
            None => return Err(Exchange::Failed(PoolError::TimedOut)),
            Some(Ok(0)) => return Err(failed(PoolError::Closed)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(failed(PoolError::Io(e))),
        }
    }
}

/// Reads what the socket has into the connection's buffer; `Ok(0)` at the end of the stream.
fn poll_fill(conn: &mut Direct, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    if conn.read.capacity() - conn.read.len() < READ_CHUNK / 8 {
        conn.read.reserve(conn.grow);
    }
    let spare = conn.read.capacity() - conn.read.len();
    loop {
        // Readiness first: it takes from the task's cooperative budget, so an upstream that
        // keeps the socket readable cannot hold the worker thread.
        ready!(conn.stream.poll_read_ready(cx))?;
        // A read that leaves the socket empty (less than it had room for) also forgets the
        // socket's readiness: it runs inside `try_io`, whose readiness snapshot is taken before
        // it, so anything that arrives after the read (a `408`, a late byte, the close, while
        // the connection is idle) marks the socket readable again and the checkout sees it;
        // and the next read waits for the socket instead of finding it empty.
        let mut drained = None;
        let read = conn.stream.try_io(Interest::READABLE, || {
            match conn.stream.try_read_buf(&mut conn.read) {
                Ok(n) if n > 0 && n < spare => {
                    drained = Some(n);
                    Err(io::ErrorKind::WouldBlock.into())
                }
                other => other,
            }
        });
        match (read, drained) {
            (_, Some(n)) => return Poll::Ready(Ok(n)),
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => {}
            (Ok(n), None) => {
                if n == spare && conn.grow < READ_MAX {
                    conn.grow *= 2;
                }
                return Poll::Ready(Ok(n));
            }
            (Err(e), None) => return Poll::Ready(Err(e)),
        }
    }
}

/// An upstream response body that returns its connection to the pool once read to the end.
pub(crate) enum PooledBody {
    /// From a hyper client connection.
    Hyper(HyperBody),
    /// Read off a direct-lane socket.
    Direct(DirectBody),
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            PooledBody::Hyper(b) => Pin::new(b).poll_frame(cx),
            PooledBody::Direct(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            PooledBody::Hyper(b) => b.body.is_end_stream(),
            PooledBody::Direct(b) => b.conn.is_none() || matches!(b.state, BodyState::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            PooledBody::Hyper(b) => b.body.size_hint(),
            PooledBody::Direct(b) => match b.state {
                BodyState::Done => SizeHint::with_exact(0),
                BodyState::Length(n) => SizeHint::with_exact(n),
                BodyState::Chunked(_) | BodyState::Close => SizeHint::default(),
            },
        }
    }
}

/// A hyper client connection's response body.
pub(crate) struct HyperBody {
    body: Incoming,
    back: Option<(SendRequest<ReqBody>, Arc<Inner>)>,
}

impl HyperBody {
    fn give_back(&mut self) {
        if let Some((sender, pool)) = self.back.take() {
            pool.put_when_ready(sender);
        }
    }
}

impl HttpBody for HyperBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.body).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
        }
        r.map_err(BoxError::from)
    }
}

impl Drop for HyperBody {
    fn drop(&mut self) {
        // A body nobody read because it had nothing (HEAD, 204, 304, `Content-Length: 0`) still
        // leaves a reusable connection; a body dropped part-way does not.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

/// Where a direct-lane body is.
enum BodyState {
    /// Read to its end (or it had none).
    Done,
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Until the upstream closes.
    Close,
}

/// A response body read off a direct-lane socket as it is polled; the connection goes back to
/// the pool at its end (if the response allows reuse), and is closed if it is dropped before.
pub(crate) struct DirectBody {
    /// `None` once given back, or after a failure.
    conn: Option<Direct>,
    state: BodyState,
    reusable: bool,
    pool: Arc<Inner>,
}

impl DirectBody {
    fn give_back(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.reusable
        {
            self.pool.put_direct(conn);
        }
    }

    fn fail(&mut self, e: BoxError) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        Poll::Ready(Some(Err(e)))
    }
}

impl HttpBody for DirectBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.state {
                BodyState::Done => {
                    this.give_back();
                    return Poll::Ready(None);
                }
                BodyState::Length(left) if !conn.read.is_empty() => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(conn.read.len());
                    *left -= take as u64;
                    let data = conn.read.split_to(take).freeze();
                    if *left == 0 {
                        // The last byte: the connection is free now, whether or not the
                        // body is polled again.
                        this.state = BodyState::Done;
                        this.give_back();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyState::Chunked(decoder) => match decoder.decode(&mut conn.read) {
                    Ok(Some(Chunk::Data(data))) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Some(Chunk::Trailers(t))) => {
                        // Trailers end the body (hyper does not poll after them).
                        this.state = BodyState::Done;
                        this.give_back();
                        return Poll::Ready(Some(Ok(Frame::trailers(t))));
                    }
                    Ok(Some(Chunk::End)) => {
                        this.state = BodyState::Done;
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => return this.fail(e.into()),
                },
                BodyState::Close if !conn.read.is_empty() => {
                    let data = conn.read.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyState::Length(_) | BodyState::Close => {}
            }
            match ready!(poll_fill(conn, cx)) {
                Ok(0) if matches!(this.state, BodyState::Close) => {
                    this.state = BodyState::Done;
                    this.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    return this.fail(
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "upstream closed the connection before the response body ended",
                        )
                        .into(),
                    );
                }
                Ok(_) => {}
                Err(e) => return this.fail(e.into()),
            }
        }
    }
}

impl Drop for DirectBody {
    fn drop(&mut self) {
        // A body with nothing left (HEAD, 204, 304, `Content-Length: 0`, or read to its end)
        // leaves a reusable connection; one dropped part-way does not.
        if matches!(self.state, BodyState::Done) {
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
                            if head.contains("x-late-408: 1") {
                                // Times the idle connection out a while later, as servers do.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                let _ = s
                                    .write_all(
                                        b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
                                    )
                                    .await;
                                return;
                            }
                            if head.contains("x-late-junk: 1") {
                                // A response nobody asked for, the connection kept open.
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                let junk = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nJUNK";
                                if s.write_all(junk).await.is_err() {
                                    return;
                                }
                            }
                            let said_close =
                                String::from_utf8_lossy(&out).contains("connection: close");
                            if said_close || head.contains("x-hangup: 1") {
                                return; // closed after the response (`x-hangup`: unannounced)
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
                            match pool
                                .send(
                                    req.map(ReqBody::Hyper),
                                    false,
                                    Added::default(),
                                    tokio::time::Instant::now() + Duration::from_secs(5),
                                    false,
                                )
                                .await
                            {
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

    /// An upstream answering with `respond`, a pool for it, the front server and a client of
    /// it; the upstream's accepted-connection count.
    async fn proxied(
        respond: fn(usize, &str) -> Vec<u8>,
    ) -> (H1Pool, Arc<AtomicUsize>, http1::SendRequest<Empty<Bytes>>) {
        let (up, accepted) = upstream(respond).await;
        let pool = H1Pool::new(&up.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        (pool, accepted, client(front).await)
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
        let (pool, accepted, mut c) = proxied(ok).await;
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
        // Long enough that no pause between two of the requests below reaches it.
        Arc::get_mut(&mut pool.inner).unwrap().idle_timeout = Duration::from_secs(1);
        let front = through_pool(pool.clone()).await;
        // A burst of two at once: two upstream connections, both idle afterwards.
        let (mut a, mut b) = (client(front).await, client(front).await);
        let (ra, rb) = tokio::join!(
            get(&mut a, "GET", "/x", Some(("x-slow", "1"))),
            get(&mut b, "GET", "/x", Some(("x-slow", "1")))
        );
        assert_eq!((ra.0, rb.0), (200, 200));
        assert_eq!((accepted.load(Ordering::SeqCst), pool.idle_count()), (2, 2));
        // Steady traffic reuses the newest; the other goes stale and is closed (ten seconds at
        // most, however slow the machine).
        let stale_after = Instant::now() + Duration::from_secs(1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < stale_after || (pool.idle_count() > 1 && Instant::now() < deadline) {
            assert_eq!(get(&mut a, "GET", "/x", None).await.0, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn connections_the_upstream_closes_are_not_reused() {
        let (_pool, accepted, mut c) = proxied(ok).await;
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
    async fn a_connection_closed_on_receiving_a_request_is_retried_only_for_idempotent_ones() {
        // Answers the first request on a connection, then closes on the second without
        // answering — what an upstream closing an idle connection looks like from here.
        fn once(n: usize, head: &str) -> Vec<u8> {
            if n == 0 { ok(n, head) } else { Vec::new() }
        }
        let (pool, accepted, mut c) = proxied(once).await;
        assert_eq!(get(&mut c, "GET", "/x", None).await.0, 200);
        // A GET is idempotent: sent once more, on a new connection, and answered there.
        assert_eq!(
            get(&mut c, "GET", "/x", None).await,
            (200, "n=0 host=true".into())
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // A bodiless POST is not: it was sent, so it fails, and that connection is gone.
        let (status, why) = get(&mut c, "POST", "/x", None).await;
        assert_eq!(status, 502, "{why}");
        assert!(
            why.contains("closed the connection before answering"),
            "{why}"
        );
        assert_eq!(pool.idle_count(), 0);
        assert_eq!(get(&mut c, "POST", "/x", None).await.0, 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_post_checks_that_its_pooled_connection_is_still_open() {
        let (_pool, accepted, mut c) = proxied(ok).await;
        // Answered, then closed without saying so: the pooled connection is dead. The POST
        // finds that out before sending, and goes on a new connection.
        fresh_answer_after(&mut c, "x-hangup", "POST").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// A GET flagged `flag` (what the upstream does after answering it), a pause, then a
    /// `method` request that must be answered on a new connection (`n=0`).
    async fn fresh_answer_after(
        c: &mut http1::SendRequest<Empty<Bytes>>,
        flag: &'static str,
        method: &str,
    ) {
        assert_eq!(get(c, "GET", "/x", Some((flag, "1"))).await.0, 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            get(c, method, "/x", None).await,
            (200, "n=0 host=true".into())
        );
    }

    #[tokio::test]
    async fn bytes_an_idle_connection_received_are_never_the_next_answer() {
        let (_pool, accepted, mut c) = proxied(ok).await;
        // Answered; 50 ms later the upstream times the idle connection out with a 408. The
        // next GET sees a fresh connection's answer, not the 408.
        fresh_answer_after(&mut c, "x-late-408", "GET").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // Same for a whole response sent unasked on a connection left open: it is not the
        // answer to the next request, and that connection is not used again.
        fresh_answer_after(&mut c, "x-late-junk", "GET").await;
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_408_on_a_reused_connection_sends_an_idempotent_request_again() {
        fn timeout_second(n: usize, head: &str) -> Vec<u8> {
            if n == 1 {
                b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
                    .to_vec()
            } else {
                ok(n, head)
            }
        }
        let (_pool, accepted, mut c) = proxied(timeout_second).await;
        assert_eq!(get(&mut c, "GET", "/x", None).await.0, 200);
        assert_eq!(
            get(&mut c, "GET", "/x", None).await,
            (200, "n=0 host=true".into())
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // A POST is not sent twice: the 408 is its answer.
        assert_eq!(get(&mut c, "POST", "/x", None).await.0, 408);
    }

    #[tokio::test]
    async fn an_upstream_reason_phrase_goes_on() {
        let (_, r) = fetch(b"HTTP/1.1 420 Enhance Your Calm\r\ncontent-length: 2\r\n\r\nno").await;
        let r = r.unwrap();
        assert_eq!(r.status(), 420);
        let reason = r.extensions().get::<hyper::ext::ReasonPhrase>().unwrap();
        assert_eq!(reason.as_bytes(), b"Enhance Your Calm");
    }

    /// Serves one canned response per connection, whatever the request.
    async fn canned(response: &'static [u8]) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => seen.extend_from_slice(&buf[..k]),
                        }
                    }
                    let _ = s.write_all(response).await;
                    // Hold the connection open a while (a close-delimited body ends at close).
                    if !response.ends_with(b"CLOSE") {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_deadline_ends_the_wait_and_the_late_connection_is_not_reused() {
        // `x-slow`: the upstream answers 100 ms late.
        let (addr, accepted) = upstream(ok).await;
        let pool = H1Pool::new(&addr.to_string(), Duration::from_secs(5)).unwrap();
        let request = |slow: bool| {
            let mut r = Request::get("/x").body(ReqBody::Empty).unwrap();
            r.headers_mut()
                .insert(http::header::HOST, pool.host().clone());
            if slow {
                r.headers_mut()
                    .insert("x-slow", http::HeaderValue::from_static("1"));
            }
            r
        };
        // Without the deadline this would be the late answer; with it, the wait ends first.
        let soon = tokio::time::Instant::now() + Duration::from_millis(30);
        let late = pool
            .send(request(true), false, Added::default(), soon, false)
            .await;
        assert!(matches!(late, Err(PoolError::TimedOut)), "{:?}", late.err());
        // The next request does not get the late answer: it goes on a connection of its own.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let later = tokio::time::Instant::now() + Duration::from_secs(5);
        let r = pool
            .send(request(false), false, Added::default(), later, false)
            .await
            .unwrap();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "n=0 host=true", "a fresh connection's first answer");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    async fn fetch(response: &'static [u8]) -> (H1Pool, Result<Response<Bytes>, BoxError>) {
        let pool =
            H1Pool::new(&canned(response).await.to_string(), Duration::from_secs(5)).unwrap();
        let front = through_pool(pool.clone()).await;
        let s = TcpStream::connect(front).await.unwrap();
        let (mut c, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        let sent = c
            .send_request(
                Request::get("/x")
                    .header("host", "front")
                    .header("te", "trailers")
                    .body(Empty::new())
                    .unwrap(),
            )
            .await;
        // A body that fails early can take the head with it (the front aborts the connection).
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return (pool, Err(e.into())),
        };
        let (parts, body) = resp.into_parts();
        let got = body.collect().await.map_err(BoxError::from).map(|c| {
            let trailers = c.trailers().cloned();
            let mut r = Response::from_parts(parts, c.to_bytes());
            r.extensions_mut().insert(trailers);
            r
        });
        (pool, got)
    }

    #[tokio::test]
    async fn direct_lane_bodies_chunked_with_trailers_and_close_delimited() {
        let (pool, r) = fetch(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 11\r\n\r\n",
        )
        .await;
        let r = r.unwrap();
        let trailers = r.extensions().get::<Option<http::HeaderMap>>().unwrap();
        assert_eq!(trailers.as_ref().unwrap()["x-sum"], "11");
        assert_eq!(r.into_body(), "hello world");
        assert_eq!(pool.idle_count(), 1, "a chunked body ends cleanly: reused");
        let (pool, r) = fetch(b"HTTP/1.1 200 OK\r\n\r\nuntil the CLOSE").await;
        assert_eq!(r.unwrap().into_body(), "until the CLOSE");
        assert_eq!(
            pool.idle_count(),
            0,
            "a close-delimited body ends the connection"
        );
    }

    #[tokio::test]
    async fn direct_lane_failures_are_named_and_never_pooled() {
        // More body promised than sent before the close: the client sees the body fail.
        let (pool, r) = fetch(b"HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nshort CLOSE").await;
        assert!(r.is_err());
        assert_eq!(pool.idle_count(), 0);
        // A head that is not HTTP: 502, naming what was wrong.
        let (pool, r) = fetch(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
        let r = r.unwrap();
        assert_eq!(r.status(), 502);
        assert!(
            String::from_utf8_lossy(r.body()).contains("bad response head"),
            "{:?}",
            r.body()
        );
        assert_eq!(pool.idle_count(), 0);
        let (_, r) = fetch(b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx").await;
        let r = r.unwrap();
        assert_eq!(r.status(), 502);
        assert!(String::from_utf8_lossy(r.body()).contains("Content-Length"));
        // Bytes after the response that nobody asked for: answered, but not reused.
        let (pool, r) =
            fetch(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n").await;
        assert_eq!(r.unwrap().into_body(), "ok");
        assert_eq!(pool.idle_count(), 0);
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
        let (pool, accepted, mut c) = proxied(big).await;
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
