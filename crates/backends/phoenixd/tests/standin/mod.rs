//! A local stand-in for phoenixd nodes.
//!
//! No phoenixd can run here, so this reproduces what the adapter relies on, from phoenixd's
//! source (`Api.kt`, `json/JsonSerializers.kt`, v0.5.1–v0.8.0), lightning-kmp's
//! `OutgoingPaymentHandler`/`FinalFailure`, and `notes/backends.md` §3:
//!
//! * plain HTTP (phoenixd has no TLS option);
//! * HTTP basic auth, user name ignored, two passwords: the full one, and the limited one that
//!   every paying endpoint (`payinvoice`) refuses with 401;
//! * plain-text errors (ktor `StatusPages`): 401 `Invalid authentication (…)`, 404
//!   `Unknown endpoint (check api doc)` for unknown paths, 405 `Invalid http method (…)`, 400 with
//!   ktor's parameter messages, and 404 `Not found` for a lookup that found nothing;
//! * form-encoded POST bodies; JSON answers without `null` fields;
//! * `createinvoice` (whole-sat `amountSat`, `description` ≤ 128 characters xor
//!   `descriptionHash`, `expirySeconds`, `externalId`), real regtest BOLT11 signed with the node's
//!   key;
//! * `payments/incoming/{hash}` in two shapes: v0.6.1+ (`isExpired`, `expiresAt`, `requestedSat`)
//!   and v0.5.x (without them) — see [`Version`];
//! * `payinvoice`: a failure is HTTP 200 `{"paymentHash","reason"}` with lightning-kmp's
//!   `FinalFailure` text; a hash already paid is refused ("this invoice has already been paid",
//!   nothing recorded); insufficient funds and unreachable recipients are recorded as failed
//!   payments; the routing fee is 4 sat + 0.4 %; no expiry check on the paying side;
//! * `payments/outgoingbyhash/{hash}` (succeeded before pending before failed) and
//!   `payments/outgoing/{uuid}`.
//!
//! Test hooks: [`PhoenixNode::set_hang_pays`] leaves new payments pending without answering,
//! [`PhoenixNode::requests`] shows the form fields the adapter sent.

// Each test binary uses a different part of the stand-in; `pub` marks what tests may use.
#![allow(dead_code, unreachable_pub)]

mod handlers;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

/// Which phoenixd answers to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// v0.5.x/v0.6.0: incoming payments have no `isExpired`, `expiresAt` or `requestedSat`.
    V0_5,
    /// v0.6.1 and later.
    V0_6_1,
}

/// Nodes that can pay each other.
#[derive(Clone, Default)]
pub struct Network(Arc<Mutex<Net>>);

#[derive(Default)]
pub struct Net {
    pub nodes: Vec<Node>,
}

/// One node's state.
pub struct Node {
    pub key: SecretKey,
    pub id: PublicKey,
    pub password: String,
    pub limited_password: String,
    pub version: Version,
    pub balance_msat: u64,
    pub incoming: Vec<Incoming>,
    pub outgoing: Vec<Outgoing>,
    pub hang_pays: bool,
    pub requests: Vec<(String, Vec<(String, String)>)>,
}

/// An invoice this node issued (`LightningIncomingPayment`).
pub struct Incoming {
    pub payment_hash: [u8; 32],
    pub preimage: [u8; 32],
    pub bolt11: String,
    pub description: String,
    pub external_id: Option<String>,
    pub amount_msat: Option<u64>,
    pub expiry_secs: u64,
    pub created_at_ms: u64,
    pub received_msat: u64,
    pub completed_at_ms: Option<u64>,
}

/// A payment this node made (`LightningOutgoingPayment`).
pub struct Outgoing {
    pub id: String,
    pub payment_hash: [u8; 32],
    pub bolt11: String,
    pub amount_msat: u64,
    pub fees_msat: u64,
    pub preimage: Option<[u8; 32]>,
    pub failed: bool,
    pub created_at_ms: u64,
    pub completed_at_ms: Option<u64>,
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct Options {
    pub balance_msat: u64,
    pub version: Version,
    /// The full password (random 64 hex by default, as phoenixd generates).
    pub password: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            balance_msat: 1_000_000_000,
            version: Version::V0_6_1,
            password: None,
        }
    }
}

/// A running node.
pub struct PhoenixNode {
    pub addr: SocketAddr,
    /// `http-password`.
    pub password: String,
    /// `http-password-limited-access`.
    pub limited_password: String,
    index: usize,
    net: Network,
}

#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) net: Network,
    pub(crate) index: usize,
}

// === impl Network ===

impl Network {
    pub fn new() -> Self {
        Network::default()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Net> {
        self.0.lock().unwrap()
    }

    /// Starts a node on a loopback port.
    pub async fn node(&self, options: Options) -> PhoenixNode {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&l402_test::random32()).unwrap();
        // phoenixd generates 64-hex passwords on first start.
        let password = options
            .password
            .clone()
            .unwrap_or_else(|| hex::encode(l402_test::random32()));
        let limited_password = hex::encode(l402_test::random32());
        let index = {
            let mut net = self.lock();
            net.nodes.push(Node {
                key,
                id: PublicKey::from_secret_key(&secp, &key),
                password: password.clone(),
                limited_password: limited_password.clone(),
                version: options.version,
                balance_msat: options.balance_msat,
                incoming: Vec::new(),
                outgoing: Vec::new(),
                hang_pays: false,
                requests: Vec::new(),
            });
            net.nodes.len() - 1
        };
        let app = Router::new()
            .route("/createinvoice", post(handlers::create_invoice))
            .route("/payinvoice", post(handlers::pay_invoice))
            .route("/payments/incoming/{hash}", get(handlers::incoming))
            .route(
                "/payments/outgoingbyhash/{hash}",
                get(handlers::outgoing_by_hash),
            )
            .route("/payments/outgoing/{id}", get(handlers::outgoing_by_id))
            .fallback(handlers::unknown_endpoint)
            .method_not_allowed_fallback(handlers::wrong_method)
            .with_state(Ctx {
                net: self.clone(),
                index,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        PhoenixNode {
            addr,
            password,
            limited_password,
            index,
            net: self.clone(),
        }
    }
}

// === impl PhoenixNode ===

impl PhoenixNode {
    /// The backend URI with the full password.
    pub fn uri(&self) -> String {
        self.uri_with_password(&self.password)
    }

    /// The backend URI with the limited-access password.
    pub fn limited_uri(&self) -> String {
        self.uri_with_password(&self.limited_password)
    }

    /// The backend URI with `password` (percent-encoded as a URI needs).
    pub fn uri_with_password(&self, password: &str) -> String {
        let encoded: String = url::form_urlencoded::byte_serialize(password.as_bytes()).collect();
        format!("phoenixd://:{}@{}", encoded.replace('+', "%20"), self.addr)
    }

    /// New payments stay pending and `payinvoice` never answers.
    pub fn set_hang_pays(&self, hang: bool) {
        self.net.lock().nodes[self.index].hang_pays = hang;
    }

    pub fn balance_msat(&self) -> u64 {
        self.net.lock().nodes[self.index].balance_msat
    }

    /// The calls made so far: path and form fields (empty for GET).
    pub fn requests(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.net.lock().nodes[self.index].requests.clone()
    }

    /// The outgoing payments recorded.
    pub fn outgoing_count(&self) -> usize {
        self.net.lock().nodes[self.index].outgoing.len()
    }
}
