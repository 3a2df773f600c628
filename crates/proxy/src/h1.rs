//! HTTP/1.1 heads for the proxy's own lanes. For the direct upstream lane (see
//! [`crate::pool`]): the response head, how its body is delimited (RFC 9112 §6.3), and chunked
//! bodies decoded as bytes arrive. For the client-facing lane (see [`crate::front`]): the plain
//! request heads it serves. Pure — bytes in, heads and frames out — so the fuzz targets
//! `upstream_response` and `front_request` compile this file on their own; the sockets belong to
//! the pool and the lane.
//!
//! Requests on that lane have no body and never ask for an upgrade, so a response is a final
//! head (informational 1xx heads before it are skipped), then a body that is empty, has a
//! length, is chunked, or runs to the end of the connection.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::header;
use http::header::CONTENT_LENGTH;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};

/// The largest response head (status line and header fields) accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// The most header fields a response head may carry (hyper's default too).
pub(crate) const MAX_HEADERS: usize = 100;

/// The longest chunk-size line (size, extensions, CRLF) accepted.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// The largest trailer section accepted.
pub(crate) const MAX_TRAILERS: usize = 16 * 1024;

/// The most chunk-extension bytes one body may carry (hyper's limit too).
pub(crate) const MAX_EXTENSIONS: usize = 16 * 1024;

/// The most informational (1xx) heads skipped before a final one.
pub(crate) const MAX_INFORMATIONAL: u8 = 8;

/// What is wrong with what the upstream sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// The response head is not HTTP/1.x (httparse's reason).
    BadHead(&'static str),
    /// The head is longer than [`MAX_HEAD`] or has more than [`MAX_HEADERS`] fields.
    HeadTooLarge,
    /// `101 Switching Protocols` to a request that asked for no upgrade.
    UnexpectedSwitch,
    /// More than [`MAX_INFORMATIONAL`] 1xx heads before the final one.
    TooManyInformational,
    /// `Transfer-Encoding` in an HTTP/1.0 response (which cannot have one).
    TransferEncodingInHttp10,
    /// A `Content-Length` that is not one decimal number (or several copies of it).
    BadContentLength,
    /// A chunk-size line that is not hexadecimal digits, optional extensions and CRLF.
    BadChunkSize,
    /// A chunk size that does not fit in 64 bits.
    ChunkTooLarge,
    /// A chunk's data not followed by CRLF.
    BadChunkEnd,
    /// A chunk-size line longer than [`MAX_CHUNK_LINE`], or chunk extensions past
    /// [`MAX_EXTENSIONS`] in one body.
    ChunkLineTooLong,
    /// A trailer section that does not parse or is longer than [`MAX_TRAILERS`].
    BadTrailers,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::BadHead(why) => write!(f, "upstream sent a bad response head: {why}"),
            ProtocolError::HeadTooLarge => write!(
                f,
                "upstream response head exceeds {MAX_HEAD} bytes or {MAX_HEADERS} header fields"
            ),
            ProtocolError::UnexpectedSwitch => {
                write!(f, "upstream switched protocols without being asked to")
            }
            ProtocolError::TooManyInformational => write!(
                f,
                "upstream sent more than {MAX_INFORMATIONAL} informational (1xx) responses"
            ),
            ProtocolError::TransferEncodingInHttp10 => {
                write!(f, "upstream sent Transfer-Encoding in an HTTP/1.0 response")
            }
            ProtocolError::BadContentLength => write!(f, "upstream sent an invalid Content-Length"),
            ProtocolError::BadChunkSize => write!(f, "upstream sent an invalid chunk-size line"),
            ProtocolError::ChunkTooLarge => write!(f, "upstream chunk size exceeds 64 bits"),
            ProtocolError::BadChunkEnd => write!(f, "upstream chunk data not followed by CRLF"),
            ProtocolError::ChunkLineTooLong => write!(
                f,
                "upstream chunk-size line exceeds {MAX_CHUNK_LINE} bytes, or its chunk \
                 extensions {MAX_EXTENSIONS} bytes"
            ),
            ProtocolError::BadTrailers => write!(
                f,
                "upstream sent a bad trailer section (or one over {MAX_TRAILERS} bytes)"
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A request the proxy's own HTTP/1.1 lane serves (see [`crate::front`]).
#[derive(Debug)]
pub(crate) struct Plain {
    /// Method, target, version and header fields (values share the head's bytes).
    pub(crate) parts: http::request::Parts,
    /// The request's only `Authorization` value, held apart from `parts.headers` (a credential
    /// is long: building it into the header map costs more than all the other fields). Only
    /// when the request has exactly one and no `Connection` field, which could name it.
    pub(crate) authorization: Option<Bytes>,
    /// The client asked for the connection to be closed after the response.
    pub(crate) close: bool,
}

/// The request in `buf`, if `buf` holds exactly one complete HTTP/1.1 request head that this lane
/// serves (see [`crate::front`]); otherwise `buf`'s bytes, for hyper. The head must be under
/// 4 GiB (the lane reads 8 KiB at most).
pub(crate) fn take_request(buf: BytesMut) -> Result<Plain, Bytes> {
    // The head is all of `buf` (or it is not served here); its target and values share it.
    let head = buf.freeze();
    plain_request(&head).ok_or(head)
}

fn plain_request(head: &Bytes) -> Option<Plain> {
    // Uninitialised slots, as for responses (see `parse_one`).
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_request_with_uninit_headers(
        &mut request,
        head,
        &mut slots,
    );
    // Exactly one head and nothing after it: pipelined requests are hyper's.
    if !matches!(parsed, Ok(httparse::Status::Complete(len)) if len == head.len()) {
        return None;
    }
    if request.version != Some(1) {
        return None;
    }
    let method = Method::from_bytes(request.method?.as_bytes()).ok()?;
    if method == Method::CONNECT {
        return None;
    }
    let mut close = false;
    let mut connection = false;
    let mut authorization = None;
    let mut several = false;
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        // Found by its bytes: a credential's field is not worth a name lookup.
        if field.name.len() == 13 && field.name.eq_ignore_ascii_case("authorization") {
            let value = head.slice_ref(field.value);
            if !several {
                if authorization.is_none() {
                    // httparse admits exactly the bytes a `HeaderValue` does.
                    authorization = Some(value);
                    continue;
                }
                // A second one: all go into the map, in order.
                several = true;
                headers.append(header::AUTHORIZATION, value_of(authorization.take()?)?);
            }
            headers.append(header::AUTHORIZATION, value_of(value)?);
            continue;
        }
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        // Anything that means a body, an interim response or a protocol switch is hyper's.
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::EXPECT
            || name == header::UPGRADE
        {
            return None;
        }
        if name == header::CONNECTION {
            connection = true;
            for token in field.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    return None;
                }
            }
        }
        headers.append(name, value_of(head.slice_ref(field.value))?);
    }
    if connection && let Some(value) = authorization.take() {
        // Hop-by-hop fields are found in the map.
        headers.append(header::AUTHORIZATION, value_of(value)?);
    }
    let uri = Uri::from_maybe_shared(head.slice_ref(request.path?.as_bytes())).ok()?;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(Plain {
        parts: request.into_parts().0,
        authorization,
        close,
    })
}

fn value_of(bytes: Bytes) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes).ok()
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (`HEAD`, 204, 304, or `Content-Length: 0`).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the upstream closes the connection.
    Close,
}

/// A final response head.
#[derive(Debug)]
pub(crate) struct Head {
    /// The status (never 1xx).
    pub(crate) status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub(crate) version: Version,
    /// The header fields as sent (values share the head's bytes), except a `Content-Length`
    /// that a `Transfer-Encoding` overrides. Empty when they were asked for as [`RawFields`].
    pub(crate) headers: HeaderMap,
    /// The header fields as lines, when asked for (see [`parse_head`]).
    pub(crate) raw: Option<RawFields>,
    /// How the body that follows is delimited.
    pub(crate) framing: Framing,
    /// Whether the connection can carry another request once this body has been read.
    pub(crate) reusable: bool,
    /// The reason phrase, when it is not the status's canonical one (hyper's server writes
    /// the canonical one otherwise).
    pub(crate) reason: Option<Bytes>,
}

/// A response's header section as the upstream sent it, for a caller that writes it out again
/// itself: no header map is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawFields {
    /// `name: value\r\n` for every field but the hop-by-hop ones ([`HOP_BY_HOP`], `Upgrade`,
    /// and those the `Connection` header names) and a `Content-Length` that a
    /// `Transfer-Encoding` overrides, in the order sent.
    pub(crate) lines: Bytes,
    /// The body's length, when a `Content-Length` among the lines states it (not for a response
    /// without a body, whose `Content-Length` describes another).
    pub(crate) content_length: Option<u64>,
    /// A `Date` is among them.
    pub(crate) date: bool,
}

/// Hop-by-hop fields, which a proxy does not pass on (RFC 9110 §7.6.1, and the unofficial
/// `Keep-Alive` and `Proxy-Connection`), in lower case.
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Parses the final response head at the start of `buf`, skipping informational (1xx) heads
/// before it (`informational` counts them across calls, up to [`MAX_INFORMATIONAL`]). With
/// `raw`, the final head's fields come as [`RawFields`] (hop-by-hop ones left out) instead of a
/// header map.
/// `Ok(None)`: the head is not complete yet (what was consumed stays consumed: the skipped 1xx
/// heads). On success the head's bytes have been taken off `buf`; what follows is
/// the body. `head_request`: the request's method was `HEAD` (no body follows, whatever the
/// header fields say).
pub(crate) fn parse_head(
    buf: &mut BytesMut,
    head_request: bool,
    informational: &mut u8,
    raw: bool,
) -> Result<Option<Head>, ProtocolError> {
    loop {
        let Some(head) = parse_one(buf, head_request, raw)? else {
            return Ok(None);
        };
        match head.status.as_u16() {
            101 => return Err(ProtocolError::UnexpectedSwitch),
            100..=199 if *informational >= MAX_INFORMATIONAL => {
                return Err(ProtocolError::TooManyInformational);
            }
            100..=199 => *informational += 1,
            _ => return Ok(Some(head)),
        }
    }
}

fn parse_one(
    buf: &mut BytesMut,
    head_request: bool,
    raw: bool,
) -> Result<Option<Head>, ProtocolError> {
    // Uninitialised slots: httparse writes only those it fills (zeroing 100 of them would cost
    // more than parsing a small head).
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut slots,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
            return Err(ProtocolError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ProtocolError::HeadTooLarge),
        Err(e) => return Err(ProtocolError::BadHead(parse_error(e))),
    };
    if len > MAX_HEAD {
        return Err(ProtocolError::HeadTooLarge);
    }
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(ProtocolError::BadHead("status code"))?;
    let fields: &[httparse::Header<'_>] = response.headers;
    let values = |name: &'static str| {
        fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value)
    };
    // Which framing fields are present, in one pass (the values are read only for those).
    let (mut connection, mut coding, mut length) = (false, false, false);
    for f in fields {
        connection |= f.name.eq_ignore_ascii_case("connection");
        coding |= f.name.eq_ignore_ascii_case("transfer-encoding");
        length |= f.name.eq_ignore_ascii_case("content-length");
    }
    let mut reusable =
        version == Version::HTTP_11 && !(connection && lists(values("connection"), b"close"));
    // A Content-Length that a Transfer-Encoding overrides is dropped.
    let mut drop_length = false;
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if no_body {
        Framing::Empty
    } else if coding {
        if version == Version::HTTP_10 {
            return Err(ProtocolError::TransferEncodingInHttp10);
        }
        // RFC 9112 §6.3: the transfer coding decides; a Content-Length beside it is dropped and
        // the connection not used again. A final coding other than chunked runs to the close.
        if length {
            drop_length = true;
            reusable = false;
        }
        if last_coding_is_chunked(values("transfer-encoding")) {
            Framing::Chunked
        } else {
            reusable = false;
            Framing::Close
        }
    } else if length {
        match content_length(values("content-length"))? {
            0 => Framing::Empty,
            n => Framing::Length(n),
        }
    } else {
        reusable = false;
        Framing::Close
    };
    let reason = response
        .reason
        .filter(|r| !r.is_empty() && Some(*r) != status.canonical_reason());
    if raw {
        // The length the body has, when a kept Content-Length states it.
        let content_length = match framing {
            Framing::Length(n) => Some(n),
            Framing::Empty if length && !no_body => Some(0),
            _ => None,
        };
        let raw = raw_fields(fields, connection, drop_length, content_length);
        let reason = reason.map(|r| Bytes::copy_from_slice(r.as_bytes()));
        buf.advance(len);
        return Ok(Some(Head {
            status,
            version,
            headers: HeaderMap::new(),
            raw: Some(raw),
            framing,
            reusable,
            reason,
        }));
    }
    // Where each name and value lies in the head (under MAX_HEAD, so u32), then the head is
    // split off and every value shares it.
    // An empty slice from httparse need not point into the buffer: it gets an empty span.
    let within = |part: &[u8]| -> std::ops::Range<usize> {
        if part.is_empty() {
            return 0..0;
        }
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        start..start + part.len()
    };
    let reason = reason.map(|r| within(r.as_bytes()));
    let mut spans = [[0u32; 4]; MAX_HEADERS];
    let count = fields.len();
    for (span, field) in spans.iter_mut().zip(fields.iter()) {
        let (name, value) = (within(field.name.as_bytes()), within(field.value));
        *span = [
            name.start as u32,
            name.end as u32,
            value.start as u32,
            value.end as u32,
        ];
    }
    let head = buf.split_to(len).freeze();
    let reason = reason.map(|r| head.slice(r));
    let mut headers = HeaderMap::with_capacity(count);
    for &[name_start, name_end, value_start, value_end] in &spans[..count] {
        let name = HeaderName::from_bytes(&head[name_start as usize..name_end as usize])
            .map_err(|_| ProtocolError::BadHead("header name"))?;
        let value =
            HeaderValue::from_maybe_shared(head.slice(value_start as usize..value_end as usize))
                .map_err(|_| ProtocolError::BadHead("header value"))?;
        headers.append(name, value);
    }
    if drop_length {
        headers.remove(CONTENT_LENGTH);
    }
    Ok(Some(Head {
        status,
        version,
        headers,
        raw: None,
        framing,
        reusable,
        reason,
    }))
}

/// The fields a proxy passes on, as lines (see [`RawFields`]). httparse has checked every name
/// and value against the same byte sets the `http` crate accepts.
fn raw_fields(
    fields: &[httparse::Header<'_>],
    connection: bool,
    drop_length: bool,
    content_length: Option<u64>,
) -> RawFields {
    // Whether a `Connection` field names `name` (looked for only when there is one).
    let named = |name: &str| {
        connection
            && fields
                .iter()
                .filter(|f| f.name.eq_ignore_ascii_case("connection"))
                .flat_map(|f| f.value.split(|&b| b == b','))
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    };
    let size: usize = fields
        .iter()
        .map(|f| f.name.len() + f.value.len() + 4)
        .sum();
    let mut lines = Vec::with_capacity(size);
    let mut content_length = content_length;
    let mut date = false;
    for f in fields {
        let name = f.name;
        let length = name.eq_ignore_ascii_case("content-length");
        // `Upgrade` outside a 101 (which this lane never gets) is hop-by-hop too.
        if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
            || name.eq_ignore_ascii_case("upgrade")
            || (drop_length && length)
            || named(name)
        {
            if length {
                // Not passed on: the client gets a length of the proxy's own, not none.
                content_length = None;
            }
            continue;
        }
        date |= name.eq_ignore_ascii_case("date");
        lines.extend_from_slice(name.as_bytes());
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(f.value);
        lines.extend_from_slice(b"\r\n");
    }
    RawFields {
        lines: lines.into(),
        content_length,
        date,
    }
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many header fields",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

/// Whether the values of a comma-separated header list `token`.
fn lists<'a>(values: impl Iterator<Item = &'a [u8]>, token: &[u8]) -> bool {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn last_coding_is_chunked<'a>(mut values: impl DoubleEndedIterator<Item = &'a [u8]>) -> bool {
    values
        .next_back()
        .and_then(|v| v.rsplit(|&b| b == b',').next())
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// The one length every `Content-Length` value (and list element) states.
pub(crate) fn content_length<'a>(
    values: impl Iterator<Item = &'a [u8]>,
) -> Result<u64, ProtocolError> {
    let mut length = None;
    for value in values {
        for part in value.split(|&b| b == b',') {
            let n = decimal(part.trim_ascii()).ok_or(ProtocolError::BadContentLength)?;
            if length.is_some_and(|l| l != n) {
                return Err(ProtocolError::BadContentLength);
            }
            length = Some(n);
        }
    }
    length.ok_or(ProtocolError::BadContentLength)
}

/// `n` in decimal, at the end of `out`.
pub(crate) fn decimal_text(mut n: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[i..];
        }
    }
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// What a chunked body yields.
#[derive(Debug, PartialEq)]
pub(crate) enum Chunk {
    /// Body bytes (a chunk or part of one).
    Data(Bytes),
    /// The trailer fields after the last chunk (only when there are any).
    Trailers(HeaderMap),
    /// The body has ended; the connection is past it.
    End,
}

/// The parts of a chunk-size line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Digits,
    /// Whitespace after the digits.
    Space,
    /// A chunk extension, ignored up to the CR.
    Ext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a chunk-size line: the size so far, which part of the line, and how many bytes of
    /// the line were consumed.
    Size {
        size: u64,
        part: Part,
        line: usize,
    },
    /// The CR of a chunk-size line was seen; LF must follow.
    SizeLf {
        size: u64,
    },
    /// This many bytes of chunk data are left.
    Data(u64),
    /// Chunk data ended; CR LF must follow.
    DataCr,
    DataLf,
    /// After the last chunk: the trailer section, up to an empty line.
    Trailers,
    Done,
}

/// Decodes a chunked body incrementally: feed it the connection's buffer after the head.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: State,
    /// Chunk-extension bytes seen in this body so far.
    extensions: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size {
                size: 0,
                part: Part::Digits,
                line: 0,
            },
            extensions: 0,
        }
    }
}

impl ChunkedDecoder {
    /// Takes what it can from the front of `buf`. `Ok(None)`: more bytes are needed (all of
    /// `buf` has been consumed, except an incomplete trailer section).
    pub(crate) fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, ProtocolError> {
        loop {
            match self.state {
                State::Done => return Ok(Some(Chunk::End)),
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    return Ok(Some(Chunk::Data(buf.split_to(take).freeze())));
                }
                State::Trailers => return self.trailers(buf),
                _ => {}
            }
            // The byte-at-a-time states.
            let Some(&b) = buf.first() else {
                return Ok(None);
            };
            buf.advance(1);
            self.state = match self.state {
                State::Size { size, part, line } => {
                    if line + 1 > MAX_CHUNK_LINE {
                        return Err(ProtocolError::ChunkLineTooLong);
                    }
                    let line = line + 1;
                    let next = |size, part| State::Size { size, part, line };
                    match (part, b) {
                        (Part::Digits, b'\r') if line > 1 => State::SizeLf { size },
                        (Part::Space | Part::Ext, b'\r') => State::SizeLf { size },
                        // Extension bytes: no control characters but HTAB (a bare LF would
                        // end the line for a laxer reader), and a budget per body.
                        (Part::Ext, b'\t' | b' '..=0x7e | 0x80..=0xff) => {
                            self.extensions += 1;
                            if self.extensions > MAX_EXTENSIONS {
                                return Err(ProtocolError::ChunkLineTooLong);
                            }
                            next(size, Part::Ext)
                        }
                        (Part::Digits, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                            if size >> 60 != 0 {
                                return Err(ProtocolError::ChunkTooLarge);
                            }
                            let d = (b as char).to_digit(16).unwrap_or(0);
                            next(size << 4 | u64::from(d), Part::Digits)
                        }
                        // Whitespace after the size (RFC 9112 BWS), then `;name=value…`.
                        (Part::Digits, b' ' | b'\t') if line > 1 => next(size, Part::Space),
                        (Part::Space, b' ' | b'\t') => next(size, Part::Space),
                        (Part::Digits, b';') if line > 1 => next(size, Part::Ext),
                        (Part::Space, b';') => next(size, Part::Ext),
                        _ => return Err(ProtocolError::BadChunkSize),
                    }
                }
                State::SizeLf { size } => match b {
                    b'\n' if size == 0 => State::Trailers,
                    b'\n' => State::Data(size),
                    _ => return Err(ProtocolError::BadChunkSize),
                },
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size {
                    size: 0,
                    part: Part::Digits,
                    line: 0,
                },
                State::DataCr | State::DataLf => return Err(ProtocolError::BadChunkEnd),
                State::Data(_) | State::Trailers | State::Done => {
                    unreachable!("handled above")
                }
            };
        }
    }

    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, ProtocolError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Some(Chunk::End));
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((len, fields))) if len <= MAX_TRAILERS => {
                let mut trailers = HeaderMap::with_capacity(fields.len());
                for f in fields.iter() {
                    let name = HeaderName::from_bytes(f.name.as_bytes())
                        .map_err(|_| ProtocolError::BadTrailers)?;
                    let value =
                        HeaderValue::from_bytes(f.value).map_err(|_| ProtocolError::BadTrailers)?;
                    trailers.append(name, value);
                }
                buf.advance(len);
                self.state = State::Done;
                Ok(Some(if trailers.is_empty() {
                    Chunk::End
                } else {
                    Chunk::Trailers(trailers)
                }))
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_TRAILERS => Ok(None),
            _ => Err(ProtocolError::BadTrailers),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8], head_request: bool) -> Result<Option<(Head, BytesMut)>, ProtocolError> {
        let mut buf = BytesMut::from(bytes);
        Ok(parse_head(&mut buf, head_request, &mut 0, false)?.map(|h| (h, buf)))
    }

    #[test]
    fn a_content_length_response_and_what_follows_it() {
        let (h, rest) = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.reusable);
        let xa: Vec<_> = h.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(&rest[..], b"hello");
    }

    #[test]
    fn incomplete_heads_wait_and_oversized_ones_fail() {
        assert!(
            head(b"HTTP/1.1 200 OK\r\nContent-Le", false)
                .unwrap()
                .is_none()
        );
        let mut big = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(head(&big, false).unwrap_err(), ProtocolError::HeadTooLarge);
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(head(&many, false).unwrap_err(), ProtocolError::HeadTooLarge);
        assert!(matches!(
            head(b"HTTP/2 200 OK\r\n\r\n", false),
            Err(ProtocolError::BadHead(_))
        ));
    }

    #[test]
    fn bodies_are_delimited_as_rfc_9112_says() {
        let framing = |bytes: &[u8], head_request| head(bytes, head_request).unwrap().unwrap().0;
        let h = framing(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true);
        assert_eq!((h.framing, h.reusable), (Framing::Empty, true));
        let h = framing(b"HTTP/1.1 204 No Content\r\n\r\n", false);
        assert_eq!((h.framing, h.reusable), (Framing::Empty, true));
        let h = framing(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Empty);
        let h = framing(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert_eq!((h.framing, h.reusable), (Framing::Empty, true));
        let h = framing(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert_eq!((h.framing, h.reusable), (Framing::Chunked, true));
        // Both: the coding wins, the length is dropped, the connection is not reused.
        let h = framing(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        );
        assert_eq!((h.framing, h.reusable), (Framing::Chunked, false));
        assert!(!h.headers.contains_key(CONTENT_LENGTH));
        let h = framing(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false);
        assert_eq!((h.framing, h.reusable), (Framing::Close, false));
        let h = framing(b"HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((h.framing, h.reusable), (Framing::Close, false));
        let h = framing(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 1\r\n\r\n",
            false,
        );
        assert_eq!((h.framing, h.reusable), (Framing::Length(1), false));
        let h = framing(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false);
        assert_eq!((h.version, h.reusable), (Version::HTTP_10, false));
        assert_eq!(
            head(
                b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                false
            )
            .unwrap_err(),
            ProtocolError::TransferEncodingInHttp10
        );
        // A reason phrase is kept only when it is not the canonical one (or empty).
        assert_eq!(framing(b"HTTP/1.1 200 OK\r\n\r\n", false).reason, None);
        assert_eq!(framing(b"HTTP/1.1 200\r\n\r\n", false).reason, None);
        assert_eq!(
            framing(b"HTTP/1.1 200 \r\nx-empty:\r\n\r\n", false).headers["x-empty"],
            ""
        );
        let (h, rest) = head(b"HTTP/1.1 100\n\r\nHTTP/1.1 204\n\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.status.as_u16(), rest.len()), (204, 0));
        let h = framing(b"HTTP/1.1 420 Enhance Your Calm\r\n\r\n", false);
        assert_eq!(h.reason.as_deref(), Some(&b"Enhance Your Calm"[..]));
        let h = framing(
            b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Length(7));
        for bad in ["7, 8", "-1", "", "0x10", "99999999999999999999", "1 2"] {
            let bytes = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                head(bytes.as_bytes(), false).unwrap_err(),
                ProtocolError::BadContentLength,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn informational_heads_are_skipped_and_a_switch_is_refused() {
        let (h, rest) = head(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.status.as_u16(), &rest[..]), (200, &b"ok"[..]));
        assert!(!h.headers.contains_key("link"));
        // Only a 1xx so far: consumed, and the final head is awaited.
        let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"[..]);
        assert!(
            parse_head(&mut buf, false, &mut 0, false)
                .unwrap()
                .is_none()
        );
        assert_eq!(&buf[..], b"HTTP/1.1 2");
        assert_eq!(
            head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false).unwrap_err(),
            ProtocolError::UnexpectedSwitch
        );
        // Informational heads are counted across calls, and limited.
        let mut seen = 0;
        for _ in 0..MAX_INFORMATIONAL {
            let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
            assert!(
                parse_head(&mut buf, false, &mut seen, false)
                    .unwrap()
                    .is_none()
            );
        }
        let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
        assert_eq!(
            parse_head(&mut buf, false, &mut seen, false).unwrap_err(),
            ProtocolError::TooManyInformational
        );
    }

    /// Decodes `body` fed in pieces of `step` bytes; the frames' data joined, and the trailers.
    fn decode_in_steps(
        body: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Option<HeaderMap>, usize), ProtocolError> {
        let mut d = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let (mut data, mut trailers) = (Vec::new(), None);
        let mut fed = 0;
        loop {
            match d.decode(&mut buf)? {
                Some(Chunk::Data(b)) => data.extend_from_slice(&b),
                Some(Chunk::Trailers(t)) => trailers = Some(t),
                Some(Chunk::End) => return Ok((data, trailers, buf.len())),
                None if fed < body.len() => {
                    let end = (fed + step).min(body.len());
                    buf.extend_from_slice(&body[fed..end]);
                    fed = end;
                }
                None => return Err(ProtocolError::BadChunkEnd),
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_the_same_however_they_arrive() {
        let body = b"5\r\nhello\r\n1A;name=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0 \r\nGrpc-Status: 0\r\nX-T: a\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, 64, body.len()] {
            let (data, trailers, rest) = decode_in_steps(body, step).unwrap();
            assert_eq!(data, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            let trailers = trailers.unwrap();
            assert_eq!(trailers["grpc-status"], "0");
            assert_eq!(trailers["x-t"], "a");
            assert!(rest <= 4, "what follows the body stays in the buffer");
        }
        let (data, trailers, _) = decode_in_steps(b"0\r\n\r\n", 1).unwrap();
        assert!(data.is_empty() && trailers.is_none());
    }

    #[test]
    fn bad_chunked_bodies_name_the_problem() {
        let bad = |body: &[u8]| decode_in_steps(body, body.len()).unwrap_err();
        assert_eq!(bad(b"x\r\n"), ProtocolError::BadChunkSize);
        assert_eq!(bad(b"\r\n"), ProtocolError::BadChunkSize);
        assert_eq!(bad(b"5\nhello"), ProtocolError::BadChunkSize);
        assert_eq!(bad(b"5\r\nhelloX"), ProtocolError::BadChunkEnd);
        assert_eq!(bad(b"10000000000000000\r\n"), ProtocolError::ChunkTooLarge);
        assert_eq!(bad(b"fffffffffffffffff\r\n"), ProtocolError::ChunkTooLarge);
        assert_eq!(bad(b"5 5\r\nhello"), ProtocolError::BadChunkSize);
        assert_eq!(bad(b"5;a\nb\r\nhello"), ProtocolError::BadChunkSize);
        assert_eq!(bad(b"5;a\x00\r\nhello"), ProtocolError::BadChunkSize);
        // Extensions are limited per body, not only per line.
        let mut many = Vec::new();
        for _ in 0..5 {
            many.extend_from_slice(b"1;");
            many.resize(many.len() + 4000, b'x');
            many.extend_from_slice(b"\r\na\r\n");
        }
        assert_eq!(bad(&many), ProtocolError::ChunkLineTooLong);
        assert_eq!(bad(b";x\r\n"), ProtocolError::BadChunkSize);
        let mut long = b"1;".to_vec();
        long.resize(MAX_CHUNK_LINE + 1, b'x');
        assert_eq!(bad(&long), ProtocolError::ChunkLineTooLong);
        assert_eq!(bad(b"0\r\nno colon\r\n\r\n"), ProtocolError::BadTrailers);
        let mut big = b"0\r\nx: ".to_vec();
        big.resize(MAX_TRAILERS + 10, b'a');
        assert_eq!(bad(&big), ProtocolError::BadTrailers);
        // The largest size that fits is accepted (the data then is awaited), and so are
        // leading zeros.
        for line in [&b"ffffffffffffffff\r\n"[..], b"000000000000000000005\r\n"] {
            let mut d = ChunkedDecoder::default();
            let mut buf = BytesMut::from(line);
            assert_eq!(d.decode(&mut buf), Ok(None));
            assert!(matches!(d.state, State::Data(_)));
        }
    }
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    fn read(head: &str, head_request: bool) -> Head {
        let mut buf = BytesMut::from(head.as_bytes());
        let h = parse_head(&mut buf, head_request, &mut 0, true)
            .unwrap()
            .unwrap();
        assert!(h.headers.is_empty());
        h
    }

    #[test]
    fn raw_fields_leave_out_what_a_proxy_does_not_pass_on() {
        let h = read(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
             Keep-Alive: timeout=5\r\nContent-Type: text/plain\r\nDate: Mon\r\n\
             x-secret: 2\r\nContent-Length: 3\r\nX-Kept: a: b\r\n\r\nabc",
            false,
        );
        let fields = h.raw.unwrap();
        assert_eq!(
            &fields.lines[..],
            b"Content-Type: text/plain\r\nDate: Mon\r\nContent-Length: 3\r\nX-Kept: a: b\r\n"
        );
        assert_eq!((fields.content_length, fields.date), (Some(3), true));
        assert_eq!(h.framing, Framing::Length(3));
        // A Content-Length beside a Transfer-Encoding goes (and so does the coding itself).
        let h = read(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\
             Trailer: x\r\nTE: trailers\r\nX-A: 1\r\n\r\n",
            false,
        );
        let fields = h.raw.unwrap();
        assert_eq!(&fields.lines[..], b"X-A: 1\r\n");
        assert_eq!((fields.content_length, fields.date), (None, false));
        assert_eq!((h.framing, h.reusable), (Framing::Chunked, false));
        // A Content-Length that Connection names is not passed on, and states no length.
        let h = read(
            "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\
             Upgrade: h2c\r\n\r\nhello",
            false,
        );
        assert_eq!(h.framing, Framing::Length(5));
        let fields = h.raw.unwrap();
        assert_eq!((&fields.lines[..], fields.content_length), (&b""[..], None));
        // A HEAD response keeps the length of what a GET would get.
        let h = read("HTTP/1.1 200 OK\r\nContent-Length: 70\r\n\r\n", true);
        assert_eq!(h.framing, Framing::Empty);
        let fields = h.raw.unwrap();
        assert_eq!(&fields.lines[..], b"Content-Length: 70\r\n");
        assert_eq!(fields.content_length, None, "no body follows");
        let h = read("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false);
        assert_eq!(h.raw.unwrap().content_length, Some(0));
        // A 1xx head's fields are not checked as a final head's are.
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 103 Early\r\nContent-Length: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"[..],
        );
        let h = parse_head(&mut buf, false, &mut 0, true).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::NO_CONTENT);
        // A non-canonical reason phrase comes along; errors are those of the map reading.
        let h = read("HTTP/1.1 299 Fine\r\ncontent-length: 0\r\n\r\n", false);
        assert_eq!(h.reason.as_deref(), Some(&b"Fine"[..]));
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n"[..]);
        assert_eq!(
            parse_head(&mut buf, false, &mut 0, true).unwrap_err(),
            ProtocolError::BadContentLength
        );
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    fn take(head: &str) -> Option<Plain> {
        match take_request(BytesMut::from(head.as_bytes())) {
            Ok(plain) => Some(plain),
            Err(read) => {
                assert_eq!(&read[..], head.as_bytes(), "every byte goes to hyper");
                None
            }
        }
    }

    #[test]
    fn plain_requests_are_taken_whole() {
        let p = take(
            "GET /forecast?city=x HTTP/1.1\r\nHost: a.example\r\nAuthorization: L402 m:p\r\n\
             X-Two: 1\r\nx-two: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(p.parts.method, Method::GET);
        assert_eq!(p.parts.uri, "/forecast?city=x");
        assert_eq!(p.parts.version, Version::HTTP_11);
        assert_eq!(p.parts.headers["host"], "a.example");
        // The one `Authorization` value is held apart.
        assert_eq!(p.authorization.as_deref(), Some(&b"L402 m:p"[..]));
        assert!(!p.parts.headers.contains_key("authorization"));
        let two: Vec<_> = p.parts.headers.get_all("x-two").iter().collect();
        assert_eq!(two, ["1", "2"]);
        assert!(!p.close);
        let p = take("HEAD http://a.example/x HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")
            .unwrap();
        assert_eq!(p.parts.method, Method::HEAD);
        assert_eq!(p.parts.uri.authority().unwrap(), "a.example");
        assert!(p.close);
        let p = take("DELETE /x HTTP/1.1\r\nX-Empty:\r\n\r\n").unwrap();
        assert_eq!(p.parts.headers["x-empty"], "");
        assert!(take("OPTIONS * HTTP/1.1\r\n\r\n").is_some());
    }

    #[test]
    fn several_authorization_values_or_a_connection_field_keep_them_in_the_map() {
        let p = take(
            "GET / HTTP/1.1\r\nAuthorization: a\r\nX: 1\r\nauthorization: b\r\n\
             Authorization: c\r\n\r\n",
        )
        .unwrap();
        assert_eq!(p.authorization, None);
        let all: Vec<_> = p.parts.headers.get_all("authorization").iter().collect();
        assert_eq!(all, ["a", "b", "c"]);
        // `Connection` may name it as hop-by-hop: the forwarder finds such fields in the map.
        for head in [
            "GET / HTTP/1.1\r\nAuthorization: a\r\nConnection: authorization\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: keep-alive\r\nAuthorization: a\r\n\r\n",
        ] {
            let p = take(head).unwrap();
            assert_eq!(p.authorization, None, "{head:?}");
            assert_eq!(p.parts.headers["authorization"], "a", "{head:?}");
        }
        // Bytes a header value may not hold leave the request to hyper, held apart or not.
        assert!(take("GET / HTTP/1.1\r\nAuthorization: a\u{1}b\r\n\r\n").is_none());
        assert!(take("GET / HTTP/1.1\r\nAuthorization: a\x7fb\r\n\r\n").is_none());
    }

    #[test]
    fn everything_else_is_left_to_hyper() {
        for head in [
            "GET /x HTTP/1.1\r\nHost: a\r\n",                         // partial
            "GET /x HTTP/1.0\r\n\r\n",                                // HTTP/1.0
            "POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",       // a body
            "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",          // a length at all
            "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", // chunked
            "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "GET /x HTTP/1.1\r\nConnection: upgrade\r\n\r\n",
            "PUT /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "CONNECT a.example:443 HTTP/1.1\r\n\r\n",
            "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", // pipelined
            "GET /x HTTP/1.1\r\nBad Name: 1\r\n\r\n",         // httparse refuses
            "GET /x HTTP/1.1\r\nX: a\r\n b\r\n\r\n",          // obsolete line folding
            "GET /x HTTP/1.1\r\nX: \u{1}\r\n\r\n",            // a control byte
            "G\u{e9}T /x HTTP/1.1\r\n\r\n",                   // not a token
        ] {
            assert!(take(head).is_none(), "{head:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        assert!(take(&format!("GET / HTTP/1.1\r\n{many}\r\n")).is_none());
    }
}
