//! Who the client is: the TCP peer, unless a trusted proxy says otherwise.
//!
//! * A PROXY protocol v2 header (from a load balancer, when enabled) replaces the TCP peer.
//! * If the peer is a trusted proxy, the one configured forwarding header (`X-Forwarded-For` by
//!   default, or `Forwarded`, RFC 7239 — never a fallback from one to the other, since proxies
//!   pass the header they do not write through untouched) is read from the right: each hop
//!   appended by a trusted proxy is believed, and the first address not in the trusted list is
//!   the client. Entries that do not parse stop the walk, so a client cannot inject an address
//!   by sending garbage.
//!
//! Both parsers are fuzzed (`fuzz/fuzz_targets/client_ip.rs` compiles this file on its own).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http::HeaderMap;
use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncReadExt};

fn trusted(ip: &IpAddr, nets: &[IpNet]) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

/// Parses one `Forwarded` `for=` value or one `X-Forwarded-For` entry.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    // "[2001:db8::1]" without a port.
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The hops listed by `Forwarded` (`for=` parameters), left to right; `None` if absent.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut hops = Vec::new();
    let mut any = false;
    for v in headers.get_all(http::header::FORWARDED) {
        any = true;
        let Ok(v) = v.to_str() else {
            hops.push(String::new());
            continue;
        };
        for element in v.split(',') {
            let node = element
                .split(';')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            hops.push(node);
        }
    }
    any.then_some(hops)
}

fn xff_hops(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| {
            v.to_str()
                .map(|s| {
                    s.split(',')
                        .map(|e| e.trim().to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_else(|_| vec![String::new()])
        })
        .collect()
}

/// Which header trusted proxies write the client's address into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardingHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, AWS, Cloudflare, Caddy).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

/// The client address for a request from `peer` with `headers`.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted_proxies: &[IpNet],
    header: ForwardingHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(&peer, trusted_proxies) {
        return peer;
    }
    let hops = match header {
        ForwardingHeader::XForwardedFor => xff_hops(headers),
        ForwardingHeader::Forwarded => forwarded_hops(headers).unwrap_or_default(),
    };
    let mut candidate = peer;
    for hop in hops.iter().rev() {
        if !trusted(&candidate, trusted_proxies) {
            break;
        }
        match parse_node(hop) {
            Some(ip) => candidate = ip.to_canonical(),
            None => break,
        }
    }
    candidate
}

/// The network a client address counts under for freebies and challenge limits (IPv4 /24 and
/// IPv6 /48 by default, as Aperture does).
pub fn client_net(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpNet {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let prefix = if ip.is_ipv4() { v4_prefix } else { v6_prefix };
    IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

// === PROXY protocol v2 ===

const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
const MAX_ADDR_BLOCK: usize = 1024;

/// What a PROXY v2 header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The connection is relayed for this client.
    Proxied(SocketAddr),
    /// The balancer's own connection (health check): keep the TCP peer.
    Local,
}

/// Reads a PROXY protocol v2 header from the start of a connection.
pub async fn read_proxy_header<R: AsyncRead + Unpin>(
    io: &mut R,
    timeout: Duration,
) -> Result<ProxyHeader, String> {
    tokio::time::timeout(timeout, read_proxy_header_inner(io))
        .await
        .map_err(|_| "no PROXY protocol header in time".to_string())?
}

async fn read_proxy_header_inner<R: AsyncRead + Unpin>(io: &mut R) -> Result<ProxyHeader, String> {
    let mut head = [0u8; 16];
    io.read_exact(&mut head)
        .await
        .map_err(|e| format!("reading the PROXY header: {e}"))?;
    let mut block = vec![0u8; proxy_block_len(&head)?];
    io.read_exact(&mut block)
        .await
        .map_err(|e| format!("reading the PROXY address block: {e}"))?;
    proxy_header(&head, &block)
}

/// The length of the address block that follows a PROXY v2 header's fixed 16 bytes, once
/// the signature, the version and the length limit are checked.
pub(crate) fn proxy_block_len(head: &[u8; 16]) -> Result<usize, String> {
    if head[..12] != SIGNATURE {
        return Err("the connection does not start with a PROXY protocol v2 header".into());
    }
    let version = head[12] >> 4;
    if version != 2 {
        return Err(format!(
            "PROXY protocol version {version} (only 2 is supported)"
        ));
    }
    let len = u16::from_be_bytes([head[14], head[15]]) as usize;
    if len > MAX_ADDR_BLOCK {
        return Err(format!(
            "PROXY header address block of {len} bytes is too long"
        ));
    }
    Ok(len)
}

/// What a PROXY v2 header says, from its fixed 16 bytes (checked by [`proxy_block_len`]) and
/// its address block.
pub(crate) fn proxy_header(head: &[u8; 16], block: &[u8]) -> Result<ProxyHeader, String> {
    match head[12] & 0x0f {
        0 => return Ok(ProxyHeader::Local),
        1 => {}
        c => return Err(format!("unknown PROXY command {c}")),
    }
    let len = block.len();
    match head[13] {
        // TCP or UDP over IPv4.
        0x11 | 0x12 if len >= 12 => {
            let ip = Ipv4Addr::new(block[0], block[1], block[2], block[3]);
            let port = u16::from_be_bytes([block[8], block[9]]);
            Ok(ProxyHeader::Proxied(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        // TCP or UDP over IPv6.
        0x21 | 0x22 if len >= 36 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&block[..16]);
            let port = u16::from_be_bytes([block[32], block[33]]);
            Ok(ProxyHeader::Proxied(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(a)),
                port,
            )))
        }
        // Unspecified or Unix sockets: no usable address.
        0x00 | 0x31 | 0x32 => Ok(ProxyHeader::Local),
        other => Err(format!(
            "PROXY header with family/protocol 0x{other:02x} and {len} address bytes"
        )),
    }
}

/// Builds a PROXY v2 header for `src` → `dst` (used by tests and load-balancer simulations).
pub fn encode_proxy_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.push(0x21);
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            out.push(0x11);
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&s.ip().octets());
            out.extend_from_slice(&d.ip().octets());
            out.extend_from_slice(&s.port().to_be_bytes());
            out.extend_from_slice(&d.port().to_be_bytes());
        }
        _ => {
            let v6 = |a: SocketAddr| match a {
                SocketAddr::V6(a) => *a.ip(),
                SocketAddr::V4(a) => a.ip().to_ipv6_mapped(),
            };
            out.push(0x21);
            out.extend_from_slice(&36u16.to_be_bytes());
            out.extend_from_slice(&v6(src).octets());
            out.extend_from_slice(&v6(dst).octets());
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(&dst.port().to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    const X: ForwardingHeader = ForwardingHeader::XForwardedFor;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client() {
        let headers = h(&[("x-forwarded-for", "1.1.1.1")]);
        assert_eq!(client_ip(ip("9.9.9.9"), &headers, &[], X), ip("9.9.9.9"));
    }

    #[test]
    fn walks_xff_through_trusted_hops_only() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // client 203.0.113.5 → proxy 10.0.0.2 → proxy 10.0.0.1 (peer)
        let headers = h(&[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted, X),
            ip("203.0.113.5")
        );
        // Several header lines count as one list.
        let headers = h(&[
            ("x-forwarded-for", "203.0.113.5"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted, X),
            ip("203.0.113.5")
        );
        // Garbage stops the walk at the last believable hop.
        let headers = h(&[("x-forwarded-for", "203.0.113.5, bogus, 10.0.0.2")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted, X),
            ip("10.0.0.2")
        );
        // No header: the peer.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted, X),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn only_the_configured_header_counts() {
        let trusted: Vec<IpNet> = vec!["10.0.0.1/32".parse().unwrap()];
        let headers = h(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        let f = ForwardingHeader::Forwarded;
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted, f),
            ip("2001:db8:cafe::17")
        );
        // A client-sent Forwarded header does not override what the proxy appended to XFF.
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers, &trusted, X),
            ip("1.2.3.4")
        );
        // With Forwarded configured but absent, the peer stays the client.
        let xff_only = h(&[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &xff_only, &trusted, f),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = h(&[("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &headers, &trusted, X),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_ip(ip("::ffff:9.9.9.9"), &headers, &[], X),
            ip("9.9.9.9")
        );
    }

    #[test]
    fn client_networks() {
        assert_eq!(
            client_net(ip("203.0.113.77"), 24, 48).to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            client_net(ip("2001:db8:1:2:3::1"), 24, 48).to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(
            client_net(ip("::ffff:203.0.113.77"), 24, 48).to_string(),
            "203.0.113.0/24"
        );
    }

    #[tokio::test]
    async fn proxy_v2_round_trip() {
        let src: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.1:443".parse().unwrap();
        let mut bytes = encode_proxy_header(src, dst);
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut r = &bytes[..];
        let got = read_proxy_header(&mut r, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got, ProxyHeader::Proxied(src));
        assert_eq!(r, b"GET / HTTP/1.1\r\n", "the request bytes are left");

        let src6: SocketAddr = "[2001:db8::9]:1234".parse().unwrap();
        let bytes = encode_proxy_header(src6, "[2001:db8::1]:443".parse().unwrap());
        let got = read_proxy_header(&mut &bytes[..], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(got, ProxyHeader::Proxied(src6));
    }

    #[tokio::test]
    async fn proxy_v2_refusals() {
        let err = read_proxy_header(
            &mut &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
        assert!(err.contains("does not start with"), "{err}");
        let mut bad =
            encode_proxy_header("1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap());
        bad[14] = 0xff;
        bad[15] = 0xff;
        let err = read_proxy_header(&mut &bad[..], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.contains("too long"), "{err}");
        let mut local =
            encode_proxy_header("1.2.3.4:5".parse().unwrap(), "5.6.7.8:9".parse().unwrap());
        local[12] = 0x20;
        assert_eq!(
            read_proxy_header(&mut &local[..], Duration::from_secs(1))
                .await
                .unwrap(),
            ProxyHeader::Local
        );
    }
}
