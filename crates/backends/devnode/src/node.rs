//! The node itself: key, SQLite state, wallets, and the two ports.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use l402::{
    BackendError, CreatedInvoice, ErrorKind, InvoiceIssuer, InvoicePayer, InvoiceRequest,
    InvoiceState, Msat, Paid, PayRequest, PaymentHash, PaymentState, Preimage,
};
use lightning_invoice::Bolt11Invoice;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// The backend name in errors and logs.
pub const NAME: &str = "devnode";

/// How the dev node behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevNodeConfig {
    /// The balance a wallet starts with when first used.
    pub initial_balance: Msat,
    /// Simulated routing fee: a fixed part…
    pub fee_base: Msat,
    /// …plus this many parts per million of the amount.
    pub fee_ppm: u64,
}

impl Default for DevNodeConfig {
    fn default() -> Self {
        DevNodeConfig {
            initial_balance: Msat::from_sat(1_000_000),
            fee_base: Msat::ZERO,
            fee_ppm: 0,
        }
    }
}

/// An embedded Lightning dev node. Cheap to clone (shared state).
#[derive(Clone)]
pub struct DevNode {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    key: SecretKey,
    node_id: PublicKey,
    secp: Secp256k1<All>,
    config: DevNodeConfig,
    /// Wallets known to exist (wallets are never deleted), so that issuing an invoice does
    /// not write the wallet row again each time.
    known_wallets: std::sync::RwLock<std::collections::HashSet<String>>,
    /// Invoices wait here to be written, many per transaction.
    invoice_writer: tokio::sync::mpsc::Sender<PendingInvoice>,
    /// For an in-memory node: a connection held open, unused, so the database outlives the
    /// pool's connection (which a cancelled query closes; a new one would open an empty
    /// database).
    #[allow(dead_code, reason = "held, never read")]
    keeper: Option<std::sync::Mutex<sqlx::SqliteConnection>>,
}

/// One wallet of a [`DevNode`]: issues invoices into it and pays from it.
#[derive(Clone)]
pub struct DevWallet {
    node: DevNode,
    name: String,
}

fn err(kind: ErrorKind, call: &'static str, detail: impl Into<String>) -> BackendError {
    BackendError::new(kind, NAME, call, detail)
}

fn db_err(call: &'static str) -> impl FnOnce(sqlx::Error) -> BackendError {
    move |e| {
        // A busy or unreadable database may recover; anything else is a bug or a broken file.
        let kind = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => ErrorKind::Unavailable,
            sqlx::Error::Database(d)
                if d.message().contains("locked") || d.message().contains("busy") =>
            {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Protocol,
        };
        err(kind, call, format!("database: {e}"))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn msat_i64(m: Msat, call: &'static str) -> Result<i64, BackendError> {
    i64::try_from(m.as_u64()).map_err(|_| err(ErrorKind::InvalidRequest, call, "amount too large"))
}

/// The invoice table, under `name` (a new database's, or the copy an upgrade fills).
///
/// Invoices are numbered in the order they are committed (`AUTOINCREMENT`: a number is never
/// used twice), and a new one is an append at the table's end. Their payment hashes are random,
/// so indexing each hash as its invoice is written would dirty a random page of the index per
/// invoice (a 4 KiB frame in the log for a row of about 100 bytes). The hashes are indexed
/// later instead, in bulk, by the first lookup that needs them (see [`index_new_invoices`]).
/// The invoice's string and memo are not kept: nothing reads them back (paying decodes the
/// string the payer presents).
fn invoices_table(name: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {name} (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            payment_hash BLOB NOT NULL,
            preimage BLOB NOT NULL,
            wallet TEXT NOT NULL,
            amount_msat INTEGER NOT NULL,
            created_ms INTEGER NOT NULL,
            expires_ms INTEGER NOT NULL,
            settled_ms INTEGER
        )"
    )
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS node (id INTEGER PRIMARY KEY CHECK (id = 1), secret_key BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS wallets (name TEXT PRIMARY KEY, balance_msat INTEGER NOT NULL CHECK (balance_msat >= 0))",
    // Payment hash → invoice number, for the invoices up to `invoice_hashes_through`.
    "CREATE TABLE IF NOT EXISTS invoice_hashes (
        payment_hash BLOB PRIMARY KEY,
        invoice INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS invoice_hashes_through (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        invoice INTEGER NOT NULL
    )",
    "INSERT OR IGNORE INTO invoice_hashes_through (id, invoice) VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS payments (
        wallet TEXT NOT NULL,
        payment_hash BLOB NOT NULL,
        amount_msat INTEGER NOT NULL,
        fee_msat INTEGER NOT NULL,
        preimage BLOB NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (wallet, payment_hash)
    )",
];

/// The columns an invoice keeps, as every schema since the first names them.
const INVOICE_COLUMNS: &str =
    "payment_hash, preimage, wallet, amount_msat, created_ms, expires_ms, settled_ms";

/// Earlier builds keyed the invoice table by payment hash (a random index page written per
/// invoice), and the first ones also kept each invoice's string and memo in `NOT NULL` columns.
/// Such a table is copied, in commit order, into the current shape and its hashes indexed, in one
/// transaction.
async fn upgrade_invoice_table(pool: &SqlitePool) -> Result<(), BackendError> {
    const NUMBERED: &str = "SELECT COUNT(*) FROM pragma_table_info('invoices') WHERE name = 'id'";
    let numbered: i64 = sqlx::query_scalar(NUMBERED)
        .fetch_one(pool)
        .await
        .map_err(db_err("open"))?;
    if numbered == 1 {
        return Ok(());
    }
    // The write lock before looking again: another process opening the same file may be
    // upgrading it at the same moment.
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(db_err("open"))?;
    let numbered: i64 = sqlx::query_scalar(NUMBERED)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err("open"))?;
    if numbered == 1 {
        return Ok(());
    }
    let steps = [
        invoices_table("invoices_numbered"),
        format!(
            "INSERT INTO invoices_numbered ({INVOICE_COLUMNS})
                SELECT {INVOICE_COLUMNS} FROM invoices ORDER BY rowid"
        ),
        "DROP TABLE invoices".to_owned(),
        "ALTER TABLE invoices_numbered RENAME TO invoices".to_owned(),
        "DELETE FROM invoice_hashes".to_owned(),
        "UPDATE invoice_hashes_through SET invoice = 0".to_owned(),
    ];
    for step in steps {
        sqlx::query(sqlx::AssertSqlSafe(step))
            .execute(&mut *tx)
            .await
            .map_err(db_err("open: upgrade the invoice table"))?;
    }
    index_new_invoices(&mut tx)
        .await
        .map_err(db_err("open: index the invoices"))?;
    tx.commit().await.map_err(db_err("open"))
}

/// Indexes by payment hash every invoice committed since the last time, sorted (one pass over
/// the index's pages, however many invoices). Runs inside a write transaction, so no invoice
/// can be committed between the copy and the new high-water mark.
async fn index_new_invoices(tx: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    // A duplicate hash (two preimages with one SHA-256) cannot happen; were it to, the first
    // invoice keeps the hash instead of the index refusing every later invoice.
    sqlx::query(
        "INSERT OR IGNORE INTO invoice_hashes (payment_hash, invoice)
            SELECT payment_hash, id FROM invoices
            WHERE id > (SELECT invoice FROM invoice_hashes_through WHERE id = 1)
            ORDER BY payment_hash",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE invoice_hashes_through SET invoice = (SELECT COALESCE(MAX(id), 0) FROM invoices)
            WHERE id = 1",
    )
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// Whether invoices were committed that [`index_new_invoices`] has not indexed yet.
async fn index_is_behind(pool: &SqlitePool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM invoices)
            > (SELECT invoice FROM invoice_hashes_through WHERE id = 1)",
    )
    .fetch_one(pool)
    .await
}

/// The indexed invoice with this payment hash: its number, preimage, payee wallet, expiry and
/// settlement, in that order.
async fn find_invoice<'c>(
    db: impl sqlx::SqliteExecutor<'c>,
    hash: &PaymentHash,
) -> Result<Option<sqlx::sqlite::SqliteRow>, sqlx::Error> {
    sqlx::query(
        "SELECT i.id, i.preimage, i.wallet, i.expires_ms, i.settled_ms
            FROM invoice_hashes h JOIN invoices i ON i.id = h.invoice
            WHERE h.payment_hash = ?",
    )
    .bind(hash.as_bytes().to_vec())
    .fetch_optional(db)
    .await
}

/// An invoice to record.
struct NewInvoice {
    payment_hash: [u8; 32],
    preimage: [u8; 32],
    wallet: String,
    amount_msat: i64,
    created_ms: i64,
    expires_ms: i64,
}

struct PendingInvoice {
    row: NewInvoice,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The final hop's CLTV delta the dev node's invoices ask for.
const MIN_FINAL_CLTV_EXPIRY_DELTA: u64 = 18;

/// The most invoices written in one transaction (and one statement: 6 columns each).
const INVOICE_BATCH: usize = 128;

/// Writes invoices as they come, those that arrive during a write together in the next one:
/// every statement is a hand-off to the SQLite connection's thread, so batching is what keeps
/// invoice creation near the cost of signing under load. Each caller waits for its commit.
fn spawn_invoice_writer(pool: SqlitePool) -> tokio::sync::mpsc::Sender<PendingInvoice> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<PendingInvoice>(4 * INVOICE_BATCH);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(INVOICE_BATCH);
        while rx.recv_many(&mut batch, INVOICE_BATCH).await > 0 {
            // Every task that is ready runs first and adds its invoice to this write (again,
            // while that brings more).
            for _ in 0..8 {
                if batch.len() >= INVOICE_BATCH {
                    break;
                }
                tokio::task::yield_now().await;
                let before = batch.len();
                while batch.len() < INVOICE_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                if batch.len() == before {
                    break;
                }
            }
            let result = write_invoices(&pool, &batch)
                .await
                .map_err(|e| format!("cannot record the invoice: {e}"));
            for p in batch.drain(..) {
                let _ = p.done.send(result.clone());
            }
        }
    });
    tx
}

async fn write_invoices(pool: &SqlitePool, batch: &[PendingInvoice]) -> Result<(), sqlx::Error> {
    let group = "(?, ?, ?, ?, ?, ?)";
    let mut sql = String::from(
        "INSERT INTO invoices (payment_hash, preimage, wallet, amount_msat, created_ms, expires_ms) VALUES ",
    );
    for i in 0..batch.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(group);
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for p in batch {
        let r = &p.row;
        query = query
            .bind(r.payment_hash.to_vec())
            .bind(r.preimage.to_vec())
            .bind(r.wallet.as_str())
            .bind(r.amount_msat)
            .bind(r.created_ms)
            .bind(r.expires_ms);
    }
    // One statement: atomic on its own, no explicit transaction needed.
    query.execute(pool).await.map(|_| ())
}

// === impl DevNode ===

impl DevNode {
    /// Opens (or creates) a dev node whose state lives in the SQLite file at `path`.
    pub async fn open(path: &Path, config: DevNodeConfig) -> Result<Self, BackendError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // Checkpoints every 8000 pages instead of 1000, on every connection (whichever
            // commits past the limit checkpoints): hot pages are copied to the database once per
            // checkpoint, so less often is less.
            .pragma("wal_autocheckpoint", "8000");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| {
                err(
                    ErrorKind::Unavailable,
                    "open",
                    format!("cannot open {}: {e}", path.display()),
                )
            })?;
        Self::init(pool, None, config).await
    }

    /// A dev node held entirely in memory (for tests and one-shot demos).
    pub async fn in_memory(config: DevNodeConfig) -> Result<Self, BackendError> {
        // sqlx names the database (`file:sqlx-in-memory-N`, shared cache): the keeper and the
        // pool's connection open the same one.
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(db_err("open"))?;
        let keeper = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(db_err("open"))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db_err("open"))?;
        Self::init(pool, Some(std::sync::Mutex::new(keeper)), config).await
    }

    async fn init(
        pool: SqlitePool,
        keeper: Option<std::sync::Mutex<sqlx::SqliteConnection>>,
        config: DevNodeConfig,
    ) -> Result<Self, BackendError> {
        for stmt in SCHEMA {
            sqlx::query(*stmt)
                .execute(&pool)
                .await
                .map_err(db_err("open"))?;
        }
        sqlx::query(sqlx::AssertSqlSafe(invoices_table("invoices")))
            .execute(&pool)
            .await
            .map_err(db_err("open"))?;
        upgrade_invoice_table(&pool).await?;
        let existing = sqlx::query("SELECT secret_key FROM node WHERE id = 1")
            .fetch_optional(&pool)
            .await
            .map_err(db_err("open"))?;
        let key = match existing {
            Some(row) => {
                let bytes: Vec<u8> = row.get(0);
                SecretKey::from_slice(&bytes).map_err(|e| {
                    err(ErrorKind::Protocol, "open", format!("stored node key: {e}"))
                })?
            }
            None => {
                let key = loop {
                    let mut b = [0u8; 32];
                    getrandom::fill(&mut b).expect("OS random source");
                    if let Ok(k) = SecretKey::from_slice(&b) {
                        break k;
                    }
                };
                sqlx::query("INSERT INTO node (id, secret_key) VALUES (1, ?)")
                    .bind(key.secret_bytes().to_vec())
                    .execute(&pool)
                    .await
                    .map_err(db_err("open"))?;
                key
            }
        };
        let secp = Secp256k1::new();
        let node_id = PublicKey::from_secret_key(&secp, &key);
        // A file-backed node writes invoices through a connection of its own, kept open: SQLite
        // drops a connection's page cache whenever another one has written, so a writer that
        // always uses the same connection keeps the invoice table's pages cached. (In memory
        // the pool already is one connection.)
        let writer_pool = if keeper.is_some() {
            pool.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                // The page cache stays at SQLite's 2 MiB: a larger one measured slower, as every
                // commit walks all of it.
                .connect_with((*pool.connect_options()).clone())
                .await
                .map_err(db_err("open"))?
        };
        let invoice_writer = spawn_invoice_writer(writer_pool);
        Ok(DevNode {
            inner: Arc::new(Inner {
                pool,
                key,
                node_id,
                secp,
                config,
                known_wallets: Default::default(),
                invoice_writer,
                keeper,
            }),
        })
    }

    /// The node's public key (the payee key of its invoices).
    pub fn node_id(&self) -> PublicKey {
        self.inner.node_id
    }

    /// A handle on the named wallet (created with the initial balance on first use).
    pub fn wallet(&self, name: impl Into<String>) -> DevWallet {
        DevWallet {
            node: self.clone(),
            name: name.into(),
        }
    }

    /// The HTTP API of this node (see [`DevNodeClient`](crate::DevNodeClient)), optionally
    /// guarded by an API key (`Authorization: Bearer <key>`).
    pub fn router(&self, api_key: Option<String>) -> axum::Router {
        crate::server::router(self.clone(), api_key)
    }

    async fn ensure_wallet(&self, name: &str, call: &'static str) -> Result<(), BackendError> {
        let known = |w: &std::sync::RwLock<std::collections::HashSet<String>>| {
            w.read().unwrap_or_else(|p| p.into_inner()).contains(name)
        };
        if known(&self.inner.known_wallets) {
            return Ok(());
        }
        sqlx::query("INSERT OR IGNORE INTO wallets (name, balance_msat) VALUES (?, ?)")
            .bind(name)
            .bind(msat_i64(self.inner.config.initial_balance, call)?)
            .execute(&self.inner.pool)
            .await
            .map_err(db_err(call))?;
        self.inner
            .known_wallets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned());
        Ok(())
    }

    fn fee_for(&self, amount: Msat) -> Msat {
        let c = &self.inner.config;
        let prop = (u128::from(amount.as_u64()) * u128::from(c.fee_ppm) / 1_000_000) as u64;
        c.fee_base.saturating_add(Msat::new(prop))
    }
}

// === impl DevWallet ===

impl DevWallet {
    /// The wallet's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node this wallet lives on.
    pub fn node(&self) -> &DevNode {
        &self.node
    }

    /// The wallet's balance.
    pub async fn balance(&self) -> Result<Msat, BackendError> {
        self.node.ensure_wallet(&self.name, "balance").await?;
        let row = sqlx::query("SELECT balance_msat FROM wallets WHERE name = ?")
            .bind(&self.name)
            .fetch_one(&self.node.inner.pool)
            .await
            .map_err(db_err("balance"))?;
        Ok(Msat::new(row.get::<i64, _>(0) as u64))
    }

    async fn create(&self, request: InvoiceRequest) -> Result<CreatedInvoice, BackendError> {
        const CALL: &str = "create invoice";
        if request.amount == Msat::ZERO {
            return Err(err(
                ErrorKind::InvalidRequest,
                CALL,
                "amountless invoices are not supported",
            ));
        }
        let amount = msat_i64(request.amount, CALL)?;
        self.node.ensure_wallet(&self.name, CALL).await?;
        let preimage = Preimage::random();
        let hash = preimage.payment_hash();
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("OS random source");
        let inner = &self.node.inner;
        let created = now_ms();
        let terms = crate::bolt11::Terms {
            amount_msat: request.amount.as_u64(),
            description: &request.memo,
            payment_hash: hash.as_bytes(),
            payment_secret: &secret,
            timestamp: (created / 1000) as u64,
            expiry_secs: request.expiry.as_secs(),
            min_final_cltv_expiry_delta: MIN_FINAL_CLTV_EXPIRY_DELTA,
        };
        let bolt11 = crate::bolt11::encode_signed(&terms, |digest| {
            let signature = inner
                .secp
                .sign_ecdsa_recoverable(&Message::from_digest(*digest), &inner.key);
            let (id, compact) = signature.serialize_compact();
            (compact, id.to_i32() as u8)
        })
        .map_err(|e| {
            err(
                ErrorKind::InvalidRequest,
                CALL,
                format!("cannot build invoice: {e}"),
            )
        })?;
        let expires =
            created.saturating_add(i64::try_from(request.expiry.as_millis()).unwrap_or(i64::MAX));
        let (done, written) = tokio::sync::oneshot::channel();
        let row = NewInvoice {
            payment_hash: *hash.as_bytes(),
            preimage: *preimage.as_bytes(),
            wallet: self.name.clone(),
            amount_msat: amount,
            created_ms: created,
            expires_ms: expires,
        };
        let unavailable = || err(ErrorKind::Unavailable, CALL, "the dev node has stopped");
        inner
            .invoice_writer
            .send(PendingInvoice { row, done })
            .await
            .map_err(|_| unavailable())?;
        written
            .await
            .map_err(|_| unavailable())?
            .map_err(|e| err(ErrorKind::Unavailable, CALL, e))?;
        Ok(CreatedInvoice {
            bolt11,
            payment_hash: hash,
        })
    }

    async fn state(&self, hash: &PaymentHash) -> Result<InvoiceState, BackendError> {
        const CALL: &str = "invoice state";
        let pool = &self.node.inner.pool;
        let mut row = find_invoice(pool, hash).await.map_err(db_err(CALL))?;
        if row.is_none() && index_is_behind(pool).await.map_err(db_err(CALL))? {
            // Not indexed yet, perhaps: index what is new, then look again.
            let mut tx = pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(db_err(CALL))?;
            index_new_invoices(&mut tx).await.map_err(db_err(CALL))?;
            tx.commit().await.map_err(db_err(CALL))?;
            row = find_invoice(pool, hash).await.map_err(db_err(CALL))?;
        }
        let row = row
            .filter(|r| r.get::<&str, _>(2) == self.name)
            .ok_or_else(|| {
                err(
                    ErrorKind::NotFound,
                    CALL,
                    format!("no invoice {hash} in wallet {:?}", self.name),
                )
            })?;
        let expires: i64 = row.get(3);
        let settled: Option<i64> = row.get(4);
        Ok(match settled {
            Some(_) => InvoiceState::Settled,
            None if now_ms() >= expires => InvoiceState::Expired,
            None => InvoiceState::Open,
        })
    }

    async fn pay_invoice(&self, request: PayRequest) -> Result<Paid, BackendError> {
        const CALL: &str = "pay";
        let invoice = Bolt11Invoice::from_str(request.bolt11.trim()).map_err(|e| {
            err(
                ErrorKind::InvalidRequest,
                CALL,
                format!("not a BOLT11 invoice: {e}"),
            )
        })?;
        let inner = &self.node.inner;
        if invoice.recover_payee_pub_key() != inner.node_id {
            return Err(err(
                ErrorKind::PaymentFailed,
                CALL,
                "no route: the invoice was not issued by this dev node",
            ));
        }
        let amount = invoice
            .amount_milli_satoshis()
            .map(Msat::new)
            .ok_or_else(|| {
                err(
                    ErrorKind::InvalidRequest,
                    CALL,
                    "amountless invoices are not supported",
                )
            })?;
        let fee = self.node.fee_for(amount);
        if fee > request.max_fee {
            return Err(err(
                ErrorKind::PaymentFailed,
                CALL,
                format!(
                    "routing fee {fee} msat exceeds the limit of {} msat",
                    request.max_fee
                ),
            ));
        }
        let hash = PaymentHash::from_bytes(*AsRef::<[u8; 32]>::as_ref(invoice.payment_hash()));
        self.node.ensure_wallet(&self.name, CALL).await?;

        // Take the write lock up front: this transaction reads, then writes.
        let mut tx = inner
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_err(CALL))?;
        let mut row = find_invoice(&mut *tx, &hash).await.map_err(db_err(CALL))?;
        if row.is_none() {
            // The write lock is held: index what is new, then look again.
            index_new_invoices(&mut tx).await.map_err(db_err(CALL))?;
            row = find_invoice(&mut *tx, &hash).await.map_err(db_err(CALL))?;
        }
        let row = row.ok_or_else(|| err(ErrorKind::PaymentFailed, CALL, "unknown invoice"))?;
        let invoice_id: i64 = row.get(0);
        let preimage_bytes: Vec<u8> = row.get(1);
        let payee: String = row.get(2);
        let expires: i64 = row.get(3);
        let settled: Option<i64> = row.get(4);
        if settled.is_some() {
            return Err(err(
                ErrorKind::AlreadyPaid,
                CALL,
                format!("invoice {hash} is already paid"),
            ));
        }
        if now_ms() >= expires {
            return Err(err(
                ErrorKind::InvoiceExpired,
                CALL,
                format!("invoice {hash} has expired"),
            ));
        }
        let total = amount
            .checked_add(fee)
            .ok_or_else(|| err(ErrorKind::InvalidRequest, CALL, "amount too large"))?;
        let debit = sqlx::query("UPDATE wallets SET balance_msat = balance_msat - ? WHERE name = ? AND balance_msat >= ?")
            .bind(msat_i64(total, CALL)?)
            .bind(&self.name)
            .bind(msat_i64(total, CALL)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err(CALL))?;
        if debit.rows_affected() != 1 {
            return Err(err(
                ErrorKind::InsufficientBalance,
                CALL,
                format!("wallet {:?} cannot pay {total} msat", self.name),
            ));
        }
        let now = now_ms();
        sqlx::query("UPDATE wallets SET balance_msat = balance_msat + ? WHERE name = ?")
            .bind(msat_i64(amount, CALL)?)
            .bind(&payee)
            .execute(&mut *tx)
            .await
            .map_err(db_err(CALL))?;
        sqlx::query("UPDATE invoices SET settled_ms = ? WHERE id = ?")
            .bind(now)
            .bind(invoice_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err(CALL))?;
        sqlx::query(
            "INSERT INTO payments (wallet, payment_hash, amount_msat, fee_msat, preimage, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&self.name)
        .bind(hash.as_bytes().to_vec())
        .bind(msat_i64(amount, CALL)?)
        .bind(msat_i64(fee, CALL)?)
        .bind(&preimage_bytes)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_err(CALL))?;
        tx.commit().await.map_err(db_err(CALL))?;
        let preimage = Preimage::try_from(&preimage_bytes[..])
            .map_err(|e| err(ErrorKind::Protocol, CALL, format!("stored preimage: {e}")))?;
        tracing::debug!(wallet = %self.name, %hash, %amount, "dev node payment settled");
        Ok(Paid {
            preimage,
            amount,
            fee,
        })
    }

    async fn lookup_payment(&self, hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        const CALL: &str = "payment lookup";
        let row = sqlx::query("SELECT amount_msat, fee_msat, preimage FROM payments WHERE wallet = ? AND payment_hash = ?")
            .bind(&self.name)
            .bind(hash.as_bytes().to_vec())
            .fetch_optional(&self.node.inner.pool)
            .await
            .map_err(db_err(CALL))?;
        let Some(row) = row else {
            return Ok(PaymentState::NotFound);
        };
        let preimage_bytes: Vec<u8> = row.get(2);
        Ok(PaymentState::Succeeded(Paid {
            preimage: Preimage::try_from(&preimage_bytes[..])
                .map_err(|e| err(ErrorKind::Protocol, CALL, format!("stored preimage: {e}")))?,
            amount: Msat::new(row.get::<i64, _>(0) as u64),
            fee: Msat::new(row.get::<i64, _>(1) as u64),
        }))
    }
}

impl InvoiceIssuer for DevWallet {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn create_invoice(
        &self,
        request: InvoiceRequest,
    ) -> Result<CreatedInvoice, BackendError> {
        self.create(request).await
    }

    async fn invoice_state(
        &self,
        payment_hash: &PaymentHash,
    ) -> Result<InvoiceState, BackendError> {
        self.state(payment_hash).await
    }
}

impl InvoicePayer for DevWallet {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn pay(&self, request: PayRequest) -> Result<Paid, BackendError> {
        self.pay_invoice(request).await
    }

    async fn payment(&self, payment_hash: &PaymentHash) -> Result<PaymentState, BackendError> {
        self.lookup_payment(payment_hash).await
    }
}

impl std::fmt::Debug for DevNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevNode")
            .field("node_id", &self.inner.node_id.to_string())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for DevWallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevWallet")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_node_keeps_its_state_when_its_connection_is_dropped() {
        let node = DevNode::in_memory(DevNodeConfig::default()).await.unwrap();
        let shop = node.wallet("shop");
        let first = shop
            .create_invoice(InvoiceRequest::new(Msat::from_sat(1), "x"))
            .await
            .unwrap();
        // What a cancelled query does: the pool's only connection goes away.
        node.inner
            .pool
            .acquire()
            .await
            .unwrap()
            .close()
            .await
            .unwrap();
        assert_eq!(
            shop.invoice_state(&first.payment_hash).await.unwrap(),
            InvoiceState::Open
        );
        shop.create_invoice(InvoiceRequest::new(Msat::from_sat(1), "y"))
            .await
            .expect("tables survive");
    }
}
