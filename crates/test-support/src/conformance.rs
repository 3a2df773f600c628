//! The conformance suite every Lightning backend adapter runs.
//!
//! Each check is a plain `async fn` an adapter's test calls from its own `#[tokio::test]`, so a
//! failure names the check and the adapter. The checks assert behaviour through the ports only
//! ([`InvoiceIssuer`], [`InvoicePayer`]); what a backend legitimately does differently is declared
//! in [`Quirks`].
//!
//! | check | what it proves |
//! |---|---|
//! | [`create_pay_settle`] | an invoice can be paid; the preimage hashes to the payment hash; the invoice is then settled and the payer reports the payment |
//! | [`pay_twice`] | a second payment of the same invoice never pays again: same result or `AlreadyPaid` |
//! | [`expired_invoice`] | an invoice past its expiry is reported expired and is not paid |
//! | [`amount_limits`] | a zero amount is refused; an amount above the balance is refused before anything is paid |
//! | [`unknown_hash`] | an unknown invoice is `NotFound`; an unknown payment is `PaymentState::NotFound` |
//! | [`wrong_credentials`] | refused credentials are `Unauthorized`, a permanent error |
//! | [`unreachable`] | a closed port is `Unreachable`, a transient error |
//! | [`timeout`] | a backend that accepts but never answers is `Timeout`, a transient error |

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use l402::{
    BackendError, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat,
    PayRequest, PaymentHash, PaymentState,
};

/// Differences between backends the suite tolerates, each with a reason.
#[derive(Clone, Debug)]
pub struct Quirks {
    /// The shortest invoice expiry the backend accepts (the expiry check waits past it).
    pub min_expiry: Duration,
    /// The issuer reports an expired invoice as `Cancelled` (LND has no expired state).
    pub expired_is_cancelled: bool,
    /// The backend refuses to look up outgoing payments (the payment lookup is then skipped).
    pub no_payment_lookup: bool,
    /// An amount larger than any balance the test wallet could hold.
    pub unaffordable: Msat,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            min_expiry: Duration::from_secs(1),
            expired_is_cancelled: false,
            no_payment_lookup: false,
            unaffordable: Msat::from_sat(2_000_000_000_000),
        }
    }
}

fn expect_kind<T: std::fmt::Debug>(
    result: Result<T, BackendError>,
    kinds: &[ErrorKind],
    what: &str,
) -> BackendError {
    match result {
        Ok(v) => panic!("{what}: expected an error of kind {kinds:?}, got Ok({v:?})"),
        Err(e) => {
            assert!(
                kinds.contains(&e.kind()),
                "{what}: expected {kinds:?}, got {:?}: {e}",
                e.kind()
            );
            e
        }
    }
}

/// Creates, pays and checks an invoice; returns its payment hash.
pub async fn create_pay_settle(
    issuer: &impl InvoiceIssuer,
    payer: &impl InvoicePayer,
    quirks: &Quirks,
) -> PaymentHash {
    let amount = Msat::from_sat(21);
    let inv = issuer
        .create_invoice(InvoiceRequest::new(amount, "l402 conformance"))
        .await
        .expect("create invoice");
    assert!(
        inv.bolt11.to_ascii_lowercase().starts_with("ln"),
        "{}",
        inv.bolt11
    );
    assert_eq!(
        issuer
            .invoice_state(&inv.payment_hash)
            .await
            .expect("state before paying"),
        InvoiceState::Open
    );
    if !quirks.no_payment_lookup {
        let before = payer
            .payment(&inv.payment_hash)
            .await
            .expect("payment lookup before paying");
        assert_eq!(before, PaymentState::NotFound, "nothing paid yet");
    }
    let paid = payer
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .expect("pay");
    assert!(
        paid.preimage.matches(&inv.payment_hash),
        "sha256(preimage) must equal the payment hash"
    );
    assert_eq!(paid.amount, amount, "amount paid");
    assert_eq!(
        issuer
            .invoice_state(&inv.payment_hash)
            .await
            .expect("state after paying"),
        InvoiceState::Settled
    );
    if !quirks.no_payment_lookup {
        match payer
            .payment(&inv.payment_hash)
            .await
            .expect("payment lookup")
        {
            PaymentState::Succeeded(p) => assert_eq!(p.preimage, paid.preimage),
            other => panic!("payment lookup after paying: {other:?}"),
        }
    }
    inv.payment_hash
}

/// Pays the same invoice twice: the second attempt must not pay again.
pub async fn pay_twice(issuer: &impl InvoiceIssuer, payer: &impl InvoicePayer) {
    let inv = issuer
        .create_invoice(InvoiceRequest::new(Msat::from_sat(3), "pay twice"))
        .await
        .expect("create invoice");
    let first = payer
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
        .expect("first payment");
    match payer
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
        .await
    {
        Ok(second) => assert_eq!(
            second.preimage, first.preimage,
            "a repeat returns the first result"
        ),
        Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyPaid, "second payment: {e}"),
    }
    assert_eq!(
        issuer
            .invoice_state(&inv.payment_hash)
            .await
            .expect("state"),
        InvoiceState::Settled
    );
}

/// An invoice past its expiry is reported expired (or cancelled) and cannot be paid.
pub async fn expired_invoice(
    issuer: &impl InvoiceIssuer,
    payer: &impl InvoicePayer,
    quirks: &Quirks,
) {
    let inv = issuer
        .create_invoice(InvoiceRequest::new(Msat::from_sat(2), "expires").expiry(quirks.min_expiry))
        .await
        .expect("create invoice");
    tokio::time::sleep(quirks.min_expiry + Duration::from_millis(1500)).await;
    let want = if quirks.expired_is_cancelled {
        InvoiceState::Cancelled
    } else {
        InvoiceState::Expired
    };
    assert_eq!(
        issuer
            .invoice_state(&inv.payment_hash)
            .await
            .expect("state"),
        want
    );
    let e = expect_kind(
        payer
            .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
            .await,
        &[ErrorKind::InvoiceExpired, ErrorKind::PaymentFailed],
        "paying an expired invoice",
    );
    assert!(!e.is_transient(), "{e}");
    assert_eq!(
        issuer
            .invoice_state(&inv.payment_hash)
            .await
            .expect("state"),
        want
    );
}

/// A zero amount is refused; an unaffordable invoice is refused without paying anything.
pub async fn amount_limits(
    issuer: &impl InvoiceIssuer,
    payer: &impl InvoicePayer,
    quirks: &Quirks,
) {
    expect_kind(
        issuer
            .create_invoice(InvoiceRequest::new(Msat::ZERO, "amountless"))
            .await,
        &[ErrorKind::InvalidRequest],
        "creating a zero-amount invoice",
    );
    match issuer
        .create_invoice(InvoiceRequest::new(quirks.unaffordable, "too much"))
        .await
    {
        // Some issuers cap invoice sizes; that is a refusal too.
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}"),
        Ok(inv) => {
            expect_kind(
                payer
                    .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(10)))
                    .await,
                &[ErrorKind::InsufficientBalance, ErrorKind::PaymentFailed],
                "paying more than the balance",
            );
            assert_eq!(
                issuer
                    .invoice_state(&inv.payment_hash)
                    .await
                    .expect("state"),
                InvoiceState::Open
            );
        }
    }
}

/// Lookups of a hash the backend never saw.
pub async fn unknown_hash(issuer: &impl InvoiceIssuer, payer: &impl InvoicePayer, quirks: &Quirks) {
    let hash = PaymentHash::from_bytes(crate::random32());
    expect_kind(
        issuer.invoice_state(&hash).await,
        &[ErrorKind::NotFound],
        "unknown invoice",
    );
    if !quirks.no_payment_lookup {
        assert_eq!(
            payer.payment(&hash).await.expect("unknown payment lookup"),
            PaymentState::NotFound
        );
    }
}

/// Refused credentials are a permanent `Unauthorized` error on both sides.
pub async fn wrong_credentials(issuer: &impl InvoiceIssuer, payer: &impl InvoicePayer) {
    let e = expect_kind(
        issuer
            .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "bad key"))
            .await,
        &[ErrorKind::Unauthorized],
        "issuing with wrong credentials",
    );
    assert!(!e.is_transient());
    let e = expect_kind(
        payer.payment(&PaymentHash::from_bytes([1; 32])).await,
        &[ErrorKind::Unauthorized],
        "looking up with wrong credentials",
    );
    assert!(!e.is_transient());
}

/// A backend on a closed port is `Unreachable`, transient. `make` builds the adapter for an
/// address.
pub async fn unreachable<I: InvoiceIssuer>(make: impl FnOnce(SocketAddr) -> I) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let issuer = make(addr);
    let e = expect_kind(
        issuer
            .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "nobody home"))
            .await,
        &[ErrorKind::Unreachable],
        "backend on a closed port",
    );
    assert!(e.is_transient(), "{e}");
    assert!(
        e.to_string().contains(issuer.name()),
        "the error names the backend: {e}"
    );
}

/// A backend that accepts connections but never answers is `Timeout`, transient, within the
/// adapter's configured timeout. `make` builds the adapter for an address with a short timeout
/// (at most 2 s).
pub async fn timeout<I, F>(make: F)
where
    I: InvoiceIssuer,
    F: FnOnce(SocketAddr) -> I,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accept and hold connections without ever answering.
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let issuer = make(addr);
    let started = std::time::Instant::now();
    let e = expect_kind(
        with_deadline(issuer.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "silence")))
            .await,
        &[ErrorKind::Timeout],
        "backend that never answers",
    );
    assert!(e.is_transient(), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the adapter's timeout must apply"
    );
    hold.abort();
}

async fn with_deadline<T>(
    f: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, BackendError> {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the adapter must give up on its own well before 30 s")
}

/// Expands to the five state checks of the suite as `#[tokio::test]` functions, in the calling
/// module: `create_pay_settle`, `pay_twice`, `expired_invoice`, `amount_limits` and
/// `unknown_hash`. `$make` is evaluated afresh in each test and yields a tuple whose first two
/// fields are the issuer and the payer (further fields are kept alive for the test's duration);
/// `$quirks` is the [`Quirks`] to apply.
#[macro_export]
macro_rules! state_tests {
    ($make:expr, $quirks:expr) => {
        #[tokio::test]
        async fn create_pay_settle() {
            let w = $make;
            $crate::conformance::create_pay_settle(&w.0, &w.1, &$quirks).await;
        }

        #[tokio::test]
        async fn pay_twice() {
            let w = $make;
            $crate::conformance::pay_twice(&w.0, &w.1).await;
        }

        #[tokio::test]
        async fn expired_invoice() {
            let w = $make;
            $crate::conformance::expired_invoice(&w.0, &w.1, &$quirks).await;
        }

        #[tokio::test]
        async fn amount_limits() {
            let w = $make;
            $crate::conformance::amount_limits(&w.0, &w.1, &$quirks).await;
        }

        #[tokio::test]
        async fn unknown_hash() {
            let w = $make;
            $crate::conformance::unknown_hash(&w.0, &w.1, &$quirks).await;
        }
    };
}
