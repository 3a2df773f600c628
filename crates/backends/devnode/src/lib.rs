//! The embedded Lightning dev node: the default backend, so everything works with no node at all.
//!
//! It is a small, honest stand-in for a Lightning node:
//!
//! * invoices are **real BOLT11** (regtest, `lnbcrt…`), signed with the node's own key, so any
//!   BOLT11 decoder reads them and the payee key verifies (they are written by a small encoder of
//!   its own, tested to match lightning-invoice's output character for character, at a fraction
//!   of its builder's cost);
//! * preimages are random, kept in **SQLite** (a file, or memory for tests) with each invoice's
//!   wallet, amount and expiry (not its string: paying decodes the one the payer presents) and
//!   every payment, so a restart loses nothing; issuing only appends a row (payment hashes are
//!   indexed in bulk by the first lookup that needs them);
//! * a payment from one of its **wallets** to an invoice of another settles at once and reveals the
//!   preimage; invoices **expire**; a wallet cannot spend more than its balance; a routing fee can
//!   be simulated to exercise fee limits.
//!
//! Use it in-process ([`DevNode::wallet`] implements both [`InvoiceIssuer`](l402::InvoiceIssuer)
//! and [`InvoicePayer`](l402::InvoicePayer)), or serve it over HTTP ([`DevNode::router`], run by
//! `l402 devnode --listen ADDR`) and reach it from another process with [`DevNodeClient`]
//! (backend URI `devnode://[api-key@]host:port[/wallet]`).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use l402::{InvoiceIssuer, InvoicePayer, InvoiceRequest, Msat, PayRequest};
//! use l402_devnode::{DevNode, DevNodeConfig};
//!
//! let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
//! let shop = node.wallet("shop");
//! let alice = node.wallet("alice");
//! let invoice = shop.create_invoice(InvoiceRequest::new(Msat::from_sat(21), "coffee")).await.unwrap();
//! let paid = alice.pay(PayRequest::new(invoice.bolt11, Msat::ZERO)).await.unwrap();
//! assert!(paid.preimage.matches(&invoice.payment_hash));
//! # });
//! ```

mod bolt11;
mod client;
mod node;
mod server;
mod wire;

pub use client::DevNodeClient;
pub use node::{DevNode, DevNodeConfig, DevWallet, NAME};
