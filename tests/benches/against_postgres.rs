//! lotline against the PostgreSQL schema a team would build for the same job, on the same
//! generated EPCIS document.
//!
//! For each size, one generated document of cocoa, coffee and cotton chains (both GS1 identifier
//! forms, as `epcis_import` writes it) goes two ways:
//!
//! - **lotline**: the real `lotline import` binary into the real `lotline serve` binary on a real
//!   sled directory, as `epcis_import` measures it: events per second, the peak resident memory
//!   of the importer and of the server, and the bytes the data directory holds per event.
//!   Per-event figures count the document's events on both sides; lotline's import also
//!   registers the document's master data, which the PostgreSQL schema leaves out.
//! - **PostgreSQL 15**: a private cluster (`initdb` into a temp dir, a free loopback port, the
//!   default settings with `fsync=on`; never the system's server; run as the `postgres` user,
//!   or `nobody`, when the bench runs as root, which PostgreSQL refuses) with two tables,
//!   `events(seq, event_id, event_type, event_time, biz_step, doc jsonb)` and
//!   `lot_edges(output_lot, input_lot, input_qty, output_qty, event_id)`. The loader reads the
//!   document with `lotline_epcis::stream` (an event without an `eventID` is known by its CBV 2.0
//!   event hash), puts every lot into its canonical Digital Link so that edges join, streams the
//!   rows with `COPY ... FROM STDIN`, then adds the keys and indexes and analyses the tables, as
//!   PostgreSQL's guide to populating a database advises. The load is timed from the first read
//!   of the document to the end of `ANALYZE`; its bytes per event are the total relation sizes
//!   (heap, TOAST and indexes) of both tables.
//!
//! Then trace-back on the same lots: up to five sampled lots per depth group (depth is the
//! longest chain of inputs down to a harvest lot), twenty rounds (`LOTLINE_BENCH_ROUNDS`) each of lotline's
//! `ProvenanceService.TraceBack` over gRPC and of a `WITH RECURSIVE` query over `lot_edges` that
//! answers every origin lot with its share (the content per unit multiplied along each path,
//! `input_qty / Σ output_qty` of each transformation, as lotline's lineage arithmetic does).
//! Both go over loopback TCP; the query is prepared once. It prints, per depth group, the median
//! and p99 latency of each side and their ratio, and counts the lots whose origin sets (or
//! shares) differ between the two answers. Its first row (depth "none") is the floor under
//! both: 500 round trips that do no work (gRPC's health check; `SELECT 1`), timed alike. Each
//! round also records one event on a lot of its own (not timed) and asks lotline again: the
//! "grown" column, a question whose kept answer must be checked against a log that has grown,
//! as on a server taking events. Nothing here fails on a slow machine: the bench
//! asserts only correctness (no rejected import, the loader's edges match the generator's ground
//! truth, every answer names its origins).
//!
//! Without PostgreSQL 15 (`initdb` and `pg_ctl` on PATH or in /usr/lib/postgresql/15/bin;
//! Debian's `postgresql` package) it says so and measures lotline alone.
//!
//! `cargo bench -p lotline-e2e --bench against_postgres`                                   (100 000 events)
//! `LOTLINE_BENCH_EVENTS=20000,200000 cargo bench -p lotline-e2e --bench against_postgres`

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lotline_domain::gs1::canonical_lot_id;
use lotline_epcis::Json;
use lotline_epcis::hash::event_hash_json;
use lotline_epcis::stream::{Flow, Part, hash_context, read_document};
use lotline_proto::v1;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_testkit::BinaryServer;
use lotline_testkit::bench::{Imported, dir_bytes, import_document, peak_mib};
use lotline_testkit::epcis::GroundTruth;
use lotline_testkit::events::{harvest, register_org};
use postgres::{NoTls, Statement};
use tokio::runtime::Runtime;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Timed trace-back rounds per lot and side (after one untimed round that checks the answers),
/// unless `LOTLINE_BENCH_ROUNDS` says how many.
fn rounds() -> usize {
    std::env::var("LOTLINE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(20)
}
/// Bare round trips timed on each side (the "none" row).
const FLOOR_ROUNDS: usize = 500;
/// Lots traced per depth group, at most.
const LOTS_PER_GROUP: usize = 5;
/// Depth groups: a harvest lot alone, then two levels of transformation each.
const GROUPS: [&str; 5] = ["0", "1-2", "3-4", "5-6", "7+"];
/// Where Debian's PostgreSQL 15 keeps `initdb` and `pg_ctl` when they are not on PATH.
const DEBIAN_POSTGRES_BIN: &str = "/usr/lib/postgresql/15/bin";

fn main() {
    let sizes = lotline_testkit::bench::sizes("LOTLINE_BENCH_EVENTS", 1, &[100_000]);
    // The sync PostgreSQL client runs its own runtime, so it must never be called inside this
    // one: lotline's calls go through `block_on`, the rest of the bench is plain threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let postgres_bin = postgres_bin_dir();
    if postgres_bin.is_none() {
        println!(
            "PostgreSQL 15 is needed for the PostgreSQL side (initdb and pg_ctl on PATH or in \
             {DEBIAN_POSTGRES_BIN}; Debian: apt-get install postgresql); measuring lotline alone."
        );
    }

    let mut runs = Vec::new();
    for &size in &sizes {
        let run = measure(&rt, postgres_bin.as_deref(), size);
        print_run(&run);
        runs.push(run);
    }
    print_summary(&runs);
}

/// Everything one size measured.
struct Run {
    /// Events in the document: the unit of every per-event figure on both sides.
    events: u64,
    document_bytes: u64,
    lotline: LotlineLoad,
    postgres: Option<PostgresLoad>,
    groups: Vec<GroupFigures>,
    /// What lotline's store holds per key prefix, read after the server stopped.
    footprint: Vec<lotline_store::PrefixFootprint>,
}

struct LotlineLoad {
    /// What the importer sent and the server accepted (the events and the master-data
    /// elements), how long it took and what it used.
    imported: Imported,
    server_mib: f64,
    disk_bytes: u64,
}

struct PostgresLoad {
    events: u64,
    edges: u64,
    seconds: f64,
    disk_bytes: u64,
}

/// Trace-back figures of one depth group.
struct GroupFigures {
    label: &'static str,
    lots: usize,
    /// Origins per traced lot, on average (lotline's answers).
    origins: usize,
    lotline: Latency,
    /// The median of each lot's first question, the one that warms the caches.
    lotline_first_ms: f64,
    /// The median of questions asked right after one more event was recorded (on another
    /// lot): what lotline kept from the question before is checked against the grown log.
    lotline_grown_ms: f64,
    postgres: Option<Compared>,
}

/// PostgreSQL's side of a depth group, and how its answers compare with lotline's.
struct Compared {
    latency: Latency,
    /// The median of each lot's first query.
    first_ms: f64,
    /// Lots whose origin sets differ between lotline's and PostgreSQL's answers.
    origin_mismatches: usize,
    /// Lots with the same origins whose shares differ by more than 1e-6.
    share_mismatches: usize,
}

/// Median and p99 of a group's round trips, in milliseconds.
struct Latency {
    median_ms: f64,
    p99_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        // Nearest rank: the smallest sample with at least p of the samples at or below it.
        let rank = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1000.0
        };
        Latency {
            median_ms: rank(0.5),
            p99_ms: rank(0.99),
        }
    }
}

fn measure(rt: &Runtime, postgres_bin: Option<&Path>, size: usize) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let document = dir.path().join("chain.jsonld");
    let out = BufWriter::new(File::create(&document).expect("create document"));
    let truth =
        lotline_testkit::epcis::write_deep_chain_document(out, 11, size).expect("write document");
    let document_bytes = std::fs::metadata(&document).expect("document").len();

    // lotline: the real import into the real server.
    let data_dir = dir.path().join("data");
    let server = rt.block_on(BinaryServer::spawn(&data_dir));
    let imported = import_document(&server, &document);
    let lotline = LotlineLoad {
        imported,
        server_mib: peak_mib(server.pid()),
        disk_bytes: dir_bytes(&data_dir),
    };

    // PostgreSQL: the same document through COPY into a private cluster.
    let cluster = postgres_bin.map(Postgres::start);
    let (postgres, edges) = match &cluster {
        Some(cluster) => {
            let (load, edges) = load_postgres(&mut cluster.connect(), &document);
            assert_eq!(
                load.events, truth.events as u64,
                "PostgreSQL holds every event"
            );
            (Some(load), edges)
        }
        None => {
            let mut edges = Vec::new();
            read_events(&document, |row| {
                edges.extend(row.edges);
                Ok(())
            });
            (None, edges)
        }
    };
    let lineage = Lineage::new(&edges, &truth);

    let groups = trace_back(rt, &server, cluster.as_ref(), &lineage, &truth);
    drop(cluster);
    server.kill();
    let footprint = lotline_store::SledBackend::open(&data_dir, 64 << 20)
        .and_then(|backend| lotline_store::Store::new(std::sync::Arc::new(backend)).footprint())
        .expect("read the stopped store");
    Run {
        events: truth.events as u64,
        document_bytes,
        lotline,
        postgres,
        groups,
        footprint,
    }
}

// ---------------------------------------------------------------------------------------------
// lotline

// ---------------------------------------------------------------------------------------------
// The document as PostgreSQL rows

/// One event as the `events` table holds it, with the `lot_edges` rows it gives.
struct EventRow {
    event_id: String,
    event_type: Option<String>,
    event_time: Option<String>,
    biz_step: Option<String>,
    /// The event's JSON as the document wrote it (members in order, numbers as written).
    doc: String,
    edges: Vec<Edge>,
}

/// A transformation's output lot made (in part) from an input lot; lots in canonical form.
struct Edge {
    output: String,
    input: String,
    /// Decimal text as the document wrote it; absent when the document gave no quantity.
    input_qty: Option<String>,
    output_qty: Option<String>,
    event_id: String,
}

/// Reads the document's events one at a time, as a loader would, and hands each as a row to
/// `visit`; returns how many it read.
fn read_events(document: &Path, mut visit: impl FnMut(EventRow) -> io::Result<()>) -> usize {
    let open = || File::open(document).expect("open document");
    // Events without an eventID are known by their CBV 2.0 hash, which needs the vocabulary of
    // the whole document first.
    let context = hash_context(open()).expect("read the document's vocabulary");
    let info = read_document(open(), &mut |part| {
        if let Part::Event(_, event) = part {
            let event_id = match event.get("eventID").and_then(Json::as_str) {
                Some(id) => id.to_owned(),
                None => event_hash_json(&event, &context).map_err(|e| e.to_string())?,
            };
            let text = |key: &str| event.get(key).and_then(Json::as_str).map(str::to_owned);
            let edges = transformation_edges(&event, &event_id);
            let row = EventRow {
                event_type: text("type"),
                event_time: text("eventTime"),
                biz_step: text("bizStep"),
                doc: event.to_string(),
                edges,
                event_id,
            };
            visit(row).map_err(|e| e.to_string())?;
        }
        Ok(Flow::Continue)
    })
    .expect("read the document's events");
    info.events
}

/// A TransformationEvent's edges: one per (output, input) pair. Other events give none.
fn transformation_edges(event: &Json, event_id: &str) -> Vec<Edge> {
    if event.get("type").and_then(Json::as_str) != Some("TransformationEvent") {
        return Vec::new();
    }
    let inputs = lots(event, "inputQuantityList", "inputEPCList");
    let outputs = lots(event, "outputQuantityList", "outputEPCList");
    let mut edges = Vec::with_capacity(inputs.len() * outputs.len());
    for (output, output_qty) in &outputs {
        for (input, input_qty) in &inputs {
            edges.push(Edge {
                output: output.clone(),
                input: input.clone(),
                input_qty: input_qty.clone(),
                output_qty: output_qty.clone(),
                event_id: event_id.to_owned(),
            });
        }
    }
    edges
}

/// The lots of one side of a transformation, canonical, with their quantities: classes from the
/// quantity list, and instances from the EPC list (one unit each).
fn lots(event: &Json, quantities: &str, epcs: &str) -> Vec<(String, Option<String>)> {
    let list = |key: &str| event.get(key).and_then(Json::as_array).unwrap_or_default();
    let classes = list(quantities).iter().filter_map(|item| {
        let class = item.get("epcClass").and_then(Json::as_str)?;
        let quantity = match item.get("quantity") {
            Some(Json::Number(n)) => Some(n.clone()),
            _ => None,
        };
        Some((canonical(class), quantity))
    });
    let instances = list(epcs)
        .iter()
        .filter_map(Json::as_str)
        .map(|epc| (canonical(epc), Some("1".to_owned())));
    classes.chain(instances).collect()
}

/// A lot in the one form every edge uses, whether the document named it by LGTIN URN or by
/// Digital Link.
fn canonical(lot: &str) -> String {
    canonical_lot_id(lot).unwrap_or_else(|e| panic!("generated lot {lot} is not valid GS1: {e}"))
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// Finds `initdb` and `pg_ctl`: on PATH, else where Debian's PostgreSQL 15 puts them.
fn postgres_bin_dir() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from(DEBIAN_POSTGRES_BIN)])
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

/// A private PostgreSQL cluster in a temp dir on a free loopback port; stopped on drop, panics
/// included.
struct Postgres {
    pg_ctl: PathBuf,
    data: PathBuf,
    port: u16,
    /// The user and group the cluster runs as when this process is root (PostgreSQL refuses
    /// to run as root).
    run_as: Option<(u32, u32)>,
    /// Dropped after [`Drop::drop`] has stopped the cluster.
    dir: tempfile::TempDir,
}

impl Postgres {
    fn start(bin: &Path) -> Postgres {
        let dir = tempfile::tempdir().expect("temp dir");
        // A new directory is owned by this process's effective user.
        let root = std::fs::metadata(dir.path()).expect("temp dir").uid() == 0;
        let run_as = root.then(unprivileged_user);
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown temp dir");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free loopback port")
            .port();
        assert_ne!(port, 5432, "never the system PostgreSQL's port");
        let cluster = Postgres {
            pg_ctl: bin.join("pg_ctl"),
            data: dir.path().join("data"),
            port,
            run_as,
            dir,
        };
        // --no-sync only for initdb's own files: the server below runs with fsync on.
        cluster.run(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&cluster.data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
                .args(["--locale=C", "--no-sync"]),
            "initdb",
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            cluster.dir.path().display()
        );
        cluster.run(
            Command::new(&cluster.pg_ctl)
                .arg("-D")
                .arg(&cluster.data)
                .arg("-l")
                .arg(cluster.dir.path().join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
            "pg_ctl start",
        );
        cluster
    }

    /// Runs a PostgreSQL tool as the cluster's user; panics with its output if it fails.
    fn run(&self, command: &mut Command, what: &str) {
        command
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("run {what}: {e}"));
        assert!(
            output.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A connection over loopback TCP, as lotline's clients have; waits until it is accepted.
    fn connect(&self) -> postgres::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match postgres::Config::new()
                .host("127.0.0.1")
                .port(self.port)
                .user("postgres")
                .dbname("postgres")
                .connect(NoTls)
            {
                Ok(client) => return client,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => panic!(
                    "PostgreSQL on port {} accepts no connection: {e}",
                    self.port
                ),
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = Command::new(&self.pg_ctl);
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            stop.uid(uid).gid(gid);
        }
        let _ = stop.status();
    }
}

/// The `postgres` system user if there is one, else `nobody`, as (uid, gid).
fn unprivileged_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            if fields.next() != Some("postgres") {
                return None;
            }
            // name:password:uid:gid:...
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        })
        .unwrap_or((65_534, 65_534))
}

/// The schema a team would build: every event as JSON, and the lot graph as an edge table.
/// Keys and indexes come after the load.
const SCHEMA: &str = "
    CREATE TABLE events (
        seq bigserial,
        event_id text,
        event_type text,
        event_time timestamptz,
        biz_step text,
        doc jsonb
    );
    CREATE TABLE lot_edges (
        output_lot text,
        input_lot text,
        input_qty numeric,
        output_qty numeric,
        event_id text
    );";

const INDEXES: &str = "
    ALTER TABLE events ADD PRIMARY KEY (seq), ADD UNIQUE (event_id);
    CREATE INDEX lot_edges_output ON lot_edges (output_lot);
    CREATE INDEX lot_edges_input ON lot_edges (input_lot);
    ANALYZE events;
    ANALYZE lot_edges;";

/// Loads the document; returns the load's figures and the edges it loaded.
fn load_postgres(client: &mut postgres::Client, document: &Path) -> (PostgresLoad, Vec<Edge>) {
    client.batch_execute(SCHEMA).expect("create the schema");
    let started = Instant::now();
    let mut edges = Vec::new();
    let copy = client
        .copy_in("COPY events (event_id, event_type, event_time, biz_step, doc) FROM STDIN")
        .expect("COPY events");
    let mut copy = BufWriter::with_capacity(1 << 16, copy);
    let mut line = String::new();
    read_events(document, |row| {
        line.clear();
        push_fields(
            &mut line,
            &[
                Some(&row.event_id),
                row.event_type.as_deref(),
                row.event_time.as_deref(),
                row.biz_step.as_deref(),
                Some(&row.doc),
            ],
        );
        edges.extend(row.edges);
        copy.write_all(line.as_bytes())
    });
    let events = copy
        .into_inner()
        .map_err(|e| e.into_error())
        .expect("send the events")
        .finish()
        .expect("finish COPY events");

    let mut copy = BufWriter::with_capacity(
        1 << 16,
        client
            .copy_in(
                "COPY lot_edges (output_lot, input_lot, input_qty, output_qty, event_id) FROM STDIN",
            )
            .expect("COPY lot_edges"),
    );
    for edge in &edges {
        line.clear();
        push_fields(
            &mut line,
            &[
                Some(&edge.output),
                Some(&edge.input),
                edge.input_qty.as_deref(),
                edge.output_qty.as_deref(),
                Some(&edge.event_id),
            ],
        );
        copy.write_all(line.as_bytes()).expect("send an edge");
    }
    let edge_rows = copy
        .into_inner()
        .map_err(|e| e.into_error())
        .expect("send the edges")
        .finish()
        .expect("finish COPY lot_edges");
    client.batch_execute(INDEXES).expect("create the indexes");
    let seconds = started.elapsed().as_secs_f64();

    let disk_bytes: i64 = client
        .query_one(
            "SELECT pg_total_relation_size('events') + pg_total_relation_size('lot_edges')",
            &[],
        )
        .expect("table sizes")
        .get(0);
    let load = PostgresLoad {
        events,
        edges: edge_rows,
        seconds,
        disk_bytes: u64::try_from(disk_bytes).expect("a size"),
    };
    (load, edges)
}

/// Appends one row in COPY's text format: tab-separated, `\N` for NULL, backslash escapes.
fn push_fields(line: &mut String, fields: &[Option<&str>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            line.push('\t');
        }
        let Some(text) = field else {
            line.push_str("\\N");
            continue;
        };
        for c in text.chars() {
            match c {
                '\\' => line.push_str("\\\\"),
                '\t' => line.push_str("\\t"),
                '\n' => line.push_str("\\n"),
                '\r' => line.push_str("\\r"),
                c => line.push(c),
            }
        }
    }
    line.push('\n');
}

/// Every origin lot of `$1` (a lot reached that no edge makes) with its share. Output `j` of a
/// transformation with inputs `q_i` and outputs `Q_j` holds `q_i / ΣQ` of input `i` per unit;
/// ΣQ is summed over the event's edges from the same input (one per output), which the
/// `input_lot` index finds. Whether a lot is an origin is asked per row reached, where the
/// `output_lot` index answers it (a `NOT EXISTS` over the whole walk would be planned as an
/// anti-join that scans the edge table).
const TRACE_BACK: &str = "
    WITH RECURSIVE walk(lot, per_unit, origin) AS (
        SELECT $1::text, 1::numeric,
               NOT EXISTS (SELECT 1 FROM lot_edges x WHERE x.output_lot = $1::text)
      UNION ALL
        SELECT e.input_lot,
               w.per_unit * e.input_qty / (
                   SELECT sum(s.output_qty) FROM lot_edges s
                   WHERE s.input_lot = e.input_lot AND s.event_id = e.event_id),
               NOT EXISTS (SELECT 1 FROM lot_edges x WHERE x.output_lot = e.input_lot)
        FROM walk w
        JOIN lot_edges e ON e.output_lot = w.lot
    )
    SELECT lot, (sum(per_unit) / sum(sum(per_unit)) OVER ())::float8 AS share
    FROM walk
    WHERE origin
    GROUP BY lot";

// ---------------------------------------------------------------------------------------------
// Trace-back

/// The lot graph as the loader read it: each output lot's inputs.
struct Lineage {
    inputs: HashMap<String, BTreeSet<String>>,
}

impl Lineage {
    /// Builds the graph and checks it against the generator's ground truth: every sampled lot
    /// has exactly the inputs the generator made it from.
    fn new(edges: &[Edge], truth: &GroundTruth) -> Lineage {
        let mut inputs: HashMap<String, BTreeSet<String>> = HashMap::new();
        for edge in edges {
            inputs
                .entry(edge.output.clone())
                .or_default()
                .insert(edge.input.clone());
        }
        let lineage = Lineage { inputs };
        for (lot, sampled) in &truth.lots {
            assert_eq!(
                lineage.inputs_of(lot),
                sampled.inputs,
                "the loader's edges for {lot} are the generator's"
            );
        }
        lineage
    }

    fn inputs_of(&self, lot: &str) -> BTreeSet<String> {
        self.inputs.get(lot).cloned().unwrap_or_default()
    }

    /// The longest chain of inputs from `lot` down to a lot nothing made (a harvest).
    fn depth(&self, lot: &str, memo: &mut HashMap<String, usize>) -> usize {
        if let Some(&depth) = memo.get(lot) {
            return depth;
        }
        // Marked before the walk, so that a cycle (which the generator never makes) ends.
        memo.insert(lot.to_owned(), 0);
        let depth = self.inputs.get(lot).map_or(0, |inputs| {
            1 + inputs
                .iter()
                .map(|input| self.depth(input, memo))
                .max()
                .unwrap_or(0)
        });
        memo.insert(lot.to_owned(), depth);
        depth
    }
}

/// The index in [`GROUPS`] of a depth.
fn group_of(depth: usize) -> usize {
    depth.div_ceil(2).min(GROUPS.len() - 1)
}

/// The org whose harvests grow the log between questions (a lot of its own each).
const GROWER: &str = "bench-grower";

/// Origin lot (canonical) → share.
type Origins = BTreeMap<String, f64>;

fn lotline_trace(
    rt: &Runtime,
    client: &mut ProvenanceServiceClient<Channel>,
    lot: &str,
) -> (Duration, Origins) {
    let request = v1::TraceBackRequest {
        lot: lot.to_owned(),
        ..Default::default()
    };
    let started = Instant::now();
    let answer = rt
        .block_on(client.trace_back(request))
        .expect("lotline trace-back")
        .into_inner();
    let elapsed = started.elapsed();
    let origins = answer
        .origins
        .into_iter()
        .map(|o| {
            let share = o.share.parse().expect("a decimal share");
            (canonical(&o.lot), share)
        })
        .collect();
    (elapsed, origins)
}

fn postgres_trace(
    client: &mut postgres::Client,
    query: &Statement,
    lot: &str,
) -> (Duration, Origins) {
    let started = Instant::now();
    let rows = client.query(query, &[&lot]).expect("PostgreSQL trace-back");
    let elapsed = started.elapsed();
    let origins = rows
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, f64>(1)))
        .collect();
    (elapsed, origins)
}

/// Traces up to [`LOTS_PER_GROUP`] sampled lots of each depth group on both sides.
fn trace_back(
    rt: &Runtime,
    server: &BinaryServer,
    cluster: Option<&Postgres>,
    lineage: &Lineage,
    truth: &GroundTruth,
) -> Vec<GroupFigures> {
    let mut memo = HashMap::new();
    let mut chosen: Vec<Vec<&str>> = vec![Vec::new(); GROUPS.len()];
    // The generator's sample first; the deep lots are too few to be sampled, so groups it
    // leaves short are filled from the loader's graph, in lot order.
    let mut made: Vec<&str> = lineage.inputs.keys().map(String::as_str).collect();
    made.sort_unstable();
    for lot in truth.lots.keys().map(String::as_str).chain(made) {
        let group = &mut chosen[group_of(lineage.depth(lot, &mut memo))];
        if group.len() < LOTS_PER_GROUP && !group.contains(&lot) {
            group.push(lot);
        }
    }

    let mut lotline = rt
        .block_on(ProvenanceServiceClient::connect(server.url()))
        .expect("connect to lotline");
    // Grows the log by one harvest of a lot of its own between questions.
    let mut recorder = rt
        .block_on(EventServiceClient::connect(server.url()))
        .expect("connect to lotline");
    let mut grown_by = 0u64;
    let mut grow = |rt: &Runtime| {
        let event = if grown_by == 0 {
            register_org(GROWER)
        } else {
            harvest(
                &format!("bench-grown-{grown_by}"),
                GROWER,
                &format!("BENCH-GROWN-{grown_by}"),
                1,
            )
        };
        grown_by += 1;
        let outcome = rt
            .block_on(recorder.record(v1::RecordRequest { event: Some(event) }))
            .expect("record an event")
            .into_inner();
        assert!(
            matches!(
                outcome.outcome.and_then(|o| o.result),
                Some(v1::outcome::Result::Accepted(_))
            ),
            "the event that grows the log was not accepted"
        );
    };
    grow(rt);
    let mut postgres = cluster.map(|cluster| {
        let mut client = cluster.connect();
        let query = client.prepare(TRACE_BACK).expect("prepare the trace-back");
        (client, query)
    });

    // The floor under every answer: a round trip that does no work on either side, timed the
    // same way (gRPC's health check; `SELECT 1`).
    let channel = rt
        .block_on(Channel::from_shared(server.url()).expect("url").connect())
        .expect("connect to lotline");
    let mut health = HealthClient::new(channel);
    let mut lotline_samples = Vec::new();
    let mut postgres_samples = Vec::new();
    for _ in 0..FLOOR_ROUNDS {
        let started = Instant::now();
        rt.block_on(health.check(HealthCheckRequest::default()))
            .expect("lotline health check");
        lotline_samples.push(started.elapsed());
        if let Some((client, _)) = postgres.as_mut() {
            let started = Instant::now();
            client.query("SELECT 1", &[]).expect("SELECT 1");
            postgres_samples.push(started.elapsed());
        }
    }
    let floor = Latency::of(lotline_samples);
    let mut figures = vec![GroupFigures {
        label: "none",
        lots: 0,
        origins: 0,
        lotline_first_ms: floor.median_ms,
        lotline_grown_ms: floor.median_ms,
        lotline: floor,
        postgres: postgres.is_some().then(|| {
            let latency = Latency::of(postgres_samples);
            Compared {
                first_ms: latency.median_ms,
                latency,
                origin_mismatches: 0,
                share_mismatches: 0,
            }
        }),
    }];
    for (label, lots) in GROUPS.into_iter().zip(chosen) {
        if lots.is_empty() {
            continue;
        }
        let mut lotline_samples = Vec::new();
        let mut postgres_samples = Vec::new();
        let mut lotline_first = Vec::new();
        let mut lotline_grown = Vec::new();
        let mut postgres_first = Vec::new();
        let mut origins = 0;
        let mut origin_mismatches = 0;
        let mut share_mismatches = 0;
        for lot in &lots {
            // A first round, timed apart, warms both sides and compares their answers.
            let (first, expected) = lotline_trace(rt, &mut lotline, lot);
            lotline_first.push(first);
            assert!(!expected.is_empty(), "lotline found no origin for {lot}");
            origins += expected.len();
            if let Some((client, query)) = postgres.as_mut() {
                let (first, found) = postgres_trace(client, query, lot);
                postgres_first.push(first);
                assert!(!found.is_empty(), "PostgreSQL found no origin for {lot}");
                if !expected.keys().eq(found.keys()) {
                    origin_mismatches += 1;
                } else if expected
                    .values()
                    .zip(found.values())
                    .any(|(a, b)| (a - b).abs() > 1e-6)
                {
                    share_mismatches += 1;
                }
            }
            // The sides alternate, so that both see the same machine.
            for _ in 0..rounds() {
                lotline_samples.push(lotline_trace(rt, &mut lotline, lot).0);
                if let Some((client, query)) = postgres.as_mut() {
                    postgres_samples.push(postgres_trace(client, query, lot).0);
                }
                grow(rt);
                lotline_grown.push(lotline_trace(rt, &mut lotline, lot).0);
            }
        }
        figures.push(GroupFigures {
            label,
            lots: lots.len(),
            origins: origins / lots.len(),
            lotline: Latency::of(lotline_samples),
            lotline_first_ms: Latency::of(lotline_first).median_ms,
            lotline_grown_ms: Latency::of(lotline_grown).median_ms,
            postgres: postgres.is_some().then(|| Compared {
                latency: Latency::of(postgres_samples),
                first_ms: Latency::of(postgres_first).median_ms,
                origin_mismatches,
                share_mismatches,
            }),
        });
    }
    figures
}

// ---------------------------------------------------------------------------------------------
// Reporting

/// The cores this machine gives the bench.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_run(run: &Run) {
    let per_event = |bytes: u64| bytes as f64 / run.events as f64;
    println!();
    println!(
        "== {} events (document {:.1} MiB, {:.0} B/event) ==",
        run.events,
        mib(run.document_bytes),
        per_event(run.document_bytes)
    );
    let l = &run.lotline;
    let i = &l.imported;
    println!(
        "lotline     import {:>7.1} s {:>9.0} events/s   on disk {:>7.1} MiB {:>6.0} B/event   {} records (events and master data), peak importer {:.1} MiB, server {:.1} MiB",
        i.seconds,
        run.events as f64 / i.seconds,
        mib(l.disk_bytes),
        per_event(l.disk_bytes),
        i.records,
        i.importer_mib,
        l.server_mib
    );
    println!(
        "            CPU: importer {:.1} s, server {:.1} s ({:.0} and {:.0} µs per event; {:.0} % of the machine's {} cores during the import)",
        i.importer_cpu,
        i.server_cpu,
        i.importer_cpu * 1e6 / run.events as f64,
        i.server_cpu * 1e6 / run.events as f64,
        100.0 * (i.importer_cpu + i.server_cpu) / (i.seconds * cores() as f64),
        cores()
    );
    if let Some(p) = &run.postgres {
        println!(
            "PostgreSQL  load   {:>7.1} s {:>9.0} events/s   on disk {:>7.1} MiB {:>6.0} B/event   {} event rows, {} edge rows (COPY, keys, indexes, ANALYZE)",
            p.seconds,
            run.events as f64 / p.seconds,
            mib(p.disk_bytes),
            per_event(p.disk_bytes),
            p.events,
            p.edges
        );
    }
    println!(
        "lotline's store per event, before sled's own overhead (key prefixes: ARCHITECTURE.md):"
    );
    println!("  prefix    keys/event   key B/event  value B/event");
    for f in &run.footprint {
        println!(
            "  {:<6} {:>12.2} {:>13.1} {:>14.1}",
            (f.prefix as char).escape_default().to_string(),
            f.keys as f64 / run.events as f64,
            per_event(f.key_bytes),
            per_event(f.value_bytes)
        );
    }
    println!("trace-back, {} rounds per lot:", rounds());
    print_groups_header();
    for g in &run.groups {
        print_group(None, g);
    }
}

fn print_groups_header() {
    println!(
        "{:>10} {:>6} {:>5} {:>8} {:>12} {:>8} {:>8} {:>13} {:>8} {:>8} {:>11} {:>9} {:>8} {:>9} {:>9} {:>8}",
        "events",
        "depth",
        "lots",
        "origins",
        "lotline med",
        "p99 ms",
        "first",
        "Postgres med",
        "p99 ms",
        "first",
        "lotline/PG",
        "first ×",
        "grown",
        "grown ×",
        "origins≠",
        "shares≠"
    );
    println!(
        "{:>17} (depth none: a round trip that does no work, gRPC's health check and SELECT 1;",
        ""
    );
    println!(
        "{:>17} grown: lotline's median right after one more event was recorded, against PostgreSQL's median)",
        ""
    );
}

fn print_group(events: Option<u64>, g: &GroupFigures) {
    let events = events.map(|n| n.to_string()).unwrap_or_default();
    let [
        pg_median,
        pg_p99,
        pg_first,
        ratio,
        first_ratio,
        grown_ratio,
        origins,
        shares,
    ] = match &g.postgres {
        Some(p) => [
            format!("{:.2}", p.latency.median_ms),
            format!("{:.2}", p.latency.p99_ms),
            format!("{:.2}", p.first_ms),
            format!("{:.2}x", g.lotline.median_ms / p.latency.median_ms),
            format!("{:.2}x", g.lotline_first_ms / p.first_ms),
            format!("{:.2}x", g.lotline_grown_ms / p.latency.median_ms),
            p.origin_mismatches.to_string(),
            p.share_mismatches.to_string(),
        ],
        None => ["-"; 8].map(String::from),
    };
    println!(
        "{:>10} {:>6} {:>5} {:>8} {:>12.2} {:>8.2} {:>8.2} {:>13} {:>8} {:>8} {:>11} {:>9} {:>8.2} {:>9} {:>9} {:>8}",
        events,
        g.label,
        g.lots,
        g.origins,
        g.lotline.median_ms,
        g.lotline.p99_ms,
        g.lotline_first_ms,
        pg_median,
        pg_p99,
        pg_first,
        ratio,
        first_ratio,
        g.lotline_grown_ms,
        grown_ratio,
        origins,
        shares
    );
}

fn print_summary(runs: &[Run]) {
    println!();
    println!("== Summary: import/load ==");
    println!(
        "{:>10} {:>16} {:>16} {:>10} {:>16} {:>16} {:>14} {:>12}",
        "events",
        "lotline ev/s",
        "Postgres ev/s",
        "rate ×",
        "lotline B/ev",
        "Postgres B/ev",
        "importer MiB",
        "server MiB"
    );
    for run in runs {
        let lotline_rate = run.events as f64 / run.lotline.imported.seconds;
        let lotline_bytes = run.lotline.disk_bytes as f64 / run.events as f64;
        let (pg_rate, ratio, pg_bytes) = match &run.postgres {
            Some(p) => {
                let rate = run.events as f64 / p.seconds;
                (
                    format!("{rate:.0}"),
                    format!("{:.2}", lotline_rate / rate),
                    format!("{:.0}", p.disk_bytes as f64 / run.events as f64),
                )
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:>10} {:>16.0} {:>16} {:>10} {:>16.0} {:>16} {:>14.1} {:>12.1}",
            run.events,
            lotline_rate,
            pg_rate,
            ratio,
            lotline_bytes,
            pg_bytes,
            run.lotline.imported.importer_mib,
            run.lotline.server_mib
        );
    }
    println!("(rate × is lotline's events/s over PostgreSQL's)");
    println!();
    println!(
        "== Summary: trace-back (ms per lot, {} rounds) ==",
        rounds()
    );
    print_groups_header();
    for run in runs {
        for g in &run.groups {
            print_group(Some(run.events), g);
        }
    }
}
