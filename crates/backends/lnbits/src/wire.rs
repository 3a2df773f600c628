//! LNbits' JSON shapes and what they mean for the ports.
//!
//! Everything here is pure (no I/O), so each recorded response body in `tests/fixtures/` runs
//! through exactly the code the adapter uses. Unsuccessful answers are read by
//! [`crate::errors`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l402::{
    BackendError, ErrorKind, InvoiceState, Msat, Paid, PaymentHash, PaymentState, Preimage,
};
use l402_backend_http::{clip, protocol_error};
use serde::{Deserialize, Serialize};

use crate::NAME;

// === requests ===

/// `POST /api/v1/payments` creating an invoice (`out: false`).
#[derive(Debug, Serialize)]
pub(crate) struct CreateInvoice<'a> {
    pub(crate) out: bool,
    /// Whole satoshis: with `unit: "sat"` LNbits 1.6.2 takes `int(amount)`, silently dropping a
    /// fraction, so the adapter only sends whole numbers (see [`whole_sats`]).
    pub(crate) amount: u64,
    pub(crate) unit: &'static str,
    pub(crate) memo: &'a str,
    /// Seconds; LNbits treats 0 as "use the default" (3600), so this is at least 1.
    pub(crate) expiry: u64,
}

/// `POST /api/v1/payments` paying an invoice (`out: true`, admin key).
#[derive(Debug, Serialize)]
pub(crate) struct Pay<'a> {
    pub(crate) out: bool,
    pub(crate) bolt11: &'a str,
}

/// The invoice amount LNbits is asked for: whole satoshis only. LNbits creates invoices in whole
/// satoshis and truncates fractions (21.5 sat becomes a 21 sat invoice, verified), so an amount
/// that is not a whole number of satoshis is refused rather than rounded: rounding up would charge
/// more than the price the caller set, rounding down less.
pub(crate) fn whole_sats(amount: Msat) -> Result<u64, String> {
    if amount == Msat::ZERO {
        return Err("the amount must be positive (amountless invoices are not supported)".into());
    }
    if !amount.as_u64().is_multiple_of(1000) {
        return Err(format!(
            "LNbits invoices are in whole satoshis and {amount} msat is not one; \
             price in multiples of 1000 msat"
        ));
    }
    Ok(amount.to_sat_floor())
}

/// An invoice expiry in whole seconds, rounded up, at least 1: LNbits takes whole seconds and
/// reads 0 as "the default" (an hour).
pub(crate) fn expiry_secs(expiry: Duration) -> u64 {
    let secs = expiry.as_secs() + u64::from(expiry.subsec_nanos() > 0);
    secs.max(1)
}

// === responses ===

/// A payment record (LNbits' `Payment` model), as the create and pay calls return it and as the
/// `details` of a lookup. Incoming records (invoices) have a positive `amount`, outgoing ones a
/// negative one; amounts and fees are msat.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Record {
    pub(crate) payment_hash: String,
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) fee: i64,
    /// `pending`, `success` or `failed`.
    pub(crate) status: String,
    /// Older LNbits versions call it `payment_request`; 1.6.2 sends both.
    #[serde(default)]
    pub(crate) bolt11: Option<String>,
    #[serde(default)]
    pub(crate) payment_request: Option<String>,
    #[serde(default)]
    pub(crate) preimage: Option<String>,
    #[serde(default)]
    pub(crate) labels: Vec<String>,
}

impl Record {
    /// The invoice, from whichever field carries it.
    pub(crate) fn invoice(&self) -> Option<&str> {
        self.bolt11
            .as_deref()
            .or(self.payment_request.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// Labelled expired by LNbits, or its invoice is past its expiry at `now`.
    fn is_expired(&self, now: Duration) -> bool {
        self.labels.iter().any(|l| l == "expired")
            || self
                .invoice()
                .and_then(|s| decode_invoice(s).ok())
                .is_some_and(|inv| inv.is_expired_at(now))
    }
}

/// `GET /api/v1/payments/<hash>`. The key is optional for LNbits: with a valid key the lookup is
/// limited to that key's wallet and `details` is present; with an unknown key it searches every
/// wallet and leaves `details` out.
#[derive(Debug, Deserialize)]
pub(crate) struct Lookup {
    #[serde(default)]
    pub(crate) paid: bool,
    #[serde(default)]
    pub(crate) details: Option<Record>,
}

/// `GET /api/v1/wallet`: only its success matters (it proves the key).
#[derive(Debug, Deserialize)]
pub(crate) struct Wallet {
    #[allow(dead_code)] // read only to check the answer is a wallet
    pub(crate) name: String,
}

/// Parses a JSON answer.
pub(crate) fn parse<'a, T: Deserialize<'a>>(
    call: &'static str,
    body: &'a str,
) -> Result<T, BackendError> {
    serde_json::from_str(body).map_err(|e| {
        protocol_error(
            NAME,
            call,
            format!("unexpected answer ({e}): {}", clip(body)),
        )
    })
}

fn hash_of(call: &'static str, s: &str) -> Result<PaymentHash, BackendError> {
    s.parse()
        .map_err(|e: l402::Error| protocol_error(NAME, call, format!("payment_hash: {e}")))
}

/// The time since the Unix epoch (what BOLT11 expiry is measured against).
pub(crate) fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Decodes a BOLT11 string and checks its signature (the shared lenient decoder: LNbits'
/// FakeWallet signs invoices without feature bits).
pub(crate) fn decode_invoice(bolt11: &str) -> Result<l402::bolt11::Invoice, String> {
    l402::bolt11::decode(bolt11)
}

// === meaning ===

/// The invoice from a create answer, checked against what was asked for.
pub(crate) fn created_invoice(
    call: &'static str,
    record: &Record,
    amount: Msat,
) -> Result<(String, PaymentHash), BackendError> {
    let bolt11 = record
        .invoice()
        .ok_or_else(|| protocol_error(NAME, call, "the answer has no bolt11 / payment_request"))?;
    let hash = hash_of(call, &record.payment_hash)?;
    let decoded = decode_invoice(bolt11).map_err(|e| protocol_error(NAME, call, e))?;
    if decoded.payment_hash != hash {
        return Err(protocol_error(
            NAME,
            call,
            "the invoice's payment hash differs from the payment_hash field",
        ));
    }
    if decoded.amount != Some(amount) {
        return Err(protocol_error(
            NAME,
            call,
            format!(
                "asked for {amount} msat, the invoice is for {:?} msat",
                decoded.amount.map(Msat::as_u64)
            ),
        ));
    }
    Ok((bolt11.to_owned(), hash))
}

/// The issuer's view of a lookup made with its own key.
pub(crate) fn invoice_state(
    call: &'static str,
    lookup: &Lookup,
    now: Duration,
) -> Result<InvoiceState, BackendError> {
    let Some(record) = &lookup.details else {
        return Err(not_this_wallet(call));
    };
    if record.amount < 0 {
        // Lookups sort by amount, so an outgoing record of this wallet hides any invoice.
        return Err(protocol_error(
            NAME,
            call,
            "LNbits shows this wallet's outgoing payment for that hash, not an invoice \
             (does the issuing wallet also pay?)",
        ));
    }
    Ok(match record.status.as_str() {
        "success" => InvoiceState::Settled,
        _ if lookup.paid => InvoiceState::Settled,
        // LNbits marks an unpaid invoice `failed` + label `expired` on the first check after its
        // expiry; `failed` otherwise means a cancelled (hold) invoice.
        "failed" if record.is_expired(now) => InvoiceState::Expired,
        "failed" => InvoiceState::Cancelled,
        "pending" if record.is_expired(now) => InvoiceState::Expired,
        "pending" => InvoiceState::Open,
        other => {
            return Err(protocol_error(
                NAME,
                call,
                format!("unknown payment status {other:?}"),
            ));
        }
    })
}

/// The payer's view of a lookup made with its own key. `None` means LNbits positively has no
/// outgoing payment of this wallet for the hash.
pub(crate) fn payment_state(
    call: &'static str,
    lookup: &Lookup,
    hash: &PaymentHash,
) -> Result<PaymentState, BackendError> {
    let Some(record) = &lookup.details else {
        return Err(not_this_wallet(call));
    };
    if record.amount > 0 {
        // Only an incoming record (this wallet issued the invoice). Outgoing records sort first,
        // so there is none.
        return Ok(PaymentState::NotFound);
    }
    Ok(match record.status.as_str() {
        "success" => PaymentState::Succeeded(paid(call, record, hash)?),
        "pending" => PaymentState::InFlight,
        "failed" => PaymentState::Failed {
            reason: "LNbits marked the payment failed".into(),
        },
        other => {
            return Err(protocol_error(
                NAME,
                call,
                format!("unknown payment status {other:?}"),
            ));
        }
    })
}

/// What a pay call's 201 answer means.
#[derive(Debug)]
pub(crate) enum PayOutcome {
    /// Paid; the preimage matches the invoice.
    Paid(Paid),
    /// Still being attempted: look it up later.
    Pending,
    /// Not paid, for good.
    Refused(BackendError),
}

/// Reads a pay call's 201 answer. HTTP 201 alone proves nothing: for an invoice a status check has
/// already marked expired, LNbits 1.6.2 answers 201 with the **payee's** failed record and pays
/// nothing (backends.md §5.3). Only an outgoing record with status `success` and a preimage whose
/// SHA-256 is the invoice's hash counts as paid.
pub(crate) fn pay_outcome(
    call: &'static str,
    record: &Record,
    hash: &PaymentHash,
    now: Duration,
) -> Result<PayOutcome, BackendError> {
    if hash_of(call, &record.payment_hash)? != *hash {
        return Err(protocol_error(
            NAME,
            call,
            "LNbits answered with a record for another payment hash",
        ));
    }
    if record.amount >= 0 {
        // Not our outgoing payment: the payee's (incoming) record.
        let (kind, what) = if record.is_expired(now) {
            (ErrorKind::InvoiceExpired, "the invoice has expired")
        } else {
            (ErrorKind::PaymentFailed, "the invoice cannot be paid")
        };
        return Ok(PayOutcome::Refused(BackendError::new(
            kind,
            NAME,
            call,
            format!(
                "{what}: LNbits returned the payee's {} invoice record instead of a payment; \
                 nothing was paid",
                record.status
            ),
        )));
    }
    Ok(match record.status.as_str() {
        "success" => PayOutcome::Paid(paid(call, record, hash)?),
        "pending" => PayOutcome::Pending,
        "failed" => PayOutcome::Refused(BackendError::new(
            ErrorKind::PaymentFailed,
            NAME,
            call,
            "LNbits marked the payment failed",
        )),
        other => {
            return Err(protocol_error(
                NAME,
                call,
                format!("unknown payment status {other:?}"),
            ));
        }
    })
}

/// A successful outgoing record as [`Paid`], checking the preimage.
fn paid(call: &'static str, record: &Record, hash: &PaymentHash) -> Result<Paid, BackendError> {
    let preimage: Preimage = record
        .preimage
        .as_deref()
        .ok_or_else(|| protocol_error(NAME, call, "a successful payment without a preimage"))?
        .parse()
        .map_err(|e: l402::Error| protocol_error(NAME, call, format!("preimage: {e}")))?;
    if !preimage.matches(hash) {
        return Err(protocol_error(
            NAME,
            call,
            "LNbits reported success with a preimage that does not hash to the payment hash",
        ));
    }
    Ok(Paid {
        preimage,
        amount: Msat::new(record.amount.unsigned_abs()),
        fee: Msat::new(record.fee.unsigned_abs()),
    })
}

fn not_this_wallet(call: &'static str) -> BackendError {
    BackendError::new(
        ErrorKind::Unauthorized,
        NAME,
        call,
        "LNbits answered without wallet details, so it does not know this API key",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/", $name, ".json"))
        };
    }

    const PAID_HASH: &str = "8c5e4b3de871f88a43cd46203499cd91df4990f9f784a6a56dabe5651bbfb508";
    const PAID_PREIMAGE: &str = "ab0fa599094b3f44c79dbe168093e705d4c206afca18d4e6df10130bdcc255c7";
    const EXPIRED_HASH: &str = "993356e562fd1b12b78a55919bb0ec1b38ece26b3ede2ff091a69c2b74ca5c9b";
    /// 2026-11-21T22:12:10Z, just after the fixtures were recorded: the 600 s invoice is still
    /// valid, the 1 s one has expired.
    const AT: Duration = Duration::from_secs(1_795_299_130);

    fn hash(s: &str) -> PaymentHash {
        s.parse().unwrap()
    }

    fn lookup(body: &str) -> Lookup {
        parse("lookup", body).unwrap()
    }

    fn record(body: &str) -> Record {
        parse("record", body).unwrap()
    }

    #[test]
    fn only_whole_satoshis_are_invoiced() {
        assert_eq!(whole_sats(Msat::from_sat(21)), Ok(21));
        assert_eq!(whole_sats(Msat::new(1000)), Ok(1));
        let e = whole_sats(Msat::new(21_500)).unwrap_err();
        assert!(e.contains("21500 msat"), "{e}");
        assert!(whole_sats(Msat::new(999)).is_err());
        assert!(whole_sats(Msat::new(1)).is_err());
        assert!(whole_sats(Msat::ZERO).is_err());
    }

    #[test]
    fn expiries_are_whole_seconds_rounded_up() {
        assert_eq!(expiry_secs(Duration::ZERO), 1);
        assert_eq!(expiry_secs(Duration::from_millis(300)), 1);
        assert_eq!(expiry_secs(Duration::from_secs(1)), 1);
        assert_eq!(expiry_secs(Duration::from_millis(1001)), 2);
        assert_eq!(expiry_secs(Duration::from_secs(3600)), 3600);
    }

    #[test]
    fn fakewallet_invoices_decode_without_feature_bits() {
        // LNbits' FakeWallet signs invoices without a features field, which
        // `Bolt11Invoice::from_str` refuses; the raw decoder must read them.
        let r = record(fixture!("create_invoice_201"));
        let inv = decode_invoice(r.invoice().unwrap()).unwrap();
        assert_eq!(inv.payment_hash, hash(PAID_HASH));
        assert_eq!(inv.amount, Some(Msat::from_sat(21)));
        // Created 2026-11-21T22:12:04Z with a 600 s expiry.
        assert_eq!(
            inv.expires_at(),
            Some(Duration::from_secs(1_795_299_124 + 600))
        );
        assert!(!inv.is_expired_at(AT));
        assert!(inv.is_expired_at(AT + Duration::from_secs(600)));
        // A changed character breaks the checksum; garbage is refused.
        let mut tampered = r.invoice().unwrap().to_owned();
        tampered.replace_range(20..21, if &tampered[20..21] == "q" { "p" } else { "q" });
        assert!(decode_invoice(&tampered).is_err());
        assert!(decode_invoice("lnbcgarbage").is_err());
    }

    #[test]
    fn create_answer_gives_bolt11_and_hash() {
        let r = record(fixture!("create_invoice_201"));
        let (bolt11, h) = created_invoice("create", &r, Msat::from_sat(21)).unwrap();
        assert!(bolt11.starts_with("lnbc210n1"), "{bolt11}");
        assert_eq!(h, hash(PAID_HASH));
        // The amount is checked against the invoice itself.
        let e = created_invoice("create", &r, Msat::from_sat(22)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn create_answer_may_carry_only_payment_request() {
        let mut v: serde_json::Value =
            serde_json::from_str(fixture!("create_invoice_201")).unwrap();
        v.as_object_mut().unwrap().remove("bolt11");
        let r = record(&v.to_string());
        assert!(created_invoice("create", &r, Msat::from_sat(21)).is_ok());
        v.as_object_mut().unwrap().remove("payment_request");
        let e = created_invoice("create", &record(&v.to_string()), Msat::from_sat(21)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn create_answer_with_a_foreign_hash_is_refused() {
        let body = fixture!("create_invoice_201").replace(PAID_HASH, EXPIRED_HASH);
        let e = created_invoice("create", &record(&body), Msat::from_sat(21)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(e.to_string().contains("differs"), "{e}");
    }

    #[test]
    fn pay_answer_gives_a_checked_preimage() {
        let r = record(fixture!("pay_success_201"));
        match pay_outcome("pay", &r, &hash(PAID_HASH), AT).unwrap() {
            PayOutcome::Paid(p) => {
                assert_eq!(p.preimage, PAID_PREIMAGE.parse().unwrap());
                assert_eq!(p.amount, Msat::from_sat(21));
                assert_eq!(p.fee, Msat::ZERO);
            }
            other => panic!("{other:?}"),
        }
        // A preimage that does not hash to the payment hash is not a payment proof.
        let body = fixture!("pay_success_201").replace(PAID_PREIMAGE, &"11".repeat(32));
        let e = pay_outcome("pay", &record(&body), &hash(PAID_HASH), AT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        // Neither is a missing one.
        let body = fixture!("pay_success_201").replace(&format!("\"{PAID_PREIMAGE}\""), "null");
        let e = pay_outcome("pay", &record(&body), &hash(PAID_HASH), AT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        // Nor a record of another hash.
        let e = pay_outcome("pay", &r, &hash(EXPIRED_HASH), AT).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
    }

    #[test]
    fn pay_answer_with_the_payees_expired_record_is_not_a_payment() {
        // LNbits 1.6.2 answers 201 with the payee's failed record (backends.md §5.3).
        let r = record(fixture!("pay_expired_checked_201"));
        assert!(r.amount > 0);
        match pay_outcome("pay", &r, &hash(EXPIRED_HASH), AT).unwrap() {
            PayOutcome::Refused(e) => {
                assert_eq!(e.kind(), ErrorKind::InvoiceExpired);
                assert!(e.to_string().contains("nothing was paid"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        // Without the label (and with a still valid invoice) it is a plain failure.
        let mut v: serde_json::Value =
            serde_json::from_str(fixture!("create_invoice_201")).unwrap();
        v["status"] = "failed".into();
        match pay_outcome("pay", &record(&v.to_string()), &hash(PAID_HASH), AT).unwrap() {
            PayOutcome::Refused(e) => assert_eq!(e.kind(), ErrorKind::PaymentFailed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pay_answer_pending_and_failed() {
        let pending = fixture!("pay_success_201").replace("\"success\"", "\"pending\"");
        assert!(matches!(
            pay_outcome("pay", &record(&pending), &hash(PAID_HASH), AT).unwrap(),
            PayOutcome::Pending
        ));
        let failed = fixture!("pay_success_201").replace("\"success\"", "\"failed\"");
        match pay_outcome("pay", &record(&failed), &hash(PAID_HASH), AT).unwrap() {
            PayOutcome::Refused(e) => assert_eq!(e.kind(), ErrorKind::PaymentFailed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invoice_states_from_lookups() {
        let st = |body: &str| invoice_state("state", &lookup(body), AT);
        assert_eq!(
            st(fixture!("lookup_open_with_key")).unwrap(),
            InvoiceState::Open
        );
        assert_eq!(
            st(fixture!("lookup_paid_payee")).unwrap(),
            InvoiceState::Settled
        );
        assert_eq!(
            st(fixture!("lookup_expired_first_check")).unwrap(),
            InvoiceState::Expired
        );
        assert_eq!(
            st(fixture!("lookup_expired_later")).unwrap(),
            InvoiceState::Expired
        );
        // No details: the key is not one LNbits knows (the lookup then ignores it).
        assert_eq!(
            st(fixture!("lookup_open_wrong_key")).unwrap_err().kind(),
            ErrorKind::Unauthorized
        );
        // The payer's own (outgoing) record is not an invoice.
        assert_eq!(
            st(fixture!("lookup_paid_payer")).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        // A pending record whose invoice has expired is expired, whatever LNbits has noticed.
        let body = fixture!("lookup_expired_first_check")
            .replace("\"failed\"", "\"pending\"")
            .replace("\"expired\"", "\"x\"");
        assert_eq!(st(&body).unwrap(), InvoiceState::Expired);
        // A failed invoice that has not expired was cancelled.
        let body = fixture!("lookup_open_with_key").replace("\"pending\"", "\"failed\"");
        assert_eq!(st(&body).unwrap(), InvoiceState::Cancelled);
        // An open invoice read an hour later has expired.
        let later = invoice_state(
            "state",
            &lookup(fixture!("lookup_open_with_key")),
            AT + Duration::from_secs(3600),
        );
        assert_eq!(later.unwrap(), InvoiceState::Expired);
        let body = fixture!("lookup_open_with_key").replace("\"pending\"", "\"weird\"");
        assert_eq!(st(&body).unwrap_err().kind(), ErrorKind::Protocol);
    }

    #[test]
    fn payment_states_from_lookups() {
        let h = hash(PAID_HASH);
        let st = |body: &str| payment_state("payment", &lookup(body), &h);
        match st(fixture!("lookup_paid_payer")).unwrap() {
            PaymentState::Succeeded(p) => {
                assert_eq!(p.preimage, PAID_PREIMAGE.parse().unwrap());
                assert_eq!(p.amount, Msat::from_sat(21));
            }
            other => panic!("{other:?}"),
        }
        // The payee's incoming record means this wallet made no payment.
        assert_eq!(
            st(fixture!("lookup_paid_payee")).unwrap(),
            PaymentState::NotFound
        );
        let pending = fixture!("lookup_paid_payer").replace("\"success\"", "\"pending\"");
        assert_eq!(st(&pending).unwrap(), PaymentState::InFlight);
        let failed = fixture!("lookup_paid_payer").replace("\"success\"", "\"failed\"");
        assert!(matches!(st(&failed).unwrap(), PaymentState::Failed { .. }));
        assert_eq!(
            st(fixture!("lookup_open_wrong_key")).unwrap_err().kind(),
            ErrorKind::Unauthorized
        );
    }
}
