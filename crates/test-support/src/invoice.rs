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

/// Options for [`custom_invoice`].
#[derive(Clone, Debug)]
pub struct InvoiceSpec {
    /// The network.
    pub currency: Currency,
    /// The amount; `None` makes an amountless invoice.
    pub amount_msat: Option<u64>,
    /// Seconds since the Unix epoch the invoice claims to be created at.
    pub timestamp: u64,
    /// Expiry in seconds.
    pub expiry: u64,
}

impl Default for InvoiceSpec {
    fn default() -> Self {
        InvoiceSpec {
            currency: Currency::Regtest,
            amount_msat: Some(1000),
            timestamp: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970")
                .as_secs(),
            expiry: 3600,
        }
    }
}

/// A signed invoice with unusual properties (amountless, another network, already expired), for
/// tests of what a client refuses to pay.
pub fn custom_invoice(payment_hash: &PaymentHash, spec: &InvoiceSpec) -> String {
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&crate::random32()).expect("32 random bytes are a valid key");
    let b = InvoiceBuilder::new(spec.currency.clone())
        .description("test".into())
        .payment_hash(sha256::Hash::from_byte_array(*payment_hash.as_bytes()))
        .payment_secret(PaymentSecret(crate::random32()))
        .duration_since_epoch(Duration::from_secs(spec.timestamp))
        .min_final_cltv_expiry_delta(18)
        .expiry_time(Duration::from_secs(spec.expiry));
    let signed = match spec.amount_msat {
        Some(a) => b
            .amount_milli_satoshis(a)
            .build_signed(|msg| secp.sign_ecdsa_recoverable(msg, &key)),
        None => b.build_signed(|msg| secp.sign_ecdsa_recoverable(msg, &key)),
    };
    signed.expect("invoice fields are complete").to_string()
}
