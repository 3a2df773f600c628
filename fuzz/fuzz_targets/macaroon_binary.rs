//! V2 binary and V1 packet decoding: never panics, and whatever decodes re-encodes to bytes that
//! decode to the same macaroon.
#![no_main]

use l402_macaroon::{Limits, Macaroon};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = Macaroon::slice_from_binary(data, &Limits::DEFAULT) {
        for m in list {
            let again = Macaroon::from_binary(&m.to_binary_v2()).expect("our V2 output decodes");
            assert_eq!(again, m);
            if let Ok(v1) = m.to_binary_v1() {
                assert_eq!(
                    Macaroon::from_binary(&v1).expect("our V1 output decodes"),
                    m
                );
            }
        }
    }
});
