//! The same store suite on SQLite and on a real PostgreSQL (started by the test harness).

use std::time::Duration;

use l402::{
    Identifier, InvoiceIssuer, InvoicePayer, InvoiceRequest, Msat, PayRequest, Preimage, RootKey,
    RootKeyStore, TokenId, TokenRecord,
};
use l402_devnode::{DevNode, DevNodeClient, DevNodeConfig};
use l402_store::{Revocation, Store};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An identifier no store has seen.
fn unknown() -> Identifier {
    Identifier::new(Preimage::random().payment_hash(), TokenId::random())
}

fn record(expires_in: i64) -> TokenRecord {
    record_for(
        Preimage::random().payment_hash(),
        "bolt11-placeholder".into(),
        expires_in,
    )
}

fn record_for(hash: l402::PaymentHash, invoice: String, expires_in: i64) -> TokenRecord {
    let id = Identifier::new(hash, TokenId::random());
    TokenRecord {
        key_id: id.key_id(),
        root_key: RootKey::generate(),
        token_id: *id.token_id(),
        payment_hash: hash,
        service: "weather".into(),
        price: Msat::from_sat(21),
        invoice,
        created_at: now(),
        invoice_expires_at: now() + expires_in,
    }
}

/// Runs `statements` in order on `pool` (of either database), then closes it.
macro_rules! execute_all {
    ($pool:expr, $statements:expr) => {{
        let pool = $pool;
        for s in $statements {
            sqlx::query(sqlx::AssertSqlSafe(s.as_str()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        pool.close().await;
    }};
}

/// A database URL for one test, and raw SQL on it.
trait Backend {
    fn url() -> String;
    /// The binary column type.
    const BLOB: &str;
    /// A binary literal.
    fn blob(bytes: &[u8]) -> String;
    /// Runs statements outside the store, in order.
    async fn run(url: &str, statements: &[String]);
}

struct Sqlite;
impl Backend for Sqlite {
    fn url() -> String {
        let dir = tempfile::tempdir().unwrap().keep();
        format!("sqlite://{}", dir.join("l402.db").display())
    }
    const BLOB: &str = "BLOB";
    fn blob(bytes: &[u8]) -> String {
        format!("X'{}'", hex::encode(bytes))
    }
    async fn run(url: &str, statements: &[String]) {
        let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
        let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
            .await
            .unwrap();
        execute_all!(pool, statements);
    }
}

struct Postgres;
impl Backend for Postgres {
    fn url() -> String {
        l402_test::postgres::fresh_database()
    }
    const BLOB: &str = "BYTEA";
    fn blob(bytes: &[u8]) -> String {
        format!("'\\x{}'::bytea", hex::encode(bytes))
    }
    async fn run(url: &str, statements: &[String]) {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        execute_all!(pool, statements);
    }
}

/// The columns every schema version has in this order, from the payment hash to the invoice's
/// expiry, as SQL literals.
fn row_tail<B: Backend>(r: &TokenRecord) -> String {
    format!(
        "{}, '{}', {}, '{}', {}, {}",
        B::blob(r.payment_hash.as_bytes()),
        r.service,
        r.price.as_u64(),
        r.invoice,
        r.created_at,
        r.invoice_expires_at,
    )
}

/// Opens an older database holding a paid token (paid at 100), an unpaid one and a revoked one
/// (revoked at 200) and checks the upgrade kept all three as they were, then that the store
/// works as usual and opening it again changes nothing.
async fn opens_upgraded(
    url: &str,
    paid: &TokenRecord,
    unpaid: &TokenRecord,
    revoked: &TokenRecord,
) {
    let store = Store::connect(url).await.expect("an older database opens");
    assert_eq!(
        store.root_key(&paid.identifier()).await.unwrap(),
        Some(paid.root_key.clone()),
        "a paid token keeps working"
    );
    assert_eq!(
        store.root_key(&unpaid.identifier()).await.unwrap(),
        Some(unpaid.root_key.clone())
    );
    assert_eq!(
        store.root_key(&revoked.identifier()).await.unwrap(),
        None,
        "a revoked token stays revoked"
    );
    let info = store.token(&paid.token_id).await.unwrap().unwrap();
    assert_eq!(
        (info.key_id, info.payment_hash, info.paid_at, info.invoice),
        (
            paid.key_id,
            paid.payment_hash,
            Some(100),
            paid.invoice.clone()
        )
    );
    let revoked_at = store.token(&revoked.token_id).await.unwrap().unwrap();
    assert_eq!(revoked_at.revoked_at, Some(200));
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.tokens, stats.paid, stats.revoked), (3, 1, 1));
    // Revocation still answers with the key id (caches and other instances forget it by that).
    assert_eq!(
        store.revoke(&unpaid.token_id).await.unwrap(),
        Some(unpaid.key_id)
    );
    let fresh = record(3600);
    store.insert(fresh.clone()).await.unwrap();
    drop(store);
    let store = Store::connect(url).await.unwrap();
    assert_eq!(
        store.root_key(&fresh.identifier()).await.unwrap(),
        Some(fresh.root_key)
    );
    assert_eq!(store.stats().await.unwrap().tokens, 4);
}

/// A database as schema version 1 left it (root keys in a table of their own), holding a paid
/// token, an unpaid one and a revoked one (whose root key version 1 deleted); then the current
/// build opens it.
async fn a_version_1_database_is_upgraded<B: Backend>() {
    let url = B::url();
    let blob = B::BLOB;
    let (paid, unpaid, revoked) = (record(3600), record(3600), record(-10));
    let mut sql = vec![
        "CREATE TABLE l402_schema (version BIGINT NOT NULL)".to_string(),
        "INSERT INTO l402_schema (version) VALUES (1)".into(),
        format!("CREATE TABLE l402_root_keys (key_id {blob} PRIMARY KEY, root_key {blob} NOT NULL)"),
        format!(
            "CREATE TABLE l402_tokens (token_id {blob} PRIMARY KEY, key_id {blob} NOT NULL UNIQUE,
                payment_hash {blob} NOT NULL, service TEXT NOT NULL, price_msat BIGINT NOT NULL,
                invoice TEXT NOT NULL, created_at BIGINT NOT NULL, invoice_expires_at BIGINT NOT NULL,
                paid_at BIGINT, revoked_at BIGINT)"
        ),
        "CREATE INDEX l402_tokens_unpaid ON l402_tokens (invoice_expires_at)
            WHERE paid_at IS NULL AND revoked_at IS NULL"
            .into(),
        "CREATE INDEX l402_tokens_payment_hash ON l402_tokens (payment_hash)".into(),
        "CREATE INDEX l402_tokens_created ON l402_tokens (created_at)".into(),
    ];
    for (r, paid_at, revoked_at) in [
        (&paid, "100", "NULL"),
        (&unpaid, "NULL", "NULL"),
        (&revoked, "NULL", "200"),
    ] {
        if revoked_at == "NULL" {
            sql.push(format!(
                "INSERT INTO l402_root_keys VALUES ({}, {})",
                B::blob(r.key_id.as_bytes()),
                B::blob(r.root_key.as_bytes())
            ));
        }
        sql.push(format!(
            "INSERT INTO l402_tokens VALUES ({}, {}, {}, {paid_at}, {revoked_at})",
            B::blob(r.token_id.as_bytes()),
            B::blob(r.key_id.as_bytes()),
            row_tail::<B>(r),
        ));
    }
    B::run(&url, &sql).await;

    opens_upgraded(&url, &paid, &unpaid, &revoked).await;
    // The old table is gone (creating it again succeeds), so no root key is left behind in it.
    B::run(
        &url,
        &[format!("CREATE TABLE l402_root_keys (key_id {blob})")],
    )
    .await;
}

/// A database as schema version 2 left it (rows keyed by key id), holding a paid token, an
/// unpaid one and a revoked one (root key wiped); then the current build opens it.
async fn a_version_2_database_is_upgraded<B: Backend>() {
    let url = B::url();
    let blob = B::BLOB;
    let (paid, unpaid, revoked) = (record(3600), record(3600), record(-10));
    let mut sql = vec![
        "CREATE TABLE l402_schema (version BIGINT NOT NULL)".to_string(),
        "INSERT INTO l402_schema (version) VALUES (2)".into(),
        format!(
            "CREATE TABLE l402_tokens (key_id {blob} PRIMARY KEY, token_id {blob} NOT NULL UNIQUE,
                root_key {blob}, payment_hash {blob} NOT NULL, service TEXT NOT NULL,
                price_msat BIGINT NOT NULL, invoice TEXT NOT NULL, created_at BIGINT NOT NULL,
                invoice_expires_at BIGINT NOT NULL, paid_at BIGINT, revoked_at BIGINT)"
        ),
        "CREATE INDEX l402_tokens_unpaid ON l402_tokens (invoice_expires_at)
            WHERE paid_at IS NULL AND revoked_at IS NULL"
            .into(),
        "CREATE INDEX l402_tokens_created ON l402_tokens (created_at)".into(),
    ];
    for (r, paid_at, revoked_at) in [
        (&paid, "100", "NULL"),
        (&unpaid, "NULL", "NULL"),
        (&revoked, "NULL", "200"),
    ] {
        let root_key = if revoked_at == "NULL" {
            B::blob(r.root_key.as_bytes())
        } else {
            "NULL".into()
        };
        sql.push(format!(
            "INSERT INTO l402_tokens VALUES ({}, {}, {root_key}, {}, {paid_at}, {revoked_at})",
            B::blob(r.key_id.as_bytes()),
            B::blob(r.token_id.as_bytes()),
            row_tail::<B>(r),
        ));
    }
    B::run(&url, &sql).await;

    opens_upgraded(&url, &paid, &unpaid, &revoked).await;
    if B::BLOB == "BYTEA" {
        // The primary key has the name a fresh database gives it (fails if it does not exist).
        B::run(
            &url,
            &["COMMENT ON INDEX l402_tokens_pkey IS 'token id'".to_string()],
        )
        .await;
    }
    // Version 3 is recorded: a second row claiming version 2 would be ignored as older.
    B::run(
        &url,
        &["INSERT INTO l402_schema (version) VALUES (2)".to_string()],
    )
    .await;
    assert!(Store::connect(&url).await.is_ok());
}

async fn insert_and_get<B: Backend>() {
    let store = Store::connect(&B::url()).await.unwrap();
    let r = record(3600);
    store.insert(r.clone()).await.unwrap();
    assert_eq!(
        store.root_key(&r.identifier()).await.unwrap(),
        Some(r.root_key.clone())
    );
    assert_eq!(store.root_key(&unknown()).await.unwrap(), None);
    // The token id alone does not find the key: the payment hash must be this token's too.
    let forged = Identifier::new(Preimage::random().payment_hash(), r.token_id);
    assert_eq!(store.root_key(&forged).await.unwrap(), None);
    let info = store.token(&r.token_id).await.unwrap().unwrap();
    assert_eq!(info.key_id, r.key_id);
    assert_eq!(info.payment_hash, r.payment_hash);
    assert_eq!(info.service, "weather");
    assert_eq!(info.price, Msat::from_sat(21));
    assert_eq!(info.paid_at, None);
    assert_eq!(
        store.payment_hash(&r.token_id).await.unwrap(),
        Some(r.payment_hash)
    );
}

async fn survives_reopening<B: Backend>() {
    let url = B::url();
    let r = record(3600);
    {
        let store = Store::connect(&url).await.unwrap();
        store.insert(r.clone()).await.unwrap();
    }
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(
        store.root_key(&r.identifier()).await.unwrap(),
        Some(r.root_key)
    );
}

async fn revoke_deletes_the_key_and_announces_it<B: Backend>() {
    let store = Store::connect(&B::url()).await.unwrap();
    let mut announcements = store.revocations();
    let r = record(3600);
    store.insert(r.clone()).await.unwrap();
    assert_eq!(store.revoke(&r.token_id).await.unwrap(), Some(r.key_id));
    assert_eq!(
        store.root_key(&r.identifier()).await.unwrap(),
        None,
        "never verifies again"
    );
    assert!(
        store
            .token(&r.token_id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    let got = tokio::time::timeout(Duration::from_secs(5), announcements.recv())
        .await
        .expect("announced")
        .unwrap();
    assert_eq!(got, Revocation::Key(r.key_id));
    assert_eq!(store.revoke(&TokenId::random()).await.unwrap(), None);
}

async fn paid_tokens_count_as_revenue<B: Backend>() {
    let store = Store::connect(&B::url()).await.unwrap();
    let (a, b, c) = (record(3600), record(3600), record(3600));
    for r in [&a, &b, &c] {
        store.insert(r.clone()).await.unwrap();
    }
    assert_eq!(
        store.mark_paid(&a.identifier()).await.unwrap(),
        Some(Msat::from_sat(21))
    );
    assert_eq!(
        store.mark_paid(&a.identifier()).await.unwrap(),
        None,
        "counted once"
    );
    store.mark_paid(&b.identifier()).await.unwrap();
    assert_eq!(store.mark_paid(&unknown()).await.unwrap(), None);
    store.revoke(&c.token_id).await.unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.tokens, 3);
    assert_eq!(stats.paid, 2);
    assert_eq!(stats.revoked, 1);
    assert_eq!(stats.revenue, Msat::from_sat(42));
    let recent = store.recent_tokens(2).await.unwrap();
    assert_eq!(recent.len(), 2);
}

async fn group_commit_under_concurrency<B: Backend>() {
    let store = Store::connect(&B::url()).await.unwrap();
    let records: Vec<TokenRecord> = (0..300).map(|_| record(3600)).collect();
    let handles: Vec<_> = records
        .iter()
        .cloned()
        .map(|r| {
            let s = store.clone();
            tokio::spawn(async move { s.insert(r).await })
        })
        .collect();
    for h in handles {
        h.await.unwrap().unwrap();
    }
    for r in &records {
        assert_eq!(
            store.root_key(&r.identifier()).await.unwrap().as_ref(),
            Some(&r.root_key)
        );
    }
    assert_eq!(store.stats().await.unwrap().tokens, 300);
}

async fn cleanup_asks_the_issuer_first<B: Backend>() {
    let store = Store::connect(&B::url()).await.unwrap();
    let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
    let shop = node.wallet("shop");
    let expired = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x").expiry(Duration::from_secs(1)))
        .await
        .unwrap();
    // Paid within its hour however slow the machine; the record below says it expired.
    let paid_late = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(2), "x"))
        .await
        .unwrap();
    node.wallet("alice")
        .pay(PayRequest::new(paid_late.bolt11.clone(), Msat::ZERO))
        .await
        .unwrap();
    let open = shop
        .create_invoice(InvoiceRequest::new(Msat::from_sat(3), "x"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // All three records claim their invoice expired a minute ago; two more are unknown to the
    // issuer (one expired a minute ago, one eight days ago) and one is still in its validity
    // window.
    let r_expired = record_for(expired.payment_hash, expired.bolt11, -60);
    let r_paid = record_for(paid_late.payment_hash, paid_late.bolt11, -60);
    let r_open = record_for(open.payment_hash, open.bolt11, -60);
    let r_unknown = record(-60);
    let r_unknown_old = record(-8 * 24 * 3600);
    let r_fresh = record(3600);
    for r in [
        &r_expired,
        &r_paid,
        &r_open,
        &r_unknown,
        &r_unknown_old,
        &r_fresh,
    ] {
        store.insert(r.clone()).await.unwrap();
    }

    // An issuer that cannot be reached defers everything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = DevNodeClient::from_uri(&format!(
        "devnode://{}/shop",
        listener.local_addr().unwrap()
    ))
    .unwrap();
    drop(listener);
    let report = store
        .cleanup(&dead, now(), Duration::from_secs(30), 100)
        .await
        .unwrap();
    assert_eq!(report.deleted, 0);
    assert_eq!(report.deferred, 5);

    let report = store
        .cleanup(&shop, now(), Duration::from_secs(30), 100)
        .await
        .unwrap();
    assert_eq!(report.deleted, 2, "{report:?}");
    assert_eq!(report.found_paid, 1, "{report:?}");
    assert_eq!(report.deferred, 2, "{report:?}");
    assert_eq!(store.root_key(&r_expired.identifier()).await.unwrap(), None);
    assert_eq!(
        store.root_key(&r_unknown_old.identifier()).await.unwrap(),
        None
    );
    assert!(
        store
            .root_key(&r_unknown.identifier())
            .await
            .unwrap()
            .is_some(),
        "an invoice the issuer does not know is kept for a week after it expired"
    );
    assert!(
        store
            .root_key(&r_paid.identifier())
            .await
            .unwrap()
            .is_some(),
        "a paid token keeps working"
    );
    assert!(
        store
            .token(&r_paid.token_id)
            .await
            .unwrap()
            .unwrap()
            .paid_at
            .is_some()
    );
    assert!(
        store
            .root_key(&r_open.identifier())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .root_key(&r_fresh.identifier())
            .await
            .unwrap()
            .is_some()
    );
}

macro_rules! suite {
    ($m:ident, $b:ty) => {
        mod $m {
            use super::*;
            #[tokio::test]
            async fn insert_and_get() {
                super::insert_and_get::<$b>().await
            }
            #[tokio::test]
            async fn survives_reopening() {
                super::survives_reopening::<$b>().await
            }
            #[tokio::test]
            async fn revoke_deletes_the_key_and_announces_it() {
                super::revoke_deletes_the_key_and_announces_it::<$b>().await
            }
            #[tokio::test]
            async fn paid_tokens_count_as_revenue() {
                super::paid_tokens_count_as_revenue::<$b>().await
            }
            #[tokio::test]
            async fn group_commit_under_concurrency() {
                super::group_commit_under_concurrency::<$b>().await
            }
            #[tokio::test]
            async fn cleanup_asks_the_issuer_first() {
                super::cleanup_asks_the_issuer_first::<$b>().await
            }
            #[tokio::test]
            async fn a_version_1_database_is_upgraded() {
                super::a_version_1_database_is_upgraded::<$b>().await
            }
            #[tokio::test]
            async fn a_version_2_database_is_upgraded() {
                super::a_version_2_database_is_upgraded::<$b>().await
            }
        }
    };
}

suite!(sqlite, Sqlite);
suite!(postgres, Postgres);

#[tokio::test]
async fn postgres_revocation_reaches_every_instance() {
    let url = l402_test::postgres::fresh_database();
    let a = Store::connect(&url).await.unwrap();
    let r = record(3600);
    a.insert(r.clone()).await.unwrap();
    // B listens once it has opened: a revocation made right after is heard.
    let b = Store::connect(&url).await.unwrap();
    assert!(
        b.root_key(&r.identifier()).await.unwrap().is_some(),
        "shared state"
    );
    let mut heard_by_b = b.revocations();
    a.revoke(&r.token_id).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match heard_by_b.recv().await.unwrap() {
                Revocation::Key(k) if k == r.key_id => return,
                _ => continue,
            }
        }
    })
    .await;
    assert!(got.is_ok(), "instance B never heard of the revocation");
    assert_eq!(b.root_key(&r.identifier()).await.unwrap(), None);
}

/// A listener whose connection is cut tells its process to flush every cache, then listens
/// again: revocations are heard after it as before.
#[tokio::test]
async fn postgres_a_lost_listener_flushes_and_listens_again() {
    let url = l402_test::postgres::fresh_database();
    let a = Store::connect(&url).await.unwrap();
    let b = Store::connect(&url).await.unwrap();
    let mut heard_by_b = b.revocations();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let cut = sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .execute(&admin)
    .await
    .unwrap();
    assert!(cut.rows_affected() >= 2, "both listeners cut");
    let flushed = tokio::time::timeout(Duration::from_secs(30), async {
        while heard_by_b.recv().await.unwrap() != Revocation::All {}
    })
    .await;
    assert!(flushed.is_ok(), "no flush announced after the cut");
    // The new LISTEN is made in the background: revoke until one is heard (a minute at most).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = record(3600);
        a.insert(r.clone()).await.unwrap();
        a.revoke(&r.token_id).await.unwrap();
        let heard = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if heard_by_b.recv().await.unwrap() == Revocation::Key(r.key_id) {
                    return;
                }
            }
        })
        .await;
        if heard.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B never listened again"
        );
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    drop(Store::connect(&url).await.unwrap());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("INSERT INTO l402_schema (version) VALUES (99)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = Store::connect(&url).await.unwrap_err();
    assert!(!err.is_transient());
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[tokio::test]
async fn bad_urls_name_the_problem() {
    let err = Store::connect("mysql://x").await.unwrap_err();
    assert!(
        err.to_string().contains("sqlite:PATH or postgres://"),
        "{err}"
    );
    let err = Store::connect("postgres://nobody@127.0.0.1:1/x")
        .await
        .unwrap_err();
    assert!(
        err.is_transient(),
        "an unreachable database may come back: {err}"
    );
}
