//! lnd's `tls.cert` is self-signed and marked as a CA. These tests show that pinning it works,
//! and that every other way of trusting it fails with an error that says what to do.

mod standin;

use l402::{ErrorKind, InvoiceIssuer, PaymentHash};
use l402_lnd::LndBackend;
use standin::{NetConfig, Network, Node};

async fn node() -> Node {
    Network::new(NetConfig::default()).node(0).await
}

async fn lookup(lnd: &LndBackend) -> Result<l402::InvoiceState, l402::BackendError> {
    lnd.invoice_state(&PaymentHash::from_bytes([9; 32])).await
}

#[tokio::test]
async fn pinning_the_ca_flagged_certificate_works() {
    let n = node().await;
    let lnd = LndBackend::from_uri(&n.uri()).unwrap();
    // Reaching lnd's invoice registry (a real 404 "no invoices") proves TLS and auth passed.
    let e = lookup(&lnd).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn trusting_it_as_a_ca_fails_and_says_to_pin() {
    let n = node().await;
    let uri = n.uri_with(
        &n.admin_macaroon_path(),
        &format!("cacert={}", n.cert_path().display()),
    );
    let e = lookup(&LndBackend::from_uri(&uri).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("CaUsedAsEndEntity"),
        "names rustls's reason: {msg}"
    );
    assert!(
        msg.contains("pin it with cert=/path/to/tls.cert"),
        "says what to do: {msg}"
    );
}

#[tokio::test]
async fn the_web_pki_fails_and_says_to_pin() {
    let n = node().await;
    let uri = n.uri_with(&n.admin_macaroon_path(), "");
    let e = lookup(&LndBackend::from_uri(&uri).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    let msg = e.to_string();
    // webpki refuses a CA certificate as the server's before it looks for an issuer.
    assert!(msg.contains("CaUsedAsEndEntity"), "{msg}");
    assert!(msg.contains("pin it with cert=/path/to/tls.cert"), "{msg}");
}

#[tokio::test]
async fn pinning_a_different_certificate_fails() {
    let net = Network::new(NetConfig::default());
    let n = net.node(0).await;
    let other = net.node(0).await;
    // Same macaroon, same address, but the other node's tls.cert.
    let uri = n.uri_with(
        &n.admin_macaroon_path(),
        &format!("cert={}", other.cert_path().display()),
    );
    let e = lookup(&LndBackend::from_uri(&uri).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("not the pinned certificate"), "{msg}");
    assert!(msg.contains("regenerates tls.cert"), "{msg}");
}

#[tokio::test]
async fn a_proper_ca_works_with_cacert_and_its_leaf_can_be_pinned() {
    let (leaf, ca_pem) = standin::ca_signed_certificate();
    let leaf_pem = leaf.pem.clone();
    let n = Network::new(NetConfig::default())
        .node_with_cert(0, leaf)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let via_ca = n.uri_with(
        &n.admin_macaroon_path(),
        &format!("cacert={}", ca_path.display()),
    );
    let e = lookup(&LndBackend::from_uri(&via_ca).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::NotFound,
        "the CA-signed leaf is accepted: {e}"
    );
    assert_eq!(std::fs::read_to_string(n.cert_path()).unwrap(), leaf_pem);
    let e = lookup(&LndBackend::from_uri(&n.uri()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "the leaf pinned: {e}");
    // Without cacert= the web PKI does not know this CA.
    let e = lookup(&LndBackend::from_uri(&n.uri_with(&n.admin_macaroon_path(), "")).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
    assert!(e.to_string().contains("cacert= is for"), "{e}");
}

#[tokio::test]
async fn cert_and_cacert_together_are_refused() {
    let n = node().await;
    let uri = n.uri_with(
        &n.admin_macaroon_path(),
        &format!("cert={0}&cacert={0}", n.cert_path().display()),
    );
    let e = LndBackend::from_uri(&uri).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    let e = LndBackend::from_uri(&n.uri_with(&n.admin_macaroon_path(), "cert=/no/such/tls.cert"))
        .unwrap_err();
    assert!(e.to_string().contains("/no/such/tls.cert"), "{e}");
}
