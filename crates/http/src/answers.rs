//! lotline's own answers over HTTP, under `/lotline/v1`: a lot, its trace back, its recall, its
//! EUDR verdict and GeoJSON, and the anomaly listing, as the same JSON documents `lotline …
//! --json` prints (`lotline_proto::documents`, from the same wire messages as gRPC). `?public=true`
//! asks for the public view, as `--public` does; the view the answer is in is the `lotline-view`
//! header. The document describing these routes is `/lotline/v1/openapi.json`.

use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotline_api::wire;
use lotline_proto::convert::anomaly_to_wire;
use lotline_proto::documents;
use lotline_service::queries::audit::{AnomalyQuery, ReviewRequest};
use lotline_service::queries::log::Leaf;
use lotline_service::{Level, args};
use serde_json::{Value, json};

use crate::Problem;
use crate::routes::{Asked, Http};

/// The OpenAPI document of `/lotline/v1`.
const OPENAPI: &str = include_str!("lotline-v1.openapi.json");

/// Anomalies one page of the listing reads (the answer gathers every page).
const ANOMALY_PAGE: usize = 1_000;

/// The parameters of a `/lotline/v1` request, each known and given once.
struct Params {
    public: bool,
    rest: Vec<(String, String)>,
}

fn params(asked: &mut Asked, allowed: &[&str]) -> Result<Params, Problem> {
    let mut public = false;
    let mut rest: Vec<(String, String)> = Vec::new();
    for (name, value) in std::mem::take(&mut asked.params) {
        if name == "public" {
            public = match value.as_str() {
                "true" | "" => true,
                "false" => false,
                _ => {
                    return Err(Problem::parameter(format!(
                        "public: {value:?} is not true or false"
                    )));
                }
            };
        } else if !allowed.contains(&name.as_str()) {
            return Err(Problem::parameter(format!(
                "{name}: not a parameter of {} (it takes {})",
                asked.path,
                ["public"]
                    .iter()
                    .chain(allowed)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        } else if rest.iter().any(|(n, _)| *n == name) {
            return Err(Problem::parameter(format!("{name}: given twice")));
        } else {
            rest.push((name, value));
        }
    }
    // Asking for the public view only ever narrows what the caller gets.
    asked.caller.asked_public |= public;
    Ok(Params { public, rest })
}

fn document(body: &Value, view: Option<Level>, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(view) = view {
        headers.insert(
            HeaderName::from_static(crate::routes::VIEW_HEADER),
            HeaderValue::from_static(view.as_str()),
        );
    }
    response
}

fn json_document(body: &Value, view: Option<Level>) -> Response {
    document(body, view, "application/json")
}

pub(crate) async fn index() -> Response {
    json_document(
        &json!({
            "lots": "/lotline/v1/lots/{lot}",
            "trace": "/lotline/v1/lots/{lot}/trace",
            "recall": "/lotline/v1/lots/{lot}/recall",
            "eudr": "/lotline/v1/lots/{lot}/eudr",
            "eudr_geojson": "/lotline/v1/lots/{lot}/eudr/geojson",
            "anomalies": "/lotline/v1/anomalies",
            "review": "/lotline/v1/anomalies/{id}/reviews",
            "containers": "/lotline/v1/containers/{id}",
            "checkpoint": "/lotline/v1/checkpoint",
            "proof": "/lotline/v1/proofs/{event_id}",
            "openapi": "/lotline/v1/openapi.json",
        }),
        None,
    )
}

pub(crate) async fn openapi() -> Response {
    let mut response = (StatusCode::OK, OPENAPI).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `/lotline/v1/containers/{id}`: what a logistic unit held and when, and which containers
/// carried `id`.
pub(crate) async fn container(
    State(http): State<Http>,
    Path(id): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let id = args::lot(&id)?;
    let found = http.service.container(&asked.caller, id.clone()).await?;
    Ok(json_document(
        &documents::container_json(&wire::container(&id, &found)),
        Some(found.view),
    ))
}

pub(crate) async fn lot(
    State(http): State<Http>,
    Path(lot): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let lot = args::lot(&lot)?;
    let found = http.service.lot(&asked.caller, lot).await?;
    Ok(json_document(
        &documents::lot_json(&wire::lot(&found)),
        Some(found.view),
    ))
}

pub(crate) async fn trace(
    State(http): State<Http>,
    Path(lot): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let lot = args::lot(&lot)?;
    let trace = http.service.trace_back(&asked.caller, lot).await?;
    Ok(json_document(
        &documents::trace_json(&wire::trace_back(&trace)),
        Some(trace.view),
    ))
}

pub(crate) async fn recall(
    State(http): State<Http>,
    Path(lot): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let lot = args::lot(&lot)?;
    let trace = http.service.trace_forward(&asked.caller, lot).await?;
    Ok(json_document(
        &documents::recall_json(&wire::recall(&trace)),
        None,
    ))
}

pub(crate) async fn eudr(
    State(http): State<Http>,
    Path(lot): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let lot = args::lot(&lot)?;
    let answer = http.service.eudr(&asked.caller, lot).await?;
    Ok(json_document(
        &documents::eudr_json(&wire::eudr(&answer)),
        Some(answer.view),
    ))
}

pub(crate) async fn eudr_geojson(
    State(http): State<Http>,
    Path(lot): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let lot = args::lot(&lot)?;
    let answer = http.service.eudr(&asked.caller, lot).await?;
    Ok(document(
        &answer.geojson,
        Some(answer.view),
        "application/geo+json",
    ))
}

pub(crate) async fn anomalies(
    State(http): State<Http>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    let given = params(&mut asked, &["org", "kind", "lot", "status", "id"])?;
    if given.public {
        return Err(Problem::parameter(
            "public: the anomaly listing has no public view",
        ));
    }
    let value = |name: &str| {
        given
            .rest
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let mut query = AnomalyQuery {
        org: args::opt_id("org", value("org"))?,
        lot: args::opt_lot("lot", value("lot"))?,
        kind: args::anomaly_kind(value("kind"))?,
        status: args::anomaly_status(value("status"))?,
        id: args::anomaly_id("id", value("id"))?,
        after: None,
        limit: ANOMALY_PAGE,
    };
    let mut all = Vec::new();
    let (counts, status_counts, current_to) = loop {
        let page = http.service.anomalies(&asked.caller, query.clone()).await?;
        all.extend(page.anomalies.iter().map(anomaly_to_wire));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break (page.counts, page.status_counts, page.current_to),
        }
    };
    Ok(json_document(
        &documents::anomaly_listing_json(&all, &counts, &status_counts, current_to),
        None,
    ))
}

/// `POST /lotline/v1/anomalies/{id}/reviews`: an auditor acknowledges or disputes an anomaly,
/// `{"verdict": "acknowledged" | "disputed", "note": "…", "event_id": "…"}` (the event id is
/// optional: the idempotency key of a retry). Answers 201 with the anomaly and its reviews.
pub(crate) async fn review(
    State(http): State<Http>,
    Path(id): Path<String>,
    mut asked: Asked,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let body = crate::queries::json_body(&headers, body).await?;
    let text = |name: &str| -> Result<String, Problem> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(Problem::parameter(format!("{name}: must be a string"))),
        }
    };
    let request = ReviewRequest {
        anomaly: args::anomaly_id("id", &id)?
            .ok_or_else(|| Problem::parameter("id: the anomaly's id is required"))?,
        verdict: args::verdict(&text("verdict")?)?,
        note: text("note")?,
        event_id: args::opt_id("event_id", &text("event_id")?)?,
    };
    let (anomaly, _) = http.service.review_anomaly(&asked.caller, request).await?;
    let mut response = json_document(
        &documents::anomalies_json(&[anomaly_to_wire(&anomaly)])[0],
        None,
    );
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// `/lotline/v1/checkpoint`: the log's latest signed checkpoint, as `lotline checkpoint --json`
/// prints it.
pub(crate) async fn checkpoint(
    State(http): State<Http>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let cp = http.service.checkpoint(&asked.caller, 0).await?;
    Ok(json_document(
        &documents::checkpoint_json(&wire::checkpoint(cp)),
        None,
    ))
}

/// `/lotline/v1/proofs/{event_id}`: the event's inclusion proof in the latest checkpoint's
/// tree, as `lotline proof EVENT_ID --json` prints it (the leaf withheld outside the caller's
/// view: its hash proves the same).
pub(crate) async fn proof(
    State(http): State<Http>,
    Path(event_id): Path<String>,
    mut asked: Asked,
) -> Result<Response, Problem> {
    params(&mut asked, &[])?;
    let id = args::id("event_id", &event_id)?;
    let proof = http
        .service
        .inclusion(&asked.caller, Leaf::EventId(id), 0)
        .await?;
    Ok(json_document(
        &documents::inclusion_json(&wire::inclusion(proof)),
        None,
    ))
}
