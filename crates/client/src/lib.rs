//! An L402 client: meets a 402, pays the invoice through any
//! [`InvoicePayer`](l402::InvoicePayer), and retries with the credential — within budgets,
//! reusing tokens, and never paying twice.
//!
//! * **Every server variant**: challenges are parsed leniently (`token=` or `macaroon=`, any
//!   order, `LSAT` or `L402`, several per header); the credential goes back in the scheme it was
//!   challenged with. gRPC calls go through [`L402GrpcLayer`], which sends Aperture's form (hex
//!   macaroon with a `preimage=` caveat in the `macaroon` metadata).
//! * **Refuses before paying** ([`ClientError::ChallengeRefused`]): amountless invoices, invoices
//!   for another network, expired invoices, invoices whose payment hash is not the macaroon's, and
//!   invoices that differ from a price the server advertised.
//! * **Budgets** ([`Budget`]): per request, routing fee, per host per day, and in total.
//! * **Never pays twice**: a pending journal entry is written (synchronously, to SQLite) before
//!   the wallet is asked to pay, and completed after. After a crash, the next request (or
//!   [`L402Client::resume`]) asks the wallet what became of that payment hash: paid → the token
//!   is used; never seen → the same invoice is paid now; failed → a new challenge may be paid.
//!   Concurrent requests (even from several processes) share one payment per scope.
//! * **Token reuse**: paid tokens are kept per origin and path scope; a token the server refuses
//!   (revoked, expired) is dropped, and a new one is bought only if re-paying is allowed.
//!
//! ```no_run
//! # async fn demo(payer: l402::SharedPayer) -> Result<(), l402_client::ClientError> {
//! use l402_client::{Budget, ClientStore, L402Client, Request};
//!
//! let client = L402Client::builder(payer, ClientStore::open("tokens.db".as_ref()).await?)
//!     .budget(Budget::default())
//!     .build()?;
//! let resp = client.send(Request::get("https://api.example.com/weather".parse().unwrap())).await?;
//! println!("{} (paid: {:?})", resp.inner.status(), resp.payment);
//! # Ok(()) }
//! ```

mod budget;
mod error;
mod grpc;
mod http;
mod pay;
mod store;

use std::sync::Arc;
use std::time::Duration;

use l402::{Msat, PaymentHash, Scheme, SharedPayer};
pub use lightning_invoice::Currency;

pub use budget::Budget;
pub use error::ClientError;
pub use grpc::{L402GrpcLayer, L402GrpcService};
pub use http::{PaymentInfo, Request, Response};
pub use store::{ClientStore, Entry, EntryState};

/// Something that happened while getting access, for logs and `-v` output.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The server answered 402 with this challenge.
    Challenged {
        /// The scheme it used.
        scheme: Scheme,
        /// The invoice.
        invoice: String,
    },
    /// About to pay.
    Paying {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The amount.
        amount: Msat,
        /// The invoice.
        invoice: String,
    },
    /// Paid.
    Paid {
        /// The payment hash.
        payment_hash: PaymentHash,
        /// The routing fee.
        fee: Msat,
    },
    /// An unresolved payment was looked up on the wallet.
    Resumed {
        /// The payment hash.
        payment_hash: PaymentHash,
    },
    /// A token already held is used.
    TokenReused {
        /// Its payment hash.
        payment_hash: PaymentHash,
    },
    /// The server refused a token it accepted before.
    TokenRefused {
        /// Its payment hash.
        payment_hash: PaymentHash,
        /// The status it answered.
        status: u16,
    },
    /// Retrying the request with the credential.
    Retrying,
}

/// A callback receiving events.
type EventFn = Arc<dyn Fn(&Event) + Send + Sync>;

/// Where events go.
#[derive(Clone, Default)]
pub(crate) struct EventSink(Option<EventFn>);

impl EventSink {
    pub(crate) fn emit(&self, e: Event) {
        tracing::debug!(event = ?e, "l402 client");
        if let Some(f) = &self.0 {
            f(&e);
        }
    }
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct L402Client {
    http: reqwest::Client,
    payer: pay::Payer,
    allow_repay: bool,
    no_pay: bool,
}

/// Builds an [`L402Client`].
pub struct Builder {
    payer: SharedPayer,
    store: ClientStore,
    budget: Budget,
    network: Option<Currency>,
    timeout: Duration,
    payment_timeout: Duration,
    allow_repay: bool,
    no_pay: bool,
    events: EventSink,
    accept_invalid_certs: bool,
}

impl L402Client {
    /// A builder paying through `payer`, journaling to `store`.
    pub fn builder(payer: SharedPayer, store: ClientStore) -> Builder {
        Builder {
            payer,
            store,
            budget: Budget::default(),
            network: None,
            timeout: Duration::from_secs(60),
            payment_timeout: Duration::from_secs(60),
            allow_repay: true,
            no_pay: false,
            events: EventSink::default(),
            accept_invalid_certs: false,
        }
    }

    /// The token store.
    pub fn store(&self) -> &ClientStore {
        &self.payer.store
    }

    /// The budget.
    pub fn budget(&self) -> &Budget {
        &self.payer.budget
    }
}

impl Builder {
    /// Sets the budget.
    #[must_use]
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Only pays invoices for this network.
    #[must_use]
    pub fn network(mut self, network: Currency) -> Self {
        self.network = Some(network);
        self
    }

    /// Total time for one HTTP exchange.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long to wait for a payment to settle.
    #[must_use]
    pub fn payment_timeout(mut self, timeout: Duration) -> Self {
        self.payment_timeout = timeout;
        self
    }

    /// Whether to buy a new token when the server refuses one it accepted before (revoked,
    /// expired). Default: yes, within the budget.
    #[must_use]
    pub fn allow_repay(mut self, allow: bool) -> Self {
        self.allow_repay = allow;
        self
    }

    /// Never pay (only report challenges).
    #[must_use]
    pub fn no_pay(mut self, no_pay: bool) -> Self {
        self.no_pay = no_pay;
        self
    }

    /// Receives progress events.
    #[must_use]
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.events = EventSink(Some(Arc::new(f)));
        self
    }

    /// Accepts any TLS certificate (`dangerous`: for local tests against self-signed servers).
    #[must_use]
    pub fn dangerous_accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<L402Client, ClientError> {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::InvalidRequest {
            reason: e.to_string(),
        })?
        .with_root_certificates(rustls::RootCertStore::from_iter(
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        ))
        .with_no_client_auth();
        // Redirects come back to the caller, as with curl without -L: a payment is only ever
        // made to the origin the caller named, and credentials never travel to another one.
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(10));
        b = if self.accept_invalid_certs {
            let _ = rustls::crypto::ring::default_provider().install_default();
            b.tls_danger_accept_invalid_certs(true)
        } else {
            b.tls_backend_preconfigured(tls)
        };
        let http = b.build().map_err(|e| ClientError::InvalidRequest {
            reason: format!("HTTP client: {e}"),
        })?;
        Ok(L402Client {
            http,
            payer: pay::Payer {
                wallet: self.payer,
                store: self.store,
                budget: self.budget,
                network: self.network,
                timeout: self.payment_timeout,
                events: self.events,
            },
            allow_repay: self.allow_repay,
            no_pay: self.no_pay,
        })
    }
}

/// The `WWW-Authenticate` values of a response that are text (the others cannot hold a
/// challenge), in order.
fn challenge_values(headers: &::http::HeaderMap) -> Vec<String> {
    headers
        .get_all(::http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}
