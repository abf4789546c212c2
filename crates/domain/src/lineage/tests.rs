use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::DateTime;
use rust_decimal::Decimal;

use super::*;
use crate::event::{Chain, Harvest, LotQuantity, LotRole, Movement, OutputLot};
use crate::fixtures::Events;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn kg(s: &str) -> Quantity {
    Quantity::new(d(s), Unit::Kilogram)
}

fn event(id: &str, org: &str, time: &str, kind: EventKind) -> Arc<Event> {
    Arc::new(Event {
        id: id.into(),
        time: DateTime::parse_from_rfc3339(time).unwrap(),
        org: org.into(),
        chain: Some(Chain::Cocoa),
        site: None,
        extensions: BTreeMap::new(),
        kind,
    })
}

/// A harvest the co-op records for its farm: the co-op holds the lot it then transforms.
fn harvest(id: &str, lot: &str, qty: Quantity) -> Arc<Event> {
    event(
        id,
        "coop-1",
        "2026-01-10T08:00:00+07:00",
        EventKind::Harvest(Harvest {
            lot: lot.into(),
            plot: format!("plot-{lot}"),
            product: "wet cocoa beans".into(),
            quantity: qty,
            harvest_start: None,
            harvest_end: None,
            custody: None,
            claims: vec!["fairtrade".into()],
        }),
    )
}

fn transform(id: &str, inputs: &[(&str, Quantity)], outputs: &[(&str, Quantity)]) -> Arc<Event> {
    event(
        id,
        "coop-1",
        "2026-01-12T08:00:00+07:00",
        EventKind::Transform(Transform {
            inputs: inputs
                .iter()
                .map(|(l, q)| LotQuantity {
                    lot: (*l).into(),
                    quantity: q.clone(),
                })
                .collect(),
            outputs: outputs
                .iter()
                .map(|(l, q)| OutputLot {
                    lot: (*l).into(),
                    product: "dry cocoa beans".into(),
                    quantity: q.clone(),
                    custody: None,
                    claims: vec!["fairtrade".into()],
                })
                .collect(),
            process: "drying".into(),
            conversion_ratio: Some(d("0.4")),
        }),
    )
}

/// [`transform`] of lots named by owned strings.
fn transform_named(
    id: &str,
    inputs: &[(String, Quantity)],
    outputs: &[(String, Quantity)],
) -> Arc<Event> {
    fn borrowed(lots: &[(String, Quantity)]) -> Vec<(&str, Quantity)> {
        lots.iter().map(|(l, q)| (l.as_str(), q.clone())).collect()
    }
    transform(id, &borrowed(inputs), &borrowed(outputs))
}

fn content(t: &TraceBack, lot: &str) -> Decimal {
    t.origins
        .iter()
        .find(|o| o.lot == lot)
        .unwrap()
        .content
        .amount
}

#[test]
fn a_harvest_lot_is_all_of_itself() {
    let src = Events(vec![harvest("h1", "A", kg("100"))]);
    let t = Lineage::new(&src).trace_back("A").unwrap();
    assert_eq!(t.origins.len(), 1);
    assert_eq!(content(&t, "A"), d("100"));
    assert_eq!(t.origins[0].share, Decimal::ONE);
    assert_eq!(t.origins[0].plot.as_deref(), Some("plot-A"));
}

#[test]
fn merge_then_split_follows_the_arithmetic() {
    // A (100 kg) and B (300 kg) dried into C (160 kg); C split into D (40) and E (120).
    let src = Events(vec![
        harvest("h1", "A", kg("100")),
        harvest("h2", "B", kg("300")),
        transform(
            "t1",
            &[("A", kg("100")), ("B", kg("300"))],
            &[("C", kg("160"))],
        ),
        transform(
            "t2",
            &[("C", kg("160"))],
            &[("D", kg("40")), ("E", kg("120"))],
        ),
    ]);
    let mut lineage = Lineage::new(&src);
    let t = lineage.trace_back("D").unwrap();
    assert_eq!(content(&t, "A"), d("25"));
    assert_eq!(content(&t, "B"), d("75"));
    assert_eq!(
        t.origins.iter().find(|o| o.lot == "A").unwrap().share,
        d("0.25")
    );
    let e = lineage.trace_back("E").unwrap();
    assert_eq!(content(&e, "B"), d("225"));
}

#[test]
fn partial_consumption_carries_only_what_was_used() {
    // Only half of A goes into C.
    let src = Events(vec![
        harvest("h1", "A", kg("100")),
        transform("t1", &[("A", kg("50"))], &[("C", kg("20"))]),
    ]);
    let t = Lineage::new(&src).trace_back("C").unwrap();
    assert_eq!(content(&t, "A"), d("50"));
}

#[test]
fn units_convert_within_a_dimension() {
    let src = Events(vec![
        harvest("h1", "A", Quantity::new(d("1"), Unit::Tonne)),
        transform("t1", &[("A", kg("500"))], &[("C", kg("200"))]),
    ]);
    let t = Lineage::new(&src).trace_back("C").unwrap();
    assert_eq!(t.origins[0].content, Quantity::new(d("0.5"), Unit::Tonne));
}

#[test]
fn an_unknown_input_is_its_own_origin_until_created() {
    let t1 = transform(
        "t1",
        &[("A", kg("100")), ("X", kg("100"))],
        &[("C", kg("80"))],
    );
    let early = Events(vec![harvest("h1", "A", kg("100")), t1.clone()]);
    let mut lineage = Lineage::new(&early);
    let t = lineage.trace_back("C").unwrap();
    let x = t.origins.iter().find(|o| o.lot == "X").unwrap();
    assert!(!x.known);
    assert_eq!(x.content, kg("100"));
    assert!(
        t.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::UnknownOrigin && a.lot == "X")
    );
    assert!(lineage.lot_state("C").unwrap().has_unknown_origin);

    let later = Events(vec![
        harvest("h1", "A", kg("100")),
        t1,
        harvest("h2", "X", kg("100")),
    ]);
    let t = Lineage::new(&later).trace_back("C").unwrap();
    assert!(t.origins.iter().all(|o| o.known));
    assert_eq!(content(&t, "X"), d("100"));
}

#[test]
fn a_cycle_is_reported_not_followed_forever() {
    let src = Events(vec![
        harvest("h1", "A", kg("10")),
        transform("t1", &[("A", kg("10")), ("C", kg("1"))], &[("B", kg("10"))]),
        transform("t2", &[("B", kg("10"))], &[("C", kg("10"))]),
    ]);
    let t = Lineage::new(&src).trace_back("C").unwrap();
    assert!(
        t.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::LineageCycle)
    );
}

#[test]
fn a_diamond_is_computed_once_per_lot() {
    // R consumes A and C; A consumes C as well.
    let src = Events(vec![
        harvest("h1", "C", kg("100")),
        transform("t1", &[("C", kg("50"))], &[("A", kg("50"))]),
        transform(
            "t2",
            &[("A", kg("50")), ("C", kg("50"))],
            &[("R", kg("100"))],
        ),
    ]);
    let t = Lineage::new(&src).trace_back("R").unwrap();
    assert_eq!(content(&t, "C"), d("100"));
    assert!(t.anomalies.is_empty(), "{:?}", t.anomalies);
}

#[test]
fn lot_state_reports_quantities_holder_and_anomalies() {
    let ship = event(
        "s1",
        "coop-1",
        "2026-01-01T00:00:00Z",
        EventKind::Ship(Movement {
            lots: vec![LotQuantity {
                lot: "A".into(),
                quantity: kg("10"),
            }],
            counterparty: "processor-1".into(),
            documents: vec![],
        }),
    );
    let src = Events(vec![
        harvest("h1", "A", kg("100")),
        transform("t1", &[("A", kg("70"))], &[("C", kg("40"))]),
        transform("t2", &[("A", kg("60"))], &[("D", kg("10"))]),
        ship,
    ]);
    let mut lineage = Lineage::new(&src);
    let s = lineage.lot_state("A").unwrap();
    assert_eq!(s.produced, Some(kg("100")));
    assert_eq!(s.consumed, Some(kg("130")));
    assert_eq!(s.remaining, Some(kg("-30")));
    assert_eq!(s.holder.as_deref(), Some("processor-1"));
    assert_eq!(s.custody, CustodyModel::IdentityPreserved);
    let kinds: Vec<_> = s.anomalies.iter().map(|a| a.kind).collect();
    assert!(kinds.contains(&AnomalyKind::OverConsumption));
    assert!(kinds.contains(&AnomalyKind::DatedBeforeCreation));
    // C: 40 kg out of 70 kg in is 0.571 > 0.4.
    let c = lineage.lot_state("C").unwrap();
    assert!(
        c.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::YieldAboveRatio)
    );
}

#[test]
fn mixing_lowers_custody_and_forward_trace_finds_every_descendant() {
    let src = Events(vec![
        harvest("h1", "A", kg("100")),
        harvest("h2", "B", kg("100")),
        transform(
            "t1",
            &[("A", kg("100")), ("B", kg("100"))],
            &[("C", kg("80"))],
        ),
        transform(
            "t2",
            &[("C", kg("80"))],
            &[("D", kg("30")), ("E", kg("30"))],
        ),
    ]);
    let mut lineage = Lineage::new(&src);
    assert_eq!(
        lineage.lot_state("C").unwrap().custody,
        CustodyModel::Segregated
    );
    let f = lineage.trace_forward("A").unwrap();
    let lots: Vec<_> = f
        .descendants
        .iter()
        .map(|d| (d.lot.as_str(), d.depth))
        .collect();
    assert_eq!(lots, vec![("C", 1), ("D", 2), ("E", 2)]);
    assert_eq!(f.descendants[1].quantity, kg("30"));
}

/// A small deterministic generator (xorshift), so the test needs no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn answers_do_not_depend_on_arrival_order_and_match_ground_truth() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut events = Vec::new();
    let mut lots: Vec<(String, u64)> = Vec::new(); // (lot, produced kg)
    for n in 0..30 {
        let q = 50 + rng.below(500);
        events.push(harvest(
            &format!("h{n}"),
            &format!("F{n}"),
            kg(&q.to_string()),
        ));
        lots.push((format!("F{n}"), q));
    }
    for n in 0..60 {
        let k = 1 + rng.below(3) as usize;
        let mut inputs = Vec::new();
        for _ in 0..k {
            let (lot, q) = lots[rng.below(lots.len() as u64) as usize].clone();
            if inputs.iter().any(|(l, _): &(String, Quantity)| *l == lot) {
                continue;
            }
            inputs.push((lot, kg(&(1 + rng.below(q)).to_string())));
        }
        let outs = 1 + rng.below(2) as usize;
        let mut outputs = Vec::new();
        for o in 0..outs {
            let q = 1 + rng.below(200);
            outputs.push((format!("L{n}-{o}"), kg(&q.to_string())));
            lots.push((format!("L{n}-{o}"), q));
        }
        events.push(transform_named(&format!("t{n}"), &inputs, &outputs));
    }
    // Ground truth in f64, computed independently in creation order.
    let mut truth: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    let mut produced: BTreeMap<String, f64> = BTreeMap::new();
    for e in &events {
        match &e.kind {
            EventKind::Harvest(h) => {
                let q: f64 = h.quantity.amount.to_string().parse().unwrap();
                truth.insert(h.lot.clone(), BTreeMap::from([(h.lot.clone(), q)]));
                produced.insert(h.lot.clone(), q);
            }
            EventKind::Transform(t) => {
                let total: f64 = t
                    .outputs
                    .iter()
                    .map(|o| o.quantity.amount.to_string().parse::<f64>().unwrap())
                    .sum();
                for o in &t.outputs {
                    let qo: f64 = o.quantity.amount.to_string().parse().unwrap();
                    let mut c: BTreeMap<String, f64> = BTreeMap::new();
                    for i in &t.inputs {
                        let qi: f64 = i.quantity.amount.to_string().parse().unwrap();
                        for (origin, amount) in &truth[&i.lot] {
                            *c.entry(origin.clone()).or_default() +=
                                amount / produced[&i.lot] * qi * qo / total;
                        }
                    }
                    truth.insert(o.lot.clone(), c);
                    produced.insert(o.lot.clone(), qo);
                }
            }
            _ => {}
        }
    }
    let forward = Events(events.clone());
    let mut shuffled = events.clone();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let backward = Events(shuffled);
    for (lot, expected) in &truth {
        let a = Lineage::new(&forward).trace_back(lot).unwrap();
        let b = Lineage::new(&backward).trace_back(lot).unwrap();
        assert_eq!(a, b, "answers for {lot} differ with arrival order");
        assert_eq!(a.origins.len(), expected.len(), "origins of {lot}");
        for o in &a.origins {
            let got: f64 = o.content.amount.to_string().parse().unwrap();
            let want = expected[&o.lot];
            assert!(
                (got - want).abs() <= 1e-6 * want.max(1.0),
                "{lot} <- {}: {got} vs {want}",
                o.lot
            );
        }
        let fa = Lineage::new(&forward).trace_forward(lot).unwrap();
        let fb = Lineage::new(&backward).trace_forward(lot).unwrap();
        assert_eq!(fa, fb);
    }
}

#[test]
fn extreme_quantities_are_reported_not_panicked_on() {
    // Valid amounts at the edges (10^12 t, 10^-6 g) compounding over hops.
    let big = Quantity::new(d("1000000000000"), Unit::Tonne);
    let tiny = Quantity::new(d("0.000001"), Unit::Gram);
    let src = Events(vec![
        harvest("h1", "A", big.clone()),
        transform("t1", &[("A", big.clone())], &[("B", tiny.clone())]),
        transform("t2", &[("B", big.clone())], &[("C", tiny.clone())]),
        transform("t3", &[("C", big.clone())], &[("D", tiny)]),
    ]);
    let mut lineage = Lineage::new(&src);
    let t = lineage.trace_back("D").unwrap();
    assert!(
        t.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::ArithmeticOverflow),
        "{:?}",
        t.anomalies
    );
    lineage.lot_state("D").unwrap();
}

#[test]
fn mixed_output_units_are_flagged() {
    let src = Events(vec![
        harvest("h1", "A", kg("100")),
        transform(
            "t1",
            &[("A", kg("100"))],
            &[("B", kg("40")), ("C", Quantity::new(d("10"), Unit::Piece))],
        ),
    ]);
    let t = Lineage::new(&src).trace_back("B").unwrap();
    assert!(
        t.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::MixedOutputUnits)
    );
}

fn by(org: &str, e: Arc<Event>) -> Arc<Event> {
    let mut e = (*e).clone();
    e.org = org.into();
    Arc::new(e)
}

fn moved(id: &str, org: &str, ship: bool, lot: &str, qty: Quantity, other: &str) -> Arc<Event> {
    let m = Movement {
        lots: vec![LotQuantity {
            lot: lot.into(),
            quantity: qty,
        }],
        counterparty: other.into(),
        documents: vec![],
    };
    let kind = if ship {
        EventKind::Ship(m)
    } else {
        EventKind::Receive(m)
    };
    event(id, org, "2026-01-11T08:00:00+07:00", kind)
}

fn not_holder(anomalies: &[Anomaly]) -> Vec<(String, Option<String>)> {
    anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::NotHolder)
        .map(|a| (a.lot.clone(), a.event_id.clone()))
        .collect()
}

#[test]
fn another_orgs_events_on_a_lot_it_does_not_hold_change_none_of_its_answers() {
    let honest = vec![
        harvest("h1", "A", kg("100")),
        transform("t1", &[("A", kg("100"))], &[("C", kg("40"))]),
    ];
    let hostile = vec![
        // Creates the co-op's lot name again, consumes it, ships it to a friend, who makes
        // something of it.
        by("evil", harvest("e1", "A", kg("1"))),
        by(
            "evil",
            transform("e2", &[("A", kg("50"))], &[("X", kg("20"))]),
        ),
        by("evil", moved("e3", "evil", true, "A", kg("50"), "friend")),
        by(
            "friend",
            transform("e4", &[("A", kg("50"))], &[("Y", kg("20"))]),
        ),
        by(
            "evil",
            transform("e5", &[("C", kg("5"))], &[("Z", kg("2"))]),
        ),
    ];
    let clean = Events(honest.clone());
    let mut before = Lineage::new(&clean);
    let (back, forward, state) = (
        before.trace_back("C").unwrap(),
        before.trace_forward("A").unwrap(),
        before.lot_state("A").unwrap(),
    );
    let mut all = honest.clone();
    all.extend(hostile);
    let attacked = Events(all);
    let mut after = Lineage::new(&attacked);
    let back_after = after.trace_back("C").unwrap();
    assert_eq!(back_after.origins, back.origins);
    assert_eq!(after.trace_forward("A").unwrap(), forward);
    assert_eq!(after.trace_forward("C").unwrap().descendants, vec![]);
    let state_after = after.lot_state("A").unwrap();
    assert_eq!(
        (
            &state_after.creator,
            &state_after.holder,
            &state_after.produced,
            &state_after.consumed
        ),
        (
            &state.creator,
            &state.holder,
            &state.produced,
            &state.consumed
        )
    );
    // Each hostile event is named, charged to its org, the owner given.
    let flagged = not_holder(&state_after.anomalies);
    for id in ["e1", "e2", "e3", "e4"] {
        assert!(
            flagged.contains(&("A".into(), Some(id.into()))),
            "{id} not flagged: {flagged:?}"
        );
    }
    let e2 = state_after
        .anomalies
        .iter()
        .find(|a| a.event_id.as_deref() == Some("e2"))
        .unwrap();
    assert_eq!(e2.org.as_deref(), Some("evil"));
    assert_eq!(e2.figures.get("owner").map(String::as_str), Some("coop-1"));
    assert!(e2.explanation.contains("\"coop-1\""), "{}", e2.explanation);
    // The hostile product does not inherit the co-op's origins.
    let x = Lineage::new(&attacked).trace_back("X").unwrap();
    assert!(x.origins.iter().all(|o| o.lot != "A"), "{:?}", x.origins);
}

#[test]
fn hand_overs_count_in_any_log_order_and_make_the_next_holder() {
    // co-op → trader → exporter, who roasts; the log has them in every order.
    let events = vec![
        harvest("h1", "A", kg("100")),
        moved("s1", "coop-1", true, "A", kg("100"), "trader"),
        {
            let mut r = (*moved("r2", "exporter", false, "A", kg("100"), "trader")).clone();
            r.time = DateTime::parse_from_rfc3339("2026-01-11T15:00:00+07:00").unwrap();
            Arc::new(r)
        },
        by(
            "exporter",
            transform("t1", &[("A", kg("100"))], &[("R", kg("80"))]),
        ),
    ];
    let expected = Lineage::new(&Events(events.clone()))
        .trace_back("R")
        .unwrap();
    assert_eq!(content(&expected, "A"), d("100"));
    assert!(
        not_holder(&expected.anomalies).is_empty(),
        "{:?}",
        expected.anomalies
    );
    for order in [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]] {
        let shuffled: Vec<_> = order.iter().map(|&n| Arc::clone(&events[n])).collect();
        let source = Events(shuffled);
        let mut lineage = Lineage::new(&source);
        let t = lineage.trace_back("R").unwrap();
        assert_eq!(t.origins, expected.origins, "order {order:?}");
        assert!(not_holder(&t.anomalies).is_empty(), "{:?}", t.anomalies);
        assert_eq!(
            lineage.lot_state("A").unwrap().holder.as_deref(),
            Some("exporter")
        );
    }
    // Without the trader's part the exporter's receipt is from an org that never held it.
    let broken = vec![
        harvest("h1", "A", kg("100")),
        Arc::clone(&events[2]),
        Arc::clone(&events[3]),
    ];
    let t = Lineage::new(&Events(broken)).trace_back("R").unwrap();
    assert_eq!(
        not_holder(&t.anomalies),
        vec![
            ("A".into(), Some("r2".into())),
            ("A".into(), Some("t1".into()))
        ]
    );
    assert!(t.origins.iter().all(|o| o.lot != "A"));
}

/// A holder that shipped all of a lot holds it no longer: its later ship or consumption of the
/// lot is flagged and left out, whatever the log order; a partial ship keeps it a holder, and a
/// lot that comes back makes it one again.
#[test]
fn a_holder_that_shipped_all_of_a_lot_holds_it_no_longer() {
    let at = |e: Arc<Event>, time: &str| {
        let mut e = (*e).clone();
        e.time = DateTime::parse_from_rfc3339(time).unwrap();
        Arc::new(e)
    };
    let honest = vec![
        harvest("h1", "A", kg("100")),
        // Two partial ships, then all of it is gone.
        at(
            moved("s1", "coop-1", true, "A", kg("40"), "trader"),
            "2026-01-10T08:00:00+00:00",
        ),
        at(
            moved("s2", "coop-1", true, "A", kg("60"), "trader"),
            "2026-01-11T08:00:00+00:00",
        ),
        at(
            by(
                "trader",
                transform("t1", &[("A", kg("100"))], &[("R", kg("80"))]),
            ),
            "2026-01-12T08:00:00+00:00",
        ),
    ];
    let late = at(
        by(
            "coop-1",
            transform("t2", &[("A", kg("10"))], &[("X", kg("8"))]),
        ),
        "2026-01-13T08:00:00+00:00",
    );
    let resold = at(
        moved("s3", "coop-1", true, "A", kg("10"), "evil"),
        "2026-01-13T09:00:00+00:00",
    );
    let mut all = honest.clone();
    all.extend([late, resold]);
    let expected = Lineage::new(&Events(honest.clone()))
        .trace_back("R")
        .unwrap();
    assert_eq!(content(&expected, "A"), d("100"));
    for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 5, 0, 4, 1, 3]] {
        let shuffled: Vec<_> = order.iter().map(|&n| Arc::clone(&all[n])).collect();
        let source = Events(shuffled);
        let mut lineage = Lineage::new(&source);
        let t = lineage.trace_back("R").unwrap();
        assert_eq!(t.origins, expected.origins, "order {order:?}");
        let mut flagged = not_holder(&lineage.lot_state("A").unwrap().anomalies);
        flagged.sort();
        assert_eq!(
            flagged,
            vec![
                ("A".into(), Some("s3".into())),
                ("A".into(), Some("t2".into()))
            ],
            "order {order:?}"
        );
        // Nothing the co-op did after shipping all of A reaches A's recall.
        let recall = lineage.trace_forward("A").unwrap();
        assert!(
            recall.descendants.iter().all(|l| l.lot != "X"),
            "order {order:?}: {:?}",
            recall.descendants
        );
    }
    // Some of A comes back to the co-op: it holds it again and may use it.
    let mut returned = all.clone();
    returned.push(at(
        moved("s4", "trader", true, "A", kg("10"), "coop-1"),
        "2026-01-12T20:00:00+00:00",
    ));
    let source = Events(returned);
    let mut lineage = Lineage::new(&source);
    let flagged = not_holder(&lineage.lot_state("A").unwrap().anomalies);
    assert!(flagged.is_empty(), "{flagged:?}");
}

#[test]
fn a_walk_stops_at_its_budget_and_says_where() {
    // A chain of 20 drying steps over one harvest: A0 → A1 → … → A20.
    let mut events = vec![harvest("h0", "A0", kg("1000"))];
    for n in 1..=20 {
        events.push(transform(
            &format!("t{n}"),
            &[(&format!("A{}", n - 1), kg("10"))],
            &[(&format!("A{n}"), kg("10"))],
        ));
    }
    let source = Events(events);
    let full = Lineage::new(&source).trace_back("A20").unwrap();
    assert_eq!(full.partial, None);
    assert_eq!(full.origins.len(), 1);

    let limited = Budget {
        max_lots: 5,
        stop: None,
    };
    let t = Lineage::new(&source)
        .with_budget(limited.clone())
        .trace_back("A20")
        .unwrap();
    let why = t.partial.expect("partial");
    assert!(why.contains("limit") && why.contains("A15"), "{why}");
    assert!(t.lots_walked <= 6, "{}", t.lots_walked);
    assert!(t.origins.iter().all(|o| o.lot != "A0"), "{:?}", t.origins);

    let r = Lineage::new(&source)
        .with_budget(limited)
        .trace_forward("A0")
        .unwrap();
    assert!(r.partial.is_some());
    assert!(r.descendants.len() < 20, "{}", r.descendants.len());

    // A deadline that has passed stops the walk at once.
    let passed = Budget {
        max_lots: usize::MAX,
        stop: Some(Arc::new(|| true)),
    };
    let t = Lineage::new(&source)
        .with_budget(passed)
        .trace_back("A20")
        .unwrap();
    assert!(t.partial.expect("partial").contains("deadline"));
}

#[test]
fn an_event_names_each_lot_in_its_role_as_its_lot_list_does() {
    let made = transform("t1", &[("A", kg("10")), ("B", kg("5"))], &[("C", kg("14"))]);
    assert_eq!(
        made.lots(),
        vec![
            ("A", LotRole::Consumed),
            ("B", LotRole::Consumed),
            ("C", LotRole::Created)
        ]
    );
    for (lot, role) in made.lots() {
        assert!(made.has_lot_role(lot, role), "{lot} {role:?}");
    }
    assert!(!made.has_lot_role("A", LotRole::Created));
    assert!(!made.has_lot_role("C", LotRole::Consumed));
    assert!(!made.has_lot_role("D", LotRole::Consumed));
    // It stops at the first lot the caller is looking for.
    let mut seen = Vec::new();
    assert!(made.any_lot(|lot, _| {
        seen.push(lot);
        lot == "B"
    }));
    assert_eq!(seen, ["A", "B"]);
    let grown = harvest("h1", "A", kg("10"));
    assert!(grown.has_lot_role("A", LotRole::Created));
    assert!(!grown.any_lot(|lot, _| lot == "B"));
}

/// A source that keeps judged custody and computed lineage between questions, as the store does:
/// an event that names a lot makes it be judged again; kept lineage is left for the walk to
/// check.
struct Keeping {
    events: std::cell::RefCell<Vec<Arc<Event>>>,
    judged: std::cell::RefCell<HashMap<String, Arc<LotCustody>>>,
    kept: std::cell::RefCell<HashMap<String, Arc<KeptLineage>>>,
    /// Kept lineage found, and kept lineage replaced (found stale and computed again).
    found: std::cell::Cell<usize>,
    replaced: std::cell::Cell<usize>,
    /// Every lineage kept.
    keeps: std::cell::Cell<usize>,
    /// Kept trace-backs, with the number of events the log held when each was kept.
    traces: std::cell::RefCell<HashMap<String, (usize, Arc<KeptTrace>)>>,
    /// Kept traces handed over as of this view, as of another view, and those of another
    /// view kept again unchanged (the walk found they hold).
    traces_this_view: std::cell::Cell<usize>,
    traces_another_view: std::cell::Cell<usize>,
    traces_confirmed: std::cell::Cell<usize>,
}

impl Keeping {
    fn new() -> Self {
        Keeping {
            events: Default::default(),
            judged: Default::default(),
            kept: Default::default(),
            found: Default::default(),
            replaced: Default::default(),
            keeps: Default::default(),
            traces: Default::default(),
            traces_this_view: Default::default(),
            traces_another_view: Default::default(),
            traces_confirmed: Default::default(),
        }
    }

    fn add(&self, event: Arc<Event>) {
        for (lot, _) in event.lots() {
            self.judged.borrow_mut().remove(lot);
        }
        self.events.borrow_mut().push(event);
    }

    fn plain(&self) -> Events {
        Events(self.events.borrow().clone())
    }
}

impl LineageSource for Keeping {
    type Error = std::convert::Infallible;
    fn creations(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        self.plain().creations(lot)
    }
    fn consumptions(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        self.plain().consumptions(lot)
    }
    fn mentions(&self, lot: &str) -> Result<Vec<Arc<Event>>, Self::Error> {
        self.plain().mentions(lot)
    }
    fn custody(&self, lot: &str) -> Result<Arc<LotCustody>, Self::Error> {
        if let Some(judged) = self.judged.borrow().get(lot) {
            return Ok(Arc::clone(judged));
        }
        let judged = judge_lot(lot, |l| self.mentions(l))?;
        self.judged
            .borrow_mut()
            .insert(lot.to_string(), Arc::clone(&judged));
        Ok(judged)
    }
    const KEEPS_LINEAGE: bool = true;
    fn kept_lineage(&self, lot: &str) -> Option<Arc<KeptLineage>> {
        let kept = self.kept.borrow().get(lot).cloned();
        self.found
            .set(self.found.get() + usize::from(kept.is_some()));
        kept
    }
    fn keep_lineage(&self, lot: &str, kept: Arc<KeptLineage>) {
        let before = self.kept.borrow_mut().insert(lot.to_string(), kept);
        self.replaced
            .set(self.replaced.get() + usize::from(before.is_some()));
        self.keeps.set(self.keeps.get() + 1);
    }
    fn kept_trace(&self, lot: &str) -> Option<(Arc<KeptTrace>, KeptSince)> {
        let (events, kept) = self.traces.borrow().get(lot).cloned()?;
        let (since, counter) = if events == self.events.borrow().len() {
            (KeptSince::ThisView, &self.traces_this_view)
        } else {
            (KeptSince::AnotherView, &self.traces_another_view)
        };
        counter.set(counter.get() + 1);
        Some((kept, since))
    }
    fn keep_trace(&self, lot: &str, kept: Arc<KeptTrace>) {
        let events = self.events.borrow().len();
        let before = self
            .traces
            .borrow_mut()
            .insert(lot.to_string(), (events, Arc::clone(&kept)));
        if before.is_some_and(|(_, b)| Arc::ptr_eq(&b, &kept)) {
            self.traces_confirmed.set(self.traces_confirmed.get() + 1);
        }
    }
}

#[test]
fn kept_lineage_answers_every_question_as_computing_it_again_does() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let source = Keeping::new();
    let grams = |n: u64| Quantity::new(Decimal::from(n), Unit::Gram);
    let mut lots: Vec<String> = Vec::new();
    let limited = Budget {
        max_lots: 7,
        stop: None,
    };
    for step in 0..240u64 {
        // The history grows by one event of a random kind between questions.
        let id = format!("e{step}");
        let event = match rng.below(10) {
            0..=2 => {
                let lot = format!("F{step}");
                lots.push(lot.clone());
                harvest(&id, &lot, kg(&(10 + rng.below(500)).to_string()))
            }
            3..=6 if !lots.is_empty() => {
                let mut inputs: Vec<(String, Quantity)> = Vec::new();
                for _ in 0..1 + rng.below(3) {
                    // Now and then an input nothing creates (yet), counted in grams or kilograms.
                    let lot = match rng.below(5) {
                        0 => format!("X{}", rng.below(4)),
                        _ => lots[rng.below(lots.len() as u64) as usize].clone(),
                    };
                    if inputs.iter().all(|(l, _)| *l != lot) {
                        let q = 1 + rng.below(50);
                        let q = if rng.below(3) == 0 {
                            grams(q * 1000)
                        } else {
                            kg(&q.to_string())
                        };
                        inputs.push((lot, q));
                    }
                }
                let mut outputs: Vec<(String, Quantity)> = (0..1 + rng.below(2))
                    .map(|o| (format!("L{step}-{o}"), kg(&(1 + rng.below(90)).to_string())))
                    .collect();
                // Now and then it also makes more of one of the first lots: a second creation,
                // and a cycle when that lot is upstream of an input (as the first lots often are).
                if rng.below(12) == 0 {
                    let again = lots[rng.below(lots.len().min(6) as u64) as usize].clone();
                    if inputs.iter().all(|(l, _)| *l != again) {
                        outputs.push((again, kg(&(1 + rng.below(20)).to_string())));
                    }
                }
                lots.extend(
                    outputs
                        .iter()
                        .map(|(l, _)| l.clone())
                        .filter(|l| l.starts_with(&format!("L{step}-"))),
                );
                let made = transform_named(&id, &inputs, &outputs);
                // Some are recorded by a mill that holds only what was shipped to it.
                if rng.below(4) == 0 {
                    by("mill", made)
                } else {
                    made
                }
            }
            7 if !lots.is_empty() => {
                let lot = lots[rng.below(lots.len() as u64) as usize].clone();
                moved(&id, "coop-1", true, &lot, kg("5"), "mill")
            }
            8 if step > 160 => {
                // An unknown lot turns out to be a harvest after all.
                let lot = format!("X{}", rng.below(4));
                harvest(&id, &lot, kg(&(10 + rng.below(100)).to_string()))
            }
            _ => continue,
        };
        source.add(event);
        if lots.is_empty() {
            continue;
        }
        for _ in 0..3 {
            let lot = lots[rng.below(lots.len() as u64) as usize].clone();
            let fresh = source.plain();
            assert_eq!(
                Lineage::new(&source).trace_back(&lot).unwrap(),
                Lineage::new(&fresh).trace_back(&lot).unwrap(),
                "trace-back of {lot} after {step} events"
            );
            assert_eq!(
                Lineage::new(&source).lot_state(&lot).unwrap(),
                Lineage::new(&fresh).lot_state(&lot).unwrap(),
                "state of {lot} after {step} events"
            );
            assert_eq!(
                Lineage::new(&source)
                    .with_budget(limited.clone())
                    .trace_back(&lot)
                    .unwrap(),
                Lineage::new(&fresh)
                    .with_budget(limited.clone())
                    .trace_back(&lot)
                    .unwrap(),
                "trace-back of {lot} within a budget after {step} events"
            );
            // One walk over several lots, as the audit does.
            let other = lots[rng.below(lots.len() as u64) as usize].clone();
            let mut kept = Lineage::new(&source);
            let mut again = Lineage::new(&fresh);
            assert_eq!(
                kept.upstream(&other).unwrap(),
                again.upstream(&other).unwrap()
            );
            assert_eq!(
                kept.trace_back(&lot).unwrap(),
                again.trace_back(&lot).unwrap(),
                "{lot} after {other}"
            );
        }
    }
    // Kept traces were taken as they were in the view they were made in, and checked in
    // later ones, where some held.
    let (this_view, another_view) = (
        source.traces_this_view.get(),
        source.traces_another_view.get(),
    );
    assert!(
        this_view > 100,
        "{this_view} kept traces taken as they were"
    );
    assert!(another_view > 100, "{another_view} kept traces checked");
    let confirmed = source.traces_confirmed.get();
    assert!(
        confirmed > 10 && confirmed < another_view,
        "{confirmed} of {another_view} kept traces held in a later view"
    );
    // Stale entries were met and passed over.
    let (found, replaced) = (source.found.get(), source.replaced.get());
    assert!(replaced > 100, "{replaced} replaced");
    assert!(found > replaced, "{found} found, {replaced} replaced");
    // With nothing new, asking about a lot again computes nothing, unless a cycle is upstream of
    // it (a node next to a cycle is never kept, so those downstream of it are computed again).
    let fresh = source.plain();
    for lot in &lots {
        Lineage::new(&source).trace_back(lot).unwrap();
    }
    let (mut cycles, mut reused) = (0, 0);
    for lot in &lots {
        let keeps = source.keeps.get();
        let t = Lineage::new(&source).trace_back(lot).unwrap();
        assert_eq!(t, Lineage::new(&fresh).trace_back(lot).unwrap(), "{lot}");
        if t.anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::LineageCycle)
        {
            cycles += 1;
        } else {
            assert_eq!(
                source.keeps.get(),
                keeps,
                "{lot} computed again with nothing new"
            );
            reused += 1;
        }
    }
    assert!(reused > 20, "{reused} lots answered from kept lineage");
    assert!(cycles > 0, "the history has no cycle");
}
