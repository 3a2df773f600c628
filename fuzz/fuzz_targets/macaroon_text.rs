//! Format detection over pasted text (base64 in four variants, hex, JSON, V1 packets).
#![no_main]

use l402_macaroon::{Limits, Macaroon};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(list) = Macaroon::slice_from_text(&text, &Limits::DEFAULT) {
        for m in list {
            assert_eq!(Macaroon::from_text(&m.to_base64()).expect("base64"), m);
            assert_eq!(Macaroon::from_text(&m.to_hex()).expect("hex"), m);
        }
    }
});
