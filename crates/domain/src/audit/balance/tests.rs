use std::sync::Arc;

use chrono::DateTime;

use super::*;
use crate::event::Chain::Cocoa;
use crate::event::CustodyModel::MassBalance;
use crate::fixtures::*;
use crate::lineage::Lineage;

const FT: &[&str] = &["fairtrade"];

/// A co-op that receives 1 000 kg of Fairtrade wet beans and 500 kg of
/// conventional ones, dries them at a stated 0.4 into 600 kg of dry beans sold
/// under mass balance, and ships `sold` kg of them as Fairtrade.
fn coop(sold: &str) -> Vec<Arc<Event>> {
    vec![
        event(
            "h1",
            "farm-a",
            "2026-01-01",
            Cocoa,
            harvest("W1", "p1", "wet cocoa beans", kg("1000"), FT),
        ),
        event(
            "h2",
            "farm-b",
            "2026-01-01",
            Cocoa,
            harvest("W2", "p2", "wet cocoa beans", kg("500"), &[]),
        ),
        at_site(
            event(
                "r1",
                "coop",
                "2026-01-02",
                Cocoa,
                receive(&[("W1", kg("1000"))], "farm-a"),
            ),
            "store",
        ),
        at_site(
            event(
                "r2",
                "coop",
                "2026-01-02",
                Cocoa,
                receive(&[("W2", kg("500"))], "farm-b"),
            ),
            "store",
        ),
        at_site(
            event(
                "t1",
                "coop",
                "2026-01-05",
                Cocoa,
                transform(
                    "drying",
                    &[("W1", kg("1000")), ("W2", kg("500"))],
                    vec![output(
                        "D1",
                        "dry cocoa beans",
                        kg("600"),
                        Some(MassBalance),
                        FT,
                    )],
                    Some("0.4"),
                ),
            ),
            "dryer",
        ),
        at_site(
            event(
                "s1",
                "coop",
                "2026-01-10",
                Cocoa,
                ship(&[("D1", kg(sold))], "trader", &[]),
            ),
            "dryer",
        ),
    ]
}

fn draw(events: &[Arc<Event>], query: &BalanceQuery) -> Vec<Ledger> {
    let source = Events(events.to_vec());
    let mut lineage = Lineage::new(&source);
    let facts: std::collections::HashMap<String, UpstreamLot> = ["W1", "W2", "D1"]
        .iter()
        .map(|l| (l.to_string(), lineage.lot_facts(l).expect("facts")))
        .collect();
    let refs: Vec<&Event> = events.iter().map(|e| e.as_ref()).collect();
    ledgers(query, &refs, &|lot| facts.get(lot).cloned())
}

fn query(sites: &[&str]) -> BalanceQuery {
    BalanceQuery {
        org: "coop".into(),
        sites: sites.iter().map(|s| s.to_string()).collect(),
        product: None,
        from: None,
        to: None,
        claim: "fairtrade".into(),
    }
}

#[test]
fn selling_exactly_what_was_bought_leaves_zero_and_no_violation() {
    // 400 kg of dry beans at 0.4 is 1 000 kg of wet beans: exactly the credit.
    let ledgers = draw(&coop("400"), &query(&[]));
    assert_eq!(ledgers.len(), 1);
    let l = &ledgers[0];
    assert_eq!(l.product, "wet cocoa beans");
    assert_eq!(l.unit, Unit::Kilogram);
    assert_eq!(l.inputs, d("1000"));
    assert_eq!(l.outputs, d("1000"));
    assert_eq!(l.closing, Decimal::ZERO);
    assert!(l.violations.is_empty());
    let out = l.entries.last().expect("entries");
    assert_eq!(out.direction, Direction::Output);
    assert_eq!(out.ratio, Some(d("0.4")));
    assert!(violations(&ledgers, "fairtrade").is_empty());
}

#[test]
fn selling_more_than_bought_is_a_violation_at_that_sale() {
    let ledgers = draw(&coop("401"), &query(&[]));
    let l = &ledgers[0];
    assert_eq!(l.closing, d("-2.5"));
    assert_eq!(l.violations, vec![l.entries.len() - 1]);
    let anomalies = violations(&ledgers, "fairtrade");
    assert_eq!(anomalies.len(), 1);
    let a = &anomalies[0];
    assert_eq!(a.kind, AnomalyKind::NegativeMassBalance);
    assert_eq!(a.event_id.as_deref(), Some("s1"));
    assert_eq!(a.lot, "D1");
    assert_eq!(a.org.as_deref(), Some("coop"));
    assert_eq!(a.figures.get("balance").map(String::as_str), Some("-2.5"));
}

#[test]
fn conventional_input_is_no_credit() {
    let l = &draw(&coop("400"), &query(&[]))[0];
    assert!(l.entries.iter().all(|e| e.lot != "W2"));
}

#[test]
fn a_site_scope_sees_only_its_sites() {
    // Bought at the store, sold from the dryer: single-site ledgers do not balance,
    // the group of both does.
    let events = coop("400");
    let store = &draw(&events, &query(&["store"]))[0];
    assert_eq!(store.closing, d("1000"));
    let dryer = &draw(&events, &query(&["dryer"]))[0];
    assert_eq!(dryer.closing, d("-1000"));
    assert_eq!(dryer.violations.len(), 1);
    let both = &draw(&events, &query(&["store", "dryer"]))[0];
    assert_eq!(both.closing, Decimal::ZERO);
}

#[test]
fn the_period_carries_an_opening_balance() {
    let mut q = query(&[]);
    q.from = Some(DateTime::parse_from_rfc3339("2026-01-03T00:00:00+00:00").expect("time"));
    let l = &draw(&coop("300"), &q)[0];
    assert_eq!(l.opening, d("1000"));
    assert_eq!(l.inputs, Decimal::ZERO);
    assert_eq!(l.outputs, d("750"));
    assert_eq!(l.closing, d("250"));
    assert_eq!(l.entries.len(), 1);
    q.from = None;
    q.to = Some(DateTime::parse_from_rfc3339("2026-01-03T00:00:00+00:00").expect("time"));
    let l = &draw(&coop("300"), &q)[0];
    assert_eq!(l.closing, d("1000"));
    assert_eq!(l.outputs, Decimal::ZERO);
}

#[test]
fn without_a_stated_ratio_the_recorded_yield_converts() {
    let mut events = coop("600");
    let t = Arc::make_mut(&mut events[4]);
    if let EventKind::Transform(tr) = &mut t.kind {
        tr.conversion_ratio = None;
    }
    // 600 out of 1 500 in: all 600 kg sold is 1 500 kg of wet beans, 500 more than bought.
    let l = &draw(&events, &query(&[]))[0];
    assert_eq!(l.outputs, d("1500"));
    assert_eq!(l.closing, d("-500"));
}

#[test]
fn a_product_filter_keeps_one_ledger() {
    let mut q = query(&[]);
    q.product = Some("Dry Cocoa Beans".into());
    assert!(draw(&coop("400"), &q).is_empty());
    q.product = Some("WET cocoa beans".into());
    assert_eq!(draw(&coop("400"), &q).len(), 1);
}

/// `levels` transforms of `org`, each 1 kg into 1 kg at `ratio`, then a sale.
fn chain_of(levels: usize, ratio: &str, diamond: bool) -> Vec<Arc<Event>> {
    let (a, b) = (format!("A{levels}"), format!("B{levels}"));
    let mut events = vec![
        event(
            "h",
            "farm",
            "2026-01-01",
            Cocoa,
            harvest(&a, "p", "wet cocoa beans", kg("1"), FT),
        ),
        event(
            "hb",
            "farm",
            "2026-01-01",
            Cocoa,
            harvest(&b, "p", "wet cocoa beans", kg("1"), FT),
        ),
        event(
            "r",
            "org",
            "2026-01-02",
            Cocoa,
            receive(&[(&a, kg("1")), (&b, kg("1"))], "farm"),
        ),
    ];
    for k in (0..levels).rev() {
        let (a_in, b_in) = (format!("A{}", k + 1), format!("B{}", k + 1));
        let inputs: Vec<(&str, crate::quantity::Quantity)> = if diamond {
            vec![(a_in.as_str(), kg("1")), (b_in.as_str(), kg("1"))]
        } else {
            vec![(a_in.as_str(), kg("1"))]
        };
        let mut outputs = vec![output(
            &format!("A{k}"),
            "dry cocoa beans",
            kg("1"),
            None,
            FT,
        )];
        if diamond {
            outputs.push(output(
                &format!("B{k}"),
                "dry cocoa beans",
                kg("1"),
                None,
                FT,
            ));
        }
        events.push(event(
            &format!("t{k:02}"),
            "org",
            "2026-01-03",
            Cocoa,
            transform("drying", &inputs, outputs, Some(ratio)),
        ));
    }
    events.push(event(
        "s",
        "org",
        "2026-01-09",
        Cocoa,
        ship(&[("A0", kg("1"))], "buyer", &[]),
    ));
    events
}

fn draw_all(events: &[Arc<Event>]) -> Vec<Ledger> {
    let source = Events(events.to_vec());
    let mut lineage = Lineage::new(&source);
    let lots: std::collections::BTreeSet<String> = events
        .iter()
        .flat_map(|e| e.lots().into_iter().map(|(l, _)| l.to_string()))
        .collect();
    let facts: std::collections::HashMap<String, UpstreamLot> = lots
        .iter()
        .map(|l| (l.clone(), lineage.lot_facts(l).expect("facts")))
        .collect();
    let refs: Vec<&Event> = events.iter().map(|e| e.as_ref()).collect();
    let mut q = query(&[]);
    q.org = "org".into();
    ledgers(&q, &refs, &|lot| facts.get(lot).cloned())
}

#[test]
fn extreme_ratios_are_left_out_with_a_note_not_a_panic() {
    // Ten steps at a stated 1 000 each: 1 kg sold stands for 10^-30 kg of input.
    let ledgers = draw_all(&chain_of(10, "1000", false));
    let l = ledgers
        .iter()
        .find(|l| l.product == "wet cocoa beans")
        .expect("ledger");
    assert_eq!(l.inputs, d("2"));
    assert_eq!(l.entries.len(), 3, "two receipts and the sale");
    assert!(l.outputs < d("0.000001"), "{}", l.outputs);
}

#[test]
fn a_lot_reached_by_many_paths_is_converted_once() {
    // 40 levels of two outputs made from two inputs: 2^40 paths, one visit each lot.
    let ledgers = draw_all(&chain_of(40, "1", true));
    let l = &ledgers[0];
    // A0 is half of the 2 kg at every level: the sale of 1 kg stands for 1 kg.
    assert_eq!(l.outputs, d("1"));
    assert_eq!(l.inputs, d("2"));
}

#[test]
fn at_one_instant_inputs_count_before_outputs() {
    // The sale's id sorts before the receipt's and both are dated the same (and so is the
    // drying in between, which the co-op may record only once it holds the beans).
    let mut events = coop("400");
    for e in events.iter_mut() {
        if e.id == "r1" || e.id == "s1" || e.id == "t1" {
            let m = Arc::make_mut(e);
            m.time = DateTime::parse_from_rfc3339("2026-01-10T08:00:00+00:00").expect("time");
        }
    }
    let l = &draw(&events, &query(&[]))[0];
    assert!(l.violations.is_empty(), "{:?}", l.entries);
    assert_eq!(l.closing, Decimal::ZERO);
}
