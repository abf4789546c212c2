//! Where questions run: a fixed number of read workers, apart from ingest, and a limit on how
//! many questions one caller may have running at once. A flood of expensive reads then waits
//! for a worker (or is refused) instead of taking the machine from the writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ServiceError;

/// How many questions run at once (`serve --read-workers`, `--max-reads-per-caller`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Questions computed at the same time, by everyone.
    pub workers: usize,
    /// Questions one caller may have running or waiting at once; more are refused.
    pub per_caller: usize,
}

impl Default for ReadLimits {
    /// One worker fewer than the machine has cores (at least one), so a core stays for ingest;
    /// four questions per caller.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ReadLimits {
            workers: cores.saturating_sub(1).max(1),
            per_caller: 4,
        }
    }
}

/// How many more of one caller's questions may wait, beyond those it has running, before
/// more are refused.
pub const QUEUED_PER_CALLER: usize = 64;

/// The read workers and what each caller has running or waiting.
pub(crate) struct ReadPool {
    limits: ReadLimits,
    workers: Arc<Semaphore>,
    callers: Arc<Mutex<HashMap<String, CallerState>>>,
}

/// One caller's share: its running slots, and how many of its questions are in the pool.
struct CallerState {
    running: Arc<Semaphore>,
    present: usize,
}

/// The right to compute one question: a worker and one of the caller's running slots. Both
/// are given back when it is dropped (when the work is done, not when the caller leaves).
pub(crate) struct Slot {
    _worker: OwnedSemaphorePermit,
    _running: OwnedSemaphorePermit,
    _present: Present,
}

/// A question of a caller in the pool, running or waiting.
struct Present {
    key: String,
    callers: Arc<Mutex<HashMap<String, CallerState>>>,
}

impl Drop for Present {
    fn drop(&mut self) {
        if let Ok(mut callers) = self.callers.lock()
            && let Some(state) = callers.get_mut(&self.key)
        {
            state.present = state.present.saturating_sub(1);
            if state.present == 0 {
                callers.remove(&self.key);
            }
        }
    }
}

impl ReadPool {
    pub(crate) fn new(limits: ReadLimits) -> Self {
        let limits = ReadLimits {
            workers: limits.workers.max(1),
            per_caller: limits.per_caller.max(1),
        };
        ReadPool {
            limits,
            workers: Arc::new(Semaphore::new(limits.workers)),
            callers: Arc::default(),
        }
    }

    pub(crate) fn limits(&self) -> ReadLimits {
        self.limits
    }

    /// A slot for one question of the caller known as `key`. The caller runs at most
    /// `per_caller` questions at once; more wait their turn behind its own (so one caller's
    /// flood never holds more than its share of workers), up to [`QUEUED_PER_CALLER`], beyond
    /// which they are refused. Waiting ends at `deadline`.
    pub(crate) async fn slot(
        &self,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<Slot, ServiceError> {
        let (present, running) = {
            let mut callers = self
                .callers
                .lock()
                .map_err(|_| ServiceError::Internal("the read pool's lock is poisoned".into()))?;
            let state = callers
                .entry(key.to_string())
                .or_insert_with(|| CallerState {
                    running: Arc::new(Semaphore::new(self.limits.per_caller)),
                    present: 0,
                });
            let most = self.limits.per_caller + QUEUED_PER_CALLER;
            if state.present >= most {
                return Err(ServiceError::Busy(format!(
                    "{key} already has {most} questions running or waiting, the most one caller \
                     may have ({} running, serve --max-reads-per-caller, and {QUEUED_PER_CALLER} \
                     waiting): retry when some have answered",
                    self.limits.per_caller
                )));
            }
            state.present += 1;
            let present = Present {
                key: key.to_string(),
                callers: Arc::clone(&self.callers),
            };
            (present, Arc::clone(&state.running))
        };
        let running = until(deadline, running.acquire_owned(), "its turn among its own").await?;
        let worker = until(
            deadline,
            Arc::clone(&self.workers).acquire_owned(),
            "a read worker",
        )
        .await?;
        Ok(Slot {
            _worker: worker,
            _running: running,
            _present: present,
        })
    }
}

/// Waits for a permit until `deadline`.
async fn until(
    deadline: Option<Instant>,
    acquire: impl std::future::Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>,
    what: &str,
) -> Result<OwnedSemaphorePermit, ServiceError> {
    let acquired = match deadline {
        None => acquire.await,
        Some(at) => tokio::time::timeout_at(at.into(), acquire)
            .await
            .map_err(|_| {
                ServiceError::DeadlineExceeded(format!(
                    "the deadline passed while the question waited for {what} (the server is \
                     busy); it was not started"
                ))
            })?,
    };
    acquired.map_err(|_| ServiceError::Internal("the read pool is closed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_caller_waits_behind_its_own_questions_and_others_do_not() {
        let pool = ReadPool::new(ReadLimits {
            workers: 8,
            per_caller: 2,
        });
        let a1 = pool.slot("org a", None).await.unwrap();
        let _a2 = pool.slot("org a", None).await.unwrap();
        // A third question of org a waits for one of its own to finish ...
        let soon = Instant::now() + Duration::from_millis(50);
        let Err(ServiceError::DeadlineExceeded(reason)) = pool.slot("org a", Some(soon)).await
        else {
            panic!("a third question of org a ran beside its two");
        };
        assert!(reason.contains("its turn"), "{reason}");
        // ... while another caller is not held back by org a.
        let _b = pool.slot("org b", Some(soon)).await.unwrap();
        // When one of org a's questions is done, the next one runs.
        let waiting = pool.slot("org a", None);
        drop(a1);
        let _a3 = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the waiting question did not get the freed slot")
            .unwrap();
    }

    #[tokio::test]
    async fn a_caller_with_too_many_waiting_is_refused() {
        let pool = Arc::new(ReadPool::new(ReadLimits {
            workers: 1,
            per_caller: 1,
        }));
        let _running = pool.slot("connection 1", None).await.unwrap();
        let mut waiting = Vec::new();
        for _ in 0..QUEUED_PER_CALLER {
            let pool = Arc::clone(&pool);
            waiting.push(tokio::spawn(async move {
                pool.slot("connection 1", None).await.map(|_| ())
            }));
        }
        // Let every waiting question register.
        while pool.callers.lock().unwrap()["connection 1"].present < 1 + QUEUED_PER_CALLER {
            tokio::task::yield_now().await;
        }
        let Err(ServiceError::Busy(reason)) = pool.slot("connection 1", None).await else {
            panic!("a caller queued more than its share");
        };
        assert!(reason.contains("--max-reads-per-caller"), "{reason}");
        for task in waiting {
            task.abort();
        }
    }

    #[tokio::test]
    async fn waiting_for_a_worker_ends_at_the_deadline() {
        let pool = ReadPool::new(ReadLimits {
            workers: 1,
            per_caller: 4,
        });
        let busy = pool.slot("org a", None).await.unwrap();
        let deadline = Instant::now() + Duration::from_millis(50);
        let Err(ServiceError::DeadlineExceeded(reason)) = pool.slot("org b", Some(deadline)).await
        else {
            panic!("a question waited past its deadline");
        };
        assert!(reason.contains("read worker"), "{reason}");
        // The refused question left the pool.
        assert!(pool.callers.lock().unwrap().get("org b").is_none());
        drop(busy);
        let _next = pool
            .slot("org b", Some(Instant::now() + Duration::from_secs(5)))
            .await
            .unwrap();
    }

    #[test]
    fn limits_are_at_least_one() {
        let pool = ReadPool::new(ReadLimits {
            workers: 0,
            per_caller: 0,
        });
        assert_eq!(
            pool.limits(),
            ReadLimits {
                workers: 1,
                per_caller: 1
            }
        );
        assert!(ReadLimits::default().workers >= 1);
    }
}
