//! WWW-Authenticate parsing (each input line is one header value): never panics; every challenge
//! found re-emits to a value that parses to the same challenge.
#![no_main]

use l402::{Challenge, Scheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(found) = Challenge::parse_all(text.split('\n')) {
        for c in found {
            let line = c.to_header_value(Scheme::L402, true);
            let again = Challenge::parse_all([line.as_str()]).expect("our output parses");
            assert_eq!(again[0].macaroon(), c.macaroon());
            assert_eq!(again[0].invoice(), c.invoice());
        }
    }
});
