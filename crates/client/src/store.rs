//! The client's durable state, in SQLite: the payment journal and the tokens it produced.
//!
//! Every payment is written **pending** (with its challenge) before the wallet is asked to pay,
//! and completed after. A crash in between leaves a pending entry, which the next run resolves by
//! asking the wallet about that payment hash — it is never paid a second time. Paid entries are
//! the token cache, keyed by origin and path scope.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use l402::macaroon::Macaroon;
use l402::{Msat, PaymentHash, Preimage, Scheme};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{Budget, ClientError};

/// A journal entry: one challenge and what became of its payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// `scheme://host:port` of the server.
    pub origin: String,
    /// Path prefix the token is used for.
    pub scope: String,
    /// The scheme the server challenged with.
    pub scheme: Scheme,
    /// The macaroon.
    pub macaroon: Macaroon,
    /// The BOLT11 invoice.
    pub invoice: String,
    /// The invoice amount.
    pub amount: Msat,
    /// `pending`, `paid` or `failed`.
    pub state: EntryState,
    /// The preimage, once paid.
    pub preimage: Option<Preimage>,
    /// The routing fee, once paid.
    pub fee: Option<Msat>,
    /// When the challenge was journaled (unix seconds).
    pub created_at: i64,
    /// When the server last refused this token, if ever (unix seconds).
    pub rejected_at: Option<i64>,
}

/// The state of a journal entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryState {
    /// Written before paying; the payment's outcome is not known yet.
    Pending,
    /// Paid: the preimage is known and the token usable.
    Paid,
    /// The payment failed; nothing was spent.
    Failed,
}

impl EntryState {
    /// `pending`, `paid` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Paid => "paid",
            EntryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "paid" => EntryState::Paid,
            "failed" => EntryState::Failed,
            _ => EntryState::Pending,
        }
    }
}

/// What the journal says to do before paying a new challenge.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The new pending entry is written: go ahead and pay.
    Pay,
    /// Another payment for this origin and scope is pending: resolve that one instead.
    Pending(Box<Entry>),
    /// Another request (or process) already bought a token for this scope: use it.
    Token(Box<Entry>),
}

/// The client's SQLite store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientStore {
    pool: SqlitePool,
    /// For an in-memory store: a connection held open, unused, so the database outlives the
    /// pool's connection (which a cancelled query closes; a new one would be empty).
    #[allow(dead_code, reason = "held, never read")]
    keeper: Option<std::sync::Arc<std::sync::Mutex<sqlx::SqliteConnection>>>,
}

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS payments (
    payment_hash BLOB PRIMARY KEY,
    origin TEXT NOT NULL,
    scope TEXT NOT NULL,
    scheme TEXT NOT NULL,
    macaroon TEXT NOT NULL,
    invoice TEXT NOT NULL,
    amount_msat INTEGER NOT NULL,
    state TEXT NOT NULL,
    preimage BLOB,
    fee_msat INTEGER,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    rejected_at INTEGER
)";

const COLUMNS: &str = "payment_hash, origin, scope, scheme, macaroon, invoice, amount_msat, state, preimage, fee_msat, created_at, rejected_at";

/// Committed spending inside a transaction, pending payments counted at `pending_fee`.
async fn committed(
    conn: &mut sqlx::SqliteConnection,
    since: i64,
    origin: Option<&str>,
    pending_fee: Msat,
) -> Result<Msat, ClientError> {
    let v: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_msat + CASE WHEN state = 'pending' THEN ? ELSE COALESCE(fee_msat, 0) END), 0) AS INTEGER)
         FROM payments WHERE state IN ('pending', 'paid') AND created_at >= ? AND (? IS NULL OR origin = ?)",
    )
    .bind(pending_fee.as_u64() as i64)
    .bind(since)
    .bind(origin)
    .bind(origin)
    .fetch_one(conn)
    .await?;
    Ok(Msat::new(v as u64))
}

fn entry(row: &sqlx::sqlite::SqliteRow) -> Result<Entry, ClientError> {
    let bad = |what: &str| ClientError::Store {
        reason: format!("corrupt journal entry: {what}"),
    };
    let hash: Vec<u8> = row.try_get(0)?;
    let scheme: String = row.try_get(3)?;
    let mac: String = row.try_get(4)?;
    let preimage: Option<Vec<u8>> = row.try_get(8)?;
    Ok(Entry {
        payment_hash: PaymentHash::try_from(&hash[..]).map_err(|_| bad("payment hash"))?,
        origin: row.try_get(1)?,
        scope: row.try_get(2)?,
        scheme: Scheme::from_name(&scheme).ok_or_else(|| bad("scheme"))?,
        macaroon: Macaroon::from_text(&mac).map_err(|_| bad("macaroon"))?,
        invoice: row.try_get(5)?,
        amount: Msat::new(row.try_get::<i64, _>(6)? as u64),
        state: EntryState::parse(&row.try_get::<String, _>(7)?),
        preimage: preimage
            .map(|p| Preimage::try_from(&p[..]).map_err(|_| bad("preimage")))
            .transpose()?,
        fee: row
            .try_get::<Option<i64>, _>(9)?
            .map(|f| Msat::new(f as u64)),
        created_at: row.try_get(10)?,
        rejected_at: row.try_get(11)?,
    })
}

impl ClientStore {
    /// Opens (or creates) the store at `path` (WAL, synchronous=FULL: a pending entry is on disk
    /// before any payment starts).
    pub async fn open(path: &Path) -> Result<Self, ClientError> {
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| ClientError::Store {
                reason: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| ClientError::Store {
                reason: format!("cannot open {}: {e}", path.display()),
            })?;
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(ClientStore { pool, keeper: None })
    }

    /// A store in memory (nothing survives the process; for tests).
    pub async fn in_memory() -> Result<Self, ClientError> {
        // sqlx names the database (`file:sqlx-in-memory-N`, shared cache): the keeper and the
        // pool's connection open the same one.
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?;
        let keeper = sqlx::ConnectOptions::connect(&options).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::query(SCHEMA).execute(&pool).await?;
        Ok(ClientStore {
            pool,
            keeper: Some(std::sync::Arc::new(std::sync::Mutex::new(keeper))),
        })
    }

    /// The newest usable token for a request to `origin` at `path`: paid, not refused since, and
    /// whose scope covers the path.
    pub async fn token_for(&self, origin: &str, path: &str) -> Result<Option<Entry>, ClientError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE origin = ? AND state = 'paid' AND rejected_at IS NULL ORDER BY created_at DESC"
        )))
        .bind(origin)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let e = entry(row)?;
            if path.starts_with(&e.scope) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Pending entries, oldest first (optionally for one origin).
    pub async fn pending(&self, origin: Option<&str>) -> Result<Vec<Entry>, ClientError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE state = 'pending' AND (? IS NULL OR origin = ?) ORDER BY created_at"
        )))
        .bind(origin)
        .bind(origin)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Writes a pending entry for `e` unless the journal says otherwise (see [`Claim`]) or the
    /// `budget` has no room for it. Runs in one write transaction, so two processes racing for
    /// the same resource cannot both pay, and racing payments cannot together pass a limit.
    pub(crate) async fn claim(&self, e: &Entry, budget: &Budget) -> Result<Claim, ClientError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE origin = ? AND state IN ('pending', 'paid') AND rejected_at IS NULL ORDER BY created_at DESC"
        )))
        .bind(&e.origin)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let other = entry(row)?;
            if !e.scope.starts_with(&other.scope) {
                continue;
            }
            match other.state {
                EntryState::Pending => return Ok(Claim::Pending(Box::new(other))),
                EntryState::Paid => return Ok(Claim::Token(Box::new(other))),
                EntryState::Failed => {}
            }
        }
        if budget.needs_totals() {
            let day_ago = now() - 86_400;
            let on_origin = committed(&mut tx, day_ago, Some(&e.origin), budget.max_fee).await?;
            let total = committed(&mut tx, 0, None, budget.max_fee).await?;
            budget.check_spent(&e.origin, e.amount, on_origin, total)?;
        }
        sqlx::query(
            "INSERT INTO payments (payment_hash, origin, scope, scheme, macaroon, invoice, amount_msat, state, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
        )
        .bind(e.payment_hash.as_bytes().to_vec())
        .bind(&e.origin)
        .bind(&e.scope)
        .bind(e.scheme.as_str())
        .bind(e.macaroon.to_base64())
        .bind(&e.invoice)
        .bind(e.amount.as_u64() as i64)
        .bind(e.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(d) if d.is_unique_violation() => ClientError::Protocol {
                reason: format!("the server sent a challenge we already journaled ({})", e.payment_hash),
            },
            _ => ClientError::from(err),
        })?;
        tx.commit().await?;
        Ok(Claim::Pay)
    }

    /// Records a completed payment.
    pub(crate) async fn complete(
        &self,
        hash: &PaymentHash,
        preimage: &Preimage,
        fee: Msat,
    ) -> Result<(), ClientError> {
        sqlx::query("UPDATE payments SET state = 'paid', preimage = ?, fee_msat = ?, completed_at = ? WHERE payment_hash = ?")
            .bind(preimage.as_bytes().to_vec())
            .bind(fee.as_u64() as i64)
            .bind(now())
            .bind(hash.as_bytes().to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a payment that definitely did not happen.
    pub(crate) async fn fail(&self, hash: &PaymentHash) -> Result<(), ClientError> {
        sqlx::query("UPDATE payments SET state = 'failed', completed_at = ? WHERE payment_hash = ? AND state = 'pending'")
            .bind(now())
            .bind(hash.as_bytes().to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that the server refused this token (revoked, expired, another service).
    pub(crate) async fn reject(&self, hash: &PaymentHash) -> Result<(), ClientError> {
        sqlx::query("UPDATE payments SET rejected_at = ? WHERE payment_hash = ?")
            .bind(now())
            .bind(hash.as_bytes().to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Money committed (paid or pending, amount plus fee) since `since` (unix seconds),
    /// optionally for one origin. Pending payments count (they may have gone through), with no
    /// fee yet; budget checks count them at the most fee they may cost.
    pub async fn spent_since(&self, since: i64, origin: Option<&str>) -> Result<Msat, ClientError> {
        let v: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(amount_msat + COALESCE(fee_msat, 0)), 0) AS INTEGER) FROM payments
             WHERE state IN ('pending', 'paid') AND created_at >= ? AND (? IS NULL OR origin = ?)",
        )
        .bind(since)
        .bind(origin)
        .bind(origin)
        .fetch_one(&self.pool)
        .await?;
        Ok(Msat::new(v as u64))
    }

    /// Every entry, newest first.
    pub async fn entries(&self) -> Result<Vec<Entry>, ClientError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments ORDER BY created_at DESC, rowid DESC"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(entry).collect()
    }

    /// One entry by payment hash.
    pub async fn entry(&self, hash: &PaymentHash) -> Result<Option<Entry>, ClientError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM payments WHERE payment_hash = ?"
        )))
        .bind(hash.as_bytes().to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(entry).transpose()
    }

    /// Forgets a token (the entry stays in the spend log, marked refused).
    pub async fn remove_token(&self, hash: &PaymentHash) -> Result<bool, ClientError> {
        let n = sqlx::query("UPDATE payments SET rejected_at = ? WHERE payment_hash = ? AND state = 'paid' AND rejected_at IS NULL")
            .bind(now())
            .bind(hash.as_bytes().to_vec())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}

#[cfg(test)]
mod keeper_tests {
    use super::*;

    #[tokio::test]
    async fn an_in_memory_store_outlives_the_pools_connection() {
        let store = ClientStore::in_memory().await.unwrap();
        // What a cancelled query does: the pool's only connection goes away.
        store.pool.acquire().await.unwrap().close().await.unwrap();
        assert!(store.entries().await.expect("tables survive").is_empty());
    }
}
