//! Client commands: each connects to `--server`, asks one question and prints the
//! answer as a table or, with `--json`, as one JSON document.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use lotline_proto::v1;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use serde_json::{Value, json};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::render;
use super::{CliError, ClientArgs};

/// Events sent per RecordBatch by `post`.
const POST_CHUNK: usize = 500;

pub(crate) async fn connect(server: &str) -> Result<Channel, CliError> {
    let endpoint = Endpoint::from_shared(server.to_string())
        .map_err(|e| CliError::Usage(format!("--server: {server:?} is not a URL: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    endpoint
        .connect()
        .await
        .map_err(|e| CliError::Connect(format!("cannot reach the lotline server at {server}: {e}")))
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

fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Refused(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// One input line's result.
struct LineOutcome {
    line: usize,
    event_id: String,
    outcome: Result<v1::outcome::Result, String>,
}

fn line_json(l: &LineOutcome) -> Value {
    use v1::outcome::Result as R;
    match &l.outcome {
        Ok(R::Accepted(a)) => {
            json!({"line": l.line, "event_id": l.event_id, "outcome": "accepted", "sequence": a.sequence})
        }
        Ok(R::Duplicate(d)) => {
            json!({"line": l.line, "event_id": l.event_id, "outcome": "duplicate", "sequence": d.sequence})
        }
        Ok(R::Rejected(r)) => {
            json!({"line": l.line, "event_id": l.event_id, "outcome": "rejected", "kind": r.kind, "reason": r.reason})
        }
        Err(reason) => {
            json!({"line": l.line, "event_id": l.event_id, "outcome": "rejected", "kind": "undecodable", "reason": reason})
        }
    }
}

fn line_text(l: &LineOutcome) -> String {
    use v1::outcome::Result as R;
    let id = if l.event_id.is_empty() {
        "-"
    } else {
        l.event_id.as_str()
    };
    match &l.outcome {
        Ok(R::Accepted(a)) => format!("line {}: {id}: accepted, sequence {}", l.line, a.sequence),
        Ok(R::Duplicate(d)) => format!(
            "line {}: {id}: duplicate of sequence {}",
            l.line, d.sequence
        ),
        Ok(R::Rejected(r)) => format!("line {}: {id}: rejected ({}): {}", l.line, r.kind, r.reason),
        Err(reason) => format!("line {}: {id}: rejected (undecodable): {reason}", l.line),
    }
}

#[derive(Default)]
struct Counts {
    accepted: usize,
    duplicate: usize,
    rejected: usize,
}

impl Counts {
    fn add(&mut self, l: &LineOutcome) {
        use v1::outcome::Result as R;
        match &l.outcome {
            Ok(R::Accepted(_)) => self.accepted += 1,
            Ok(R::Duplicate(_)) => self.duplicate += 1,
            _ => self.rejected += 1,
        }
    }
}

/// `lotline post FILE`: records every line, prints each outcome, and fails with 1
/// if any line was rejected (after trying them all).
pub(crate) async fn post(args: &ClientArgs, file: &Path) -> Result<(), CliError> {
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let f = std::fs::File::open(file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        Box::new(BufReader::new(f))
    };
    let channel = connect(&args.server).await?;
    let mut client = EventServiceClient::new(channel).max_decoding_message_size(64 << 20);
    let mut counts = Counts::default();
    let mut all_json = Vec::new();
    let mut chunk: Vec<(usize, v1::Event)> = Vec::new();
    let mut undecodable: Vec<LineOutcome> = Vec::new();
    let stdout = std::io::stdout();

    let emit = |outcomes: Vec<LineOutcome>, counts: &mut Counts, all_json: &mut Vec<Value>| {
        let mut out = stdout.lock();
        for l in outcomes {
            counts.add(&l);
            if args.json {
                all_json.push(line_json(&l));
            } else {
                let _ = writeln!(out, "{}", line_text(&l));
            }
        }
    };

    for (n, line) in reader.lines().enumerate() {
        let number = n + 1;
        let line =
            line.map_err(|e| CliError::Usage(format!("line {number}: cannot read input: {e}")))?;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match serde_json::from_str::<v1::Event>(trimmed) {
            Ok(event) => chunk.push((number, event)),
            Err(e) => {
                let event_id = serde_json::from_str::<Value>(trimmed)
                    .ok()
                    .and_then(|v| {
                        v.get("eventId")
                            .or_else(|| v.get("event_id"))
                            .and_then(|i| i.as_str().map(str::to_string))
                    })
                    .unwrap_or_default();
                undecodable.push(LineOutcome {
                    line: number,
                    event_id,
                    outcome: Err(format!("not a lotline.v1.Event in proto3 JSON: {e}")),
                });
            }
        }
        if chunk.len() >= POST_CHUNK {
            let sent = send_chunk(&mut client, std::mem::take(&mut chunk)).await?;
            let mut merged = std::mem::take(&mut undecodable);
            merged.extend(sent);
            merged.sort_by_key(|l| l.line);
            emit(merged, &mut counts, &mut all_json);
        }
    }
    let sent = send_chunk(&mut client, std::mem::take(&mut chunk)).await?;
    let mut merged = std::mem::take(&mut undecodable);
    merged.extend(sent);
    merged.sort_by_key(|l| l.line);
    emit(merged, &mut counts, &mut all_json);

    let summary = format!(
        "{} accepted, {} duplicate, {} rejected",
        counts.accepted, counts.duplicate, counts.rejected
    );
    if args.json {
        print_json(&json!({
            "lines": all_json,
            "accepted": counts.accepted,
            "duplicate": counts.duplicate,
            "rejected": counts.rejected,
        }))?;
    } else {
        eprintln!("{summary}");
    }
    if counts.rejected > 0 {
        return Err(CliError::SomeRejected(format!(
            "lotline: {} line(s) rejected",
            counts.rejected
        )));
    }
    Ok(())
}

async fn send_chunk(
    client: &mut EventServiceClient<Channel>,
    chunk: Vec<(usize, v1::Event)>,
) -> Result<Vec<LineOutcome>, CliError> {
    if chunk.is_empty() {
        return Ok(Vec::new());
    }
    let events: Vec<v1::Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
    let response = client
        .record_batch(v1::RecordBatchRequest { events })
        .await
        .map_err(status_error)?
        .into_inner();
    if response.outcomes.len() != chunk.len() {
        return Err(CliError::Refused(format!(
            "server answered {} outcomes for {} events",
            response.outcomes.len(),
            chunk.len()
        )));
    }
    Ok(chunk
        .into_iter()
        .zip(response.outcomes)
        .map(|((line, event), o)| LineOutcome {
            line,
            event_id: event.event_id,
            outcome: o.result.ok_or_else(|| "server gave no outcome".to_string()),
        })
        .collect())
}

async fn provenance(args: &ClientArgs) -> Result<ProvenanceServiceClient<Channel>, CliError> {
    Ok(ProvenanceServiceClient::new(connect(&args.server).await?)
        .max_decoding_message_size(256 << 20))
}

pub(crate) async fn lot(args: &ClientArgs, lot: &str) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .get_lot(v1::GetLotRequest {
            lot: lot.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        print_json(&render::lot_json(&answer))
    } else {
        print!("{}", render::lot_text(&answer));
        Ok(())
    }
}

pub(crate) async fn trace(args: &ClientArgs, lot: &str) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .trace_back(v1::TraceBackRequest {
            lot: lot.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        print_json(&render::trace_json(&answer))
    } else {
        print!("{}", render::trace_text(&answer));
        Ok(())
    }
}

pub(crate) async fn recall(args: &ClientArgs, lot: &str) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .trace_forward(v1::TraceForwardRequest {
            lot: lot.to_string(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        print_json(&render::recall_json(&answer))
    } else {
        print!("{}", render::recall_text(&answer));
        Ok(())
    }
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
        print!("{}", render::events_text(&events));
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
        print!("{}", render::rejected_text(&page.rejected));
        if !page.next_cursor.is_empty() {
            eprintln!("more: --cursor {}", page.next_cursor);
        }
        Ok(())
    }
}

pub(crate) async fn unknown(args: &ClientArgs) -> Result<(), CliError> {
    let answer = provenance(args)
        .await?
        .list_unknown_lots(v1::ListUnknownLotsRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        let lots: Vec<Value> = answer
            .lots
            .iter()
            .map(|l| json!({"lot": l.lot, "event_ids": l.event_ids}))
            .collect();
        print_json(&json!({ "lots": lots }))
    } else {
        print!("{}", render::unknown_text(&answer.lots));
        Ok(())
    }
}
