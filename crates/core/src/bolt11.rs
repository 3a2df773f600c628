//! Reading BOLT11 invoices (feature `bolt11`): what an L402 party needs from one — payment hash,
//! amount, network, expiry — with the signature checked.
//!
//! Decoding reads the signed raw invoice rather than insisting on every semantic rule: some
//! issuers (LNbits' FakeWallet, for one) omit the feature bits, which BOLT11 lets a reader accept.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use lightning_invoice::Currency;
use lightning_invoice::{DEFAULT_EXPIRY_TIME, SignedRawBolt11Invoice};

use crate::{Msat, PaymentHash};

/// A network's everyday name with its BOLT11 prefix, e.g. `regtest (bcrt)`.
pub fn network_name(c: &Currency) -> String {
    let name = match c {
        Currency::Bitcoin => "bitcoin",
        Currency::BitcoinTestnet => "testnet",
        Currency::Regtest => "regtest",
        Currency::Simnet => "simnet",
        Currency::Signet => "signet",
    };
    format!("{name} ({c})")
}

/// A decoded, signature-checked BOLT11 invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    /// The payment hash.
    pub payment_hash: PaymentHash,
    /// The amount; `None` for an amountless invoice.
    pub amount: Option<Msat>,
    /// The network.
    pub currency: Currency,
    /// When it was created, since the Unix epoch.
    pub timestamp: Duration,
    /// How long it can be paid.
    pub expiry: Duration,
}

impl Invoice {
    /// When it expires, since the Unix epoch (`None` if beyond what a `Duration` holds).
    pub fn expires_at(&self) -> Option<Duration> {
        self.timestamp.checked_add(self.expiry)
    }

    /// Whether it can no longer be paid at `now` (since the Unix epoch).
    pub fn is_expired_at(&self, now: Duration) -> bool {
        self.expires_at().is_some_and(|at| at <= now)
    }

    /// Whether it can no longer be paid now.
    pub fn is_expired(&self) -> bool {
        self.is_expired_at(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }
}

/// Decodes a BOLT11 string and checks its signature.
///
/// ```
/// assert!(l402::bolt11::decode("lnbc1garbage").is_err());
/// ```
pub fn decode(bolt11: &str) -> Result<Invoice, String> {
    let signed = SignedRawBolt11Invoice::from_str(bolt11.trim())
        .map_err(|e| format!("not a BOLT11 invoice: {e}"))?;
    if !signed.check_signature() {
        return Err("the BOLT11 invoice's signature is invalid".into());
    }
    let raw = signed.raw_invoice();
    let hash = raw
        .payment_hash()
        .ok_or("the BOLT11 invoice has no payment hash")?;
    let amount = match (raw.hrp.raw_amount, raw.amount_pico_btc()) {
        (None, _) => None,
        // The written amount times its unit does not fit: not "no amount".
        (Some(_), None) => return Err("the BOLT11 amount is too large".into()),
        (Some(_), Some(pico)) if pico.is_multiple_of(10) => Some(Msat::new(pico / 10)),
        (Some(_), Some(_)) => {
            return Err("the BOLT11 amount is not a whole number of msat".into());
        }
    };
    let expiry = raw
        .expiry_time()
        .map_or(Duration::from_secs(DEFAULT_EXPIRY_TIME), |e| {
            *e.as_duration()
        });
    Ok(Invoice {
        payment_hash: PaymentHash::from_bytes(*AsRef::<[u8; 32]>::as_ref(&hash.0)),
        amount,
        currency: raw.currency(),
        timestamp: raw.data.timestamp.as_duration_since_epoch(),
        expiry,
    })
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::{Secp256k1, SecretKey};
    use lightning_invoice::{InvoiceBuilder, PaymentSecret, SiPrefix};

    use super::*;

    /// An invoice signed over `amount` written in the human-readable part with `unit`.
    fn invoice_with_amount(amount: u64, unit: Option<SiPrefix>) -> String {
        use bitcoin::hashes::Hash;
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[7; 32]).unwrap();
        let sign = |m: &_| secp.sign_ecdsa_recoverable(m, &key);
        let valid = InvoiceBuilder::new(Currency::Regtest)
            .description("x".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([1; 32]))
            .payment_secret(PaymentSecret([2; 32]))
            .duration_since_epoch(Duration::from_secs(1_700_000_000))
            .min_final_cltv_expiry_delta(18)
            .amount_milli_satoshis(1000)
            .build_signed(sign)
            .unwrap();
        let mut raw = valid.into_signed_raw().raw_invoice().clone();
        raw.hrp.raw_amount = Some(amount);
        raw.hrp.si_prefix = unit;
        raw.sign::<_, ()>(|m| Ok(sign(m))).unwrap().to_string()
    }

    #[test]
    fn amounts_are_exact_or_refused() {
        let ok = decode(&invoice_with_amount(25, Some(SiPrefix::Micro))).unwrap();
        assert_eq!(ok.amount, Some(Msat::new(2_500_000)));
        // 2e10 BTC is more picobitcoin than 64 bits hold: an error, never "amountless".
        let e = decode(&invoice_with_amount(20_000_000_000, None)).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        // 1 pico-BTC is a tenth of a millisatoshi.
        let e = decode(&invoice_with_amount(1, Some(SiPrefix::Pico))).unwrap_err();
        assert!(e.contains("whole number of msat"), "{e}");
    }
}
