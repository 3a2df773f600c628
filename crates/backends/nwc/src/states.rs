//! What a wallet's transaction object says about an invoice or a payment, for wallets old and
//! new.

use std::str::FromStr;

use l402::{
    BackendError, ErrorKind, InvoiceState, Msat, Paid, PaymentHash, PaymentState, Preimage,
};
use l402_backend_http::protocol_error;
use lightning_invoice::Bolt11Invoice;

use crate::NAME;
use crate::wire::Transaction;

/// The error for a wallet that reports a payment as sent without its preimage.
pub(crate) fn no_preimage(call: &'static str) -> BackendError {
    BackendError::new(
        ErrorKind::Unsupported,
        NAME,
        call,
        "the wallet returned no preimage for the payment; L402 needs the preimage as proof of \
         payment, so this wallet cannot pay for L402 (the payment itself may have gone through: \
         check the wallet before trying again)",
    )
}

pub(crate) fn parse_hash(s: &str, call: &'static str) -> Result<PaymentHash, BackendError> {
    s.trim()
        .parse()
        .map_err(|e: l402::Error| protocol_error(NAME, call, format!("payment_hash: {e}")))
}

/// The state of one of the wallet's invoices.
///
/// `state` decides when present. Without it (wallets from before 2025), `settled_at` means
/// settled, else a past `expires_at` means expired. A `preimage` alone is **not** taken as
/// proof of payment here: some wallets show the preimage of unpaid invoices to their owner.
pub(crate) fn invoice_state(tx: &Transaction, now: u64) -> InvoiceState {
    let expired = tx.expires_at.is_some_and(|t| t <= now);
    match tx.state.as_deref() {
        Some("settled") => InvoiceState::Settled,
        Some("expired") => InvoiceState::Expired,
        Some("failed") => InvoiceState::Cancelled,
        // Accepted is a held HTLC: not settled yet.
        Some("pending") | Some("accepted") if expired => InvoiceState::Expired,
        Some("pending") | Some("accepted") => InvoiceState::Open,
        _ if tx.settled_at.is_some() => InvoiceState::Settled,
        _ if expired => InvoiceState::Expired,
        _ => InvoiceState::Open,
    }
}

/// The state of an outgoing payment from a `lookup_invoice` result.
pub(crate) fn payment_state(
    tx: &Transaction,
    hash: &PaymentHash,
    call: &'static str,
) -> Result<PaymentState, BackendError> {
    if let Some(h) = &tx.payment_hash
        && parse_hash(h, call)? != *hash
    {
        return Err(protocol_error(
            NAME,
            call,
            "the wallet answered about another payment hash",
        ));
    }
    if tx.direction.as_deref() == Some("incoming") {
        // The wallet issued this invoice; whether it also paid it cannot be told this way.
        return Err(BackendError::new(
            ErrorKind::Unsupported,
            NAME,
            call,
            "the wallet answered with its own invoice for this hash (type incoming), so its \
             outgoing payments cannot be looked up by payment hash",
        ));
    }
    let preimage = tx.preimage.as_deref().filter(|p| !p.trim().is_empty());
    let settled = match tx.state.as_deref() {
        Some("settled") => true,
        Some("pending") | Some("accepted") => return Ok(PaymentState::InFlight),
        Some(s @ ("failed" | "expired")) => {
            return Ok(PaymentState::Failed {
                reason: format!("the wallet reports the payment {s}"),
            });
        }
        // Older wallets: a settlement time or a preimage means it went through.
        _ => tx.settled_at.is_some() || preimage.is_some(),
    };
    if !settled {
        // An outgoing record that is neither settled nor failed is still in flight.
        return Ok(PaymentState::InFlight);
    }
    let preimage = checked_preimage(preimage, hash, call)?;
    let amount = tx
        .amount
        .or_else(|| {
            tx.invoice
                .as_deref()
                .and_then(|i| Bolt11Invoice::from_str(i).ok())
                .and_then(|i| i.amount_milli_satoshis())
        })
        .unwrap_or(0);
    Ok(PaymentState::Succeeded(Paid {
        preimage,
        amount: Msat::new(amount),
        fee: Msat::new(tx.fees_paid.unwrap_or(0)),
    }))
}

pub(crate) fn checked_preimage(
    preimage: Option<&str>,
    hash: &PaymentHash,
    call: &'static str,
) -> Result<Preimage, BackendError> {
    let preimage: Preimage = preimage
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| no_preimage(call))?
        .trim()
        .parse()
        .map_err(|e: l402::Error| protocol_error(NAME, call, format!("preimage: {e}")))?;
    if !preimage.matches(hash) {
        return Err(protocol_error(
            NAME,
            call,
            "the wallet returned a preimage that does not hash to the payment hash",
        ));
    }
    Ok(preimage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(json: &str) -> Transaction {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn invoice_state_uses_state_then_falls_back() {
        let now = 1_000;
        let s = |j: &str| invoice_state(&tx(j), now);
        assert_eq!(s(r#"{"state":"settled"}"#), InvoiceState::Settled);
        assert_eq!(s(r#"{"state":"expired"}"#), InvoiceState::Expired);
        assert_eq!(s(r#"{"state":"failed"}"#), InvoiceState::Cancelled);
        assert_eq!(
            s(r#"{"state":"pending","expires_at":2000}"#),
            InvoiceState::Open
        );
        assert_eq!(s(r#"{"state":"accepted"}"#), InvoiceState::Open);
        // Wallets that never flip pending to expired.
        assert_eq!(
            s(r#"{"state":"pending","expires_at":999}"#),
            InvoiceState::Expired
        );
        // `state` wins over a stray settled_at.
        assert_eq!(
            s(r#"{"state":"pending","settled_at":5,"expires_at":2000}"#),
            InvoiceState::Open
        );
        // No state (older wallets).
        assert_eq!(
            s(r#"{"settled_at":900,"expires_at":950}"#),
            InvoiceState::Settled
        );
        assert_eq!(s(r#"{"expires_at":950}"#), InvoiceState::Expired);
        assert_eq!(s(r#"{"expires_at":2000}"#), InvoiceState::Open);
        assert_eq!(s(r#"{}"#), InvoiceState::Open);
        // A preimage alone does not settle an invoice.
        assert_eq!(
            s(r#"{"preimage":"00","expires_at":2000}"#),
            InvoiceState::Open
        );
    }

    #[test]
    fn payment_state_requires_a_matching_preimage() {
        let pre = Preimage::from_bytes([7; 32]);
        let hash = pre.payment_hash();
        let call = "payment lookup";
        let st = |j: String| payment_state(&tx(&j), &hash, call);
        let ok = st(format!(
            r#"{{"type":"outgoing","state":"settled","preimage":"{}","payment_hash":"{hash}","amount":5000,"fees_paid":12}}"#,
            pre.to_hex()
        ))
        .unwrap();
        assert_eq!(
            ok,
            PaymentState::Succeeded(Paid {
                preimage: pre.clone(),
                amount: Msat::new(5000),
                fee: Msat::new(12)
            })
        );
        // Older wallet: no state, settled_at + preimage.
        assert!(matches!(
            st(format!(
                r#"{{"settled_at":5,"preimage":"{}"}}"#,
                pre.to_hex()
            ))
            .unwrap(),
            PaymentState::Succeeded(_)
        ));
        assert_eq!(
            st(r#"{"type":"outgoing","state":"pending"}"#.into()).unwrap(),
            PaymentState::InFlight
        );
        assert_eq!(
            st(r#"{"type":"outgoing"}"#.into()).unwrap(),
            PaymentState::InFlight
        );
        assert!(matches!(
            st(r#"{"type":"outgoing","state":"failed"}"#.into()).unwrap(),
            PaymentState::Failed { .. }
        ));
        // Settled without a preimage: the clear, permanent error.
        let e = st(r#"{"type":"outgoing","state":"settled"}"#.into()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(!e.is_transient());
        assert!(e.to_string().contains("no preimage"), "{e}");
        // A preimage for another hash.
        let e = st(format!(
            r#"{{"state":"settled","preimage":"{}"}}"#,
            "11".repeat(32)
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        // Another hash altogether.
        let e = st(format!(r#"{{"payment_hash":"{}"}}"#, "22".repeat(32))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        // The wallet's own invoice is not a payment record.
        let e = st(r#"{"type":"incoming","state":"settled"}"#.into()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
}
