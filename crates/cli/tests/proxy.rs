//! `l402 proxy` end to end: the real binary on loopback, real upstreams, the dev node.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use l402::{Credential, Scheme};
use support::*;

fn config(devnet: &Devnet, up: std::net::SocketAddr, extra_services: &str) -> String {
    format!(
        r#"
listen: 127.0.0.1:0
lightning: {lightning}
store: "sqlite:l402.db"
metrics: {{ listen: 127.0.0.1:0, admin_token: "admintoken-0123456789" }}
services:
  - name: weather
    path: ^/weather
    upstream: http://{up}
    price_sat: 10
    capabilities: [forecast]
    headers: {{ X-Injected: "from-proxy" }}
    free_paths: [^/weather/health$]
    no_challenge_paths: [^/weather/stream]
    capability_paths: [{{ path: ^/weather/history, capability: history }}]
    prices: [{{ path: ^/weather/premium, price_sat: 50 }}]
  - name: files
    path: ^/(big|upload|sse|ws)
    upstream: http://{up}
    price_sat: 1
{extra_services}
"#,
        lightning = devnet.shop_uri(),
    )
}

#[tokio::test]
async fn pay_then_pass_with_token_headers_upstream() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&config(&devnet, up, ""));
    let client = http();

    let r = client
        .get(proxy.url("/weather/today?city=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert_eq!(r.headers().get_all("www-authenticate").iter().count(), 2);
    assert_eq!(r.text().await.unwrap(), "payment required\n");

    let auth = buy(&devnet, &client, &proxy.url("/weather/today")).await;
    let r = client
        .get(proxy.url("/weather/today?city=x"))
        .header("authorization", &auth)
        .header("x-l402-token-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: serde_json::Value = r.json().await.unwrap();
    assert_eq!(echo["path"], "/weather/today");
    assert_eq!(echo["query"], "city=x");
    assert_eq!(echo["x-l402-service"], "weather");
    assert_eq!(echo["x-l402-tier"], "0");
    assert_eq!(echo["x-l402-capabilities"], "forecast");
    assert_eq!(echo["x-injected"], "from-proxy");
    assert_ne!(echo["x-l402-token-id"], "forged");
    assert_eq!(echo["x-l402-token-id"].as_str().unwrap().len(), 64);
    assert_eq!(echo["x-forwarded-for"], "127.0.0.1");
    assert_eq!(echo["host"], up.to_string(), "the upstream's own address");
    // The credential goes on to the upstream as it came (the proxy's own HTTP/1.1 lane holds
    // it apart from the other fields).
    assert_eq!(echo["authorization"], auth.as_str());
}

/// What the echo upstream saw for a GET of `url`.
async fn echo_of(client: &reqwest::Client, url: &str) -> serde_json::Value {
    echo_with(client, url, &[]).await
}

/// What the echo upstream saw for a GET of `url` with these header fields.
async fn echo_with(
    client: &reqwest::Client,
    url: &str,
    fields: &[(&str, &str)],
) -> serde_json::Value {
    let mut request = client.get(url);
    for (name, value) in fields {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_configured_host_header_reaches_the_upstream() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let extra = format!(
        r#"  - name: vhost
    path: ^/vhost
    upstream: http://{up}
    auth: off
    headers: {{ Host: "api.internal", Authorization: "Bearer upstream-key" }}
"#
    );
    let proxy = start_proxy(&config(&devnet, up, &extra));
    let client = http();
    // The service's own `Authorization` replaces the client's.
    let fields = [("authorization", "Bearer client-key")];
    let echo = echo_with(&client, &proxy.url("/vhost/x"), &fields).await;
    assert_eq!(echo["authorization"], "Bearer upstream-key");
    assert_eq!(echo["host"], "api.internal");
    assert!(
        echo["x-forwarded-host"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{echo}"
    );
    // A service without one sends the upstream's address (a free path: no payment needed).
    let echo = echo_of(&client, &proxy.url("/weather/health")).await;
    assert_eq!(echo["host"], up.to_string());
}

#[tokio::test]
async fn every_refusal_has_its_status() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&config(&devnet, up, ""));
    let client = http();
    let get = |path: &str, auth: Option<&str>| {
        let mut r = client.get(proxy.url(path));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };

    // Free paths pass without payment; no service → 404.
    assert_eq!(get("/weather/health", None).await.unwrap().status(), 200);
    assert_eq!(get("/nothing-here", None).await.unwrap().status(), 404);
    // No-challenge paths answer 401 without minting.
    let r = get("/weather/stream", None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_none());

    let auth = buy(&devnet, &client, &proxy.url("/weather/today")).await;
    // A capability the token lacks: 401.
    let r = get("/weather/history", Some(&auth)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("capability \"history\""));
    // Another service's path: 401 (wrong service).
    let r = get("/big", Some(&auth)).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not valid for service \"files\"")
    );
    // A bad preimage: 401.
    let c = {
        let r = get("/weather/today", None).await.unwrap();
        challenge_of(r.headers())
    };
    let bad = Credential::new(c.macaroon().clone(), l402::Preimage::random())
        .to_authorization(Scheme::L402);
    assert_eq!(
        get("/weather/today", Some(&bad)).await.unwrap().status(),
        401
    );
    // Per-path price.
    let r = get("/weather/premium", None).await.unwrap();
    let c = challenge_of(r.headers());
    let inv: lightning_invoice::Bolt11Invoice = c.invoice().parse().unwrap();
    assert_eq!(inv.amount_milli_satoshis(), Some(50_000));
}

#[tokio::test]
async fn narrowed_tokens_and_revocation() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&config(&devnet, up, ""));
    let client = http();
    let auth = buy(&devnet, &client, &proxy.url("/weather/today")).await;
    let cred = Credential::parse_authorization(&auth).unwrap().unwrap();

    // Narrowed by the holder to expire in the past: refused; narrowed to the future: accepted.
    let past = cred
        .macaroon()
        .with_first_party_caveat("weather_valid_until=1000");
    let narrowed = Credential::new(past, cred.preimage().clone()).to_authorization(Scheme::L402);
    let r = client
        .get(proxy.url("/weather/a"))
        .header("authorization", &narrowed)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("expired"));
    let future = cred
        .macaroon()
        .with_first_party_caveat("weather_valid_until=99999999999");
    let ok = Credential::new(future, cred.preimage().clone()).to_authorization(Scheme::L402);
    assert_eq!(
        client
            .get(proxy.url("/weather/a"))
            .header("authorization", &ok)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Widening an attenuated capability list: refused.
    let widened = cred
        .macaroon()
        .with_first_party_caveat("weather_capabilities=forecast,history");
    let w = Credential::new(widened, cred.preimage().clone()).to_authorization(Scheme::L402);
    let r = client
        .get(proxy.url("/weather/history"))
        .header("authorization", &w)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Revocation through the admin API.
    let token_id = l402::Identifier::decode(cred.macaroon().identifier()).unwrap();
    let token_id = token_id.token_id().to_hex();
    assert_eq!(
        client
            .get(proxy.url("/weather/a"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = client
        .post(proxy.ops_url(&format!("/admin/tokens/{token_id}/revoke")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the admin API needs its token");
    let r = client
        .post(proxy.ops_url(&format!("/admin/tokens/{token_id}/revoke")))
        .bearer_auth("admintoken-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(proxy.url("/weather/a"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("unknown or revoked"));
    let t = admin_json_when(
        &client,
        &proxy.ops_url(&format!("/admin/tokens/{token_id}")),
        "admintoken-0123456789",
        |t| t["paid_at"].is_i64(),
    )
    .await;
    assert!(t["revoked_at"].is_i64());
    assert!(t["paid_at"].is_i64());
}

#[tokio::test]
async fn streaming_both_ways_sse_and_websocket() {
    streaming(&[]).await;
}

/// The same, with every connection parked between requests (see `l402_proxy::park`): bodies
/// both ways, streamed events and upgrades must not be cut by it.
#[tokio::test]
async fn streaming_both_ways_with_connections_parked_between_requests() {
    streaming(&[("L402_PARK_IDLE_ABOVE", "0")]).await;
}

/// The same on one worker thread, where the proxy runs Tokio's single-threaded scheduler (as
/// it does pinned to one CPU): streams both ways and upgrades on the same thread as the rest.
#[tokio::test]
async fn streaming_both_ways_on_one_worker_thread() {
    streaming(&[("TOKIO_WORKER_THREADS", "1")]).await;
}

async fn streaming(env: &[(&str, &str)]) {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy_env(&config(&devnet, up, ""), env);
    if env.contains(&("TOKIO_WORKER_THREADS", "1")) {
        assert_single_threaded_runtime(proxy.pid());
    }
    let client = http();
    let auth = buy(&devnet, &client, &proxy.url("/big")).await;

    // 64 MiB down, counted as it streams.
    let r = client
        .get(proxy.url("/big?mb=64"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut n = 0usize;
    let mut s = r.bytes_stream();
    while let Some(chunk) = s.next().await {
        n += chunk.unwrap().len();
    }
    assert_eq!(n, 64 * 1024 * 1024);

    // 32 MiB up, streamed from a generator.
    let body = reqwest::Body::wrap_stream(
        futures_util::stream::iter(0..512)
            .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 64 * 1024]))),
    );
    let r = client
        .post(proxy.url("/upload"))
        .header("authorization", &auth)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), (32 * 1024 * 1024).to_string());

    // Server-sent events arrive one by one, not buffered.
    let started = std::time::Instant::now();
    let r = client
        .get(proxy.url("/sse"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    let mut s = r.bytes_stream();
    let first = s.next().await.unwrap().unwrap();
    let first_after = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("tick 0"));
    let mut rest = String::new();
    while let Some(c) = s.next().await {
        rest.push_str(&String::from_utf8_lossy(&c.unwrap()));
    }
    assert!(rest.contains("tick 4"));
    assert!(started.elapsed() > first_after, "events are streamed");

    // WebSocket through the proxy.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws", proxy.addr),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        "hello".into(),
    ))
    .await
    .unwrap();
    let msg = ws.next().await.unwrap().unwrap();
    assert_eq!(msg.into_text().unwrap().as_str(), "echo: hello");
    ws.close(None).await.unwrap();

    // The upstream ends a WebSocket: the client gets the close frame, then the end of the
    // connection (the proxy passes the upstream's FIN on instead of keeping the socket open).
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws-bye", proxy.addr),
    )
    .unwrap();
    req.headers_mut()
        .insert("authorization", auth.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        let mut got_close = false;
        while let Some(m) = ws.next().await {
            match m {
                Ok(tokio_tungstenite::tungstenite::Message::Close(_)) => got_close = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got_close
    })
    .await;
    assert_eq!(ended, Ok(true), "close frame, then the connection ends");

    // Without a credential the upgrade is refused with a challenge.
    let req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/ws", proxy.addr),
    )
    .unwrap();
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 402),
        other => panic!("expected a 402, got {other:?}"),
    }
}

#[tokio::test]
async fn grpc_unary_and_streaming_with_trailers() {
    grpc(&[]).await;
}

/// The same on Tokio's single-threaded scheduler (one worker thread).
#[tokio::test]
async fn grpc_unary_and_streaming_on_one_worker_thread() {
    grpc(&[("TOKIO_WORKER_THREADS", "1")]).await;
}

/// No thread of the process `pid` is a Tokio worker: the single-threaded scheduler runs every
/// task on the thread that started the runtime (Linux: thread names from `/proc`).
fn assert_single_threaded_runtime(pid: u32) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return; // not Linux
    };
    let names: Vec<String> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    assert!(!names.is_empty());
    assert!(
        !names.iter().any(|n| n.starts_with("tokio-rt-worker")),
        "one worker thread should mean Tokio's single-threaded scheduler; threads: {names:?}"
    );
}

async fn grpc(env: &[(&str, &str)]) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let devnet = Devnet::start().await;
    let up = upstream().await;
    let (grpc, reporter) = grpc_upstream().await;
    let proxy = start_proxy_env(
        &config(
            &devnet,
            up,
            &format!(
                "  - name: grpc\n    path: ^/grpc\\.health\n    upstream: h2c://{grpc}\n    price_sat: 3\n"
            ),
        ),
        env,
    );
    if env.contains(&("TOKIO_WORKER_THREADS", "1")) {
        assert_single_threaded_runtime(proxy.pid());
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", proxy.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);

    // Unpaid: trailers-only status 13 "payment required" with the challenge in the metadata.
    let status = client
        .check(HealthCheckRequest {
            service: "weather".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Internal);
    assert_eq!(status.message(), "payment required");
    let values: Vec<&str> = status
        .metadata()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let c = l402::Challenge::preferred(&l402::Challenge::parse_all(values).unwrap())
        .unwrap()
        .clone();
    let preimage = devnet.pay(c.invoice()).await;
    // Aperture's gRPC client form: hex macaroon with a preimage caveat in `macaroon` metadata.
    let cred = Credential::new(c.macaroon().clone(), preimage);
    let hex = cred.to_hex_header();

    let mut req = tonic::Request::new(HealthCheckRequest {
        service: "weather".into(),
    });
    req.metadata_mut().insert("macaroon", hex.parse().unwrap());
    let resp = client.check(req).await.unwrap();
    assert_eq!(
        resp.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Server streaming: updates flow through, and the stream ends with the upstream's trailers.
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: "weather".into(),
    });
    req.metadata_mut().insert(
        "authorization",
        cred.to_authorization(Scheme::L402).parse().unwrap(),
    );
    let mut stream = client.watch(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        first.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    reporter
        .set_service_status("weather", tonic_health::ServingStatus::NotServing)
        .await;
    let second = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        second.status,
        tonic_health::pb::health_check_response::ServingStatus::NotServing as i32
    );

    // An unknown service: the upstream's own gRPC error status comes through its trailers.
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: "nope".into(),
    });
    req.metadata_mut().insert("macaroon", hex.parse().unwrap());
    let err = client.check(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

/// Keep-alive as a client sees it, with the proxy parking the connection after every response:
/// requests one after another on one socket, two pipelined in one write, a head split over
/// several writes, a request with a body between them; every response complete and in order.
#[tokio::test]
async fn one_connection_many_requests_while_parking() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy_parking(&config(&devnet, up, ""));
    let auth = buy(&devnet, &http(), &proxy.url("/upload")).await;
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");

    // Reads responses until `n` complete ones are in; returns their status lines and bodies.
    async fn read_responses(s: &mut tokio::net::TcpStream, n: usize) -> Vec<(u16, String)> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            // Parse as many complete responses as the buffer holds (Content-Length bodies).
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().unwrap())
                    .expect("a content-length");
                if buf.len() < end + 4 + len {
                    break;
                }
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                buf.drain(..end + 4 + len);
                out.push((status, body));
            }
            if out.len() >= n {
                assert!(buf.is_empty(), "nothing after the last response");
                return out;
            }
            let k = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
                .await
                .expect("a response within 10 s")
                .unwrap();
            assert!(
                k > 0,
                "the proxy closed the connection after {} responses",
                out.len()
            );
            buf.extend_from_slice(&chunk[..k]);
        }
    }

    for _ in 0..3 {
        s.write_all(get("/weather/health").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_responses(&mut s, 1).await[0].0, 200);
        // Give the proxy time to park before the next request.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Two pipelined in one write: a free one, then a priced one.
    s.write_all(format!("{}{}", get("/weather/health"), get("/weather/today")).as_bytes())
        .await
        .unwrap();
    let r = read_responses(&mut s, 2).await;
    assert_eq!((r[0].0, r[1].0), (200, 402));
    // A head in three pieces, with pauses in which the proxy must not park.
    let head = get("/weather/health");
    for piece in [&head[..5], &head[5..20], &head[20..]] {
        s.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(read_responses(&mut s, 1).await[0].0, 200);
    // A body sent after a pause (read by the upstream, so the connection stays reusable),
    // then a plain request again.
    s.write_all(
        format!(
            "POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 5\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.write_all(b"hello").await.unwrap();
    assert_eq!(read_responses(&mut s, 1).await[0], (200, "5".to_string()));
    s.write_all(get("/weather/health").as_bytes())
        .await
        .unwrap();
    assert_eq!(read_responses(&mut s, 1).await[0].0, 200);

    // An upgrade refused with a 402 (the usual first WebSocket request): the connection goes on.
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    assert_eq!(read_responses(&mut s, 1).await[0].0, 402);
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.write_all(get("/weather/health").as_bytes())
            .await
            .unwrap();
        assert_eq!(read_responses(&mut s, 1).await[0].0, 200);
    }
}

#[tokio::test]
async fn backend_down_means_503_never_402() {
    let up = upstream().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nlightning: devnode://{dead}/shop\nstore: sqlite:l402.db\nservices:\n  - name: weather\n    upstream: http://{up}\n"
    );
    let proxy = start_proxy(&yaml);
    let r = http().get(proxy.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert!(r.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn upstream_down_is_502() {
    let devnet = Devnet::start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:0\nlightning: {}\nservices:\n  - name: weather\n    upstream: http://{dead}\n    auth: off\n",
        devnet.shop_uri()
    );
    let proxy = start_proxy(&yaml);
    let r = http().get(proxy.url("/x")).send().await.unwrap();
    assert_eq!(r.status(), 502);
}
