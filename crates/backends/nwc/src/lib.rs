//! Nostr Wallet Connect (NIP-47) for the l402 toolkit, both ends:
//!
//! * [`NwcBackend`]: a client that implements [`InvoiceIssuer`](l402::InvoiceIssuer) and
//!   [`InvoicePayer`](l402::InvoicePayer) against any NIP-47 wallet (Alby Hub, Coinos, LNbits'
//!   NWC provider, …), built from the wallet's connection string;
//! * [`NwcWalletService`]: a NIP-47 wallet service that serves any backend implementing those
//!   ports (the dev node's wallets, LND, …) over a relay, so NWC clients can use it.
//!
//! # Connection string
//!
//! ```text
//! nostr+walletconnect://<wallet pubkey, 64 hex>?relay=<wss://…>&secret=<64 hex>
//!     [&relay=<another>][&lud16=<address>][&timeout=30s][&connect_timeout=10s][&cacert=<pem>|&cert=<pem>]
//! ```
//!
//! `relay` may repeat: the client uses the first that accepts a WebSocket. `secret` is the
//! client's private key (it signs requests and keys the encryption); it never appears in
//! `Debug`, logs or errors. `timeout` bounds each call (connect, read the info event, request,
//! answer; `pay` uses [`PayRequest::timeout`](l402::PayRequest) instead), `connect_timeout` each
//! relay's handshake; `cacert=` / `cert=` trust a private relay's certificate. Unknown
//! parameters are refused, so typos do not pass silently.
//!
//! # Protocol
//!
//! * The client reads the wallet's info event (kind 13194) once: its `encryption` tag decides
//!   the scheme (NIP-44 v2 when offered, else NIP-04; no tag, or no info event at all, means
//!   NIP-04 as NIP-47 says), and its capability list lets a missing method fail at once with
//!   `Unsupported`. An `UNSUPPORTED_ENCRYPTION` answer makes it read the event again.
//! * Requests (kind 23194) carry `["p", wallet]`, `["expiration", now + timeout]` and, for
//!   NIP-44, `["encryption", "nip44_v2"]`. The client subscribes to the answer (kind 23195,
//!   author = wallet, `#e` = request id) before publishing, and accepts only a validly signed
//!   event from the wallet.
//! * Amounts are msat on the wire and in the ports: no conversion. An invoice whose amount
//!   differs from the one asked for (a wallet rounding to whole satoshis) is refused with
//!   `InvalidRequest` rather than changing the price.
//!
//! | port call | NIP-47 method | notes |
//! |---|---|---|
//! | `create_invoice` | `make_invoice` `{amount, description, expiry}` | zero amounts refused locally |
//! | `invoice_state` | `lookup_invoice {payment_hash}` | `state` if present; else `settled_at` → settled, past `expires_at` → expired. A bare `preimage` does not count: some wallets show preimages of unpaid invoices |
//! | `pay` | `lookup_invoice`, then `pay_invoice {invoice}` | never pays twice (an earlier payment is returned, one in flight is `AlreadyPaid`); expired invoices refused locally; **no preimage → permanent `Unsupported` error saying so** |
//! | `payment` | `lookup_invoice {payment_hash}` | `NOT_FOUND` → `PaymentState::NotFound`; not offered / `NOT_IMPLEMENTED` → `Unsupported` |
//!
//! NIP-47 error codes map to [`ErrorKind`](l402::ErrorKind)s as follows:
//!
//! | code | kind | why |
//! |---|---|---|
//! | `RATE_LIMITED` | `Unavailable` | NIP-47: retry in a few seconds |
//! | `INTERNAL` | `Unavailable` | wallets use it for node and database hiccups; retrying is cheap, and `pay` re-checks before paying again |
//! | `INSUFFICIENT_BALANCE`, `QUOTA_EXCEEDED` | `InsufficientBalance` | a spent budget is missing money to this connection |
//! | `RESTRICTED`, `UNAUTHORIZED` | `Unauthorized` | the key is not allowed |
//! | `PAYMENT_FAILED` | `PaymentFailed` | |
//! | `NOT_FOUND` | `NotFound` | (`PaymentState::NotFound` in `payment`) |
//! | `NOT_IMPLEMENTED`, `UNSUPPORTED_ENCRYPTION` | `Unsupported` | |
//! | `OTHER` | `PaymentFailed` for `pay_invoice`, else `InvalidRequest` | wallets use it when nothing else fits |
//! | anything else | `Protocol` | |
//!
//! No answer within the timeout is `Timeout`; no relay accepting a connection is `Unreachable`;
//! a relay refusing an event or closing a subscription maps by its NIP-01 prefix
//! (`auth-required:`/`restricted:` → `Unauthorized`, `rate-limited:` → `Unavailable`).
//!
//! **Fees:** NIP-47 has no fee-limit parameter. The wallet applies its own budget;
//! [`PayRequest::max_fee`](l402::PayRequest) is only compared afterwards and a warning logged.
//!
//! **Unconfirmed:** whether common wallets answer `lookup_invoice` for *outgoing* payments by
//! payment hash (the spec is silent). One that does not makes `payment` `Unsupported` and `pay`
//! skips its duplicate check, relying on the wallet to refuse a second payment.
//!
//! # Wallet service
//!
//! [`NwcWalletService::new`] takes the relay URL, the backend and optional fixed
//! [`ServiceKeys`]; [`connection_uri`](NwcWalletService::connection_uri) is the string for the
//! client; [`spawn`](NwcWalletService::spawn) runs it as a task with a [`ServiceHandle`] (wait
//! for `ready`, then `shutdown`), or [`run`](NwcWalletService::run) serves until a future
//! resolves. It answers `make_invoice`, `lookup_invoice` (invoices it issued, then payments it
//! made), `pay_invoice` and `get_info`, for **one** client key: any other key gets
//! `UNAUTHORIZED` at once, so a wrong secret fails fast instead of timing out.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # // A real relay in-process for the example (`nostr-relay-builder`, a dev-dependency).
//! # use nostr_relay_builder::prelude::{LocalRelay, RelayBuilder};
//! # let relay = LocalRelay::new(RelayBuilder::default());
//! # relay.run().await.unwrap();
//! # let relay_url = relay.url().await.to_string();
//! use std::time::Duration;
//! use l402::{InvoiceIssuer, InvoicePayer, InvoiceRequest, Msat, PayRequest};
//! use l402_devnode::{DevNode, DevNodeConfig};
//! use l402_nwc::{NwcBackend, NwcWalletService};
//!
//! // Two dev node wallets, each served as an NWC wallet on the relay.
//! let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
//! let shop = NwcWalletService::new(&relay_url, node.wallet("shop"), None).unwrap().spawn();
//! let alice = NwcWalletService::new(&relay_url, node.wallet("alice"), None).unwrap().spawn();
//! shop.ready(Duration::from_secs(10)).await.unwrap();
//! alice.ready(Duration::from_secs(10)).await.unwrap();
//!
//! // NWC clients built from their connection strings.
//! let issuer = NwcBackend::from_uri(shop.connection_uri()).unwrap();
//! let payer = NwcBackend::from_uri(alice.connection_uri()).unwrap();
//! let invoice = issuer
//!     .create_invoice(InvoiceRequest::new(Msat::from_sat(21), "coffee"))
//!     .await
//!     .unwrap();
//! let paid = payer.pay(PayRequest::new(invoice.bolt11, Msat::from_sat(1))).await.unwrap();
//! assert!(paid.preimage.matches(&invoice.payment_hash));
//! shop.shutdown().await;
//! alice.shutdown().await;
//! # });
//! ```
//!
//! # Tests
//!
//! There is no third-party wallet or relay binary here, so both ends run in the tests, over a
//! **real Nostr relay** (`nostr-relay-builder`, in-process on 127.0.0.1:0) and the dev node.
//!
//! | what | covered by |
//! |---|---|
//! | `make_invoice`, `lookup_invoice` (incoming and outgoing), `pay_invoice` over a relay | real relay: the whole conformance suite, `NwcBackend` → relay → `NwcWalletService` → dev node (issuer and payer are two connections to two dev node wallets), once with NIP-44 v2 and once with a NIP-04-only service |
//! | NIP-44 v2 and NIP-04 on the wire, tags (`p`, `e`, `expiration`, `encryption`) | real relay (a third connection watches the events) + unit |
//! | negotiation from the info event (no tag, NIP-44 only, unknown scheme, missing method) | real relay (info events published by the test) + unit |
//! | the service seen by an independent NIP-47 implementation (`nostr`'s `nip47` module): URI, `get_info`, `make_invoice`, `lookup_invoice`, `UNSUPPORTED_ENCRYPTION`, expired and repeated requests | real relay |
//! | wrong secret → `UNAUTHORIZED`, fast | real relay (conformance `wrong_credentials`) |
//! | no preimage → clear permanent error, no second payment | real relay (a service that withholds preimages) |
//! | backend errors → NIP-47 codes → client kinds; `PAYMENT_FAILED` (no route) | real relay (a scripted backend) + unit (every code) |
//! | msat amounts; a wallet rounding to whole satoshis is refused | real relay (a rounding backend) |
//! | relay unreachable / handshake never completes / relay up but no wallet | real sockets (conformance `unreachable`, `timeout`; a relay with no wallet) |
//! | several relays (first dead), reconnection of both ends after a relay restart | real relay |
//! | `wss://` with a pinned certificate (and refused without it) | real relay behind a local TLS terminator |
//! | URI parsing, secret redaction, state fallbacks of older wallets, relay refusal prefixes | unit (+ `Debug`/error checks in the relay tests) |
//!
//! `get_info` is served but not used by the client (the info event carries what it needs).

mod client;
mod relay;
mod service;
mod states;
mod uri;
mod wire;

pub use client::NwcBackend;
pub use service::{NwcWalletService, ServiceHandle, ServiceKeys, ServiceOptions};
pub use wire::Encryption;

/// The backend name in errors and logs.
pub const NAME: &str = "nwc";
