//! lotline's gRPC services (`lotline.v1`): translation only. Each RPC turns its request into a
//! domain request ([`lotline_service::args`]), calls one use case of [`Service`] and turns the
//! domain answer into its wire message; errors map to gRPC status in one place ([`status`]).
//! Rules, views and the store are the service's business, not these services'.

mod access;
mod audit;
mod caller;
mod events;
mod log;
mod masterdata;
mod provenance;
mod status;
pub mod wire;

pub use access::AccessApi;
pub use audit::AuditApi;
pub use caller::VIEW_HEADER;
pub use events::{EventApi, EventRoutes};
pub use log::LogApi;
pub use lotline_service::queries::masterdata::MAX_RESOLVE;
pub use lotline_service::{MAX_BATCH, Ready, ReadyCell, Service};
pub use masterdata::MasterDataApi;
pub use provenance::ProvenanceApi;
pub use status::status;
