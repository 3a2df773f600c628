//! The port implementations: AddInvoice and LookupInvoice for [`InvoiceIssuer`];
//! SendPaymentV2 and TrackPaymentV2 for [`InvoicePayer`].

use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Msat, Paid, PayRequest, PaymentHash, PaymentState, Preimage,
};
use l402_backend_http::{protocol_error, reqwest};
use lightning_invoice::Bolt11Invoice;

use crate::backend::{LineStream, LndBackend};
use crate::wire::{self, StreamLine};
use crate::{NAME, error};

impl InvoiceIssuer for LndBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        let value_msat = invoice_amount(request.amount)?;
        let body = wire::AddInvoice {
            memo: &request.memo,
            value_msat: value_msat.to_string(),
            expiry: whole_secs(request.expiry).to_string(),
        };
        let resp: wire::AddInvoiceResponse = self
            .unary(
                CALL,
                self.request(reqwest::Method::POST, "v1/invoices")
                    .json(&body),
            )
            .await?;
        let payment_hash =
            wire::hash_from_base64(&resp.r_hash).map_err(|e| protocol_error(NAME, CALL, e))?;
        // The invoice must be the one asked for: same hash, same amount.
        let decoded = decode(&resp.payment_request)
            .map_err(|e| protocol_error(NAME, CALL, format!("payment_request: {e}")))?;
        if invoice_hash(&decoded) != payment_hash {
            return Err(protocol_error(
                NAME,
                CALL,
                "payment_request is for another payment hash than r_hash",
            ));
        }
        if decoded.amount_milli_satoshis() != Some(request.amount.as_u64()) {
            return Err(protocol_error(
                NAME,
                CALL,
                format!(
                    "payment_request is for {:?} msat, asked for {}",
                    decoded.amount_milli_satoshis(),
                    request.amount
                ),
            ));
        }
        Ok(CreatedInvoice {
            bolt11: resp.payment_request,
            payment_hash,
        })
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        // LookupInvoice v1: the hash goes in the path as hex, and it needs only
        // `invoices:read` (LookupInvoiceV2 needs `invoices:write` and base64 in the query).
        let inv: wire::Invoice = self
            .unary(
                CALL,
                self.request(
                    reqwest::Method::GET,
                    &format!("v1/invoice/{}", payment_hash.to_hex()),
                ),
            )
            .await?;
        if !inv.r_hash.is_empty() && wire::hash_from_base64(&inv.r_hash).ok() != Some(*payment_hash)
        {
            return Err(protocol_error(NAME, CALL, "answer is for another invoice"));
        }
        invoice_state(&inv, unix_now()).map_err(|e| protocol_error(NAME, CALL, e))
    }
}

impl InvoicePayer for LndBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        self.pay_once(request).await.map_err(|e| {
            if e.kind() != ErrorKind::Timeout {
                return e;
            }
            // The request may have reached lnd: the payment can still complete.
            BackendError::new(
                ErrorKind::Timeout,
                NAME,
                PAY,
                format!(
                    "no final payment state in time; the payment may still complete: look it \
                     up by its payment hash before paying again ({})",
                    e.detail()
                ),
            )
            .with_source(e)
        })
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        const CALL: &str = "payment lookup";
        // TrackPaymentV2's first message is the payment's current state; that is all we read.
        let mut stream = match self.stream(CALL, self.track(payment_hash)).await {
            Ok(s) => s,
            // Only lnd's "payment isn't initiated" is NotFound; a wrong URL is Protocol.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(PaymentState::NotFound),
            Err(e) => return Err(e),
        };
        match stream.next().await? {
            Some(StreamLine::Result(p)) => {
                check_hash(CALL, &p, payment_hash)?;
                match p.status.as_str() {
                    "SUCCEEDED" => Ok(PaymentState::Succeeded(paid(CALL, &p, payment_hash)?)),
                    "FAILED" => Ok(PaymentState::Failed {
                        reason: failure(&p.failure_reason).1,
                    }),
                    "IN_FLIGHT" | "INITIATED" => Ok(PaymentState::InFlight),
                    other => Err(protocol_error(
                        NAME,
                        CALL,
                        format!("unknown payment status {other:?}"),
                    )),
                }
            }
            Some(StreamLine::Error(s)) if error::kind_of(&s) == ErrorKind::NotFound => {
                Ok(PaymentState::NotFound)
            }
            Some(StreamLine::Error(s)) => Err(error::from_status(CALL, &s)),
            None => Err(protocol_error(NAME, CALL, "empty TrackPaymentV2 stream")),
        }
    }
}

const PAY: &str = "pay";

impl LndBackend {
    /// SendPaymentV2, or TrackPaymentV2 of the payment lnd already has for the hash.
    async fn pay_once(&self, request: PayRequest) -> Result<Paid, BackendError> {
        let invalid =
            |detail: String| BackendError::new(ErrorKind::InvalidRequest, NAME, PAY, detail);
        let invoice = decode(&request.bolt11).map_err(invalid)?;
        if invoice.amount_milli_satoshis().is_none() {
            return Err(invalid(
                "amountless invoices are not supported (the amount is the price)".to_owned(),
            ));
        }
        let hash = invoice_hash(&invoice);
        let deadline = Instant::now() + request.timeout;
        let body = wire::SendPayment {
            payment_request: &request.bolt11,
            fee_limit_msat: request.max_fee.as_u64().min(i64::MAX as u64).to_string(),
            timeout_seconds: i32::try_from(whole_secs(request.timeout)).unwrap_or(i32::MAX),
            no_inflight_updates: false,
        };
        let send = self
            .request(reqwest::Method::POST, "v2/router/send")
            .json(&body)
            .timeout(request.timeout);
        let stream = match self.stream(PAY, send).await {
            Ok(stream) => stream,
            // 409 AlreadyExists: lnd already has a payment for this hash (succeeded, in flight
            // or just initiated). Follow that one instead of paying again.
            Err(e) if e.kind() == ErrorKind::AlreadyPaid => {
                tracing::debug!(%hash, "lnd already has this payment; tracking it instead");
                let left = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_secs(1));
                self.stream(PAY, self.track(&hash).timeout(left)).await?
            }
            Err(e) => return Err(e),
        };
        follow_to_end(PAY, stream, &hash).await
    }
}

/// Reads payment updates until the payment succeeded or failed.
async fn follow_to_end(
    call: &'static str,
    mut stream: LineStream,
    hash: &PaymentHash,
) -> Result<Paid, BackendError> {
    loop {
        match stream.next().await? {
            Some(StreamLine::Result(p)) => {
                check_hash(call, &p, hash)?;
                match p.status.as_str() {
                    "SUCCEEDED" => return paid(call, &p, hash),
                    "FAILED" => {
                        let (kind, reason) = failure(&p.failure_reason);
                        return Err(BackendError::new(kind, NAME, call, reason));
                    }
                    "IN_FLIGHT" | "INITIATED" => continue,
                    other => {
                        return Err(protocol_error(
                            NAME,
                            call,
                            format!("unknown payment status {other:?}"),
                        ));
                    }
                }
            }
            Some(StreamLine::Error(s)) => return Err(error::from_status(call, &s)),
            None => {
                return Err(BackendError::new(
                    ErrorKind::Unavailable,
                    NAME,
                    call,
                    "the payment stream ended before a final state; the payment may still \
                     complete: look it up by its payment hash before paying again",
                ));
            }
        }
    }
}

fn check_hash(
    call: &'static str,
    p: &wire::Payment,
    hash: &PaymentHash,
) -> Result<(), BackendError> {
    if !p.payment_hash.is_empty() && !p.payment_hash.eq_ignore_ascii_case(&hash.to_hex()) {
        return Err(protocol_error(
            NAME,
            call,
            "payment update is for another payment hash",
        ));
    }
    Ok(())
}

/// A succeeded payment: the preimage is hex and must hash to the payment hash (it is all zeros
/// until the payment succeeds, so it is only read here).
fn paid(call: &'static str, p: &wire::Payment, hash: &PaymentHash) -> Result<Paid, BackendError> {
    let preimage: Preimage = p
        .payment_preimage
        .parse()
        .map_err(|e: l402::Error| protocol_error(NAME, call, format!("payment_preimage: {e}")))?;
    if !preimage.matches(hash) {
        return Err(protocol_error(
            NAME,
            call,
            "payment_preimage does not hash to the payment hash",
        ));
    }
    let msat = |v: i64, what: &str| {
        u64::try_from(v)
            .map(Msat::new)
            .map_err(|_| protocol_error(NAME, call, format!("negative {what}")))
    };
    Ok(Paid {
        preimage,
        amount: msat(p.value_msat, "value_msat")?,
        fee: msat(p.fee_msat, "fee_msat")?,
    })
}

/// The kind and a readable reason for a `FAILURE_REASON_…`.
fn failure(reason: &str) -> (ErrorKind, String) {
    let (kind, text) = match reason {
        "FAILURE_REASON_INSUFFICIENT_BALANCE" => (
            ErrorKind::InsufficientBalance,
            "not enough outbound balance",
        ),
        "FAILURE_REASON_NO_ROUTE" => (ErrorKind::PaymentFailed, "no route within the fee limit"),
        "FAILURE_REASON_TIMEOUT" => (
            ErrorKind::PaymentFailed,
            "no route found before timeout_seconds passed",
        ),
        "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS" => (
            ErrorKind::PaymentFailed,
            "the payee refused it (unknown hash, wrong amount or expired invoice)",
        ),
        "FAILURE_REASON_ERROR" => (
            ErrorKind::PaymentFailed,
            "a non-recoverable error on the route",
        ),
        "FAILURE_REASON_CANCELED" => (ErrorKind::PaymentFailed, "cancelled"),
        _ => (ErrorKind::PaymentFailed, "failed"),
    };
    (kind, format!("{text} ({reason})"))
}

/// The state of an invoice at `now` (unix seconds).
///
/// lnd has no "expired" state: its expiry watcher moves an OPEN invoice to CANCELED when it
/// expires. An OPEN invoice already past its expiry (the watcher has not run yet) is reported as
/// what the watcher will make it, `Cancelled`, so the state never goes back and forth.
pub(crate) fn invoice_state(inv: &wire::Invoice, now: i64) -> Result<InvoiceState, String> {
    let expired = inv.expiry > 0 && now >= inv.creation_date.saturating_add(inv.expiry);
    match inv.state.as_str() {
        "OPEN" if expired => Ok(InvoiceState::Cancelled),
        "OPEN" => Ok(InvoiceState::Open),
        // A hold invoice with accepted HTLCs: not settled yet.
        "ACCEPTED" => Ok(InvoiceState::Open),
        "SETTLED" => Ok(InvoiceState::Settled),
        "CANCELED" => Ok(InvoiceState::Cancelled),
        other => Err(format!("unknown invoice state {other:?}")),
    }
}

/// The amount of a new invoice in msat: positive (0 would make an amountless invoice) and within
/// int64.
pub(crate) fn invoice_amount(amount: Msat) -> Result<i64, BackendError> {
    let refuse =
        |detail: &str| BackendError::new(ErrorKind::InvalidRequest, NAME, "create invoice", detail);
    if amount == Msat::ZERO {
        return Err(refuse(
            "the amount must be positive (lnd would make an amountless invoice for 0)",
        ));
    }
    i64::try_from(amount.as_u64()).map_err(|_| refuse("the amount does not fit lnd's int64"))
}

/// Whole seconds for lnd, rounded up and at least 1 (0 means "the default", 24 h, to lnd).
pub(crate) fn whole_secs(d: Duration) -> i64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

fn decode(bolt11: &str) -> Result<Bolt11Invoice, String> {
    Bolt11Invoice::from_str(bolt11.trim()).map_err(|e| format!("not a valid BOLT11 invoice: {e}"))
}

fn invoice_hash(inv: &Bolt11Invoice) -> PaymentHash {
    PaymentHash::from_bytes(*AsRef::<[u8; 32]>::as_ref(inv.payment_hash()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(state: &str, creation_date: i64, expiry: i64) -> wire::Invoice {
        serde_json::from_value(serde_json::json!({
            "state": state,
            "creation_date": creation_date.to_string(),
            "expiry": expiry.to_string(),
        }))
        .unwrap()
    }

    #[test]
    fn invoice_states() {
        assert_eq!(
            invoice_state(&inv("OPEN", 1000, 60), 1059),
            Ok(InvoiceState::Open)
        );
        // Past expiry, before lnd's expiry watcher ran: what the watcher will record.
        assert_eq!(
            invoice_state(&inv("OPEN", 1000, 60), 1060),
            Ok(InvoiceState::Cancelled)
        );
        assert_eq!(
            invoice_state(&inv("CANCELED", 1000, 60), 1061),
            Ok(InvoiceState::Cancelled)
        );
        assert_eq!(
            invoice_state(&inv("SETTLED", 1000, 60), 5000),
            Ok(InvoiceState::Settled)
        );
        assert_eq!(
            invoice_state(&inv("ACCEPTED", 1000, 60), 1001),
            Ok(InvoiceState::Open)
        );
        assert!(invoice_state(&inv("PAID", 1000, 60), 1001).is_err());
    }

    #[test]
    fn amounts_and_expiries() {
        assert_eq!(invoice_amount(Msat::new(1)).unwrap(), 1);
        assert_eq!(
            invoice_amount(Msat::new(21_500)).unwrap(),
            21_500,
            "msat precision kept"
        );
        assert_eq!(
            invoice_amount(Msat::ZERO).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            invoice_amount(Msat::new(u64::MAX)).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(whole_secs(Duration::ZERO), 1, "0 would mean 24 h to lnd");
        assert_eq!(whole_secs(Duration::from_millis(1500)), 2);
        assert_eq!(whole_secs(Duration::from_secs(3600)), 3600);
    }

    #[test]
    fn failure_reasons() {
        assert_eq!(
            failure("FAILURE_REASON_INSUFFICIENT_BALANCE").0,
            ErrorKind::InsufficientBalance
        );
        let (kind, text) = failure("FAILURE_REASON_NO_ROUTE");
        assert_eq!(kind, ErrorKind::PaymentFailed);
        assert!(text.contains("FAILURE_REASON_NO_ROUTE"), "{text}");
        assert_eq!(failure("SOMETHING_NEW").0, ErrorKind::PaymentFailed);
    }

    #[test]
    fn succeeded_payments_need_a_matching_preimage() {
        let pre = Preimage::from_bytes([7; 32]);
        let hash = pre.payment_hash();
        let mut p = wire::Payment {
            payment_hash: hash.to_hex(),
            payment_preimage: pre.to_hex(),
            value_msat: 21_000,
            fee_msat: 3,
            status: "SUCCEEDED".into(),
            failure_reason: "FAILURE_REASON_NONE".into(),
        };
        let ok = paid("pay", &p, &hash).unwrap();
        assert_eq!((ok.amount, ok.fee), (Msat::new(21_000), Msat::new(3)));
        // lnd's zero preimage (shown until success) never passes as proof.
        p.payment_preimage = "0".repeat(64);
        assert_eq!(
            paid("pay", &p, &hash).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        p.payment_hash = "ab".repeat(32);
        assert_eq!(
            check_hash("pay", &p, &hash).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }
}
