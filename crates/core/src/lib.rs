//! The L402 protocol, sans-I/O.
//!
//! L402 (formerly LSAT, bLIP-0026) makes HTTP 402 work: a server answers an unpaid request with a
//! [`Challenge`] — a macaroon whose [`Identifier`] commits to a payment hash, plus a BOLT11 invoice
//! for that hash. The client pays, learns the [`Preimage`], and retries with a [`Credential`]
//! (`Authorization: L402 <macaroon>:<preimage>`). The server checks the macaroon against the
//! [`RootKey`] it stored under the identifier's [`KeyId`], checks `sha256(preimage)`, checks the
//! [`Caveat`]s, and serves — no call to the Lightning node per request.
//!
//! This crate holds the parts every role shares, as pure functions over bytes and headers:
//!
//! * newtypes: [`PaymentHash`], [`Preimage`], [`TokenId`], [`RootKey`], [`KeyId`], [`Msat`];
//! * the identifier, the challenge (emit and lenient parse), the credential (every header form);
//! * caveats, the built-in satisfiers and the [`Satisfier`] trait;
//! * [`mint`] and [`Verifier`], which verifies in Aperture's order;
//! * the [`ports`] Lightning backends implement: [`InvoiceIssuer`] and [`InvoicePayer`].
//!
//! ```
//! use l402::*;
//!
//! // Server: mint a token for an invoice whose payment hash it knows.
//! let root_key = RootKey::generate();
//! let preimage = Preimage::random(); // known to the wallet that issued the invoice
//! let id = Identifier::new(preimage.payment_hash(), TokenId::random());
//! let caveats = TokenSpec::new("weather", 0).caveats().unwrap();
//! let macaroon = mint(&root_key, &id, DEFAULT_LOCATION, &caveats);
//! let challenge = Challenge::new(macaroon, "lnbcrt10n1pexample").unwrap();
//! let www_authenticate = challenge.header_values(ChallengeFormat::default());
//!
//! // Client: parse the challenge, pay, answer.
//! let parsed = Challenge::parse_all(www_authenticate.iter().map(String::as_str)).unwrap();
//! let chosen = Challenge::preferred(&parsed).unwrap();
//! let authorization = Credential::new(chosen.macaroon().clone(), preimage)
//!     .to_authorization(chosen.scheme());
//!
//! // Server: verify.
//! let credential = Credential::parse_authorization(&authorization).unwrap().unwrap();
//! let verifier = Verifier::new().service("weather");
//! let pending = verifier.preflight(&credential).unwrap();
//! assert_eq!(pending.key_id(), id.key_id()); // look the root key up under this
//! let token = pending.finish(&verifier, &root_key, &Context::now()).unwrap();
//! assert_eq!(token.token_id(), id.token_id());
//! ```

#[cfg(feature = "bolt11")]
pub mod bolt11;
mod caveat;
mod challenge;
mod credential;
mod error;
mod identifier;
mod mint;
pub mod ports;
mod types;
mod verify;

pub use caveat::{
    CAPABILITIES_SUFFIX, Caveat, CaveatError, ExactValue, MAX_LIST_ENTRIES, PREIMAGE, SERVICES,
    Satisfier, Service, VALID_UNTIL_SUFFIX,
};
pub use challenge::{Challenge, ChallengeFormat, Scheme};
pub use credential::{Credential, CredentialForm, HEX_HEADERS, MAX_MACAROONS};
pub use error::{Error, error_chain};
pub use identifier::Identifier;
pub use l402_macaroon as macaroon;
pub use mint::{DEFAULT_LOCATION, TokenSpec, mint};
pub use ports::{
    BackendError, CreatedInvoice, DynInvoiceIssuer, DynInvoicePayer, ErrorKind, InvoiceIssuer,
    InvoicePayer, InvoiceRequest, InvoiceState, Paid, PayRequest, PaymentState, RootKeyStore,
    SharedIssuer, SharedPayer, StoreError, TokenRecord,
};
pub use types::{KeyId, Msat, PaymentHash, Preimage, RootKey, TokenId};
pub use verify::{Context, Prechecked, Preflight, SignatureMemo, VerifiedToken, Verifier};

/// Longest `Authorization` or `WWW-Authenticate` value parsed, in bytes. Longer values are
/// refused before any decoding.
pub const MAX_HEADER_LEN: usize = 16 * 1024;
