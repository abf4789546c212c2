//! Generated supply chains (merges, splits, partial consumption, corrections) and
//! their ground truth, computed here in plain floating point, independently of
//! lotline's decimal arithmetic.

use std::collections::{BTreeMap, BTreeSet};

use lotline_proto::v1;

use crate::events::{correct, harvest, register_org, ship, transform};

/// A small deterministic generator (xorshift64*), so tests need no extra crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Shuffles in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// What the right answers are.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// lot → origin lot → kilograms of that origin in the lot.
    pub origins: BTreeMap<String, BTreeMap<String, f64>>,
    /// lot → every lot downstream of it.
    pub descendants: BTreeMap<String, BTreeSet<String>>,
}

/// A generated chain: registration events first (they must precede the rest),
/// then the lot events in creation order.
#[derive(Debug, Clone)]
pub struct GeneratedChain {
    pub registrations: Vec<v1::Event>,
    pub events: Vec<v1::Event>,
    pub truth: Truth,
}

impl GeneratedChain {
    /// Registrations, then the lot events shuffled with `seed`.
    pub fn shuffled(&self, seed: u64) -> Vec<v1::Event> {
        let mut events = self.events.clone();
        Rng::new(seed).shuffle(&mut events);
        self.registrations.iter().cloned().chain(events).collect()
    }

    /// Registrations, then the lot events in creation order.
    pub fn in_order(&self) -> Vec<v1::Event> {
        self.registrations
            .iter()
            .cloned()
            .chain(self.events.iter().cloned())
            .collect()
    }
}

/// Generates `farms` harvests and `transforms` transforms over them, plus a
/// bogus transform for every tenth one, each declared erroneous by a correction.
/// Lot ids carry `prefix` so several chains can share a log.
pub fn generate(seed: u64, prefix: &str, farms: usize, transforms: usize) -> GeneratedChain {
    let mut rng = Rng::new(seed);
    let orgs = ["coop-a", "coop-b", "processor-c"];
    let registrations: Vec<v1::Event> = orgs.iter().map(|o| register_org(o)).collect();
    let mut events = Vec::new();
    let mut produced: BTreeMap<String, f64> = BTreeMap::new();
    let mut truth = Truth::default();
    let mut lots: Vec<String> = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Each co-op hands its harvest to the processor, which must hold a lot to transform it.
    let mut hand_overs = Vec::new();

    for n in 0..farms {
        let lot = format!("{prefix}F{n}");
        let q = 100 + rng.below(900);
        events.push(harvest(&format!("{prefix}h{n}"), orgs[n % 2], &lot, q));
        hand_overs.push(ship(
            &format!("{prefix}hand{n}"),
            orgs[n % 2],
            &lot,
            q,
            orgs[2],
        ));
        produced.insert(lot.clone(), q as f64);
        truth
            .origins
            .insert(lot.clone(), BTreeMap::from([(lot.clone(), q as f64)]));
        lots.push(lot);
    }
    for n in 0..transforms {
        // Prefer recent lots so lineage gets deep, sometimes reach far back (merges).
        let k = 1 + rng.below(3) as usize;
        let mut inputs: Vec<(String, u64)> = Vec::new();
        for _ in 0..k {
            let pick = if rng.below(3) == 0 {
                rng.below(lots.len() as u64) as usize
            } else {
                lots.len() - 1 - rng.below(lots.len().min(8) as u64) as usize
            };
            let lot = lots[pick].clone();
            if inputs.iter().any(|(l, _)| *l == lot) {
                continue;
            }
            let max = produced[&lot].max(1.0) as u64;
            inputs.push((lot, 1 + rng.below(max)));
        }
        let outs = 1 + rng.below(2) as usize;
        let outputs: Vec<(String, u64)> = (0..outs)
            .map(|o| (format!("{prefix}L{n}-{o}"), 1 + rng.below(500)))
            .collect();
        let total: f64 = outputs.iter().map(|(_, q)| *q as f64).sum();
        for (out, qo) in &outputs {
            let mut content: BTreeMap<String, f64> = BTreeMap::new();
            for (input, qi) in &inputs {
                for (origin, amount) in &truth.origins[input] {
                    *content.entry(origin.clone()).or_default() +=
                        amount / produced[input] * *qi as f64 * *qo as f64 / total;
                }
                edges.entry(input.clone()).or_default().insert(out.clone());
            }
            truth.origins.insert(out.clone(), content);
            produced.insert(out.clone(), *qo as f64);
            lots.push(out.clone());
        }
        let ins: Vec<(&str, u64)> = inputs.iter().map(|(l, q)| (l.as_str(), *q)).collect();
        let outs: Vec<(&str, u64)> = outputs.iter().map(|(l, q)| (l.as_str(), *q)).collect();
        events.push(transform(&format!("{prefix}t{n}"), orgs[2], &ins, &outs));
        if n % 5 == 4 {
            // Custody moves: the holder answer must not depend on arrival order. A part of the
            // lot, so the processor still holds the rest (event times are random here, and a
            // processor that had shipped all of a lot could not consume it later).
            let (lot, q) = &outputs[0];
            if *q >= 2 {
                events.push(ship(
                    &format!("{prefix}s{n}"),
                    orgs[2],
                    lot,
                    *q / 2,
                    orgs[n % 2],
                ));
            }
        }
        if n % 10 == 9 {
            // A transform recorded by mistake into an existing lot, then corrected:
            // it must not change any answer.
            let victim = lots[rng.below(lots.len() as u64) as usize].clone();
            let target = lots[rng.below(lots.len() as u64) as usize].clone();
            if victim != target {
                let id = format!("{prefix}bogus{n}");
                events.push(transform(
                    &id,
                    orgs[2],
                    &[(victim.as_str(), 5)],
                    &[(target.as_str(), 5)],
                ));
                events.push(correct(&format!("{prefix}fix{n}"), orgs[2], &id));
            }
        }
    }
    // Event times spread over days, not in creation order, with some ties.
    for event in &mut events {
        let minutes = rng.below(60 * 24 * 30);
        let base = spread_time(minutes);
        event.event_time = base;
    }
    // Handed over before anything else happens (times are not in creation order).
    for mut ship in hand_overs {
        ship.event_time = spread_time(0);
        events.push(ship);
    }
    for lot in &lots {
        let mut seen = BTreeSet::new();
        let mut stack = vec![lot.clone()];
        while let Some(l) = stack.pop() {
            for next in edges.get(&l).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        truth.descendants.insert(lot.clone(), seen);
    }
    GeneratedChain {
        registrations,
        events,
        truth,
    }
}

/// An RFC 3339 time `minutes` after 2026-03-01T00:00:00+07:00 (whole hours are
/// common, so ties happen).
fn spread_time(minutes: u64) -> String {
    let minutes = minutes - minutes % 30;
    let day = 1 + minutes / (60 * 24);
    let hour = (minutes / 60) % 24;
    let minute = minutes % 60;
    format!("2026-03-{day:02}T{hour:02}:{minute:02}:00+07:00")
}
