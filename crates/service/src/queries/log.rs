//! The log itself: signed checkpoints, inclusion and consistency proofs, entries. Every answer is
//! read from one snapshot, so a proof and its checkpoint agree.

use lotline_merkle::{Checkpoint, Hash, leaf_hash};
use lotline_store::Snapshot;

use crate::{Caller, Ready, Service, ServiceError};

/// Most entries one [`Service::entries`] answers.
pub const MAX_ENTRIES: u32 = 1_000;

/// A checkpoint and its signed note.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The signed note (C2SP tlog-checkpoint).
    pub note: String,
    /// The key that verifies the note.
    pub verifier_key: String,
}

/// Which leaf an inclusion proof is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    EventId(String),
    Sequence(u64),
}

/// A leaf's inclusion in the tree of a checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Inclusion {
    /// The leaf's index (its sequence - 1).
    pub index: u64,
    pub event_id: String,
    /// The record bytes the leaf hashes; empty for a caller not entitled to the full view of
    /// the event (the hash still proves inclusion).
    pub leaf: Vec<u8>,
    pub leaf_hash: Hash,
    pub path: Vec<Hash>,
    pub checkpoint: SignedCheckpoint,
}

/// That the tree of `old_size` is a prefix of the tree of the checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Consistency {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub old_root: Hash,
    pub checkpoint: SignedCheckpoint,
}

/// Leaves of the log from `start`, and the log's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries {
    pub start: u64,
    pub leaves: Vec<Vec<u8>>,
    pub tree_size: u64,
    /// Where this node was in the NATS stream before the entries were read.
    pub stream: StreamPosition,
}

/// NATS mode: the stream sequence a node had applied through, and within how many log entries
/// every message up to it is (both 0, identity empty, in embedded mode).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamPosition {
    pub position: u64,
    pub within: u64,
    pub identity: String,
}

/// The tree size asked for: 0 means the whole view.
fn size_arg(what: &'static str, asked: u64, view: &Snapshot<'_>) -> Result<u64, ServiceError> {
    match asked {
        0 => Ok(view.upto()),
        n if n > view.upto() => Err(ServiceError::BeyondLog {
            what,
            asked: n,
            size: view.upto(),
        }),
        n => Ok(n),
    }
}

/// The signed checkpoint of the first `size` leaves.
fn checkpoint(
    ready: &Ready,
    view: &Snapshot<'_>,
    size: u64,
) -> Result<SignedCheckpoint, ServiceError> {
    let checkpoint = Checkpoint {
        origin: ready.signer.name().to_string(),
        size,
        root: view.tree_root(size)?,
    };
    Ok(SignedCheckpoint {
        note: ready.signer.sign(&checkpoint),
        verifier_key: ready.signer.verifier_key(),
        checkpoint,
    })
}

fn leaf(view: &Snapshot<'_>, index: u64) -> Result<Vec<u8>, ServiceError> {
    view.leaf(index)?.ok_or_else(|| {
        ServiceError::Internal(format!("the record at sequence {} is missing", index + 1))
    })
}

impl Service {
    /// The signed checkpoint of the first `tree_size` entries (0: the whole log).
    pub async fn checkpoint(
        &self,
        caller: &Caller,
        tree_size: u64,
    ) -> Result<SignedCheckpoint, ServiceError> {
        self.read(caller.reading(), move |view, ready| {
            let size = size_arg("tree_size", tree_size, view)?;
            checkpoint(ready, view, size)
        })
        .await
    }

    /// A leaf's inclusion proof in the tree of `tree_size` entries (0: the whole log).
    ///
    /// The leaf's bytes are the whole event as recorded: a caller entitled to less than the full
    /// view of it gets the leaf hash only (which proves the same, and reveals nothing).
    pub async fn inclusion(
        &self,
        caller: &Caller,
        which: Leaf,
        tree_size: u64,
    ) -> Result<Inclusion, ServiceError> {
        let everything = caller.sees_everything();
        let own = caller.org().map(str::to_string);
        self.read(caller.reading(), move |view, ready| {
            let size = size_arg("tree_size", tree_size, view)?;
            let seq = match which {
                Leaf::EventId(id) => view.seq_of(&id)?.ok_or_else(|| {
                    ServiceError::NotFound(format!("event_id: {id:?} is not in the log"))
                })?,
                Leaf::Sequence(seq) => seq,
            };
            if seq == 0 || seq > size {
                return Err(ServiceError::BeyondLog {
                    what: "sequence",
                    asked: seq,
                    size,
                });
            }
            let index = seq - 1;
            let leaf = leaf(view, index)?;
            let stored = view.event_at(seq)?;
            let event_id = stored
                .as_ref()
                .map(|s| s.event.id.clone())
                .unwrap_or_default();
            let shown = everything
                || stored
                    .as_ref()
                    .is_some_and(|s| own.as_deref() == Some(s.event.org.as_str()));
            Ok(Inclusion {
                index,
                event_id,
                leaf_hash: leaf_hash(&leaf),
                leaf: if shown { leaf } else { Vec::new() },
                path: view.inclusion_proof(index, size)?,
                checkpoint: checkpoint(ready, view, size)?,
            })
        })
        .await
    }

    /// A consistency proof between the trees of `old_size` and `new_size` entries (0: the whole
    /// log).
    pub async fn consistency(
        &self,
        caller: &Caller,
        old_size: u64,
        new_size: u64,
    ) -> Result<Consistency, ServiceError> {
        self.read(caller.reading(), move |view, ready| {
            let new = size_arg("tree_size", new_size, view)?;
            if old_size > new {
                return Err(ServiceError::invalid(
                    "old_size",
                    format!("{old_size} is greater than new_size {new}"),
                ));
            }
            Ok(Consistency {
                old_size,
                proof: view.consistency_proof(old_size, new)?,
                old_root: view.tree_root(old_size)?,
                checkpoint: checkpoint(ready, view, new)?,
            })
        })
        .await
    }

    /// Up to `count` leaves from index `start` (0 for 100, at most [`MAX_ENTRIES`]).
    ///
    /// Entries are whole events as recorded: only a caller entitled to the full view of the whole
    /// log reads them (an auditor of everything; anyone on a server without access control).
    pub async fn entries(
        &self,
        caller: &Caller,
        start: u64,
        count: u32,
    ) -> Result<Entries, ServiceError> {
        caller.party_only("log entries")?;
        if !caller.sees_everything() {
            return Err(self.refuse(
                &caller.describe(),
                ServiceError::PermissionDenied(
                    "log entries are whole events: only an auditor whose scope is the whole log reads them".into(),
                ),
            ));
        }
        self.log_read(caller, "log entries", &format!("{start}+{count}"));
        let count = match count {
            0 => 100,
            n => n.min(MAX_ENTRIES),
        };
        // The position first, then the last sequence applied: the batch that carried the
        // position (and its events) was applied by then, flushed or not.
        let store = &self.ready()?.store;
        let position = store.stream_position()?;
        let stream = StreamPosition {
            position,
            within: if position == 0 { 0 } else { store.last_seq()? },
            identity: store.stream_identity()?.unwrap_or_default(),
        };
        self.read(caller.reading(), move |view, _| {
            let size = view.upto();
            if start > size {
                return Err(ServiceError::BeyondLog {
                    what: "start",
                    asked: start,
                    size,
                });
            }
            let end = start.saturating_add(u64::from(count)).min(size);
            let leaves = (start..end)
                .map(|index| leaf(view, index))
                .collect::<Result<_, _>>()?;
            Ok(Entries {
                start,
                leaves,
                tree_size: size,
                stream,
            })
        })
        .await
    }
}
