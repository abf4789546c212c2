//! `POST /capture` and the capture jobs: the document is streamed to a file under
//! [`FILE_SIZE_LIMIT`], read once here (it must be an EPCIS document of at most
//! [`CAPTURE_LIMIT`] events: otherwise 400 or 413 and nothing is captured), then captured by
//! `Service::capture` as a job the client polls at its `Location`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use lotline_epcis::stream::{Flow, Part, read_document};
use lotline_service::capture::{Behaviour, CaptureJob};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::Problem;
use crate::routes::{Asked, Http, discovery as common_discovery, json_response, versioned};

/// The most events one capture takes (`GS1-EPCIS-Capture-Limit`).
pub const CAPTURE_LIMIT: usize = 1_000_000;
/// The largest document one capture takes, in bytes (`GS1-EPCIS-Capture-File-Size-Limit`).
pub const FILE_SIZE_LIMIT: u64 = 1 << 30;

fn validation(status: StatusCode, detail: impl Into<String>) -> Problem {
    Problem::new(status, "ValidationException", detail)
}

fn too_large(detail: String) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "CapturePayloadTooLargeException",
        detail,
    )
}

/// `OPTIONS /capture`: the common discovery headers and the capture limits.
pub(crate) async fn discovery(uri: axum::http::Uri) -> Response {
    let mut response = common_discovery(uri).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("gs1-epcis-capture-limit", CAPTURE_LIMIT.to_string()),
        (
            "gs1-epcis-capture-file-size-limit",
            FILE_SIZE_LIMIT.to_string(),
        ),
        ("gs1-capture-error-behaviour", "all".to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

pub(crate) async fn capture(
    State(http): State<Http>,
    asked: Asked,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let behaviour = match headers
        .get("gs1-capture-error-behaviour")
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("rollback") => Behaviour::Rollback,
        Some("proceed") => Behaviour::Proceed,
        Some(other) => {
            return Err(validation(
                StatusCode::BAD_REQUEST,
                format!("GS1-Capture-Error-Behaviour: {other:?} is not rollback or proceed"),
            ));
        }
    };
    let json = crate::routes::is_json(&headers);
    if !json {
        return Err(validation(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: lotline captures EPCIS 2.0 JSON (application/json or application/ld+json)",
        ));
    }
    let spooled = spool(body).await?;
    let path = spooled.to_path_buf();
    let events = tokio::task::spawn_blocking(move || count_events(&path))
        .await
        .map_err(|e| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ImplementationException",
                e.to_string(),
            )
        })??;
    if events > CAPTURE_LIMIT {
        return Err(too_large(format!(
            "the document has {events} events; a capture takes at most {CAPTURE_LIMIT} (GS1-EPCIS-Capture-Limit): split it"
        )));
    }
    let job = http.service.capture(&asked.caller, spooled, behaviour)?;
    let mut response = StatusCode::ACCEPTED.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/capture/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(versioned(response))
}

/// The request body in a temporary file, within [`FILE_SIZE_LIMIT`].
async fn spool(body: Body) -> Result<tempfile::TempPath, Problem> {
    let failed = |e: std::io::Error| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ImplementationException",
            format!("cannot keep the document: {e}"),
        )
    };
    let file = tempfile::NamedTempFile::new().map_err(failed)?;
    let (file, path) = file.into_parts();
    let mut out = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    let mut length = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            validation(
                StatusCode::BAD_REQUEST,
                format!("the request body broke off: {e}"),
            )
        })?;
        length += chunk.len() as u64;
        if length > FILE_SIZE_LIMIT {
            return Err(too_large(format!(
                "the document is over {FILE_SIZE_LIMIT} bytes (GS1-EPCIS-Capture-File-Size-Limit): split it"
            )));
        }
        out.write_all(&chunk).await.map_err(failed)?;
    }
    out.flush().await.map_err(failed)?;
    Ok(path)
}

/// The events of the document at `path`; an error if it is not an EPCIS document.
fn count_events(path: &std::path::Path) -> Result<usize, Problem> {
    let file = std::fs::File::open(path).map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ImplementationException",
            e.to_string(),
        )
    })?;
    let mut events = 0usize;
    read_document(file, &mut |part| {
        if let Part::Event(..) = part {
            events += 1;
        }
        Ok(Flow::Continue)
    })
    .map_err(|e| {
        validation(
            StatusCode::BAD_REQUEST,
            format!("not an EPCIS document: {e}"),
        )
    })?;
    Ok(events)
}

/// A capture job as the binding writes it; each error is a problem document.
fn job_json(job: &CaptureJob) -> Value {
    let errors: Vec<Value> = job
        .errors
        .iter()
        .map(|e| {
            let id = if e.event_id.is_empty() {
                String::new()
            } else {
                format!(" (eventID {})", e.event_id)
            };
            json!({
                "type": "epcisException:ValidationException",
                "title": "Bad Request",
                "status": 400,
                "detail": format!("{}{id}: {}", e.source, e.reason),
            })
        })
        .collect();
    let mut doc = json!({
        "captureID": job.id,
        "createdAt": job.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "running": job.running,
        "success": job.success(),
        "captureErrorBehaviour": job.behaviour.as_str(),
        "errors": errors,
    });
    if let Some(finished) = job.finished_at {
        doc["finishedAt"] = json!(finished.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    doc
}

pub(crate) async fn jobs(State(http): State<Http>, asked: Asked) -> Result<Response, Problem> {
    let jobs = http.service.capture_jobs(&asked.caller)?;
    let list: Vec<Value> = jobs.iter().map(job_json).collect();
    Ok(json_response(StatusCode::OK, &Value::Array(list)))
}

pub(crate) async fn job(
    State(http): State<Http>,
    Path(id): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    let job = http.service.capture_job(&asked.caller, &id)?;
    Ok(json_response(StatusCode::OK, &job_json(&job)))
}

/// The largest single event `POST /events` takes.
const EVENT_SIZE_LIMIT: usize = 1 << 20;

/// `POST /events`: one event, captured at once (as a document of that event, all or nothing);
/// 201 with its `Location` and the event as stored, or the reason it was not captured.
pub(crate) async fn capture_event(
    State(http): State<Http>,
    asked: Asked,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let json = crate::routes::is_json(&headers);
    if !json {
        return Err(validation(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type: send the event as application/json or application/ld+json",
        ));
    }
    let bytes = axum::body::to_bytes(body, EVENT_SIZE_LIMIT)
        .await
        .map_err(|_| too_large(format!("an event has at most {EVENT_SIZE_LIMIT} bytes")))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| validation(StatusCode::BAD_REQUEST, "the body is not UTF-8 text"))?;
    let event: Value = serde_json::from_str(text).map_err(|e| {
        validation(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        )
    })?;
    let Some(kind) = event.get("type").and_then(Value::as_str) else {
        return Err(validation(
            StatusCode::BAD_REQUEST,
            "the body is not an EPCIS event (an object with a type)",
        ));
    };
    if !lotline_epcis::query::EVENT_TYPES.contains(&kind) {
        return Err(validation(
            StatusCode::BAD_REQUEST,
            format!(
                "type {kind:?}: not an EPCIS event type ({}); send documents to /capture",
                lotline_epcis::query::EVENT_TYPES.join(", ")
            ),
        ));
    }
    // The event as sent (its member order and number text kept), in a document of its own
    // whose context is the event's.
    let context = event
        .get("@context")
        .map(Value::to_string)
        .unwrap_or_else(|| Value::from(lotline_epcis::names::EPCIS_CONTEXT).to_string());
    let document = format!(
        "{{\"@context\":{context},\"type\":\"EPCISDocument\",\"schemaVersion\":\"2.0\",\"creationDate\":{},\"epcisBody\":{{\"eventList\":[{text}]}}}}",
        Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    );
    let event_id = match event.get("eventID").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => lotline_epcis::hash::document_hashes(&document)
            .ok()
            .and_then(|h| h.into_iter().next()?.ok())
            .map(|h| h.hash)
            .ok_or_else(|| {
                validation(
                    StatusCode::BAD_REQUEST,
                    "the event has no eventID and no hash can be computed from it",
                )
            })?,
    };
    let file = tempfile::NamedTempFile::new().map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ImplementationException",
            format!("cannot keep the event: {e}"),
        )
    })?;
    let path = file.into_temp_path();
    tokio::fs::write(&path, document).await.map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ImplementationException",
            format!("cannot keep the event: {e}"),
        )
    })?;
    let job = http
        .service
        .capture_now(&asked.caller, path, Behaviour::Rollback)
        .await?;
    if let Some(error) = job.errors.first() {
        return Err(validation(StatusCode::BAD_REQUEST, error.reason.clone()));
    }
    let stored = http.service.epcis_event(&asked.caller, &event_id).await?;
    let status = if job.accepted > 0 {
        StatusCode::CREATED
    } else {
        // Captured before: the same event again is no new resource.
        StatusCode::OK
    };
    let body = stored
        .events
        .first()
        .cloned()
        .unwrap_or(lotline_epcis::Json::Null);
    let mut response = (
        status,
        serde_json::to_string(&body).unwrap_or_else(|_| "null".into()),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let location = format!("/events/{}", crate::routes::path_segment(&event_id));
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(versioned(response))
}
