//! The queries, written once and run on either database.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use l402::{Identifier, KeyId, Msat, PaymentHash, RootKey, StoreError, TokenId, TokenRecord};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::broadcast;

use crate::Revocation;

/// The PostgreSQL notification channel revocations are announced on.
pub(crate) const CHANNEL: &str = "l402_revocations";

#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(
        SqlitePool,
        #[allow(
            dead_code,
            reason = "held, never read: keeps an in-memory database alive"
        )]
        Option<std::sync::Arc<MemoryKeeper>>,
    ),
    Postgres(PgPool),
}

/// A connection held open, unused, for the life of an in-memory SQLite database: the database
/// lives only while some connection to it is open, and the pool may close its connection (a
/// query cancelled mid-flight does that) and open a new one onto an empty database.
pub(crate) struct MemoryKeeper(
    #[allow(dead_code, reason = "held, never read")] std::sync::Mutex<sqlx::SqliteConnection>,
);

/// Placeholder style of the database a query runs on.
#[derive(Clone, Copy)]
pub(crate) enum Ph {
    Question,
    Dollar,
}

impl Ph {
    /// The statement that opens a transaction that will write. SQLite must take the write lock
    /// up front: a deferred transaction that reads first and writes later fails with "database is
    /// locked" when another connection writes in between.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Ph::Question => "BEGIN IMMEDIATE",
            Ph::Dollar => "BEGIN",
        }
    }

    /// The query text with `?` placeholders, renumbered `$1, $2, …` for PostgreSQL.
    pub(crate) fn sql(self, text: &'static str) -> AssertSqlSafe<Cow<'static, str>> {
        self.convert(Cow::Borrowed(text))
    }

    /// [`sql`](Self::sql) for a statement built at run time (from our own constants only).
    pub(crate) fn sql_owned(self, text: String) -> AssertSqlSafe<Cow<'static, str>> {
        self.convert(Cow::Owned(text))
    }

    fn convert(self, text: Cow<'static, str>) -> AssertSqlSafe<Cow<'static, str>> {
        match self {
            Ph::Question => AssertSqlSafe(text),
            Ph::Dollar => {
                let mut out = String::with_capacity(text.len() + 8);
                let mut n = 0;
                for c in text.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                AssertSqlSafe(Cow::Owned(out))
            }
        }
    }
}

/// `head` followed by `rows` groups of `columns` placeholders: `(?, ?), (?, ?)`.
fn rows_sql(head: &str, columns: usize, rows: usize) -> String {
    let group = format!("({})", vec!["?"; columns].join(", "));
    let mut sql = String::with_capacity(head.len() + rows * (group.len() + 2));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&group);
    }
    sql
}

/// Runs the same body on whichever pool `db` holds, with `pool` and `ph` bound.
macro_rules! on_db {
    ($db:expr, |$pool:ident, $ph:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool, _) => {
                let $ph = Ph::Question;
                $body
            }
            Db::Postgres($pool) => {
                let $ph = Ph::Dollar;
                $body
            }
        }
    };
}
pub(crate) use on_db;

/// Maps a database error: configuration and data errors are permanent, anything about reaching
/// or locking the database is transient.
pub(crate) fn map_err(call: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| {
        let permanent = matches!(
            e,
            sqlx::Error::Configuration(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::Decode(_)
                | sqlx::Error::TypeNotFound { .. }
                | sqlx::Error::Migrate(_)
        );
        let detail = format!("{call}: {e}");
        let err = if permanent {
            StoreError::permanent(detail)
        } else {
            StoreError::transient(detail)
        };
        err.with_source(e)
    }
}

fn bytes32<T: for<'a> TryFrom<&'a [u8], Error = l402::Error>>(
    b: &[u8],
    what: &str,
) -> Result<T, StoreError> {
    T::try_from(b).map_err(|e| StoreError::permanent(format!("stored {what}: {e}")))
}

/// A token's record as the store keeps it (the root key is not included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token id.
    pub token_id: TokenId,
    /// The root-key store key.
    pub key_id: KeyId,
    /// The invoice's payment hash.
    pub payment_hash: PaymentHash,
    /// The service it was minted for.
    pub service: String,
    /// Its price.
    pub price: Msat,
    /// The BOLT11 invoice.
    pub invoice: String,
    /// When it was minted (unix seconds).
    pub created_at: i64,
    /// When the invoice stopped being payable (unix seconds).
    pub invoice_expires_at: i64,
    /// When it was first seen paid (unix seconds).
    pub paid_at: Option<i64>,
    /// When it was revoked (unix seconds).
    pub revoked_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "token_id, key_id, payment_hash, service, price_msat, invoice, created_at, invoice_expires_at, paid_at, revoked_at";

fn token_info<R: Row>(row: &R) -> Result<TokenInfo, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let get_bytes = |i: usize| row.try_get::<Vec<u8>, _>(i).map_err(map_err("read token"));
    Ok(TokenInfo {
        token_id: bytes32(&get_bytes(0)?, "token id")?,
        key_id: bytes32(&get_bytes(1)?, "key id")?,
        payment_hash: bytes32(&get_bytes(2)?, "payment hash")?,
        service: row.try_get(3).map_err(map_err("read token"))?,
        price: Msat::new(row.try_get::<i64, _>(4).map_err(map_err("read token"))? as u64),
        invoice: row.try_get(5).map_err(map_err("read token"))?,
        created_at: row.try_get(6).map_err(map_err("read token"))?,
        invoice_expires_at: row.try_get(7).map_err(map_err("read token"))?,
        paid_at: row.try_get(8).map_err(map_err("read token"))?,
        revoked_at: row.try_get(9).map_err(map_err("read token"))?,
    })
}

impl Db {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub(crate) async fn connect(url: &str) -> Result<Db, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::permanent(format!("invalid PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .map_err(map_err("connect to PostgreSQL"))?;
            return Ok(Db::Postgres(pool));
        }
        if url == "sqlite::memory:" {
            // sqlx names the database (`file:sqlx-in-memory-N`, shared cache), so the keeper
            // and the pool's connection open the same one.
            let options = SqliteConnectOptions::from_str(url).map_err(map_err("open SQLite"))?;
            let keeper = sqlx::ConnectOptions::connect(&options)
                .await
                .map_err(map_err("open SQLite"))?;
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(map_err("open SQLite"))?;
            return Ok(Db::Sqlite(
                pool,
                Some(std::sync::Arc::new(MemoryKeeper(std::sync::Mutex::new(
                    keeper,
                )))),
            ));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                StoreError::permanent(format!(
                    "unsupported database URL {url:?}: use sqlite:PATH or postgres://…"
                ))
            })?;
        let path = path.split('?').next().unwrap_or(path);
        Self::sqlite_file(Path::new(path)).await
    }

    /// The database the group-commit writer uses. For an SQLite file that is a pool of its
    /// own with one connection kept open: SQLite drops a connection's page cache whenever
    /// another connection has written, so inserts that always go through the same connection
    /// find the tables' pages cached instead of reading them back from the file each batch.
    pub(crate) async fn dedicated_writer(&self) -> Result<Db, StoreError> {
        match self {
            Db::Sqlite(pool, None) => {
                // The page cache stays at SQLite's default (2 MiB): a larger one measured slower,
                // as every commit walks the whole cache's hash table (`pcache1TruncateUnsafe`).
                let options = (*pool.connect_options()).clone();
                let writer = SqlitePoolOptions::new()
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(options)
                    .await
                    .map_err(map_err("open SQLite for writing"))?;
                Ok(Db::Sqlite(writer, None))
            }
            // In memory: already one connection. PostgreSQL: no per-connection cache to keep.
            other => Ok(other.clone()),
        }
    }

    pub(crate) async fn sqlite_file(path: &Path) -> Result<Db, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::permanent(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Every commit reaches the disk before a challenge leaves.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            // A revoked token's root key is overwritten on its page, not just unlinked.
            .pragma("secure_delete", "fast")
            // Checkpoints every 8000 pages (32 MiB of WAL) instead of 1000: a page written by
            // many commits in between is copied to the database once, not eight times. Set on
            // every connection: any connection that commits past the limit checkpoints.
            .pragma("wal_autocheckpoint", "8000")
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .map_err(|e| {
                StoreError::transient(format!(
                    "cannot open SQLite database {}: {e}",
                    path.display()
                ))
            })?;
        Ok(Db::Sqlite(pool, None))
    }

    /// Inserts records durably, many rows per statement: with SQLite every statement is a
    /// hand-off to the connection's thread (two context switches on a busy core). A batch that
    /// fits in one statement is that statement alone — atomic and committed by itself, one
    /// hand-off; a larger one is several statements in one transaction.
    pub(crate) async fn insert_batch(&self, records: &[&TokenRecord]) -> Result<(), StoreError> {
        const CALL: &str = "store root key";
        // 9 columns × 100 rows stays far below every placeholder limit (SQLite 32 766,
        // PostgreSQL 65 535).
        const ROWS_PER_STATEMENT: usize = 100;
        macro_rules! insert {
            ($ph:expr, $chunk:expr) => {{
                let chunk = $chunk;
                let sql = rows_sql(
                    "INSERT INTO l402_tokens (key_id, token_id, root_key, payment_hash, service, price_msat, invoice, created_at, invoice_expires_at) VALUES ",
                    9,
                    chunk.len(),
                );
                let mut tokens = sqlx::query($ph.sql_owned(sql));
                for r in chunk {
                    tokens = tokens
                        .bind(r.key_id.as_bytes().to_vec())
                        .bind(r.token_id.as_bytes().to_vec())
                        .bind(r.root_key.as_bytes().to_vec())
                        .bind(r.payment_hash.as_bytes().to_vec())
                        .bind(r.service.as_str())
                        .bind(r.price.as_u64() as i64)
                        .bind(r.invoice.as_str())
                        .bind(r.created_at)
                        .bind(r.invoice_expires_at);
                }
                tokens
            }};
        }
        on_db!(self, |pool, ph| {
            if records.len() <= ROWS_PER_STATEMENT {
                return insert!(ph, records)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(map_err(CALL));
            }
            let mut tx = pool
                .begin_with(ph.begin_write())
                .await
                .map_err(map_err(CALL))?;
            for chunk in records.chunks(ROWS_PER_STATEMENT) {
                insert!(ph, chunk)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err(CALL))?;
            }
            tx.commit().await.map_err(map_err(CALL))
        })
    }

    pub(crate) async fn root_key(
        &self,
        identifier: &Identifier,
    ) -> Result<Option<RootKey>, StoreError> {
        const CALL: &str = "look up root key";
        // No row, or a row whose key was wiped by revocation: no key. The token id finds the
        // row; the payment hash must match too, so the row is this very identifier's.
        let bytes: Option<Option<Vec<u8>>> = on_db!(self, |pool, ph| {
            sqlx::query_scalar(
                ph.sql("SELECT root_key FROM l402_tokens WHERE token_id = ? AND payment_hash = ?"),
            )
            .bind(identifier.token_id().as_bytes().to_vec())
            .bind(identifier.payment_hash().as_bytes().to_vec())
            .fetch_optional(pool)
            .await
        })
        .map_err(map_err(CALL))?;
        bytes
            .flatten()
            .map(|b| bytes32::<RootKey>(&b, "root key"))
            .transpose()
    }

    pub(crate) async fn payment_hash(
        &self,
        token_id: &TokenId,
    ) -> Result<Option<PaymentHash>, StoreError> {
        const CALL: &str = "look up token";
        let bytes: Option<Vec<u8>> = on_db!(self, |pool, ph| {
            sqlx::query_scalar(ph.sql("SELECT payment_hash FROM l402_tokens WHERE token_id = ?"))
                .bind(token_id.as_bytes().to_vec())
                .fetch_optional(pool)
                .await
        })
        .map_err(map_err(CALL))?;
        bytes
            .map(|b| bytes32::<PaymentHash>(&b, "payment hash"))
            .transpose()
    }

    /// Marks a token paid; returns its price when this call was the one that marked it.
    pub(crate) async fn mark_paid(
        &self,
        token_id: &TokenId,
        now: i64,
    ) -> Result<Option<Msat>, StoreError> {
        let price: Option<i64> = on_db!(self, |pool, ph| {
            sqlx::query_scalar(ph.sql(
                "UPDATE l402_tokens SET paid_at = ? WHERE token_id = ? AND paid_at IS NULL RETURNING price_msat",
            ))
            .bind(now)
            .bind(token_id.as_bytes().to_vec())
            .fetch_optional(pool)
            .await
        })
        .map_err(map_err("mark token paid"))?;
        Ok(price.map(|p| Msat::new(p as u64)))
    }

    pub(crate) async fn revoke(
        &self,
        token_id: &TokenId,
        now: i64,
    ) -> Result<Option<KeyId>, StoreError> {
        const CALL: &str = "revoke token";
        let key: Option<Vec<u8>> = on_db!(self, |pool, ph| {
            let mut tx = pool
                .begin_with(ph.begin_write())
                .await
                .map_err(map_err(CALL))?;
            // The root key is wiped, so the token can never verify again; revoking twice keeps
            // the first revocation's time.
            let key: Option<Vec<u8>> = sqlx::query_scalar(ph.sql(
                "UPDATE l402_tokens SET root_key = NULL, revoked_at = COALESCE(revoked_at, ?)
                 WHERE token_id = ? RETURNING key_id",
            ))
            .bind(now)
            .bind(token_id.as_bytes().to_vec())
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err(CALL))?;
            if let (Some(k), Ph::Dollar) = (&key, ph) {
                // Delivered to every listening instance when the transaction commits.
                sqlx::query(ph.sql("SELECT pg_notify(?, ?)"))
                    .bind(CHANNEL)
                    .bind(hex::encode(k))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err(CALL))?;
            }
            tx.commit().await.map_err(map_err(CALL))?;
            Ok::<_, StoreError>(key)
        })?;
        key.map(|k| bytes32::<KeyId>(&k, "key id")).transpose()
    }

    pub(crate) async fn token(&self, token_id: &TokenId) -> Result<Option<TokenInfo>, StoreError> {
        on_db!(self, |pool, ph| {
            let row = sqlx::query(ph.sql(
                "SELECT token_id, key_id, payment_hash, service, price_msat, invoice, created_at, invoice_expires_at, paid_at, revoked_at
                 FROM l402_tokens WHERE token_id = ?",
            ))
            .bind(token_id.as_bytes().to_vec())
            .fetch_optional(pool)
            .await
            .map_err(map_err("look up token"))?;
            row.as_ref().map(token_info).transpose()
        })
    }

    pub(crate) async fn recent_tokens(&self, limit: u32) -> Result<Vec<TokenInfo>, StoreError> {
        debug_assert!(TOKEN_COLUMNS.contains("revoked_at"));
        on_db!(self, |pool, ph| {
            let rows = sqlx::query(ph.sql(
                "SELECT token_id, key_id, payment_hash, service, price_msat, invoice, created_at, invoice_expires_at, paid_at, revoked_at
                 FROM l402_tokens ORDER BY created_at DESC, token_id LIMIT ?",
            ))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map_err("list tokens"))?;
            rows.iter().map(token_info).collect()
        })
    }

    pub(crate) async fn stats(&self) -> Result<crate::Stats, StoreError> {
        on_db!(self, |pool, ph| {
            let row = sqlx::query(ph.sql(
                "SELECT COUNT(*),
                        COUNT(paid_at),
                        COUNT(revoked_at),
                        CAST(COALESCE(SUM(CASE WHEN paid_at IS NOT NULL THEN price_msat ELSE 0 END), 0) AS BIGINT)
                 FROM l402_tokens",
            ))
            .fetch_one(pool)
            .await
            .map_err(map_err("stats"))?;
            let n = |i: usize| row.try_get::<i64, _>(i).map_err(map_err("stats"));
            Ok(crate::Stats {
                tokens: n(0)? as u64,
                paid: n(1)? as u64,
                revoked: n(2)? as u64,
                revenue: Msat::new(n(3)? as u64),
            })
        })
    }

    pub(crate) async fn unpaid_expired(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(TokenId, PaymentHash, i64)>, StoreError> {
        let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = on_db!(self, |pool, ph| {
            sqlx::query_as(ph.sql(
                "SELECT token_id, payment_hash, invoice_expires_at FROM l402_tokens
                 WHERE paid_at IS NULL AND revoked_at IS NULL AND invoice_expires_at < ?
                 ORDER BY invoice_expires_at LIMIT ?",
            ))
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(map_err("find expired challenges"))?;
        rows.iter()
            .map(|(t, h, e)| Ok((bytes32(t, "token id")?, bytes32(h, "payment hash")?, *e)))
            .collect()
    }

    /// Deletes a challenge that is still unpaid; returns how many were deleted (0 or 1).
    pub(crate) async fn delete_unpaid(&self, token_id: &TokenId) -> Result<u64, StoreError> {
        const CALL: &str = "delete expired challenge";
        on_db!(self, |pool, ph| {
            // The root key goes with the row.
            sqlx::query(ph.sql("DELETE FROM l402_tokens WHERE token_id = ? AND paid_at IS NULL"))
                .bind(token_id.as_bytes().to_vec())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(map_err(CALL))
        })
    }
}

/// Listens for revocations from other instances and re-announces them locally. When the
/// connection drops, notifications may have been missed, so `Revocation::All` is announced.
///
/// Returns once the first `LISTEN` is in place, so a store that has opened hears every
/// revocation made after that; an error there is the store's open failing. The task ends when
/// `stop` is dropped (with the store).
pub(crate) async fn start_listener(
    pool: PgPool,
    out: broadcast::Sender<Revocation>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), StoreError> {
    let first = listen_on(&pool).await.map_err(map_err(
        "LISTEN for revocations from other instances (a transaction-pooling proxy such as \
             PgBouncer does not pass LISTEN/NOTIFY)",
    ))?;
    tokio::spawn(async move {
        tokio::select! {
            () = listen(pool, out, first) => {}
            _ = &mut stop => {}
        }
    });
    Ok(())
}

async fn listen_on(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn listen(pool: PgPool, out: broadcast::Sender<Revocation>, first: PgListener) {
    let mut next = Some(first);
    loop {
        let mut listener = match next.take() {
            Some(l) => l,
            None => match listen_on(&pool).await {
                Ok(l) => {
                    // Caches flushed when the connection failed may have loaded keys since,
                    // and revocations made before this LISTEN were not heard: flush again.
                    let _ = out.send(Revocation::All);
                    l
                }
                Err(e) => {
                    tracing::warn!(error = %e, "revocation listener: cannot listen; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => match hex::decode(n.payload())
                    .ok()
                    .and_then(|b| KeyId::try_from(&b[..]).ok())
                {
                    Some(k) => {
                        let _ = out.send(Revocation::Key(k));
                    }
                    None => {
                        tracing::warn!(payload = n.payload(), "bad revocation notification")
                    }
                },
                Ok(None) => {
                    // Reconnected: anything sent meanwhile is lost.
                    let _ = out.send(Revocation::All);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "revocation listener failed; reconnecting");
                    let _ = out.send(Revocation::All);
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> TokenRecord {
        let id = l402::Identifier::new(
            l402::Preimage::random().payment_hash(),
            TokenId::time_ordered(1),
        );
        TokenRecord {
            key_id: id.key_id(),
            root_key: RootKey::generate(),
            token_id: *id.token_id(),
            payment_hash: *id.payment_hash(),
            service: "s".into(),
            price: Msat::from_sat(1),
            invoice: "lnbcrt1".into(),
            created_at: 1,
            invoice_expires_at: 2,
        }
    }

    #[tokio::test]
    async fn a_batch_larger_than_one_statement_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::sqlite_file(&dir.path().join("t.db")).await.unwrap();
        crate::schema::migrate(&db).await.unwrap();
        let records: Vec<TokenRecord> = (0..250).map(|_| record()).collect();
        db.insert_batch(&records.iter().collect::<Vec<_>>())
            .await
            .unwrap();
        for r in &records {
            assert_eq!(
                db.root_key(&r.identifier()).await.unwrap(),
                Some(r.root_key.clone())
            );
        }
        // One bad row (a token id already stored) fails the whole batch: nothing half-written.
        let mut again: Vec<TokenRecord> = (0..150).map(|_| record()).collect();
        again[120] = records[0].clone();
        assert!(
            db.insert_batch(&again.iter().collect::<Vec<_>>())
                .await
                .is_err()
        );
        assert_eq!(db.root_key(&again[0].identifier()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn every_connection_of_a_file_checkpoints_at_the_same_size() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::sqlite_file(&dir.path().join("t.db")).await.unwrap();
        let writer = db.dedicated_writer().await.unwrap();
        for d in [&db, &writer] {
            let Db::Sqlite(pool, _) = d else {
                unreachable!("an SQLite file")
            };
            let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(pages, 8000);
        }
    }

    #[tokio::test]
    async fn an_in_memory_database_outlives_the_pools_connection() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let Db::Sqlite(pool, _) = &db else {
            unreachable!("sqlite::memory: is SQLite")
        };
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(pool)
            .await
            .unwrap();
        // What a cancelled query does: the pool's only connection goes away.
        pool.acquire().await.unwrap().close().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(pool)
            .await
            .expect("the table is still there");
        assert_eq!(n, 0);
    }
}
