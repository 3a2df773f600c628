//! NWC-specific behaviour over a real relay: encryption on the wire, the wallet service seen
//! by an independent NIP-47 implementation (the `nostr` crate's), a wallet without preimages,
//! timeouts, `wss://`, and secrets kept out of sight.

mod common;

use std::time::{Duration, Instant};

use l402::{ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, Msat, PayRequest, PaymentHash};
use l402_devnode::{DevNode, DevNodeConfig};
use l402_nwc::{Encryption, NwcBackend, ServiceKeys, ServiceOptions};
use nostr::event::{EventBuilder, FinalizeEvent, Kind, Tag};
use nostr::key::Keys;
use nostr::nips::nip47::{
    GetInfoResponse, LookupInvoiceRequest, MakeInvoiceRequest, Nip47Ciphers, NostrWalletConnectUri,
    Request, Response, TransactionState, TransactionType,
};
use nostr::types::Timestamp;
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn relay_up_but_no_wallet_is_a_timeout() {
    let relay = common::relay().await;
    let wallet = Keys::generate().public_key().to_hex();
    let b = NwcBackend::from_uri(&common::uri_with_random_secret(
        &wallet,
        &relay.url,
        "&timeout=1s",
    ))
    .unwrap();
    let started = Instant::now();
    let e = b
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "anyone?"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.is_transient());
    assert!(e.to_string().contains("nwc"), "{e}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < 15 * SECOND,
        "{elapsed:?}"
    );
    let e = b
        .payment(&PaymentHash::from_bytes([3; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn a_wallet_without_preimages_gets_a_clear_error_and_is_not_paid_twice() {
    let options = ServiceOptions {
        reveal_preimages: false,
        ..ServiceOptions::default()
    };
    let (shop, alice, env) = common::pair(options).await;
    let wallet = env.node.wallet("alice");
    let before = wallet.balance().await.unwrap();
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(21), "no proof"))
        .await
        .unwrap();
    let e = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("no preimage"), "{e}");
    assert!(e.to_string().contains("L402 needs the preimage"), "{e}");
    // The wallet did pay; a retry must not pay again and must fail the same way.
    let paid_once = wallet.balance().await.unwrap();
    assert_eq!(paid_once, Msat::new(before.as_u64() - 21_000));
    let e = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::from_sat(1)))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no preimage"), "{e}");
    assert_eq!(wallet.balance().await.unwrap(), paid_once, "paid once only");
    let e = alice.payment(&inv.payment_hash).await.unwrap_err();
    assert!(e.to_string().contains("no preimage"), "{e}");
    assert_eq!(
        shop.invoice_state(&inv.payment_hash).await.unwrap(),
        l402::InvoiceState::Settled
    );
}

/// The schemes really used on the wire, seen from a third connection to the relay.
#[tokio::test]
async fn requests_and_answers_use_the_negotiated_scheme_on_the_wire() {
    for (options, scheme) in [
        (ServiceOptions::default(), Encryption::Nip44V2),
        (
            ServiceOptions {
                encryptions: vec![Encryption::Nip04],
                ..ServiceOptions::default()
            },
            Encryption::Nip04,
        ),
    ] {
        let (shop, _alice, env) = common::pair(options).await;
        let mut watch = common::RawRelay::connect(&env.relay.url).await;
        watch
            .subscribe("watch", json!({"kinds": [23194, 23195]}))
            .await;
        shop.create_invoice(InvoiceRequest::new(Msat::from_sat(5), "watched"))
            .await
            .unwrap();
        let events = watch.first_events("watch", 2, 10 * SECOND).await;
        let request = events
            .iter()
            .find(|e| e.kind == Kind::WalletConnectRequest)
            .expect("request seen");
        let answer = events
            .iter()
            .find(|e| e.kind == Kind::WalletConnectResponse)
            .expect("answer seen");
        let nip04_shaped = |c: &str| c.contains("?iv=");
        let tag = |e: &nostr::event::Event| {
            e.tags
                .iter()
                .find(|t| t.kind() == "encryption")
                .and_then(|t| t.content().map(str::to_owned))
        };
        match scheme {
            Encryption::Nip44V2 => {
                assert!(!nip04_shaped(&request.content));
                assert!(!nip04_shaped(&answer.content));
                assert_eq!(tag(request).as_deref(), Some("nip44_v2"));
            }
            Encryption::Nip04 => {
                assert!(nip04_shaped(&request.content));
                assert!(nip04_shaped(&answer.content));
                assert_eq!(
                    tag(request),
                    None,
                    "NIP-04 requests carry no encryption tag"
                );
            }
        }
        // The tags NIP-47 asks for.
        let wallet = shop.wallet_pubkey();
        assert_eq!(request.tags.public_keys().next().unwrap().to_hex(), wallet);
        assert!(request.tags.expiration().is_some());
        assert_eq!(answer.pubkey.to_hex(), wallet);
        assert_eq!(answer.tags.event_ids().next().unwrap(), request.id);
        assert_eq!(
            answer.tags.public_keys().next().unwrap().to_hex(),
            shop.client_pubkey()
        );
    }
}

/// Sends a request built by the `nostr` crate's own NIP-47 module and returns the raw answer,
/// if one comes `within` that time.
async fn ask_within(
    relay: &str,
    uri: &NostrWalletConnectUri,
    request: nostr::event::Event,
    within: Duration,
) -> Option<nostr::event::Event> {
    let mut raw = common::RawRelay::connect(relay).await;
    raw.subscribe(
        "answer",
        json!({"kinds": [23195], "#e": [request.id.to_hex()]}),
    )
    .await;
    raw.publish(&request).await;
    let answer = raw
        .first_events("answer", 1, within)
        .await
        .into_iter()
        .next()?;
    assert_eq!(answer.pubkey, uri.public_key);
    answer.verify().unwrap();
    Some(answer)
}

/// [`ask_within`] for a request that must be answered: ten seconds, however slow the machine.
async fn ask(
    relay: &str,
    uri: &NostrWalletConnectUri,
    request: nostr::event::Event,
) -> Option<nostr::event::Event> {
    ask_within(relay, uri, request, 10 * SECOND).await
}

#[tokio::test]
async fn an_independent_nip47_client_understands_the_service() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = common::serve(&relay.url, node.wallet("shop"), ServiceOptions::default()).await;
    let uri = NostrWalletConnectUri::parse(shop.connection_uri()).expect("nostr parses our URI");
    assert_eq!(uri.relays.len(), 1);

    // get_info over NIP-44.
    let req = Request::get_info()
        .to_event(&uri, Nip47Ciphers::NIP44V2)
        .unwrap();
    let answer = ask(&relay.url, &uri, req).await.expect("answer");
    let info: GetInfoResponse = Response::from_event(&uri, &answer, Nip47Ciphers::NIP44V2)
        .unwrap()
        .to_get_info()
        .unwrap();
    let methods: Vec<&str> = info.methods.iter().map(|m| m.as_str()).collect();
    for m in ["make_invoice", "lookup_invoice", "pay_invoice", "get_info"] {
        assert!(methods.contains(&m), "{methods:?}");
    }

    // make_invoice over NIP-44.
    let req = Request::make_invoice(MakeInvoiceRequest {
        amount: 21_000,
        description: Some("interop".into()),
        description_hash: None,
        expiry: Some(600),
    })
    .to_event(&uri, Nip47Ciphers::NIP44V2)
    .unwrap();
    let answer = ask(&relay.url, &uri, req).await.expect("answer");
    let made = Response::from_event(&uri, &answer, Nip47Ciphers::NIP44V2)
        .unwrap()
        .to_make_invoice()
        .unwrap();
    assert!(made.invoice.starts_with("lnbcrt"), "{}", made.invoice);
    assert_eq!(made.amount, Some(21_000));
    let hash = made.payment_hash.expect("payment_hash");

    // lookup_invoice by invoice, over NIP-04 (the service offers both).
    let req = Request::lookup_invoice(LookupInvoiceRequest {
        payment_hash: None,
        invoice: Some(made.invoice.clone()),
    })
    .to_event(&uri, Nip47Ciphers::NIP04)
    .unwrap();
    let answer = ask(&relay.url, &uri, req).await.expect("answer");
    assert!(answer.content.contains("?iv="), "answered in NIP-04");
    let found = Response::from_event(&uri, &answer, Nip47Ciphers::NIP04)
        .unwrap()
        .to_lookup_invoice()
        .unwrap();
    assert_eq!(found.payment_hash, hash);
    assert_eq!(found.transaction_type, Some(TransactionType::Incoming));
    assert_eq!(found.state, Some(TransactionState::Pending));
    assert_eq!(found.amount, 21_000);
    assert!(found.expires_at.unwrap() > Timestamp::now());
}

#[tokio::test]
async fn the_service_refuses_a_scheme_it_does_not_speak() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let options = ServiceOptions {
        encryptions: vec![Encryption::Nip04],
        ..ServiceOptions::default()
    };
    let shop = common::serve(&relay.url, node.wallet("shop"), options).await;
    let uri = NostrWalletConnectUri::parse(shop.connection_uri()).unwrap();
    let req = Request::get_info()
        .to_event(&uri, Nip47Ciphers::NIP44V2)
        .unwrap();
    let answer = ask(&relay.url, &uri, req)
        .await
        .expect("an answer, not silence");
    // Answered in the client's scheme so it can read the refusal.
    let plain = nostr::nips::nip44::decrypt(&uri.secret, &uri.public_key, &answer.content).unwrap();
    let v: serde_json::Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(v["error"]["code"], "UNSUPPORTED_ENCRYPTION", "{v}");
    assert_eq!(v["result_type"], "get_info");
}

#[tokio::test]
async fn expired_and_repeated_requests_are_not_answered_again() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = common::serve(&relay.url, node.wallet("shop"), ServiceOptions::default()).await;
    let uri = NostrWalletConnectUri::parse(shop.connection_uri()).unwrap();
    let keys = Keys::new(uri.secret.clone());
    let body = nostr::nips::nip44::encrypt(
        &uri.secret,
        &uri.public_key,
        r#"{"method":"get_info","params":{}}"#,
        nostr::nips::nip44::Version::V2,
    )
    .unwrap();
    let request = |expiration: u64| {
        EventBuilder::new(Kind::WalletConnectRequest, body.clone())
            .tag(Tag::public_key(uri.public_key))
            .tag(Tag::custom("encryption", ["nip44_v2"]))
            .tag(Tag::expiration(Timestamp::from_secs(expiration)))
            .finalize(&keys)
            .unwrap()
    };
    // Already expired: ignored, as NIP-47 says.
    let past = request(Timestamp::now().as_secs() - 5);
    assert!(
        ask_within(&relay.url, &uri, past, 2 * SECOND)
            .await
            .is_none()
    );
    // The same live request twice: one answer.
    let live = request(Timestamp::now().as_secs() + 60);
    let mut raw = common::RawRelay::connect(&relay.url).await;
    raw.subscribe("a", json!({"kinds": [23195], "#e": [live.id.to_hex()]}))
        .await;
    raw.publish(&live).await;
    raw.publish(&live).await;
    assert_eq!(raw.first_events("a", 1, 10 * SECOND).await.len(), 1);
    assert!(raw.events("a", SECOND).await.is_empty(), "a second answer");
}

/// Publishes an info event for a wallet nobody runs.
async fn announce(relay: &str, content: &str, tags: Vec<Tag>) -> Keys {
    let wallet = Keys::generate();
    let info = EventBuilder::new(Kind::WalletConnectInfo, content)
        .tags(tags)
        .finalize(&wallet)
        .unwrap();
    let mut raw = common::RawRelay::connect(relay).await;
    raw.publish(&info).await;
    wallet
}

#[tokio::test]
async fn the_info_event_decides_scheme_and_methods() {
    let relay = common::relay().await;
    let client = |wallet: &Keys| {
        NwcBackend::from_uri(&common::uri_with_random_secret(
            &wallet.public_key().to_hex(),
            &relay.url,
            "&timeout=10s",
        ))
        .unwrap()
    };
    // An older wallet: no encryption tag → NIP-04.
    let w = announce(&relay.url, "pay_invoice make_invoice", vec![]).await;
    assert_eq!(client(&w).encryption().await.unwrap(), Encryption::Nip04);
    // A NIP-44-only wallet.
    let w = announce(
        &relay.url,
        "pay_invoice",
        vec![Tag::custom("encryption", ["nip44_v2"])],
    )
    .await;
    let c = client(&w);
    assert_eq!(c.encryption().await.unwrap(), Encryption::Nip44V2);
    // It does not list lookup_invoice: payment lookups are unsupported, at once.
    let started = Instant::now();
    let e = c
        .payment(&PaymentHash::from_bytes([9; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("lookup_invoice"), "{e}");
    assert!(
        started.elapsed() < 5 * SECOND,
        "no round trip to a silent wallet (that would wait out the 10 s timeout)"
    );
    // A scheme from the future only.
    let w = announce(
        &relay.url,
        "pay_invoice",
        vec![Tag::custom("encryption", ["nip99"])],
    )
    .await;
    let e = client(&w).encryption().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

#[tokio::test]
async fn wss_with_a_pinned_certificate() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = common::serve(&relay.url, node.wallet("shop"), ServiceOptions::default()).await;
    let (front, pem) = common::tls_front(&relay.url).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("relay.pem");
    std::fs::write(&cert, pem).unwrap();
    let wallet = NwcBackend::from_uri(shop.connection_uri())
        .unwrap()
        .wallet_pubkey();
    let secret = shop
        .connection_uri()
        .split("secret=")
        .nth(1)
        .unwrap()
        .to_owned();
    let wss = format!("wss://127.0.0.1:{}", front.port());
    let uri = |extra: String| {
        format!("nostr+walletconnect://{wallet}?relay={wss}&secret={secret}&timeout=5s{extra}")
    };
    // Pinned: works end to end.
    let c = NwcBackend::from_uri(&uri(format!("&cert={}", cert.display()))).unwrap();
    let inv = c
        .create_invoice(InvoiceRequest::new(Msat::from_sat(2), "over TLS"))
        .await
        .unwrap();
    assert!(inv.bolt11.starts_with("lnbcrt"));
    // The web PKI does not know a self-signed certificate: a failed handshake is Unreachable.
    let c = NwcBackend::from_uri(&uri(String::new())).unwrap();
    let e = c
        .create_invoice(InvoiceRequest::new(Msat::from_sat(2), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unreachable, "{e}");
}

#[tokio::test]
async fn the_first_reachable_relay_is_used() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = common::serve(&relay.url, node.wallet("shop"), ServiceOptions::default()).await;
    let good = NwcBackend::from_uri(shop.connection_uri()).unwrap();
    let secret = shop.connection_uri().split("secret=").nth(1).unwrap();
    let c = NwcBackend::from_uri(&format!(
        "nostr+walletconnect://{}?relay=ws://{dead_addr}&relay={}&secret={secret}",
        good.wallet_pubkey(),
        relay.url
    ))
    .unwrap();
    assert_eq!(c.relays().len(), 2);
    c.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "second relay"))
        .await
        .unwrap();
}

#[tokio::test]
async fn both_ends_reconnect_after_the_relay_restarts() {
    let first = common::relay().await;
    let port: u16 = first
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = common::serve(&first.url, node.wallet("shop"), ServiceOptions::default()).await;
    let c = NwcBackend::from_uri(&format!("{}&timeout=2s", shop.connection_uri())).unwrap();
    c.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "before"))
        .await
        .unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _second = common::relay_on(port).await;
    // The service reconnects with backoff and announces itself again; the client reopens its
    // connection on the next call. Until then, failures are transient.
    let deadline = Instant::now() + 15 * SECOND;
    loop {
        match c
            .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "after"))
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(Instant::now() < deadline, "no recovery: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[tokio::test]
async fn fixed_keys_give_a_stable_connection_string_and_secrets_stay_hidden() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let wallet_secret = Keys::generate().secret_key().to_secret_hex();
    let client_secret = Keys::generate().secret_key().to_secret_hex();
    let keys = ServiceKeys::from_hex(&wallet_secret, &client_secret).unwrap();
    let service =
        l402_nwc::NwcWalletService::new(&relay.url, node.wallet("shop"), Some(keys.clone()))
            .unwrap();
    let again =
        l402_nwc::NwcWalletService::new(&relay.url, node.wallet("shop"), Some(keys)).unwrap();
    assert_eq!(service.connection_uri(), again.connection_uri());
    assert!(service.connection_uri().contains(&client_secret));
    let shown = format!("{service:?} {:?}", service.keys());
    assert!(!shown.contains(&client_secret), "{shown}");
    assert!(!shown.contains(&wallet_secret), "{shown}");
    let handle = service.spawn();
    handle.ready(30 * SECOND).await.unwrap();
    assert!(!format!("{handle:?}").contains(&client_secret));
    // A client error never shows the secret either.
    let c = NwcBackend::from_uri(&format!("{}&timeout=1s", handle.connection_uri())).unwrap();
    handle.shutdown().await;
    let e = c
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "after shutdown"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let shown = format!("{e} {e:?} {c:?}");
    assert!(!shown.contains(&client_secret), "{shown}");
    // Bad fixed keys are refused without echoing them.
    let e = ServiceKeys::from_hex("zz", &client_secret).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(!e.to_string().contains("zz"));
}

#[tokio::test]
async fn amounts_are_msat_and_a_rounding_wallet_is_refused() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    // Exact: sub-satoshi amounts travel as msat, unchanged.
    let exact = common::serve(&relay.url, node.wallet("exact"), ServiceOptions::default()).await;
    let c = NwcBackend::from_uri(exact.connection_uri()).unwrap();
    let inv = c
        .create_invoice(InvoiceRequest::new(Msat::new(1_500), "a sat and a half"))
        .await
        .unwrap();
    let decoded: lightning_invoice::Bolt11Invoice = inv.bolt11.parse().unwrap();
    assert_eq!(decoded.amount_milli_satoshis(), Some(1_500));
    // A wallet that rounds to whole satoshis would change the price: refused.
    let mut quirky = common::Quirky::new(node.wallet("rounding"));
    quirky.round_to_sat = true;
    let rounding = common::serve(&relay.url, quirky, ServiceOptions::default()).await;
    let c = NwcBackend::from_uri(rounding.connection_uri()).unwrap();
    let e = c
        .create_invoice(InvoiceRequest::new(Msat::new(1_500), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("1000 msat"), "{e}");
    // Whole satoshis are fine there.
    c.create_invoice(InvoiceRequest::new(Msat::from_sat(2), "x"))
        .await
        .unwrap();
}

#[tokio::test]
async fn backend_failures_cross_the_wire_with_the_right_kind() {
    let relay = common::relay().await;
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let quirky = common::Quirky::new(node.wallet("q"));
    let fail = quirky.fail.clone();
    let service = common::serve(&relay.url, quirky, ServiceOptions::default()).await;
    let c = NwcBackend::from_uri(service.connection_uri()).unwrap();
    // backend kind -> NIP-47 code -> the kind the client reports
    for (backend, client) in [
        (ErrorKind::Unavailable, ErrorKind::Unavailable), // INTERNAL
        (ErrorKind::Timeout, ErrorKind::Unavailable),     // INTERNAL
        (
            ErrorKind::InsufficientBalance,
            ErrorKind::InsufficientBalance,
        ),
        (ErrorKind::Unauthorized, ErrorKind::Unauthorized),
        (ErrorKind::InvalidRequest, ErrorKind::InvalidRequest), // OTHER
        (ErrorKind::Unsupported, ErrorKind::Unsupported),       // NOT_IMPLEMENTED
    ] {
        *fail.lock().unwrap() = Some(backend);
        let e = c
            .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), client, "{backend:?}: {e}");
        assert_eq!(e.is_transient(), client.is_transient());
    }
    // pay_invoice: the payment failures.
    *fail.lock().unwrap() = None;
    let other = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let foreign = other
        .wallet("elsewhere")
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "no route"))
        .await
        .unwrap();
    let e = c
        .pay(PayRequest::new(foreign.bolt11, Msat::from_sat(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PaymentFailed, "{e}");
    assert!(e.to_string().contains("PAYMENT_FAILED"), "{e}");
    assert!(e.to_string().contains("no route"), "{e}");
    // A lookup the backend cannot serve reaches the client as a transient error, not NotFound.
    *fail.lock().unwrap() = Some(ErrorKind::Unavailable);
    let e = c
        .payment(&PaymentHash::from_bytes([4; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}
