//! Credential parsing from headers (input lines are `name: value`): never panics; a credential
//! found re-encodes to an Authorization value that parses to the same credential; a request's
//! only `Authorization` value held apart from the other headers reads exactly as it does among
//! them.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use l402::{Credential, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Credential::parse_authorization(&text);
    let mut headers = HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let found = Credential::from_headers(&headers);
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    if let (Some(only), None) = (values.next(), values.next()) {
        let mut others = headers.clone();
        others.remove(http::header::AUTHORIZATION);
        let apart = Credential::from_authorization(only.as_bytes()).and_then(|c| match c {
            Some(c) => Ok(c),
            None => Credential::from_hex_headers(&others),
        });
        assert_eq!(apart, found);
    }
    if let Ok(c) = found {
        let value = c.to_authorization(Scheme::L402);
        let again = Credential::parse_authorization(&value)
            .expect("our output parses")
            .expect("L402 scheme");
        assert_eq!(again.macaroons(), c.macaroons());
        assert_eq!(again.preimage(), c.preimage());
    }
});
