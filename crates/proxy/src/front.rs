//! The proxy's own HTTP/1.1 server lane, for plain requests on plaintext connections.
//!
//! Most API calls are one HTTP/1.1 request head without a body. For those, hyper's server
//! connection (its dispatcher, buffers, header-read timer, and a response head encoded again from
//! a header map) costs more than the rest of proxying. A parked connection (see [`crate::park`])
//! that becomes readable is therefore read here first: when what arrived is exactly one complete
//! HTTP/1.1 request head with no body, no upgrade and no `Expect`, the request is handled and its
//! response written by this task, and the connection goes back to waiting with nothing held.
//! Anything else — a partial head, a body, an upgrade, HTTP/1.0, pipelined requests, a head
//! httparse or the `http` crate refuses — is handed to hyper together with the bytes already
//! read, and hyper serves it (and answers any error) exactly as before.
//!
//! Responses are framed as hyper frames them: the `Content-Length` the response carries or its
//! body's exact size, else chunked (trailers kept); none for `HEAD`, 1xx, 204 and 304. A `Date`
//! is added when the response has none, and `Connection: close` when the client asked to close
//! or the proxy is shutting down.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header;
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::h1;
use crate::handler::{Shared, handle};
use crate::upstream::{Body, ReqBody};

/// How much one read takes in. A head that does not fit is left to hyper (which reads on).
const READ_SIZE: usize = 8 * 1024;

/// Response bytes gathered before they are written even though more are ready.
const WRITE_BATCH: usize = 64 * 1024;

/// What the connection does after [`serve`].
pub(crate) enum Next {
    /// A request was served (or nothing had arrived after all): wait for the next one.
    Again,
    /// The connection is done: the client closed it or asked to, the proxy is shutting down,
    /// or a write failed.
    Close,
    /// Hyper serves the connection from here, starting with these bytes already read.
    Hyper(Bytes),
}

/// Reads what a readable connection sent and serves it if it is one plain request. Once
/// `shutdown` is cancelled, the response says `Connection: close` and the connection ends.
pub(crate) async fn serve(
    stream: &TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    shutdown: &CancellationToken,
) -> Next {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    // A read that leaves the socket empty also clears its readiness, so that waiting for the
    // next request does not begin with a read that finds nothing. The read runs inside
    // `try_io`, whose readiness snapshot is taken before it: bytes that arrive after the read
    // come with a newer readiness event, which the clearing leaves alone.
    let mut drained = None;
    let read = stream.try_io(Interest::READABLE, || match stream.try_read_buf(&mut buf) {
        Ok(n) if n > 0 && n < READ_SIZE => {
            drained = Some(n);
            Err(io::ErrorKind::WouldBlock.into())
        }
        other => other,
    });
    let read = match (read, drained) {
        (_, Some(n)) => Ok(n),
        (read, None) => read,
    };
    match read {
        Ok(0) => return Next::Close,
        Ok(_) => {}
        // Readiness that was stale: wait again.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Again,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "connection failed");
            return Next::Close;
        }
    }
    let plain = match h1::take_request(buf) {
        Ok(plain) => plain,
        Err(read) => return Next::Hyper(read),
    };
    let head_request = plain.parts.method == Method::HEAD;
    let request = Request::from_parts(plain.parts, ReqBody::Empty);
    let response = handle(
        shared.clone(),
        request,
        plain.authorization,
        peer.ip(),
        false,
        true,
    )
    .await;
    let close = plain.close || shutdown.is_cancelled();
    match write_response(stream, response, head_request, close).await {
        Ok(true) => Next::Again,
        Ok(false) => Next::Close,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "writing a response failed");
            Next::Close
        }
    }
}

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body is written (`HEAD`, 1xx, 204, 304).
    None,
    /// Exactly this many bytes; `true` when the response's own `Content-Length` says so (else
    /// one is written).
    Length(u64, bool),
    /// Chunked.
    Chunked,
}

/// The framing hyper would choose for this response.
fn framing(head_request: bool, parts: &http::response::Parts, body: &Body) -> Framing {
    let status = parts.status;
    if head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Framing::None;
    }
    if let Some(n) = parts
        .extensions
        .get::<h1::RawFields>()
        .and_then(|raw| raw.content_length)
    {
        return Framing::Length(n, true);
    }
    let lengths = parts.headers.get_all(header::CONTENT_LENGTH);
    if lengths.iter().next().is_some()
        && let Ok(n) = h1::content_length(lengths.iter().map(|v| v.as_bytes()))
    {
        return Framing::Length(n, true);
    }
    match body.size_hint().exact() {
        Some(n) => Framing::Length(n, false),
        None => Framing::Chunked,
    }
}

/// Writes the status line and header fields of a response framed as `framing`.
fn encode_head(parts: &http::response::Parts, framing: Framing, close: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    match reason {
        Some(r) => out.extend_from_slice(r.as_bytes()),
        None => {
            let canonical = parts.status.canonical_reason().unwrap_or("");
            out.extend_from_slice(canonical.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    let own_length = matches!(framing, Framing::Length(_, false) | Framing::Chunked);
    for (name, value) in &parts.headers {
        // The framing is this lane's to write, and the connection's fate too.
        if name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || (own_length && name == header::CONTENT_LENGTH)
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // An upstream's fields as it sent them (the hop-by-hop ones already left out).
    let raw = parts.extensions.get::<h1::RawFields>();
    if let Some(raw) = raw {
        out.extend_from_slice(&raw.lines);
    }
    match framing {
        Framing::Length(n, false) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(h1::decimal_text(n, &mut [0; 20]));
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Length(_, true) | Framing::None => {}
    }
    if !parts.headers.contains_key(header::DATE) && !raw.is_some_and(|r| r.date) {
        out.extend_from_slice(b"date: ");
        with_date(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Calls `f` with the current time as an HTTP date, formatted at most once a second per thread.
fn with_date(f: impl FnOnce(&[u8])) {
    thread_local! {
        static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != secs {
            *date = (secs, httpdate::fmt_http_date(now).into_bytes());
        }
        f(&date.1);
    });
}

/// Writes `response` (its body too, as it arrives). `Ok(true)`: the connection may carry
/// another request.
async fn write_response(
    stream: &TcpStream,
    response: Response<Body>,
    head_request: bool,
    close: bool,
) -> io::Result<bool> {
    let (parts, mut body) = response.into_parts();
    let framing = framing(head_request, &parts, &body);
    let raw = parts.extensions.get::<h1::RawFields>();
    // Room for the head and a small body, so that one write usually carries both.
    let fields: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + raw.map_or(0, |r| r.lines.len());
    let body_room = match framing {
        Framing::Length(n, _) => usize::try_from(n).unwrap_or(WRITE_BATCH).min(WRITE_BATCH),
        Framing::Chunked => 1024,
        Framing::None => 0,
    };
    let mut out = Vec::with_capacity(160 + fields + body_room);
    encode_head(&parts, framing, close, &mut out);
    drop(parts);
    let mut left = match framing {
        Framing::Length(n, _) => n,
        _ => 0,
    };
    // The body is read to its end even when nothing of it is written (a pooled upstream
    // connection goes back only then).
    let mut ended_well = true;
    loop {
        // A frame that is ready joins what is gathered; otherwise what is gathered goes out
        // before waiting (a stream's first events must not wait for later ones).
        let ready =
            std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut body).poll_frame(cx)))
                .await;
        let frame = match ready {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                write_all(stream, &out).await?;
                out.clear();
                body.frame().await
            }
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "response body failed");
                ended_well = false;
                break;
            }
        };
        match frame.into_data() {
            Ok(data) => match framing {
                Framing::None => {}
                Framing::Length(..) => {
                    let take = data.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    out.extend_from_slice(&data[..take]);
                    left -= take as u64;
                    if take < data.len() {
                        // More than the length said: the rest cannot be sent on this connection.
                        ended_well = false;
                        break;
                    }
                }
                Framing::Chunked if data.is_empty() => {}
                Framing::Chunked => {
                    hex_line(data.len(), &mut out);
                    out.extend_from_slice(&data);
                    out.extend_from_slice(b"\r\n");
                }
            },
            Err(frame) => {
                if let (Framing::Chunked, Ok(trailers)) = (framing, frame.into_trailers()) {
                    out.extend_from_slice(b"0\r\n");
                    for (name, value) in &trailers {
                        out.extend_from_slice(name.as_str().as_bytes());
                        out.extend_from_slice(b": ");
                        out.extend_from_slice(value.as_bytes());
                        out.extend_from_slice(b"\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                    write_all(stream, &out).await?;
                    return Ok(!close);
                }
            }
        }
        if out.len() >= WRITE_BATCH {
            write_all(stream, &out).await?;
            out.clear();
        }
    }
    if framing == Framing::Chunked && ended_well {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    write_all(stream, &out).await?;
    // A body cut short (or too long) leaves the client unable to find the next response.
    let whole = ended_well && (!matches!(framing, Framing::Length(..)) || left == 0);
    Ok(whole && !close)
}

/// Appends a chunk-size line for `n` bytes.
fn hex_line(n: usize, out: &mut Vec<u8>) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n as u64;
    loop {
        i -= 1;
        digits[i] = DIGITS[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// Writes all of `data`.
async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{HeaderName, HeaderValue};

    fn head_of(response: Response<Body>, head_request: bool, close: bool) -> String {
        let (parts, body) = response.into_parts();
        let framing = framing(head_request, &parts, &body);
        let mut out = Vec::new();
        encode_head(&parts, framing, close, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn response(status: u16, headers: &[(&str, &str)], body: Body) -> Response<Body> {
        let mut r = Response::new(body);
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        for (k, v) in headers {
            r.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        r
    }

    fn streamed() -> Body {
        let frames = futures_util::stream::iter([Ok::<_, crate::upstream::BoxError>(
            http_body::Frame::data(Bytes::from_static(b"x")),
        )]);
        http_body_util::StreamBody::new(frames).boxed_unsync()
    }

    #[test]
    fn heads_are_framed_as_hyper_frames_them() {
        let full = |s: &'static str| crate::upstream::full(s);
        let h = head_of(response(200, &[("x-a", "1")], full("hello")), false, false);
        assert!(h.starts_with("HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\ndate: "));
        assert!(h.ends_with(" GMT\r\n\r\n"), "{h}");
        // The response's own length is kept; a Date it has is not added again.
        let h = head_of(
            response(
                404,
                &[
                    ("content-length", "7"),
                    ("date", "x"),
                    ("connection", "keep-alive"),
                ],
                streamed(),
            ),
            false,
            true,
        );
        assert_eq!(
            h,
            "HTTP/1.1 404 Not Found\r\ncontent-length: 7\r\ndate: x\r\nconnection: close\r\n\r\n"
        );
        // A list of one length is that length; a length that is no number is replaced.
        let h = head_of(
            response(
                200,
                &[("content-length", "3, 3"), ("date", "x")],
                streamed(),
            ),
            false,
            false,
        );
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\ndate: x\r\n\r\n"
        );
        let h = head_of(
            response(200, &[("content-length", "x"), ("date", "x")], full("ab")),
            false,
            false,
        );
        assert_eq!(h, "HTTP/1.1 200 OK\r\ndate: x\r\ncontent-length: 2\r\n\r\n");
        let h = head_of(response(200, &[("date", "x")], streamed()), false, false);
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\ndate: x\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        for (status, head_request) in [(204, false), (304, false), (200, true)] {
            let h = head_of(
                response(status, &[("date", "x")], full("abc")),
                head_request,
                false,
            );
            assert!(
                !h.contains("content-length") && !h.contains("chunked"),
                "{h}"
            );
        }
        // An upstream's fields as lines: written as they are, their length and Date kept.
        let mut r = response(200, &[], streamed());
        r.extensions_mut().insert(h1::RawFields {
            lines: Bytes::from_static(b"Content-Length: 1\r\nDate: y\r\nX-Up: 1\r\n"),
            content_length: Some(1),
            date: true,
        });
        assert_eq!(
            head_of(r, false, false),
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nDate: y\r\nX-Up: 1\r\n\r\n"
        );
        let mut r = response(200, &[], streamed());
        r.extensions_mut().insert(h1::RawFields {
            lines: Bytes::from_static(b"X-Up: 1\r\n"),
            content_length: None,
            date: false,
        });
        let h = head_of(r, false, false);
        assert!(
            h.starts_with("HTTP/1.1 200 OK\r\nX-Up: 1\r\ntransfer-encoding: chunked\r\ndate: "),
            "{h}"
        );
        // Lines that state no length (an upstream's Content-Length its Connection named): the
        // body's own length is written, never none.
        let mut r = response(200, &[], full("hello"));
        r.extensions_mut().insert(h1::RawFields {
            lines: Bytes::from_static(b"Date: y\r\n"),
            content_length: None,
            date: true,
        });
        assert_eq!(
            head_of(r, false, false),
            "HTTP/1.1 200 OK\r\nDate: y\r\ncontent-length: 5\r\n\r\n"
        );
        let mut r = response(299, &[("date", "x")], full(""));
        r.extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Fine"));
        assert_eq!(
            head_of(r, false, false),
            "HTTP/1.1 299 Fine\r\ndate: x\r\ncontent-length: 0\r\n\r\n"
        );
    }

    #[test]
    fn numbers_and_dates() {
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            assert_eq!(h1::decimal_text(n, &mut [0; 20]), n.to_string().as_bytes());
        }
        for n in [0usize, 9, 10, 255, 4096, usize::MAX] {
            let mut out = Vec::new();
            hex_line(n, &mut out);
            assert_eq!(out, format!("{n:x}\r\n").as_bytes());
        }
        with_date(|d| {
            let text = std::str::from_utf8(d).unwrap();
            assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
        });
    }
}
