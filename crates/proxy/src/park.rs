//! Idle keep-alive connections without their HTTP state.
//!
//! hyper keeps, for every HTTP/1 connection, an 8 KiB read buffer, an 8 KiB buffer for response
//! heads and its connection state, whether or not a request is in progress: about 24 KiB per
//! idle client, 240 MiB for 10 000. A plaintext HTTP/1 connection served here instead *parks*
//! between requests: once a response has been written in full and the client has nothing more
//! in flight, the hyper connection is ended (the socket stays open) and the task waits for the
//! next byte with nothing but the socket. An idle client then costs its task, its socket and an
//! idle timer, about 3 KiB.
//!
//! What arrives on a waiting socket goes first to the proxy's own HTTP/1.1 lane
//! ([`crate::front`]), which serves a plain request without any hyper state and leaves the
//! connection waiting again; only what that lane does not take starts a fresh hyper connection
//! on the same socket, with the bytes already read.
//!
//! Parking happens only at a point where hyper holds nothing: the last request had no body and
//! asked for no upgrade, its response was dropped by hyper and every byte of it handed to the
//! socket (hyper flushes the I/O object only when its own buffer is empty), and every byte
//! read from the socket so far ends with the blank line that ends a request head. The I/O
//! object then answers hyper's next read, the one that would wait, with end-of-file; hyper ends
//! the idle connection quietly, and [`serve`] goes back to waiting on the socket. Anything else
//! (request bodies, streamed responses such as SSE, WebSocket upgrades, pipelined requests in
//! flight, h2c) is served exactly as before, and parking resumes at the next plain request.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::front;
use crate::handler::{Shared, handle};
use crate::upstream::{Body, BoxError, ReqBody};

/// How long a parked connection may stay silent before it is closed (hyper's own
/// `header_read_timeout` closes an idle unparked one after the same time).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections park only while more than this many plaintext connections are open (unless
/// `L402_PARK_IDLE_ABOVE` says otherwise): starting a hyper connection for each request costs
/// a few microseconds, worth paying when idle clients are many, not for a few busy ones.
const PARK_ABOVE_DEFAULT: usize = 1000;

/// Plaintext connections open now, in every proxy of this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

fn park_above() -> usize {
    static ABOVE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ABOVE.get_or_init(|| {
        std::env::var("L402_PARK_IDLE_ABOVE")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(PARK_ABOVE_DEFAULT)
    })
}

/// Counts an open connection for as long as it lives.
struct Open;

impl Open {
    fn new() -> Self {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the service and the I/O object of one connection tell each other.
#[derive(Debug, Default)]
struct ConnState {
    /// The response to the last request has been dropped by hyper, and that request allows
    /// parking (no body, no upgrade).
    ended: AtomicBool,
    /// `ended`, and hyper has since flushed: nothing of the response is left in its buffer.
    idle: AtomicBool,
    /// The I/O object answered a read with a made-up end-of-file: the socket is still open.
    parked: AtomicBool,
}

impl ConnState {
    fn begin_request(&self) {
        self.ended.store(false, Ordering::Relaxed);
        self.idle.store(false, Ordering::Relaxed);
    }
}

/// The socket as hyper sees it: shared with [`serve`], which keeps it across hyper
/// connections, and able to end a connection at a quiet point.
struct ParkingIo {
    stream: Arc<TcpStream>,
    state: Arc<ConnState>,
    /// Bytes the proxy's own lane read before handing the connection over: read first.
    read: Bytes,
    /// The last four bytes read from the socket, oldest in the high byte.
    tail: u32,
}

/// The last four bytes of a stream whose last four were `tail`, after `bytes` more.
fn tail_after(mut tail: u32, bytes: &[u8]) -> u32 {
    for &b in bytes.iter().rev().take(4).rev() {
        tail = (tail << 8) | u32::from(b);
    }
    tail
}

/// `\r\n\r\n`, the end of a request head, as `tail` holds it.
const HEAD_END: u32 = u32::from_be_bytes(*b"\r\n\r\n");

impl ParkingIo {
    fn new(stream: Arc<TcpStream>, state: Arc<ConnState>, read: Bytes) -> Self {
        ParkingIo {
            stream,
            state,
            read,
            tail: 0,
        }
    }

    #[cfg(test)]
    fn note_read(&mut self, bytes: &[u8]) {
        self.tail = tail_after(self.tail, bytes);
    }

    fn may_park(&self) -> bool {
        self.tail == HEAD_END
            && self.state.idle.load(Ordering::Relaxed)
            && OPEN.load(Ordering::Relaxed) > park_above()
    }
}

impl AsyncRead for ParkingIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.read.is_empty() {
            let n = this.read.len().min(buf.remaining());
            let first = this.read.split_to(n);
            this.tail = tail_after(this.tail, &first);
            buf.put_slice(&first);
            return Poll::Ready(Ok(()));
        }
        loop {
            match this.stream.poll_read_ready(cx) {
                Poll::Pending => {
                    if this.may_park() {
                        this.state.parked.store(true, Ordering::Relaxed);
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) => {}
            }
            // tokio's `ReadBuf` is a `BufMut`: the bytes go straight into hyper's buffer.
            let before = buf.filled().len();
            match this.stream.try_read_buf(buf) {
                Ok(_) => {
                    this.tail = tail_after(this.tail, &buf.filled()[before..]);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ParkingIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.stream.poll_write_ready(cx))?;
            match self.stream.try_write_vectored(bufs) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // hyper flushes the I/O object only once its own buffer is empty: if the response has
        // ended, all of it is now with the socket.
        if self.state.ended.load(Ordering::Relaxed) {
            self.state.idle.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A parked connection's socket stays open for the next request. Otherwise this is a
        // real end (hyper closing, or an upgraded tunnel whose upstream side finished): send
        // the FIN now, as a socket of its own would, since the socket itself closes only when
        // its last handle is dropped.
        if self.state.parked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let result = socket2::SockRef::from(&*self.stream).shutdown(std::net::Shutdown::Write);
        Poll::Ready(match result {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

/// A response body that reports when hyper has finished with it.
struct Tracked {
    inner: Body,
    /// Set for requests that allow parking.
    state: Option<Arc<ConnState>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(state) = &self.state {
            state.ended.store(true, Ordering::Relaxed);
        }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves a plaintext connection whose first bytes are not the h2c preface, parking it between
/// requests. Returns when the client closes, on an error, after [`IDLE_TIMEOUT`] of silence,
/// after an upgrade (the tunnel owns the socket from then on), or on shutdown (a request in
/// progress is finished first).
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    builder: Arc<http1::Builder>,
    shutdown: CancellationToken,
) {
    let _open = Open::new();
    let stream = Arc::new(stream);
    let state = Arc::new(ConnState::default());
    let svc = {
        let state = state.clone();
        let shared = shared.clone();
        service_fn(move |req: Request<Incoming>| {
            // Runs when hyper has read a request head, before anything of the response exists.
            state.begin_request();
            let parkable = req.body().is_end_stream()
                && req.method() != Method::CONNECT
                && !req.headers().contains_key(header::UPGRADE);
            let park = parkable.then(|| state.clone());
            let shared = shared.clone();
            async move {
                let req = req.map(ReqBody::Hyper);
                let response = handle(shared, req, None, peer.ip(), false, false).await;
                Ok::<_, std::convert::Infallible>(
                    response.map(|inner| Tracked { inner, state: park }),
                )
            }
        })
    };
    // One idle timer and one shutdown watch for the connection's life, each wait moving the
    // timer's deadline (a later deadline is a cheap update, not a new timer).
    let mut idle = Box::pin(tokio::time::sleep(IDLE_TIMEOUT));
    let mut stopping = std::pin::pin!(shutdown.cancelled());
    loop {
        if !wait_for_bytes(&stream, peer, &mut idle, stopping.as_mut()).await {
            return;
        }
        // Plain requests are served by the proxy's own lane; anything else by hyper, from the
        // bytes that lane read. The lane runs on the heap (≈ 5 KB), so that a waiting
        // connection's task is not sized for a request in progress.
        let lane = plain_lane(
            &stream,
            peer,
            &shared,
            &shutdown,
            &mut idle,
            stopping.as_mut(),
        );
        let read = match Box::pin(lane).await {
            front::Next::Again => continue,
            front::Next::Close => return,
            front::Next::Hyper(read) => read,
        };
        state.parked.store(false, Ordering::Relaxed);
        state.begin_request();
        let io = TokioIo::new(ParkingIo::new(stream.clone(), state.clone(), read));
        // Boxed, so that a parked task does not carry room for a connection it does not have.
        let mut conn = Box::pin(builder.serve_connection(io, svc.clone()).with_upgrades());
        let result = tokio::select! {
            // The connection first: a request already read is answered before shutdown closes.
            biased;
            r = conn.as_mut() => r,
            () = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.as_mut().await
            }
        };
        drop(conn);
        if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
            return;
        }
        if !state.parked.load(Ordering::Relaxed) {
            return;
        }
    }
}

/// Waits until `stream` has bytes (or its end) to read: `false` when the connection is to close
/// instead (it failed, stayed silent for [`IDLE_TIMEOUT`], or shutdown began while it waited).
async fn wait_for_bytes(
    stream: &TcpStream,
    peer: SocketAddr,
    idle: &mut Pin<Box<tokio::time::Sleep>>,
    mut stopping: Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> bool {
    idle.as_mut()
        .reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
    tokio::select! {
        // Bytes that have arrived are served, even when shutdown has begun (dropping the
        // socket with them unread would reset the connection under the client's request).
        biased;
        r = stream.readable() => match r {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection failed while idle");
                false
            }
        },
        () = idle.as_mut() => false,
        () = stopping.as_mut() => false,
    }
}

/// Serves plain requests with the proxy's own lane for as long as they come: returns
/// [`front::Next::Again`] when the connection should wait without the lane's state (many
/// connections are open: idle ones must hold nothing), or what the lane ended with.
async fn plain_lane(
    stream: &TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
    idle: &mut Pin<Box<tokio::time::Sleep>>,
    mut stopping: Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
) -> front::Next {
    loop {
        match front::serve(stream, peer, shared, shutdown).await {
            front::Next::Again => {}
            other => return other,
        }
        if OPEN.load(Ordering::Relaxed) > park_above() {
            return front::Next::Again;
        }
        if !wait_for_bytes(stream, peer, idle, stopping.as_mut()).await {
            return front::Next::Close;
        }
    }
}

/// Whether `first` (the first bytes a plaintext client sent) may begin the HTTP/2
/// prior-knowledge preface, which [`serve`] does not handle.
pub(crate) fn may_be_h2c(first: &[u8]) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let n = first.len().min(PREFACE.len());
    n > 0 && first[..n] == PREFACE[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h2c_preface_is_recognised_from_its_first_bytes() {
        assert!(may_be_h2c(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(may_be_h2c(b"PR"));
        assert!(!may_be_h2c(b"GET / HTTP/1.1\r\n"));
        assert!(!may_be_h2c(b"POST /x HTTP/1.1\r\n"));
        assert!(!may_be_h2c(b""));
    }

    #[tokio::test]
    async fn only_a_complete_head_and_a_flushed_response_allow_parking() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let state = Arc::new(ConnState::default());
        let mut io = ParkingIo::new(Arc::new(server), state.clone(), Bytes::new());
        // As many open connections as it takes for parking to be allowed.
        let _open: Vec<Open> = (0..=park_above()).map(|_| Open::new()).collect();
        io.note_read(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(!io.may_park(), "no response yet");
        state.ended.store(true, Ordering::Relaxed);
        assert!(!io.may_park(), "response not flushed yet");
        state.idle.store(true, Ordering::Relaxed);
        assert!(io.may_park());
        io.note_read(b"GET /next HTTP/1.1\r\nHo");
        assert!(!io.may_park(), "a partial head is in hyper's buffer");
        io.note_read(b"st: x\r\n\r");
        assert!(!io.may_park());
        io.note_read(b"\n");
        assert!(
            io.may_park(),
            "a head split over reads still ends at the blank line"
        );
        state.begin_request();
        assert!(!io.may_park(), "a new request is in progress");
    }
}
