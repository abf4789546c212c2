//! Named queries (`/queries`), their results (`/queries/{name}/events`, also as a WebSocket
//! subscription) and their webhook subscriptions (`/queries/{name}/subscriptions`).

use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use lotline_epcis::query::Query;
use lotline_service::standing::{NamedQuery, Schedule, SubscriptionRequest, Trigger};
use lotline_service::{Caller, Service, ServiceError};
use serde_json::{Map, Value, json};
use tracing::debug;

use crate::routes::{Asked, Http, answer_query, document_text, json_response};
use crate::{Problem, READ_DEADLINE};

/// The largest query or subscription definition taken.
const MAX_DEFINITION: usize = 64 * 1024;
/// The subscription parameters of `/queries/{name}/events` (a WebSocket subscription).
const SCHEDULE_FIELDS: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "dayOfMonth",
    "month",
    "dayOfWeek",
];

/// A JSON request body (at most [`MAX_DEFINITION`] bytes).
pub(crate) async fn json_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<Map<String, Value>, Problem> {
    let json = crate::routes::is_json(headers);
    if !json {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "ValidationException",
            "Content-Type: send the body as application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_DEFINITION)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "ValidationException",
                format!("the body is larger than {MAX_DEFINITION} bytes"),
            )
        })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(validation("the body is not a JSON object")),
        Err(e) => Err(validation(format!("the body is not JSON: {e}"))),
    }
}

fn validation(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "ValidationException", detail)
}

/// A query body (`{"eventType": ["ObjectEvent"], "EQ_bizStep": ["shipping"]}`) as parameters:
/// a list is the values joined by `|`, as in a query string.
fn query_params(query: &Map<String, Value>) -> Result<Vec<(String, String)>, Problem> {
    let scalar = |name: &str, v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(Problem::parameter(format!(
            "{name}: a value is a string, a number, a boolean or a list of them"
        ))),
    };
    query
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::Array(items) => items
                    .iter()
                    .map(|v| scalar(name, v))
                    .collect::<Result<Vec<_>, _>>()?
                    .join("|"),
                v => scalar(name, v)?,
            };
            Ok((name.clone(), text))
        })
        .collect()
}

/// A query's parameters as the binding writes a query body: lists for the parameters that
/// take several values, a number for the counts, a string for the rest.
fn query_body(query: &Query) -> Value {
    let mut body = Map::new();
    for (name, value) in query.params() {
        let v = if name.starts_with("GE_")
            || name.starts_with("LT_")
            || name == "orderBy"
            || name == "orderDirection"
        {
            json!(value)
        } else if name == "eventCountLimit" || name == "maxEventCount" {
            value
                .parse::<u64>()
                .map_or_else(|_| json!(value), |n| json!(n))
        } else if name.starts_with("EXISTS_") {
            json!(value != "false")
        } else {
            json!(value.split('|').collect::<Vec<_>>())
        };
        body.insert(name.clone(), v);
    }
    Value::Object(body)
}

fn definition_json(q: &NamedQuery) -> Value {
    json!({"name": q.name, "query": query_body(&q.query)})
}

fn path_of(name: &str) -> String {
    format!("/queries/{}", crate::routes::path_segment(name))
}

pub(crate) async fn list(State(http): State<Http>, asked: Asked) -> Result<Response, Problem> {
    let queries = http.service.named_queries(&asked.caller)?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(queries.iter().map(definition_json).collect()),
    ))
}

pub(crate) async fn create(
    State(http): State<Http>,
    asked: Asked,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(&headers, body).await?;
    let Some(Value::String(name)) = body.get("name") else {
        return Err(validation("name: a named query has a name (a string)"));
    };
    let Some(Value::Object(query)) = body.get("query") else {
        return Err(validation(
            "query: a named query has a query (an object of EPCIS query parameters)",
        ));
    };
    let params = query_params(query)?;
    let query = Query::parse(params.iter().map(|(n, v)| (n.as_str(), v.as_str())))?;
    let named = http
        .service
        .create_query(&asked.caller, name, query)
        .await?;
    let mut response = json_response(StatusCode::CREATED, &definition_json(&named));
    if let Ok(location) = HeaderValue::from_str(&path_of(&named.name)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub(crate) async fn definition(
    State(http): State<Http>,
    Path(name): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    let named = http.service.named_query(&asked.caller, &name)?;
    Ok(json_response(StatusCode::OK, &definition_json(&named)))
}

pub(crate) async fn delete(
    State(http): State<Http>,
    Path(name): Path<String>,
    asked: Asked,
) -> Result<StatusCode, Problem> {
    http.service.delete_query(&asked.caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A named query's results: a page, or with `Upgrade: websocket` a subscription.
pub(crate) async fn events(
    State(http): State<Http>,
    Path(name): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    asked: Asked,
) -> Result<Response, Problem> {
    let named = http.service.named_query(&asked.caller, &name)?;
    let Ok(upgrade) = upgrade else {
        return answer_query(
            &http,
            asked,
            Some((&named.name, named.query.params().to_vec())),
            Ok,
        )
        .await;
    };
    let mut given = Vec::new();
    let mut stream = false;
    let mut report_if_empty = false;
    let mut initial = None;
    for (n, v) in &asked.params {
        match n.as_str() {
            "stream" => stream = flag(n, v)?,
            "reportIfEmpty" => report_if_empty = flag(n, v)?,
            "initialRecordTime" => initial = Some(record_time(v)?),
            n if SCHEDULE_FIELDS.contains(&n) => given.push((n, v.as_str())),
            other => {
                return Err(Problem::parameter(format!(
                    "{other}: a WebSocket subscription takes stream=true or a schedule (second, minute, hour, dayOfMonth, month, dayOfWeek), reportIfEmpty and initialRecordTime"
                )));
            }
        }
    }
    let trigger = trigger(stream, &given)?;
    if let Trigger::Schedule(schedule) = &trigger
        && schedule.next_after(Utc::now()).is_none()
    {
        return Err(Problem::parameter(
            "schedule: it never fires (no such date in the next four years)",
        ));
    }
    let start = http.service.position_at(&asked.caller, initial).await?;
    let follower = Follower {
        service: http.service.clone(),
        caller: asked.caller,
        named,
        trigger,
        report_if_empty,
        after: start,
    };
    Ok(upgrade.on_upgrade(move |socket| follower.run(socket)))
}

fn flag(name: &str, value: &str) -> Result<bool, Problem> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Problem::parameter(format!(
            "{name}: {value:?} is not true or false"
        ))),
    }
}

fn record_time(text: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Problem::parameter(format!(
                "initialRecordTime: {text:?} is not an RFC 3339 time"
            ))
        })
}

/// Stream or schedule, exactly one (the binding's rule).
fn trigger(stream: bool, schedule: &[(&str, &str)]) -> Result<Trigger, Problem> {
    match (stream, schedule.is_empty()) {
        (true, true) => Ok(Trigger::Stream),
        (false, false) => Ok(Trigger::Schedule(Box::new(Schedule::parse(
            schedule.iter().copied(),
        )?))),
        (true, false) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "SubscribeNotPermittedException",
            "stream and a schedule exclude each other: give one",
        )),
        (false, true) => Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "SubscribeNotPermittedException",
            "a subscription sets stream to true or gives a schedule (second, minute, hour, dayOfMonth, month, dayOfWeek)",
        )),
    }
}

/// A WebSocket subscription: the query's new results, one `EPCISQueryDocument` per message.
struct Follower {
    service: Service,
    caller: Caller,
    named: NamedQuery,
    trigger: Trigger,
    report_if_empty: bool,
    after: u64,
}

impl Follower {
    async fn run(mut self, socket: WebSocket) {
        let name = self.named.name.clone();
        let (mut sink, mut incoming) = socket.split();
        // The client's messages are not read, except to see it go.
        let closed = async move {
            while let Some(Ok(message)) = incoming.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let work = async {
            loop {
                match self.round().await {
                    Ok(documents) => {
                        for document in documents {
                            if sink.send(Message::Text(document.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let problem = Problem::from(e);
                        let _ = sink
                            .send(Message::Text(problem.body().to_string().into()))
                            .await;
                        let _ = sink.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
        };
        tokio::select! {
            () = closed => debug!(query = %name, "a WebSocket subscriber left"),
            () = work => {}
        }
    }

    /// Waits for the next delivery and answers its documents (none when nothing is due).
    async fn round(&mut self) -> Result<Vec<String>, ServiceError> {
        let scheduled = match &self.trigger {
            Trigger::Stream => {
                self.service.log_beyond(self.after).await?;
                false
            }
            Trigger::Schedule(schedule) => {
                let now = Utc::now();
                let Some(at) = schedule.next_after(now) else {
                    return Err(ServiceError::invalid(
                        "schedule",
                        "the schedule never fires",
                    ));
                };
                let wait = (at - now).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                true
            }
        };
        // The subscriber's credential must still hold, and the query still be there.
        self.service.still_valid(&self.caller)?;
        let caller = self
            .caller
            .clone()
            .until(Instant::now().checked_add(READ_DEADLINE));
        self.service.named_query(&caller, &self.named.name)?;
        let mut documents = Vec::new();
        loop {
            let page = self
                .service
                .epcis_events(
                    &caller,
                    self.named.query.clone(),
                    lotline_service::queries::epcis::Cursor::After(self.after),
                    lotline_service::standing::DELIVERY_EVENTS,
                )
                .await?;
            self.after = self.after.max(page.through);
            let more = page.next.is_some();
            if !page.events.is_empty()
                || (scheduled && self.report_if_empty && documents.is_empty() && !more)
            {
                documents.push(document_text(&page, &self.named.name, None));
            }
            if !more {
                return Ok(documents);
            }
        }
    }
}

pub(crate) async fn subscriptions(
    State(http): State<Http>,
    Path(name): Path<String>,
    asked: Asked,
) -> Result<Response, Problem> {
    let all = http.service.subscriptions(&asked.caller, &name)?;
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(all.iter().map(|s| s.to_json()).collect()),
    ))
}

pub(crate) async fn subscribe(
    State(http): State<Http>,
    Path(name): Path<String>,
    asked: Asked,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let body = json_body(&headers, body).await?;
    let text = |key: &str| -> Result<Option<String>, Problem> {
        match body.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(validation(format!("{key}: a string"))),
        }
    };
    let Some(dest) = text("dest")? else {
        return Err(validation(
            "dest: a subscription names the URL its results go to",
        ));
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(validation("stream: true or false")),
    };
    let report_if_empty = match body.get("reportIfEmpty") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(validation("reportIfEmpty: true or false")),
    };
    let mut schedule = Vec::new();
    match body.get("schedule") {
        None | Some(Value::Null) => {}
        Some(Value::Object(fields)) => {
            for (field, value) in fields {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(validation(format!(
                            "schedule.{field}: a string such as \"5\""
                        )));
                    }
                };
                schedule.push((field.clone(), value));
            }
            if fields.is_empty() {
                return Err(validation("schedule: give at least one field"));
            }
        }
        Some(_) => return Err(validation("schedule: an object")),
    }
    let schedule: Vec<(&str, &str)> = schedule
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let initial_record_time = text("initialRecordTime")?
        .map(|t| record_time(&t))
        .transpose()?;
    let request = SubscriptionRequest {
        dest,
        signature_token: text("signatureToken")?,
        trigger: trigger(stream, &schedule)?,
        report_if_empty,
        initial_record_time,
    };
    let created = http
        .service
        .subscribe(&asked.caller, &name, request)
        .await?;
    let mut response = json_response(StatusCode::CREATED, &created.to_json());
    let location = format!("{}/subscriptions/{}", path_of(&name), created.id);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub(crate) async fn subscription(
    State(http): State<Http>,
    Path((name, id)): Path<(String, String)>,
    asked: Asked,
) -> Result<Response, Problem> {
    let s = http.service.subscription(&asked.caller, &name, &id)?;
    Ok(json_response(StatusCode::OK, &s.to_json()))
}

pub(crate) async fn unsubscribe(
    State(http): State<Http>,
    Path((name, id)): Path<(String, String)>,
    asked: Asked,
) -> Result<Response, Problem> {
    http.service.unsubscribe(&asked.caller, &name, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
