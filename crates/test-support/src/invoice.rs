//! Real BOLT11 invoices for tests, signed with a throw-away key.

use std::time::Duration;

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use l402::PaymentHash;
use lightning_invoice::{Currency, InvoiceBuilder, PaymentSecret};

/// A signed regtest invoice (`lnbcrt…`) for `amount_msat` bound to `payment_hash`.
pub fn regtest_invoice(payment_hash: &PaymentHash, amount_msat: u64, memo: &str) -> String {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&crate::random32()).expect("32 random bytes are a valid key");
    InvoiceBuilder::new(Currency::Regtest)
        .description(memo.to_owned())
        .payment_hash(sha256::Hash::from_byte_array(*payment_hash.as_bytes()))
        .payment_secret(PaymentSecret(crate::random32()))
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .expiry_time(Duration::from_secs(3600))
        .amount_milli_satoshis(amount_msat)
        .build_signed(|msg| secp.sign_ecdsa_recoverable(msg, &key))
        .expect("invoice fields are complete")
        .to_string()
}
