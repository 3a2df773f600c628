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
            gather(&mut rx, &mut batch, MAX_BATCH).await;
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

/// Lets every task that is ready to run go first, then takes what they queued (up to `max`
/// in all), and again while that brings more (at most [`GATHER_ROUNDS`] times). The writer is
/// woken by the first record and, on a busy runtime, would otherwise run right after its sender
/// and commit it alone; after the yields the batch holds every record the ready requests
/// produced, and one commit (one fsync) serves them all.
pub(crate) async fn gather<T>(rx: &mut mpsc::Receiver<T>, batch: &mut Vec<T>, max: usize) {
    for _ in 0..GATHER_ROUNDS {
        if batch.len() >= max {
            return;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        if batch.len() == before {
            return;
        }
    }
}

/// How many times [`gather`] yields while each yield brings more records.
const GATHER_ROUNDS: usize = 8;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_takes_what_every_ready_task_queues() {
        let (tx, mut rx) = mpsc::channel::<u32>(64);
        tx.send(0).await.unwrap();
        // Ready to run, but not yet run: on this single-threaded runtime they go once the
        // writer yields.
        for i in 1..=5 {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(i).await.unwrap() });
        }
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 64).await, 1);
        gather(&mut rx, &mut batch, 64).await;
        assert_eq!(batch, [0, 1, 2, 3, 4, 5]);

        // A sender that becomes ready only after the first yield (it yields itself before
        // sending) still joins: the writer yields again while yielding brings more.
        tx.send(10).await.unwrap();
        let late = tx.clone();
        tokio::spawn(async move {
            late.send(11).await.unwrap();
            tokio::task::yield_now().await;
            late.send(12).await.unwrap();
        });
        let mut batch = Vec::new();
        rx.recv_many(&mut batch, 64).await;
        gather(&mut rx, &mut batch, 64).await;
        assert_eq!(batch, [10, 11, 12]);

        // Never past the limit; the rest waits for the next batch.
        for i in 0..10 {
            tx.send(i).await.unwrap();
        }
        let mut batch = Vec::new();
        rx.recv_many(&mut batch, 4).await;
        gather(&mut rx, &mut batch, 4).await;
        assert_eq!(batch, [0, 1, 2, 3]);
        gather(&mut rx, &mut batch, 6).await;
        assert_eq!(batch, [0, 1, 2, 3, 4, 5]);
    }
}
