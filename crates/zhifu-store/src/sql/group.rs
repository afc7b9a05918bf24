//! Group commit for a SQLite file's single writer: trade updates (every
//! notification and query answer that changes something) that arrive while
//! the writer is busy are applied together, in one transaction, and share
//! its commit — one WAL sync for the group instead of one per update.
//!
//! There is no background task. Each update joins the queue, then waits
//! for either its answer or the writer connection. Whoever gets the
//! connection takes up to [`MAX_GROUP`] queued updates (its own among them,
//! unless an earlier group already took it) and runs them in a spawned task,
//! so a caller that gives up (a request timeout) cannot cut a group short.
//!
//! Each update still runs the same statements as on its own
//! ([`super::apply::apply_in_tx`]) and sees the updates before it in the
//! group, so the state machine is unchanged; every caller is answered only
//! after the group's `COMMIT` returned. If any statement of the group fails,
//! the group is rolled back and each update is applied again on its own,
//! so one bad update never fails the others.

use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{Any, SqlSafeStr, Transaction};
use tokio::sync::oneshot;

use super::apply::{apply_alone, apply_in_tx};
use super::notifications::insert_notification;
use super::{SqlStore, Tx};
use crate::Result;
use crate::error::StoreError;
use crate::model::{ApplyResult, NewNotification, TradeUpdate};

/// Most updates one group commits: bounds the transaction (and the time
/// the writer is held) under a flood.
pub(super) const MAX_GROUP: usize = 64;

struct Queued {
    id: u64,
    update: TradeUpdate,
    record: NewNotification,
    reply: oneshot::Sender<Result<ApplyResult>>,
}

/// The queue of updates waiting for the writer.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<(u64, Vec<Queued>)>,
    committed: Mutex<GroupStats>,
}

/// What group commit did so far (this process): how many groups committed
/// how many updates. Their ratio is the number of WAL syncs saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Transactions committed.
    pub groups: u64,
    /// Updates they carried.
    pub updates: u64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Queued>)> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(
        &self,
        update: TradeUpdate,
        record: NewNotification,
    ) -> (u64, oneshot::Receiver<Result<ApplyResult>>) {
        let (reply, rx) = oneshot::channel();
        let mut q = self.lock();
        q.0 += 1;
        let id = q.0;
        q.1.push(Queued {
            id,
            update,
            record,
            reply,
        });
        (id, rx)
    }

    fn take(&self) -> Vec<Queued> {
        let mut q = self.lock();
        let n = q.1.len().min(MAX_GROUP);
        q.1.drain(..n).collect()
    }

    pub(super) fn stats(&self) -> GroupStats {
        *self
            .committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn count(&self, updates: usize) {
        let mut c = self
            .committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.groups += 1;
        c.updates += updates as u64;
    }

    /// Takes `id` back if no group has taken it yet.
    fn withdraw(&self, id: u64) -> bool {
        let mut q = self.lock();
        let before = q.1.len();
        q.1.retain(|j| j.id != id);
        q.1.len() != before
    }
}

/// Applies `update` (recording `record`) as part of a group.
pub(super) async fn apply_grouped(
    s: &SqlStore,
    group: &GroupCommit,
    update: &TradeUpdate,
    record: &NewNotification,
) -> Result<ApplyResult> {
    let (id, mut rx) = group.push(update.clone(), record.clone());
    loop {
        tokio::select! {
            biased;
            answer = &mut rx => return answer.unwrap_or(Err(StoreError::GroupLost)),
            conn = s.writer().acquire_any() => {
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        if group.withdraw(id) {
                            return Err(e.into());
                        }
                        // A group already has it: its answer is coming.
                        return rx.await.unwrap_or(Err(StoreError::GroupLost));
                    }
                };
                let jobs = group.take();
                if jobs.is_empty() {
                    // An earlier group took ours; it answers on `rx`.
                    drop(conn);
                    return rx.await.unwrap_or(Err(StoreError::GroupLost));
                }
                tokio::spawn(run_group(s.clone(), conn, jobs));
            }
        }
    }
}

async fn run_group(s: SqlStore, conn: PoolConnection<Any>, jobs: Vec<Queued>) {
    match apply_all(conn, &jobs).await {
        Ok(results) => {
            if let Some(g) = &s.group {
                g.count(results.len());
            }
            for (job, r) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(Ok(r));
            }
        }
        Err(e) if jobs.len() == 1 => {
            if let Some(job) = jobs.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, updates = jobs.len(), "group rolled back; applying its updates one by one");
            for job in jobs {
                let r = apply_alone(&s, &job.update, &job.record).await;
                let _ = job.reply.send(r);
            }
        }
    }
}

async fn apply_all(conn: PoolConnection<Any>, jobs: &[Queued]) -> Result<Vec<ApplyResult>> {
    let mut tx =
        Tx::from_any(Transaction::begin(conn, Some("BEGIN IMMEDIATE".into_sql_str())).await?);
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (outcome, events, order) = apply_in_tx(&mut tx, &job.update).await?;
        insert_notification(&mut tx, &job.record, Some(&job.update.order_id), &outcome).await?;
        results.push(ApplyResult {
            outcome,
            order,
            events,
        });
    }
    tx.commit().await?;
    Ok(results)
}
