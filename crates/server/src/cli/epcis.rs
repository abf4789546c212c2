//! `lotline import` (an EPCIS 2.0 document in, over gRPC or NATS) and `lotline export` (the log,
//! or one lot's history, out as an EPCIS 2.0 document). The mapping is `lotline-epcis`'s and is
//! written down in docs/epcis.md.
//!
//! Import reads the document twice, streaming: once for the vocabulary the reference event hash
//! needs from the whole document, once to map and send the events. Memory stays bounded by a
//! batch of events in flight, whatever the document's size; stdin is spooled to a temporary file
//! for the two passes.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use lotline_domain::{Chain, Event, EventKind, KindName};
use lotline_epcis::export::{ContextMerge, DocumentWriter, MasterData, to_epcis};
use lotline_epcis::import::{Importer, Mapped, Options, Source};
use lotline_epcis::names::{EXT_CONTEXT, EXT_EVENT};
use lotline_epcis::stream::{Part, hash_context, read_document};
use lotline_ingest::{Outgoing, SUBJECT_ROOT, connect, jetstream, publish_pipelined};
use lotline_proto::convert::{event_from_wire, event_to_wire};
use lotline_proto::v1;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use serde_json::json;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::client::{connect as connect_server, status_error};
use super::{CliError, ClientArgs};

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// EPCIS 2.0 JSON-LD document (EPCISDocument or EPCISQueryDocument), or `-` for stdin.
    file: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
    /// Publish to the NATS stream at this URL instead of posting to --server.
    #[arg(long = "nats-url")]
    nats_url: Option<String>,
    /// The org of events whose location names no owning party in master data.
    #[arg(long)]
    org: Option<String>,
    /// The chain (cocoa, coffee, textile) of lot events that neither the event, its product
    /// class nor its party gives one.
    #[arg(long)]
    chain: Option<String>,
    /// With --nats-url: how long to wait for lotline's outcome of the last event, in seconds;
    /// events without an outcome by then are counted as pending.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this lot's history: its events and those of every lot upstream of it.
    #[arg(long)]
    lot: Option<String>,
    /// Events from this time on (RFC 3339, inclusive).
    #[arg(long)]
    from: Option<String>,
    /// Events before this time (RFC 3339, exclusive).
    #[arg(long)]
    to: Option<String>,
    /// Write the document here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

/// Events sent per RecordBatch, or published per pipelined chunk.
const BATCH: usize = 500;
/// Mapped events waiting between the reading thread and the sender.
const QUEUE: usize = 4 * BATCH;

/// How the events of one import fared.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    duplicate: u64,
    pending: u64,
    rejected: u64,
    /// Every rejection: where in the document, the event id if known, kind and reason.
    rejections: Vec<(String, String, String, String)>,
    /// A request that failed: its events were not confirmed.
    failure: Option<String>,
    not_confirmed: u64,
    /// The progress bar, hidden while a rejection is printed.
    bar: Option<ProgressBar>,
}

impl Tally {
    fn reject(&mut self, source: &Source, id: &str, kind: &str, reason: &str, json: bool) {
        self.rejected += 1;
        if !json {
            let id = if id.is_empty() { "-" } else { id };
            let line = format!("{source}: {id}: rejected ({kind}): {reason}");
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
        }
        self.rejections
            .push((source.to_string(), id.into(), kind.into(), reason.into()));
    }
}

/// `lotline import FILE`.
pub(crate) async fn import(args: ImportArgs) -> Result<(), CliError> {
    let chain = match args.chain.as_deref() {
        None => None,
        Some(c) => Some(Chain::parse(c).ok_or_else(|| {
            CliError::Usage(format!(
                "--chain: unknown chain {c:?} (cocoa, coffee or textile)"
            ))
        })?),
    };
    let started = Instant::now();
    let (path, _spool) = input_path(&args.file)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let bar = progress(!args.quiet && !args.client.json, size * 2, "bytes");

    // The sender first, so that a server that cannot be reached fails before any reading.
    let sink = match &args.nats_url {
        Some(url) => Sink::nats(url).await?,
        None => Sink::grpc(&args.client.server).await?,
    };

    let (tx, rx) = mpsc::channel::<Mapped>(QUEUE);
    let reader = {
        let bar = bar.clone();
        let options = Options {
            org: args.org.clone(),
            chain,
        };
        tokio::task::spawn_blocking(move || read_and_map(&path, options, bar, tx))
    };
    let tally = sink
        .send_all(
            rx,
            args.client.json,
            Duration::from_secs(args.timeout_secs),
            bar.clone(),
        )
        .await;
    let read = reader
        .await
        .map_err(|e| CliError::Refused(format!("the reading thread failed: {e}")))?;
    bar.finish_and_clear();

    let elapsed = started.elapsed().as_secs_f64();
    let events = tally.accepted + tally.duplicate + tally.pending + tally.rejected;
    let rate = if elapsed > 0.0 {
        events as f64 / elapsed
    } else {
        0.0
    };
    let peak = peak_memory_mib();
    if args.client.json {
        let rejections: Vec<_> = tally
            .rejections
            .iter()
            .map(|(source, id, kind, reason)| {
                json!({"source": source, "event_id": id, "kind": kind, "reason": reason})
            })
            .collect();
        let summary = json!({
            "accepted": tally.accepted,
            "duplicate": tally.duplicate,
            "pending": tally.pending,
            "rejected": tally.rejected,
            "not_confirmed": tally.not_confirmed,
            "rejections": rejections,
            "seconds": elapsed,
            "events_per_second": rate,
            "peak_memory_mib": peak,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        );
    } else {
        eprintln!(
            "{} accepted, {} duplicate, {} pending, {} rejected{} in {elapsed:.1} s ({rate:.0} events/s{})",
            tally.accepted,
            tally.duplicate,
            tally.pending,
            tally.rejected,
            if tally.not_confirmed > 0 {
                format!(", {} not confirmed", tally.not_confirmed)
            } else {
                String::new()
            },
            peak.map(|p| format!(", peak memory {p:.0} MiB"))
                .unwrap_or_default(),
        );
    }
    if let Err(reason) = read {
        return Err(CliError::Usage(reason));
    }
    if let Some(reason) = tally.failure {
        return Err(CliError::Connect(format!(
            "{} event(s) not confirmed (importing the document again is safe): {reason}",
            tally.not_confirmed
        )));
    }
    if tally.rejected > 0 || tally.pending > 0 {
        return Err(CliError::SomeRejected(format!(
            "lotline: {} event(s) rejected, {} pending",
            tally.rejected, tally.pending
        )));
    }
    Ok(())
}

/// The file to read twice: the argument, or stdin spooled to a temporary file (kept alive by the
/// second value).
fn input_path(file: &Path) -> Result<(PathBuf, Option<tempfile::TempPath>), CliError> {
    if file != Path::new("-") {
        return Ok((file.to_path_buf(), None));
    }
    let mut spool = tempfile::NamedTempFile::new()
        .map_err(|e| CliError::Usage(format!("cannot spool stdin to a temporary file: {e}")))?;
    std::io::copy(&mut std::io::stdin().lock(), &mut spool)
        .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
    let path = spool.into_temp_path();
    Ok((path.to_path_buf(), Some(path)))
}

/// A progress bar on stderr when it is a terminal and wanted; hidden otherwise.
fn progress(wanted: bool, length: u64, unit: &str) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    let template = if unit == "bytes" {
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} events ({eta}) {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Both passes over the document, on a blocking thread: the hash vocabulary, then every part
/// mapped and queued for the sender.
fn read_and_map(
    path: &Path,
    options: Options,
    bar: ProgressBar,
    tx: mpsc::Sender<Mapped>,
) -> Result<(), String> {
    let open = || File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    bar.set_message("reading the vocabulary");
    let hashing =
        hash_context(bar.wrap_read(open()?)).map_err(|e| format!("{}: {e}", path.display()))?;
    bar.set_message("importing");
    let mut importer = Importer::new(options);
    let mut context_seen = false;
    let send = |items: Vec<Mapped>| -> Result<(), String> {
        for item in items {
            tx.blocking_send(item)
                .map_err(|_| "the sender stopped".to_string())?;
        }
        Ok(())
    };
    let info = read_document(bar.wrap_read(open()?), &mut |part| match part {
        Part::Context(context) => {
            context_seen = true;
            importer.context(&context, hashing.clone());
            Ok(())
        }
        Part::Header(header) => {
            if !context_seen {
                importer.context(&lotline_epcis::Json::Null, hashing.clone());
                context_seen = true;
            }
            send(importer.header(&header))
        }
        Part::Event(index, event) => {
            if !context_seen {
                importer.context(&lotline_epcis::Json::Null, hashing.clone());
                context_seen = true;
            }
            send(importer.event(index, &event))
        }
    })
    .map_err(|e| format!("{}: {e}", path.display()))?;
    send(importer.finish())?;
    if info.header_after_body {
        return Err(format!(
            "{}: the epcisHeader comes after the epcisBody; its master data was registered after the events (write the header first)",
            path.display()
        ));
    }
    Ok(())
}

/// Where imported events go.
enum Sink {
    Grpc(EventServiceClient<Channel>),
    Nats {
        client: async_nats::Client,
        js: Box<async_nats::jetstream::Context>,
    },
}

impl Sink {
    async fn grpc(server: &str) -> Result<Sink, CliError> {
        let channel = connect_server(server).await?;
        Ok(Sink::Grpc(
            EventServiceClient::new(channel).max_decoding_message_size(64 << 20),
        ))
    }

    async fn nats(url: &str) -> Result<Sink, CliError> {
        let client = connect(url, "lotline import", None, false)
            .await
            .map_err(|e| CliError::Connect(format!("{e} (is nats-server running? see README)")))?;
        let js = jetstream(client.clone());
        Ok(Sink::Nats {
            client,
            js: Box::new(js),
        })
    }

    /// Sends every mapped event, a batch at a time, and counts the outcomes.
    async fn send_all(
        self,
        mut rx: mpsc::Receiver<Mapped>,
        json: bool,
        timeout: Duration,
        bar: ProgressBar,
    ) -> Tally {
        let mut tally = Tally {
            bar: Some(bar),
            ..Tally::default()
        };
        let mut batch: Vec<(Source, v1::Event)> = Vec::with_capacity(BATCH);
        match self {
            Sink::Grpc(mut client) => {
                while let Some(mapped) = rx.recv().await {
                    collect(mapped, &mut batch, &mut tally, json);
                    if batch.len() >= BATCH {
                        record(&mut client, std::mem::take(&mut batch), &mut tally, json).await;
                    }
                }
                record(&mut client, batch, &mut tally, json).await;
            }
            Sink::Nats { client, js } => {
                let inbox = client.new_inbox();
                let replies = match client.subscribe(inbox.clone()).await {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tally.failure = Some(format!("cannot subscribe for outcomes: {e}"));
                        None
                    }
                };
                let mut sources: HashMap<String, Source> = HashMap::new();
                let mut published = 0u64;
                loop {
                    let more = rx.recv().await;
                    let done = more.is_none();
                    if let Some(mapped) = more {
                        collect(mapped, &mut batch, &mut tally, json);
                    }
                    if batch.len() >= BATCH || (done && !batch.is_empty()) {
                        published += publish(
                            &js,
                            &inbox,
                            std::mem::take(&mut batch),
                            &mut sources,
                            &mut tally,
                            json,
                        )
                        .await;
                    }
                    if done {
                        break;
                    }
                }
                match replies {
                    Some(replies) => {
                        outcomes(replies, published, timeout, &sources, &mut tally, json).await;
                    }
                    None => tally.pending += published,
                }
            }
        }
        tally
    }
}

/// A mapped event joins the batch; a mapping rejection is counted at once.
fn collect(mapped: Mapped, batch: &mut Vec<(Source, v1::Event)>, tally: &mut Tally, json: bool) {
    match mapped.result {
        Ok(event) => batch.push((mapped.source, event_to_wire(&event))),
        Err(reason) => tally.reject(&mapped.source, "", "invalid", &reason, json),
    }
}

/// Records one batch over gRPC and counts its outcomes.
async fn record(
    client: &mut EventServiceClient<Channel>,
    batch: Vec<(Source, v1::Event)>,
    tally: &mut Tally,
    json: bool,
) {
    if batch.is_empty() {
        return;
    }
    let events: Vec<v1::Event> = batch.iter().map(|(_, e)| e.clone()).collect();
    match client.record_batch(v1::RecordBatchRequest { events }).await {
        Ok(response) => {
            let outcomes = response.into_inner().outcomes;
            for ((source, event), outcome) in batch.iter().zip(outcomes.iter()) {
                count(
                    tally,
                    source,
                    &event.event_id,
                    outcome.result.as_ref(),
                    json,
                );
            }
            if outcomes.len() < batch.len() {
                let missing = (batch.len() - outcomes.len()) as u64;
                tally.not_confirmed += missing;
                tally.failure.get_or_insert_with(|| {
                    format!(
                        "server answered {} outcomes for {} events",
                        outcomes.len(),
                        batch.len()
                    )
                });
            }
        }
        Err(status) => {
            let status = status_error(status);
            tally.not_confirmed += batch.len() as u64;
            tally.failure.get_or_insert_with(|| status.to_string());
        }
    }
}

fn count(
    tally: &mut Tally,
    source: &Source,
    id: &str,
    outcome: Option<&v1::outcome::Result>,
    json: bool,
) {
    use v1::outcome::Result as R;
    match outcome {
        Some(R::Accepted(_)) => tally.accepted += 1,
        Some(R::Duplicate(_)) => tally.duplicate += 1,
        Some(R::Rejected(r)) => tally.reject(source, id, &r.kind, &r.reason, json),
        None => {
            tally.not_confirmed += 1;
            tally
                .failure
                .get_or_insert_with(|| "server gave no outcome".into());
        }
    }
}

/// Publishes one batch to the stream, each event asking for its outcome on `inbox`; returns how
/// many the stream took (new or dropped as a re-send).
async fn publish(
    js: &async_nats::jetstream::Context,
    inbox: &str,
    batch: Vec<(Source, v1::Event)>,
    sources: &mut HashMap<String, Source>,
    tally: &mut Tally,
    json: bool,
) -> u64 {
    let mut messages = Vec::with_capacity(batch.len());
    for (source, event) in batch {
        match Outgoing::protobuf(SUBJECT_ROOT, &event) {
            Ok(message) => {
                sources.insert(event.event_id.clone(), source);
                messages.push(message.with_reply(inbox));
            }
            Err(reason) => tally.reject(&source, &event.event_id, "invalid", &reason, json),
        }
    }
    let published = publish_pipelined(js, messages, 1024, |_| {}).await;
    for (id, reason) in &published.failed {
        tally.not_confirmed += 1;
        tally
            .failure
            .get_or_insert_with(|| format!("{id}: not confirmed by the stream: {reason}"));
    }
    // A re-send the stream dropped gets no outcome from lotline: it was recorded before.
    tally.duplicate += published.duplicates;
    published.stored
}

/// Waits for lotline's outcome of every event the stream stored, up to `timeout` after the last
/// publish; those still without one are pending.
async fn outcomes(
    mut replies: async_nats::Subscriber,
    expected: u64,
    timeout: Duration,
    sources: &HashMap<String, Source>,
    tally: &mut Tally,
    json: bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while (seen.len() as u64) < expected {
        let next = tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            next = replies.next() => next,
        };
        let Some(reply) = next else { break };
        let Ok(outcome) = serde_json::from_slice::<v1::Outcome>(&reply.payload) else {
            continue;
        };
        // Every node answers; the first answer counts.
        if !sources.contains_key(&outcome.event_id) || !seen.insert(outcome.event_id.clone()) {
            continue;
        }
        let source = sources
            .get(&outcome.event_id)
            .cloned()
            .unwrap_or(Source::Event(0));
        count(
            tally,
            &source,
            &outcome.event_id,
            outcome.result.as_ref(),
            json,
        );
    }
    tally.pending += expected.saturating_sub(seen.len() as u64);
}

/// The process's peak resident memory in MiB (Linux; `None` elsewhere).
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `lotline export`.
pub(crate) async fn export(args: ExportArgs) -> Result<(), CliError> {
    let channel = connect_server(&args.client.server).await?;
    let mut client = ProvenanceServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let base = v1::ListEventsRequest {
        from: args.from.clone().unwrap_or_default(),
        to: args.to.clone().unwrap_or_default(),
        limit: 1000,
        ..Default::default()
    };

    // Master data: every registration and certificate, whatever the period.
    let mut master = MasterData::new();
    for kind in [
        KindName::RegisterOrg,
        KindName::RegisterSite,
        KindName::RegisterPlot,
        KindName::Certify,
    ] {
        let request = v1::ListEventsRequest {
            kind: kind.as_str().into(),
            limit: 1000,
            ..Default::default()
        };
        for_each_event(&mut client, request, |stored, event| {
            if !stored.corrected {
                master.add(&event);
            }
            Ok(())
        })
        .await?;
    }

    // First pass: which events, and the contexts of their documents.
    let mut merge = ContextMerge::new();
    let selection = match &args.lot {
        Some(lot) => Some(lot_history(&mut client, &base, lot).await?),
        None => None,
    };
    let mut total = 0u64;
    match &selection {
        Some(events) => {
            for (_, event) in events.values() {
                if let Some(context) = event.extensions.get(EXT_CONTEXT) {
                    merge.add(context);
                }
                master.observe(event);
                total += 1;
            }
        }
        None => {
            for_each_event(&mut client, base.clone(), |_, event| {
                if let Some(context) = event.extensions.get(EXT_CONTEXT) {
                    merge.add(context);
                }
                master.observe(&event);
                total += 1;
                Ok(())
            })
            .await?;
        }
    }

    // Second pass: write.
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(File::create(path).map_err(|e| {
            CliError::Usage(format!("--out: cannot create {}: {e}", path.display()))
        })?),
        None => Box::new(std::io::stdout().lock()),
    };
    let write_error =
        |e: std::io::Error| CliError::Refused(format!("cannot write the document: {e}"));
    let creation = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let master_json = master.to_json();
    let mut writer = DocumentWriter::new(
        BufWriter::with_capacity(1 << 20, out),
        &merge.context(),
        Some(&master_json),
        &creation,
    )
    .map_err(write_error)?;
    let mut state = Export {
        merge,
        bar: progress(!args.quiet && args.out.is_some(), total, "events"),
        written: 0,
        corrected: VecDeque::new(),
    };
    match selection {
        Some(events) => {
            for (_, (_, event)) in events {
                state.write(&mut client, &mut writer, event).await?;
            }
        }
        None => {
            let mut request = base.clone();
            loop {
                let (events, more) = next_page(&mut client, &mut request).await?;
                for stored in events {
                    let event = domain_event(&stored)?;
                    state.write(&mut client, &mut writer, event).await?;
                }
                if !more {
                    break;
                }
            }
        }
    }
    let mut out = writer.finish().map_err(write_error)?;
    out.flush().map_err(write_error)?;
    state.bar.finish_and_clear();
    eprintln!(
        "{} events exported{}",
        state.written,
        args.out
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// What the writing pass of an export keeps.
struct Export {
    merge: ContextMerge,
    bar: ProgressBar,
    written: u64,
    /// Events that native corrections corrected, looked up lately.
    corrected: VecDeque<(String, Event)>,
}

impl Export {
    /// Writes one stored event's EPCIS form (master data is in the header already).
    async fn write<W: Write>(
        &mut self,
        client: &mut ProvenanceServiceClient<Channel>,
        writer: &mut DocumentWriter<W>,
        event: Event,
    ) -> Result<(), CliError> {
        if is_master_data(&event) {
            return Ok(());
        }
        let corrected = match &event.kind {
            EventKind::Correct(c) if !event.extensions.contains_key(EXT_EVENT) => {
                find_event(client, &c.corrected_event_id, &mut self.corrected).await?
            }
            _ => None,
        };
        let items = to_epcis(&event, corrected.as_ref(), &self.merge)
            .map_err(|e| CliError::Refused(format!("event {}: {e}", event.id)))?;
        for item in &items {
            writer
                .event(item)
                .map_err(|e| CliError::Refused(format!("cannot write the document: {e}")))?;
        }
        self.written += 1;
        self.bar.inc(1);
        Ok(())
    }
}

fn is_master_data(event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::RegisterOrg(_)
            | EventKind::RegisterSite(_)
            | EventKind::RegisterPlot(_)
            | EventKind::Certify(_)
    )
}

fn domain_event(stored: &v1::StoredEvent) -> Result<Event, CliError> {
    let wire = stored.event.as_ref().ok_or_else(|| {
        CliError::Refused(format!(
            "the server sent sequence {} without its event",
            stored.sequence
        ))
    })?;
    event_from_wire(wire).map_err(|e| {
        CliError::Refused(format!(
            "stored event {} does not read back: {e}",
            wire.event_id
        ))
    })
}

/// Calls `f` for every event the listing gives, page by page.
async fn for_each_event(
    client: &mut ProvenanceServiceClient<Channel>,
    mut request: v1::ListEventsRequest,
    mut f: impl FnMut(&v1::StoredEvent, Event) -> Result<(), CliError>,
) -> Result<(), CliError> {
    loop {
        let (events, more) = next_page(client, &mut request).await?;
        for stored in &events {
            let event = domain_event(stored)?;
            f(stored, event)?;
        }
        if !more {
            return Ok(());
        }
    }
}

/// One page of a listing; the request's cursor moves on, and the flag says whether more follow.
async fn next_page(
    client: &mut ProvenanceServiceClient<Channel>,
    request: &mut v1::ListEventsRequest,
) -> Result<(Vec<v1::StoredEvent>, bool), CliError> {
    let page = client
        .list_events(request.clone())
        .await
        .map_err(status_error)?
        .into_inner();
    let more = !page.next_cursor.is_empty();
    request.cursor = page.next_cursor;
    Ok((page.events, more))
}

/// The events of a lot and of every lot upstream of it (walking back through the transforms that
/// made them), by sequence.
async fn lot_history(
    client: &mut ProvenanceServiceClient<Channel>,
    base: &v1::ListEventsRequest,
    lot: &str,
) -> Result<BTreeMap<u64, (v1::StoredEvent, Event)>, CliError> {
    let mut events = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::from([lot.to_string()]);
    while let Some(lot) = queue.pop_front() {
        if !seen.insert(lot.clone()) {
            continue;
        }
        let request = v1::ListEventsRequest {
            lot: lot.clone(),
            ..base.clone()
        };
        let mut found = Vec::new();
        for_each_event(client, request, |stored, event| {
            found.push((stored.clone(), event));
            Ok(())
        })
        .await?;
        for (stored, event) in found {
            if let EventKind::Transform(t) = &event.kind
                && t.outputs.iter().any(|o| o.lot == lot)
            {
                queue.extend(t.inputs.iter().map(|i| i.lot.clone()));
            }
            events.insert(stored.sequence, (stored, event));
        }
    }
    if events.is_empty() {
        return Err(CliError::Refused(format!("no events of lot {lot:?}")));
    }
    Ok(events)
}

/// The event a native correction corrects (a few recent ones are kept).
async fn find_event(
    client: &mut ProvenanceServiceClient<Channel>,
    id: &str,
    cache: &mut VecDeque<(String, Event)>,
) -> Result<Option<Event>, CliError> {
    if let Some((_, event)) = cache.iter().find(|(k, _)| k == id) {
        return Ok(Some(event.clone()));
    }
    let page = client
        .list_events(v1::ListEventsRequest {
            event_id: id.to_string(),
            limit: 1,
            ..Default::default()
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let Some(stored) = page.events.first() else {
        return Ok(None);
    };
    let event = domain_event(stored)?;
    if cache.len() >= 64 {
        cache.pop_front();
    }
    cache.push_back((id.to_string(), event.clone()));
    Ok(Some(event))
}
