//! TLS for the stand-in, the way clnrest sets it up: on first start it makes a CA (`ca.pem`) and
//! a server certificate signed by it (`server.pem`, CN "cln rest server", DNS names
//! `cln rest server`, `cln`, `localhost`, plus an IP name when `clnrest-host` is an IP address),
//! both with rcgen. Clients trust `ca.pem`; no client certificate is asked for.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The files clnrest writes (the ones a client needs).
pub struct CertFiles {
    /// The CA certificate: what `cacert=` points at.
    pub ca: PathBuf,
    /// The server certificate: what `cert=` can pin.
    pub server: PathBuf,
}

/// Makes a CA and a server certificate for `host` in `dir`; returns the files and the server
/// configuration.
pub fn make_certs(dir: &Path, host: IpAddr) -> (CertFiles, rustls::ServerConfig) {
    let mut ca_params = CertificateParams::new(vec![
        "cln Root REST CA".to_owned(),
        "cln".to_owned(),
        "localhost".to_owned(),
    ])
    .unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages.push(KeyUsagePurpose::KeyCertSign);
    ca_params.use_authority_key_identifier_extension = true;
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let mut params = CertificateParams::new(vec![
        "cln rest server".to_owned(),
        "cln".to_owned(),
        "localhost".to_owned(),
    ])
    .unwrap();
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.use_authority_key_identifier_extension = true;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "cln rest server");
    params.subject_alt_names.push(SanType::IpAddress(host));
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let files = CertFiles {
        ca: dir.join("ca.pem"),
        server: dir.join("server.pem"),
    };
    std::fs::write(&files.ca, ca_cert.pem()).unwrap();
    std::fs::write(&files.server, cert.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), key.serialize_pem()).unwrap();

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    (files, config)
}

/// An `axum::serve` listener that hands over connections once their TLS handshake is done.
/// Handshakes run in their own tasks, so a client that never finishes one blocks nobody.
pub struct TlsListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Accepts on `listener`, handshaking with `config`.
    pub fn new(listener: TcpListener, config: rustls::ServerConfig) -> Self {
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // A client that refuses our certificate ends here.
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        TlsListener { addr, ready }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ended: serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
