//! A local stand-in for Core Lightning nodes behind the `clnrest` plugin.
//!
//! No `lightningd` can run here, so this reproduces what the adapter relies on, from Core
//! Lightning's source (`plugins/rest-plugin`, `lightningd/invoice.c`, `plugins/pay.c`,
//! `common/jsonrpc_errors.h`) and the notes in `notes/backends.md` §2:
//!
//! * transport: HTTPS with an rcgen CA + server certificate as clnrest makes them ([`tls`]), or
//!   plain HTTP (`clnrest-protocol=http`);
//! * routing: `POST /v1/{method}` with a JSON object of named parameters; `null` values dropped;
//!   a missing `Content-Type` read as JSON, other types than JSON answered 406 (the real plugin
//!   also reads YAML, XML and forms, which the adapter never sends);
//! * auth: the `Rune` header — missing → 403 code 1501, unknown → 401 code 1501, not permitting the
//!   method → 401 code 1502 (`checkrune`);
//! * answers: HTTP 201 + the RPC result; errors `{"code","message","data"}` with HTTP 404 for
//!   -32601 and 500 for everything else;
//! * state: several nodes on one [`Network`]; each keeps its invoices (real regtest BOLT11 signed
//!   with its own key, random preimages), payment attempts and balance; a payment moves funds from
//!   payer to payee and settles the payee's invoice ([`rpc`] has the per-method behaviour).
//!
//! Test hooks: [`ClnNode::inject`] makes the next call fail with a given status and body,
//! [`ClnNode::set_hang_pays`] leaves new payments in flight without answering, and
//! [`ClnNode::requests`] shows what the adapter sent.

// Each test binary uses a different part of the stand-in; `pub` marks what tests may use.
#![allow(dead_code, unreachable_pub)]

pub mod rpc;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use serde_json::{Map, Value, json};

pub use tls::CertFiles;

/// Nodes that can pay each other.
#[derive(Clone, Default)]
pub struct Network(Arc<Mutex<Net>>);

#[derive(Default)]
pub struct Net {
    pub nodes: Vec<Node>,
}

/// One node's state.
pub struct Node {
    pub name: String,
    pub key: SecretKey,
    pub id: PublicKey,
    /// Runes and the methods each permits (`None`: all).
    pub runes: Vec<(String, Option<Vec<String>>)>,
    pub balance_msat: u64,
    /// The routing fee every payment from this node costs.
    pub fee_msat: u64,
    pub invoices: Vec<rpc::Invoice>,
    pub pays: Vec<rpc::Attempt>,
    pub next_index: u64,
    pub hang_pays: bool,
    pub injected: Option<(u16, Value)>,
    pub requests: Vec<(String, Value)>,
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct Options {
    pub balance_msat: u64,
    pub fee_msat: u64,
    /// HTTPS (clnrest's default) or plain HTTP.
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            balance_msat: 1_000_000_000,
            fee_msat: 1_000,
            tls: true,
        }
    }
}

/// A running node.
pub struct ClnNode {
    pub addr: SocketAddr,
    /// A rune that permits every method.
    pub rune: String,
    /// `ca.pem` and `server.pem` (HTTPS nodes only).
    pub certs: Option<CertFiles>,
    index: usize,
    net: Network,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
struct Ctx {
    net: Network,
    index: usize,
}

fn random_rune() -> String {
    // Runes are URL-safe base64 of a 32-byte hash plus restrictions; the shape is all that matters.
    let bytes = l402_test::random32();
    let mut s = String::new();
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for b in bytes {
        s.push(ALPHABET[(b & 63) as usize] as char);
    }
    s.push_str("PTAmbWV0aG9k");
    s
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
    pub async fn node(&self, name: &str, options: Options) -> ClnNode {
        let secp = Secp256k1::new();
        let key = SecretKey::from_slice(&l402_test::random32()).unwrap();
        let rune = random_rune();
        let index = {
            let mut net = self.lock();
            net.nodes.push(Node {
                name: name.to_owned(),
                key,
                id: PublicKey::from_secret_key(&secp, &key),
                runes: vec![(rune.clone(), None)],
                balance_msat: options.balance_msat,
                fee_msat: options.fee_msat,
                invoices: Vec::new(),
                pays: Vec::new(),
                next_index: 1,
                hang_pays: false,
                injected: None,
                requests: Vec::new(),
            });
            net.nodes.len() - 1
        };
        let app = Router::new()
            .route("/v1/{method}", post(handle))
            .with_state(Ctx {
                net: self.clone(),
                index,
            });
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let certs = if options.tls {
            let (files, config) = tls::make_certs(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST));
            let listener = tls::TlsListener::new(listener, config);
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Some(files)
        } else {
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            None
        };
        ClnNode {
            addr,
            rune,
            certs,
            index,
            net: self.clone(),
            _dir: dir,
        }
    }
}

// === impl ClnNode ===

impl ClnNode {
    /// The backend URI with the full rune (trusting `ca.pem` over HTTPS).
    pub fn uri(&self) -> String {
        self.uri_with_rune(&self.rune)
    }

    /// The backend URI with another rune.
    pub fn uri_with_rune(&self, rune: &str) -> String {
        match &self.certs {
            Some(c) => format!(
                "cln+rest://{}?rune={rune}&cacert={}",
                self.addr,
                c.ca.display()
            ),
            None => format!("cln+rest+http://{}?rune={rune}", self.addr),
        }
    }

    /// A new rune that permits only `methods`.
    pub fn restricted_rune(&self, methods: &[&str]) -> String {
        let rune = random_rune();
        self.net.lock().nodes[self.index].runes.push((
            rune.clone(),
            Some(methods.iter().map(|m| (*m).to_owned()).collect()),
        ));
        rune
    }

    /// The next call (after the rune check) answers `status` with `body`.
    pub fn inject(&self, status: u16, body: Value) {
        self.net.lock().nodes[self.index].injected = Some((status, body));
    }

    /// New payments from this node stay in flight and `pay` never answers.
    pub fn set_hang_pays(&self, hang: bool) {
        self.net.lock().nodes[self.index].hang_pays = hang;
    }

    pub fn balance_msat(&self) -> u64 {
        self.net.lock().nodes[self.index].balance_msat
    }

    /// The calls made so far: method and parameters.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.net.lock().nodes[self.index].requests.clone()
    }

    /// How many payment attempts this node has recorded.
    pub fn attempts(&self) -> usize {
        self.net.lock().nodes[self.index].pays.len()
    }
}

// === the HTTP handler (clnrest's `call_rpc_method`) ===

/// clnrest's error body: `RpcError` serialized with every field, `null`s included.
pub fn error_body(code: Option<i64>, message: &str, data: Value) -> Value {
    json!({"code": code, "message": message, "data": data})
}

fn answer(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
}

async fn handle(
    State(ctx): State<Ctx>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match respond(&ctx, &method, &headers, &body) {
        Some(response) => response,
        // The payment stays in flight: `pay` does not answer until it resolves.
        None => std::future::pending().await,
    }
}

/// The answer, or `None` for a call that never answers (the state lock is not held across an
/// `await`).
fn respond(ctx: &Ctx, method: &str, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
    // 1. The body: JSON when Content-Type says so or is missing.
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !(content_type.contains("application/json") || content_type.contains("*/*")) {
        return Some(answer(
            406,
            error_body(
                None,
                &format!("Unsupported content-type header: {content_type}"),
                Value::Null,
            ),
        ));
    }
    let mut params: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(p) => p,
            Err(e) => {
                return Some(answer(
                    500,
                    error_body(
                        None,
                        &format!(
                            "Could not parse `{}` JSON request: {e}",
                            String::from_utf8_lossy(body)
                        ),
                        Value::Null,
                    ),
                ));
            }
        }
    };
    // `filter_json`: keys whose value is null are dropped.
    params.retain(|_, v| !v.is_null());

    // 2. The rune (`verify_rune` → `checkrune`).
    let rune = headers.get("rune").and_then(|v| v.to_str().ok());
    let mut net = ctx.net.lock();
    let node = &mut net.nodes[ctx.index];
    let Some(rune) = rune else {
        return Some(answer(
            403,
            error_body(Some(1501), "Not authorized: Missing rune", Value::Null),
        ));
    };
    match node.runes.iter().find(|(r, _)| r == rune) {
        None => {
            return Some(answer(
                401,
                error_body(
                    Some(1501),
                    "Not authorized: Not derived from master",
                    Value::Null,
                ),
            ));
        }
        Some((_, Some(methods))) if !methods.iter().any(|m| m == method) => {
            return Some(answer(
                401,
                error_body(
                    Some(1502),
                    &format!("Not permitted: method is not equal to {}", methods[0]),
                    Value::Null,
                ),
            ));
        }
        Some(_) => {}
    }
    node.requests
        .push((method.to_owned(), Value::Object(params.clone())));
    if let Some((status, body)) = node.injected.take() {
        return Some(answer(status, body));
    }

    // 3. The RPC call.
    match rpc::call(&mut net, ctx.index, method, params) {
        rpc::Outcome::Done(Ok(result)) => Some(answer(201, result)),
        rpc::Outcome::Done(Err(e)) => {
            let status = if e.code == -32601 { 404 } else { 500 };
            Some(answer(status, error_body(Some(e.code), &e.message, e.data)))
        }
        rpc::Outcome::Hang => None,
    }
}
