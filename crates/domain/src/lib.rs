//! lotline's domain: the event model, exact quantities, validation rules and the
//! provenance arithmetic (trace back with quantities, trace forward, lot state).
//!
//! Pure: no IO, no tokio, no prost, no sled. Wire types are converted into these
//! types once, at the edge (`lotline-proto`), and the store answers the narrow
//! questions this crate asks through [`lineage::LineageSource`].

pub mod anomaly;
pub mod audit;
pub mod containers;
pub mod event;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod geo;
pub mod gs1;
pub mod ids;
pub mod lineage;
pub mod outcome;
pub mod quantity;
pub mod validate;

pub use anomaly::{Anomaly, AnomalyKind, AnomalyReview, AnomalyStatus};
pub use event::{
    BusinessDocument, Certify, Chain, ConfirmMember, Correct, CustodyModel, Event, EventKind,
    Harvest, KindName, LotQuantity, Movement, Observe, OrgRole, OutputLot, Pay, RegisterClass,
    RegisterOrg, RegisterPlot, RegisterSite, Review, RevokeToken, Transform, Verdict,
};
pub use outcome::{Outcome, RejectKind};
pub use quantity::{Dimension, Quantity, Unit};
pub use validate::{Invalid, validate};
