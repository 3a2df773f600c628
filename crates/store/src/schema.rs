//! The schema, the same on both databases apart from the binary column type.
//!
//! ```text
//! l402_root_keys  key_id (sha256 of the identifier) -> root_key          secrets, apart
//! l402_tokens     token_id, key_id, payment_hash, service, price_msat,   everything else
//!                 invoice, created_at, invoice_expires_at, paid_at, revoked_at
//! l402_schema     version
//! ```

use l402::StoreError;

use crate::db::{Db, Ph, map_err};

/// The schema version this build writes and understands.
pub(crate) const VERSION: i64 = 1;

fn ddl(blob: &str) -> Vec<String> {
    vec![
        "CREATE TABLE IF NOT EXISTS l402_schema (version BIGINT NOT NULL)".into(),
        format!(
            "CREATE TABLE IF NOT EXISTS l402_root_keys (
                key_id {blob} PRIMARY KEY,
                root_key {blob} NOT NULL
            )"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS l402_tokens (
                token_id {blob} PRIMARY KEY,
                key_id {blob} NOT NULL UNIQUE,
                payment_hash {blob} NOT NULL,
                service TEXT NOT NULL,
                price_msat BIGINT NOT NULL,
                invoice TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                invoice_expires_at BIGINT NOT NULL,
                paid_at BIGINT,
                revoked_at BIGINT
            )"
        ),
        "CREATE INDEX IF NOT EXISTS l402_tokens_unpaid ON l402_tokens (invoice_expires_at)
            WHERE paid_at IS NULL AND revoked_at IS NULL"
            .into(),
        "CREATE INDEX IF NOT EXISTS l402_tokens_payment_hash ON l402_tokens (payment_hash)".into(),
        "CREATE INDEX IF NOT EXISTS l402_tokens_created ON l402_tokens (created_at)".into(),
    ]
}

/// Creates the schema if missing and refuses a database written by a newer build.
pub(crate) async fn migrate(db: &Db) -> Result<(), StoreError> {
    let e = map_err("migrate");
    crate::db::on_db!(db, |pool, ph| {
        let mut tx = pool.begin_with(ph.begin_write()).await.map_err(&e)?;
        let blob = match ph {
            Ph::Question => "BLOB",
            Ph::Dollar => {
                // Several instances may start at once: serialise schema creation.
                sqlx::query("SELECT pg_advisory_xact_lock(4020402)")
                    .execute(&mut *tx)
                    .await
                    .map_err(&e)?;
                "BYTEA"
            }
        };
        for stmt in ddl(blob) {
            sqlx::query(sqlx::AssertSqlSafe(stmt))
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
        }
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM l402_schema")
            .fetch_one(&mut *tx)
            .await
            .map_err(&e)?;
        check_version(v)?;
        if v.is_none() {
            sqlx::query(ph.sql("INSERT INTO l402_schema (version) VALUES (?)"))
                .bind(VERSION)
                .execute(&mut *tx)
                .await
                .map_err(&e)?;
        }
        tx.commit().await.map_err(&e)
    })
}

fn check_version(found: Option<i64>) -> Result<(), StoreError> {
    match found {
        Some(v) if v > VERSION => Err(StoreError::permanent(format!(
            "the database has schema version {v}, newer than this build understands ({VERSION}); upgrade l402"
        ))),
        _ => Ok(()),
    }
}
