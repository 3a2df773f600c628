//! Who the client is (`crates/proxy/src/client_ip.rs`, compiled here on its own), from the
//! bytes a peer controls: a PROXY protocol v2 header, and forwarding header values.
//!
//! PROXY v2: the first 16 bytes as the fixed part, what follows as the address block. Nothing
//! may panic, a block over the limit is refused before it is read, and a client address it
//! finds must read back the same from the header this module writes for it.
//!
//! Forwarding: a flags byte (bit 0: `Forwarded` instead of `X-Forwarded-For`; bit 1: an
//! untrusted peer; bit 2: the peer as an IPv4-mapped IPv6 address), then header values, one
//! per line. The answer is always canonical (IPv4 never as mapped IPv6); an untrusted peer is
//! the client whatever its headers say; and the values sent as separate fields or joined by
//! commas into one give the same client (RFC 9110 §5.3: the two are equivalent).
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use ipnet::IpNet;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/proxy/src/client_ip.rs"]
#[allow(dead_code)]
mod client_ip;

use client_ip::{ForwardingHeader, ProxyHeader};

fuzz_target!(|data: &[u8]| {
    proxy_protocol(data);
    forwarding(data);
});

fn proxy_protocol(data: &[u8]) {
    let Some(head) = data.get(..16) else { return };
    let head: [u8; 16] = head.try_into().unwrap();
    let Ok(len) = client_ip::proxy_block_len(&head) else {
        return;
    };
    assert!(
        len <= 1024,
        "an address block of {len} bytes was let through"
    );
    let Some(block) = data.get(16..16 + len) else {
        return;
    };
    let Ok(ProxyHeader::Proxied(client)) = client_ip::proxy_header(&head, block) else {
        return;
    };
    let again = client_ip::encode_proxy_header(client, client);
    let head: [u8; 16] = again[..16].try_into().unwrap();
    let len = client_ip::proxy_block_len(&head).unwrap();
    assert_eq!(again.len(), 16 + len);
    assert_eq!(
        client_ip::proxy_header(&head, &again[16..]),
        Ok(ProxyHeader::Proxied(client))
    );
}

fn forwarding(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (kind, name) = if flags & 1 == 0 {
        (ForwardingHeader::XForwardedFor, "x-forwarded-for")
    } else {
        (ForwardingHeader::Forwarded, "forwarded")
    };
    let trusted: [IpNet; 2] = [
        "10.0.0.0/8".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ];
    let peer: IpAddr = match (flags & 2 != 0, flags & 4 != 0) {
        (false, false) => "10.0.0.1",
        (false, true) => "::ffff:10.0.0.1",
        (true, false) => "192.0.2.1",
        (true, true) => "::ffff:192.0.2.1",
    }
    .parse()
    .unwrap();
    let values: Vec<HeaderValue> = rest
        .split(|&b| b == b'\n')
        .take(8)
        .filter_map(|v| HeaderValue::from_bytes(v).ok())
        .collect();
    let mut separate = HeaderMap::new();
    for v in &values {
        separate.append(name, v.clone());
    }
    let client = client_ip::client_ip(peer, &separate, &trusted, kind);
    assert_eq!(client, client.to_canonical(), "not canonical");
    if flags & 2 != 0 {
        assert_eq!(
            client,
            peer.to_canonical(),
            "an untrusted peer's headers were believed"
        );
    }
    // Joining is only equivalent for values that are text (others count as one bad hop each).
    let texts: Option<Vec<&str>> = values.iter().map(|v| v.to_str().ok()).collect();
    if let Some(texts) = texts.filter(|t| !t.is_empty()) {
        let mut joined = HeaderMap::new();
        joined.insert(name, HeaderValue::from_str(&texts.join(",")).unwrap());
        assert_eq!(
            client_ip::client_ip(peer, &joined, &trusted, kind),
            client,
            "separate fields and one joined field disagree"
        );
    }
}
