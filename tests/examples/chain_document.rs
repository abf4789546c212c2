//! Writes the generated EPCIS document the import benchmarks use, to profile an import by hand:
//! `cargo run --release -p lotline-e2e --example chain_document -- 1000000 /tmp/chain.jsonld`
//! (events, then the output path; the seed is the benchmarks' own). It prints the deep history's
//! finished lots (depth 8), one per line with its count of origins, to trace by hand.

use std::fs::File;
use std::io::BufWriter;

fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: chain_document EVENTS PATH";
    let events: usize = args
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{usage}"));
    let path = args.next().unwrap_or_else(|| panic!("{usage}"));
    let out = BufWriter::new(File::create(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    let truth =
        lotline_testkit::epcis::write_deep_chain_document(out, 11, events).expect("write document");
    for (lot, t) in &truth.finished {
        println!("{lot} {}", t.origins.len());
    }
}
