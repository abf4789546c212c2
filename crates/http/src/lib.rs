//! lotline's HTTP door: the GS1 EPCIS 2.0 REST binding (`REST Bindings/openapi.yaml` of
//! `gs1/EPCIS`) and lotline's own answers (`/lotline/v1`, the documents of `--json`) over the
//! use cases of `lotline-service`, beside gRPC in the same process (`serve --http ADDR`).
//!
//! Like the gRPC door it only translates: it reads the caller's credentials (a bearer token, the
//! client certificate of a TLS connection) and hands them to `Service::authenticate`, turns the
//! request into a use case's arguments (an EPCIS [`Query`]), and writes the answer as an
//! `EPCISQueryDocument`; every error goes through [`problem`] once. Which events a caller sees
//! is the service's decision.

mod answers;
mod capture;
pub mod problem;
mod queries;
mod resolver;
mod routes;
mod session;
mod token;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use futures::{Stream, StreamExt};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lotline_service::Service;
use tokio::io::{AsyncRead, AsyncWrite};
use tower::ServiceExt;
use tracing::{debug, warn};

pub use lotline_epcis::query::Query;
pub use problem::Problem;
pub use webhooks::deliver;

/// How long an HTTP question may read before it stops (HTTP has no deadline header like gRPC's
/// `grpc-timeout`).
pub const READ_DEADLINE: Duration = Duration::from_secs(60);

/// Who is at the other end of a connection: its address and, over TLS, the client certificate
/// the handshake verified (DER).
#[derive(Debug, Clone, Default)]
pub struct Peer {
    pub address: Option<SocketAddr>,
    pub certificate: Option<Arc<Vec<u8>>>,
}

/// One accepted connection.
pub struct Connection<IO> {
    pub io: IO,
    pub peer: Peer,
}

/// The latency of each HTTP request (to its response's head), labelled by method and route (the
/// route's pattern, e.g. `/01/{gtin}/10/{lot}`, never the path asked, so callers cannot make the
/// label set grow).
pub const REQUEST_SECONDS: &str = "lotline_http_request_duration_seconds";

/// The EPCIS REST binding's routes, answering through `service`.
pub fn router(service: Service) -> Router {
    routes::router(service)
}

/// Serves `router` on every connection `incoming` yields until `shutdown` resolves, then lets the
/// requests in flight finish for up to `grace`.
pub async fn serve<IO, S>(
    router: Router,
    incoming: S,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Stream<Item = Connection<IO>>,
{
    let graceful = GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    let mut incoming = std::pin::pin!(incoming);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let connection = tokio::select! {
            () = &mut shutdown => break,
            next = incoming.next() => match next {
                Some(c) => c,
                None => break,
            },
        };
        let peer = connection.peer;
        let service = router.clone().map_request(move |mut request: Request<_>| {
            request.extensions_mut().insert(peer.clone());
            request.map(Body::new)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(connection.io),
                TowerToHyperService::new(service),
            );
            if let Err(e) = watcher.watch(conn).await {
                debug!(cause = %e, "an HTTP connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            ?grace,
            "HTTP requests did not finish within the grace period"
        );
    }
}
