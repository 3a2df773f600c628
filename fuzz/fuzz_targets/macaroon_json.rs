//! V2/V1 JSON decoding: never panics; decoded macaroons survive a JSON round trip.
#![no_main]

use l402_macaroon::Macaroon;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = Macaroon::slice_from_json(text) {
        for m in list {
            assert_eq!(
                Macaroon::from_json(&m.to_json_v2()).expect("our JSON decodes"),
                m
            );
            if let Ok(v1) = m.to_json_v1() {
                assert_eq!(Macaroon::from_json(&v1).expect("our V1 JSON decodes"), m);
            }
        }
    }
});
