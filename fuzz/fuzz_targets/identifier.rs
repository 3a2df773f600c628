//! L402 identifier decoding: never panics; decodes only 66-byte version-0 input, exactly.
#![no_main]

use l402::Identifier;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = Identifier::decode(data) {
        assert_eq!(data.len(), Identifier::V0_LEN);
        assert_eq!(&id.encode()[..], data);
    }
});
