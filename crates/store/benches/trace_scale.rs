//! Does a trace cost grow with the lineage walked, or with the log?
//!
//! Also times an inclusion proof and the tree root, which read O(log n) stored
//! Merkle nodes.
//!
//! Builds sled stores that hold the same 300-lot chain (100 farm lots merged and
//! split through 200 transforms) next to 10 thousand and 1 million unrelated
//! events, then times trace-back and trace-forward on the chain in each, and
//! prints the figures and their ratio. Every timed query starts with an empty
//! event cache (a fresh `Store` over the same sled tree), so index reads count.
//!
//! `cargo bench -p lotline-store --bench trace_scale`
//! `LOTLINE_BENCH_BACKGROUND=10000,100000 cargo bench -p lotline-store --bench trace_scale` (quicker)

use std::sync::Arc;
use std::time::{Duration, Instant};

use lotline_domain::lineage::Lineage;
use lotline_proto::v1::event::Kind;
use lotline_proto::{build, v1};
use lotline_store::{SledBackend, Store, Submission, Writer, WriterConfig};

fn event(id: String, kind: Kind) -> v1::Event {
    build::event(id, "2026-03-01T08:00:00+07:00", "coop", "cocoa", kind)
}

fn harvest(id: String, lot: String, q: u64) -> v1::Event {
    event(id, build::harvest(lot, "plot", "wet cocoa beans", q))
}

fn transform(id: String, inputs: Vec<(String, u64)>, outputs: Vec<(String, u64)>) -> v1::Event {
    event(
        id,
        Kind::Transform(v1::Transform {
            inputs: inputs
                .into_iter()
                .map(|(lot, q)| v1::LotQuantity {
                    lot,
                    quantity: build::kg(q),
                })
                .collect(),
            outputs: outputs
                .into_iter()
                .map(|(lot, q)| v1::OutputLot {
                    lot,
                    product: "dry cocoa beans".into(),
                    quantity: build::kg(q),
                    ..Default::default()
                })
                .collect(),
            process: "drying".into(),
            ..Default::default()
        }),
    )
}

/// The traced chain: 100 farm lots, then 200 transforms each merging the previous
/// chain lot with a farm lot (a long spine with side inputs).
fn chain() -> Vec<v1::Event> {
    let mut events = Vec::new();
    for n in 0..100 {
        events.push(harvest(format!("chain-h{n}"), format!("CHAIN-F{n}"), 1000));
    }
    let mut previous = "CHAIN-F0".to_string();
    for n in 0..200 {
        let lot = format!("CHAIN-L{n}");
        let side = format!("CHAIN-F{}", 1 + n % 99);
        events.push(transform(
            format!("chain-t{n}"),
            vec![(previous.clone(), 100), (side, 5)],
            vec![(lot.clone(), 100)],
        ));
        previous = lot;
    }
    events
}

/// `n` unrelated events: small chains of a harvest and four transforms.
fn background(n: usize) -> impl Iterator<Item = v1::Event> {
    (0..n).map(|i| {
        let group = i / 5;
        match i % 5 {
            0 => harvest(format!("bg-h{group}"), format!("BG-{group}-0"), 500),
            k => transform(
                format!("bg-t{group}-{k}"),
                vec![(format!("BG-{group}-{}", k - 1), 400)],
                vec![(format!("BG-{group}-{k}"), 300)],
            ),
        }
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Figures {
    background: usize,
    load: Duration,
    back: Duration,
    forward: Duration,
    walked: usize,
    /// An inclusion proof of a leaf in the middle, and the root of the whole tree.
    proof: Duration,
    root: Duration,
}

fn measure(rt: &tokio::runtime::Runtime, background_events: usize) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend: Arc<SledBackend> =
        Arc::new(SledBackend::open(dir.path(), 512 << 20).expect("sled"));
    let store = Store::new(backend.clone());
    let (writer, done) = Writer::spawn(store.clone(), WriterConfig::default()).expect("writer");
    let started = Instant::now();
    rt.block_on(async {
        let register = event(
            "reg-coop".into(),
            Kind::RegisterOrg(v1::RegisterOrg {
                name: "coop".into(),
                role: 2,
                country: "VN".into(),
                ..Default::default()
            }),
        );
        writer
            .submit(vec![submission(&register)])
            .await
            .expect("register");
        // Half the background before the chain, half after, so the chain sits mid-log.
        let mut all: Vec<v1::Event> = Vec::new();
        let bg: Vec<v1::Event> = background(background_events).collect();
        let (before, after) = bg.split_at(bg.len() / 2);
        all.extend_from_slice(before);
        all.extend(chain());
        all.extend_from_slice(after);
        let mut pending = Vec::new();
        for chunk in all.chunks(2_000) {
            let subs: Vec<Submission> = chunk.iter().map(submission).collect();
            let w = writer.clone();
            pending.push(tokio::spawn(async move { w.submit(subs).await }));
            if pending.len() >= 4 {
                pending.remove(0).await.expect("join").expect("submit");
            }
        }
        for p in pending {
            p.await.expect("join").expect("submit");
        }
    });
    let load = started.elapsed();
    drop(writer);
    rt.block_on(done.wait());

    let tip = "CHAIN-L199";
    let mut back = Vec::new();
    let mut forward = Vec::new();
    let mut walked = 0;
    let mut proofs = Vec::new();
    let mut roots = Vec::new();
    for round in 0..25 {
        let fresh = Store::new(backend.clone());
        let t = Instant::now();
        let view = fresh.snapshot().expect("snapshot");
        let trace = Lineage::new(&view).trace_back(tip).expect("trace");
        let took = t.elapsed();
        assert_eq!(trace.origins.len(), 100);
        walked = trace.lots_walked;
        let fresh = Store::new(backend.clone());
        let t = Instant::now();
        let view = fresh.snapshot().expect("snapshot");
        let recall = Lineage::new(&view)
            .trace_forward("CHAIN-F0")
            .expect("recall");
        let took_forward = t.elapsed();
        assert_eq!(recall.descendants.len(), 200);
        let fresh = Store::new(backend.clone());
        let view = fresh.snapshot().expect("snapshot");
        let size = view.upto();
        let t = Instant::now();
        let path = view.inclusion_proof(size / 2, size).expect("proof");
        let took_proof = t.elapsed();
        assert!(!path.is_empty());
        let t = Instant::now();
        view.tree_root(size).expect("root");
        let took_root = t.elapsed();
        if round >= 3 {
            back.push(took);
            forward.push(took_forward);
            proofs.push(took_proof);
            roots.push(took_root);
        }
    }
    Figures {
        background: background_events,
        load,
        back: median(back),
        forward: median(forward),
        walked,
        proof: median(proofs),
        root: median(roots),
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("LOTLINE_BENCH_BACKGROUND")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 1_000_000]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "trace_scale: a 300-lot chain traced in logs of different sizes (median of 22 runs, cold event cache)"
    );
    let mut results = Vec::new();
    for size in sizes {
        let f = measure(&rt, size);
        println!(
            "  log of {:>9} unrelated events (+301 chain): loaded in {:>7.1?} ({:>8.0} events/s); trace back {:>8.2?} ({} lots walked); recall {:>8.2?}; inclusion proof {:>8.2?}; tree root {:>8.2?}",
            f.background,
            f.load,
            (f.background + 301) as f64 / f.load.as_secs_f64(),
            f.back,
            f.walked,
            f.forward,
            f.proof,
            f.root
        );
        results.push(f);
    }
    if let (Some(small), Some(large)) = (results.first(), results.last())
        && results.len() > 1
    {
        println!(
            "  ratio {}x larger log: trace back {:.2}x, recall {:.2}x the time (1.00x = independent of log size)",
            large.background / small.background.max(1),
            large.back.as_secs_f64() / small.back.as_secs_f64(),
            large.forward.as_secs_f64() / small.forward.as_secs_f64()
        );
        println!(
            "  inclusion proof {:.2}x, tree root {:.2}x the time (log2 of the sizes grows {:.2}x)",
            large.proof.as_secs_f64() / small.proof.as_secs_f64(),
            large.root.as_secs_f64() / small.root.as_secs_f64(),
            (large.background as f64).log2() / (small.background as f64).log2()
        );
    }
}

/// A wire event as intake submits it.
fn submission(wire: &v1::Event) -> Submission {
    let event = lotline_proto::convert::event_from_wire(wire);
    Submission::new(event, prost::Message::encode_to_vec(wire), "bench")
}
