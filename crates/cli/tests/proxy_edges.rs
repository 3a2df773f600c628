//! `l402 proxy` end to end: limits, freebies, client addresses, TLS, expiry and hot reload.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use l402_test::{caveat_value, unix_now};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn yaml(devnet: &Devnet, body: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nlightning: {}\nstore: sqlite:l402.db\n{body}",
        devnet.shop_uri()
    )
}

#[tokio::test]
async fn freebies_then_a_challenge_per_client_network() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            "network: {{ trusted_proxies: [127.0.0.1] }}\nservices:\n  - name: weather\n    upstream: http://{up}\n    auth: freebie 2\n"
        ),
    ));
    let client = http();
    let from = |ip: &'static str| client.get(proxy.url("/x")).header("x-forwarded-for", ip);
    assert_eq!(from("203.0.113.5").send().await.unwrap().status(), 200);
    assert_eq!(
        from("203.0.113.6").send().await.unwrap().status(),
        200,
        "same /24"
    );
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 402);
    assert_eq!(
        from("198.51.100.1").send().await.unwrap().status(),
        200,
        "another network"
    );
    // The upstream hears of the real client after the trusted hop.
    let echo: serde_json::Value = from("198.51.100.2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo["x-forwarded-for"], "198.51.100.2, 127.0.0.1");
}

#[tokio::test]
async fn untrusted_forwarding_headers_are_ignored_and_blocklist_uses_the_real_client() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    // No trusted proxies: X-Forwarded-For cannot buy extra freebies or dodge the blocklist.
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            "network: {{ blocklist: [198.51.100.0/24] }}\nservices:\n  - name: weather\n    upstream: http://{up}\n    auth: freebie 1\n"
        ),
    ));
    let client = http();
    let from = |ip: &'static str| client.get(proxy.url("/x")).header("x-forwarded-for", ip);
    assert_eq!(from("203.0.113.5").send().await.unwrap().status(), 200);
    assert_eq!(
        from("192.0.2.9").send().await.unwrap().status(),
        402,
        "still the same client"
    );
    assert_eq!(
        from("198.51.100.1").send().await.unwrap().status(),
        402,
        "spoofing does not block"
    );

    // With the proxy trusted, a blocklisted client behind it gets 403.
    let trusting = start_proxy(&yaml(
        &devnet,
        &format!(
            "network: {{ trusted_proxies: [127.0.0.0/8], blocklist: [198.51.100.0/24] }}\nservices:\n  - name: weather\n    upstream: http://{up}\n"
        ),
    ));
    let r = client
        .get(trusting.url("/x"))
        .header("x-forwarded-for", "198.51.100.77")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn only_the_configured_forwarding_header_is_believed() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            "network: {{ trusted_proxies: [127.0.0.1], forwarding_header: forwarded, blocklist: [198.51.100.0/24] }}\nservices:\n  - name: weather\n    upstream: http://{up}\n"
        ),
    ));
    let client = http();
    let status = |name: &'static str, value: &'static str| {
        let r = client.get(proxy.url("/x")).header(name, value).send();
        async move { r.await.unwrap().status() }
    };
    assert_eq!(status("forwarded", "for=198.51.100.7").await, 403);
    assert_eq!(
        status("forwarded", "for=\"[2001:db8::1]:443\";proto=https").await,
        402,
        "an allowed IPv6 client"
    );
    assert_eq!(
        status("x-forwarded-for", "198.51.100.7").await,
        402,
        "the header that is not configured is not believed"
    );
}

#[tokio::test]
async fn a_token_opens_only_what_its_price_covers() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            "services:\n  - name: api\n    upstream: http://{up}\n    price_sat: 1\n    prices:\n      - {{ path: ^/premium, price_sat: 50 }}\n"
        ),
    ));
    let client = http();
    let cheap = buy(&devnet, &client, &proxy.url("/basic")).await;
    let get = |path: &str, auth: &str| {
        client
            .get(proxy.url(path))
            .header("authorization", auth)
            .send()
    };
    assert_eq!(get("/basic", &cheap).await.unwrap().status(), 200);
    assert_eq!(get("/other", &cheap).await.unwrap().status(), 200);
    let r = get("/premium/report", &cheap).await.unwrap();
    assert_eq!(r.status(), 401, "a 1-sat token must not open a 50-sat path");
    let body = r.text().await.unwrap();
    assert!(body.contains("api_price_msat"), "{body}");

    // The 50-sat token opens both.
    let r = client
        .get(proxy.url("/premium/report"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let invoice = l402::bolt11::decode(challenge_of(r.headers()).invoice()).unwrap();
    assert_eq!(invoice.amount, Some(l402::Msat::from_sat(50)));
    let dear = pay_for(&devnet, r.headers()).await;
    assert_eq!(get("/premium/report", &dear).await.unwrap().status(), 200);
    assert_eq!(get("/basic", &dear).await.unwrap().status(), 200);

    // Paths that could mean another path to the upstream are refused before any pricing.
    for target in [
        "/basic/../premium/report",
        "/basic/./x",
        "//premium/report",
        "/%70remium/report",
        "/basic%2f..%2fpremium",
        "/basic\\..\\premium",
    ] {
        let mut conn = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let request = format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nAuthorization: {cheap}\r\nConnection: close\r\n\r\n"
        );
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).await.unwrap();
        assert!(
            response.starts_with("HTTP/1.1 400"),
            "{target}: {}",
            response.lines().next().unwrap_or("")
        );
        assert!(
            response.contains("ambiguous request path"),
            "{target}: {response}"
        );
    }
}

#[tokio::test]
async fn proxy_protocol_v2_sets_the_client_and_is_required() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            "network: {{ proxy_protocol: true }}\nservices:\n  - name: weather\n    upstream: http://{up}\n    auth: off\n"
        ),
    ));
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let header = l402_proxy::client_ip::encode_proxy_header(
        "198.51.100.7:40000".parse().unwrap(),
        proxy.addr,
    );
    s.write_all(&header).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("\"x-forwarded-for\":\"198.51.100.7\""),
        "{out}"
    );

    // A connection without the header is dropped.
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[tokio::test]
async fn rate_limits_per_token_per_ip_and_on_challenges() {
    // Rates per hour: no slow step in this test lasts long enough to refill a bucket.
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            r#"limits: {{ challenges_per_ip: 3/h }}
services:
  - name: weather
    path: ^/weather
    upstream: http://{up}
    rate_limits: [{{ per: token, rate: 2/h }}]
  - name: open
    path: ^/open
    upstream: http://{up}
    auth: off
    rate_limits: [{{ per: ip, rate: 2/h }}]
"#
        ),
    ));
    let client = http();
    let auth = buy(&devnet, &client, &proxy.url("/weather/a")).await;
    let get = |auth: &str| {
        client
            .get(proxy.url("/weather/a"))
            .header("authorization", auth.to_owned())
            .send()
    };
    assert_eq!(get(&auth).await.unwrap().status(), 200);
    assert_eq!(get(&auth).await.unwrap().status(), 200);
    let r = get(&auth).await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1800).contains(&wait), "{wait}");

    // Per IP on an open service.
    assert_eq!(
        client
            .get(proxy.url("/open"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(proxy.url("/open"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(proxy.url("/open"))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );

    // Challenges: one was minted by `buy`; two more, then 429 without an invoice.
    assert_eq!(
        client
            .get(proxy.url("/weather/b"))
            .send()
            .await
            .unwrap()
            .status(),
        402
    );
    assert_eq!(
        client
            .get(proxy.url("/weather/b"))
            .send()
            .await
            .unwrap()
            .status(),
        402
    );
    let r = client.get(proxy.url("/weather/b")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn tokens_expire_with_the_service_lifetime() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    // `weather` gives tokens an hour (no run is that slow), `brief` one second.
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!(
            r#"services:
  - name: weather
    path: ^/a
    upstream: http://{up}
    token_lifetime: 1h
  - name: brief
    path: ^/b
    upstream: http://{up}
    token_lifetime: 1s
"#
        ),
    ));
    let client = http();
    let get = |auth: String, path: &'static str| {
        let request = client.get(proxy.url(path)).header("authorization", auth);
        async move { request.send().await.unwrap() }
    };
    let hour = buy(&devnet, &client, &proxy.url("/a")).await;
    assert_eq!(get(hour.clone(), "/a").await.status(), 200);

    let before = unix_now();
    let second = buy(&devnet, &client, &proxy.url("/b")).await;
    let after = unix_now();
    let credential = l402::Credential::parse_authorization(&second)
        .unwrap()
        .unwrap();
    let until: i64 = caveat_value(credential.macaroon(), "brief_valid_until")
        .expect("a brief_valid_until caveat")
        .parse()
        .unwrap();
    assert!(
        (before + 1..=after + 1).contains(&until),
        "{before} {until} {after}"
    );
    while unix_now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = get(second, "/b").await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("expired"));
    // The hour-long token is still inside its lifetime.
    assert_eq!(get(hour, "/a").await.status(), 200);
}

#[tokio::test]
async fn tls_with_a_self_signed_certificate_speaks_http2() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let config = yaml(
        &devnet,
        &format!(
            "tls: {{ self_signed_dir: tls }}\nservices:\n  - name: weather\n    upstream: http://{up}\n    auth: off\n"
        ),
    );
    let proxy = start_proxy(&config);
    let client = http();
    let r = client.get(proxy.https_url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let echo: serde_json::Value = r.json().await.unwrap();
    assert_eq!(echo["path"], "/x");
    // Plain HTTP on the TLS port does not work.
    assert!(client.get(proxy.url("/x")).send().await.is_err());
    // The certificate is kept and reused.
    let cert = std::fs::read(proxy.dir.join("tls/tls.cert")).unwrap();
    let dir = proxy.dir.clone();
    drop(proxy);
    let again = start_proxy_in(&dir, "proxy.yaml", &config);
    assert_eq!(std::fs::read(again.dir.join("tls/tls.cert")).unwrap(), cert);
    assert_eq!(
        client
            .get(again.https_url("/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn hot_reload_under_load_never_fails_a_request() {
    let devnet = Arc::new(Devnet::start().await);
    let up = upstream().await;
    let service = |price: u64| {
        format!("services:\n  - name: weather\n    upstream: http://{up}\n    price_sat: {price}\n")
    };
    let proxy = start_proxy(&yaml(&devnet, &service(10)));
    let client = http();
    let auth = buy(&devnet, &client, &proxy.url("/a")).await;

    // Load: paid and unpaid requests, concurrently, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, url, auth, stop, ok, bad) = (
            client.clone(),
            proxy.url("/a"),
            auth.clone(),
            stop.clone(),
            ok.clone(),
            bad.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let mut r = client.get(&url);
                if w % 2 == 0 {
                    r = r.header("authorization", &auth);
                }
                match r.send().await {
                    Ok(resp) if resp.status() == 200 || resp.status() == 402 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(resp) => bad
                        .lock()
                        .unwrap()
                        .push(format!("status {}", resp.status())),
                    Err(e) => bad.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A broken file is refused; the running configuration stays.
    std::fs::write(
        &proxy.config_path,
        "services: [{name: weather, upstream: ftp://nope}]",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let price = |client: reqwest::Client, url: String| async move {
        let r = client.get(url).send().await.unwrap();
        let c = challenge_of(r.headers());
        let inv: lightning_invoice::Bolt11Invoice = c.invoice().parse().unwrap();
        inv.amount_milli_satoshis().unwrap()
    };
    assert_eq!(
        price(client.clone(), proxy.url("/a")).await,
        10_000,
        "bad config ignored"
    );

    // A good change applies (file watch), and SIGHUP also reloads (each within 15 s, however
    // slow the machine).
    let tmp = proxy.dir.join("next.yaml");
    std::fs::write(&tmp, yaml(&devnet, &service(20))).unwrap();
    std::fs::rename(&tmp, &proxy.config_path).unwrap();
    let mut seen = 0;
    for _ in 0..150 {
        seen = price(client.clone(), proxy.url("/a")).await;
        if seen == 20_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 20_000, "the new price applies");
    std::fs::write(&tmp, yaml(&devnet, &service(30))).unwrap();
    std::fs::rename(&tmp, &proxy.config_path).unwrap();
    let _ = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(format!("{}", proxy_pid(&proxy)))
        .status();
    for _ in 0..150 {
        seen = price(client.clone(), proxy.url("/a")).await;
        if seen == 30_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 30_000);

    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let failures: Vec<String> = bad.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "requests failed during reloads: {:?}",
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) > 50, "the load ran");
    // The paid token kept working across reloads (same store, same service name).
    assert_eq!(
        client
            .get(proxy.url("/a"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

fn proxy_pid(p: &Running) -> u32 {
    p.pid()
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!("services:\n  - name: files\n    upstream: http://{up}\n    auth: off\n"),
    ));
    let client = http();
    // A client that connected and said nothing does not hold the shutdown up for the whole
    // drain time (20 s): it is closed.
    let silent = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    // A slow response in flight (SSE: five events, 100 ms apart) completes across the shutdown.
    let r = client.get(proxy.url("/sse")).send().await.unwrap();
    let asked = std::time::Instant::now();
    proxy.terminate();
    let body = r.text().await.unwrap();
    assert!(body.contains("tick 4"), "{body}");
    let status = tokio::task::spawn_blocking(move || proxy.wait())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "shutdown waited {:?} for idle clients",
        asked.elapsed()
    );
    drop(silent);
}

/// Reads one response from `s`: its head (lower-cased) and its body, framed by its
/// `content-length` or chunked (decoded); `None` for the body of a `HEAD` response.
async fn read_response(
    s: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> (String, Vec<u8>) {
    async fn fill(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "the connection closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(s, buf).await;
    };
    let head = String::from_utf8(buf.drain(..end).collect())
        .unwrap()
        .to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|n| n.trim().parse::<usize>().unwrap());
    let mut body = Vec::new();
    if head_request {
        return (head, body);
    }
    if let Some(n) = length {
        while buf.len() < n {
            fill(s, buf).await;
        }
        body.extend(buf.drain(..n));
    } else {
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                fill(s, buf).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            while buf.len() < line_end + 2 + size + 2 {
                fill(s, buf).await;
            }
            body.extend_from_slice(&buf[line_end + 2..line_end + 2 + size]);
            buf.drain(..line_end + 2 + size + 2);
            if size == 0 {
                break;
            }
        }
    }
    (head, body)
}

#[tokio::test]
async fn one_connection_carries_plain_requests_bodies_pipelining_and_close() {
    // Plain requests are served by the proxy's own HTTP/1.1 lane, the rest by hyper from the
    // bytes that lane read: whichever serves it, one keep-alive connection must carry them all.
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&yaml(
        &devnet,
        &format!("services:\n  - name: weather\n    upstream: http://{up}\n    auth: off\n"),
    ));
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut buf = Vec::new();
    let json = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).unwrap();

    s.write_all(b"GET /a?x=1 HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response(&mut s, &mut buf, false).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    assert_eq!(json(&body)["path"], "/a");
    assert_eq!(json(&body)["query"], "x=1");

    // HEAD: a head, no body, and the connection goes on.
    s.write_all(b"HEAD /b HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response(&mut s, &mut buf, true).await;
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");

    // A streamed (chunked) upstream body, re-framed for the client.
    s.write_all(b"GET /big?mb=1 HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = read_response(&mut s, &mut buf, false).await;
    assert_eq!(body.len(), 1 << 20);
    assert!(
        body.chunks(64 * 1024)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == (i % 251) as u8))
    );

    // A request with a body (hyper's), then a plain one on the same connection.
    s.write_all(b"POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let (_, body) = read_response(&mut s, &mut buf, false).await;
    assert_eq!(body, b"5");
    s.write_all(b"GET /c HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = read_response(&mut s, &mut buf, false).await;
    assert_eq!(json(&body)["path"], "/c");

    // Two requests in one write, answered in order.
    s.write_all(b"GET /d HTTP/1.1\r\nHost: shop\r\n\r\nGET /e HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let (_, d) = read_response(&mut s, &mut buf, false).await;
    let (_, e) = read_response(&mut s, &mut buf, false).await;
    assert_eq!(
        (json(&d)["path"].clone(), json(&e)["path"].clone()),
        ("/d".into(), "/e".into())
    );

    // `Connection: close`: answered, said so, and closed.
    s.write_all(b"GET /f HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response(&mut s, &mut buf, false).await;
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert_eq!(json(&body)["path"], "/f");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("closed")
        .unwrap();
    assert!(rest.is_empty() && buf.is_empty());

    // A fresh connection: the plain lane again, from the first request.
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET /g HTTP/1.1\r\nHost: shop\r\n\r\n")
        .await
        .unwrap();
    let (_, body) = read_response(&mut s, &mut buf, false).await;
    assert_eq!(json(&body)["path"], "/g");
}
