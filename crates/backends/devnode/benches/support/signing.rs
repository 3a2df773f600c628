//! The signing baseline shared by the `mint` bench and the `sign_rate` example: a regtest
//! invoice built and signed with lightning-invoice's builder, as any node does per invoice.

use std::time::Duration;

use bitcoin::hashes::{Hash, sha256};
use bitcoin::secp256k1::{All, Secp256k1, SecretKey};
use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};

/// A 32-byte hash that differs for every `n`.
pub(crate) fn hash_of(n: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_le_bytes());
    h
}

/// Invoice number `n` (its payment hash from [`hash_of`]), built and signed with `key`.
pub(crate) fn sign_invoice(secp: &Secp256k1<All>, key: &SecretKey, n: u64) -> Bolt11Invoice {
    InvoiceBuilder::new(Currency::Regtest)
        .description("L402 weather".to_string())
        .payment_hash(sha256::Hash::from_byte_array(hash_of(n)))
        .payment_secret(PaymentSecret([42; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(18)
        .expiry_time(Duration::from_secs(3600))
        .amount_milli_satoshis(10_000)
        .build_signed(|msg| secp.sign_ecdsa_recoverable(msg, key))
        .expect("a valid invoice")
}
