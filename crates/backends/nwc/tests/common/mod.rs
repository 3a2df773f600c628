//! Test fixtures: a real Nostr relay in-process, wallet services over dev node wallets, a raw
//! relay connection to watch and inject events, and a TLS terminator for `wss://`.

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use l402_devnode::{DevNode, DevNodeConfig};
use l402_nwc::{NwcBackend, NwcWalletService, ServiceHandle, ServiceOptions};
use nostr_relay_builder::prelude::{LocalRelay, RateLimit, RelayBuilder};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

/// A running relay (`nostr-relay-builder`, a real NIP-01 relay) on 127.0.0.1; stops on drop.
pub struct TestRelay {
    relay: LocalRelay,
    pub url: String,
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.relay.shutdown();
    }
}

pub async fn relay() -> TestRelay {
    start(builder()).await
}

/// A relay on a given port (to restart one where the last one was).
pub async fn relay_on(port: u16) -> TestRelay {
    start(builder().port(port)).await
}

fn builder() -> RelayBuilder {
    // Generous limits: the default 60 events a minute per connection is easy to hit in a suite.
    RelayBuilder::default()
        .addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .rate_limit(RateLimit {
            max_reqs: 1000,
            notes_per_minute: 100_000,
        })
}

async fn start(builder: RelayBuilder) -> TestRelay {
    let relay = LocalRelay::new(builder);
    relay.run().await.expect("relay runs");
    let url = relay.url().await.to_string();
    TestRelay { relay, url }
}

/// A wallet service for `backend` on `url`, ready to answer.
pub async fn serve<B>(url: &str, backend: B, options: ServiceOptions) -> ServiceHandle
where
    B: l402::InvoiceIssuer + l402::InvoicePayer + 'static,
{
    let service = NwcWalletService::new(url, backend, None)
        .unwrap()
        .with_options(options)
        .unwrap();
    let handle = service.spawn();
    handle
        .ready(Duration::from_secs(10))
        .await
        .expect("service ready");
    handle
}

/// Everything one scenario needs; dropping it stops the services and the relay.
pub struct Env {
    pub node: DevNode,
    pub shop: ServiceHandle,
    pub alice: ServiceHandle,
    pub relay: TestRelay,
}

/// The issuer and payer: two NWC connections, to two dev node wallets ("shop", "alice"), each
/// behind its own wallet service on one relay.
pub async fn pair(options: ServiceOptions) -> (NwcBackend, NwcBackend, Env) {
    let relay = relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = serve(&relay.url, node.wallet("shop"), options.clone()).await;
    let alice = serve(&relay.url, node.wallet("alice"), options).await;
    let issuer = NwcBackend::from_uri(&format!("{}&timeout=10s", shop.connection_uri())).unwrap();
    let payer = NwcBackend::from_uri(&format!("{}&timeout=10s", alice.connection_uri())).unwrap();
    (
        issuer,
        payer,
        Env {
            node,
            shop,
            alice,
            relay,
        },
    )
}

/// A connection string for `wallet` on `relay` with a fresh random secret.
pub fn uri_with_random_secret(wallet: &str, relay: &str, extra: &str) -> String {
    let secret = nostr::key::Keys::generate().secret_key().to_secret_hex();
    format!("nostr+walletconnect://{wallet}?relay={relay}&secret={secret}{extra}")
}

// === a raw relay connection ===

/// A bare NIP-01 connection, to watch the traffic and to act as a third-party client.
pub struct RawRelay {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl RawRelay {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        RawRelay { ws }
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::text(v.to_string()))
            .await
            .expect("send");
    }

    /// The next relay message within `within`.
    pub async fn recv(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).ok();
            }
        }
    }

    /// Opens subscription `id` and waits for its end of stored events.
    pub async fn subscribe(&mut self, id: &str, filter: Value) {
        self.send(json!(["REQ", id, filter])).await;
        loop {
            let m = self
                .recv(Duration::from_secs(5))
                .await
                .expect("EOSE in time");
            if m[0] == "EOSE" && m[1] == id {
                return;
            }
        }
    }

    /// Publishes an event and waits for `OK true`.
    pub async fn publish(&mut self, event: &nostr::event::Event) {
        self.send(json!(["EVENT", event])).await;
        loop {
            let m = self.recv(Duration::from_secs(5)).await.expect("OK in time");
            if m[0] == "OK" && m[1] == event.id.to_hex() {
                assert_eq!(m[2], true, "relay refused the event: {m}");
                return;
            }
        }
    }

    /// Events of subscription `id` arriving within `within` (all of them).
    pub async fn events(&mut self, id: &str, within: Duration) -> Vec<nostr::event::Event> {
        self.first_events(id, usize::MAX, within).await
    }

    /// The first `n` events of subscription `id`, or fewer if `within` runs out.
    pub async fn first_events(
        &mut self,
        id: &str,
        n: usize,
        within: Duration,
    ) -> Vec<nostr::event::Event> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while out.len() < n {
            let Some(m) = self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            else {
                break;
            };
            if m[0] == "EVENT" && m[1] == id {
                out.push(serde_json::from_value(m[2].clone()).expect("event JSON"));
            }
        }
        out
    }
}

// === wss:// ===

/// A TLS terminator on 127.0.0.1:0 in front of `relay` (plain `ws://`), with a fresh
/// self-signed certificate. Returns its address and the certificate PEM.
pub async fn tls_front(relay: &str) -> (SocketAddr, String) {
    let upstream: SocketAddr = relay
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let pem = cert.cert.pem();
    let key = rustls_pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (addr, pem)
}

// === a backend with quirks ===

/// A dev node wallet with scripted misbehaviour, to see how the service reports it and how the
/// client reads it back.
#[derive(Clone)]
pub struct Quirky {
    pub inner: l402_devnode::DevWallet,
    /// Round invoice amounts down to whole satoshis (as some wallets do).
    pub round_to_sat: bool,
    /// Fail every call with this kind.
    pub fail: Arc<std::sync::Mutex<Option<l402::ErrorKind>>>,
}

impl Quirky {
    pub fn new(inner: l402_devnode::DevWallet) -> Self {
        Quirky {
            inner,
            round_to_sat: false,
            fail: Arc::default(),
        }
    }

    fn scripted(&self, call: &'static str) -> Result<(), l402::BackendError> {
        match *self.fail.lock().unwrap() {
            Some(kind) => Err(l402::BackendError::new(kind, "quirky", call, "scripted")),
            None => Ok(()),
        }
    }
}

impl l402::InvoiceIssuer for Quirky {
    fn name(&self) -> &'static str {
        "quirky"
    }

    async fn create_invoice(
        &self,
        mut request: l402::InvoiceRequest,
    ) -> Result<l402::CreatedInvoice, l402::BackendError> {
        self.scripted("create invoice")?;
        if self.round_to_sat {
            request.amount = l402::Msat::from_sat(request.amount.to_sat_floor());
        }
        self.inner.create_invoice(request).await
    }

    async fn invoice_state(
        &self,
        payment_hash: &l402::PaymentHash,
    ) -> Result<l402::InvoiceState, l402::BackendError> {
        self.scripted("invoice state")?;
        self.inner.invoice_state(payment_hash).await
    }
}

impl l402::InvoicePayer for Quirky {
    fn name(&self) -> &'static str {
        "quirky"
    }

    async fn pay(&self, request: l402::PayRequest) -> Result<l402::Paid, l402::BackendError> {
        self.scripted("pay")?;
        self.inner.pay(request).await
    }

    async fn payment(
        &self,
        payment_hash: &l402::PaymentHash,
    ) -> Result<l402::PaymentState, l402::BackendError> {
        self.scripted("payment lookup")?;
        self.inner.payment(payment_hash).await
    }
}
