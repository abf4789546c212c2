//! Where questions run: a fixed number of read worker threads, apart from ingest (the writer
//! thread and the runtime), and a limit on how many questions one caller may have running at
//! once. A flood of expensive reads then queues for a worker (or is refused) instead of taking
//! the machine from the writer. Workers take queued questions one after another with no hop
//! through the runtime, so small questions keep their rate.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::ServiceError;

/// How many questions run at once (`serve --read-workers`, `--max-reads-per-caller`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Questions computed at the same time, by everyone: the read worker threads.
    pub workers: usize,
    /// Questions one caller may have running at once; more wait behind its own.
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

/// A question for a worker.
type Job = Box<dyn FnOnce() + Send>;

/// The read workers and what each caller has running or waiting.
pub(crate) struct ReadPool {
    limits: ReadLimits,
    /// Questions for the workers (who end when the pool is dropped).
    jobs: mpsc::Sender<Job>,
    callers: Arc<Mutex<HashMap<String, CallerState>>>,
}

/// One caller's share: its running slots, and how many of its questions are in the pool.
struct CallerState {
    running: Arc<Semaphore>,
    present: usize,
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
    /// Starts `limits.workers` worker threads.
    pub(crate) fn new(limits: ReadLimits) -> Self {
        let limits = ReadLimits {
            workers: limits.workers.max(1),
            per_caller: limits.per_caller.max(1),
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..limits.workers {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("lotline-read-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking the next question.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a read worker could not start");
            }
        }
        ReadPool {
            limits,
            jobs,
            callers: Arc::default(),
        }
    }

    pub(crate) fn limits(&self) -> ReadLimits {
        self.limits
    }

    /// Runs `work` on a read worker for the caller known as `key`. The caller runs at most
    /// `per_caller` questions at once; more wait their turn behind its own (so one caller's
    /// flood never holds more than its share of the workers), up to [`QUEUED_PER_CALLER`],
    /// beyond which they are refused. Nothing is started once `deadline` has passed, and the
    /// caller stops waiting for the answer then.
    pub(crate) async fn run<T, F>(
        &self,
        key: &str,
        deadline: Option<Instant>,
        work: F,
    ) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, ServiceError> + Send + 'static,
    {
        let (present, running) = self.enter(key)?;
        let running = until(deadline, running.acquire_owned(), "its turn among its own").await?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The caller's slot is given back when the work is done, not when the caller leaves,
            // and before the answer is sent: a caller that has its answer has its slot back.
            let slot = (present, running);
            let result = if deadline.is_some_and(|d| Instant::now() >= d) {
                Err(waited_too_long("a read worker"))
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                    .unwrap_or_else(|_| Err(ServiceError::Internal("the query panicked".into())))
            };
            drop(slot);
            let _ = answer.send(result);
        });
        self.jobs
            .send(job)
            .map_err(|_| ServiceError::Internal("the read workers have stopped".into()))?;
        let answered = match deadline {
            None => answered.await,
            Some(at) => tokio::time::timeout_at(at.into(), answered)
                .await
                .map_err(|_| waited_too_long("the answer"))?,
        };
        answered.map_err(|_| ServiceError::Internal("a read worker stopped".into()))?
    }

    /// Counts one more question of `key`, or refuses it when the caller has too many.
    fn enter(&self, key: &str) -> Result<(Present, Arc<Semaphore>), ServiceError> {
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
                "{key} already has {most} questions running or waiting, the most one caller may \
                 have ({} running, serve --max-reads-per-caller, and {QUEUED_PER_CALLER} \
                 waiting): retry when some have answered",
                self.limits.per_caller
            )));
        }
        state.present += 1;
        let present = Present {
            key: key.to_string(),
            callers: Arc::clone(&self.callers),
        };
        Ok((present, Arc::clone(&state.running)))
    }
}

fn waited_too_long(what: &str) -> ServiceError {
    ServiceError::DeadlineExceeded(format!(
        "the deadline passed while the question waited for {what} (the server is busy)"
    ))
}

/// Waits for a permit until `deadline`.
async fn until(
    deadline: Option<Instant>,
    acquire: impl Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>>,
    what: &str,
) -> Result<OwnedSemaphorePermit, ServiceError> {
    let acquired = match deadline {
        None => acquire.await,
        Some(at) => tokio::time::timeout_at(at.into(), acquire)
            .await
            .map_err(|_| waited_too_long(what))?,
    };
    acquired.map_err(|_| ServiceError::Internal("the read pool is closed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A question that holds its worker until told to finish; returned once it runs on a worker.
    async fn held(pool: &Arc<ReadPool>, key: &str) -> (std::sync::mpsc::Sender<()>, JoinHandle) {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (running, started) = oneshot::channel::<()>();
        let pool = Arc::clone(pool);
        let key = key.to_string();
        let task = tokio::spawn(async move {
            pool.run(&key, None, move || {
                let _ = running.send(());
                let _ = wait.recv();
                Ok(())
            })
            .await
        });
        started.await.expect("the held question never ran");
        (release, task)
    }

    type JoinHandle = tokio::task::JoinHandle<Result<(), ServiceError>>;

    /// Waits until `key` has `n` questions in the pool (failing after 10 s).
    async fn present(pool: &ReadPool, key: &str, n: usize) {
        let count = || {
            pool.callers
                .lock()
                .unwrap()
                .get(key)
                .map_or(0, |s| s.present)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while count() < n {
            assert!(
                Instant::now() < deadline,
                "{key} never had {n} questions in the pool"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_waits_behind_its_own_questions_and_others_do_not() {
        let pool = Arc::new(ReadPool::new(ReadLimits {
            workers: 4,
            per_caller: 2,
        }));
        let (release_1, first) = held(&pool, "org a").await;
        let (release_2, second) = held(&pool, "org a").await;
        present(&pool, "org a", 2).await;
        // A third question of org a waits for one of its own to finish ...
        let soon = Instant::now() + Duration::from_millis(100);
        let Err(ServiceError::DeadlineExceeded(reason)) =
            pool.run("org a", Some(soon), || Ok(())).await
        else {
            panic!("a third question of org a ran beside its two");
        };
        assert!(reason.contains("its turn"), "{reason}");
        // ... while another caller is not held back by org a.
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(pool.run("org b", Some(soon), || Ok(7)).await.unwrap(), 7);
        // When one of org a's questions is done, the next one runs.
        release_1.send(()).unwrap();
        first.await.unwrap().unwrap();
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(pool.run("org a", Some(soon), || Ok(8)).await.unwrap(), 8);
        release_2.send(()).unwrap();
        second.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_with_too_many_waiting_is_refused() {
        let pool = Arc::new(ReadPool::new(ReadLimits {
            workers: 1,
            per_caller: 1,
        }));
        let (release, running) = held(&pool, "connection 1").await;
        present(&pool, "connection 1", 1).await;
        let mut waiting = Vec::new();
        for _ in 0..QUEUED_PER_CALLER {
            let pool = Arc::clone(&pool);
            waiting.push(tokio::spawn(async move {
                pool.run("connection 1", None, || Ok(())).await
            }));
        }
        present(&pool, "connection 1", 1 + QUEUED_PER_CALLER).await;
        let Err(ServiceError::Busy(reason)) = pool.run("connection 1", None, || Ok(())).await
        else {
            panic!("a caller queued more than its share");
        };
        assert!(reason.contains("--max-reads-per-caller"), "{reason}");
        // Once the running one finishes, every waiting one is answered.
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        for task in waiting {
            task.await.unwrap().unwrap();
        }
        assert!(pool.callers.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_question_waiting_for_a_worker_ends_at_its_deadline() {
        let pool = Arc::new(ReadPool::new(ReadLimits {
            workers: 1,
            per_caller: 4,
        }));
        let (release, busy) = held(&pool, "org a").await;
        present(&pool, "org a", 1).await;
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ran = Arc::clone(&started);
        let deadline = Instant::now() + Duration::from_millis(50);
        let Err(ServiceError::DeadlineExceeded(reason)) = pool
            .run("org b", Some(deadline), move || {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            })
            .await
        else {
            panic!("a question waited past its deadline");
        };
        assert!(reason.contains("the answer"), "{reason}");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // The late question is skipped by the worker, not run for nobody.
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(pool.run("org b", Some(soon), || Ok(1)).await.unwrap(), 1);
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst));
        assert!(pool.callers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_panicking_question_is_an_error_and_the_worker_goes_on() {
        let pool = ReadPool::new(ReadLimits {
            workers: 1,
            per_caller: 1,
        });
        let Err(ServiceError::Internal(reason)) = pool
            .run("org a", None, || -> Result<(), _> { panic!("boom") })
            .await
        else {
            panic!("a panic was not an error");
        };
        assert!(reason.contains("panicked"), "{reason}");
        assert_eq!(pool.run("org a", None, || Ok(2)).await.unwrap(), 2);
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
