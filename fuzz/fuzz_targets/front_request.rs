//! The request heads the proxy's own HTTP/1.1 lane serves (`take_request` in
//! `crates/proxy/src/h1.rs`, compiled here on its own). Arbitrary bytes as what a client sent:
//! nothing may panic; bytes the lane does not take go to hyper untouched; and a request it takes
//! must be exactly what httparse read in those bytes — one complete HTTP/1.1 head and nothing
//! after it, with nothing that announces a body, an upgrade or an interim response (those must
//! reach hyper, or a body could be read as the next request). An `Authorization` value held
//! apart from the map is the request's only one, with no `Connection` field, and a valid
//! header value.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/proxy/src/h1.rs"]
#[allow(dead_code)]
mod h1;

fuzz_target!(|data: &[u8]| {
    let plain = match h1::take_request(BytesMut::from(data)) {
        Ok(plain) => plain,
        Err(read) => {
            assert_eq!(&read[..], data, "every byte goes to hyper");
            return;
        }
    };
    let mut fields = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut fields);
    let parsed = request.parse(data);
    assert_eq!(parsed, Ok(httparse::Status::Complete(data.len())));
    assert_eq!(request.version, Some(1));
    let parts = &plain.parts;
    assert_eq!(parts.version, http::Version::HTTP_11);
    assert_eq!(parts.method.as_str(), request.method.unwrap());
    assert_ne!(parts.method, http::Method::CONNECT);
    let authorizations = request
        .headers
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case("authorization"))
        .count();
    let connection = request
        .headers
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case("connection"));
    if let Some(value) = &plain.authorization {
        assert_eq!(authorizations, 1);
        assert!(!connection);
        assert!(!parts.headers.contains_key("authorization"));
        assert!(http::HeaderValue::from_bytes(value).is_ok());
        let field = request
            .headers
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case("authorization"));
        assert_eq!(field.map(|f| f.value), Some(&value[..]));
    } else {
        assert!(authorizations != 1 || connection);
    }
    let apart = usize::from(plain.authorization.is_some());
    assert_eq!(parts.headers.len() + apart, request.headers.len());
    for name in ["content-length", "transfer-encoding", "upgrade", "expect"] {
        assert!(!parts.headers.contains_key(name), "{name}");
    }
    // Every field with its exact value (the map groups values by name).
    for field in request.headers.iter() {
        let name = field.name.to_ascii_lowercase();
        if plain.authorization.is_some() && name == "authorization" {
            continue;
        }
        let values: Vec<&[u8]> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert!(values.contains(&field.value), "{name}");
    }
    let asked_close = request.headers.iter().any(|f| {
        f.name.eq_ignore_ascii_case("connection")
            && f.value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    });
    assert_eq!(plain.close, asked_close);
});
