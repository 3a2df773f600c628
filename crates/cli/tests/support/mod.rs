//! Shared pieces of the end-to-end tests: real upstreams (HTTP, SSE, WebSocket, gRPC), a dev
//! node served over HTTP, the `l402` binary started as a child process, and a paying client.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use futures_util::StreamExt;
use l402::{Challenge, Credential, InvoicePayer, Msat, PayRequest, Scheme};
use l402_devnode::{DevNode, DevNodeConfig};

pub fn init_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client that accepts our self-signed test certificates.
pub fn http() -> reqwest::Client {
    init_crypto();
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Echoes what the upstream received: method, path, query, and selected headers.
async fn echo(req: axum::http::Request<Body>) -> Response {
    let h = req.headers();
    let pick = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = serde_json::json!({
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "query": req.uri().query(),
        "host": pick("host"),
        "x-forwarded-for": pick("x-forwarded-for"),
        "x-forwarded-host": pick("x-forwarded-host"),
        "x-l402-service": pick("x-l402-service"),
        "x-l402-token-id": pick("x-l402-token-id"),
        "x-l402-tier": pick("x-l402-tier"),
        "x-l402-capabilities": pick("x-l402-capabilities"),
        "x-injected": pick("x-injected"),
        // Every value, one per line: a credential forwarded twice must show.
        "authorization": h
            .get_all("authorization")
            .iter()
            .map(|v| v.to_str().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join("\n"),
    });
    axum::Json(body).into_response()
}

/// `GET /big?mb=N`: N MiB, streamed in 64 KiB chunks.
async fn big(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, u64>>,
) -> Response {
    let mb = q.get("mb").copied().unwrap_or(1);
    let chunks = mb * 16;
    let stream = futures_util::stream::iter(0..chunks)
        .map(|i| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![(i % 251) as u8; 64 * 1024])));
    Body::from_stream(stream).into_response()
}

/// `POST /upload`: counts the bytes received, reading the body as a stream.
async fn upload(body: Body) -> String {
    let mut n: u64 = 0;
    let mut s = body.into_data_stream();
    while let Some(chunk) = s.next().await {
        n += chunk.unwrap().len() as u64;
    }
    n.to_string()
}

/// `GET /sse`: five events, 100 ms apart.
async fn sse() -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let s = futures_util::stream::iter(0..5).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(Event::default().data(format!("tick {i}")))
    });
    Sse::new(s)
}

/// `GET /ws`: a WebSocket echo.
async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            let reply = match msg {
                Message::Text(t) => Message::Text(format!("echo: {t}").into()),
                Message::Close(_) => return,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                return;
            }
        }
    })
}

/// `GET /ws-bye`: a WebSocket the server closes at once (close frame, then the socket).
async fn ws_bye(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        let _ = socket.send(Message::Close(None)).await;
        // Wait for the client's close frame, then drop (closing the TCP connection).
        let _ = tokio::time::timeout(Duration::from_secs(5), socket.recv()).await;
    })
}

/// Starts the HTTP upstream.
pub async fn upstream() -> SocketAddr {
    let app = Router::new()
        .route("/big", get(big))
        .route("/upload", post(upload))
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .route("/ws-bye", get(ws_bye))
        .route(
            "/status/{code}",
            get(
                |axum::extract::Path(c): axum::extract::Path<u16>| async move {
                    StatusCode::from_u16(c).unwrap_or(StatusCode::OK)
                },
            ),
        )
        .fallback(any(echo));
    serve(app).await
}

/// Starts a gRPC upstream (the standard health service: unary Check, streaming Watch).
pub async fn grpc_upstream() -> (SocketAddr, tonic_health::server::HealthReporter) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("weather", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap()
    });
    (addr, reporter)
}

/// A dev node served over HTTP, in this process.
pub struct Devnet {
    pub node: DevNode,
    pub addr: SocketAddr,
}

impl Devnet {
    pub async fn start() -> Devnet {
        let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
        let addr = serve(node.router(None)).await;
        Devnet { node, addr }
    }

    /// The backend URI of the shop's wallet (what the proxy issues invoices from).
    pub fn shop_uri(&self) -> String {
        format!("devnode://{}/shop", self.addr)
    }

    /// Pays `invoice` from Alice's wallet.
    pub async fn pay(&self, invoice: &str) -> l402::Preimage {
        self.node
            .wallet("alice")
            .pay(PayRequest::new(invoice, Msat::ZERO))
            .await
            .unwrap()
            .preimage
    }
}

/// The `l402` binary running as a child process; killed on drop.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    pub dir: PathBuf,
    pub config_path: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.metrics.expect("metrics listener"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn wait(mut self) -> std::process::ExitStatus {
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

/// Writes `yaml` to a fresh directory and starts `l402 proxy --config` on it.
pub fn start_proxy(yaml: &str) -> Running {
    let dir = tempfile::tempdir().unwrap().keep();
    start_proxy_in(&dir, "proxy.yaml", yaml)
}

/// As [`start_proxy`], with plaintext HTTP/1 connections parked between every two requests
/// (`L402_PARK_IDLE_ABOVE=0`) instead of only when more than a thousand are open.
pub fn start_proxy_parking(yaml: &str) -> Running {
    start_proxy_env(yaml, &[("L402_PARK_IDLE_ABOVE", "0")])
}

/// As [`start_proxy`], with these environment variables set for the proxy.
pub fn start_proxy_env(yaml: &str, env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap().keep();
    start(&dir, "proxy.yaml", yaml, env)
}

pub fn start_proxy_in(dir: &Path, file: &str, text: &str) -> Running {
    start(dir, file, text, &[])
}

fn start(dir: &Path, file: &str, text: &str, env: &[(&str, &str)]) -> Running {
    let config_path = dir.join(file);
    std::fs::write(&config_path, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(["proxy", "--config"])
        .arg(&config_path)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn,l402_proxy=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the proxy did not start ({e}); first line: {line:?}"));
    Running {
        child,
        addr: v["listen"].as_str().unwrap().parse().unwrap(),
        metrics: v["metrics"].as_str().map(|m| m.parse().unwrap()),
        dir: dir.to_path_buf(),
        config_path,
    }
}

/// The challenge of a 402 response.
pub fn challenge_of(headers: &HeaderMap) -> Challenge {
    let values: Vec<&str> = headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let all = Challenge::parse_all(values).expect("a challenge");
    Challenge::preferred(&all).unwrap().clone()
}

/// Pays a 402's challenge; returns the Authorization value.
pub async fn pay_for(devnet: &Devnet, headers: &HeaderMap) -> String {
    let c = challenge_of(headers);
    let preimage = devnet.pay(c.invoice()).await;
    Credential::new(c.macaroon().clone(), preimage).to_authorization(Scheme::L402)
}

/// Gets `url`, pays the 402 it answers, and returns the Authorization that works.
/// The admin API's JSON at `url`, fetched until `done` holds for it (written in the background,
/// so polled for about ten seconds); the last answer is returned either way.
pub async fn admin_json_when(
    client: &reqwest::Client,
    url: &str,
    admin_token: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut answer = serde_json::Value::Null;
    for _ in 0..100 {
        answer = client
            .get(url)
            .bearer_auth(admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&answer) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answer
}

pub async fn buy(devnet: &Devnet, client: &reqwest::Client, url: &str) -> String {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 402, "{url} should ask for payment");
    pay_for(devnet, r.headers()).await
}
