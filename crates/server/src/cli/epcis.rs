//! `lotline import` (an EPCIS 2.0 document in, over gRPC or NATS) and `lotline export` (the log,
//! or one lot's history, out as an EPCIS 2.0 document). The mapping is `lotline-epcis`'s and is
//! written down in docs/epcis.md.
//!
//! Import reads the document three times, streaming (`lotline_epcis::import::document`): once for the vocabulary the reference
//! event hash needs from the whole document; once for the parties of its master data (up to
//! its first event), which are recorded before anything else; once for the rest of its master
//! data and its events. What the document does not register itself (the owner of a location,
//! the org of a party, the product of a class) is asked of the server (`MasterDataService.
//! Resolve`, through [`ServerRegistry`]); the document's own master data is recorded before any
//! event is mapped, so that the server knows it too. Memory stays bounded by a batch of events
//! in flight and the importer's bounded caches, whatever the document's size; stdin is spooled
//! to a temporary file for the passes.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use lotline_domain::{Chain, Event, EventKind, KindName};
use lotline_epcis::export::{ContextMerge, DocumentWriter, MasterData, is_master_data, to_epcis};
use lotline_epcis::import::document::{
    DocumentError, Pass, Sink as DocumentSink, Stopped, Summary, import_document,
};
use lotline_epcis::import::{
    Answers, Ask, KnownClass, KnownLocation, KnownOrg, Mapped, Options, Registry, Source,
};
use lotline_epcis::names::{EXT_CONTEXT, EXT_EVENT};
use lotline_ingest::{Outgoing, SUBJECT_ROOT, jetstream, publish_pipelined};
use lotline_proto::convert::{event_bytes, event_from_wire, role_from_wire};
use lotline_proto::encoded::{self, EncodedBatch};
use lotline_proto::v1;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::master_data_service_client::MasterDataServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::client::{Conn, connect as connect_server, status_error};
use super::{CliError, ClientArgs};

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// EPCIS 2.0 JSON-LD document (EPCISDocument or EPCISQueryDocument), or `-` for stdin.
    file: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
    /// Publish to the NATS stream at this URL instead of posting to --server (--server is
    /// still asked what earlier imports registered: locations, parties, product classes).
    #[arg(long = "nats-url")]
    nats_url: Option<String>,
    #[command(flatten)]
    nats: super::nats::NatsClientArgs,
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
    /// Outcomes a node told when asked, not heard as replies.
    fetched: u64,
    /// Every rejection: where in the document, the event id if known, kind and reason.
    rejections: Vec<(String, String, String, String)>,
    /// A request that failed: its events were not confirmed.
    failure: Option<String>,
    not_confirmed: u64,
    /// Publishes sent again because the stream did not confirm them (a NATS server lost).
    retried: u64,
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

    // The sender and the registry first, so that a server that cannot be reached fails before
    // any reading.
    let channel = match &args.nats_url {
        None => connect_server(&args.client).await?,
        Some(_) => connect_server(&args.client).await.map_err(|e| {
            CliError::Connect(format!(
                "{e}; import --nats-url also asks a lotline server what earlier imports registered (the owners of locations, the orgs of parties, product classes): give it with --server URL"
            ))
        })?,
    };
    let registry = ServerRegistry {
        client: MasterDataServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_ANSWER_BYTES),
        runtime: tokio::runtime::Handle::current(),
        failure: None,
    };
    let sink = match &args.nats_url {
        Some(url) => Sink::nats(url, &args.nats).await?,
        None => Sink::grpc(channel),
    };

    let (tx, rx) = mpsc::channel::<Item>(QUEUE);
    let reader = {
        let bar = bar.clone();
        let options = Options {
            org: args.org.clone(),
            chain,
            check_only: false,
        };
        tokio::task::spawn_blocking(move || {
            read_and_map(&path, options, Box::new(registry), bar, tx)
        })
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
            "fetched": tally.fetched,
            "retried": tally.retried,
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
            "{} accepted, {} duplicate, {} pending, {} rejected{}{}{} in {elapsed:.1} s ({rate:.0} events/s{})",
            tally.accepted,
            tally.duplicate,
            tally.pending,
            tally.rejected,
            if tally.not_confirmed > 0 {
                format!(", {} not confirmed", tally.not_confirmed)
            } else {
                String::new()
            },
            if tally.fetched > 0 {
                format!(
                    " ({} outcomes asked of a node, their replies lost)",
                    tally.fetched
                )
            } else {
                String::new()
            },
            if tally.retried > 0 {
                format!(
                    " ({} publishes sent again, unconfirmed the first time)",
                    tally.retried
                )
            } else {
                String::new()
            },
            peak.map(|p| format!(", peak memory {p:.0} MiB"))
                .unwrap_or_default(),
        );
    }
    match &read {
        Ok(summary) if summary.unowned_classes > 0 && !args.client.json => eprintln!(
            "note: {} product class(es) named a product or chain but no owner (lotline:owningParty, or --org): used for this document, not registered for later ones",
            summary.unowned_classes
        ),
        _ => {}
    }
    match read {
        Err(DocumentError::Unreadable(reason)) => return Err(CliError::Usage(reason)),
        Err(DocumentError::Stopped) if tally.failure.is_none() => {
            return Err(CliError::Connect(
                "the import stopped: its sender stopped".into(),
            ));
        }
        Err(DocumentError::Registry(reason)) => {
            return Err(CliError::Connect(format!(
                "the import stopped: the lotline server could not say what earlier imports registered ({reason}); importing the document again is safe"
            )));
        }
        Ok(_) | Err(DocumentError::Stopped) => {}
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

/// What travels from the reading thread to the sender.
enum Item {
    Mapped(Box<Mapped>),
    /// Send what is batched, wait until the server has applied everything sent so far (the
    /// document's master data, before its events are mapped), then answer.
    Barrier(oneshot::Sender<()>),
}

/// The sender as the reading thread's [`Sink`]: results over the channel, a barrier as an
/// [`Item::Barrier`] answered once the server has applied everything before it.
struct ChannelSink {
    tx: mpsc::Sender<Item>,
    bar: ProgressBar,
}

impl DocumentSink for ChannelSink {
    fn send(&mut self, mapped: Mapped) -> Result<(), Stopped> {
        self.tx
            .blocking_send(Item::Mapped(Box::new(mapped)))
            .map_err(|_| Stopped)
    }

    fn barrier(&mut self) -> Result<(), Stopped> {
        let (done, wait) = oneshot::channel();
        self.tx
            .blocking_send(Item::Barrier(done))
            .map_err(|_| Stopped)?;
        wait.blocking_recv().map_err(|_| Stopped)
    }

    fn stage(&mut self, pass: Pass) {
        self.bar.set_message(match pass {
            Pass::Vocabulary => "reading the vocabulary",
            Pass::Parties => "registering parties",
            Pass::Events => "importing",
        });
    }
}

/// Every pass over the document, on a blocking thread, queued for the sender.
fn read_and_map(
    path: &Path,
    options: Options,
    registry: Box<dyn Registry>,
    bar: ProgressBar,
    tx: mpsc::Sender<Item>,
) -> Result<Summary, DocumentError> {
    let open = |pass: Pass| -> std::io::Result<Box<dyn std::io::Read>> {
        let file = File::open(path)?;
        Ok(match pass {
            Pass::Parties => Box::new(file),
            Pass::Vocabulary | Pass::Events => Box::new(bar.wrap_read(file)),
        })
    };
    let mut sink = ChannelSink {
        tx,
        bar: bar.clone(),
    };
    import_document(
        &path.display().to_string(),
        &open,
        options,
        registry,
        &mut sink,
    )
}

/// The lotline server as the import's [`Registry`]: one `Resolve` call per batch of names not
/// cached yet, made from the reading thread.
struct ServerRegistry {
    client: MasterDataServiceClient<Conn>,
    runtime: tokio::runtime::Handle,
    failure: Option<String>,
}

impl Registry for ServerRegistry {
    fn resolve(&mut self, ask: &Ask) -> Answers {
        // The server answers at most MAX_RESOLVE names a request: a quarter of that of each kind.
        let mut all = Answers::default();
        for part in ask.parts(lotline_api::MAX_RESOLVE / 4) {
            let request = v1::ResolveRequest {
                parties: part.parties,
                locations: part.locations,
                orgs: part.orgs,
                classes: part.classes,
            };
            let answers = self.resolve_one(request);
            all.parties.extend(answers.parties);
            all.locations.extend(answers.locations);
            all.orgs.extend(answers.orgs);
            all.classes.extend(answers.classes);
        }
        all
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}

impl ServerRegistry {
    /// One Resolve request.
    fn resolve_one(&mut self, request: v1::ResolveRequest) -> Answers {
        if self.failure.is_some() {
            return Answers::default();
        }
        let mut client = self.client.clone();
        let answer = self
            .runtime
            .block_on(async move { client.resolve(request).await });
        let response = match answer {
            Ok(r) => r.into_inner(),
            Err(status) => {
                self.failure = Some(status_error(status).to_string());
                return Answers::default();
            }
        };
        let org = |o: v1::ResolvedOrg| KnownOrg {
            role: role_from_wire(o.role),
            chain: Chain::parse(&o.chain),
            country: Some(o.country).filter(|c| !c.is_empty()),
            org: o.org,
        };
        Answers {
            parties: response
                .parties
                .into_iter()
                .map(|p| (p.id, p.org.map(org)))
                .collect(),
            locations: response
                .locations
                .into_iter()
                .map(|l| {
                    let found = l.owner.map(|o| KnownLocation {
                        owner: Some(org(o)),
                        plot: l.plot,
                    });
                    (l.id, found)
                })
                .collect(),
            orgs: response
                .orgs
                .into_iter()
                .map(|o| (o.org.clone(), Some(org(o))))
                .collect(),
            classes: response
                .classes
                .into_iter()
                .map(|c| {
                    let found = c.found.then(|| KnownClass {
                        product: Some(c.product).filter(|p| !p.is_empty()),
                        chain: Chain::parse(&c.chain),
                    });
                    (c.id, found)
                })
                .collect(),
        }
    }
}

/// Where imported events go.
enum Sink {
    Grpc(Conn),
    Nats {
        client: async_nats::Client,
        js: Box<async_nats::jetstream::Context>,
    },
}

impl Sink {
    fn grpc(channel: Conn) -> Sink {
        Sink::Grpc(channel)
    }

    async fn nats(url: &str, options: &super::nats::NatsClientArgs) -> Result<Sink, CliError> {
        let client = super::nats::nats_client(url, "lotline import", options).await?;
        let js = jetstream(client.clone());
        Ok(Sink::Nats {
            client,
            js: Box::new(js),
        })
    }

    /// Sends every mapped event, a batch at a time, and counts the outcomes. A barrier sends
    /// what is batched and is answered once every event sent so far has its outcome.
    async fn send_all(
        self,
        mut rx: mpsc::Receiver<Item>,
        json: bool,
        timeout: Duration,
        bar: ProgressBar,
    ) -> Tally {
        let mut tally = Tally {
            bar: Some(bar),
            ..Tally::default()
        };
        let mut batch: Vec<(Source, Encoded)> = Vec::with_capacity(BATCH);
        match self {
            Sink::Grpc(channel) => {
                let mut batches = Batches::open(channel.clone()).await;
                let mut client =
                    EventServiceClient::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES);
                while let Some(item) = rx.recv().await {
                    match item {
                        Item::Mapped(mapped) => {
                            collect(*mapped, &mut batch, &mut tally, json);
                            if batch.len() >= BATCH {
                                let full = std::mem::take(&mut batch);
                                batches.send(&mut client, full, &mut tally, json).await;
                            }
                        }
                        Item::Barrier(done) => {
                            let part = std::mem::take(&mut batch);
                            batches.send(&mut client, part, &mut tally, json).await;
                            batches.settle(&mut tally, json).await;
                            // Master data not confirmed: its events are not mapped.
                            if tally.failure.is_none() {
                                let _ = done.send(());
                            }
                        }
                    }
                }
                batches.send(&mut client, batch, &mut tally, json).await;
                batches.settle(&mut tally, json).await;
            }
            Sink::Nats { client, js } => {
                let inbox = client.new_inbox();
                let mut outcomes = match client.subscribe(inbox.clone()).await {
                    Ok(replies) => Outcomes::new(replies, client.clone()),
                    Err(e) => {
                        tally.failure = Some(format!("cannot subscribe for outcomes: {e}"));
                        Outcomes::none()
                    }
                };
                loop {
                    let item = tokio::select! {
                        item = rx.recv() => item,
                        Some(reply) = outcomes.next() => {
                            outcomes.count(&reply, &mut tally, json);
                            continue;
                        }
                    };
                    let (done, barrier) = match item {
                        None => (true, None),
                        Some(Item::Mapped(mapped)) => {
                            collect(*mapped, &mut batch, &mut tally, json);
                            (false, None)
                        }
                        Some(Item::Barrier(answer)) => (false, Some(answer)),
                    };
                    if batch.len() >= BATCH || ((done || barrier.is_some()) && !batch.is_empty()) {
                        publish(
                            &js,
                            &inbox,
                            std::mem::take(&mut batch),
                            &mut outcomes,
                            &mut tally,
                            json,
                        )
                        .await;
                    }
                    if let Some(answer) = barrier {
                        // Events are mapped against the master data only once lotline has
                        // applied all of it; without that, the import stops.
                        if outcomes.wait(timeout, &mut tally, json).await {
                            let _ = answer.send(());
                        } else {
                            tally.failure.get_or_insert_with(|| {
                                format!(
                                    "lotline did not confirm the document's master data within {} s (is a lotline node consuming the stream?); its events were not sent",
                                    timeout.as_secs()
                                )
                            });
                        }
                    }
                    if done {
                        break;
                    }
                }
                outcomes.wait(timeout, &mut tally, json).await;
                tally.pending += outcomes.published.saturating_sub(outcomes.received);
                tally.fetched = outcomes.fetched;
            }
        }
        tally
    }
}

/// How long the importer waits without an outcome reply before it asks a node for the
/// outcomes it has not heard (lost while its connection was down, say).
const ASK_AFTER: Duration = Duration::from_secs(2);

/// lotline's outcomes of the events an import published, as they come back on its inbox, or
/// as a node tells them when asked (`lotline_ingest::outcomes`).
struct Outcomes {
    replies: Option<async_nats::Subscriber>,
    /// To ask nodes for outcomes not heard.
    client: Option<async_nats::Client>,
    /// Where in the document each published event came from, and its org.
    sources: HashMap<String, (Source, String)>,
    /// Events the stream stored, each owed an outcome.
    published: u64,
    /// Events whose outcome came (each then leaves `sources`).
    received: u64,
    /// Of those, the outcomes a node told when asked.
    fetched: u64,
    /// The highest stream sequence the stream confirmed for this import.
    last_sequence: u64,
}

impl Outcomes {
    fn new(replies: async_nats::Subscriber, client: async_nats::Client) -> Outcomes {
        Outcomes {
            replies: Some(replies),
            client: Some(client),
            ..Outcomes::none()
        }
    }

    fn none() -> Outcomes {
        Outcomes {
            replies: None,
            client: None,
            sources: HashMap::new(),
            published: 0,
            received: 0,
            fetched: 0,
            last_sequence: 0,
        }
    }

    /// The next reply; never, without a subscription.
    async fn next(&mut self) -> Option<async_nats::Message> {
        match self.replies.as_mut() {
            Some(replies) => replies.next().await,
            None => std::future::pending().await,
        }
    }

    fn count(&mut self, reply: &async_nats::Message, tally: &mut Tally, json: bool) {
        let Ok(outcome) = serde_json::from_slice::<v1::Outcome>(&reply.payload) else {
            return;
        };
        // Every node answers; the first answer counts.
        let Some((source, _)) = self.sources.remove(&outcome.event_id) else {
            return;
        };
        self.received += 1;
        count(
            tally,
            &source,
            &outcome.event_id,
            outcome.result.as_ref(),
            json,
        );
    }

    /// Waits until every event published so far has its outcome, or `timeout` has passed since
    /// the last one came; says whether every outcome came. After [`ASK_AFTER`] without a reply
    /// it asks a node for the outcomes it has not heard, and again after each quiet spell.
    async fn wait(&mut self, timeout: Duration, tally: &mut Tally, json: bool) -> bool {
        if self.replies.is_none() {
            return self.received >= self.published;
        }
        let mut last = tokio::time::Instant::now();
        while self.received < self.published {
            let quiet = ASK_AFTER.min(timeout);
            let next = tokio::select! {
                () = tokio::time::sleep(quiet) => {
                    if self.ask(tally, json).await > 0 {
                        last = tokio::time::Instant::now();
                    } else if last.elapsed() >= timeout {
                        break;
                    }
                    continue;
                }
                next = self.next() => next,
            };
            let Some(reply) = next else { break };
            self.count(&reply, tally, json);
            last = tokio::time::Instant::now();
        }
        self.received >= self.published
    }

    /// Asks a node for the outcomes not heard yet, per org, and counts what it tells
    /// (`lotline_ingest::outcomes::ask`). Returns how many outcomes it learnt.
    async fn ask(&mut self, tally: &mut Tally, json: bool) -> u64 {
        use lotline_ingest::outcomes::ask;
        let Some(client) = self.client.clone() else {
            return 0;
        };
        let mut by_org: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (id, (_, org)) in &self.sources {
            by_org.entry(org.clone()).or_default().push(id.clone());
        }
        let before = self.received;
        for (org, ids) in by_org {
            let told = match ask(
                &client,
                SUBJECT_ROOT,
                &org,
                &ids,
                self.last_sequence,
                Duration::from_secs(5),
            )
            .await
            {
                Ok(told) => told,
                // No node answers (none running, or none allowed to): wait on.
                Err(_) => break,
            };
            for (id, told) in told {
                let Some((source, _)) = self.sources.remove(&id) else {
                    continue;
                };
                count(tally, &source, &id, Some(&told.into_result()), json);
                self.received += 1;
                self.fetched += 1;
            }
        }
        self.received - before
    }
}

/// The largest answer the importer reads from the server, in bytes.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A mapped event as it is sent: its canonical protobuf bytes (a `lotline.v1.Event`), encoded
/// once, and its id.
struct Encoded {
    id: String,
    bytes: Vec<u8>,
}

impl Encoded {
    fn new(event: &Event) -> Encoded {
        Encoded {
            id: event.id.clone(),
            bytes: event_bytes(event),
        }
    }
}

/// A `lotline.v1.Event` from bytes [`Encoded::new`] wrote, for the paths that need the message
/// (`RecordBatch`, NATS subjects).
fn decode(bytes: &[u8]) -> v1::Event {
    use prost::Message;
    v1::Event::decode(bytes).expect("the bytes were encoded from an event of the same schema")
}

/// A mapped event joins the batch; a mapping rejection is counted at once.
fn collect(mapped: Mapped, batch: &mut Vec<(Source, Encoded)>, tally: &mut Tally, json: bool) {
    match mapped.result {
        Ok(event) => batch.push((mapped.source, Encoded::new(&event))),
        Err(reason) => tally.reject(&mapped.source, "", "invalid", &reason, json),
    }
}

/// Batches sent over one `RecordStream` and not answered yet, at most.
const STREAM_AHEAD: usize = 4;

/// Where each event of a sent batch came from, and its id.
type Sent = Vec<(Source, String)>;

/// How the importer sends batches over gRPC: on one `RecordStream`, up to [`STREAM_AHEAD`]
/// batches ahead of their answers (the server decodes the next ones while it writes), or one
/// `RecordBatch` at a time to a server without it, or after the stream failed.
enum Batches {
    Stream {
        requests: mpsc::Sender<EncodedBatch>,
        answers: Box<tonic::Streaming<v1::RecordBatchResponse>>,
        in_flight: VecDeque<Sent>,
    },
    OneAtATime,
}

impl Batches {
    async fn open(channel: Conn) -> Batches {
        let (requests, to_send) = mpsc::channel(STREAM_AHEAD);
        let stream = tokio_stream::wrappers::ReceiverStream::new(to_send);
        // The events go as the bytes the importer encoded, not decoded into messages first.
        match encoded::record_stream(channel, MAX_ANSWER_BYTES, stream).await {
            Ok(answers) => Batches::Stream {
                requests,
                answers: Box::new(answers.into_inner()),
                in_flight: VecDeque::new(),
            },
            // An older server (UNIMPLEMENTED), or one that refuses the caller: the batches go
            // one at a time, and each failure is counted where it happens.
            Err(_) => Batches::OneAtATime,
        }
    }

    /// Sends a batch; on a stream, first waits for the oldest answer when enough are owed.
    async fn send(
        &mut self,
        client: &mut EventServiceClient<Conn>,
        batch: Vec<(Source, Encoded)>,
        tally: &mut Tally,
        json: bool,
    ) {
        if batch.is_empty() {
            return;
        }
        if matches!(self, Batches::Stream { in_flight, .. } if in_flight.len() >= STREAM_AHEAD) {
            self.answer(tally, json).await;
        }
        let (sent, events): (Sent, Vec<Vec<u8>>) = batch
            .into_iter()
            .map(|(source, event)| ((source, event.id), event.bytes))
            .unzip();
        match self {
            Batches::OneAtATime => record(client, &sent, events, tally, json).await,
            Batches::Stream {
                requests,
                in_flight,
                ..
            } => {
                if requests.send(EncodedBatch { events }).await.is_ok() {
                    in_flight.push_back(sent);
                } else {
                    // The stream is gone: what it owes is counted, this batch is not sent.
                    in_flight.push_back(sent);
                    self.settle(tally, json).await;
                }
            }
        }
    }

    /// Counts the answer of the oldest batch in flight. A stream that fails leaves every batch
    /// it owes unconfirmed, and the rest go one at a time.
    async fn answer(&mut self, tally: &mut Tally, json: bool) {
        let Batches::Stream {
            answers, in_flight, ..
        } = self
        else {
            return;
        };
        let Some(sent) = in_flight.front() else {
            return;
        };
        let failure = match answers.message().await {
            Ok(Some(answer)) => {
                answered(sent, &answer.outcomes, tally, json);
                in_flight.pop_front();
                return;
            }
            Ok(None) => "the server ended the stream before answering every batch".to_string(),
            Err(status) => status_error(status).to_string(),
        };
        let owed: usize = in_flight.iter().map(Vec::len).sum();
        tally.not_confirmed += owed as u64;
        tally.failure.get_or_insert(failure);
        *self = Batches::OneAtATime;
    }

    /// Waits for the answers of every batch in flight.
    async fn settle(&mut self, tally: &mut Tally, json: bool) {
        while matches!(self, Batches::Stream { in_flight, .. } if !in_flight.is_empty()) {
            self.answer(tally, json).await;
        }
    }
}

/// Records one batch with `RecordBatch` and counts its outcomes.
async fn record(
    client: &mut EventServiceClient<Conn>,
    sent: &Sent,
    events: Vec<Vec<u8>>,
    tally: &mut Tally,
    json: bool,
) {
    let events = events.iter().map(|bytes| decode(bytes)).collect();
    match client.record_batch(v1::RecordBatchRequest { events }).await {
        Ok(response) => answered(sent, &response.into_inner().outcomes, tally, json),
        Err(status) => {
            let status = status_error(status);
            tally.not_confirmed += sent.len() as u64;
            tally.failure.get_or_insert_with(|| status.to_string());
        }
    }
}

/// Counts the outcomes the server answered for a batch.
fn answered(sent: &Sent, outcomes: &[v1::Outcome], tally: &mut Tally, json: bool) {
    for ((source, id), outcome) in sent.iter().zip(outcomes) {
        count(tally, source, id, outcome.result.as_ref(), json);
    }
    if outcomes.len() < sent.len() {
        tally.not_confirmed += (sent.len() - outcomes.len()) as u64;
        tally.failure.get_or_insert_with(|| {
            format!(
                "server answered {} outcomes for {} events",
                outcomes.len(),
                sent.len()
            )
        });
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
    batch: Vec<(Source, Encoded)>,
    outcomes: &mut Outcomes,
    tally: &mut Tally,
    json: bool,
) {
    let mut messages = Vec::with_capacity(batch.len());
    for (source, encoded) in batch {
        let event = decode(&encoded.bytes);
        match Outgoing::protobuf(SUBJECT_ROOT, &event) {
            Ok(message) => {
                outcomes
                    .sources
                    .insert(event.event_id.clone(), (source, event.org.clone()));
                messages.push(message.with_reply(inbox));
            }
            Err(reason) => tally.reject(&source, &event.event_id, "invalid", &reason, json),
        }
    }
    let published = publish_pipelined(js, messages, 1024, |_| {}).await;
    tally.retried += published.retried;
    outcomes.last_sequence = outcomes.last_sequence.max(published.last_sequence);
    // No outcome comes for what the stream did not take.
    for id in published
        .duplicate_ids
        .iter()
        .chain(published.failed.iter().map(|(id, _)| id))
    {
        outcomes.sources.remove(id);
    }
    for (id, reason) in &published.failed {
        tally.not_confirmed += 1;
        tally
            .failure
            .get_or_insert_with(|| format!("{id}: not confirmed by the stream: {reason}"));
    }
    // A re-send the stream dropped gets no outcome from lotline: it was recorded before.
    tally.duplicate += published.duplicates;
    outcomes.published += published.stored;
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
    let channel = connect_server(&args.client).await?;
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
        KindName::RegisterClass,
        KindName::Certify,
    ] {
        let request = v1::ListEventsRequest {
            kind: kind.as_str().into(),
            limit: 1000,
            ..Default::default()
        };
        let mut registrations = Vec::new();
        for_each_event(&mut client, request, |stored, event| {
            if !stored.corrected {
                registrations.push(event);
            }
            Ok(())
        })
        .await?;
        // A later registration of one id replaces an earlier one: the one that stands is the
        // latest by event time, then event id, whatever the order the log holds them in.
        registrations.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        for event in &registrations {
            master.add(event);
        }
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
        client: &mut ProvenanceServiceClient<Conn>,
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
    client: &mut ProvenanceServiceClient<Conn>,
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
    client: &mut ProvenanceServiceClient<Conn>,
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
    client: &mut ProvenanceServiceClient<Conn>,
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
    client: &mut ProvenanceServiceClient<Conn>,
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
