//! Who sent a request: its bearer token or the client certificate its TLS handshake verified,
//! handed to the service, which decides (the door decides nothing). Answers say which view
//! the caller got in the `lotline-view` response header.

use lotline_service::{Caller, CertificateSubject, Credentials, Level, Service};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::status::status;

/// The response header naming the view an answer is in: `full`, `partner` or `public`.
pub const VIEW_HEADER: &str = "lotline-view";

/// The caller of `request`; `public`: it asked for the public view.
pub(crate) fn caller<T>(
    service: &Service,
    request: &Request<T>,
    public: bool,
) -> Result<Caller, Status> {
    let bearer = match request.metadata().get("authorization") {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                Status::unauthenticated("authorization: the header is not ASCII text")
            })?;
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or_else(|| {
                    Status::unauthenticated("authorization: expected `Bearer <token>`")
                })?;
            Some(token.trim().to_string())
        }
    };
    let certificate = if service.enforces_access() {
        peer_subject(request)?
    } else {
        None
    };
    service
        .authenticate(
            &Credentials {
                bearer,
                certificate,
            },
            public,
        )
        .map(|caller| {
            caller
                .until(deadline(request))
                .from_peer(request.remote_addr().map(|a| a.to_string()))
        })
        .map_err(status)
}

/// When the client stops waiting: its `grpc-timeout` (e.g. `5S`, `250m`) from now.
fn deadline<T>(request: &Request<T>) -> Option<std::time::Instant> {
    let text = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = number.parse().ok()?;
    let timeout = match unit {
        "H" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "M" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    std::time::Instant::now().checked_add(timeout)
}

/// The subject of the client certificate, if the connection has one (the TLS handshake has
/// already verified it against `--client-ca`): its common name is the org, each
/// organisational unit a role.
fn peer_subject<T>(request: &Request<T>) -> Result<Option<CertificateSubject>, Status> {
    let Some(certs) = request.peer_certs() else {
        return Ok(None);
    };
    let Some(leaf) = certs.first() else {
        return Ok(None);
    };
    CertificateSubject::from_der(leaf.as_ref())
        .map(Some)
        .map_err(status)
}

/// An answer, saying which view it is in.
pub(crate) fn viewed<T>(answer: T, view: Level) -> Response<T> {
    let mut response = Response::new(answer);
    response
        .metadata_mut()
        .insert(VIEW_HEADER, MetadataValue::from_static(view.as_str()));
    response
}
