//! The proxy's direct-lane HTTP/1.1 response codec (`crates/proxy/src/h1.rs`, compiled here on
//! its own): arbitrary bytes as an upstream's answer, fed whole and in pieces of every size
//! the first byte picks. Neither may panic, and both must read the same head, body, trailers
//! and error — a decoder that depends on how the socket split the bytes would let an upstream
//! smuggle a response past the proxy. The head's fields read as lines (what the proxy's own
//! HTTP/1.1 lane writes out) must be the header map's, less the hop-by-hop fields (this
//! target's own list, and whatever `Connection` names), with the same length and `Date`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/proxy/src/h1.rs"]
#[allow(dead_code)]
mod h1;

use h1::{Chunk, ChunkedDecoder, Framing};

/// What one reading of the bytes found.
#[derive(Debug, Clone, PartialEq)]
struct Reading {
    head: Option<(u16, Vec<(String, Vec<u8>)>, Framing, bool)>,
    body: Vec<u8>,
    trailers: Vec<(String, Vec<u8>)>,
    /// The body (or head) ended as its framing says, with this many bytes left after it.
    ended: Option<usize>,
    error: Option<h1::ProtocolError>,
}

fn fields(map: &http::HeaderMap) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// The fields a proxy passes on.
fn passed_on(fields: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    const HOP: [&str; 9] = [
        "upgrade",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
    ];
    let named: Vec<Vec<u8>> = fields
        .iter()
        .filter(|(k, _)| k == "connection")
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii().to_ascii_lowercase())
        .collect();
    fields
        .iter()
        .filter(|(k, _)| !HOP.contains(&k.as_str()) && !named.contains(&k.as_bytes().to_vec()))
        .cloned()
        .collect()
}

/// Fields by name, each name's values in order (the order across different names carries no
/// meaning, and a header map's changes when a field is removed).
fn by_name(mut fields: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
}

/// Raw fields back as (lower-case name, value) pairs, checking what comes with them.
fn lines_of(raw: &h1::RawFields) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = &raw.lines[..];
    while !rest.is_empty() {
        let end = rest.windows(2).position(|w| w == b"\r\n").expect("CRLF");
        let line = &rest[..end];
        let colon = line.iter().position(|&b| b == b':').expect("colon");
        assert_eq!(line.get(colon + 1), Some(&b' '));
        let name = std::str::from_utf8(&line[..colon])
            .unwrap()
            .to_ascii_lowercase();
        out.push((name, line[colon + 2..].to_vec()));
        rest = &rest[end + 2..];
    }
    // A length only when a Content-Length line states it (or the client would get none).
    if let Some(n) = raw.content_length {
        let stated = out
            .iter()
            .find(|(k, _)| k == "content-length")
            .expect("stated");
        let first = stated.1.split(|&b| b == b',').next().unwrap().trim_ascii();
        assert_eq!(
            std::str::from_utf8(first).unwrap().parse::<u64>().unwrap(),
            n
        );
    }
    assert_eq!(raw.date, out.iter().any(|(k, _)| k == "date"));
    out
}

fn read(data: &[u8], step: usize, head_request: bool, raw: bool) -> Reading {
    let mut r = Reading {
        head: None,
        body: Vec::new(),
        trailers: Vec::new(),
        ended: None,
        error: None,
    };
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut feed = |buf: &mut BytesMut| {
        if fed == data.len() {
            return false;
        }
        let end = (fed + step).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        true
    };
    let mut informational = 0;
    let head = loop {
        match h1::parse_head(&mut buf, head_request, &mut informational, raw) {
            Ok(Some(h)) => break h,
            Ok(None) if feed(&mut buf) => {}
            Ok(None) => return r,
            Err(e) => {
                r.error = Some(e);
                return r;
            }
        }
    };
    assert!(!head.status.is_informational());
    assert!(!(head.reusable && head.framing == Framing::Close));
    let head_fields = match &head.raw {
        Some(lines) => {
            assert!(head.headers.is_empty());
            by_name(lines_of(lines))
        }
        None => fields(&head.headers),
    };
    r.head = Some((
        head.status.as_u16(),
        head_fields,
        head.framing,
        head.reusable,
    ));
    match head.framing {
        Framing::Empty => r.ended = Some(buf.len() + data.len() - fed),
        Framing::Length(n) => {
            while (r.body.len() as u64) < n {
                if buf.is_empty() && !feed(&mut buf) {
                    return r;
                }
                let take = (n - r.body.len() as u64).min(buf.len() as u64) as usize;
                r.body.extend_from_slice(&buf.split_to(take));
            }
            r.ended = Some(buf.len() + data.len() - fed);
        }
        Framing::Chunked => {
            let mut d = ChunkedDecoder::default();
            loop {
                match d.decode(&mut buf) {
                    Ok(Some(Chunk::Data(b))) => {
                        assert!(!b.is_empty());
                        r.body.extend_from_slice(&b);
                    }
                    Ok(Some(Chunk::Trailers(t))) => {
                        assert!(!t.is_empty());
                        r.trailers = fields(&t);
                    }
                    Ok(Some(Chunk::End)) => {
                        r.ended = Some(buf.len() + data.len() - fed);
                        return r;
                    }
                    Ok(None) if feed(&mut buf) => {}
                    Ok(None) => return r,
                    Err(e) => {
                        r.error = Some(e);
                        return r;
                    }
                }
            }
        }
        Framing::Close => {
            r.body.extend_from_slice(&buf);
            r.body.extend_from_slice(&data[fed..]);
        }
    }
    r
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let head_request = flags & 1 != 0;
    let step = 1 + usize::from(flags >> 1);
    let whole = read(data, data.len().max(1), head_request, false);
    let pieces = read(data, step, head_request, false);
    // The same head read as lines: the same answer, with the fields a proxy passes on.
    let mut expected = whole.clone();
    if let Some(head) = &mut expected.head {
        head.1 = by_name(passed_on(&head.1));
    }
    assert_eq!(expected, read(data, data.len().max(1), head_request, true));
    // Past the size limits, where a limit is noticed depends on the pieces (the whole input
    // may show a malformed byte beyond it); below them the readings must agree.
    if data.len() <= h1::MAX_CHUNK_LINE {
        assert_eq!(whole, pieces, "step {step}");
    }
});
