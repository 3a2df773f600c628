//! The ports every Lightning backend implements: [`InvoiceIssuer`] (for servers) and
//! [`InvoicePayer`] (for clients).
//!
//! They are separate so an invoice-only key can back a paywall and a pay-only key a client. Both
//! return `impl Future + Send` (no boxing on the hot path); [`DynInvoiceIssuer`] and
//! [`DynInvoicePayer`] erase them behind `Arc<dyn …>` where a program picks the backend at run time,
//! and [`SharedIssuer`] / [`SharedPayer`] wrap those into one concrete type that implements the
//! ports again, so generic code takes either.
//!
//! Every failure is a [`BackendError`] whose [`ErrorKind`] says whether retrying can help
//! ([`BackendError::is_transient`]): a server answers 503 with `Retry-After` for those, never a
//! fresh challenge the client might pay twice.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::{Msat, PaymentHash, Preimage};

/// A boxed, sendable future (what the `Dyn…` traits return).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// === values ===

/// What to invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceRequest {
    /// The amount; must be positive (amountless invoices are refused).
    pub amount: Msat,
    /// The description shown to the payer.
    pub memo: String,
    /// How long the invoice can be paid.
    pub expiry: Duration,
}

impl InvoiceRequest {
    /// An invoice for `amount` with `memo`, payable for an hour.
    pub fn new(amount: Msat, memo: impl Into<String>) -> Self {
        InvoiceRequest {
            amount,
            memo: memo.into(),
            expiry: Duration::from_secs(3600),
        }
    }

    /// Sets how long the invoice can be paid.
    #[must_use]
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }
}

/// A created invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedInvoice {
    /// The BOLT11 string.
    pub bolt11: String,
    /// Its payment hash.
    pub payment_hash: PaymentHash,
}

/// The state of an invoice on the issuing side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InvoiceState {
    /// Not paid yet and still payable.
    Open,
    /// Paid.
    Settled,
    /// Cancelled by the issuer.
    Cancelled,
    /// Past its expiry, unpaid.
    Expired,
}

impl InvoiceState {
    /// `open`, `settled`, `cancelled` or `expired`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InvoiceState::Open => "open",
            InvoiceState::Settled => "settled",
            InvoiceState::Cancelled => "cancelled",
            InvoiceState::Expired => "expired",
        }
    }
}

impl fmt::Display for InvoiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to pay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayRequest {
    /// The BOLT11 string.
    pub bolt11: String,
    /// The most the payer will spend on routing fees.
    pub max_fee: Msat,
    /// How long to wait for the payment to settle before reporting a timeout (the payment may
    /// still complete later; look it up with [`InvoicePayer::payment`]).
    pub timeout: Duration,
}

impl PayRequest {
    /// Pays `bolt11` with at most `max_fee` in fees, waiting up to a minute.
    pub fn new(bolt11: impl Into<String>, max_fee: Msat) -> Self {
        PayRequest {
            bolt11: bolt11.into(),
            max_fee,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A completed payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paid {
    /// The preimage, which proves payment.
    pub preimage: Preimage,
    /// The amount paid to the payee (excluding fees).
    pub amount: Msat,
    /// The routing fee paid.
    pub fee: Msat,
}

/// What a payer knows about an earlier payment, by payment hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentState {
    /// The payment completed.
    Succeeded(Paid),
    /// The payment is still being attempted; do not pay again.
    InFlight,
    /// The payment failed for good; paying again is safe.
    Failed {
        /// The backend's reason.
        reason: String,
    },
    /// The backend has no record of a payment with this hash; paying is safe.
    NotFound,
}

// === errors ===

/// Why a backend call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The backend could not be reached (connection refused, DNS, TLS handshake). Transient.
    Unreachable,
    /// The backend did not answer in time. Transient.
    Timeout,
    /// The backend answered that it cannot serve now (5xx, not synced, rate limited). Transient.
    Unavailable,
    /// The credentials were refused (key, macaroon, rune, password). Permanent.
    Unauthorized,
    /// No invoice or payment with that hash. Permanent.
    NotFound,
    /// The invoice was already paid. Permanent.
    AlreadyPaid,
    /// The invoice has expired. Permanent.
    InvoiceExpired,
    /// The wallet does not hold enough funds. Permanent.
    InsufficientBalance,
    /// The payment failed (no route, fee limit, refused by the payee). Permanent.
    PaymentFailed,
    /// The request itself is invalid (bad invoice string, zero amount, …). Permanent.
    InvalidRequest,
    /// The backend cannot do this at all (e.g. no outgoing-payment lookup). Permanent.
    Unsupported,
    /// The backend answered something this adapter does not understand. Permanent.
    Protocol,
}

impl ErrorKind {
    /// Whether retrying later can help.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::Unavailable
        )
    }

    const fn describe(self) -> &'static str {
        match self {
            ErrorKind::Unreachable => "backend unreachable",
            ErrorKind::Timeout => "backend timed out",
            ErrorKind::Unavailable => "backend unavailable",
            ErrorKind::Unauthorized => "credentials refused",
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyPaid => "invoice already paid",
            ErrorKind::InvoiceExpired => "invoice expired",
            ErrorKind::InsufficientBalance => "insufficient balance",
            ErrorKind::PaymentFailed => "payment failed",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Unsupported => "not supported by this backend",
            ErrorKind::Protocol => "unexpected answer",
        }
    }
}

/// A failed backend call: which backend, which call, what kind of failure, and the detail.
///
/// Its `Display` names all of them and says whether retrying could help. Secrets never appear.
#[derive(Debug)]
pub struct BackendError {
    kind: ErrorKind,
    backend: &'static str,
    call: &'static str,
    detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// A new error.
    pub fn new(
        kind: ErrorKind,
        backend: &'static str,
        call: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        BackendError {
            kind,
            backend,
            call,
            detail: detail.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying later can help (a server should answer 503 + `Retry-After`).
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// The backend's name (e.g. `lnbits`).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The call that failed (e.g. `create invoice`).
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// The detail message.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.backend,
            self.call,
            self.kind.describe()
        )?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        let hint = if self.is_transient() {
            "retrying later may help"
        } else {
            "retrying will not help"
        };
        write!(f, " ({hint})")
    }
}

impl std::error::Error for BackendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

// === ports ===

/// Issues invoices and reports their state (the server side).
pub trait InvoiceIssuer: Send + Sync {
    /// A short name for errors and logs (e.g. `lnbits`).
    fn name(&self) -> &'static str;

    /// Creates an invoice.
    fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> impl Future<Output = Result<CreatedInvoice, BackendError>> + Send;

    /// Looks up the state of an invoice this backend issued.
    fn invoice_state<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> impl Future<Output = Result<InvoiceState, BackendError>> + Send + 'a;
}

/// Pays invoices and reports on earlier payments (the client side).
pub trait InvoicePayer: Send + Sync {
    /// A short name for errors and logs.
    fn name(&self) -> &'static str;

    /// Pays an invoice and returns the preimage. A payer never pays the same payment hash twice:
    /// a second call either returns the first payment's result or fails with
    /// [`ErrorKind::AlreadyPaid`].
    fn pay(&self, request: PayRequest) -> impl Future<Output = Result<Paid, BackendError>> + Send;

    /// Looks up an earlier payment by its payment hash (to resume after a crash without paying
    /// twice).
    fn payment<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> impl Future<Output = Result<PaymentState, BackendError>> + Send + 'a;
}

// === dynamic dispatch ===

/// [`InvoiceIssuer`] with boxed futures, for `Arc<dyn DynInvoiceIssuer>`. Implemented for every
/// `InvoiceIssuer`.
pub trait DynInvoiceIssuer: Send + Sync {
    /// See [`InvoiceIssuer::name`].
    fn dyn_name(&self) -> &'static str;
    /// See [`InvoiceIssuer::create_invoice`].
    fn dyn_create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> BoxFuture<'_, Result<CreatedInvoice, BackendError>>;
    /// See [`InvoiceIssuer::invoice_state`].
    fn dyn_invoice_state<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> BoxFuture<'a, Result<InvoiceState, BackendError>>;
}

impl<T: InvoiceIssuer> DynInvoiceIssuer for T {
    fn dyn_name(&self) -> &'static str {
        self.name()
    }
    fn dyn_create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> BoxFuture<'_, Result<CreatedInvoice, BackendError>> {
        Box::pin(self.create_invoice(request))
    }
    fn dyn_invoice_state<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> BoxFuture<'a, Result<InvoiceState, BackendError>> {
        Box::pin(self.invoice_state(payment_hash))
    }
}

/// Any [`InvoiceIssuer`] behind one concrete type, for programs that choose the backend at run
/// time. Cheap to clone.
#[derive(Clone)]
pub struct SharedIssuer(Arc<dyn DynInvoiceIssuer>);

impl SharedIssuer {
    /// Wraps an issuer.
    pub fn new(issuer: impl InvoiceIssuer + 'static) -> Self {
        SharedIssuer(Arc::new(issuer))
    }

    /// Wraps an issuer already behind an `Arc`.
    pub fn from_arc(issuer: Arc<dyn DynInvoiceIssuer>) -> Self {
        SharedIssuer(issuer)
    }
}

impl fmt::Debug for SharedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedIssuer({})", self.0.dyn_name())
    }
}

impl InvoiceIssuer for SharedIssuer {
    fn name(&self) -> &'static str {
        self.0.dyn_name()
    }
    fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> impl Future<Output = Result<CreatedInvoice, BackendError>> + Send {
        self.0.dyn_create_invoice(request)
    }
    fn invoice_state<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> impl Future<Output = Result<InvoiceState, BackendError>> + Send + 'a {
        self.0.dyn_invoice_state(payment_hash)
    }
}

/// [`InvoicePayer`] with boxed futures, for `Arc<dyn DynInvoicePayer>`. Implemented for every
/// `InvoicePayer`.
pub trait DynInvoicePayer: Send + Sync {
    /// See [`InvoicePayer::name`].
    fn dyn_name(&self) -> &'static str;
    /// See [`InvoicePayer::pay`].
    fn dyn_pay(&self, request: PayRequest) -> BoxFuture<'_, Result<Paid, BackendError>>;
    /// See [`InvoicePayer::payment`].
    fn dyn_payment<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> BoxFuture<'a, Result<PaymentState, BackendError>>;
}

impl<T: InvoicePayer> DynInvoicePayer for T {
    fn dyn_name(&self) -> &'static str {
        self.name()
    }
    fn dyn_pay(&self, request: PayRequest) -> BoxFuture<'_, Result<Paid, BackendError>> {
        Box::pin(self.pay(request))
    }
    fn dyn_payment<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> BoxFuture<'a, Result<PaymentState, BackendError>> {
        Box::pin(self.payment(payment_hash))
    }
}

/// Any [`InvoicePayer`] behind one concrete type, for programs that choose the backend at run
/// time. Cheap to clone.
#[derive(Clone)]
pub struct SharedPayer(Arc<dyn DynInvoicePayer>);

impl SharedPayer {
    /// Wraps a payer.
    pub fn new(payer: impl InvoicePayer + 'static) -> Self {
        SharedPayer(Arc::new(payer))
    }

    /// Wraps a payer already behind an `Arc`.
    pub fn from_arc(payer: Arc<dyn DynInvoicePayer>) -> Self {
        SharedPayer(payer)
    }
}

impl fmt::Debug for SharedPayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedPayer({})", self.0.dyn_name())
    }
}

impl InvoicePayer for SharedPayer {
    fn name(&self) -> &'static str {
        self.0.dyn_name()
    }
    fn pay(&self, request: PayRequest) -> impl Future<Output = Result<Paid, BackendError>> + Send {
        self.0.dyn_pay(request)
    }
    fn payment<'a>(
        &'a self,
        payment_hash: &'a PaymentHash,
    ) -> impl Future<Output = Result<PaymentState, BackendError>> + Send + 'a {
        self.0.dyn_payment(payment_hash)
    }
}

// === root-key storage ===

/// Everything a server records about a challenge it issued: the root key (secret), the token it
/// belongs to, and the invoice it is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Where the root key is looked up: `sha256(identifier)`.
    pub key_id: crate::KeyId,
    /// The root key.
    pub root_key: crate::RootKey,
    /// The token id.
    pub token_id: crate::TokenId,
    /// The payment hash of the invoice.
    pub payment_hash: PaymentHash,
    /// The service the token was minted for.
    pub service: String,
    /// The price.
    pub price: Msat,
    /// The BOLT11 invoice.
    pub invoice: String,
    /// When the challenge was minted, unix seconds.
    pub created_at: i64,
    /// When the invoice stops being payable, unix seconds.
    pub invoice_expires_at: i64,
}

impl TokenRecord {
    /// The identifier of the token (payment hash and token id).
    pub fn identifier(&self) -> crate::Identifier {
        crate::Identifier::new(self.payment_hash, self.token_id)
    }
}

/// Why a store operation failed.
#[derive(Debug)]
pub struct StoreError {
    transient: bool,
    detail: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A failure that may pass (connection lost, database busy): answer 503 and retry.
    pub fn transient(detail: impl Into<String>) -> Self {
        StoreError {
            transient: true,
            detail: detail.into(),
            source: None,
        }
    }

    /// A failure that will not pass by itself (corrupt data, schema mismatch).
    pub fn permanent(detail: impl Into<String>) -> Self {
        StoreError {
            transient: false,
            detail: detail.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whether retrying later can help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token store: {}", self.detail)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e.as_ref() as &(dyn std::error::Error + 'static))
    }
}

/// Durable storage of root keys (the server side).
///
/// `insert` must not return before the record is durable: a challenge may only leave once its
/// root key survives a crash, or a client could pay for a token that never verifies.
pub trait RootKeyStore: Send + Sync {
    /// Stores a newly minted token's record, durably.
    fn insert(&self, record: TokenRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The root key of the token `identifier` names; `None` if unknown or revoked. Stores find
    /// it by the identifier's token id (time-ordered, so that index grows at its end instead of
    /// taking a random page per token, as the key id would) and check its payment hash.
    fn root_key<'a>(
        &'a self,
        identifier: &'a crate::Identifier,
    ) -> impl Future<Output = Result<Option<crate::RootKey>, StoreError>> + Send + 'a;

    /// Records that a token was verified with a valid preimage (so it was paid). Returns the
    /// token's price if this call was the first to record it (exactly once across all instances
    /// sharing the store, so it can be counted as revenue), `None` if it was already recorded or
    /// is unknown. Best effort: called once per token and process, off the response path.
    fn mark_paid<'a>(
        &'a self,
        identifier: &'a crate::Identifier,
    ) -> impl Future<Output = Result<Option<Msat>, StoreError>> + Send + 'a;

    /// Revokes a token: its root key is deleted, so it never verifies again. Returns the key id
    /// it was stored under, or `None` if there is no such token.
    fn revoke<'a>(
        &'a self,
        token_id: &'a crate::TokenId,
    ) -> impl Future<Output = Result<Option<crate::KeyId>, StoreError>> + Send + 'a;
}
