//! The log's Merkle tree (RFC 6962), kept incrementally: leaf `i` is the record
//! bytes of the event at sequence `i + 1`, and every perfect subtree of
//! [`LOWEST_STORED_LEVEL`] or above is stored when its last leaf arrives, so an append
//! writes a quarter of a node on average and a root or proof reads O(log n) of them.
//! Nodes below that level (leaf hashes and the nodes over two and four leaves) are not
//! stored: they are hashed from the records they cover, at most eight, read in one range.
//! A changed record therefore no longer hashes to the stored node over its group of eight.

use lotline_merkle::{Hash, NodeSource, RootBuilder, leaf_hash, node_hash};

use crate::backend::Backend;
use crate::error::StoreError;
use crate::keys::*;
use crate::record::Record;
use crate::store::{Pending, Store};

/// The lowest level of the tree that is stored: a node there covers eight records. Below it,
/// nodes are hashed from the records (the release before this one stored every level; its
/// lower nodes are left where they are and no longer read).
pub const LOWEST_STORED_LEVEL: u32 = 3;

/// Leaves under one stored node of the lowest stored level.
pub const LEAF_GROUP: u64 = 1 << LOWEST_STORED_LEVEL;

/// The leaf hash of a record as kept on disk (its version 1 bytes, whichever form it is kept in).
pub(crate) fn leaf_of(record: &[u8]) -> Result<Hash, StoreError> {
    Ok(leaf_hash(&crate::record::leaf_bytes(record)?))
}

/// The root of a perfect subtree over `leaves` (a power of two of them).
fn subtree_of(mut leaves: Vec<Hash>) -> Hash {
    while leaves.len() > 1 {
        leaves = leaves
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    leaves[0]
}

/// The sequences a node below the stored levels covers, as (first, count).
fn covered(level: u32, index: u64) -> (u64, u64) {
    let count = 1u64 << level;
    ((index << level) + 1, count)
}

/// Node `(level, index)`, below the stored levels, hashed from the records it covers.
fn hashed_from_records(backend: &dyn Backend, level: u32, index: u64) -> Result<Hash, StoreError> {
    let (first, count) = covered(level, index);
    let rows = crate::log::records(backend, first, first + count - 1)?;
    if rows.len() as u64 != count {
        return Err(StoreError::Corrupt(format!(
            "the log has a gap between sequences {first} and {}",
            first + count - 1
        )));
    }
    Ok(subtree_of(
        rows.iter().map(|(_, record)| leaf_hash(record)).collect(),
    ))
}

fn decode_hash(bytes: &[u8], what: &str) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a 32-byte hash")))
}

fn missing(level: u32, index: u64) -> StoreError {
    StoreError::Corrupt(format!("Merkle tree node ({level}, {index}) is missing"))
}

/// Reads node `(level, index)` with `get`.
fn read_node(
    get: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, StoreError>,
    level: u32,
    index: u64,
) -> Result<Hash, StoreError> {
    let bytes = get(&tree_key(level, index))?.ok_or_else(|| missing(level, index))?;
    decode_hash(&bytes, "tree node")
}

/// Tree nodes as written so far, read through the writer's pending batch.
impl NodeSource for Pending<'_> {
    type Error = StoreError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        if level >= LOWEST_STORED_LEVEL {
            return read_node(|k| self.get(k), level, index);
        }
        let (first, count) = covered(level, index);
        let leaves = (first..first + count)
            .map(|seq| match self.leaves.get(&(seq - 1)) {
                Some(leaf) => Ok(*leaf),
                None => self
                    .record(seq)?
                    .map(|record| leaf_of(&record))
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("the event at sequence {seq} is missing"))
                    })?,
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(subtree_of(leaves))
    }
}

/// Tree nodes as stored (and, below the stored levels, hashed from the records).
pub(crate) struct StoredNodes<'a>(pub(crate) &'a dyn Backend);

impl NodeSource for StoredNodes<'_> {
    type Error = StoreError;
    fn node(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        if level >= LOWEST_STORED_LEVEL {
            read_node(|k| self.0.get(k), level, index)
        } else {
            hashed_from_records(self.0, level, index)
        }
    }
}

/// Adds leaf `index` and every stored perfect subtree it completes.
pub(crate) fn append_leaf(
    pending: &mut Pending<'_>,
    index: u64,
    leaf: Hash,
) -> Result<(), StoreError> {
    pending.leaves.insert(index, leaf);
    if !(index + 1).is_multiple_of(LEAF_GROUP) {
        return Ok(());
    }
    let (mut level, mut i) = (LOWEST_STORED_LEVEL, index >> LOWEST_STORED_LEVEL);
    let mut hash = pending.node(level - 1, i * 2 + 1)?;
    hash = node_hash(&pending.node(level - 1, i * 2)?, &hash);
    pending.batch.insert(tree_key(level, i), hash.to_vec());
    while i & 1 == 1 {
        let left = pending.node(level, i - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        i >>= 1;
        pending.batch.insert(tree_key(level, i), hash.to_vec());
    }
    Ok(())
}

pub(crate) fn encode_head(size: u64, root: &Hash) -> Vec<u8> {
    let mut v = size.to_be_bytes().to_vec();
    v.extend_from_slice(root);
    v
}

fn decode_head(bytes: &[u8]) -> Result<(u64, Hash), StoreError> {
    if bytes.len() != 40 {
        return Err(StoreError::Corrupt(
            "stored tree head is not 40 bytes".into(),
        ));
    }
    let size = u64::from_be_bytes(
        bytes[..8]
            .try_into()
            .map_err(|_| StoreError::Corrupt("tree head".into()))?,
    );
    Ok((size, decode_hash(&bytes[8..], "tree head root")?))
}

/// What the start-up check of the tree found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeCheck {
    /// The stored tree matches the log.
    Consistent { size: u64 },
    /// The tree was built from the log, as asked (`Store::rebuild_tree`).
    Built { size: u64 },
    /// The tree and the log disagree: the log may have been changed.
    Mismatch { reason: String },
}

impl Store {
    /// The stored tree head (size, root), as of the last written batch.
    pub fn tree_head(&self) -> Result<Option<(u64, Hash)>, StoreError> {
        self.backend()
            .get(&meta_key(META_TREE_HEAD))?
            .map(|b| decode_head(&b))
            .transpose()
    }

    /// Checks the stored tree against the log: the stored head covers the whole
    /// log, its root follows from the stored nodes, and sampled leaves (every leaf
    /// with `full`) hash the stored records. A log with events but no tree is a
    /// mismatch too: building it is the operator's call ([`Store::rebuild_tree`]).
    pub fn check_tree(&self, full: bool) -> Result<TreeCheck, StoreError> {
        let events = self.last_seq()?;
        let Some((size, root)) = self.tree_head()? else {
            if events == 0 {
                return Ok(TreeCheck::Consistent { size: 0 });
            }
            // Never built silently: a deleted tree is what a forger would leave.
            return Ok(TreeCheck::Mismatch {
                reason: format!(
                    "the log holds {events} events but has no Merkle tree head (deleted, or an interrupted build); \
                     if this log is trusted, start once with --build-tree to build the tree from it"
                ),
            });
        };
        if events == 0 {
            return Ok(if size == 0 && root == lotline_merkle::empty_root() {
                TreeCheck::Consistent { size: 0 }
            } else {
                TreeCheck::Mismatch {
                    reason: format!("the log is empty but the tree head says {size} events"),
                }
            });
        }
        if size != events {
            return Ok(TreeCheck::Mismatch {
                reason: format!("the tree covers {size} events but the log holds {events}"),
            });
        }
        let nodes = StoredNodes(self.backend());
        let computed = match lotline_merkle::root(&nodes, size) {
            Ok(r) => r,
            Err(e) => {
                return Ok(TreeCheck::Mismatch {
                    reason: e.to_string(),
                });
            }
        };
        if computed != root {
            return Ok(TreeCheck::Mismatch {
                reason: format!(
                    "the stored root does not follow from the stored tree nodes and the newest events (sequences {} to {events})",
                    (events - 1) / LEAF_GROUP * LEAF_GROUP + 1
                ),
            });
        }
        if full {
            let mut builder = RootBuilder::new();
            let mut group = Vec::with_capacity(LEAF_GROUP as usize);
            for seq in 1..=events {
                let leaf = match self.record_bytes(seq)? {
                    Some(bytes) => match leaf_of(&bytes) {
                        Ok(leaf) => leaf,
                        Err(e) => {
                            return Ok(TreeCheck::Mismatch {
                                reason: format!("the event at sequence {seq}: {e}"),
                            });
                        }
                    },
                    None => {
                        return Ok(TreeCheck::Mismatch {
                            reason: format!("the event at sequence {seq} is missing"),
                        });
                    }
                };
                builder.push(leaf);
                group.push(leaf);
                if seq.is_multiple_of(LEAF_GROUP) {
                    let index = seq / LEAF_GROUP - 1;
                    let hashed = subtree_of(std::mem::take(&mut group));
                    if let Some(reason) = self.group_mismatch(index, hashed)? {
                        return Ok(TreeCheck::Mismatch { reason });
                    }
                }
            }
            if builder.root() != root {
                return Ok(TreeCheck::Mismatch {
                    reason: "the log's leaves do not hash to the stored root".into(),
                });
            }
        } else {
            // The newest 64 leaves, 64 spread evenly and 64 at random (a different
            // draw at every start, so a change is found sooner or later), each checked
            // with the group of eight it belongs to. The newest, unfinished group is
            // covered by the root above, which is hashed from its records.
            let mut sample: Vec<u64> = (events.saturating_sub(63).max(1)..=events).collect();
            sample.extend(
                (0..64)
                    .map(|i| 1 + i * events / 64)
                    .filter(|s| *s >= 1 && *s <= events),
            );
            let mut x = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9e37_79b9)
                | 1;
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                sample.push(1 + x % events);
            }
            let groups: std::collections::BTreeSet<u64> = sample
                .into_iter()
                .map(|seq| (seq - 1) / LEAF_GROUP)
                .filter(|g| (g + 1) * LEAF_GROUP <= events)
                .collect();
            for index in groups {
                let hashed = match hashed_from_records(self.backend(), LOWEST_STORED_LEVEL, index) {
                    Ok(h) => h,
                    Err(e) => {
                        return Ok(TreeCheck::Mismatch {
                            reason: e.to_string(),
                        });
                    }
                };
                if let Some(reason) = self.group_mismatch(index, hashed)? {
                    return Ok(TreeCheck::Mismatch { reason });
                }
            }
        }
        Ok(TreeCheck::Consistent { size })
    }

    /// Why the stored node over group `index` (sequences `index·8 + 1 ..= index·8 + 8`) is not
    /// `hashed`, the hash of those records, if it is not.
    fn group_mismatch(&self, index: u64, hashed: Hash) -> Result<Option<String>, StoreError> {
        let first = index * LEAF_GROUP + 1;
        let last = first + LEAF_GROUP - 1;
        Ok(match self.stored_group(index)? {
            Some(stored) if stored == hashed => None,
            Some(_) => Some(format!(
                "the events at sequences {first} to {last} do not match their node in the tree: one of them was changed"
            )),
            None => Some(format!(
                "the tree has no node for the events at sequences {first} to {last}"
            )),
        })
    }

    /// Throws away the stored tree and builds it again from the log, in batches:
    /// for an operator who trusts the log as it is (`serve --build-tree`). The head
    /// is written last, so an interrupted build is seen at the next start.
    pub fn rebuild_tree(&self) -> Result<TreeCheck, StoreError> {
        let events = self.last_seq()?;
        let mut batch = crate::backend::WriteBatch::default();
        batch.remove(meta_key(META_TREE_HEAD));
        self.backend().apply(batch)?;
        loop {
            let start = vec![TREE];
            let end = prefix_end(&start);
            let rows = self.backend().range(&start, &end, 10_000)?;
            if rows.is_empty() {
                break;
            }
            let mut batch = crate::backend::WriteBatch::default();
            for (k, _) in rows {
                batch.remove(k);
            }
            self.backend().apply(batch)?;
        }
        self.build_tree(events)?;
        Ok(TreeCheck::Built { size: events })
    }

    fn build_tree(&self, events: u64) -> Result<(), StoreError> {
        if events == 0 {
            let mut batch = crate::backend::WriteBatch::default();
            batch.insert(
                meta_key(META_TREE_HEAD),
                encode_head(0, &lotline_merkle::empty_root()),
            );
            self.backend().apply(batch)?;
            return self.backend().flush();
        }
        let mut seq = 1;
        while seq <= events {
            let stop = (seq + 5_000).min(events + 1);
            let mut pending = Pending::new(self.backend());
            for s in seq..stop {
                let record = self
                    .record_bytes(s)?
                    .ok_or_else(|| StoreError::Corrupt(format!("log has a gap at sequence {s}")))?;
                Record::decode(&record)?;
                append_leaf(&mut pending, s - 1, leaf_of(&record)?)?;
            }
            if stop > events {
                let root = lotline_merkle::root(&pending, events)?;
                pending
                    .batch
                    .insert(meta_key(META_TREE_HEAD), encode_head(events, &root));
            }
            self.backend().apply(pending.batch)?;
            seq = stop;
        }
        self.backend().flush()
    }

    /// Overwrites a stored record; for tests of tamper detection only.
    #[cfg(any(test, feature = "test-util"))]
    pub fn tamper_record_for_test(
        &self,
        seq: u64,
        bytes: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let mut batch = crate::backend::WriteBatch::default();
        // A record kept in a block: the block's other records are kept one by one first.
        if let Some((first, value)) = crate::log::entry_holding(self.backend(), seq)?
            && crate::record::stored_count(&value) > 1
        {
            batch.remove(seq_key(LOG, first));
            for (s, record) in (first..).zip(crate::record::unpack(&value)?) {
                if s != seq {
                    batch.insert(seq_key(LOG, s), record);
                }
            }
        }
        match bytes {
            Some(b) => batch.insert(seq_key(LOG, seq), b),
            None => batch.remove(seq_key(LOG, seq)),
        }
        self.backend().apply(batch)?;
        self.forget_blocks();
        self.backend().flush()
    }

    /// Deletes the whole tree, as an attacker rewriting the log would; for tests only.
    #[cfg(any(test, feature = "test-util"))]
    pub fn drop_tree_for_test(&self) -> Result<(), StoreError> {
        let start = vec![TREE];
        let end = prefix_end(&start);
        let mut batch = crate::backend::WriteBatch::default();
        for (k, _) in self.backend().range(&start, &end, usize::MAX)? {
            batch.remove(k);
        }
        batch.remove(meta_key(META_TREE_HEAD));
        self.backend().apply(batch)?;
        self.backend().flush()
    }

    /// The root of the first `size` leaves computed from the stored nodes.
    pub fn root_from_nodes(&self, size: u64) -> Result<Hash, StoreError> {
        lotline_merkle::root(&StoredNodes(self.backend()), size)
    }

    /// The stored node over the records of group `index` (sequences `index·8 + 1 ..= index·8 +
    /// 8`, see [`LEAF_GROUP`]), if the tree has it.
    pub fn stored_group(&self, index: u64) -> Result<Option<Hash>, StoreError> {
        self.backend()
            .get(&tree_key(LOWEST_STORED_LEVEL, index))?
            .map(|b| decode_hash(&b, "tree node"))
            .transpose()
    }
}
