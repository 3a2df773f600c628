//! A local stand-in for lnd's REST API, for the adapter's tests (no real lnd can run here).
//!
//! A [`Network`] holds several stand-in nodes that share one ledger, so a payment from one node
//! settles an invoice of another, as between two lnd nodes with a channel. Each [`Node`] serves
//! HTTPS on `127.0.0.1:0` with its own rcgen-made **self-signed certificate marked as a CA**, like
//! lnd's `tls.cert`, and has two macaroon files (`admin.macaroon`: everything;
//! `invoice.macaroon`: `invoices:read`/`invoices:write` only).
//!
//! What it mirrors (facts from lnd 0.18–0.21's API reference and grpc-gateway v2's behaviour;
//! the handlers in `api.rs` and `payments.rs` name the lnd function whose behaviour each one
//! reproduces):
//!
//! * auth: the `Grpc-Metadata-macaroon` header, hex; failures are plain Go errors (gRPC code 2,
//!   HTTP 500) with lnd's messages; for streaming calls they come in the `{"error": …}` envelope;
//! * JSON: int64 as strings, bytes as base64, hex in `Payment.payment_hash/payment_preimage`,
//!   every field emitted, unknown request fields refused;
//! * invoices: real BOLT11 (regtest) signed by the node's key, random preimages, lnd's AddInvoice
//!   limits, the expiry watcher moving expired OPEN invoices to CANCELED, "there are no existing
//!   invoices" vs "unable to locate invoice" (404, code 5);
//! * payments: SendPaymentV2 streams IN_FLIGHT then SUCCEEDED/FAILED, refuses a hash it already
//!   paid or is paying with 409 (code 6), refuses expired invoices and `timeout_seconds: 0`
//!   (0.18), honours `fee_limit_msat` (a routing fee too high fails with NO_ROUTE) and the
//!   balance (INSUFFICIENT_BALANCE); TrackPaymentV2 takes the hash as padded base64 in the path
//!   and answers "payment isn't initiated" (404) for unknown hashes;
//! * the gateway: `{"code":5,"message":"Not Found"}` for unknown paths, 501 for wrong methods.

#![allow(dead_code)]

mod api;
mod json;
mod payments;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

// === records ===

/// lnd's `Invoice.InvoiceState` (ACCEPTED is for hold invoices, which the stand-in lacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InvState {
    Open,
    Settled,
    Canceled,
}

impl InvState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            InvState::Open => "OPEN",
            InvState::Settled => "SETTLED",
            InvState::Canceled => "CANCELED",
        }
    }
}

/// An invoice in the ledger.
#[derive(Clone, Debug)]
pub(crate) struct InvoiceRec {
    pub(crate) owner: usize,
    pub(crate) memo: String,
    pub(crate) preimage: [u8; 32],
    pub(crate) hash: [u8; 32],
    pub(crate) value_msat: i64,
    pub(crate) created: SystemTime,
    pub(crate) expiry_secs: i64,
    pub(crate) payment_request: String,
    pub(crate) payment_addr: [u8; 32],
    pub(crate) state: InvState,
    pub(crate) settle_date: i64,
    pub(crate) amt_paid_msat: i64,
    pub(crate) add_index: u64,
    pub(crate) settle_index: u64,
}

impl InvoiceRec {
    pub(crate) fn creation_date(&self) -> i64 {
        unix_secs(self.created)
    }

    fn expires_at(&self) -> SystemTime {
        self.created + Duration::from_secs(self.expiry_secs.max(0) as u64)
    }
}

/// lnd's `Payment.PaymentStatus` as the stand-in produces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayStatus {
    InFlight,
    Succeeded,
    Failed,
}

impl PayStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PayStatus::InFlight => "IN_FLIGHT",
            PayStatus::Succeeded => "SUCCEEDED",
            PayStatus::Failed => "FAILED",
        }
    }

    pub(crate) fn is_final(self) -> bool {
        self != PayStatus::InFlight
    }
}

/// An outgoing payment of one node.
#[derive(Clone, Debug)]
pub(crate) struct PaymentRec {
    pub(crate) hash: [u8; 32],
    pub(crate) payment_request: String,
    pub(crate) value_msat: i64,
    pub(crate) fee_msat: i64,
    pub(crate) status: PayStatus,
    pub(crate) failure_reason: &'static str,
    pub(crate) preimage: Option<[u8; 32]>,
    pub(crate) created_ns: u128,
    pub(crate) resolved_ns: u128,
    pub(crate) payment_index: u64,
    /// Whether an HTLC was sent (lnd lists it in `htlcs`).
    pub(crate) attempted: bool,
}

/// What the stand-in knows about one node.
pub(crate) struct NodeState {
    pub(crate) key: SecretKey,
    pub(crate) pubkey: PublicKey,
    pub(crate) balance_msat: u64,
    pub(crate) admin_macaroon: Vec<u8>,
    pub(crate) invoice_macaroon: Vec<u8>,
    pub(crate) payments: HashMap<[u8; 32], watch::Sender<PaymentRec>>,
    pub(crate) next_add_index: u64,
    pub(crate) next_settle_index: u64,
    pub(crate) next_payment_index: u64,
    /// SendPaymentV2 requests that reached the call (after auth), and those refused with 409.
    pub(crate) send_calls: u64,
    pub(crate) duplicates_refused: u64,
}

/// The shared ledger.
pub(crate) struct Ledger {
    pub(crate) invoices: HashMap<[u8; 32], InvoiceRec>,
    pub(crate) nodes: Vec<NodeState>,
}

impl Ledger {
    /// lnd's `InvoiceExpiryWatcher`: cancels OPEN invoices once they expire. The stand-in runs
    /// it before every read, which is what a watcher firing on time looks like from outside.
    pub(crate) fn run_expiry_watcher(&mut self, now: SystemTime) {
        for inv in self.invoices.values_mut() {
            if inv.state == InvState::Open && now >= inv.expires_at() {
                inv.state = InvState::Canceled;
            }
        }
    }
}

/// Settings of a stand-in network.
#[derive(Clone, Debug)]
pub(crate) struct NetConfig {
    /// The routing fee every payment pays.
    pub(crate) fee_msat: u64,
    /// How long a payment stays IN_FLIGHT before it resolves.
    pub(crate) settle_delay: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            fee_msat: 0,
            settle_delay: Duration::from_millis(20),
        }
    }
}

pub(crate) struct Shared {
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) config: NetConfig,
}

/// Stand-in nodes sharing one ledger.
#[derive(Clone)]
pub(crate) struct Network {
    pub(crate) shared: Arc<Shared>,
}

impl Network {
    pub(crate) fn new(config: NetConfig) -> Self {
        Network {
            shared: Arc::new(Shared {
                ledger: Mutex::new(Ledger {
                    invoices: HashMap::new(),
                    nodes: Vec::new(),
                }),
                config,
            }),
        }
    }

    /// Starts a node holding `balance_msat`, with an lnd-like self-signed CA-flagged certificate.
    pub(crate) async fn node(&self, balance_msat: u64) -> Node {
        self.node_with_cert(balance_msat, lnd_like_certificate())
            .await
    }

    /// Starts a node serving `cert` (written to its `tls.cert`).
    pub(crate) async fn node_with_cert(&self, balance_msat: u64, cert: Cert) -> Node {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&l402_test::random32()).expect("valid key");
        let admin = fake_macaroon();
        let invoice = fake_macaroon();
        let index = {
            let mut l = self.shared.ledger.lock().unwrap();
            l.nodes.push(NodeState {
                key,
                pubkey: PublicKey::from_secret_key(&secp, &key),
                balance_msat,
                admin_macaroon: admin.clone(),
                invoice_macaroon: invoice.clone(),
                payments: HashMap::new(),
                next_add_index: 1,
                next_settle_index: 1,
                next_payment_index: 1,
                send_calls: 0,
                duplicates_refused: 0,
            });
            l.nodes.len() - 1
        };
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("tls.cert"), &cert.pem).unwrap();
        std::fs::write(dir.path().join("admin.macaroon"), &admin).unwrap();
        std::fs::write(dir.path().join("invoice.macaroon"), &invoice).unwrap();
        let addr = serve_tls(api::router(self.clone(), index), &cert).await;
        Node {
            addr,
            index,
            dir,
            net: self.clone(),
        }
    }

    /// The state of an invoice in the ledger (after the expiry watcher ran).
    pub(crate) fn invoice_state(&self, hash: &[u8; 32]) -> Option<InvState> {
        let mut l = self.shared.ledger.lock().unwrap();
        l.run_expiry_watcher(SystemTime::now());
        l.invoices.get(hash).map(|i| i.state)
    }
}

/// A running stand-in node.
pub(crate) struct Node {
    pub(crate) addr: SocketAddr,
    pub(crate) index: usize,
    dir: tempfile::TempDir,
    net: Network,
}

impl Node {
    pub(crate) fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.cert")
    }

    pub(crate) fn admin_macaroon_path(&self) -> PathBuf {
        self.dir.path().join("admin.macaroon")
    }

    pub(crate) fn invoice_macaroon_path(&self) -> PathBuf {
        self.dir.path().join("invoice.macaroon")
    }

    /// The admin macaroon, hex.
    pub(crate) fn admin_macaroon_hex(&self) -> String {
        hex::encode(std::fs::read(self.admin_macaroon_path()).unwrap())
    }

    /// `lnd+rest://` with the admin macaroon and the pinned certificate.
    pub(crate) fn uri(&self) -> String {
        self.uri_with(
            &self.admin_macaroon_path(),
            &format!("cert={}", self.cert_path().display()),
        )
    }

    /// `lnd+rest://` with `macaroon` and a TLS parameter such as `cert=…` or `cacert=…`.
    pub(crate) fn uri_with(&self, macaroon: &Path, tls: &str) -> String {
        let mut uri = format!("lnd+rest://{}?macaroon={}", self.addr, macaroon.display());
        if !tls.is_empty() {
            uri.push('&');
            uri.push_str(tls);
        }
        uri
    }

    fn with<T>(&self, f: impl FnOnce(&NodeState) -> T) -> T {
        f(&self.net.shared.ledger.lock().unwrap().nodes[self.index])
    }

    pub(crate) fn balance_msat(&self) -> u64 {
        self.with(|n| n.balance_msat)
    }

    pub(crate) fn send_calls(&self) -> u64 {
        self.with(|n| n.send_calls)
    }

    pub(crate) fn duplicates_refused(&self) -> u64 {
        self.with(|n| n.duplicates_refused)
    }

    /// The node's identity key (the BOLT11 payee).
    pub(crate) fn pubkey(&self) -> PublicKey {
        self.with(|n| n.pubkey)
    }
}

// === TLS ===

/// A certificate and its key.
pub(crate) struct Cert {
    pub(crate) pem: String,
    pub(crate) der: Vec<u8>,
    pub(crate) key_der: Vec<u8>,
}

/// A self-signed certificate like lnd's `tls.cert`: ECDSA P-256, names `localhost` and
/// `127.0.0.1`, and **`IsCA: true`** with cert-signing key usage (lnd's `cert.GenCertPair`).
pub(crate) fn lnd_like_certificate() -> Cert {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "lnd autogenerated cert");
    params
        .distinguished_name
        .push(DnType::CommonName, "standin");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Cert {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        key_der: key.serialize_der(),
    }
}

/// A CA (returned as PEM) and a server certificate it signed for `localhost`/`127.0.0.1`, as a
/// reverse proxy in front of lnd might have: the case `cacert=` is for.
pub(crate) fn ca_signed_certificate() -> (Cert, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "stand-in test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let leaf =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &ca).unwrap();
    (
        Cert {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        },
        ca.pem(),
    )
}

/// Serves `app` over HTTPS with `cert` on a loopback port.
async fn serve_tls(app: axum::Router, cert: &Cert) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.der.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_der.clone().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(16);
    // Handshakes run in their own tasks, so a client that stalls or refuses our certificate
    // holds up nobody else.
    tokio::spawn(async move {
        while let Ok((sock, peer)) = tcp.accept().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(sock).await {
                    let _ = tx.send((tls, peer)).await;
                }
            });
        }
    });
    let listener = TlsListener { rx, addr };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

// === helpers ===

/// Opaque macaroon bytes (a V2 macaroon starts with 0x02); the stand-in compares them exactly,
/// which is what a root-key check amounts to from outside.
fn fake_macaroon() -> Vec<u8> {
    let mut m = vec![0x02, 0x01, 0x03, b'l', b'n', b'd'];
    m.extend_from_slice(&l402_test::random32());
    m.extend_from_slice(&l402_test::random32());
    m
}

pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub(crate) fn unix_nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).unwrap().as_nanos()
}
