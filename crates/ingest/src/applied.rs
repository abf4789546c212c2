//! What this node has applied from the stream, for callers waiting on their own
//! message (gRPC Record in NATS mode answers once its event is applied here).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use lotline_domain::Outcome;
use tokio::sync::oneshot;

/// Outcomes kept for callers that ask after their message was applied.
const RECENT: usize = 100_000;

/// The stream position this node has applied through, and recent outcomes.
pub struct Applied {
    inner: Mutex<Inner>,
}

struct Inner {
    through: u64,
    recent: BTreeMap<u64, Outcome>,
    waiters: HashMap<u64, Vec<oneshot::Sender<Outcome>>>,
}

/// What a waiter learns about a stream sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Applied, with the outcome it had.
    Outcome(Outcome),
    /// Applied (or skipped) too long ago to remember, or never delivered.
    Forgotten,
}

impl Applied {
    pub fn new(through: u64) -> Self {
        Applied {
            inner: Mutex::new(Inner {
                through,
                recent: BTreeMap::new(),
                waiters: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last stream sequence applied on this node.
    pub fn through(&self) -> u64 {
        self.lock().through
    }

    /// Records the outcomes of one applied batch, ending at stream sequence `through`.
    pub fn record(&self, outcomes: Vec<(u64, Outcome)>, through: u64) {
        let mut inner = self.lock();
        for (seq, outcome) in outcomes {
            if let Some(waiters) = inner.waiters.remove(&seq) {
                for w in waiters {
                    let _ = w.send(outcome.clone());
                }
            }
            inner.recent.insert(seq, outcome);
        }
        inner.through = inner.through.max(through);
        // Sequences at or before `through` with no outcome were skipped: their
        // waiters hear nothing more (the sender is dropped).
        let through = inner.through;
        inner.waiters.retain(|seq, _| *seq > through);
        while inner.recent.len() > RECENT {
            inner.recent.pop_first();
        }
    }

    /// Waits until stream sequence `seq` is applied on this node.
    pub async fn wait(&self, seq: u64) -> Seen {
        let rx = {
            let mut inner = self.lock();
            if seq <= inner.through {
                return match inner.recent.get(&seq) {
                    Some(outcome) => Seen::Outcome(outcome.clone()),
                    None => Seen::Forgotten,
                };
            }
            let (tx, rx) = oneshot::channel();
            inner.waiters.entry(seq).or_default().push(tx);
            rx
        };
        match rx.await {
            Ok(outcome) => Seen::Outcome(outcome),
            Err(_) => Seen::Forgotten,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_hear_their_outcome_before_or_after_it_is_applied() {
        let applied = Applied::new(10);
        assert_eq!(applied.wait(3).await, Seen::Forgotten);
        let early = Outcome::Duplicate { seq: 1 };
        let waiter = {
            let applied = &applied;
            async move { applied.wait(12).await }
        };
        let (seen, ()) = tokio::join!(waiter, async {
            tokio::task::yield_now().await;
            applied.record(vec![(11, early.clone()), (12, early.clone())], 12);
        });
        assert_eq!(seen, Seen::Outcome(early.clone()));
        assert_eq!(applied.wait(11).await, Seen::Outcome(early));
        assert_eq!(applied.through(), 12);
    }

    #[tokio::test]
    async fn skipped_sequences_release_their_waiters() {
        let applied = std::sync::Arc::new(Applied::new(0));
        let waiting = {
            let applied = applied.clone();
            tokio::spawn(async move { applied.wait(2).await })
        };
        tokio::task::yield_now().await;
        applied.record(vec![(3, Outcome::Duplicate { seq: 9 })], 3);
        assert_eq!(waiting.await.expect("task"), Seen::Forgotten);
    }
}
