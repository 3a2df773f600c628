//! Durable L402 state: root keys, the tokens they sign, and the invoices the tokens are bound to.
//!
//! One [`Store`] type over two databases with the same schema and the same behaviour:
//!
//! * **SQLite** (WAL, `synchronous=FULL`) — the embedded default for a single proxy;
//! * **PostgreSQL** — when several proxy instances share state.
//!
//! Guarantees:
//!
//! * **A root key is durable before its challenge leaves.** [`RootKeyStore::insert`] returns only
//!   after the commit. Under load, concurrent inserts are group-committed: one writer task takes
//!   every waiting record into one transaction (one fsync), instead of skipping durability.
//! * **Revocation** deletes the root key, so a revoked token can never verify again, and is
//!   announced on [`Store::revocations`] so caches can drop the key at once — locally, and on
//!   PostgreSQL on every instance through `LISTEN/NOTIFY`. A store listens before it finishes
//!   opening, so it hears every revocation made after that; a lost notification connection is
//!   announced as [`Revocation::All`], so caches are flushed rather than left stale.
//! * **Unpaid challenges expire** and [`Store::cleanup`] removes them — but only after asking the
//!   invoice issuer: an invoice that was paid late keeps its token.
//!
//! ```no_run
//! # async fn demo() -> Result<(), l402::StoreError> {
//! let store = l402_store::Store::connect("sqlite:///var/lib/l402/l402.db").await?;
//! // or: Store::connect("postgres://l402@db.internal/l402").await?
//! # Ok(()) }
//! ```

mod db;
mod schema;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use l402::{
    Identifier, InvoiceIssuer, InvoiceState, KeyId, Msat, PaymentHash, RootKey, RootKeyStore,
    StoreError, TokenId, TokenRecord,
};
use tokio::sync::{broadcast, mpsc};

pub use db::TokenInfo;

use crate::db::Db;

/// A revocation announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The token whose root key was stored under this key id was revoked.
    Key(KeyId),
    /// Revocations may have been missed (the notification connection was lost): drop everything.
    All,
}

/// The outcome of a [`Store::cleanup`] run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Expired, unpaid challenges deleted.
    pub deleted: u64,
    /// Challenges found paid at the issuer and kept.
    pub found_paid: u64,
    /// Challenges left for a later run because the issuer could not answer.
    pub deferred: u64,
}

/// Aggregate numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Challenges issued and still on record.
    pub tokens: u64,
    /// Tokens known to be paid.
    pub paid: u64,
    /// Tokens revoked.
    pub revoked: u64,
    /// Sum of the prices of paid tokens.
    pub revenue: Msat,
}

/// Root keys, tokens and invoices on SQLite or PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    writer: mpsc::Sender<writer::Pending>,
    revocations: broadcast::Sender<Revocation>,
    /// Dropping this stops the PostgreSQL revocation listener.
    _stop_listener: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.inner.db.kind())
            .finish()
    }
}

impl Store {
    /// Opens a store from a URL: `sqlite:PATH` / `sqlite://PATH` (created if missing),
    /// `sqlite::memory:`, or `postgres://…` / `postgresql://…`. The schema is created or checked.
    ///
    /// Must be called inside a Tokio runtime (it starts the writer task). On PostgreSQL it also
    /// listens for revocations from other instances before it returns; failing to is failing
    /// to open.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let db = Db::connect(url).await?;
        Self::start(db).await
    }

    /// Opens (or creates) an SQLite store at `path`.
    pub async fn sqlite(path: &Path) -> Result<Store, StoreError> {
        let db = Db::sqlite_file(path).await?;
        Self::start(db).await
    }

    async fn start(db: Db) -> Result<Store, StoreError> {
        schema::migrate(&db).await?;
        let (revocations, _) = broadcast::channel(1024);
        let stop_listener = match &db {
            Db::Postgres(pool) => {
                let (stop, stopped) = tokio::sync::oneshot::channel();
                db::start_listener(pool.clone(), revocations.clone(), stopped).await?;
                Some(stop)
            }
            Db::Sqlite(..) => None,
        };
        let writer = writer::spawn(db.dedicated_writer().await?);
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                writer,
                revocations,
                _stop_listener: stop_listener,
            }),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        self.inner.db.kind()
    }

    /// Revocation announcements, from this process and (PostgreSQL) from every other instance.
    pub fn revocations(&self) -> broadcast::Receiver<Revocation> {
        self.inner.revocations.subscribe()
    }

    /// One token's record, by token id.
    pub async fn token(&self, token_id: &TokenId) -> Result<Option<TokenInfo>, StoreError> {
        self.inner.db.token(token_id).await
    }

    /// The most recent tokens, newest first.
    pub async fn recent_tokens(&self, limit: u32) -> Result<Vec<TokenInfo>, StoreError> {
        self.inner.db.recent_tokens(limit).await
    }

    /// Counts and revenue.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        self.inner.db.stats().await
    }

    /// Deletes challenges whose invoice expired more than `grace` before `now` (unix seconds)
    /// without the token ever being seen paid — after checking each with `issuer`: an invoice the
    /// issuer reports settled marks the token paid instead, and one the issuer cannot answer for is
    /// left for the next run. An invoice the issuer says it never knew is deleted only once it
    /// expired more than [`NOT_FOUND_GRACE`] ago: a backend swapped for another node (or a
    /// wrong wallet key) must not make paid tokens disappear at once. At most `limit`
    /// challenges are examined.
    pub async fn cleanup<I: InvoiceIssuer>(
        &self,
        issuer: &I,
        now: i64,
        grace: Duration,
        limit: u32,
    ) -> Result<CleanupReport, StoreError> {
        let before = now - grace.as_secs() as i64;
        let mut report = CleanupReport::default();
        for (token_id, hash, expired_at) in self.inner.db.unpaid_expired(before, limit).await? {
            match issuer.invoice_state(&hash).await {
                Ok(InvoiceState::Settled) => {
                    if self.inner.db.mark_paid(&token_id, now).await?.is_some() {
                        report.found_paid += 1;
                    }
                }
                Ok(InvoiceState::Open) => report.deferred += 1,
                Ok(InvoiceState::Expired | InvoiceState::Cancelled) => {
                    report.deleted += self.inner.db.delete_unpaid(&token_id).await?;
                }
                Err(e) if e.kind() == l402::ErrorKind::NotFound => {
                    if expired_at < now - NOT_FOUND_GRACE.as_secs() as i64 {
                        report.deleted += self.inner.db.delete_unpaid(&token_id).await?;
                    } else {
                        tracing::debug!(%hash, "cleanup deferred: issuer does not know the invoice yet");
                        report.deferred += 1;
                    }
                }
                Err(e) => {
                    tracing::debug!(%hash, error = %e, "cleanup deferred: issuer cannot tell");
                    report.deferred += 1;
                }
            }
        }
        Ok(report)
    }

    /// The payment hash of the token `token_id`, if it is stored.
    pub async fn payment_hash(
        &self,
        token_id: &TokenId,
    ) -> Result<Option<PaymentHash>, StoreError> {
        self.inner.db.payment_hash(token_id).await
    }
}

/// How long after its invoice expired a challenge the Lightning backend does not know is kept.
pub const NOT_FOUND_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl RootKeyStore for Store {
    async fn insert(&self, record: TokenRecord) -> Result<(), StoreError> {
        writer::submit(&self.inner.writer, record).await
    }

    async fn root_key(&self, identifier: &Identifier) -> Result<Option<RootKey>, StoreError> {
        self.inner.db.root_key(identifier).await
    }

    async fn mark_paid(&self, identifier: &Identifier) -> Result<Option<Msat>, StoreError> {
        self.inner
            .db
            .mark_paid(identifier.token_id(), now_secs())
            .await
    }

    async fn revoke(&self, token_id: &TokenId) -> Result<Option<KeyId>, StoreError> {
        let revoked = self.inner.db.revoke(token_id, now_secs()).await?;
        if let Some(key_id) = revoked {
            // PostgreSQL instances (this one included) also hear it through NOTIFY; a duplicate
            // announcement only drops a cache entry twice.
            let _ = self.inner.revocations.send(Revocation::Key(key_id));
        }
        Ok(revoked)
    }
}
