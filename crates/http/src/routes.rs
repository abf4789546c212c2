//! The routes of the EPCIS REST binding: discovery, `/events` and the top-level resources whose
//! `/{id}/events` are events queries with one more parameter.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use chrono::{SecondsFormat, Utc};
use lotline_epcis::hash::{BIZ_STEPS, DISPOSITIONS};
use lotline_epcis::names::EPCIS_CONTEXT;
use lotline_epcis::query::{EVENT_TYPES, Query, QueryError};
use lotline_service::queries::epcis::{Cursor, EpcisPage, Listing, MAX_PER_PAGE};
use lotline_service::{Caller, CertificateSubject, Credentials, Service};
use serde_json::{Value, json};

use crate::session::{self, Sessions};
use crate::{Peer, Problem, READ_DEADLINE, answers, capture, queries, resolver, token};

/// The EPCIS and CBV versions lotline speaks.
const EPCIS_VERSION: &str = "2.0.0";
const CBV_VERSION: &str = "2.0.0";
/// The page size when a request gives none (the binding's default).
const DEFAULT_PER_PAGE: usize = 30;
/// The response header naming the view an answer is in (as over gRPC).
pub(crate) const VIEW_HEADER: &str = "lotline-view";

#[derive(Clone)]
pub(crate) struct Http {
    pub(crate) service: Service,
    pub(crate) sessions: std::sync::Arc<Sessions>,
}

pub(crate) fn router(service: Service) -> Router {
    let read = |m: MethodRouter<Http>| m.options(discovery);
    Router::new()
        .route("/", read(get(top_level)))
        .route(
            "/capture",
            post(capture::capture)
                .get(capture::jobs)
                .options(capture::discovery),
        )
        .route("/capture/{capture_id}", read(get(capture::job)))
        .route("/events", read(get(events).post(capture::capture_event)))
        .route("/events/{event_id}", read(get(event)))
        .route("/eventTypes", read(get(event_types)))
        .route("/eventTypes/{event_type}", read(get(event_type)))
        .route("/eventTypes/{event_type}/events", read(get(events_of_type)))
        .route("/epcs", read(get(listing)))
        .route("/epcs/{id}", read(get(sub_resources)))
        .route("/epcs/{id}/events", read(get(epc_events)))
        .route("/bizSteps", read(get(biz_steps)))
        .route("/bizSteps/{id}", read(get(sub_resources)))
        .route("/bizSteps/{id}/events", read(get(biz_step_events)))
        .route("/dispositions", read(get(dispositions)))
        .route("/dispositions/{id}", read(get(sub_resources)))
        .route("/dispositions/{id}/events", read(get(disposition_events)))
        .route("/readPoints", read(get(listing)))
        .route("/readPoints/{id}", read(get(sub_resources)))
        .route("/readPoints/{id}/events", read(get(read_point_events)))
        .route("/bizLocations", read(get(listing)))
        .route("/bizLocations/{id}", read(get(sub_resources)))
        .route("/bizLocations/{id}/events", read(get(biz_location_events)))
        .route("/queries", read(get(queries::list).post(queries::create)))
        .route(
            "/queries/{name}",
            read(get(queries::definition).delete(queries::delete)),
        )
        .route("/queries/{name}/events", read(get(queries::events)))
        .route(
            "/queries/{name}/subscriptions",
            read(get(queries::subscriptions).post(queries::subscribe)),
        )
        .route(
            "/queries/{name}/subscriptions/{id}",
            read(get(queries::subscription).delete(queries::unsubscribe)),
        )
        .route("/lotline/v1", get(answers::index))
        .route("/lotline/v1/openapi.json", get(answers::openapi))
        .route("/lotline/v1/lots/{lot}", get(answers::lot))
        .route("/lotline/v1/lots/{lot}/trace", get(answers::trace))
        .route("/lotline/v1/lots/{lot}/recall", get(answers::recall))
        .route("/lotline/v1/lots/{lot}/eudr", get(answers::eudr))
        .route(
            "/lotline/v1/lots/{lot}/eudr/geojson",
            get(answers::eudr_geojson),
        )
        .route("/lotline/v1/anomalies", get(answers::anomalies))
        .route(
            "/lotline/v1/anomalies/{id}/reviews",
            axum::routing::post(answers::review),
        )
        .route("/lotline/v1/containers/{id}", get(answers::container))
        .route("/lotline/v1/checkpoint", get(answers::checkpoint))
        .route("/lotline/v1/proofs/{event_id}", get(answers::proof))
        .route("/01/{gtin}", get(resolver::product))
        .route("/lotline/v1/products/{gtin}", get(resolver::brand_view))
        .route(
            "/lotline/v1/session",
            get(resolver::sign_in_form).post(resolver::sign_in),
        )
        .route("/lotline/v1/session/end", post(resolver::sign_out))
        .route("/01/{gtin}/10/{lot}", get(resolver::lot))
        .route("/lotline/v1/lots/{lot}/page", get(resolver::lot_by_id))
        .route(
            "/nextPageToken/{token}",
            delete(release_token).options(discovery),
        )
        .route_layer(axum::middleware::from_fn(timed))
        .fallback(no_route)
        // Capture streams its body to a file under its own limit.
        .layer(DefaultBodyLimit::disable())
        .with_state(Http {
            service,
            sessions: Default::default(),
        })
}

/// Records each routed request's latency in [`crate::REQUEST_SECONDS`].
async fn timed(
    route: axum::extract::MatchedPath,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let route = route.as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(crate::REQUEST_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// What every query request brings: the caller, the path and the query string's parameters.
pub(crate) struct Asked {
    pub(crate) caller: Caller,
    pub(crate) path: String,
    pub(crate) params: Vec<(String, String)>,
}

impl FromRequestParts<Http> for Asked {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, http: &Http) -> Result<Self, Problem> {
        // A browser's session stands for its token on reads only.
        let session = if matches!(parts.method, Method::GET | Method::HEAD) {
            session::cookie(&parts.headers).and_then(|id| http.sessions.token(&id))
        } else {
            None
        };
        let caller = caller(
            &http.service,
            &parts.headers,
            session,
            parts.extensions.get::<Peer>(),
        )?;
        let params = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        Ok(Asked {
            caller,
            path: parts.uri.path().to_string(),
            params,
        })
    }
}

/// The caller of a request, from its bearer token or its connection's client certificate.
pub(crate) fn caller(
    service: &Service,
    headers: &HeaderMap,
    session: Option<String>,
    peer: Option<&Peer>,
) -> Result<Caller, Problem> {
    let unauthenticated = |m: &str| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "SecurityException",
            format!("authorization: {m}"),
        )
    };
    let bearer = match headers.get(header::AUTHORIZATION) {
        None => session,
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| unauthenticated("the header is not ASCII text"))?;
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .ok_or_else(|| unauthenticated("expected `Bearer <token>`"))?;
            Some(token.trim().to_string())
        }
    };
    let certificate = match peer.and_then(|p| p.certificate.as_ref()) {
        Some(der) if service.enforces_access() => Some(CertificateSubject::from_der(der)?),
        _ => None,
    };
    let caller = service.authenticate(
        &Credentials {
            bearer,
            certificate,
        },
        false,
    )?;
    Ok(caller
        .until(std::time::Instant::now().checked_add(READ_DEADLINE))
        .from_peer(peer.and_then(|p| p.address).map(|a| a.to_string())))
}

/// The headers every EPCIS answer carries.
pub(crate) fn versioned(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("gs1-epcis-version", EPCIS_VERSION),
        ("gs1-cbv-version", CBV_VERSION),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    versioned(response)
}

/// `OPTIONS` on any resource: what it allows and which EPCIS and CBV versions lotline speaks.
pub(crate) async fn discovery(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let allow = match segments.as_slice() {
        ["nextPageToken", _] => "OPTIONS, DELETE",
        ["capture"] | ["events"] | ["queries"] | ["queries", _, "subscriptions"] => {
            "OPTIONS, GET, POST"
        }
        ["queries", _] | ["queries", _, "subscriptions", _] => "OPTIONS, GET, DELETE",
        _ => "OPTIONS, GET",
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    let vendor = concat!("lotline/", env!("CARGO_PKG_VERSION"));
    for (name, value) in [
        ("allow", allow),
        ("gs1-epcis-version", EPCIS_VERSION),
        ("gs1-epcis-min", EPCIS_VERSION),
        ("gs1-epcis-max", EPCIS_VERSION),
        ("gs1-cbv-version", CBV_VERSION),
        ("gs1-cbv-min", CBV_VERSION),
        ("gs1-cbv-max", CBV_VERSION),
        ("gs1-epc-format", "No_Preference"),
        ("gs1-vendor-version", vendor),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

fn collection(members: impl IntoIterator<Item = impl Into<Value>>) -> Response {
    let members: Vec<Value> = members.into_iter().map(Into::into).collect();
    json_response(
        StatusCode::OK,
        &json!({"@context": EPCIS_CONTEXT, "type": "Collection", "member": members}),
    )
}

/// `/`: the EPCIS top-level resources, or, asked `?epc=<EPC URN>` (a GS1 resolver's query by
/// EPC), a redirect to the identifier's Digital Link path.
async fn top_level(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if let Some(epc) = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(name, _)| name == "epc")
        .map(|(_, value)| value.into_owned())
    {
        return resolver::epc_redirect(&epc, &headers);
    }
    collection([
        "capture",
        "events",
        "eventTypes",
        "epcs",
        "bizSteps",
        "bizLocations",
        "readPoints",
        "dispositions",
        "queries",
    ])
}

async fn event_types() -> Response {
    collection(EVENT_TYPES)
}

async fn event_type(Path(event_type): Path<String>) -> Result<Response, Problem> {
    known_type(&event_type)?;
    Ok(collection(["events"]))
}

fn known_type(event_type: &str) -> Result<(), Problem> {
    if EVENT_TYPES.contains(&event_type) {
        Ok(())
    } else {
        Err(Problem::not_found(format!(
            "eventType {event_type:?}: not an EPCIS event type ({})",
            EVENT_TYPES.join(", ")
        )))
    }
}

async fn sub_resources() -> Response {
    collection(["events"])
}

async fn biz_steps() -> Response {
    collection(BIZ_STEPS.iter().copied())
}

async fn dispositions() -> Response {
    collection(DISPOSITIONS.iter().copied())
}

/// `/epcs`, `/readPoints` and `/bizLocations`: the identifiers their `/{id}/events` take, a
/// page at a time.
async fn listing(State(http): State<Http>, asked: Asked) -> Result<Response, Problem> {
    let resource = asked.path.clone();
    let listing = if resource == "/epcs" {
        Listing::Epcs
    } else {
        Listing::Locations
    };
    let mut per_page = DEFAULT_PER_PAGE;
    let mut after = None;
    for (name, value) in &asked.params {
        match name.as_str() {
            "perPage" => per_page = parse_per_page(value)?,
            "nextPageToken" => after = Some(token::decode_listing(&resource, value)?),
            other => {
                return Err(Problem::parameter(format!(
                    "{other}: {resource} takes perPage and nextPageToken only"
                )));
            }
        }
    }
    let (ids, next) = http
        .service
        .epcis_listing(&asked.caller, listing, after, per_page)
        .await?;
    let mut response = collection(ids);
    if let Some(last) = next {
        let link = format!(
            "<{resource}?perPage={per_page}&nextPageToken={}>; rel=\"next\"",
            token::encode_listing(&resource, &last)
        );
        if let Ok(link) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, link);
        }
    }
    Ok(response)
}

fn parse_per_page(value: &str) -> Result<usize, Problem> {
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
        _ => Err(Problem::parameter(format!(
            "perPage: {value:?} is not a number from 1 to {MAX_PER_PAGE}"
        ))),
    }
}

async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("{}: no such resource", uri.path()))
}

/// Page tokens hold no state on the server: there is nothing to release.
async fn release_token() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn events(State(http): State<Http>, asked: Asked) -> Result<Response, Problem> {
    answer(&http, asked, Ok).await
}

async fn events_of_type(
    State(http): State<Http>,
    Path(event_type): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    known_type(&event_type)?;
    answer(&http, asked, |q| q.with("eventType", &event_type)).await
}

async fn epc_events(
    State(http): State<Http>,
    Path(id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    answer(&http, asked, |q| q.naming(&id)).await
}

async fn biz_step_events(
    State(http): State<Http>,
    Path(id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    answer(&http, asked, |q| q.with("EQ_bizStep", &id)).await
}

async fn disposition_events(
    State(http): State<Http>,
    Path(id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    answer(&http, asked, |q| q.with("EQ_disposition", &id)).await
}

async fn read_point_events(
    State(http): State<Http>,
    Path(id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    answer(&http, asked, |q| q.with("EQ_readPoint", &id)).await
}

async fn biz_location_events(
    State(http): State<Http>,
    Path(id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    answer(&http, asked, |q| q.with("EQ_bizLocation", &id)).await
}

async fn event(
    State(http): State<Http>,
    Path(event_id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    let page = http.service.epcis_event(&asked.caller, &event_id).await?;
    Ok(query_document(
        document_text(&page, "SimpleEventQuery", None),
        page.view,
        None,
    ))
}

/// An events query: the request's parameters (or its page token's), with what the path adds.
async fn answer(
    http: &Http,
    asked: Asked,
    resource: impl FnOnce(Query) -> Result<Query, QueryError>,
) -> Result<Response, Problem> {
    answer_query(http, asked, None, resource).await
}

/// An events query. `fixed`: a named query's parameters, which the request may not change
/// (it gives only `perPage` and `nextPageToken`).
pub(crate) async fn answer_query(
    http: &Http,
    asked: Asked,
    fixed: Option<(&str, Vec<(String, String)>)>,
    resource: impl FnOnce(Query) -> Result<Query, QueryError>,
) -> Result<Response, Problem> {
    let mut per_page = DEFAULT_PER_PAGE;
    let mut page_token = None;
    let mut params = Vec::new();
    for (name, value) in asked.params {
        match name.as_str() {
            "perPage" => per_page = parse_per_page(&value)?,
            "nextPageToken" => page_token = Some(value),
            _ => params.push((name, value)),
        }
    }
    let query_name = match fixed {
        None => "SimpleEventQuery",
        Some((name, fixed)) => {
            if let Some((extra, _)) = params.first() {
                return Err(Problem::parameter(format!(
                    "{extra}: a named query's results take perPage and nextPageToken only (its query is fixed; define another query to ask another question)"
                )));
            }
            params = fixed;
            name
        }
    };
    let cursor = match page_token {
        None => Cursor::After(0),
        Some(text) => {
            let (carried, cursor) = token::decode(&text)?;
            let mut given = params.clone();
            given.sort();
            if !given.is_empty() && given != carried {
                return Err(Problem::parameter(
                    "nextPageToken: the request's other parameters differ from the query the token continues (give the token with perPage only)",
                ));
            }
            params = carried;
            cursor
        }
    };
    let query = Query::parse(params.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
    let carried = query.params().to_vec();
    let query = resource(query)?;
    let page = http
        .service
        .epcis_events(&asked.caller, query, cursor, per_page)
        .await?;
    let next = page.next.map(|cursor| {
        format!(
            "<{}?perPage={per_page}&nextPageToken={}>; rel=\"next\"",
            asked.path,
            token::encode(&carried, cursor)
        )
    });
    let view = page.view;
    let body = document_text(&page, query_name, None);
    Ok(query_document(body, view, next))
}

/// An `EPCISQueryDocument` of a page, the answer of `query_name` (for `subscription`). Events
/// are written as lotline keeps them (member order and number text as captured), not through a
/// JSON map.
pub(crate) fn document_text(
    page: &EpcisPage,
    query_name: &str,
    subscription: Option<&str>,
) -> String {
    let text = |j: &lotline_epcis::Json| serde_json::to_string(j).unwrap_or_else(|_| "null".into());
    let events: Vec<String> = page.events.iter().map(text).collect();
    let subscription = subscription
        .map(|id| format!(",\"subscriptionID\":{}", Value::String(id.to_string())))
        .unwrap_or_default();
    format!(
        "{{\"@context\":{},\"type\":\"EPCISQueryDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":{},\"epcisBody\":{{\"queryResults\":{{\"queryName\":{}{subscription},\"resultsBody\":{{\"eventList\":[{}]}}}}}}}}",
        text(&page.context),
        Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        Value::String(query_name.to_string()),
        events.join(",")
    )
}

/// A query document's response, with the view it is in and the `Link` to the next page.
fn query_document(body: String, view: lotline_service::Level, next: Option<String>) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = versioned(response);
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static(VIEW_HEADER),
        HeaderValue::from_static(view.as_str()),
    );
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LINK, link);
    }
    response
}

/// `text` as one path segment (percent-encoded).
pub(crate) fn path_segment(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Whether a request's `Content-Type` is JSON (`application/json` or `application/ld+json`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || v == "application/ld+json"
        })
}
