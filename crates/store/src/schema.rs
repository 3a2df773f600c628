//! The schema, the same on both databases apart from the binary column type.
//!
//! ```text
//! l402_tokens   token_id -> key_id (sha256 of the identifier), root_key (NULL once revoked),
//!               payment_hash, service, price_msat, invoice, created_at, invoice_expires_at,
//!               paid_at, revoked_at
//! l402_schema   version
//! ```
//!
//! One row per token, root key included, found by its token id. Token ids are time-ordered, so
//! minting appends: the table, the token-id index and the two time indexes all grow at their
//! ends, and a batch of new tokens touches a handful of pages, not one random page each. The key
//! id is kept (revocations are announced by it) but not indexed.
//!
//! Version 2 indexed the key id (one random page per token, about 6 KB more written per
//! challenge); version 1 also kept the root keys in a table of their own and indexed the payment
//! hash (four random pages per token). Opening an older database moves it to this version in
//! one transaction.

use l402::StoreError;

use crate::db::{Db, Ph, map_err};

/// The schema version this build writes and understands.
pub(crate) const VERSION: i64 = 3;

fn tokens_table(name: &str, blob: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            token_id {blob} PRIMARY KEY,
            key_id {blob} NOT NULL,
            root_key {blob},
            payment_hash {blob} NOT NULL,
            service TEXT NOT NULL,
            price_msat BIGINT NOT NULL,
            invoice TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            invoice_expires_at BIGINT NOT NULL,
            paid_at BIGINT,
            revoked_at BIGINT
        )"
    )
}

const TOKEN_INDEXES: [&str; 2] = [
    "CREATE INDEX l402_tokens_unpaid ON l402_tokens (invoice_expires_at)
        WHERE paid_at IS NULL AND revoked_at IS NULL",
    "CREATE INDEX l402_tokens_created ON l402_tokens (created_at)",
];

/// A fresh database.
fn create(blob: &str) -> Vec<String> {
    let mut out = vec![tokens_table("l402_tokens", blob)];
    out.extend(TOKEN_INDEXES.iter().map(|s| s.to_string()));
    out
}

/// On PostgreSQL, the first statements of an upgrade that copies `tables` into a new table: an
/// instance of an older build sharing the database may still be writing (minting, marking paid,
/// revoking), and a write committed after the copy read its table would be dropped with it. The
/// lock waits for those writes and holds off new ones until the upgrade commits; reads go on.
/// (SQLite's `BEGIN IMMEDIATE` already holds the file's write lock.)
fn lock_for_copy(pg: bool, tables: &[&str]) -> Vec<String> {
    if pg {
        vec![format!(
            "LOCK TABLE {} IN EXCLUSIVE MODE",
            tables.join(", ")
        )]
    } else {
        Vec::new()
    }
}

/// The last statements of an upgrade that renamed `l402_tokens_v3`: on PostgreSQL its primary
/// key keeps the old table's name unless renamed, and a fresh database calls it
/// `l402_tokens_pkey`.
fn finish_copy(pg: bool) -> Vec<String> {
    let mut out: Vec<String> = TOKEN_INDEXES.iter().map(|s| s.to_string()).collect();
    if pg {
        out.push("ALTER INDEX l402_tokens_v3_pkey RENAME TO l402_tokens_pkey".into());
    }
    out.push(format!("UPDATE l402_schema SET version = {VERSION}"));
    out
}

/// Version 1 → 3: the root keys move into the token rows (a revoked token's key was deleted:
/// its row gets NULL), the payment-hash and key-id indexes go.
fn upgrade_from_1(blob: &str, pg: bool) -> Vec<String> {
    let mut out = lock_for_copy(pg, &["l402_tokens", "l402_root_keys"]);
    out.extend([
        tokens_table("l402_tokens_v3", blob),
        "INSERT INTO l402_tokens_v3 (key_id, token_id, root_key, payment_hash, service, price_msat,
                invoice, created_at, invoice_expires_at, paid_at, revoked_at)
            SELECT t.key_id, t.token_id, r.root_key, t.payment_hash, t.service, t.price_msat,
                t.invoice, t.created_at, t.invoice_expires_at, t.paid_at, t.revoked_at
            FROM l402_tokens t LEFT JOIN l402_root_keys r ON r.key_id = t.key_id"
            .into(),
        "DROP TABLE l402_root_keys".into(),
        "DROP TABLE l402_tokens".into(),
        "ALTER TABLE l402_tokens_v3 RENAME TO l402_tokens".into(),
    ]);
    out.extend(finish_copy(pg));
    out
}

/// Version 2 → 3: the rows move to a table keyed by token id; the key-id index goes. Instances of
/// older builds should be stopped first: they would wait on the lock, then look tokens up by key
/// id without an index.
fn upgrade_from_2(blob: &str, pg: bool) -> Vec<String> {
    let mut out = lock_for_copy(pg, &["l402_tokens"]);
    out.extend([
        tokens_table("l402_tokens_v3", blob),
        "INSERT INTO l402_tokens_v3 (token_id, key_id, root_key, payment_hash, service,
                price_msat, invoice, created_at, invoice_expires_at, paid_at, revoked_at)
            SELECT token_id, key_id, root_key, payment_hash, service,
                price_msat, invoice, created_at, invoice_expires_at, paid_at, revoked_at
            FROM l402_tokens"
            .into(),
        // The old table's indexes go with it (their names are then free for the new ones).
        "DROP TABLE l402_tokens".into(),
        "ALTER TABLE l402_tokens_v3 RENAME TO l402_tokens".into(),
    ]);
    out.extend(finish_copy(pg));
    out
}

/// Creates the schema if missing, upgrades an older one, and refuses a database written by a
/// newer build.
pub(crate) async fn migrate(db: &Db) -> Result<(), StoreError> {
    let e = map_err("migrate");
    crate::db::on_db!(db, |pool, ph| {
        let mut tx = pool.begin_with(ph.begin_write()).await.map_err(&e)?;
        let blob = match ph {
            Ph::Question => "BLOB",
            Ph::Dollar => {
                // Several instances may start at once: serialise schema changes.
                sqlx::query("SELECT pg_advisory_xact_lock(4020402)")
                    .execute(&mut *tx)
                    .await
                    .map_err(&e)?;
                "BYTEA"
            }
        };
        sqlx::query("CREATE TABLE IF NOT EXISTS l402_schema (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(&e)?;
        let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM l402_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(&e)?;
        let steps = match found {
            None => {
                let mut steps = create(blob);
                steps.push(format!(
                    "INSERT INTO l402_schema (version) VALUES ({VERSION})"
                ));
                steps
            }
            Some(1) => {
                tracing::info!("upgrading the token store from schema version 1 to {VERSION}");
                upgrade_from_1(blob, matches!(ph, Ph::Dollar))
            }
            Some(2) => {
                tracing::info!("upgrading the token store from schema version 2 to {VERSION}");
                upgrade_from_2(blob, matches!(ph, Ph::Dollar))
            }
            Some(VERSION) => Vec::new(),
            Some(v) if v > VERSION => {
                return Err(StoreError::permanent(format!(
                    "the database has schema version {v}, newer than this build understands ({VERSION}); upgrade l402"
                )));
            }
            Some(v) => {
                return Err(StoreError::permanent(format!(
                    "the database has schema version {v}, which no build of l402 wrote"
                )));
            }
        };
        for stmt in steps {
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
        }
        tx.commit().await.map_err(&e)
    })
}
