//! BOLT11 encoding of the one shape of invoice the dev node issues.
//!
//! lightning-invoice's builder and its `Display` cost about a sixth as much as the signature
//! itself per invoice: tagged fields collected into vectors, boxed base32 iterators, the
//! signing preimage built as a vector of 5-bit values, and the string written one `write!` per
//! character. Minting a challenge pays that on every unpaid request. Here the invoice is
//! written straight into a buffer of 5-bit values in the order lightning-invoice's builder
//! uses (so the two agree character for character — the tests hold this one to it), hashed
//! for signing with SHA-256, checksummed with the bech32 crate's engine and spelled into a
//! string sized up front. Decoding stays with lightning-invoice.

use std::fmt::{self, Write as _};

use bitcoin::bech32::primitives::checksum::{Engine, PackedFe32};
use bitcoin::bech32::{Bech32, Fe32, Hrp};
use sha2::{Digest, Sha256};

/// The longest description a BOLT11 field holds: its length is 10 bits of 5-bit groups
/// (1023 × 5 bits = 639 whole bytes).
pub(crate) const MAX_DESCRIPTION_LEN: usize = 639;

/// The largest timestamp BOLT11 holds (35 bits of seconds).
const MAX_TIMESTAMP: u64 = (1 << 35) - 1;

/// Tagged-field types (BOLT11 § Tagged Fields).
const TAG_PAYMENT_HASH: u8 = 1;
const TAG_FEATURES: u8 = 5;
const TAG_EXPIRY: u8 = 6;
const TAG_DESCRIPTION: u8 = 13;
const TAG_PAYMENT_SECRET: u8 = 16;
const TAG_MIN_FINAL_CLTV_EXPIRY_DELTA: u8 = 24;

/// The invoice's features: `var_onion_optin` (bit 8) and `payment_secret` (bit 14), both
/// required, as any payer of today expects.
const FEATURES: u64 = (1 << 8) | (1 << 14);

/// What goes into a dev-node invoice (regtest, `lnbcrt…`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Terms<'a> {
    /// The amount, in millisatoshis (not zero: the dev node issues no amountless invoices).
    pub(crate) amount_msat: u64,
    /// The description (`d` field), at most [`MAX_DESCRIPTION_LEN`] bytes.
    pub(crate) description: &'a str,
    /// SHA-256 of the preimage.
    pub(crate) payment_hash: &'a [u8; 32],
    /// The payment secret (`s` field).
    pub(crate) payment_secret: &'a [u8; 32],
    /// Creation time, Unix seconds.
    pub(crate) timestamp: u64,
    /// Seconds after `timestamp` when the invoice expires (`x` field).
    pub(crate) expiry_secs: u64,
    /// The final hop's CLTV delta (`c` field).
    pub(crate) min_final_cltv_expiry_delta: u64,
}

/// Why an invoice cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EncodeError {
    /// An amount of zero (the dev node issues no amountless invoices, and `lnbcrt0…` is not
    /// an amount).
    ZeroAmount,
    /// The amount in pico-bitcoin does not fit in 64 bits.
    AmountTooLarge(u64),
    /// The description is longer than [`MAX_DESCRIPTION_LEN`] bytes.
    DescriptionTooLong(usize),
    /// The timestamp does not fit in BOLT11's 35 bits.
    TimestampOutOfRange(u64),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::ZeroAmount => f.write_str("an invoice needs an amount above zero"),
            EncodeError::AmountTooLarge(msat) => {
                write!(f, "the amount {msat} msat is too large for an invoice")
            }
            EncodeError::DescriptionTooLong(len) => write!(
                f,
                "the description is {len} bytes; an invoice holds at most {MAX_DESCRIPTION_LEN}"
            ),
            EncodeError::TimestampOutOfRange(t) => {
                write!(f, "the timestamp {t} does not fit in an invoice's 35 bits")
            }
        }
    }
}

/// The signed invoice, as a lower-case bech32 string. `sign` gets the 32-byte hash BOLT11 has
/// the payee sign and returns the compact signature and its recovery id.
pub(crate) fn encode_signed(
    terms: &Terms<'_>,
    sign: impl FnOnce(&[u8; 32]) -> ([u8; 64], u8),
) -> Result<String, EncodeError> {
    if terms.description.len() > MAX_DESCRIPTION_LEN {
        return Err(EncodeError::DescriptionTooLong(terms.description.len()));
    }
    if terms.timestamp > MAX_TIMESTAMP {
        return Err(EncodeError::TimestampOutOfRange(terms.timestamp));
    }
    let hrp = human_readable_part(terms.amount_msat)?;

    // Timestamp (7), the six fields (3 each, plus their data), signature (104), checksum (6).
    let mut data = Fes::with_capacity(
        7 + 6 * 3
            + bytes_len(terms.description.len())
            + 2 * bytes_len(32)
            + int_len(FEATURES)
            + int_len(terms.min_final_cltv_expiry_delta)
            + int_len(terms.expiry_secs)
            + bytes_len(65),
    );
    data.int(terms.timestamp, 7);
    data.bytes_field(TAG_DESCRIPTION, terms.description.as_bytes());
    data.bytes_field(TAG_PAYMENT_HASH, terms.payment_hash);
    data.bytes_field(TAG_PAYMENT_SECRET, terms.payment_secret);
    data.int_field(TAG_FEATURES, FEATURES);
    data.int_field(
        TAG_MIN_FINAL_CLTV_EXPIRY_DELTA,
        terms.min_final_cltv_expiry_delta,
    );
    data.int_field(TAG_EXPIRY, terms.expiry_secs);

    let (signature, recovery_id) = sign(&signing_hash(hrp.as_bytes(), &data.0));
    let mut sig = [0u8; 65];
    sig[..64].copy_from_slice(&signature);
    sig[64] = recovery_id;
    data.bytes(&sig);

    Ok(spell(&hrp, &data.0))
}

/// `lnbcrt` and the amount in the largest unit that states it exactly (as lightning-invoice
/// writes it: `m`, `u`, `n`, or `p` for pico-bitcoin).
fn human_readable_part(amount_msat: u64) -> Result<String, EncodeError> {
    if amount_msat == 0 {
        return Err(EncodeError::ZeroAmount);
    }
    let pico = amount_msat
        .checked_mul(10)
        .ok_or(EncodeError::AmountTooLarge(amount_msat))?;
    let (value, unit) = [
        (1_000_000_000, 'm'),
        (1_000_000, 'u'),
        (1_000, 'n'),
        (1, 'p'),
    ]
    .into_iter()
    .find(|(m, _)| pico % m == 0)
    .map(|(m, unit)| (pico / m, unit))
    .expect("every amount is a whole number of pico-bitcoin");
    let mut hrp = String::with_capacity(6 + 20 + 1);
    write!(hrp, "lnbcrt{value}{unit}").expect("writing to a String cannot fail");
    Ok(hrp)
}

/// What BOLT11 signs: SHA-256 of the human-readable part's bytes followed by the data part's
/// 5-bit values packed into bytes, zero bits padding the last one.
fn signing_hash(hrp: &[u8], data: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(hrp);
    // Packed a block at a time into a buffer on the stack.
    let mut block = [0u8; 64];
    let mut filled = 0;
    regroup(data, 5, 8, |b| {
        block[filled] = b;
        filled += 1;
        if filled == block.len() {
            hasher.update(block);
            filled = 0;
        }
    });
    hasher.update(&block[..filled]);
    hasher.finalize().into()
}

/// `hrp`, the separator `1`, the data and its bech32 checksum, lower case.
fn spell(hrp: &str, data: &[u8]) -> String {
    let hrp_checked = Hrp::parse(hrp).expect("lnbcrt and digits make a valid human-readable part");
    let mut engine = Engine::<Bech32>::new();
    engine.input_hrp(hrp_checked);
    let mut out = String::with_capacity(hrp.len() + 1 + data.len() + 6);
    out.push_str(hrp);
    out.push('1');
    for &fe in data {
        let fe = Fe32::try_from(fe).expect("data holds 5-bit values");
        engine.input_fe(fe);
        out.push(fe.to_char());
    }
    engine.input_target_residue();
    for i in (0..6).rev() {
        let fe = Fe32::try_from(engine.residue().unpack(i)).expect("5-bit values");
        out.push(fe.to_char());
    }
    out
}

/// `values` of `from` bits each, big-endian, as values of `to` bits, zero bits padding the
/// last one (bytes to 5-bit groups and back).
fn regroup(values: &[u8], from: u32, to: u32, mut out: impl FnMut(u8)) {
    let mask = (1u32 << to) - 1;
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &v in values {
        acc = (acc << from) | u32::from(v);
        bits += from;
        while bits >= to {
            bits -= to;
            out(((acc >> bits) & mask) as u8);
        }
    }
    if bits > 0 {
        out(((acc << (to - bits)) & mask) as u8);
    }
}

/// 5-bit groups for `len` bytes (the last one padded).
const fn bytes_len(len: usize) -> usize {
    (len * 8).div_ceil(5)
}

/// 5-bit groups for `v` written big-endian without leading zeros (none for zero).
const fn int_len(v: u64) -> usize {
    ((64 - v.leading_zeros()) as usize).div_ceil(5)
}

/// The data part being written: one 5-bit value per byte.
struct Fes(Vec<u8>);

impl Fes {
    fn with_capacity(n: usize) -> Self {
        Fes(Vec::with_capacity(n))
    }

    /// `v` as `width` big-endian 5-bit groups.
    fn int(&mut self, v: u64, width: usize) {
        for i in (0..width).rev() {
            self.0.push(((v >> (5 * i)) & 31) as u8);
        }
    }

    /// `bytes` regrouped into 5-bit values, zero bits padding the last one.
    fn bytes(&mut self, bytes: &[u8]) {
        regroup(bytes, 8, 5, |fe| self.0.push(fe));
    }

    /// A tagged field: type, length in 5-bit groups (10 bits), data.
    fn header(&mut self, tag: u8, len: usize) {
        debug_assert!(len < 1024, "a field's length has 10 bits");
        self.0.push(tag);
        self.int(len as u64, 2);
    }

    fn bytes_field(&mut self, tag: u8, bytes: &[u8]) {
        self.header(tag, bytes_len(bytes.len()));
        self.bytes(bytes);
    }

    fn int_field(&mut self, tag: u8, v: u64) {
        let len = int_len(v);
        self.header(tag, len);
        self.int(v, len);
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::{Duration, UNIX_EPOCH};

    use bitcoin::hashes::{Hash, sha256};
    use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
    use lightning_invoice::{Bolt11Invoice, Currency, InvoiceBuilder, PaymentSecret};

    use super::*;

    fn terms<'a>(
        amount_msat: u64,
        description: &'a str,
        hash: &'a [u8; 32],
        secret: &'a [u8; 32],
        expiry_secs: u64,
    ) -> Terms<'a> {
        Terms {
            amount_msat,
            description,
            payment_hash: hash,
            payment_secret: secret,
            timestamp: 1_764_000_000,
            expiry_secs,
            min_final_cltv_expiry_delta: 18,
        }
    }

    /// Ours and lightning-invoice's builder, same terms, same key: the same string (RFC 6979
    /// signatures are deterministic), and lightning-invoice reads ours back with every field.
    fn check_against_lightning_invoice(t: &Terms<'_>) {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&[7; 32]).unwrap();
        let ours = encode_signed(t, |hash| {
            let sig = secp.sign_ecdsa_recoverable(&Message::from_digest(*hash), &key);
            let (id, compact) = sig.serialize_compact();
            (compact, id.to_i32() as u8)
        })
        .unwrap();
        let theirs = InvoiceBuilder::new(Currency::Regtest)
            .description(t.description.to_string())
            .payment_hash(sha256::Hash::from_byte_array(*t.payment_hash))
            .payment_secret(PaymentSecret(*t.payment_secret))
            .duration_since_epoch(Duration::from_secs(t.timestamp))
            .min_final_cltv_expiry_delta(t.min_final_cltv_expiry_delta)
            .expiry_time(Duration::from_secs(t.expiry_secs))
            .amount_milli_satoshis(t.amount_msat)
            .build_signed(|m| secp.sign_ecdsa_recoverable(m, &key))
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs, "terms {t:?}");

        let parsed = Bolt11Invoice::from_str(&ours).expect("lightning-invoice reads ours");
        assert_eq!(parsed.currency(), Currency::Regtest);
        assert_eq!(parsed.amount_milli_satoshis(), Some(t.amount_msat));
        assert_eq!(parsed.payment_hash().as_byte_array(), t.payment_hash);
        assert_eq!(&parsed.payment_secret().0, t.payment_secret);
        assert_eq!(parsed.expiry_time(), Duration::from_secs(t.expiry_secs));
        assert_eq!(
            parsed.min_final_cltv_expiry_delta(),
            t.min_final_cltv_expiry_delta
        );
        assert_eq!(
            parsed.timestamp(),
            UNIX_EPOCH + Duration::from_secs(t.timestamp)
        );
        assert_eq!(
            parsed.recover_payee_pub_key(),
            key.public_key(&secp),
            "the signature covers what lightning-invoice hashes"
        );
    }

    #[test]
    fn agrees_with_lightning_invoice_character_for_character() {
        let hash = [0xab; 32];
        let secret = [0x42; 32];
        // Amounts in every unit, and at the edges of each.
        for amount in [
            1,
            9,
            10,
            999,
            1_000,
            10_000,
            12_345,
            100_000,
            100_000_000,
            123_456_789_012,
            2_100_000_000_000_000,
            u64::MAX / 10,
        ] {
            check_against_lightning_invoice(&terms(amount, "L402 weather", &hash, &secret, 3600));
        }
        // Descriptions of every length modulo 5 bytes (padding), empty, non-ASCII, the longest.
        let long = "x".repeat(MAX_DESCRIPTION_LEN);
        for d in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "abcde",
            "Grüße ⚡",
            long.as_str(),
        ] {
            check_against_lightning_invoice(&terms(10_000, d, &hash, &secret, 3600));
        }
        // Expiries of zero, one, several and all thirteen 5-bit groups; other hashes and secrets.
        for (expiry, byte) in [
            (0, 0u8),
            (1, 1),
            (31, 0xff),
            (32, 0x80),
            (86_400, 0x01),
            ((1 << 32) + 1, 0x5a),
            (u64::MAX, 0xa5),
        ] {
            let hash = [byte; 32];
            let secret = [byte.wrapping_add(1); 32];
            check_against_lightning_invoice(&terms(10_000, "d", &hash, &secret, expiry));
        }
        // The first and the last second BOLT11 can state.
        for timestamp in [0, MAX_TIMESTAMP] {
            let mut t = terms(10_000, "d", &hash, &secret, 60);
            t.timestamp = timestamp;
            check_against_lightning_invoice(&t);
        }
    }

    #[test]
    fn bad_terms_are_refused_and_named() {
        let (hash, secret) = ([1; 32], [2; 32]);
        let sign = |_: &[u8; 32]| ([0; 64], 0);
        let long = "x".repeat(MAX_DESCRIPTION_LEN + 1);
        let e = encode_signed(&terms(1, &long, &hash, &secret, 60), sign).unwrap_err();
        assert_eq!(e, EncodeError::DescriptionTooLong(640));
        assert!(e.to_string().contains("at most 639"), "{e}");

        let e = encode_signed(&terms(0, "d", &hash, &secret, 60), sign).unwrap_err();
        assert_eq!(e, EncodeError::ZeroAmount);
        assert!(e.to_string().contains("above zero"), "{e}");

        let e = encode_signed(&terms(u64::MAX / 10 + 1, "d", &hash, &secret, 60), sign);
        assert_eq!(
            e.unwrap_err(),
            EncodeError::AmountTooLarge(u64::MAX / 10 + 1)
        );

        let mut late = terms(1, "d", &hash, &secret, 60);
        late.timestamp = MAX_TIMESTAMP + 1;
        let e = encode_signed(&late, sign).unwrap_err();
        assert_eq!(e, EncodeError::TimestampOutOfRange(MAX_TIMESTAMP + 1));
    }
}
