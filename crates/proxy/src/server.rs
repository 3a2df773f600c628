//! Listeners: TLS (ALPN h2 / http/1.1, certificate files or a self-signed one made on first
//! start) or plaintext (HTTP/1.1 and h2c on the same port), optional PROXY protocol v2, graceful
//! shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client_ip::{ProxyHeader, read_proxy_header};
use crate::config::TlsConfig;
use crate::handler::{Shared, handle};
use crate::park;

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(20);

/// Loads or creates the TLS server configuration.
pub(crate) fn tls_acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, String> {
    let (cert_path, key_path) = match tls {
        TlsConfig::Files { cert, key } => (cert.clone(), key.clone()),
        TlsConfig::SelfSigned { dir, hosts } => {
            let cert = dir.join("tls.cert");
            let key = dir.join("tls.key");
            if !cert.exists() || !key.exists() {
                self_signed(dir, &cert, &key, hosts)?;
            }
            (cert, key)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad PEM in {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("cannot read private key {}: {e}", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| {
        format!(
            "certificate {} and key {} do not fit: {e}",
            cert_path.display(),
            key_path.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn self_signed(dir: &Path, cert: &Path, key: &Path, hosts: &[String]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(hosts.iter().cloned());
    let signed = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot generate a certificate: {e}"))?;
    std::fs::write(cert, signed.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    write_private(key, signed.signing_key.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The connection builders, configured once.
struct Builders {
    /// TLS (h2 or HTTP/1.1 by ALPN) and h2c.
    auto: auto::Builder<TokioExecutor>,
    /// Plaintext HTTP/1.1, one hyper connection per stretch of activity.
    http1: Arc<http1::Builder>,
}

impl Builders {
    fn new() -> Self {
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        auto.http2()
            .max_concurrent_streams(1000)
            .timer(hyper_util::rt::TokioTimer::new());
        let mut http1 = http1::Builder::new();
        http1
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        Builders {
            auto,
            http1: Arc::new(http1),
        }
    }
}

/// How long a client may take to send a request head (and, for connections hyper keeps, how
/// long one may stay idle).
const HEADER_READ_TIMEOUT: Duration = park::IDLE_TIMEOUT;

/// Serves the proxy on `listener` until `shutdown` is cancelled, then drains.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy_protocol: bool,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    // Connections served outside `graceful` (plaintext HTTP/1, see `park`) are drained by
    // `connections` and told to finish through `conns_shutdown`.
    let connections = TaskTracker::new();
    let conns_shutdown = CancellationToken::new();
    let builders = Arc::new(Builders::new());
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let tls = tls.clone();
        let shared = shared.clone();
        let builders = builders.clone();
        let watcher = graceful.watcher();
        let conn_shutdown = conns_shutdown.clone();
        connections.spawn(async move {
            let mut stream = stream;
            let peer = if proxy_protocol {
                let header = tokio::select! {
                    r = Box::pin(read_proxy_header(&mut stream, Duration::from_secs(5))) => r,
                    () = conn_shutdown.cancelled() => return,
                };
                match header {
                    Ok(ProxyHeader::Proxied(src)) => src,
                    Ok(ProxyHeader::Local) => peer,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "connection refused: PROXY protocol");
                        return;
                    }
                }
            } else {
                peer
            };
            serve_connection(stream, peer, tls, shared, builders, watcher, conn_shutdown).await;
        });
    }
    drop(listener);
    conns_shutdown.cancel();
    connections.close();
    let drained = async {
        graceful.shutdown().await;
        connections.wait().await;
    };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        tracing::warn!("shutdown: requests still running after {DRAIN:?}; closing them");
    }
}

/// Serves one accepted connection. The per-connection task is sized for the largest state of
/// this future, and thousands of idle connections each hold one: the TLS and h2c paths (large
/// futures) are boxed, so a parked plaintext connection's task stays small.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    builders: Arc<Builders>,
    watcher: hyper_util::server::graceful::Watcher,
    shutdown: CancellationToken,
) {
    if let Some(acceptor) = tls {
        let serve = Box::pin(serve_tls(
            stream, peer, acceptor, shared, builders, watcher, shutdown,
        ));
        return serve.await;
    }
    let mut first = [0u8; 24];
    // A client that connects and says nothing must not hold up shutdown.
    let n = tokio::select! {
        r = tokio::time::timeout(park::IDLE_TIMEOUT, stream.peek(&mut first)) => match r {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        },
        () = shutdown.cancelled() => return,
    };
    if park::may_be_h2c(&first[..n]) {
        let io = TokioIo::new(stream);
        return Box::pin(serve_auto(io, peer, false, shared, builders, watcher)).await;
    }
    // HTTP/1: served by the parking loop, drained through `shutdown`.
    drop(watcher);
    park::serve(stream, peer, shared, builders.http1.clone(), shutdown).await;
}

async fn serve_tls(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    builders: Arc<Builders>,
    watcher: hyper_util::server::graceful::Watcher,
    shutdown: CancellationToken,
) {
    let handshake = tokio::select! {
        r = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)) => r,
        () = shutdown.cancelled() => return,
    };
    match handshake {
        Ok(Ok(tls_stream)) => {
            serve_auto(
                TokioIo::new(tls_stream),
                peer,
                true,
                shared,
                builders,
                watcher,
            )
            .await;
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// HTTP/2 or HTTP/1.1, as the client speaks, until the connection ends.
async fn serve_auto<I>(
    io: I,
    peer: SocketAddr,
    is_tls: bool,
    shared: Arc<Shared>,
    builders: Arc<Builders>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let shared = shared.clone();
        async move {
            let req = req.map(crate::upstream::ReqBody::Hyper);
            Ok::<_, std::convert::Infallible>(
                handle(shared, req, None, peer.ip(), is_tls, false).await,
            )
        }
    });
    let conn = builders.auto.serve_connection_with_upgrades(io, svc);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
