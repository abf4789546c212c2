//! Client commands: each connects to `--server`, asks one question and prints the
//! answer as a table or, with `--json`, as one JSON document.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use lotline_proto::v1;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use serde_json::{Value, json};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

use super::render;
use super::{CliError, ClientArgs, CredentialArgs, print_json, show};

/// Events sent per RecordBatch by `post`.
const POST_CHUNK: usize = 500;

/// A connection to a lotline server that sends the caller's token with every request.
pub(crate) type Conn = InterceptedService<Channel, Bearer>;

/// Adds `authorization: Bearer <token>` to every request, when there is a token.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))
}

/// The bearer token the arguments name: `--token-file`, else `--token` / `LOTLINE_TOKEN`.
fn bearer(args: &CredentialArgs) -> Result<Bearer, CliError> {
    let token = match (&args.token_file, &args.token) {
        (Some(path), _) => Some(
            String::from_utf8(read_file("--token-file", path)?)
                .map_err(|_| CliError::Usage("--token-file: not text".into()))?,
        ),
        (None, token) => token.clone(),
    };
    let Some(token) = token
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        return Ok(Bearer(None));
    };
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| CliError::Usage("--token: not a token (unexpected characters)".into()))?;
    Ok(Bearer(Some(value)))
}

/// Connects to `--server` (over TLS for https://, trusting `--ca` and the system's roots,
/// presenting `--client-cert` if given), sending the token with every request.
pub(crate) async fn connect(client: &ClientArgs) -> Result<Conn, CliError> {
    let server = &client.server;
    let args = &client.credentials;
    let mut endpoint = Endpoint::from_shared(server.to_string())
        .map_err(|e| CliError::Usage(format!("--server: {server:?} is not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        // No single call should hang a script forever.
        .timeout(Duration::from_secs(300));
    let https = server.starts_with("https://");
    if !https && (args.ca.is_some() || args.client_cert.is_some()) {
        return Err(CliError::Usage(format!(
            "--ca and --client-cert need an https:// server, not {server}"
        )));
    }
    if https {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &args.ca {
            tls = tls.ca_certificate(Certificate::from_pem(read_file("--ca", ca)?));
        }
        if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
            tls = tls.identity(Identity::from_pem(
                read_file("--client-cert", cert)?,
                read_file("--client-key", key)?,
            ));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| CliError::Usage(format!("TLS for {server}: {e}")))?;
    }
    let channel = endpoint.connect().await.map_err(|e| {
        let detail = std::error::Error::source(&e)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        CliError::Connect(format!(
            "cannot reach the lotline server at {server}: {e}{detail}"
        ))
    })?;
    Ok(InterceptedService::new(channel, bearer(args)?))
}

/// Maps a gRPC status to the CLI's error kinds.
pub(crate) fn status_error(status: Status) -> CliError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => {
            CliError::Connect(format!("server unavailable: {}", status.message()))
        }
        Code::InvalidArgument => CliError::Usage(status.message().to_string()),
        _ => CliError::Refused(status.message().to_string()),
    }
}

/// What happened to one input line.
#[derive(Clone)]
enum LineResult {
    /// The server's outcome.
    Outcome(v1::outcome::Result),
    /// Refused before it could be sent (not UTF-8).
    Unreadable(String),
    /// Sent, but the request failed; the line was not recorded.
    NotRecorded(String),
    /// The server refused the caller (no credential, or no right to record it): not recorded,
    /// and sending it again with the same credential changes nothing.
    Refused(String),
}

/// One input line's result.
struct LineOutcome {
    line: usize,
    event_id: String,
    result: LineResult,
}

fn line_json(l: &LineOutcome) -> Value {
    use v1::outcome::Result as R;
    let (outcome, extra) = match &l.result {
        LineResult::Outcome(R::Accepted(a)) => ("accepted", json!({"sequence": a.sequence})),
        LineResult::Outcome(R::Duplicate(d)) => ("duplicate", json!({"sequence": d.sequence})),
        LineResult::Outcome(R::Rejected(r)) => {
            ("rejected", json!({"kind": r.kind, "reason": r.reason}))
        }
        LineResult::Unreadable(reason) => {
            ("rejected", json!({"kind": "unreadable", "reason": reason}))
        }
        LineResult::NotRecorded(reason) => ("not_recorded", json!({"reason": reason})),
        LineResult::Refused(reason) => ("refused", json!({"reason": reason})),
    };
    let mut value = json!({"line": l.line, "event_id": l.event_id, "outcome": outcome});
    if let (Some(map), Value::Object(extra)) = (value.as_object_mut(), extra) {
        map.extend(extra);
    }
    value
}

fn line_text(l: &LineOutcome) -> String {
    use v1::outcome::Result as R;
    let id = if l.event_id.is_empty() {
        "-"
    } else {
        l.event_id.as_str()
    };
    match &l.result {
        LineResult::Outcome(R::Accepted(a)) => {
            format!("line {}: {id}: accepted, sequence {}", l.line, a.sequence)
        }
        LineResult::Outcome(R::Duplicate(d)) => format!(
            "line {}: {id}: duplicate of sequence {}",
            l.line, d.sequence
        ),
        LineResult::Outcome(R::Rejected(r)) => {
            format!("line {}: {id}: rejected ({}): {}", l.line, r.kind, r.reason)
        }
        LineResult::Unreadable(reason) => {
            format!("line {}: {id}: rejected (unreadable): {reason}", l.line)
        }
        LineResult::Refused(reason) => {
            format!("line {}: {id}: REFUSED: {reason}", l.line)
        }
        LineResult::NotRecorded(reason) => {
            format!(
                "line {}: {id}: NOT CONFIRMED (the request failed; re-sending is safe): {reason}",
                l.line
            )
        }
    }
}

#[derive(Default)]
struct Counts {
    accepted: usize,
    duplicate: usize,
    rejected: usize,
    not_recorded: usize,
}

impl Counts {
    fn add(&mut self, l: &LineOutcome) {
        use v1::outcome::Result as R;
        match &l.result {
            LineResult::Outcome(R::Accepted(_)) => self.accepted += 1,
            LineResult::Outcome(R::Duplicate(_)) => self.duplicate += 1,
            LineResult::Outcome(R::Rejected(_))
            | LineResult::Unreadable(_)
            | LineResult::Refused(_) => self.rejected += 1,
            LineResult::NotRecorded(_) => self.not_recorded += 1,
        }
    }
}

/// Most lines, and most bytes of text, sent in one RecordJson request.
const POST_CHUNK_BYTES: usize = 4 << 20;

/// Lines read but not yet sent.
#[derive(Default)]
struct Chunk {
    lines: Vec<(usize, String)>,
    bytes: usize,
}

/// A file to read line by line, or stdin for `-`.
pub(crate) fn open_input(file: &Path) -> Result<Box<dyn BufRead>, CliError> {
    Ok(if file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        Box::new(BufReader::new(f))
    })
}

/// `lotline post FILE`: records every line, prints each outcome, and fails with 1
/// if any line was rejected, or 2 if some could not be recorded at all (after
/// trying them all).
pub(crate) async fn post(args: &ClientArgs, file: &Path) -> Result<(), CliError> {
    let reader = open_input(file)?;
    let channel = connect(args).await?;
    let mut client = EventServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let mut counts = Counts::default();
    let mut report = Vec::new();
    let mut chunk = Chunk::default();
    let mut early: Vec<LineOutcome> = Vec::new();
    let mut failure: Option<String> = None;

    let emit = |outcomes: Vec<LineOutcome>, counts: &mut Counts, report: &mut Vec<Value>| {
        for l in outcomes {
            counts.add(&l);
            if args.json {
                report.push(line_json(&l));
            } else {
                outln!("{}", line_text(&l));
            }
        }
    };

    let mut read_error: Option<String> = None;
    for (n, line) in reader.split(b'\n').enumerate() {
        let number = n + 1;
        let bytes = match line {
            Ok(b) => b,
            Err(e) => {
                // Report what was sent so far, then fail.
                read_error = Some(format!("line {number}: cannot read input: {e}"));
                break;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => {
                early.push(LineOutcome {
                    line: number,
                    event_id: String::new(),
                    result: LineResult::Unreadable("the line is not UTF-8 text".into()),
                });
                continue;
            }
        };
        // Surrounding whitespace (and a byte-order mark) is not part of the event.
        let trimmed = text.trim().trim_start_matches('\u{feff}');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // A line that would push the chunk past its byte budget goes in the next one.
        if !chunk.lines.is_empty() && chunk.bytes + trimmed.len() > POST_CHUNK_BYTES {
            let mut done = std::mem::take(&mut early);
            done.extend(send_chunk(&mut client, std::mem::take(&mut chunk), &mut failure).await);
            done.sort_by_key(|l| l.line);
            emit(done, &mut counts, &mut report);
        }
        chunk.bytes += trimmed.len();
        chunk.lines.push((number, trimmed.to_string()));
        if chunk.lines.len() >= POST_CHUNK || chunk.bytes >= POST_CHUNK_BYTES {
            let mut done = std::mem::take(&mut early);
            done.extend(send_chunk(&mut client, std::mem::take(&mut chunk), &mut failure).await);
            done.sort_by_key(|l| l.line);
            emit(done, &mut counts, &mut report);
        }
    }
    let mut done = std::mem::take(&mut early);
    done.extend(send_chunk(&mut client, std::mem::take(&mut chunk), &mut failure).await);
    done.sort_by_key(|l| l.line);
    emit(done, &mut counts, &mut report);

    let summary = format!(
        "{} accepted, {} duplicate, {} rejected, {} not recorded",
        counts.accepted, counts.duplicate, counts.rejected, counts.not_recorded
    );
    if args.json {
        print_json(&json!({
            "lines": report,
            "accepted": counts.accepted,
            "duplicate": counts.duplicate,
            "rejected": counts.rejected,
            "not_recorded": counts.not_recorded,
        }))?;
    } else {
        eprintln!("{summary}");
    }
    if let Some(reason) = read_error {
        return Err(CliError::Usage(reason));
    }
    if let Some(reason) = failure {
        return Err(CliError::Connect(format!(
            "{} line(s) not confirmed (re-sending them is safe): {reason}",
            counts.not_recorded
        )));
    }
    if counts.rejected > 0 {
        return Err(CliError::SomeRejected(format!(
            "lotline: {} line(s) rejected",
            counts.rejected
        )));
    }
    Ok(())
}

/// Sends one chunk; a failed request marks its lines as not recorded and keeps
/// the first failure's reason.
async fn send_chunk(
    client: &mut EventServiceClient<Conn>,
    chunk: Chunk,
    failure: &mut Option<String>,
) -> Vec<LineOutcome> {
    if chunk.lines.is_empty() {
        return Vec::new();
    }
    let events: Vec<String> = chunk.lines.iter().map(|(_, text)| text.clone()).collect();
    let answer = client.record_json(v1::RecordJsonRequest { events }).await;
    let outcomes = match answer {
        Ok(response) => response.into_inner().outcomes,
        Err(status) => {
            let result = if matches!(
                status.code(),
                Code::PermissionDenied | Code::Unauthenticated
            ) {
                LineResult::Refused(status.message().to_string())
            } else {
                let reason = format!("{:?}: {}", status.code(), status.message());
                failure.get_or_insert_with(|| reason.clone());
                LineResult::NotRecorded(reason)
            };
            return chunk
                .lines
                .into_iter()
                .map(|(line, text)| LineOutcome {
                    line,
                    event_id: event_id_of(&text),
                    result: result.clone(),
                })
                .collect();
        }
    };
    if outcomes.len() != chunk.lines.len() {
        let reason = format!(
            "server answered {} outcomes for {} events",
            outcomes.len(),
            chunk.lines.len()
        );
        failure.get_or_insert_with(|| reason.clone());
    }
    let mut outcomes = outcomes.into_iter();
    chunk
        .lines
        .into_iter()
        .map(|(line, text)| match outcomes.next() {
            Some(o) => LineOutcome {
                line,
                event_id: o.event_id,
                result: o
                    .result
                    .map(LineResult::Outcome)
                    .unwrap_or_else(|| LineResult::NotRecorded("server gave no outcome".into())),
            },
            None => LineOutcome {
                line,
                event_id: event_id_of(&text),
                result: LineResult::NotRecorded("server gave no outcome".into()),
            },
        })
        .collect()
}

/// The event id in a JSON line, if it has one.
fn event_id_of(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("eventId")
                .or_else(|| v.get("event_id"))
                .and_then(|i| i.as_str().map(str::to_string))
        })
        .unwrap_or_default()
}

async fn provenance(args: &ClientArgs) -> Result<ProvenanceServiceClient<Conn>, CliError> {
    Ok(ProvenanceServiceClient::new(connect(args).await?).max_decoding_message_size(256 << 20))
}

pub(crate) async fn lot(args: &ClientArgs, lot: &str, public: bool) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .get_lot(v1::GetLotRequest {
            lot: lot.to_string(),
            public_view: public,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    show(
        args,
        &answer,
        lotline_proto::documents::lot_json,
        render::lot_text,
    )
}

pub(crate) async fn trace(args: &ClientArgs, lot: &str, public: bool) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .trace_back(v1::TraceBackRequest {
            lot: lot.to_string(),
            public_view: public,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    show(
        args,
        &answer,
        lotline_proto::documents::trace_json,
        render::trace_text,
    )
}

pub(crate) async fn container(args: &ClientArgs, id: &str, public: bool) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .get_container(v1::GetContainerRequest {
            id: id.to_string(),
            public_view: public,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    show(
        args,
        &answer,
        lotline_proto::documents::container_json,
        render::container_text,
    )
}

pub(crate) async fn recall(args: &ClientArgs, lot: &str, public: bool) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .trace_forward(v1::TraceForwardRequest {
            lot: lot.to_string(),
            public_view: public,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    show(
        args,
        &answer,
        lotline_proto::documents::recall_json,
        render::recall_text,
    )
}

pub(crate) async fn events(
    args: &ClientArgs,
    mut request: v1::ListEventsRequest,
    all: bool,
) -> Result<(), CliError> {
    let mut client = provenance(args).await?;
    let mut events = Vec::new();
    let next = loop {
        let page = client
            .list_events(request.clone())
            .await
            .map_err(status_error)?
            .into_inner();
        events.extend(page.events);
        if !all || page.next_cursor.is_empty() {
            break page.next_cursor;
        }
        request.cursor = page.next_cursor;
    };
    if args.json {
        let events: Vec<Value> = events
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        print_json(&json!({"events": events, "next_cursor": next}))
    } else {
        out!("{}", render::events_text(&events));
        if !next.is_empty() {
            eprintln!("more events: --cursor {next} (or --all)");
        }
        Ok(())
    }
}

pub(crate) async fn rejected(
    args: &ClientArgs,
    cursor: String,
    limit: u32,
) -> Result<(), CliError> {
    let page = provenance(args)
        .await?
        .list_rejected(v1::ListRejectedRequest { cursor, limit })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        let items: Vec<Value> = page
            .rejected
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect();
        print_json(&json!({"rejected": items, "next_cursor": page.next_cursor}))
    } else {
        out!("{}", render::rejected_text(&page.rejected));
        if !page.next_cursor.is_empty() {
            eprintln!("more: --cursor {}", page.next_cursor);
        }
        Ok(())
    }
}

pub(crate) async fn unknown(args: &ClientArgs) -> Result<(), CliError> {
    // Every page, in lot order.
    let mut client = provenance(args).await?;
    let mut answer = v1::ListUnknownLotsResponse::default();
    loop {
        let page = client
            .list_unknown_lots(v1::ListUnknownLotsRequest {
                cursor: answer.next_cursor.clone(),
                limit: 0,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        answer.lots.extend(page.lots);
        answer.next_cursor = page.next_cursor;
        if answer.next_cursor.is_empty() {
            break;
        }
    }
    if args.json {
        let lots: Vec<Value> = answer
            .lots
            .iter()
            .map(|l| json!({"lot": l.lot, "event_ids": l.event_ids}))
            .collect();
        print_json(&json!({ "lots": lots }))
    } else {
        out!("{}", render::unknown_text(&answer.lots));
        Ok(())
    }
}
