//! The LNbits backend: issue invoices with a wallet's invoice key, pay them with its admin key.
//!
//! [`LnbitsBackend`] implements [`InvoiceIssuer`](l402::InvoiceIssuer) and
//! [`InvoicePayer`](l402::InvoicePayer) over LNbits' REST API (written against LNbits 1.6.2 and
//! tested against a real one). One backend is one wallet and one key:
//!
//! * an **invoice key** can issue invoices and look up invoices and payments (enough for a
//!   paywall or the proxy);
//! * an **admin key** can do all that and pay (needed by a client). Paying with an invoice key
//!   fails with [`ErrorKind::Unauthorized`](l402::ErrorKind::Unauthorized), saying an admin key is
//!   needed.
//!
//! # URI
//!
//! ```text
//! lnbits://<key>@host[:port][/prefix][?timeout=30s&connect_timeout=10s]
//! lnbits+https://<key>@host[:port][/prefix][?timeout=…&connect_timeout=…&cacert=<pem>|cert=<pem>]
//! ```
//!
//! `lnbits://` is plain HTTP on port 5000 (LNbits' default) unless a port is given;
//! `lnbits+https://` is HTTPS on port 443 unless given, with the web PKI, a CA file (`cacert=`) or
//! one pinned certificate (`cert=`). `/prefix` is the sub-path where a reverse proxy serves
//! LNbits. The key never appears in `Debug` output, logs or errors.
//!
//! ```
//! use l402_lnbits::LnbitsBackend;
//!
//! let key = "105e36086a42447eb59281ef4b4c31f1";
//! let backend = LnbitsBackend::from_uri(&format!(
//!     "lnbits+https://{key}@pay.example.com/lnbits?timeout=10s"
//! ))?;
//! let shown = format!("{backend:?}");
//! assert!(shown.contains("https://pay.example.com/lnbits/"));
//! assert!(!shown.contains(key));
//! # Ok::<(), l402::BackendError>(())
//! ```
//!
//! # Calls
//!
//! | port call | LNbits call | tested by |
//! |---|---|---|
//! | `create_invoice` | `POST /api/v1/payments` `{"out": false, "amount": <sat>, "unit": "sat", "memo", "expiry": <s>}` | real server (conformance suite, adapter tests); unit (recorded bodies) |
//! | `invoice_state` | `GET /api/v1/payments/<hash>`; after a 404, `GET /api/v1/wallet` to tell an unknown hash from an unknown key | real server; unit |
//! | `pay` | `POST /api/v1/payments` `{"out": true, "bolt11"}`; `GET /api/v1/payments/<hash>` after "already paid" (to return the first result) and while a payment is pending | real server; unit (the pending path and the expired-invoice quirk) |
//! | `payment` | `GET /api/v1/payments/<hash>`, after a 404 `GET /api/v1/wallet` | real server; unit |
//! | errors | LNbits' `{"detail": …}` bodies, 404 / 403 / 400 / 520 | unit (each recorded body), real server (wrong key, invoice key paying, foreign invoice, limits) |
//! | unreachable, timeout | — | local sockets (closed port, silent listener) |
//!
//! "Real server" is LNbits 1.6.2 with its FakeWallet funding source, installed and started by
//! `scripts/lnbits/up.sh` through `l402_test::lnbits`; the recorded bodies are in
//! `tests/fixtures/`.
//!
//! # Behaviour worth knowing
//!
//! * **Whole satoshis.** LNbits creates invoices in whole satoshis and silently truncates a
//!   fraction (`21.5` becomes a 21 sat invoice). An amount that is not a multiple of 1000 msat is
//!   refused with `InvalidRequest` instead of rounded: rounding up would charge more than the
//!   price, rounding down less. Expiries are sent in whole seconds, rounded up, at least 1 s.
//! * **Never paying twice.** LNbits refuses a second payment of a payment hash ("Internal invoice
//!   already paid.", "Payment already paid.", "Payment is still pending."); `pay` then returns the
//!   first payment's result when this wallet made it, and `AlreadyPaid` otherwise.
//! * **A 201 is not a payment.** LNbits answers a payment of an invoice it has already marked
//!   expired with HTTP 201 and the *payee's* failed record, paying nothing. `pay` accepts only an
//!   outgoing record with status `success` and a preimage whose SHA-256 is the invoice's payment
//!   hash. It also refuses invoices past their BOLT11 expiry before calling LNbits, because LNbits
//!   pays an expired invoice of its own as long as nobody looked it up since it expired.
//! * **Wrong keys.** LNbits answers `404 {"detail": "Wallet not found."}` for a key it does not
//!   know, which maps to `Unauthorized`. Its payment lookup takes the key as optional: with an
//!   unknown key it answers for every wallet (without `details`) or `404 Payment does not exist.`,
//!   the same 404 as an unknown hash. So a lookup answer without `details` is `Unauthorized`, and
//!   after that 404 one `GET /api/v1/wallet` decides between `Unauthorized` and not found. Any
//!   other 404 (a wrong path prefix) is `Protocol`, never "not found".
//! * **Fee limit.** LNbits takes no fee limit per payment; the wallet's fee reserve (by default
//!   the larger of 2 sat and 1 %) caps routing fees. A fee above `PayRequest::max_fee` is logged
//!   as a warning (the payment has happened by then).
//! * **Invoice states.** `success` is settled; `failed` with the label `expired` (LNbits sets it
//!   on the first lookup after the expiry) or past the BOLT11 expiry is expired; another `failed`
//!   is cancelled; `pending` is open unless the BOLT11 has expired.
//!
//! # Not verified against a real server
//!
//! FakeWallet settles internal payments at once, so a payment that stays `pending` (an external
//! payment through a real funding source) was never observed: `pay` then polls the lookup until
//! `PayRequest::timeout` and reports `Timeout` (unit-tested with recorded bodies, edited). LNbits'
//! error texts are matched as LNbits 1.6.2 writes them (`lnbits/core/services/payments.py`); an
//! unknown text falls back to the `status` field of its 520 errors and to the HTTP status. Shared
//! wallets (whose lookups LNbits scopes to a source wallet) were not tried.

mod backend;
mod errors;
mod uri;
mod wire;

pub use backend::LnbitsBackend;

/// The backend's name in errors and logs.
pub const NAME: &str = "lnbits";
