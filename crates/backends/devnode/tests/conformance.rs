//! The backend conformance suite, on the dev node in-process and over HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use l402::{
    ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest, InvoiceState, Msat, PayRequest,
};
use l402_devnode::{DevNode, DevNodeClient, DevNodeConfig, DevWallet};
use l402_test::conformance::{self as suite, Quirks};

async fn node() -> DevNode {
    DevNode::in_memory(DevNodeConfig::default()).await.unwrap()
}

async fn pair() -> (DevWallet, DevWallet) {
    let n = node().await;
    (n.wallet("shop"), n.wallet("alice"))
}

/// Serves `node` on a loopback port, optionally with an API key.
async fn serve(node: &DevNode, api_key: Option<&str>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = node.router(api_key.map(str::to_owned));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn http_pair(key: Option<&str>) -> (DevNodeClient, DevNodeClient, DevNode) {
    let n = node().await;
    let addr = serve(&n, key).await;
    let userinfo = key.map(|k| format!("{k}@")).unwrap_or_default();
    let shop = DevNodeClient::from_uri(&format!("devnode://{userinfo}{addr}/shop")).unwrap();
    let alice = DevNodeClient::from_uri(&format!("devnode://{userinfo}{addr}/alice")).unwrap();
    (shop, alice, n)
}

macro_rules! suite_tests {
    ($modname:ident, $make:expr) => {
        mod $modname {
            use super::*;

            l402_test::state_tests!($make, Quirks::default());
        }
    };
}

suite_tests!(in_process, pair().await);
suite_tests!(over_http, http_pair(None).await);
suite_tests!(over_http_with_key, http_pair(Some("s3cret")).await);

#[tokio::test]
async fn wrong_api_key_is_unauthorized() {
    let n = node().await;
    let addr = serve(&n, Some("right")).await;
    let c = DevNodeClient::from_uri(&format!("devnode://wrong@{addr}/shop")).unwrap();
    suite::wrong_credentials(&c, &c).await;
    let c = DevNodeClient::from_uri(&format!("devnode://{addr}/shop")).unwrap();
    suite::wrong_credentials(&c, &c).await;
}

#[tokio::test]
async fn unreachable_and_timeout() {
    suite::unreachable(|addr| DevNodeClient::from_uri(&format!("devnode://{addr}/w")).unwrap())
        .await;
    suite::timeout(|addr| {
        DevNodeClient::from_uri(&format!("devnode://{addr}/w?timeout=1s")).unwrap()
    })
    .await;
}

#[tokio::test]
async fn balances_move_and_fees_are_limited() {
    let n = DevNode::in_memory(DevNodeConfig {
        initial_balance: Msat::from_sat(1000),
        fee_base: Msat::new(1000),
        fee_ppm: 10_000,
    })
    .await
    .unwrap();
    let (shop, alice) = (n.wallet("shop"), n.wallet("alice"));
    let inv = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(100), "x"))
        .await
        .unwrap();
    // Fee: 1000 msat + 1% of 100 000 msat = 2000 msat.
    let e = alice
        .pay(PayRequest::new(inv.bolt11.clone(), Msat::new(1999)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), l402::ErrorKind::PaymentFailed);
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::from_sat(1000),
        "nothing spent"
    );
    let paid = alice
        .pay(PayRequest::new(inv.bolt11, Msat::new(2000)))
        .await
        .unwrap();
    assert_eq!(paid.fee, Msat::new(2000));
    assert_eq!(
        alice.balance().await.unwrap(),
        Msat::new(1_000_000 - 100_000 - 2000)
    );
    assert_eq!(
        shop.balance().await.unwrap(),
        Msat::new(1_000_000 + 100_000)
    );
}

#[tokio::test]
async fn state_and_key_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("devnode.sqlite");
    let (inv, node_id) = {
        let n = DevNode::open(&path, DevNodeConfig::default())
            .await
            .unwrap();
        let inv = n
            .wallet("shop")
            .create_invoice(InvoiceRequest::new(Msat::from_sat(5), "persist"))
            .await
            .unwrap();
        (inv, n.node_id())
    };
    let n = DevNode::open(&path, DevNodeConfig::default())
        .await
        .unwrap();
    assert_eq!(n.node_id(), node_id, "the node key is kept");
    let paid = n
        .wallet("alice")
        .pay(PayRequest::new(inv.bolt11, Msat::ZERO))
        .await
        .unwrap();
    assert!(paid.preimage.matches(&inv.payment_hash));
}

async fn issue(w: &DevWallet, sat: u64, memo: &str) -> l402::CreatedInvoice {
    w.create_invoice(InvoiceRequest::new(Msat::from_sat(sat), memo))
        .await
        .unwrap()
}

async fn pay(w: &DevWallet, invoice: &l402::CreatedInvoice) -> Result<l402::Paid, ErrorKind> {
    let paid = w
        .pay(PayRequest::new(invoice.bolt11.clone(), Msat::ZERO))
        .await
        .map_err(|e| e.kind())?;
    assert!(paid.preimage.matches(&invoice.payment_hash));
    Ok(paid)
}

async fn state(w: &DevWallet, invoice: &l402::CreatedInvoice) -> Result<InvoiceState, ErrorKind> {
    w.invoice_state(&invoice.payment_hash)
        .await
        .map_err(|e| e.kind())
}

#[tokio::test]
async fn two_nodes_on_one_file_see_each_others_invoices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("devnode.sqlite");
    let a = DevNode::open(&path, DevNodeConfig::default())
        .await
        .unwrap();
    let b = DevNode::open(&path, DevNodeConfig::default())
        .await
        .unwrap();
    // Hashes are indexed by the first lookup that needs them, whichever node makes it: each
    // side finds what the other issued after its own last lookup.
    for round in 0..3u64 {
        let by_a = issue(&a.wallet("shop"), 1 + round, "a").await;
        let by_b = issue(&b.wallet("shop"), 10 + round, "b").await;
        assert_eq!(
            state(&b.wallet("shop"), &by_a).await,
            Ok(InvoiceState::Open)
        );
        pay(&a.wallet("alice"), &by_b).await.unwrap();
        assert_eq!(
            state(&b.wallet("shop"), &by_b).await,
            Ok(InvoiceState::Settled)
        );
        assert_eq!(
            state(&a.wallet("other"), &by_a).await,
            Err(ErrorKind::NotFound),
            "an invoice belongs to its wallet"
        );
    }
}

/// Invoice tables of earlier builds: keyed by payment hash, the first ones with the invoice
/// string and memo in `NOT NULL` columns without defaults.
const EARLIER_INVOICE_TABLES: [(&str, &str); 2] = [
    (
        "CREATE TABLE invoices_old (payment_hash BLOB PRIMARY KEY, preimage BLOB NOT NULL,
            wallet TEXT NOT NULL, bolt11 TEXT NOT NULL, amount_msat INTEGER NOT NULL,
            memo TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,
            settled_ms INTEGER)",
        "INSERT INTO invoices_old SELECT payment_hash, preimage, wallet, 'lnbcrt1old',
            amount_msat, 'before', created_ms, expires_ms, settled_ms FROM invoices ORDER BY id",
    ),
    (
        "CREATE TABLE invoices_old (payment_hash BLOB PRIMARY KEY, preimage BLOB NOT NULL,
            wallet TEXT NOT NULL, amount_msat INTEGER NOT NULL, created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL, settled_ms INTEGER)",
        "INSERT INTO invoices_old SELECT payment_hash, preimage, wallet, amount_msat,
            created_ms, expires_ms, settled_ms FROM invoices ORDER BY id",
    ),
];

#[tokio::test]
async fn a_database_of_an_earlier_build_is_upgraded_and_its_invoices_kept() {
    for (create, copy) in EARLIER_INVOICE_TABLES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devnode.sqlite");
        let (open, paid) = {
            let n = DevNode::open(&path, DevNodeConfig::default())
                .await
                .unwrap();
            let open = issue(&n.wallet("shop"), 5, "before").await;
            let paid = issue(&n.wallet("shop"), 7, "before, paid").await;
            pay(&n.wallet("alice"), &paid).await.unwrap();
            (open, paid)
        };
        // Put the invoice table back the way an earlier build wrote it.
        let url = format!("sqlite:{}", path.display());
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        for stmt in [
            create,
            copy,
            "DROP TABLE invoices",
            "ALTER TABLE invoices_old RENAME TO invoices",
            "DROP TABLE invoice_hashes",
            "DROP TABLE invoice_hashes_through",
        ] {
            sqlx::query(stmt).execute(&mut db).await.unwrap();
        }
        const COLUMNS: &str = "SELECT name FROM pragma_table_info('invoices')";
        let before: Vec<String> = sqlx::query_scalar(COLUMNS)
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert!(!before.iter().any(|c| c == "id"), "{before:?}");
        drop(db);

        let n = DevNode::open(&path, DevNodeConfig::default())
            .await
            .unwrap();
        let (shop, alice) = (n.wallet("shop"), n.wallet("alice"));
        // New invoices are issued next to the old ones (an old table would refuse rows without
        // the string and memo)…
        let fresh = issue(&shop, 6, "after").await;
        // …the old ones are still found, in the state they were left…
        assert_eq!(state(&shop, &open).await, Ok(InvoiceState::Open));
        assert_eq!(state(&shop, &paid).await, Ok(InvoiceState::Settled));
        assert_eq!(
            pay(&alice, &paid).await.unwrap_err(),
            ErrorKind::AlreadyPaid
        );
        // …and the open ones payable.
        for i in [open, fresh] {
            pay(&alice, &i).await.unwrap();
        }
        let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let left: Vec<String> = sqlx::query_scalar(COLUMNS)
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert!(
            left.iter().any(|c| c == "id") && !left.iter().any(|c| c == "bolt11" || c == "memo"),
            "{left:?}"
        );
        // The invoices kept their order: the upgrade numbered them as they were written.
        let order: Vec<i64> = sqlx::query_scalar("SELECT amount_msat FROM invoices ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();
        assert_eq!(order, [5000, 7000, 6000]);
    }
}

#[tokio::test]
async fn invoices_of_another_node_have_no_route() {
    let a = node().await;
    let b = node().await;
    let inv = a
        .wallet("shop")
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
        .await
        .unwrap();
    let e = b
        .wallet("alice")
        .pay(PayRequest::new(inv.bolt11, Msat::ZERO))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), l402::ErrorKind::PaymentFailed);
    assert!(e.to_string().contains("no route"), "{e}");
}

#[tokio::test]
async fn invoices_are_real_bolt11_for_the_node_key() {
    use std::str::FromStr;
    let n = node().await;
    let inv = n
        .wallet("shop")
        .create_invoice(
            InvoiceRequest::new(Msat::new(21_500), "memo text").expiry(Duration::from_secs(600)),
        )
        .await
        .unwrap();
    assert!(inv.bolt11.starts_with("lnbcrt"), "{}", inv.bolt11);
    let decoded = lightning_invoice::Bolt11Invoice::from_str(&inv.bolt11).unwrap();
    decoded.check_signature().unwrap();
    assert_eq!(decoded.recover_payee_pub_key(), n.node_id());
    assert_eq!(decoded.amount_milli_satoshis(), Some(21_500));
    assert_eq!(decoded.expiry_time(), Duration::from_secs(600));
    assert_eq!(
        AsRef::<[u8; 32]>::as_ref(decoded.payment_hash()),
        inv.payment_hash.as_bytes()
    );
}

#[tokio::test]
async fn concurrent_payers_never_double_spend() {
    let n = DevNode::in_memory(DevNodeConfig {
        initial_balance: Msat::from_sat(10),
        ..DevNodeConfig::default()
    })
    .await
    .unwrap();
    let shop = n.wallet("shop");
    let mut invoices = Vec::new();
    for _ in 0..5 {
        invoices.push(
            shop.create_invoice(InvoiceRequest::new(Msat::from_sat(4), "x"))
                .await
                .unwrap(),
        );
    }
    let alice = n.wallet("alice");
    let results = futures_join(invoices.iter().map(|i| {
        let a = alice.clone();
        let b = i.bolt11.clone();
        async move { a.pay(PayRequest::new(b, Msat::ZERO)).await }
    }))
    .await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 2, "10 sat pays two 4-sat invoices, no more");
    assert_eq!(alice.balance().await.unwrap(), Msat::from_sat(2));
}

async fn futures_join<F>(fs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
