//! The one mapping of the service's errors to HTTP: RFC 7807 problem documents whose `type` is
//! an EPCIS exception (`epcisException:QueryParameterException`, …), so a client's mistake is a
//! 4xx that says what to change, never a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotline_epcis::query::QueryError;
use lotline_service::{ServiceError, WriteError};
use serde_json::json;

/// A problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// The EPCIS exception, without the `epcisException:` prefix.
    pub exception: &'static str,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, exception: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            exception,
            detail: detail.into(),
        }
    }

    /// A query parameter lotline cannot take.
    pub fn parameter(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "QueryParameterException", detail)
    }

    /// A resource that is not there.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "NoSuchResourceException", detail)
    }
}

impl From<QueryError> for Problem {
    fn from(e: QueryError) -> Self {
        Problem::parameter(e.to_string())
    }
}

impl From<ServiceError> for Problem {
    fn from(err: ServiceError) -> Self {
        let detail = err.to_string();
        let (status, exception) = match &err {
            ServiceError::InvalidArgument { .. } | ServiceError::BeyondLog { .. } => {
                (StatusCode::BAD_REQUEST, "QueryParameterException")
            }
            ServiceError::Rejected { .. } => (StatusCode::BAD_REQUEST, "ValidationException"),
            ServiceError::LimitExceeded { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "QueryTooLargeException")
            }
            ServiceError::DeadlineExceeded(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "QueryTooComplexException")
            }
            ServiceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "SecurityException"),
            ServiceError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "SecurityException"),
            ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "NoSuchResourceException"),
            ServiceError::AlreadyExists(_) => {
                (StatusCode::CONFLICT, "ResourceAlreadyExistsException")
            }
            ServiceError::Busy(_) => (StatusCode::TOO_MANY_REQUESTS, "ImplementationException"),
            ServiceError::WritesRefused(_)
            | ServiceError::NotReady(_)
            | ServiceError::Write(WriteError::Unavailable(_) | WriteError::NotApplied { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "ImplementationException")
            }
            ServiceError::Write(WriteError::Store(_))
            | ServiceError::Store(_)
            | ServiceError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "ImplementationException")
            }
        };
        Problem::new(status, exception, detail)
    }
}

impl Problem {
    /// The problem document.
    pub fn body(&self) -> serde_json::Value {
        json!({
            "type": format!("epcisException:{}", self.exception),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        })
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"lotline\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_mistake_is_never_a_server_error() {
        for err in [
            ServiceError::invalid("x", "bad"),
            ServiceError::Unauthenticated("no".into()),
            ServiceError::PermissionDenied("no".into()),
            ServiceError::NotFound("no".into()),
            ServiceError::LimitExceeded {
                field: "perPage",
                limit: 1,
                message: "too many".into(),
            },
            ServiceError::Busy("wait".into()),
            ServiceError::AlreadyExists("taken".into()),
        ] {
            let p = Problem::from(err);
            assert!(p.status.is_client_error(), "{p:?}");
        }
        let p = Problem::from(ServiceError::Internal("boom".into()));
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(p.exception, "ImplementationException");
    }
}
