//! Group commit: one task writes every waiting record in one transaction.
//!
//! Under no load a record is written alone, as soon as it arrives. Under load, records that
//! arrive while a commit is in progress wait for the next one and share it, so the number of
//! fsyncs per second stays bounded while every insert is still durable before it is acknowledged.

use l402::{StoreError, TokenRecord};
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;

/// The most records committed together.
const MAX_BATCH: usize = 512;

pub(crate) struct Pending {
    record: TokenRecord,
    done: oneshot::Sender<Result<(), StoreError>>,
}

pub(crate) fn spawn(db: Db) -> mpsc::Sender<Pending> {
    let (tx, mut rx) = mpsc::channel::<Pending>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
            let records: Vec<&TokenRecord> = batch.iter().map(|p| &p.record).collect();
            let result = db.insert_batch(&records).await;
            if batch.len() > 1 {
                tracing::trace!(records = batch.len(), "group commit");
            }
            for p in batch.drain(..) {
                let r = match &result {
                    Ok(()) => Ok(()),
                    Err(e) if e.is_transient() => Err(StoreError::transient(e.to_string())),
                    Err(e) => Err(StoreError::permanent(e.to_string())),
                };
                let _ = p.done.send(r);
            }
        }
    });
    tx
}

pub(crate) async fn submit(
    writer: &mpsc::Sender<Pending>,
    record: TokenRecord,
) -> Result<(), StoreError> {
    let (done, wait) = oneshot::channel();
    writer
        .send(Pending { record, done })
        .await
        .map_err(|_| StoreError::transient("the store's writer task has stopped"))?;
    wait.await
        .map_err(|_| StoreError::transient("the store's writer task stopped before committing"))?
}
