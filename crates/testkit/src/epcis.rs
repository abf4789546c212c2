//! A generated EPCIS 2.0 document of cocoa, coffee and cotton supply chains, for import and
//! export tests and benchmarks at any size, and its ground truth computed here, independently
//! of lotline.
//!
//! [`write_chain_document`] streams one `EPCISDocument` to any writer: the master data of every
//! party, location and product class the events use (docs/epcis.md, "Master data"), then the
//! events in time order. Co-operatives collect harvests from their member farms (harvest, ship,
//! receive), aggregate them into one lot, ship it to a processor and are paid for it; the
//! processor, once it holds a few co-op lots, makes them into a first product (cocoa nibs,
//! green coffee, lint), that into a second (liquor, roasted coffee, yarn), sometimes splits
//! that into two (butter and powder, ground coffee and chaff, fabric and waste), and ships the
//! result to a brand. Co-op `c` and processor `p` are of chain `c % 3` and `p % 3`. Every lot is written alternately as its LGTIN URN and as its GS1 Digital Link, and
//! locations alternately as SGLN URN and Digital Link; every check digit is computed.
//!
//! Nothing per event is kept: identifiers are derived from indexes, a processor holds at most
//! three pending lots, and the ground truth follows a bounded reservoir sample of lots.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufWriter, Write};

use crate::chains::Rng;

/// How many lots the ground truth follows at most.
pub const SAMPLED_LOTS: usize = 200;

/// The most events one co-op cycle (with the processor batch it may trigger) writes: five
/// harvests with their shipments and receipts, an aggregation, packing on a pallet, a shipment,
/// a receipt, unpacking and a payment, then roasting, grinding, pressing, a shipment and a
/// receipt.
const MAX_CYCLE_EVENTS: usize = 5 * 3 + 6 + 5;

/// The most events a brand's making adds to a cycle in a deep history: three blends and the
/// packing.
const MAX_MAKING_EVENTS: usize = 4;

/// How many lots each of a brand's three blending steps takes at once (a deep history): its
/// depth 7 lots come from about 100 processor batches, several hundred harvest lots.
const MAKING_FAN_IN: [usize; 3] = [4, 5, 5];

/// The events [`Doc::plant_events`] writes.
const PLANTED_EVENTS: usize = 17;

/// What a test can check after importing the generated document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroundTruth {
    /// Events written.
    pub events: usize,
    /// EPCIS event type (`ObjectEvent`, `TransformationEvent`, `TransactionEvent`) → count.
    pub event_types: BTreeMap<String, usize>,
    /// lotline event kind each event becomes (`harvest`, `ship`, `receive`, `transform`,
    /// `pay`) → count.
    pub kinds: BTreeMap<String, usize>,
    /// Parties, locations (plots and sites) and product classes in the master data.
    pub parties: usize,
    pub plots: usize,
    pub sites: usize,
    pub product_classes: usize,
    /// The sampled lots, by canonical Digital Link (`https://id.gs1.org/01/{GTIN}/10/{lot}`).
    pub lots: BTreeMap<String, LotTruth>,
    /// The problems [`write_planted_document`] planted; none in a clean history.
    pub planted: Vec<PlantedProblem>,
    /// The `eventID` of every event written to plant them.
    pub planted_events: BTreeSet<String>,
    /// Lots only planted events name.
    pub planted_lots: BTreeSet<String>,
    /// A deep history's finished lots (depth 8, what its brands packed), each with its origins
    /// and plots, by canonical Digital Link; none in other histories.
    pub finished: BTreeMap<String, LotTruth>,
}

/// A problem planted in a generated history: the anomaly lotline must list for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedProblem {
    /// The anomaly kind (`yield_out_of_band`, `unknown_origin`, …).
    pub kind: &'static str,
    /// The event it is charged to, when it is an event's (every planted event has an `eventID`).
    pub event_id: Option<String>,
    /// For a plot: its id (SGLN URN) in the master data.
    pub plot: Option<String>,
    /// For a lot's own anomaly (unknown origin): the lot, as its canonical Digital Link.
    pub lot: Option<String>,
}

/// One sampled lot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LotTruth {
    /// The same lot as an LGTIN URN.
    pub lgtin: String,
    /// lotline product name (`cocoa_beans`, `cocoa_nibs`, `cocoa_liquor`, …).
    pub product: String,
    /// Kilograms the lot was created with.
    pub kg: u64,
    /// The harvest lots it comes from (a harvest lot is its own origin).
    pub origins: BTreeSet<String>,
    /// The plots (SGLN URNs) of those harvests.
    pub plots: BTreeSet<String>,
    /// The lots a transformation made it from (empty for a harvest).
    pub inputs: BTreeSet<String>,
    /// Every lot downstream of it in the document, transitively.
    pub into: BTreeSet<String>,
}

/// Writes an EPCISDocument of about `events` events (exactly `events`, unless a chain cannot be
/// cut shorter) to `out`, deterministic per `seed`, and returns its ground truth.
pub fn write_chain_document<W: Write>(out: W, seed: u64, events: usize) -> io::Result<GroundTruth> {
    write_chain::<io::Sink, W>(None, out, seed, events, Shape::CLEAN)
}

/// [`write_chain_document`] with brands that make what they receive into products of their
/// own, so that lineage runs deep: each processor ships to its chain's brand (brand 0, 1 or 2),
/// which blends four received lots into one, five of those into one, five of those into one
/// (depth 7, a few hundred harvest lots), and packs that into a finished lot (depth 8). The
/// brands' products are in the master data and their yields in [`rules_toml`]. For trace-back at
/// the depths a brand's product has (issue 16's "depth 7–8, about 700 origins").
pub fn write_deep_chain_document<W: Write>(
    out: W,
    seed: u64,
    events: usize,
) -> io::Result<GroundTruth> {
    write_chain::<io::Sink, W>(None, out, seed, events, Shape::DEEP)
}

/// What a generated history holds beyond the clean chains.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Problems planted ([`write_planted_document`]).
    plant: bool,
    /// Brands that make products of their own ([`write_deep_chain_document`]).
    deep: bool,
}

impl Shape {
    const CLEAN: Shape = Shape {
        plant: false,
        deep: false,
    };
    const PLANTED: Shape = Shape {
        plant: true,
        deep: false,
    };
    const DEEP: Shape = Shape {
        plant: false,
        deep: true,
    };
}

/// [`write_chain_document`] with one problem of each kind an auditor must be told of planted
/// in it (listed in the truth's `planted`): a co-op aggregation that yields half as much again
/// (`yield_out_of_band`), a co-op consuming a lot nobody made (`unknown_origin`), a delivery
/// shipped before its harvest (`dated_before_creation`), a farm delivering to a co-op it is not
/// a member of that then sells the bulk lot as certified (`non_member_delivery`, at the
/// aggregation and at the sale), a plot written to 3 decimals and one across the border
/// (`plot_not_eudr_grade`). Everything else is as clean as the clean history.
pub fn write_planted_document<W: Write>(
    out: W,
    seed: u64,
    events: usize,
) -> io::Result<GroundTruth> {
    write_chain::<io::Sink, W>(None, out, seed, events, Shape::PLANTED)
}

/// The same history as [`write_chain_document`], as supply chains exchange it: the master data
/// alone in one document (`master`, with an empty event list), the events in another
/// (`events_out`, with no master data), each one line per event.
pub fn write_chain_documents<M: Write, W: Write>(
    master: M,
    events_out: W,
    seed: u64,
    events: usize,
) -> io::Result<GroundTruth> {
    write_chain(Some(master), events_out, seed, events, Shape::CLEAN)
}

/// An event document of the generator's (one event per line) with its events in an order
/// shuffled by `seed`: the same history, delivered out of order.
pub fn shuffle_events(document: &str, seed: u64) -> String {
    const EVENT: &str = "      {\"type\":";
    let mut head = String::new();
    let mut events: Vec<&str> = Vec::new();
    let mut tail = String::new();
    for line in document.split_inclusive('\n') {
        if line.starts_with(EVENT) {
            events.push(line.trim_end().trim_end_matches(','));
        } else if events.is_empty() {
            head.push_str(line);
        } else {
            tail.push_str(line);
        }
    }
    let mut rng = Rng::new(seed);
    for i in (1..events.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        events.swap(i, j);
    }
    format!("{head}{}\n{tail}", events.join(",\n"))
}

/// The opening of every document the generator writes, up to its header.
fn preamble(out: &mut impl Write) -> io::Result<()> {
    out.write_all(
        b"{\n  \"@context\": [\n    \"https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld\",\n    {\"lotline\": \"https://ns.lotline.dev/epcis/\"}\n  ],\n",
    )?;
    writeln!(
        out,
        "  \"type\": \"EPCISDocument\",\n  \"schemaVersion\": \"2.0\",\n  \"creationDate\": \"{}\",",
        timestamp(START + 400 * DAY)
    )
}

/// The closing of every document the generator writes, after its last event.
const DOCUMENT_END: &str = "\n    ]\n  }\n}\n";

/// Splits an event document of the generator's (one event per line) into documents of at most
/// `per_part` events each, the same header on each, as a client splits a history too large for
/// one capture; `part(n)` gives the writer of part `n`. Answers the number of parts.
pub fn split_events<R: io::BufRead, W: Write>(
    document: R,
    per_part: usize,
    mut part: impl FnMut(usize) -> io::Result<W>,
) -> io::Result<usize> {
    const EVENT: &str = "      {\"type\":";
    let mut head = String::new();
    let mut tail = String::new();
    let mut out: Option<BufWriter<W>> = None;
    let (mut parts, mut in_part) = (0usize, 0usize);
    for line in document.lines() {
        let line = line?;
        if !line.starts_with(EVENT) {
            if parts == 0 {
                head.push_str(&line);
                head.push('\n');
            } else {
                tail.push_str(&line);
                tail.push('\n');
            }
            continue;
        }
        if out.is_none() || in_part == per_part.max(1) {
            if let Some(mut done) = out.take() {
                done.write_all(DOCUMENT_END.as_bytes())?;
                done.flush()?;
            }
            let mut next = BufWriter::new(part(parts)?);
            next.write_all(head.trim_end_matches('\n').as_bytes())?;
            out = Some(next);
            parts += 1;
            in_part = 0;
        }
        let event = line.trim_end().trim_end_matches(',');
        if let Some(out) = out.as_mut() {
            out.write_all(if in_part == 0 { b"\n" } else { b",\n" })?;
            out.write_all(event.as_bytes())?;
        }
        in_part += 1;
    }
    if let Some(mut done) = out.take() {
        done.write_all(DOCUMENT_END.as_bytes())?;
        done.flush()?;
    }
    if parts > 0 && format!("\n{tail}") != DOCUMENT_END {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a document of the generator's: it ends {tail:?}"),
        ));
    }
    Ok(parts)
}

/// The site where [`write_unit_events`] commissions its units (an SGLN URN).
pub fn unit_site() -> String {
    World::brand(0).sgln()
}

/// An event document (one event per line, no master data) of `events` ObjectEvents at the site
/// of the first brand of [`write_chain_document`]'s world (whatever its size), each
/// commissioning one to four serialised units of the brand's product (SGTINs in `epcList`),
/// deterministic per `seed`. Answers the units' ids, each in exactly one event.
pub fn write_unit_events<W: Write>(out: W, seed: u64, events: usize) -> io::Result<Vec<String>> {
    let brand = World::brand(0);
    let mut rng = Rng::new(seed ^ 0x756e_6974);
    let mut out = BufWriter::new(out);
    let mut units = Vec::new();
    preamble(&mut out)?;
    out.write_all(b"  \"epcisBody\": {\n    \"eventList\": [")?;
    let step = (365 * DAY / events.max(1) as u64).clamp(1, 3600);
    for n in 0..events {
        let count = 1 + rng.below(4) as usize;
        let first = units.len();
        for i in 0..count {
            units.push(format!(
                "urn:epc:id:sgtin:{}.0{:05}.{}",
                brand.prefix,
                100 + (n + i) % 7,
                seed * 100_000_000 + (first + i) as u64
            ));
        }
        let list = units[first..]
            .iter()
            .map(|u| format!("\"{u}\""))
            .collect::<Vec<_>>()
            .join(",");
        write!(
            out,
            "{}      {{\"type\":\"ObjectEvent\",\"eventID\":\"urn:uuid:{:08x}-{:04x}-4000-9000-{n:012x}\",\
             \"eventTime\":\"{}\",\"eventTimeZoneOffset\":\"+00:00\",\"action\":\"ADD\",\
             \"bizStep\":\"commissioning\",\"disposition\":\"active\",\"epcList\":[{list}],\
             \"bizLocation\":{{\"id\":\"{}\"}}}}",
            if n == 0 { "\n" } else { ",\n" },
            (seed >> 32) as u32,
            seed as u16,
            timestamp(START + 200 * DAY + n as u64 * step),
            brand.sgln()
        )?;
    }
    out.write_all(DOCUMENT_END.as_bytes())?;
    out.flush()?;
    Ok(units)
}

/// A master-data document alone (an empty event list) of co-operatives with `farms` member
/// farms in all, each with its plot, and the processors and brands they sell to; returns the
/// number of vocabulary elements (parties, locations, product classes).
pub fn write_master_document<W: Write>(out: W, seed: u64, farms: usize) -> io::Result<usize> {
    let coops = 10;
    let world = World {
        coops,
        farms: (farms / coops).max(1),
        procs: 3,
        brands: 4,
        deep: false,
    };
    write_master(out, seed, &world)?;
    Ok(world.parties()
        + world.coops * world.farms
        + world.coops
        + world.procs
        + world.brands
        + world.coops
        + 4 * world.procs)
}

fn write_master<W: Write>(out: W, seed: u64, world: &World) -> io::Result<()> {
    let mut md = Doc {
        out: BufWriter::new(out),
        rng: Rng::new(0),
        sampler: Rng::new(0),
        seed,
        clock: START,
        step: 1,
        written: 0,
        lots_made: 0,
        pallets: 0,
        plant: false,
        force_id: false,
        last_id: String::new(),
        mention: 0,
        stock: Vec::new(),
        truth: GroundTruth::default(),
    };
    md.preamble()?;
    md.master_data(world)?;
    md.out
        .write_all(b"  \"epcisBody\": {\n    \"eventList\": [\n    ]\n  }\n}\n")?;
    md.out.flush()
}

fn write_chain<M: Write, W: Write>(
    master: Option<M>,
    out: W,
    seed: u64,
    events: usize,
    shape: Shape,
) -> io::Result<GroundTruth> {
    let mut world = World::new(events);
    world.deep = shape.deep;
    let mut doc = Doc {
        out: BufWriter::new(out),
        rng: Rng::new(seed ^ 0x6c6f_746c_696e_6565),
        sampler: Rng::new(seed.rotate_left(17) ^ 0x5eed),
        seed,
        clock: START,
        step: (365 * DAY / events.max(1) as u64).clamp(1, 3600),
        written: 0,
        lots_made: 0,
        pallets: 0,
        plant: false,
        force_id: false,
        last_id: String::new(),
        mention: 0,
        stock: Vec::new(),
        truth: GroundTruth::default(),
    };
    doc.plant = shape.plant;
    if world.deep {
        doc.stock = vec![Default::default(); CHAINS.len()];
    }
    doc.truth.parties = world.parties();
    doc.truth.plots = world.coops * world.farms;
    doc.truth.sites = world.coops + world.procs + world.brands;
    doc.truth.product_classes = world.coops + 4 * world.procs;
    if world.deep {
        doc.truth.product_classes += 4 * CHAINS.len();
    }

    match master {
        None => {
            doc.preamble()?;
            doc.master_data(&world)?;
        }
        Some(master) => {
            write_master(master, seed, &world)?;
            doc.preamble()?;
        }
    }
    doc.out
        .write_all(b"  \"epcisBody\": {\n    \"eventList\": [")?;
    let mut pending: Vec<Vec<Lot>> = vec![Vec::new(); world.procs];
    let mut cycle = 0usize;
    let reserved = if shape.plant { PLANTED_EVENTS } else { 0 };
    let cycle_events = MAX_CYCLE_EVENTS + if world.deep { MAX_MAKING_EVENTS } else { 0 };
    while doc.written + cycle_events + reserved <= events {
        let coop = cycle % world.coops;
        let proc = coop % world.procs;
        doc.coop_cycle(&world, coop, proc, &mut pending[proc])?;
        cycle += 1;
    }
    if shape.plant {
        doc.plant_events(&world)?;
    }
    // The rest (fewer events than a cycle): harvests at farms of the first co-op.
    while doc.written < events {
        let farm = doc.rng.below(world.farms as u64) as usize;
        doc.harvest(0, farm)?;
    }
    doc.out.write_all(DOCUMENT_END.as_bytes())?;
    doc.out.flush()?;
    Ok(doc.truth)
}

/// A rules file (`serve --rules`) with the yields the generator's chains work to, in place of
/// the built-in ones (and with no reference prices): its co-ops
/// bulk their members' lots at 98.5-100 %, its processors make 80-85 % of the first product,
/// 97-99 % of the second, and split it into 96-100 % (the reference bands are for real
/// processes; these are the generated ones).
pub fn rules_toml() -> String {
    let mut out = String::from("replace_defaults = true\n\n");
    for kind in &CHAINS {
        for (process, min, max) in [
            ("aggregation", "0.98", "1"),
            (kind.processes[0], "0.79", "0.86"),
            (kind.processes[1], "0.96", "1"),
            (kind.processes[2], "0.95", "1.01"),
            (kind.making[0], "0.97", "1"),
            (kind.making[1], "0.97", "1"),
            (kind.making[2], "0.97", "1"),
            (kind.making[3], "0.99", "1.01"),
        ] {
            out.push_str(&format!(
                "[[bands]]\nchain = \"{}\"\nprocess = \"{process}\"\nmin = \"{min}\"\nmax = \"{max}\"\nsource = \"the generator's yields\"\n\n",
                kind.chain
            ));
        }
    }
    out
}

/// The membership confirmations the co-operatives of a generated history of about `events`
/// events record for their member farms (every farm a member from 2024-01-01): a farm is covered
/// by its co-op's certificate only on dates the co-op confirms it, and a confirmation has no
/// EPCIS form (a co-op records it with `lotline post` or gRPC).
pub fn member_confirmations(events: usize) -> Vec<lotline_proto::v1::Event> {
    let world = World::new(events);
    let mut out = Vec::with_capacity(world.coops * world.farms);
    for c in 0..world.coops {
        let coop = format!("gln-{}", World::coop(c).gln);
        for f in 0..world.farms {
            out.push(lotline_proto::build::event(
                format!("confirm-{c}-{f}"),
                "2024-01-01T00:00:00Z",
                &coop,
                "",
                lotline_proto::build::confirm_member(
                    format!("gln-{}", World::farm(c, f).gln),
                    "2024-01-01",
                ),
            ));
        }
    }
    out
}

/// The co-op a generated farm (an org id `gln-…`) is a member of, as an org id: a farm's GLN
/// has its co-op's company prefix.
pub fn co_op_of_farm(farm: &str) -> Option<String> {
    let digits = farm.strip_prefix("gln-")?;
    let prefix: u64 = digits.get(..7)?.parse().ok()?;
    Some(format!(
        "gln-{}",
        World::coop(prefix.checked_sub(World::coop_prefix(0))? as usize).gln
    ))
}

/// The name the master data gives farm `f` of co-op `c`: personal data no public answer shows.
pub fn farm_name(c: usize, f: usize) -> String {
    format!("Farm {f} of co-operative {c}")
}

/// 2024-10-01T00:00:00Z in seconds since the Unix epoch.
const START: u64 = 1_727_740_800;
const DAY: u64 = 86_400;

/// The parties, derived from indexes so nothing about them is stored.
struct World {
    coops: usize,
    /// Member farms per co-op (each with one plot).
    farms: usize,
    procs: usize,
    brands: usize,
    /// Brands make what they receive into products of their own ([`write_deep_chain_document`]).
    deep: bool,
}

impl World {
    fn new(events: usize) -> World {
        let coops = (events / 4000 + 3).min(60);
        let farms = (events / (40 * coops)).clamp(3, 39_999);
        // A multiple of three, so that co-op `c` sells to processor `c % procs`, of its chain.
        let procs = 3 * (coops / 9).clamp(1, 6);
        World {
            coops,
            farms,
            procs,
            brands: procs + 1,
            deep: false,
        }
    }

    fn parties(&self) -> usize {
        self.coops * (1 + self.farms) + self.procs + self.brands
    }

    fn coop_prefix(c: usize) -> u64 {
        6_181_000 + c as u64
    }

    fn proc_prefix(p: usize) -> u64 {
        6_032_000 + p as u64
    }

    fn brand_prefix(b: usize) -> u64 {
        5_413_000 + b as u64
    }

    fn coop(c: usize) -> Party {
        Party::new(Self::coop_prefix(c), 1, 2)
    }

    fn farm(c: usize, f: usize) -> Party {
        Party::new(Self::coop_prefix(c), 10_000 + f as u64, 50_000 + f as u64)
    }

    fn proc(p: usize) -> Party {
        Party::new(Self::proc_prefix(p), 1, 10)
    }

    fn brand(b: usize) -> Party {
        Party::new(Self::brand_prefix(b), 1, 20)
    }
}

/// A party and its one location (a farm's plot, or a site), as GS1 keys.
struct Party {
    prefix: u64,
    /// GLN-13 of the party and of its location.
    gln: String,
    location_gln: String,
    location_ref: u64,
    party_ref: u64,
}

impl Party {
    fn new(prefix: u64, party_ref: u64, location_ref: u64) -> Party {
        Party {
            prefix,
            gln: gln(prefix, party_ref),
            location_gln: gln(prefix, location_ref),
            location_ref,
            party_ref,
        }
    }

    fn pgln(&self) -> String {
        format!("urn:epc:id:pgln:{}.{:05}", self.prefix, self.party_ref)
    }

    fn sgln(&self) -> String {
        format!("urn:epc:id:sgln:{}.{:05}.0", self.prefix, self.location_ref)
    }

    fn location_link(&self) -> String {
        format!("https://id.gs1.org/414/{}", self.location_gln)
    }
}

/// The GS1 mod-10 check digit of `body` (GTIN, GLN, SSCC without their last digit).
pub fn check_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b.wrapping_sub(b'0')) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10
}

/// An `epcList` of one id.
fn epc_list(id: &str) -> String {
    format!("\"epcList\":[\"{id}\"]")
}

fn gln(prefix: u64, reference: u64) -> String {
    let body = format!("{prefix:07}{reference:05}");
    let digit = check_digit(&body);
    format!("{body}{digit}")
}

/// A product of the chain: its item reference (indicator digit first), lotline name, and the
/// letter its lot numbers start with.
#[derive(Debug, Clone, Copy)]
struct Product {
    item: &'static str,
    name: &'static str,
    letter: char,
}

const BEANS: Product = Product {
    item: "012345",
    name: "cocoa_beans",
    letter: 'B',
};
const NIBS: Product = Product {
    item: "011111",
    name: "cocoa_nibs",
    letter: 'N',
};
const LIQUOR: Product = Product {
    item: "022222",
    name: "cocoa_liquor",
    letter: 'L',
};
const BUTTER: Product = Product {
    item: "033333",
    name: "cocoa_butter",
    letter: 'T',
};
const POWDER: Product = Product {
    item: "044444",
    name: "cocoa_powder",
    letter: 'P',
};
const PROCESSED: [Product; 4] = [NIBS, LIQUOR, BUTTER, POWDER];

/// One supply chain: its farm product, a processor's products (a first and a second step, then
/// a split into two), the processes, and what its parties are called.
struct ChainKind {
    chain: &'static str,
    farm: Product,
    processed: [Product; 4],
    processes: [&'static str; 3],
    /// What a brand of the chain does with what it receives, in a deep history: three steps
    /// that each blend several lots into one, then the packing of the last step's lot.
    making: [&'static str; 4],
    made: [Product; 4],
    coop_country: &'static str,
    proc_country: &'static str,
    names: [&'static str; 3],
}

const fn product(item: &'static str, name: &'static str, letter: char) -> Product {
    Product { item, name, letter }
}

/// Co-operative `c` and processor `p` are of chain `c % 3` and `p % 3` (co-ops sell to
/// processors of their own chain). Every co-op is in Côte d'Ivoire, which grows cocoa, coffee
/// and cotton (its farms' plots are near Daloa).
const CHAINS: [ChainKind; 3] = [
    ChainKind {
        chain: "cocoa",
        farm: BEANS,
        processed: PROCESSED,
        processes: ["roasting_winnowing", "grinding", "pressing"],
        making: ["conching", "tempering", "moulding", "packing"],
        made: [
            product("055555", "chocolate_mass", 'M'),
            product("066666", "couverture", 'C'),
            product("077777", "chocolate_bars", 'G'),
            product("088888", "chocolate_cases", 'K'),
        ],
        coop_country: "CI",
        proc_country: "GH",
        names: ["Cocoa co-operative", "Cocoa processor", "Chocolate brand"],
    },
    ChainKind {
        chain: "coffee",
        farm: product("012345", "parchment_coffee", 'B'),
        processed: [
            product("011111", "green_coffee", 'N'),
            product("022222", "roasted_coffee", 'L'),
            product("033333", "ground_coffee", 'T'),
            product("044444", "coffee_chaff", 'P'),
        ],
        processes: ["dry_milling", "roasting", "grinding"],
        making: ["blending", "batch_blending", "portioning", "packing"],
        made: [
            product("055555", "coffee_blend", 'M'),
            product("066666", "blend_batch", 'C'),
            product("077777", "coffee_capsules", 'G'),
            product("088888", "capsule_cases", 'K'),
        ],
        coop_country: "CI",
        proc_country: "DE",
        names: ["Coffee co-operative", "Coffee roaster", "Coffee brand"],
    },
    ChainKind {
        chain: "textile",
        farm: product("012345", "seed_cotton", 'B'),
        processed: [
            product("011111", "lint", 'N'),
            product("022222", "yarn", 'L'),
            product("033333", "fabric", 'T'),
            product("044444", "cotton_waste", 'P'),
        ],
        processes: ["ginning", "spinning", "weaving"],
        making: ["dyeing", "cutting", "sewing", "packing"],
        made: [
            product("055555", "dyed_fabric", 'M'),
            product("066666", "cut_panels", 'C'),
            product("077777", "garments", 'G'),
            product("088888", "garment_cartons", 'K'),
        ],
        coop_country: "CI",
        proc_country: "BD",
        names: ["Cotton co-operative", "Textile mill", "Apparel brand"],
    },
];

fn chain_kind(n: usize) -> &'static ChainKind {
    &CHAINS[n % CHAINS.len()]
}

fn gtin(prefix: u64, item: &str) -> String {
    let (indicator, rest) = item.split_at(1);
    let body = format!("{indicator}{prefix:07}{rest}");
    let digit = check_digit(&body);
    format!("{body}{digit}")
}

/// A lot while it is in the generator's hands: identifiers, size and (bounded) lineage.
#[derive(Debug, Clone)]
struct Lot {
    prefix: u64,
    product: Product,
    number: String,
    kg: u64,
    /// Harvest lots (canonical) and their plots.
    origins: Vec<(String, String)>,
    /// Every lot upstream (canonical), so sampled ancestors learn about this one.
    ancestors: Vec<String>,
}

impl Lot {
    fn canonical(&self) -> String {
        format!(
            "https://id.gs1.org/01/{}/10/{}",
            gtin(self.prefix, self.product.item),
            self.number
        )
    }

    fn lgtin(&self) -> String {
        format!(
            "urn:epc:class:lgtin:{}.{}.{}",
            self.prefix, self.product.item, self.number
        )
    }

    /// What a test may check of the lot, made from `inputs` (canonical); nothing downstream yet.
    fn truth(&self, inputs: &[String]) -> LotTruth {
        LotTruth {
            lgtin: self.lgtin(),
            product: self.product.name.to_string(),
            kg: self.kg,
            origins: self.origins.iter().map(|(l, _)| l.clone()).collect(),
            plots: self.origins.iter().map(|(_, p)| p.clone()).collect(),
            inputs: inputs.iter().cloned().collect(),
            into: BTreeSet::new(),
        }
    }
}

struct Doc<W: Write> {
    out: BufWriter<W>,
    /// Drives the document's content.
    rng: Rng,
    /// Drives only the reservoir sample.
    sampler: Rng,
    seed: u64,
    /// Event time of the next event (seconds since the epoch).
    clock: u64,
    step: u64,
    written: usize,
    lots_made: u64,
    pallets: u64,
    /// Plant problems (a truncated and a cross-border plot in the master data).
    plant: bool,
    /// Give the next events an `eventID` whatever their place.
    force_id: bool,
    /// The `eventID` of the last event written, when it has one.
    last_id: String,
    /// Counts identifier mentions, to alternate URN and Digital Link forms.
    mention: u64,
    /// A deep history's brand stock, per chain: the lots waiting for each blending step.
    stock: Vec<[Vec<Lot>; 3]>,
    truth: GroundTruth,
}

impl<W: Write> Doc<W> {
    /// The document's context, type and creation date.
    fn preamble(&mut self) -> io::Result<()> {
        preamble(&mut self.out)
    }

    /// The header: every party, location and product class the events use.
    fn master_data(&mut self, world: &World) -> io::Result<()> {
        self.out
            .write_all(b"  \"epcisHeader\": {\"epcisMasterData\": {\"vocabularyList\": [\n")?;

        // Parties.
        self.out.write_all(
            b"    {\"type\": \"urn:epcglobal:epcis:vtype:Party\", \"vocabularyElementList\": [\n",
        )?;
        let mut first = true;
        for c in 0..world.coops {
            let coop = World::coop(c);
            let kind = chain_kind(c);
            let cert = format!(
                "{{\"scheme\": \"fairtrade\", \"id\": \"FLO-{}\", \"validFrom\": \"2024-01-01\", \"validTo\": \"2027-12-31\", \"products\": [\"{}\"]}}",
                coop.gln, kind.farm.name
            );
            element(
                &mut self.out,
                &mut first,
                &coop.pgln(),
                &[
                    ("cbvmda:name", quoted(&format!("{} {c}", kind.names[0]))),
                    ("cbvmda:countryCode", quoted(kind.coop_country)),
                    ("lotline:role", quoted("cooperative")),
                    ("lotline:chain", quoted(kind.chain)),
                    ("lotline:certificate", cert),
                ],
            )?;
            for f in 0..world.farms {
                element(
                    &mut self.out,
                    &mut first,
                    &World::farm(c, f).pgln(),
                    &[
                        ("cbvmda:name", quoted(&farm_name(c, f))),
                        ("cbvmda:countryCode", quoted(kind.coop_country)),
                        ("lotline:role", quoted("farm")),
                        ("lotline:memberOf", quoted(&coop.pgln())),
                        ("lotline:chain", quoted(kind.chain)),
                    ],
                )?;
            }
        }
        for p in 0..world.procs {
            let kind = chain_kind(p);
            // What it buys (the co-ops' product) and what it makes.
            let products: Vec<String> = [kind.farm]
                .iter()
                .chain(kind.processed.iter())
                .map(|product| format!("\"{}\"", product.name))
                .collect();
            let cert = format!(
                "{{\"scheme\": \"fairtrade\", \"id\": \"FLO-{}\", \"validFrom\": \"2024-01-01\", \"validTo\": \"2027-12-31\", \"products\": [{}]}}",
                World::proc(p).gln,
                products.join(", ")
            );
            element(
                &mut self.out,
                &mut first,
                &World::proc(p).pgln(),
                &[
                    ("cbvmda:name", quoted(&format!("{} {p}", kind.names[1]))),
                    ("cbvmda:countryCode", quoted(kind.proc_country)),
                    ("lotline:role", quoted("processor")),
                    ("lotline:chain", quoted(kind.chain)),
                    ("lotline:certificate", cert),
                ],
            )?;
        }
        for b in 0..world.brands {
            // A brand buys the products of every chain's processors.
            let made: &[Product] = if world.deep { &chain_kind(b).made } else { &[] };
            let products: Vec<String> = CHAINS
                .iter()
                .flat_map(|kind| kind.processed.iter())
                .chain(made)
                .map(|product| format!("\"{}\"", product.name))
                .collect();
            let cert = format!(
                "{{\"scheme\": \"fairtrade\", \"id\": \"FLO-{}\", \"validFrom\": \"2024-01-01\", \"validTo\": \"2027-12-31\", \"products\": [{}]}}",
                World::brand(b).gln,
                products.join(", ")
            );
            element(
                &mut self.out,
                &mut first,
                &World::brand(b).pgln(),
                &[
                    (
                        "cbvmda:name",
                        quoted(&format!("{} {b}", chain_kind(b).names[2])),
                    ),
                    ("cbvmda:countryCode", quoted("BE")),
                    ("lotline:role", quoted("brand")),
                    ("lotline:chain", quoted(chain_kind(b).chain)),
                    ("lotline:certificate", cert),
                ],
            )?;
        }
        self.out.write_all(b"\n    ]},\n")?;

        // Locations: plots and sites.
        self.out.write_all(
            b"    {\"type\": \"urn:epcglobal:epcis:vtype:BusinessLocation\", \"vocabularyElementList\": [\n",
        )?;
        let mut first = true;
        for c in 0..world.coops {
            let coop = World::coop(c);
            site(
                &mut self.out,
                &mut first,
                &coop,
                "CI",
                &format!("Co-op {c} warehouse"),
            )?;
            for f in 0..world.farms {
                let farm = World::farm(c, f);
                let (mut geometry, area) = plot_shape(self.seed, c, f);
                // Planted: the last farm of co-op 0 has its plot written to 3 decimals, that of
                // co-op 1 has it across the border, in Ghana.
                if self.plant && f + 1 == world.farms && c < 2 {
                    geometry = if c == 0 {
                        "{\"type\": \"Polygon\", \"coordinates\": [[[-6.512, 6.913], [-6.511, 6.913], [-6.511, 6.914], [-6.512, 6.914], [-6.512, 6.913]]]}".to_string()
                    } else {
                        "{\"type\": \"Polygon\", \"coordinates\": [[[-1.612345, 6.712345], [-1.611345, 6.712345], [-1.611345, 6.713345], [-1.612345, 6.713345], [-1.612345, 6.712345]]]}".to_string()
                    };
                    self.truth.planted.push(PlantedProblem {
                        kind: "plot_not_eudr_grade",
                        event_id: None,
                        plot: Some(farm.sgln()),
                        lot: None,
                    });
                }
                element(
                    &mut self.out,
                    &mut first,
                    &farm.sgln(),
                    &[
                        (
                            "cbvmda:name",
                            quoted(&format!("Plot of farm {f}, co-op {c}")),
                        ),
                        ("cbvmda:countryCode", quoted("CI")),
                        ("lotline:owningParty", quoted(&farm.pgln())),
                        ("lotline:geometry", geometry),
                        ("lotline:areaHa", area),
                    ],
                )?;
            }
        }
        for p in 0..world.procs {
            site(
                &mut self.out,
                &mut first,
                &World::proc(p),
                chain_kind(p).proc_country,
                &format!("Processor {p} factory"),
            )?;
        }
        for b in 0..world.brands {
            site(
                &mut self.out,
                &mut first,
                &World::brand(b),
                "BE",
                &format!("Brand {b} plant"),
            )?;
        }
        self.out.write_all(b"\n    ]},\n")?;

        // Product classes, alternately as GTIN patterns and Digital Links.
        self.out.write_all(
            b"    {\"type\": \"urn:epcglobal:epcis:vtype:EPCClass\", \"vocabularyElementList\": [\n",
        )?;
        let mut first = true;
        // Each class is registered by the party whose GS1 company prefix it uses.
        let mut classes: Vec<(u64, Product, Party, &str)> = (0..world.coops)
            .map(|c| {
                let kind = chain_kind(c);
                (World::coop_prefix(c), kind.farm, World::coop(c), kind.chain)
            })
            .collect();
        for p in 0..world.procs {
            let kind = chain_kind(p);
            classes.extend(
                kind.processed
                    .iter()
                    .map(|product| (World::proc_prefix(p), *product, World::proc(p), kind.chain)),
            );
        }
        if world.deep {
            for (b, kind) in CHAINS.iter().enumerate() {
                classes.extend(kind.made.iter().map(|product| {
                    (
                        World::brand_prefix(b),
                        *product,
                        World::brand(b),
                        kind.chain,
                    )
                }));
            }
        }
        for (i, (prefix, product, owner, chain)) in classes.into_iter().enumerate() {
            let id = if i % 2 == 0 {
                format!("urn:epc:idpat:sgtin:{prefix}.{}.*", product.item)
            } else {
                format!("https://id.gs1.org/01/{}", gtin(prefix, product.item))
            };
            element(
                &mut self.out,
                &mut first,
                &id,
                &[
                    ("lotline:product", quoted(product.name)),
                    ("lotline:chain", quoted(chain)),
                    ("lotline:owningParty", quoted(&owner.pgln())),
                ],
            )?;
        }
        self.out.write_all(b"\n    ]}\n  ]}},\n")?;
        Ok(())
    }

    /// One co-op cycle: harvests of 2-5 member farms, their delivery, aggregation, sale to the
    /// processor, and the processor's batch when it then holds enough lots.
    fn coop_cycle(
        &mut self,
        world: &World,
        c: usize,
        p: usize,
        pending: &mut Vec<Lot>,
    ) -> io::Result<()> {
        let coop = World::coop(c);
        let count = 2 + self.rng.below(4) as usize;
        let mut delivered = Vec::with_capacity(count);
        for _ in 0..count {
            let f = self.rng.below(world.farms as u64) as usize;
            let farm = World::farm(c, f);
            let lot = self.harvest(c, f)?;
            self.ship(&farm, &coop, &[&lot])?;
            self.receive(&farm, &coop, &[&lot])?;
            delivered.push(lot);
        }
        let total: u64 = delivered.iter().map(|l| l.kg).sum();
        let kg = total * (985 + self.rng.below(15)) / 1000;
        let bulk = self.transform(
            &coop,
            "aggregation",
            &delivered,
            &[(World::coop_prefix(c), chain_kind(c).farm, kg)],
        )?;
        let Some(bulk) = bulk.into_iter().next() else {
            return Ok(());
        };
        let processor = World::proc(p);
        // One bulk lot in two travels on a pallet (an SSCC): packed by the co-op, the pallet
        // shipped and received, unpacked by the processor.
        if self.rng.below(2) == 0 {
            let pallet = self.sscc(&coop);
            self.aggregate(&coop, "ADD", &pallet, &bulk)?;
            self.ship_items(&coop, &processor, &epc_list(&pallet))?;
            self.receive_items(&coop, &processor, &epc_list(&pallet))?;
            self.aggregate(&processor, "DELETE", &pallet, &bulk)?;
        } else {
            self.ship(&coop, &processor, &[&bulk])?;
            self.receive(&coop, &processor, &[&bulk])?;
        }
        self.pay(&processor, &coop, &bulk)?;
        pending.push(bulk);
        if pending.len() >= 2 + self.rng.below(2) as usize {
            let inputs = std::mem::take(pending);
            self.process(world, p, &inputs)?;
        }
        Ok(())
    }

    /// The planted events' problems: see [`write_planted_document`]. Co-op 0 (cocoa) is the
    /// culprit; its farms and co-op 3's (also cocoa) deliver.
    fn plant_events(&mut self, world: &World) -> io::Result<()> {
        if world.coops < 4 {
            return Err(io::Error::other(
                "a planted history needs at least 4 000 events (two cocoa co-ops)",
            ));
        }
        let before = self.written;
        self.force_id = true;
        let kind = chain_kind(0);
        let coop = World::coop(0);
        let prefix = World::coop_prefix(0);
        let member = World::farm(0, 0);
        let planted = |kind: &'static str, id: &str| PlantedProblem {
            kind,
            event_id: Some(id.to_string()),
            plot: None,
            lot: None,
        };
        // Half as much again out of an aggregation.
        let a = self.harvest(0, 0)?;
        self.ship(&member, &coop, &[&a])?;
        self.receive(&member, &coop, &[&a])?;
        self.transform(
            &coop,
            "aggregation",
            std::slice::from_ref(&a),
            &[(prefix, kind.farm, a.kg * 3 / 2)],
        )?;
        let id = self.last_id.clone();
        self.truth.planted.push(planted("yield_out_of_band", &id));
        // A lot nobody made, aggregated.
        let ghost = Lot {
            prefix: World::coop_prefix(0),
            product: kind.farm,
            number: format!("GHOST-{}", self.lots_made),
            kg: 400,
            origins: Vec::new(),
            ancestors: Vec::new(),
        };
        let ghost_id = ghost.canonical();
        self.transform(&coop, "aggregation", &[ghost], &[(prefix, kind.farm, 396)])?;
        self.truth.planted.push(PlantedProblem {
            kind: "unknown_origin",
            event_id: None,
            plot: None,
            lot: Some(ghost_id.clone()),
        });
        self.truth.planted_lots.insert(ghost_id);
        // Shipped a day before it was harvested.
        let late = self.harvest(0, 1 % world.farms)?;
        let harvested = self.clock;
        self.clock -= 2 * DAY;
        self.ship(&World::farm(0, 1 % world.farms), &coop, &[&late])?;
        let id = self.last_id.clone();
        self.truth
            .planted
            .push(planted("dated_before_creation", &id));
        self.clock = harvested;
        self.receive(&World::farm(0, 1 % world.farms), &coop, &[&late])?;
        // Co-op 3's farm delivers to co-op 0, which aggregates it and sells the bulk.
        let outsider_coop = 3;
        let outsider = World::farm(outsider_coop, 0);
        let foreign = self.harvest(outsider_coop, 0)?;
        self.ship(&outsider, &coop, &[&foreign])?;
        self.receive(&outsider, &coop, &[&foreign])?;
        let bulk = self.transform(
            &coop,
            "aggregation",
            std::slice::from_ref(&foreign),
            &[(prefix, kind.farm, foreign.kg * 99 / 100)],
        )?;
        let id = self.last_id.clone();
        self.truth.planted.push(planted("non_member_delivery", &id));
        let processor = World::proc(0);
        let bulk: Vec<&Lot> = bulk.iter().collect();
        self.ship(&coop, &processor, &bulk)?;
        let id = self.last_id.clone();
        self.truth.planted.push(planted("non_member_delivery", &id));
        self.receive(&coop, &processor, &bulk)?;
        self.force_id = false;
        debug_assert!(self.written - before <= PLANTED_EVENTS);
        Ok(())
    }

    /// The processor's batch: roasting and winnowing, grinding, sometimes pressing, and the
    /// shipment of the result to a brand.
    fn process(&mut self, world: &World, p: usize, inputs: &[Lot]) -> io::Result<()> {
        let processor = World::proc(p);
        let prefix = World::proc_prefix(p);
        let kind = chain_kind(p);
        let [first, second, split_a, split_b] = kind.processed;
        let beans: u64 = inputs.iter().map(|l| l.kg).sum();
        let nibs_kg = beans * (800 + self.rng.below(51)) / 1000;
        let nibs = self.transform(
            &processor,
            kind.processes[0],
            inputs,
            &[(prefix, first, nibs_kg)],
        )?;
        let liquor_kg = nibs_kg * (970 + self.rng.below(21)) / 1000;
        let liquor = self.transform(
            &processor,
            kind.processes[1],
            &nibs,
            &[(prefix, second, liquor_kg)],
        )?;
        let products = if self.rng.below(2) == 0 {
            let butter = liquor_kg * (440 + self.rng.below(21)) / 1000;
            let powder = liquor_kg * (520 + self.rng.below(21)) / 1000;
            self.transform(
                &processor,
                kind.processes[2],
                &liquor,
                &[(prefix, split_a, butter), (prefix, split_b, powder)],
            )?
        } else {
            liquor
        };
        // A deep history's brand makes its own products, so it buys from its chain alone.
        let b = if world.deep {
            p % CHAINS.len()
        } else {
            self.rng.below(world.brands as u64) as usize
        };
        let brand = World::brand(b);
        let shipped: Vec<&Lot> = products.iter().collect();
        self.ship(&processor, &brand, &shipped)?;
        self.receive(&processor, &brand, &shipped)?;
        if world.deep {
            self.make(b, products)?;
        }
        Ok(())
    }

    /// Brand `b` (of chain `b`) takes `received` into stock, then runs each blending step that
    /// has its [`MAKING_FAN_IN`] lots waiting; the last step's lot is packed at once.
    fn make(&mut self, b: usize, received: Vec<Lot>) -> io::Result<()> {
        let brand = World::brand(b);
        let prefix = World::brand_prefix(b);
        let kind = chain_kind(b);
        self.stock[b][0].extend(received);
        for (step, &fan_in) in MAKING_FAN_IN.iter().enumerate() {
            if self.stock[b][step].len() < fan_in {
                break;
            }
            let inputs = std::mem::take(&mut self.stock[b][step]);
            let kg_in: u64 = inputs.iter().map(|l| l.kg).sum();
            let kg = kg_in * (980 + self.rng.below(21)) / 1000;
            let made = self.transform(
                &brand,
                kind.making[step],
                &inputs,
                &[(prefix, kind.made[step], kg)],
            )?;
            match self.stock[b].get_mut(step + 1) {
                Some(next) => next.extend(made),
                None => {
                    let last = MAKING_FAN_IN.len();
                    let packed = self.transform(
                        &brand,
                        kind.making[last],
                        &made,
                        &[(prefix, kind.made[last], kg)],
                    )?;
                    let inputs: Vec<String> = made.iter().map(Lot::canonical).collect();
                    for lot in packed {
                        let truth = lot.truth(&inputs);
                        self.truth.finished.insert(lot.canonical(), truth);
                    }
                }
            }
        }
        Ok(())
    }

    fn harvest(&mut self, c: usize, f: usize) -> io::Result<Lot> {
        let farm = World::farm(c, f);
        let kg = 150 + self.rng.below(1200);
        let mut lot = Lot {
            prefix: farm.prefix,
            product: chain_kind(c).farm,
            number: format!("F{f}-{}", self.lots_made),
            kg,
            origins: Vec::new(),
            ancestors: Vec::new(),
        };
        lot.origins.push((lot.canonical(), farm.sgln()));
        self.made(&lot, &[]);
        let day = (self.clock / DAY) as i64;
        let location = self.location(&farm);
        let epc = self.lot_id(&lot);
        self.begin("ObjectEvent", "harvest")?;
        write!(
            self.out,
            ",\"action\":\"ADD\",\"bizStep\":\"commissioning\",\"disposition\":\"active\",\
             \"quantityList\":[{{\"epcClass\":\"{epc}\",\"quantity\":{kg},\"uom\":\"KGM\"}}],\
             \"bizLocation\":{{\"id\":\"{location}\"}},\
             \"ilmd\":{{\"cbvmda:harvestStartDate\":\"{}\",\"cbvmda:harvestEndDate\":\"{}\",\
             \"lotline:custody\":\"segregated\",\"lotline:claims\":[\"fairtrade\"]}}}}",
            date(day - 12),
            date(day - 1)
        )?;
        Ok(lot)
    }

    /// A new pallet of `owner`'s, as SSCC URN or Digital Link, alternately.
    fn sscc(&mut self, owner: &Party) -> String {
        self.pallets += 1;
        self.mention += 1;
        // Extension digit 1, the owner's 7-digit company prefix, a 9-digit serial reference.
        let serial = format!("1{:09}", self.pallets % 1_000_000_000);
        if self.mention.is_multiple_of(2) {
            format!("urn:epc:id:sscc:{:07}.{serial}", owner.prefix)
        } else {
            let body = format!("{}{:07}{}", &serial[..1], owner.prefix, &serial[1..]);
            let digit = check_digit(&body);
            format!("https://id.gs1.org/00/{body}{digit}")
        }
    }

    /// `at` packs `lot` on `pallet` (`ADD`) or takes it off (`DELETE`).
    fn aggregate(&mut self, at: &Party, action: &str, pallet: &str, lot: &Lot) -> io::Result<()> {
        let children = self.quantity_list(&[lot]);
        let location = self.location(at);
        let step = if action == "ADD" {
            "packing"
        } else {
            "unpacking"
        };
        self.begin("AggregationEvent", "observe")?;
        write!(
            self.out,
            ",\"parentID\":\"{pallet}\",\"childQuantityList\":{children},\"action\":\"{action}\",\
             \"bizStep\":\"{step}\",\"disposition\":\"in_progress\",\
             \"bizLocation\":{{\"id\":\"{location}\"}}}}"
        )
    }

    fn ship(&mut self, from: &Party, to: &Party, lots: &[&Lot]) -> io::Result<()> {
        let quantities = format!("\"quantityList\":{}", self.quantity_list(lots));
        self.ship_items(from, to, &quantities)
    }

    /// A shipment of `items` (a `quantityList` or `epcList` member).
    fn ship_items(&mut self, from: &Party, to: &Party, items: &str) -> io::Result<()> {
        let location = self.location(from);
        let seq = self.written;
        self.begin("ObjectEvent", "ship")?;
        write!(
            self.out,
            ",\"action\":\"OBSERVE\",\"bizStep\":\"shipping\",\"disposition\":\"in_transit\",\
             {items},\"bizLocation\":{{\"id\":\"{location}\"}},\
             \"bizTransactionList\":[{{\"type\":\"desadv\",\"bizTransaction\":\"urn:epcglobal:cbv:bt:{}:DN-{seq}\"}}],\
             \"sourceList\":[{{\"type\":\"owning_party\",\"source\":\"{}\"}}],\
             \"destinationList\":[{{\"type\":\"owning_party\",\"destination\":\"{}\"}}]}}",
            from.gln,
            from.pgln(),
            to.pgln()
        )
    }

    fn receive(&mut self, from: &Party, to: &Party, lots: &[&Lot]) -> io::Result<()> {
        let quantities = format!("\"quantityList\":{}", self.quantity_list(lots));
        self.receive_items(from, to, &quantities)
    }

    /// A receipt of `items` (a `quantityList` or `epcList` member).
    fn receive_items(&mut self, from: &Party, to: &Party, items: &str) -> io::Result<()> {
        let location = self.location(to);
        let seq = self.written;
        self.begin("ObjectEvent", "receive")?;
        write!(
            self.out,
            ",\"action\":\"OBSERVE\",\"bizStep\":\"receiving\",\"disposition\":\"in_progress\",\
             {items},\"bizLocation\":{{\"id\":\"{location}\"}},\
             \"bizTransactionList\":[{{\"type\":\"recadv\",\"bizTransaction\":\"urn:epcglobal:cbv:bt:{}:GR-{seq}\"}}],\
             \"sourceList\":[{{\"type\":\"owning_party\",\"source\":\"{}\"}}],\
             \"destinationList\":[{{\"type\":\"owning_party\",\"destination\":\"{}\"}}]}}",
            to.gln,
            from.pgln(),
            to.pgln()
        )
    }

    /// The buyer pays the seller for a co-op lot, at or above the Fairtrade minimum.
    fn pay(&mut self, payer: &Party, payee: &Party, lot: &Lot) -> io::Result<()> {
        let quantities = self.quantity_list(&[lot]);
        let location = self.location(payer);
        let price = 2450 + self.rng.below(400);
        let seq = self.written;
        let contract = date((self.clock / DAY) as i64 - 30);
        self.begin("TransactionEvent", "pay")?;
        write!(
            self.out,
            ",\"action\":\"ADD\",\"bizStep\":\"accepting\",\
             \"quantityList\":{quantities},\"bizLocation\":{{\"id\":\"{location}\"}},\
             \"bizTransactionList\":[{{\"type\":\"inv\",\"bizTransaction\":\"urn:epcglobal:cbv:bt:{}:INV-{seq}\"}}],\
             \"sourceList\":[{{\"type\":\"owning_party\",\"source\":\"{}\"}}],\
             \"destinationList\":[{{\"type\":\"owning_party\",\"destination\":\"{}\"}}],\
             \"lotline:pricePerUnit\":\"{price}\",\"lotline:currency\":\"USD\",\"lotline:priceUnit\":\"t\",\
             \"lotline:premiumPerUnit\":\"240\",\"lotline:contractDate\":\"{contract}\"}}",
            payee.gln,
            payer.pgln(),
            payee.pgln()
        )
    }

    /// A TransformationEvent at `at` from the whole of `inputs` into new lots
    /// `(company prefix, product, kg)`; returns the new lots.
    fn transform(
        &mut self,
        at: &Party,
        process: &str,
        inputs: &[Lot],
        outputs: &[(u64, Product, u64)],
    ) -> io::Result<Vec<Lot>> {
        let mut origins: Vec<(String, String)> = Vec::new();
        let mut ancestors: Vec<String> = Vec::new();
        for input in inputs {
            for origin in &input.origins {
                if !origins.contains(origin) {
                    origins.push(origin.clone());
                }
            }
            for lot in input.ancestors.iter().cloned().chain([input.canonical()]) {
                if !ancestors.contains(&lot) {
                    ancestors.push(lot);
                }
            }
        }
        let input_ids: Vec<String> = inputs.iter().map(Lot::canonical).collect();
        let mut made = Vec::with_capacity(outputs.len());
        for (prefix, product, kg) in outputs {
            let lot = Lot {
                prefix: *prefix,
                product: *product,
                number: format!("{}{}", product.letter, self.lots_made),
                kg: *kg,
                origins: origins.clone(),
                ancestors: ancestors.clone(),
            };
            self.made(&lot, &input_ids);
            made.push(lot);
        }
        let input_refs: Vec<&Lot> = inputs.iter().collect();
        let input_list = self.quantity_list(&input_refs);
        let made_refs: Vec<&Lot> = made.iter().collect();
        let output_list = self.quantity_list(&made_refs);
        let described: Vec<String> = made
            .iter()
            .map(|lot| {
                let id = self.lot_id(lot);
                format!(
                    "{{\"lot\":\"{id}\",\"product\":\"{}\",\"custody\":\"segregated\",\"claims\":[\"fairtrade\"]}}",
                    lot.product.name
                )
            })
            .collect();
        let location = self.location(at);
        self.begin("TransformationEvent", "transform")?;
        write!(
            self.out,
            ",\"inputQuantityList\":{input_list},\"outputQuantityList\":{output_list},\
             \"bizStep\":\"commissioning\",\"disposition\":\"active\",\
             \"bizLocation\":{{\"id\":\"{location}\"}},\
             \"ilmd\":{{\"lotline:outputs\":[{}]}},\"lotline:process\":\"{process}\"}}",
            described.join(",")
        )?;
        Ok(made)
    }

    /// Writes the event's separator, `type`, maybe `eventID`, and times; counts it.
    fn begin(&mut self, kind: &str, lotline_kind: &str) -> io::Result<()> {
        let separator = if self.written == 0 { "\n" } else { ",\n" };
        write!(self.out, "{separator}      {{\"type\":\"{kind}\"")?;
        // Two events in three carry an eventID; the rest are known by their hash.
        self.last_id.clear();
        if self.written % 3 != 2 || self.force_id {
            self.last_id = format!(
                "urn:uuid:{:08x}-{:04x}-4{:03x}-8000-{:012x}",
                (self.seed >> 32) as u32,
                (self.seed >> 16) as u16,
                self.seed & 0xfff,
                self.written
            );
            write!(self.out, ",\"eventID\":\"{}\"", self.last_id)?;
            if self.force_id {
                self.truth.planted_events.insert(self.last_id.clone());
            }
        }
        write!(
            self.out,
            ",\"eventTime\":\"{}\",\"eventTimeZoneOffset\":\"+00:00\"",
            timestamp(self.clock)
        )?;
        self.clock += self.step;
        self.written += 1;
        *self.truth.event_types.entry(kind.to_string()).or_default() += 1;
        *self
            .truth
            .kinds
            .entry(lotline_kind.to_string())
            .or_default() += 1;
        self.truth.events = self.written;
        Ok(())
    }

    fn quantity_list(&mut self, lots: &[&Lot]) -> String {
        let items: Vec<String> = lots
            .iter()
            .map(|lot| {
                let id = self.lot_id(lot);
                format!(
                    "{{\"epcClass\":\"{id}\",\"quantity\":{},\"uom\":\"KGM\"}}",
                    lot.kg
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// The lot as LGTIN URN or Digital Link, alternately.
    fn lot_id(&mut self, lot: &Lot) -> String {
        self.mention += 1;
        if self.mention.is_multiple_of(2) {
            lot.lgtin()
        } else {
            lot.canonical()
        }
    }

    /// A party's location as SGLN URN or Digital Link, alternately.
    fn location(&mut self, party: &Party) -> String {
        self.mention += 1;
        if (self.mention / 2).is_multiple_of(2) {
            party.sgln()
        } else {
            party.location_link()
        }
    }

    /// Records a new lot: it may enter the sample (reservoir), and every sampled ancestor learns
    /// that the lot went into it.
    fn made(&mut self, lot: &Lot, inputs: &[String]) {
        self.lots_made += 1;
        let id = lot.canonical();
        for ancestor in &lot.ancestors {
            if let Some(truth) = self.truth.lots.get_mut(ancestor) {
                truth.into.insert(id.clone());
            }
        }
        let truth = lot.truth(inputs);
        if self.truth.lots.len() < SAMPLED_LOTS {
            self.truth.lots.insert(id, truth);
        } else {
            let slot = self.sampler.below(self.lots_made);
            if (slot as usize) < SAMPLED_LOTS {
                // Replace a uniformly chosen sampled lot.
                let victim = self.truth.lots.keys().nth(slot as usize).cloned();
                if let Some(victim) = victim {
                    self.truth.lots.remove(&victim);
                    self.truth.lots.insert(id, truth);
                }
            }
        }
    }
}

/// One vocabulary element with attributes whose values are JSON text.
fn element<W: Write>(
    out: &mut W,
    first: &mut bool,
    id: &str,
    attributes: &[(&str, String)],
) -> io::Result<()> {
    if !*first {
        out.write_all(b",\n")?;
    }
    *first = false;
    write!(out, "      {{\"id\": \"{id}\", \"attributes\": [")?;
    for (i, (name, value)) in attributes.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        write!(out, "{comma}{{\"id\": \"{name}\", \"attribute\": {value}}}")?;
    }
    out.write_all(b"]}")
}

fn site<W: Write>(
    out: &mut W,
    first: &mut bool,
    party: &Party,
    country: &str,
    name: &str,
) -> io::Result<()> {
    element(
        out,
        first,
        &party.sgln(),
        &[
            ("cbvmda:name", quoted(name)),
            ("cbvmda:countryCode", quoted(country)),
            ("lotline:owningParty", quoted(&party.pgln())),
        ],
    )
}

/// A JSON string of text that needs no escaping (the generator's own ASCII names).
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

/// A farm plot: a square GeoJSON polygon near Daloa (Côte d'Ivoire) to six decimals, and its
/// area in hectares (two decimals), both derived from the seed and the farm's indexes.
fn plot_shape(seed: u64, c: usize, f: usize) -> (String, String) {
    let mut rng = Rng::new(seed ^ ((c as u64) << 32) ^ (f as u64 + 1).wrapping_mul(0x9e37_79b9));
    let side_m = 60 + rng.below(150) as i64;
    // Micro-degrees: 1 m is about 9.04 µ° of latitude and 9.11 µ° of longitude at 7° N.
    let south = 6_600_000 + rng.below(600_000) as i64 + c as i64 * 1_000;
    let west = -6_900_000 + rng.below(900_000) as i64;
    let dlat = side_m * 904 / 100;
    let dlon = side_m * 911 / 100;
    let corners = [
        (west, south),
        (west + dlon, south),
        (west + dlon, south + dlat),
        (west, south + dlat),
        (west, south),
    ];
    let ring: Vec<String> = corners
        .iter()
        .map(|(lon, lat)| format!("[{}, {}]", micro(*lon), micro(*lat)))
        .collect();
    let geometry = format!(
        "{{\"type\": \"Polygon\", \"coordinates\": [[{}]]}}",
        ring.join(", ")
    );
    let centiha = side_m * side_m / 100;
    let area = format!("{}.{:02}", centiha / 100, centiha % 100);
    (geometry, area)
}

/// Micro-degrees as a decimal of six places, written as a stock JSON writer writes a number: the
/// shortest form, trailing zeros dropped (`-6.70538` for -6.705380), as real EUDR exports come.
fn micro(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let fraction = format!("{:06}", abs % 1_000_000);
    match fraction.trim_end_matches('0') {
        "" => format!("{sign}{}", abs / 1_000_000),
        kept => format!("{sign}{}.{kept}", abs / 1_000_000),
    }
}

/// Seconds since the epoch as an RFC 3339 UTC time.
fn timestamp(seconds: u64) -> String {
    let day = (seconds / DAY) as i64;
    let rest = seconds % DAY;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(day),
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Days since 1970-01-01 as YYYY-MM-DD (proleptic Gregorian).
fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn coordinates_are_written_as_a_json_writer_writes_them() {
        assert_eq!(micro(-6_705_380), "-6.70538");
        assert_eq!(micro(7_000_000), "7");
        assert_eq!(micro(6_600_001), "6.600001");
        assert_eq!(micro(-120), "-0.00012");
        // What is written reads back as the same number.
        for v in [-6_705_380_i64, 6_612_345, 1, -1_000_000] {
            let read: f64 = micro(v).parse().unwrap();
            assert_eq!((read * 1e6).round() as i64, v);
        }
    }

    fn generate(seed: u64, events: usize) -> (Value, GroundTruth) {
        let mut bytes = Vec::new();
        let truth = write_chain_document(&mut bytes, seed, events).unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        (doc, truth)
    }

    fn event_list(doc: &Value) -> &Vec<Value> {
        doc["epcisBody"]["eventList"].as_array().unwrap()
    }

    #[test]
    fn a_deep_history_packs_lots_of_hundreds_of_harvests_in_every_chain() {
        let mut bytes = Vec::new();
        let truth = write_deep_chain_document(&mut bytes, 3, 16_000).unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(event_list(&doc).len(), 16_000);
        assert_eq!(truth.events, 16_000);
        let products: BTreeSet<&str> = truth
            .finished
            .values()
            .map(|t| t.product.as_str())
            .collect();
        assert_eq!(
            products,
            BTreeSet::from(["capsule_cases", "chocolate_cases", "garment_cartons"])
        );
        for (lot, t) in &truth.finished {
            assert!(t.origins.len() >= 100, "{lot}: {} origins", t.origins.len());
            assert_eq!(t.inputs.len(), 1, "{lot} is packed from one lot");
        }
        // Each brand's products are classes of the master data, and its certificate names them.
        let text = String::from_utf8(bytes).unwrap();
        for product in [
            "chocolate_mass",
            "blend_batch",
            "garments",
            "chocolate_cases",
        ] {
            assert!(
                text.matches(&format!("\"{product}\"")).count() >= 2,
                "{product}"
            );
        }
        // The rules file knows the brands' processes.
        assert!(rules_toml().contains("process = \"conching\""));
    }

    #[test]
    fn a_split_document_is_the_same_events_in_parts_with_one_header() {
        let mut master = Vec::new();
        let mut events = Vec::new();
        write_chain_documents(&mut master, &mut events, 5, 1_000).unwrap();
        let whole: Value = serde_json::from_slice(&events).unwrap();
        let parts = std::cell::RefCell::new(Vec::<std::rc::Rc<std::cell::RefCell<Vec<u8>>>>::new());
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let count = split_events(&events[..], 300, |n| {
            let mut parts = parts.borrow_mut();
            assert_eq!(n, parts.len(), "parts are asked for in order");
            parts.push(Default::default());
            Ok(Shared(parts[n].clone()))
        })
        .unwrap();
        assert_eq!(count, 4);
        let kept: Vec<Vec<u8>> = parts
            .into_inner()
            .iter()
            .map(|p| p.borrow().clone())
            .collect();
        let mut joined = Vec::new();
        for (n, part) in kept.iter().enumerate() {
            let doc: Value = serde_json::from_slice(part).unwrap();
            let list = event_list(&doc);
            assert_eq!(list.len(), if n < 3 { 300 } else { 100 });
            assert_eq!(doc["@context"], whole["@context"]);
            joined.extend(list.iter().cloned());
        }
        assert_eq!(&joined, event_list(&whole));
        let refused = split_events(&b"{\n      {\"type\":1}\n]"[..], 10, |_| Ok(Vec::new()));
        assert!(refused.is_err(), "a document of another writer is refused");
    }

    #[test]
    fn unit_events_name_each_unit_once_at_the_brand_site() {
        let mut bytes = Vec::new();
        let units = write_unit_events(&mut bytes, 3, 50).unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let list = event_list(&doc);
        assert_eq!(list.len(), 50);
        let listed: Vec<&str> = list
            .iter()
            .flat_map(|e| e["epcList"].as_array().unwrap())
            .map(|u| u.as_str().unwrap())
            .collect();
        assert_eq!(listed, units.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(units.iter().collect::<BTreeSet<_>>().len(), units.len());
        assert!(
            list.iter()
                .all(|e| e["bizLocation"]["id"] == World::brand(0).sgln())
        );
    }

    /// The canonical Digital Link of a lot written in either form, read independently of the
    /// generator's own helpers.
    fn canonical(id: &str) -> String {
        if id.starts_with("https://") {
            return id.to_string();
        }
        let rest = id.strip_prefix("urn:epc:class:lgtin:").unwrap();
        let mut parts = rest.splitn(3, '.');
        let (prefix, item, lot) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let body = format!("{}{prefix}{}", &item[..1], &item[1..]);
        format!(
            "https://id.gs1.org/01/{body}{}/10/{lot}",
            check_digit(&body)
        )
    }

    fn valid_digits(key: &str) -> bool {
        let (body, last) = key.split_at(key.len() - 1);
        last == check_digit(body).to_string()
    }

    #[test]
    fn check_digits_match_known_keys() {
        assert_eq!(check_digit("400638133393"), 1);
        assert_eq!(gtin(9_520_123, "012345"), "09520123123451");
        assert_eq!(gln(4_068_194, 10), "4068194000103");
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(timestamp(START), "2024-10-01T00:00:00Z");
        assert_eq!(date(19_782), "2024-02-29");
    }

    #[test]
    fn document_parses_and_has_the_requested_event_count() {
        for (seed, events) in [(1, 0), (2, 7), (3, 500), (4, 3000)] {
            let (doc, truth) = generate(seed, events);
            let list = event_list(&doc);
            let slack = events / 20;
            assert!(
                list.len().abs_diff(events) <= slack,
                "{events} asked, {} written",
                list.len()
            );
            assert_eq!(truth.events, list.len());
            assert_eq!(truth.event_types.values().sum::<usize>(), list.len());
            assert_eq!(truth.kinds.values().sum::<usize>(), list.len());
            for (kind, count) in &truth.event_types {
                let found = list.iter().filter(|e| e["type"] == kind.as_str()).count();
                assert_eq!(found, *count, "{kind}");
            }
            let vocabularies = doc["epcisHeader"]["epcisMasterData"]["vocabularyList"]
                .as_array()
                .unwrap();
            let sizes: Vec<usize> = vocabularies
                .iter()
                .map(|v| v["vocabularyElementList"].as_array().unwrap().len())
                .collect();
            assert_eq!(
                sizes,
                [
                    truth.parties,
                    truth.plots + truth.sites,
                    truth.product_classes
                ]
            );
        }
    }

    #[test]
    fn same_seed_same_document() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut c = Vec::new();
        let ta = write_chain_document(&mut a, 9, 800).unwrap();
        let tb = write_chain_document(&mut b, 9, 800).unwrap();
        write_chain_document(&mut c, 10, 800).unwrap();
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        assert_ne!(a, c);
    }

    #[test]
    fn identifiers_are_valid_and_lots_appear_in_both_forms() {
        let (doc, _) = generate(5, 1500);
        let text = doc.to_string();
        for marker in ["https://id.gs1.org/01/", "https://id.gs1.org/414/"] {
            for piece in text.split(marker).skip(1) {
                let key: String = piece.chars().take_while(char::is_ascii_digit).collect();
                assert!(valid_digits(&key), "{marker}{key}");
            }
        }
        for piece in text.split("urn:epcglobal:cbv:bt:").skip(1) {
            assert!(valid_digits(&piece[..13]), "{}", &piece[..13]);
        }
        // Each lot mentioned at least twice is written both ways somewhere.
        let mut forms: BTreeMap<String, BTreeSet<bool>> = BTreeMap::new();
        for event in event_list(&doc) {
            for list in ["quantityList", "inputQuantityList", "outputQuantityList"] {
                for q in event[list].as_array().into_iter().flatten() {
                    let id = q["epcClass"].as_str().unwrap();
                    forms
                        .entry(canonical(id))
                        .or_default()
                        .insert(id.starts_with("urn:"));
                }
            }
        }
        let both = forms.values().filter(|f| f.len() == 2).count();
        assert!(both * 10 >= forms.len() * 9, "{both} of {}", forms.len());
        let plot_links = text.matches("https://id.gs1.org/414/").count();
        let plot_urns = text.matches("urn:epc:id:sgln:").count();
        assert!(plot_links > 100 && plot_urns > 100);
    }

    #[test]
    fn ground_truth_matches_the_document() {
        let (doc, truth) = generate(7, 4000);
        assert!(truth.lots.len() <= SAMPLED_LOTS);
        assert!(truth.lots.len() >= SAMPLED_LOTS / 2);
        // Lineage read back from the document alone.
        let mut inputs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut harvested: BTreeMap<String, String> = BTreeMap::new();
        let mut plots: BTreeMap<String, String> = BTreeMap::new();
        let mut kg: BTreeMap<String, u64> = BTreeMap::new();
        let plot_urn = |location: &str| -> String {
            match location.strip_prefix("https://id.gs1.org/414/") {
                Some(gln) => format!("urn:epc:id:sgln:{}.{}.0", &gln[..7], &gln[7..12]),
                None => location.to_string(),
            }
        };
        for event in event_list(&doc) {
            if event["type"] == "TransformationEvent" {
                let ins: BTreeSet<String> = event["inputQuantityList"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|q| canonical(q["epcClass"].as_str().unwrap()))
                    .collect();
                for q in event["outputQuantityList"].as_array().unwrap() {
                    let out = canonical(q["epcClass"].as_str().unwrap());
                    kg.insert(out.clone(), q["quantity"].as_u64().unwrap());
                    inputs.insert(out, ins.clone());
                }
            } else if event["action"] == "ADD" && event["bizStep"] == "commissioning" {
                let q = &event["quantityList"][0];
                let lot = canonical(q["epcClass"].as_str().unwrap());
                kg.insert(lot.clone(), q["quantity"].as_u64().unwrap());
                plots.insert(
                    lot.clone(),
                    plot_urn(event["bizLocation"]["id"].as_str().unwrap()),
                );
                harvested.insert(lot.clone(), lot);
            }
        }
        let upstream = |lot: &str| -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut stack = vec![lot.to_string()];
            while let Some(l) = stack.pop() {
                for i in inputs.get(&l).into_iter().flatten() {
                    if seen.insert(i.clone()) {
                        stack.push(i.clone());
                    }
                }
            }
            seen
        };
        let mut kinds = BTreeSet::new();
        for (lot, t) in &truth.lots {
            kinds.insert(t.product.clone());
            assert_eq!(kg[lot], t.kg, "{lot}");
            assert_eq!(canonical(&t.lgtin), *lot);
            let up = upstream(lot);
            let origins: BTreeSet<String> = if harvested.contains_key(lot) {
                BTreeSet::from([lot.clone()])
            } else {
                up.iter()
                    .filter(|l| harvested.contains_key(*l))
                    .cloned()
                    .collect()
            };
            assert_eq!(t.origins, origins, "{lot}");
            let origin_plots: BTreeSet<String> = origins.iter().map(|o| plots[o].clone()).collect();
            assert_eq!(t.plots, origin_plots, "{lot}");
            assert_eq!(
                t.inputs,
                inputs.get(lot).cloned().unwrap_or_default(),
                "{lot}"
            );
            let down: BTreeSet<String> = inputs
                .keys()
                .filter(|other| upstream(other).contains(lot))
                .cloned()
                .collect();
            assert_eq!(t.into, down, "{lot}");
            // Consistency between sampled lots.
            for next in &t.into {
                if let Some(n) = truth.lots.get(next) {
                    assert!(t.origins.is_subset(&n.origins));
                }
            }
        }
        assert!(
            ["cocoa_beans", "parchment_coffee", "seed_cotton"]
                .iter()
                .all(|k| kinds.contains(*k))
                && kinds.len() >= 6,
            "{kinds:?}"
        );
        assert!(truth.kinds["transform"] > 0 && truth.kinds["pay"] > 0);
        assert_eq!(truth.kinds["ship"], truth.kinds["receive"]);
    }
}
