//! lotline's gRPC services (`lotline.v1`): [`EventService`](events::EventApi) records
//! events through the store's single writer (and refuses writes while the store
//! fails its integrity check); [`ProvenanceService`](provenance::ProvenanceApi)
//! answers provenance questions and [`LogService`](log::LogApi) signs checkpoints
//! and serves proofs, both from one snapshot per call. All three answer UNAVAILABLE
//! until [`Ready`] is set, while the store opens and is checked. Store errors and
//! rejections map to gRPC status in `status`.

mod audit;
mod events;
mod log;
mod masterdata;
mod provenance;
mod public;
mod status;

use std::sync::{Arc, OnceLock};

use lotline_domain::audit::rules::Rules;
use lotline_merkle::Signer;
use lotline_store::Snapshot;
use lotline_store::{Recorder, Store};

pub use audit::AuditApi;
pub use events::EventApi;
pub use log::LogApi;
pub use masterdata::{MAX_RESOLVE, MasterDataApi};
pub use provenance::ProvenanceApi;
pub use status::{reject_status, store_status};

/// The most events one RecordBatch may carry.
pub const MAX_BATCH: usize = 10_000;

/// What the services need once the store is open.
#[derive(Clone)]
pub struct Ready {
    pub store: Store,
    /// Where writes go: the writer itself, or the NATS stream it consumes.
    pub recorder: Arc<dyn Recorder>,
    /// Signs checkpoints; its name is the log's origin.
    pub signer: Arc<Signer>,
    /// Why writes are refused (the store failed its integrity check), if they are.
    pub writes_refused: Option<String>,
    /// Conversion bands and reference prices the audit answers apply.
    pub rules: Arc<Rules>,
}

/// Set once, when the store is open (or has failed to open, with the reason);
/// shared by every service.
pub type ReadyCell = Arc<OnceLock<Result<Ready, String>>>;

pub(crate) fn ready(cell: &ReadyCell) -> Result<&Ready, tonic::Status> {
    match cell.get() {
        None => Err(tonic::Status::unavailable(
            "lotline is starting: the store is not open yet",
        )),
        Some(Err(reason)) => Err(tonic::Status::unavailable(format!(
            "the store could not be opened: {reason}"
        ))),
        Some(Ok(ready)) => Ok(ready),
    }
}

/// Runs a read on a blocking thread, against one snapshot of the log (sled reads
/// are synchronous and never wait on the writer).
pub(crate) async fn read<T, F>(cell: &ReadyCell, f: F) -> Result<T, tonic::Status>
where
    T: Send + 'static,
    F: FnOnce(&Snapshot<'_>, &Ready) -> Result<T, tonic::Status> + Send + 'static,
{
    let ready = ready(cell)?.clone();
    tokio::task::spawn_blocking(move || {
        let view = ready.store.snapshot().map_err(store_status)?;
        f(&view, &ready)
    })
    .await
    .map_err(|e| tonic::Status::internal(format!("query task failed: {e}")))?
}
