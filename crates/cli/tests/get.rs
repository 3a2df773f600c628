//! `l402 get`, `l402 tokens`, `l402 spend` and `l402 demo`, run as a user would: against our
//! proxy with the dev node and with a real LNbits, through a crash between paying and recording,
//! and over gRPC with the client layer.

mod support;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use axum::extract::{Request, State};
use l402::{InvoicePayer, Msat};
use serde_json::Value;
use support::*;
use tower::ServiceExt;

fn l402(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(args)
        .output()
        .unwrap()
}

/// `l402 get URL --wallet WALLET --data-dir HOME EXTRA…`
fn get(url: &str, wallet: &str, home: &str, extra: &[&str]) -> Output {
    let mut args = vec!["get", url, "--wallet", wallet, "--data-dir", home];
    args.extend_from_slice(extra);
    l402(&args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn proxy_yaml(lightning: &str, up: std::net::SocketAddr) -> String {
    format!(
        "listen: 127.0.0.1:0\nlightning: \"{lightning}\"\nstore: sqlite:l402.db\nmetrics: {{ listen: 127.0.0.1:0, admin_token: adm-0123456789abcdef }}\nservices:\n  - name: weather\n    path: ^/weather\n    upstream: http://{up}\n    price_sat: 21\n  - name: big\n    path: ^/big\n    upstream: http://{up}\n    price_sat: 2000\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pays_reuses_and_reports() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&proxy_yaml(&devnet.shop_uri(), up));
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();
    let wallet = format!("devnode://{}/alice", devnet.addr);
    let url = proxy.url("/weather/today");
    let before = devnet.node.wallet("alice").balance().await.unwrap();

    // --no-pay shows the price and pays nothing.
    let o = l402(&["get", "--no-pay", "--json", &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], 402);
    assert_eq!(v["price_msat"], 21000);
    assert_eq!(v["network"], "bcrt");

    // The body goes to stdout, the steps to stderr with -v.
    let o = l402(&["get", &url, "--wallet", &wallet, "--data-dir", home, "-v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let body: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(body["path"], "/weather/today");
    let err = stderr(&o);
    for needle in [
        "402 Payment Required",
        "paying 21000 msat",
        "paid",
        "retrying with the credential",
        "< 200",
    ] {
        assert!(err.contains(needle), "-v output lacks {needle:?}: {err}");
    }

    // --json: one object; the token is reused, nothing paid.
    let o = get(&url, &wallet, home, &["--json", "-H", "X-Test: 1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["amount_paid_msat"], 0);
    assert_eq!(v["token_reused"], true);
    assert!(v["body"].as_str().unwrap().contains("/weather/today"));
    assert_eq!(
        devnet.node.wallet("alice").balance().await.unwrap(),
        Msat::new(before.as_u64() - 21_000)
    );

    // -o writes a file; a download over the price limit is refused before paying (exit 10).
    let out = std::path::Path::new(home).join("big.bin");
    let o = get(
        &proxy.url("/big?mb=1"),
        &wallet,
        home,
        &["-o", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exceeds the limit of 1000000 msat"),
        "{}",
        stderr(&o)
    );
    let o = get(
        &proxy.url("/big?mb=2"),
        &wallet,
        home,
        &["-o", out.to_str().unwrap(), "--max-cost", "2000"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 2 * 1024 * 1024);

    // tokens and spend.
    let o = l402(&["tokens", "list", "--json", "--data-dir", home]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let hash = list[0]["payment_hash"].as_str().unwrap().to_owned();
    let o = l402(&["spend", "--json", "--data-dir", home]);
    let spend: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(spend["payments"], 2);
    assert_eq!(spend["total_msat"], 2_021_000);
    let o = l402(&["tokens", "show", &hash, "--json", "--data-dir", home]);
    assert!(serde_json::from_str::<Value>(&stdout(&o)).unwrap()["macaroon"].is_string());
    assert!(
        l402(&["tokens", "rm", &hash, "--data-dir", home])
            .status
            .success()
    );
    let again = l402(&["tokens", "rm", &hash, "--data-dir", home]);
    assert_eq!(again.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_name_what_went_wrong() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&proxy_yaml(&devnet.shop_uri(), up));
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();
    let wallet = format!("devnode://{}/alice", devnet.addr);
    let url = proxy.url("/weather/x");

    // Network: nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = get(&format!("http://{closed}/x"), &wallet, home, &[]);
    assert_eq!(o.status.code(), Some(13), "{}", stderr(&o));
    // Challenge refused: the dev node's regtest invoice is not for a mainnet wallet.
    let o = get(&url, &wallet, home, &["--network", "bitcoin"]);
    assert_eq!(o.status.code(), Some(14), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("this wallet is on bitcoin"),
        "{}",
        stderr(&o)
    );
    // Payment failed: a wallet on another dev node has no route to this one.
    let other = Devnet::start().await;
    let o = get(&url, &format!("devnode://{}/alice", other.addr), home, &[]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("no route"), "{}", stderr(&o));
    // Refused credential: revoke the token, forbid re-paying.
    let o = get(&url, &wallet, home, &["--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let hash = v["payment_hash"].as_str().unwrap().to_owned();
    let o = l402(&["tokens", "show", &hash, "--json", "--data-dir", home]);
    let token_id = serde_json::from_str::<Value>(&stdout(&o)).unwrap()["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http()
        .post(proxy.ops_url(&format!("/admin/tokens/{token_id}/revoke")))
        .bearer_auth("adm-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let o = get(&url, &wallet, home, &["--no-repay"]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refused the paid credential"),
        "{}",
        stderr(&o)
    );
    // Allowed to re-pay: a new token is bought.
    let o = get(&url, &wallet, home, &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["amount_paid_msat"], 21000);
    assert_ne!(v["payment_hash"], hash.as_str());
    // No wallet at all.
    let o = l402(&["get", &url, "--data-dir", home]);
    assert_eq!(o.status.code(), Some(1));
}

/// A dev node API in front of the real one that, once armed, lets a payment go through and then
/// kills the client process before it can hear the answer: a crash between paying and recording.
#[derive(Clone)]
struct Crasher {
    node: l402_devnode::DevNode,
    victim: Arc<AtomicU32>,
    armed: Arc<AtomicBool>,
}

async fn crash_after_pay(State(c): State<Crasher>, req: Request) -> axum::response::Response {
    let is_payment = req.method() == "POST" && req.uri().path().ends_with("/payments");
    let resp = c.node.router(None).oneshot(req).await.unwrap();
    // Armed only once the pid is stored; still never pid 0 (`kill 0` would signal the test's
    // whole process group).
    let pid = (is_payment && c.armed.swap(false, Ordering::SeqCst))
        .then(|| c.victim.load(Ordering::SeqCst))
        .filter(|&pid| pid != 0);
    if let Some(pid) = pid {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_paying_and_recording_never_pays_twice() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let proxy = start_proxy(&proxy_yaml(&devnet.shop_uri(), up));
    let crasher = Crasher {
        node: devnet.node.clone(),
        victim: Arc::default(),
        armed: Arc::default(),
    };
    let app = axum::Router::new()
        .fallback(crash_after_pay)
        .with_state(crasher.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crash_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap().to_owned();
    let wallet = format!("devnode://{crash_addr}/alice");
    let url = proxy.url("/weather/today");
    let alice = devnet.node.wallet("alice");
    let before = alice.balance().await.unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(["get", &url, "--wallet", &wallet, "--data-dir", &home])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Armed once the pid is known (the client pays only after a round trip to the proxy).
    crasher.victim.store(child.id(), Ordering::SeqCst);
    crasher.armed.store(true, Ordering::SeqCst);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.code().is_none(),
        "the client was killed: {:?} {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 21_000),
        "paid once"
    );
    // The journal knows a payment is pending.
    let o = l402(&["tokens", "list", "--json", "--data-dir", &home]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list[0]["state"], "pending", "{list}");
    let hash: l402::PaymentHash = list[0]["payment_hash"].as_str().unwrap().parse().unwrap();
    assert!(matches!(
        alice.payment(&hash).await.unwrap(),
        l402::PaymentState::Succeeded(_)
    ));

    // The next run resumes: it asks the wallet, learns the preimage, and uses the token.
    let o = get(&url, &wallet, &home, &["--json", "-v"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("looked up the earlier payment"),
        "{}",
        stderr(&o)
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(before.as_u64() - 21_000),
        "still paid once"
    );
    let o = l402(&["tokens", "list", "--json", "--data-dir", &home]);
    let list: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["state"], "paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pays_our_proxy_through_lnbits() {
    let lnbits = l402_test::lnbits::lnbits();
    let up = upstream().await;
    let issuer = format!("lnbits://{}@{}", lnbits.payee.inkey, lnbits.host_port());
    let proxy = start_proxy(&proxy_yaml(&issuer, up));
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();
    let wallet = format!("lnbits://{}@{}", lnbits.payer.adminkey, lnbits.host_port());
    let url = proxy.url("/weather/lnbits");
    for paid in [21000, 0] {
        let o = get(&url, &wallet, home, &["--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["amount_paid_msat"], paid);
        assert!(v["body"].as_str().unwrap().contains("/weather/lnbits"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_clients_pay_through_the_layer() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let devnet = Devnet::start().await;
    let (grpc, _reporter) = grpc_upstream().await;
    let yaml = format!(
        "listen: 127.0.0.1:0\nlightning: {}\nstore: sqlite:l402.db\nservices:\n  - name: health\n    upstream: h2c://{grpc}\n    price_sat: 5\n",
        devnet.shop_uri()
    );
    let proxy = start_proxy(&yaml);
    let store = l402_client::ClientStore::in_memory().await.unwrap();
    let client = l402_client::L402Client::builder(
        l402::SharedPayer::new(devnet.node.wallet("alice")),
        store.clone(),
    )
    .network(l402_client::Currency::Regtest)
    .build()
    .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", proxy.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let channel = tower::ServiceBuilder::new()
        .layer(l402_client::L402GrpcLayer::new(client, &format!("http://{}", proxy.addr)).unwrap())
        .service(channel);
    let mut api = HealthClient::new(channel);
    for _ in 0..3 {
        let r = api
            .check(HealthCheckRequest {
                service: "weather".into(),
            })
            .await
            .unwrap();
        assert_eq!(
            r.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    assert_eq!(
        store.spent_since(0, None).await.unwrap(),
        Msat::from_sat(5),
        "paid once for three calls"
    );
}

#[test]
fn the_demo_runs_end_to_end() {
    let o = Command::new(env!("CARGO_BIN_EXE_l402"))
        .args(["demo", "--once", "--port", "0", "--devnode-port", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for needle in [
        "HTTP 402",
        "payment hash",
        "preimage",
        "HTTP 200",
        "reused the token",
        "demo complete",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_configs_work_with_the_embedded_dev_node() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    for f in ["proxy.yaml", "aperture.yaml"] {
        let o = l402(&["config", "check", &format!("{root}/{f}")]);
        assert!(o.status.success(), "{f}: {}", stderr(&o));
    }
    // Run examples/proxy.yaml as a newcomer would, with only the ports changed to free ones.
    let up = upstream().await;
    let node_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(format!("{root}/proxy.yaml"))
        .unwrap()
        .replace("http://127.0.0.1:3000", &format!("http://{up}"))
        .replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:0")
        .replace("listen: 127.0.0.1:9090", "listen: 127.0.0.1:0")
        .replace(
            "listen=127.0.0.1:9735",
            &format!("listen=127.0.0.1:{node_port}"),
        );
    let dir = tempfile::tempdir().unwrap().keep();
    let proxy = start_proxy_in(&dir, "proxy.yaml", &text);
    let home = dir.join("home");
    let wallet = format!("devnode://127.0.0.1:{node_port}/alice");
    assert_eq!(
        http()
            .get(proxy.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let o = get(
        &proxy.url("/x"),
        &wallet,
        home.to_str().unwrap(),
        &["--json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["status"], 200);
    assert_eq!(v["amount_paid_msat"], 10_000);
    assert!(
        dir.join("devnode.sqlite").exists(),
        "the dev node keeps its state"
    );
}
