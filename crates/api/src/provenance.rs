//! ProvenanceService: lots, lineage, events, quarantine, unknown lots.

use lotline_proto::v1;
use lotline_proto::v1::provenance_service_server::ProvenanceService;
use lotline_service::queries::EventPage;
use lotline_service::queries::provenance::EventQuery;
use lotline_service::{Service, args};
use lotline_store::EventFilter;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::caller::{caller, viewed};
use crate::status::status as to_status;
use crate::wire;

/// Events one page of a watch reads at most.
const WATCH_PAGE: usize = 1_000;
/// How long one page of a watch may read.
const WATCH_READ: std::time::Duration = std::time::Duration::from_secs(60);

pub struct ProvenanceApi {
    service: Service,
}

impl ProvenanceApi {
    pub fn new(service: Service) -> Self {
        ProvenanceApi { service }
    }
}

pub(crate) fn events_to_wire(page: &EventPage) -> Vec<v1::StoredEvent> {
    page.events.iter().map(wire::stored_event).collect()
}

#[tonic::async_trait]
impl ProvenanceService for ProvenanceApi {
    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn get_lot(
        &self,
        request: Request<v1::GetLotRequest>,
    ) -> Result<Response<v1::Lot>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let lot = args::lot(&r.lot).map_err(to_status)?;
        let found = self.service.lot(&caller, lot).await.map_err(to_status)?;
        Ok(viewed(wire::lot(&found), found.view))
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn trace_back(
        &self,
        request: Request<v1::TraceBackRequest>,
    ) -> Result<Response<v1::TraceBackResponse>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let lot = args::lot(&r.lot).map_err(to_status)?;
        let trace = self
            .service
            .trace_back(&caller, lot)
            .await
            .map_err(to_status)?;
        Ok(viewed(wire::trace_back(&trace), trace.view))
    }

    #[instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_container(
        &self,
        request: Request<v1::GetContainerRequest>,
    ) -> Result<Response<v1::Container>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let id = args::lot(&r.id).map_err(to_status)?;
        let found = self
            .service
            .container(&caller, id.clone())
            .await
            .map_err(to_status)?;
        Ok(viewed(wire::container(&id, &found), found.view))
    }

    #[instrument(skip_all, fields(lot = %request.get_ref().lot))]
    async fn trace_forward(
        &self,
        request: Request<v1::TraceForwardRequest>,
    ) -> Result<Response<v1::TraceForwardResponse>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let lot = args::lot(&r.lot).map_err(to_status)?;
        let trace = self
            .service
            .trace_forward(&caller, lot)
            .await
            .map_err(to_status)?;
        Ok(Response::new(wire::recall(&trace)))
    }

    #[instrument(skip_all)]
    async fn list_events(
        &self,
        request: Request<v1::ListEventsRequest>,
    ) -> Result<Response<v1::ListEventsResponse>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let query = (|| {
            Ok(EventQuery {
                filter: EventFilter {
                    org: args::opt_id("org", &r.org)?,
                    chain: args::chain(&r.chain)?,
                    kind: args::kind(&r.kind)?,
                    lot: args::opt_lot("lot", &r.lot)?,
                    from: args::time("from", &r.from)?,
                    to: args::time("to", &r.to)?,
                },
                after: args::cursor(&r.cursor)?,
                limit: args::page_limit(r.limit),
                event_id: args::opt_id("event_id", &r.event_id)?,
            })
        })()
        .map_err(to_status)?;
        let page = self
            .service
            .events(&caller, query)
            .await
            .map_err(to_status)?;
        Ok(viewed(
            v1::ListEventsResponse {
                events: events_to_wire(&page),
                next_cursor: page.next.clone().unwrap_or_default(),
            },
            page.view,
        ))
    }

    type WatchEventsStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::StoredEvent, Status>> + Send>>;

    #[instrument(skip_all)]
    async fn watch_events(
        &self,
        request: Request<v1::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = caller(&self.service, &request, request.get_ref().public_view)?;
        let r = request.into_inner();
        let (filter, start) = (|| {
            let filter = EventFilter {
                org: args::opt_id("org", &r.org)?,
                chain: args::chain(&r.chain)?,
                kind: args::kind(&r.kind)?,
                lot: args::opt_lot("lot", &r.lot)?,
                from: None,
                to: None,
            };
            let start = args::time("from_record_time", &r.from_record_time)?
                .map(|t| t.with_timezone(&chrono::Utc));
            Ok::<_, lotline_service::ServiceError>((filter, start))
        })()
        .map_err(to_status)?;
        // A watch outlives any one question: each page gets its own read deadline.
        let caller = caller.until(None);
        let service = self.service.clone();
        let mut after = if r.after_sequence > 0 {
            r.after_sequence
        } else {
            service
                .position_at(&caller, start)
                .await
                .map_err(to_status)?
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let page = match service.still_valid(&caller) {
                    Ok(()) => {
                        let reading = caller
                            .clone()
                            .until(std::time::Instant::now().checked_add(WATCH_READ));
                        service
                            .follow_events(&reading, filter.clone(), after, WATCH_PAGE)
                            .await
                    }
                    Err(e) => Err(e),
                };
                let page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(to_status(e))).await;
                        return;
                    }
                };
                for answered in &page.events {
                    if tx.send(Ok(wire::stored_event(answered))).await.is_err() {
                        return;
                    }
                }
                after = page.through;
                if !page.more {
                    tokio::select! {
                        grew = service.log_beyond(after) => if let Err(e) = grew {
                            let _ = tx.send(Err(to_status(e))).await;
                            return;
                        },
                        () = tx.closed() => return,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    #[instrument(skip_all)]
    async fn list_rejected(
        &self,
        request: Request<v1::ListRejectedRequest>,
    ) -> Result<Response<v1::ListRejectedResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let r = request.into_inner();
        let after = args::cursor(&r.cursor).map_err(to_status)?;
        let page = self
            .service
            .rejected(&caller, after, args::page_limit(r.limit))
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::ListRejectedResponse {
            rejected: page
                .items
                .into_iter()
                .map(|q| v1::RejectedInput {
                    id: q.id,
                    received_at: q.received_at,
                    source: q.source,
                    event_id: q.event_id,
                    org: q.org,
                    kind: q.kind,
                    reason: q.reason,
                    payload: q.payload,
                })
                .collect(),
            next_cursor: page.next_after.map(|n| n.to_string()).unwrap_or_default(),
        }))
    }

    #[instrument(skip_all)]
    async fn list_unknown_lots(
        &self,
        request: Request<v1::ListUnknownLotsRequest>,
    ) -> Result<Response<v1::ListUnknownLotsResponse>, Status> {
        let caller = caller(&self.service, &request, false)?;
        let asked = request.into_inner();
        let limit = if asked.limit == 0 {
            1_000
        } else {
            asked.limit as usize
        };
        let (lots, next) = self
            .service
            .unknown_lots(&caller, asked.cursor, limit)
            .await
            .map_err(to_status)?;
        let lots = lots
            .into_iter()
            .map(|u| v1::UnknownLot {
                lot: u.lot,
                event_ids: u.event_ids,
            })
            .collect();
        Ok(Response::new(v1::ListUnknownLotsResponse {
            lots,
            next_cursor: next.unwrap_or_default(),
        }))
    }
}
