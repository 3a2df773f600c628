//! The proxy's direct-lane HTTP/1.1 response codec (`crates/proxy/src/h1.rs`, compiled here on
//! its own): arbitrary bytes as an upstream's answer, fed whole and in pieces of every size
//! the first byte picks. Neither may panic, and both must read the same head, body, trailers
//! and error — a decoder that depends on how the socket split the bytes would let an upstream
//! smuggle a response past the proxy.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/proxy/src/h1.rs"]
#[allow(dead_code)]
mod h1;

use h1::{Chunk, ChunkedDecoder, Framing};

/// What one reading of the bytes found.
#[derive(Debug, PartialEq)]
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

fn read(data: &[u8], step: usize, head_request: bool) -> Reading {
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
        match h1::parse_head(&mut buf, head_request, &mut informational) {
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
    r.head = Some((
        head.status.as_u16(),
        fields(&head.headers),
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
    let whole = read(data, data.len().max(1), head_request);
    let pieces = read(data, step, head_request);
    // Past the size limits, where a limit is noticed depends on the pieces (the whole input
    // may show a malformed byte beyond it); below them the readings must agree.
    if data.len() <= h1::MAX_CHUNK_LINE {
        assert_eq!(whole, pieces, "step {step}");
    }
});
