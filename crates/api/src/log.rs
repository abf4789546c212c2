//! LogService: signed checkpoints, inclusion and consistency proofs, entries.
//! Every answer is read from one snapshot, so a proof and its checkpoint agree.

use lotline_merkle::{Checkpoint, Hash};
use lotline_proto::v1;
use lotline_proto::v1::log_service_server::LogService;
use lotline_store::{Snapshot, Store};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::status::{beyond_log, store_status};
use crate::{Ready, ReadyCell, ready};

/// Most entries one GetEntries answers.
pub const MAX_ENTRIES: u32 = 1_000;

pub struct LogApi {
    ready: ReadyCell,
}

impl LogApi {
    pub fn new(ready: ReadyCell) -> Self {
        LogApi { ready }
    }

    async fn read<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Ready, &Snapshot<'_>) -> Result<T, Status> + Send + 'static,
    {
        let ready = ready(&self.ready)?.clone();
        tokio::task::spawn_blocking(move || {
            let store: &Store = &ready.store;
            let view = store.snapshot().map_err(store_status)?;
            f(&ready, &view)
        })
        .await
        .map_err(|e| Status::internal(format!("log task failed: {e}")))?
    }
}

/// The tree size asked for: 0 means the whole view.
fn size_arg(asked: u64, view: &Snapshot<'_>) -> Result<u64, Status> {
    match asked {
        0 => Ok(view.upto()),
        n if n > view.upto() => Err(beyond_log("tree_size", n, view.upto())),
        n => Ok(n),
    }
}

/// The signed checkpoint of the first `size` leaves.
pub fn checkpoint(ready: &Ready, view: &Snapshot<'_>, size: u64) -> Result<v1::Checkpoint, Status> {
    let root: Hash = view.tree_root(size).map_err(store_status)?;
    let cp = Checkpoint {
        origin: ready.signer.name().to_string(),
        size,
        root,
    };
    Ok(v1::Checkpoint {
        note: ready.signer.sign(&cp),
        tree_size: size,
        root_hash: root.to_vec(),
        origin: cp.origin,
        verifier_key: ready.signer.verifier_key(),
    })
}

fn hashes(v: Vec<Hash>) -> Vec<Vec<u8>> {
    v.into_iter().map(|h| h.to_vec()).collect()
}

#[tonic::async_trait]
impl LogService for LogApi {
    #[instrument(skip_all)]
    async fn get_checkpoint(
        &self,
        request: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::Checkpoint>, Status> {
        let asked = request.into_inner().tree_size;
        self.read(move |ready, view| {
            let size = size_arg(asked, view)?;
            checkpoint(ready, view, size).map(Response::new)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::InclusionProof>, Status> {
        let r = request.into_inner();
        self.read(move |ready, view| {
            let size = size_arg(r.tree_size, view)?;
            let seq = match r.leaf {
                Some(v1::get_inclusion_proof_request::Leaf::EventId(id)) => {
                    view.seq_of(&id).map_err(store_status)?.ok_or_else(|| {
                        Status::not_found(format!("event_id: {id:?} is not in the log"))
                    })?
                }
                Some(v1::get_inclusion_proof_request::Leaf::Sequence(seq)) => seq,
                None => {
                    return Err(Status::invalid_argument(
                        "leaf: give an event_id or a sequence",
                    ));
                }
            };
            if seq == 0 || seq > size {
                return Err(beyond_log("sequence", seq, size));
            }
            let index = seq - 1;
            let leaf = view.leaf(index).map_err(store_status)?.ok_or_else(|| {
                Status::internal(format!("the record at sequence {seq} is missing"))
            })?;
            let event_id = view
                .event_at(seq)
                .map_err(store_status)?
                .map(|s| s.event.id.clone())
                .unwrap_or_default();
            let path = view.inclusion_proof(index, size).map_err(store_status)?;
            Ok(Response::new(v1::InclusionProof {
                leaf_index: index,
                sequence: seq,
                event_id,
                tree_size: size,
                leaf_hash: lotline_merkle::leaf_hash(&leaf).to_vec(),
                leaf,
                audit_path: hashes(path),
                checkpoint: Some(checkpoint(ready, view, size)?),
            }))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::ConsistencyProof>, Status> {
        let r = request.into_inner();
        self.read(move |ready, view| {
            let new = size_arg(r.new_size, view)?;
            if r.old_size > new {
                return Err(Status::invalid_argument(format!(
                    "old_size: {} is greater than new_size {new}",
                    r.old_size
                )));
            }
            let proof = view
                .consistency_proof(r.old_size, new)
                .map_err(store_status)?;
            Ok(Response::new(v1::ConsistencyProof {
                old_size: r.old_size,
                new_size: new,
                proof: hashes(proof),
                old_root: view.tree_root(r.old_size).map_err(store_status)?.to_vec(),
                new_root: view.tree_root(new).map_err(store_status)?.to_vec(),
                checkpoint: Some(checkpoint(ready, view, new)?),
            }))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn get_entries(
        &self,
        request: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        let r = request.into_inner();
        let count = match r.count {
            0 => 100,
            n => n.min(MAX_ENTRIES),
        };
        self.read(move |_, view| {
            let size = view.upto();
            if r.start > size {
                return Err(beyond_log("start", r.start, size));
            }
            let end = r.start.saturating_add(u64::from(count)).min(size);
            let mut entries = Vec::new();
            for index in r.start..end {
                let leaf = view.leaf(index).map_err(store_status)?.ok_or_else(|| {
                    Status::internal(format!("the record at sequence {} is missing", index + 1))
                })?;
                entries.push(v1::LogEntry {
                    leaf_index: index,
                    leaf,
                });
            }
            Ok(Response::new(v1::GetEntriesResponse {
                entries,
                tree_size: size,
            }))
        })
        .await
    }
}
