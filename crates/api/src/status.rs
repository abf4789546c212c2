//! The one mapping from the service's errors to gRPC status, with `google.rpc` details where a
//! client can act on them (which field is wrong, which limit was exceeded).

use lotline_domain::RejectKind;
use lotline_service::{ServiceError, WriteError};
use lotline_store::StoreError;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The status a failed use case answers.
pub fn status(err: ServiceError) -> Status {
    let message = err.to_string();
    match err {
        ServiceError::InvalidArgument { field, reason } => Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request_violation(field, reason),
        ),
        ServiceError::LimitExceeded { field, .. } => Status::with_error_details(
            Code::InvalidArgument,
            message.clone(),
            ErrorDetails::with_bad_request_violation(field, message),
        ),
        ServiceError::Unauthenticated(_) => Status::unauthenticated(message),
        ServiceError::PermissionDenied(_) => Status::permission_denied(message),
        ServiceError::NotFound(_) => Status::not_found(message),
        ServiceError::AlreadyExists(_) => Status::already_exists(message),
        ServiceError::BeyondLog { .. } => Status::out_of_range(message),
        ServiceError::Rejected { kind, .. } => match kind {
            RejectKind::Invalid => Status::invalid_argument(message),
            RejectKind::UnregisteredOrg => Status::failed_precondition(message),
            RejectKind::Conflict => Status::already_exists(message),
        },
        ServiceError::WritesRefused(_) => Status::failed_precondition(message),
        ServiceError::NotReady(_) => Status::unavailable(message),
        ServiceError::Busy(_) => Status::resource_exhausted(message),
        ServiceError::DeadlineExceeded(_) | ServiceError::Store(StoreError::Deadline) => {
            Status::deadline_exceeded(message)
        }
        ServiceError::Write(WriteError::Store(e)) | ServiceError::Store(e) => store_status(e),
        ServiceError::Write(_) => Status::unavailable(message),
        ServiceError::Internal(_) => Status::internal(message),
    }
}

/// A store failure: UNAVAILABLE when it may pass (writer stopping, IO), INTERNAL when stored data
/// is corrupt, INVALID_ARGUMENT for a cursor no listing gave.
fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::WriterStopped => {
            Status::unavailable("lotline is shutting down; retry on another node or later")
        }
        StoreError::Corrupt(m) => Status::internal(format!("stored data is corrupt: {m}")),
        StoreError::BadCursor(c) => Status::with_error_details(
            Code::InvalidArgument,
            format!("cursor: {c:?} is not one this listing gave"),
            ErrorDetails::with_bad_request_violation("cursor", "is not one this listing gave"),
        ),
        StoreError::Sled(e) => Status::unavailable(format!("storage failed: {e}")),
        StoreError::Backend(m) => Status::unavailable(format!("storage failed: {m}")),
        StoreError::Clock(m) => Status::unavailable(format!("not recorded: {m}")),
        StoreError::Deadline => {
            Status::deadline_exceeded("the deadline passed before the answer was ready")
        }
    }
}
