//! LogService: signed checkpoints, inclusion and consistency proofs, entries.

use lotline_proto::v1;
use lotline_proto::v1::get_inclusion_proof_request::Leaf as WireLeaf;
use lotline_proto::v1::log_service_server::LogService;
use lotline_service::queries::log::Leaf;
use lotline_service::{Service, ServiceError};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::caller::caller;
use crate::status::status as to_status;
use crate::wire;

pub struct LogApi {
    service: Service,
}

impl LogApi {
    pub fn new(service: Service) -> Self {
        LogApi { service }
    }
}

#[tonic::async_trait]
impl LogService for LogApi {
    #[instrument(skip_all)]
    async fn get_checkpoint(
        &self,
        request: Request<v1::GetCheckpointRequest>,
    ) -> Result<Response<v1::Checkpoint>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let checkpoint = self
            .service
            .checkpoint(&caller, request.into_inner().tree_size)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::checkpoint(checkpoint)))
    }

    #[instrument(skip_all)]
    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> Result<Response<v1::InclusionProof>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let r = request.into_inner();
        let leaf = match r.leaf {
            Some(WireLeaf::EventId(id)) => Leaf::EventId(id),
            Some(WireLeaf::Sequence(seq)) => Leaf::Sequence(seq),
            None => {
                return Err(to_status(ServiceError::invalid(
                    "leaf",
                    "give an event_id or a sequence",
                )));
            }
        };
        let proof = self
            .service
            .inclusion(&caller, leaf, r.tree_size)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::inclusion(proof)))
    }

    #[instrument(skip_all)]
    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> Result<Response<v1::ConsistencyProof>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let r = request.into_inner();
        let proof = self
            .service
            .consistency(&caller, r.old_size, r.new_size)
            .await
            .map_err(to_status)?;
        let checkpoint = proof.checkpoint;
        Ok(Response::new(v1::ConsistencyProof {
            old_size: proof.old_size,
            new_size: checkpoint.checkpoint.size,
            proof: wire::hashes(proof.proof),
            old_root: proof.old_root.to_vec(),
            new_root: checkpoint.checkpoint.root.to_vec(),
            checkpoint: Some(wire::checkpoint(checkpoint)),
        }))
    }

    #[instrument(skip_all)]
    async fn get_entries(
        &self,
        request: Request<v1::GetEntriesRequest>,
    ) -> Result<Response<v1::GetEntriesResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let r = request.into_inner();
        let entries = self
            .service
            .entries(&caller, r.start, r.count)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::GetEntriesResponse {
            entries: entries
                .leaves
                .into_iter()
                .zip(entries.start..)
                .map(|(leaf, leaf_index)| v1::LogEntry { leaf_index, leaf })
                .collect(),
            tree_size: entries.tree_size,
            stream_position: entries.stream.position,
            stream_position_within: entries.stream.within,
            stream_identity: entries.stream.identity,
        }))
    }
}
