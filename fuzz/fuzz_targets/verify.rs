//! Caveat checking (input lines are caveats, the first byte picks the verifier's options): never
//! panics; verifying again through a signature memo decides exactly as the full chain did; a
//! token that verifies still verifies with the same caveats checked in non-strict mode.
#![no_main]

use std::sync::Arc;

use l402::{Caveat, Context, Credential, Identifier, Preimage, RootKey, TokenId, Verifier, mint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let caveats: Vec<Caveat> = text
        .lines()
        .take(64)
        .filter_map(|l| l.parse().ok())
        .collect();
    let key = RootKey::from_bytes([7; 32]);
    let preimage = Preimage::from_bytes([9; 32]);
    let id = Identifier::new(preimage.payment_hash(), TokenId::from_bytes([1; 32]));
    let credential = Credential::new(mint(&key, &id, "lsat", &caveats), preimage);

    let constraints: Arc<[(String, String)]> = Arc::new([("region".into(), "eu".into())]);
    let mut verifier = Verifier::new().strict(options & 1 != 0);
    if options & 2 != 0 {
        verifier = verifier.service("api");
    }
    if options & 4 != 0 {
        verifier = verifier.constraints(constraints);
    }
    if options & 8 != 0 {
        verifier = verifier.require("note");
    }
    let mut context = Context::at(i64::from(options >> 4) * 100);
    if options & 0x80 != 0 {
        context = context.with_capability("read");
    }

    let full = verifier.verify(&credential, &key, &context);
    let preflight = verifier
        .preflight(&credential)
        .expect("a valid identifier and preimage");
    let prechecked = preflight.prechecked();
    let (first, memo) = match preflight.finish_with_memo(&verifier, &key, &context, None) {
        Ok((token, memo)) => (Ok(token), memo),
        Err(e) => (Err(e), None),
    };
    assert_eq!(
        first, full,
        "the memo path's first verification is the full one"
    );
    // The prechecked preflight vouches for this credential only: another preimage is checked.
    let other = Credential::new(credential.macaroon().clone(), Preimage::from_bytes([8; 32]));
    assert!(verifier.preflight_with(&other, &prechecked).is_err());
    if let Some(memo) = memo {
        let again = verifier
            .preflight_with(&credential, &prechecked)
            .expect("prechecked")
            .finish_with_memo(&verifier, &key, &context, Some(&memo))
            .map(|(token, _)| token);
        assert_eq!(again, full, "through the memo, the same decision");
    }
});
