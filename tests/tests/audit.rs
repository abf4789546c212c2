//! Auditor answers end to end (issue 5): the anomaly listing on a clean scenario
//! of thousands of lots and with planted problems, mass-balance ledgers against
//! plain arithmetic, the chain-of-custody report, the EUDR export (parsed with
//! the `geojson` crate), the public view, argument errors, and the CLI commands.
//! Scenarios come from `lotline_testkit::scenario`, posted over gRPC to the real
//! server on 127.0.0.1:0 with a temp sled directory.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use common::{all_rejected, lotline, stderr, stdout};
use lotline_proto::v1;
use lotline_proto::v1::audit_service_client::AuditServiceClient;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_testkit::scenario::{Coop, Crop, Expected, Planted, Problem, Scenario};
use lotline_testkit::{BinaryServer, TestServer};
use tonic::transport::Channel;

const SEED: u64 = 0x000a_0d17_2026;

/// Runs a test body with a deadline, so a hang fails instead of blocking.
async fn bounded<F: Future<Output = ()>>(limit: Duration, body: F) {
    tokio::time::timeout(limit, body)
        .await
        .unwrap_or_else(|_| panic!("the test did not finish within {limit:?}"));
}

/// Posts `events` in batches of at most 10 000 and returns every outcome.
async fn post(client: &mut EventServiceClient<Channel>, events: &[v1::Event]) -> Vec<v1::Outcome> {
    let mut outcomes = Vec::with_capacity(events.len());
    for chunk in events.chunks(10_000) {
        let answer = client
            .record_batch(v1::RecordBatchRequest {
                events: chunk.to_vec(),
            })
            .await
            .expect("record batch")
            .into_inner();
        assert_eq!(answer.outcomes.len(), chunk.len());
        outcomes.extend(answer.outcomes);
    }
    outcomes
}

/// Posts `events`; every one must be accepted except those in `rejected`,
/// which must be rejected. Returns the rejection reasons by event id.
async fn post_expecting(
    client: &mut EventServiceClient<Channel>,
    events: &[v1::Event],
    rejected: &[&str],
) -> BTreeMap<String, String> {
    let mut reasons = BTreeMap::new();
    for o in post(client, events).await {
        match (&o.result, rejected.contains(&o.event_id.as_str())) {
            (Some(v1::outcome::Result::Accepted(_)), false) => {}
            (Some(v1::outcome::Result::Rejected(r)), true) => {
                reasons.insert(o.event_id.clone(), r.reason.clone());
            }
            (other, _) => panic!("{}: unexpected outcome {other:?}", o.event_id),
        }
    }
    assert_eq!(reasons.len(), rejected.len(), "rejections: {reasons:?}");
    reasons
}

/// The events of every planted problem, with the ids that must be rejected.
fn planted_events(planted: &[Planted]) -> (Vec<v1::Event>, Vec<&str>) {
    let events = planted.iter().flat_map(|p| p.events.clone()).collect();
    let rejected = planted
        .iter()
        .filter_map(|p| p.rejected.as_deref())
        .collect();
    (events, rejected)
}

/// One page of anomalies.
async fn anomalies_page(
    audit: &mut AuditServiceClient<Channel>,
    request: v1::ListAnomaliesRequest,
) -> v1::ListAnomaliesResponse {
    audit
        .list_anomalies(request)
        .await
        .expect("list anomalies")
        .into_inner()
}

/// How many events the server's log holds (its latest checkpoint's tree size).
async fn tree_size(server: &TestServer) -> u64 {
    server
        .log()
        .await
        .get_checkpoint(v1::GetCheckpointRequest { tree_size: 0 })
        .await
        .expect("checkpoint")
        .into_inner()
        .tree_size
}

/// Every anomaly matching `request`, following cursors (at most 100 pages).
async fn all_anomalies(
    audit: &mut AuditServiceClient<Channel>,
    mut request: v1::ListAnomaliesRequest,
) -> Vec<v1::Anomaly> {
    let mut out = Vec::new();
    for _ in 0..100 {
        let page = anomalies_page(audit, request.clone()).await;
        out.extend(page.anomalies);
        if page.next_cursor.is_empty() {
            return out;
        }
        request.cursor = page.next_cursor;
    }
    panic!("more than 100 pages of anomalies")
}

fn describe(anomalies: &[v1::Anomaly]) -> String {
    anomalies
        .iter()
        .map(|a| {
            format!(
                "{} lot={} event={} org={}: {}",
                a.kind, a.lot, a.event_id, a.org, a.explanation
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn key(a: &v1::Anomaly) -> (String, String) {
    (a.kind.clone(), a.event_id.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_clean_lots_list_no_anomaly_and_each_planted_problem_is_named() {
    bounded(Duration::from_secs(180), async {
        let mut scenario = Scenario::clean(SEED, 40, 50, 6);
        // Registrations first (they must precede the rest), then the lot events
        // in an arrival order unrelated to their times: answers must not depend on it.
        let mut lot_events = scenario.events.clone();
        lotline_testkit::chains::Rng::new(SEED).shuffle(&mut lot_events);
        let clean: Vec<v1::Event> = scenario
            .registrations
            .iter()
            .cloned()
            .chain(lot_events)
            .collect();
        let lots: BTreeSet<String> = clean
            .iter()
            .filter_map(|e| match &e.kind {
                Some(v1::event::Kind::Harvest(h)) => Some(vec![h.lot.clone()]),
                Some(v1::event::Kind::Transform(t)) => {
                    Some(t.outputs.iter().map(|o| o.lot.clone()).collect())
                }
                _ => None,
            })
            .flatten()
            .collect();
        assert!(lots.len() > 2_000, "{} lots", lots.len());
        let server = TestServer::start().await;
        let mut events = server.events().await;
        let mut audit = server.audit().await;
        post_expecting(&mut events, &clean, &[]).await;

        let page = anomalies_page(
            &mut audit,
            v1::ListAnomaliesRequest {
                limit: 1000,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            page.total,
            0,
            "a clean scenario has no anomaly:\n{}",
            describe(&page.anomalies)
        );
        assert!(page.anomalies.is_empty() && page.counts.is_empty());
        assert!(page.next_cursor.is_empty());
        // The listing says how far into the log it is: all of it, here.
        let logged = tree_size(&server).await;
        assert!(logged > 2_000, "{logged}");
        assert_eq!(page.current_to, logged);

        // Every problem at once, on top of the clean scenario.
        let planted: Vec<Planted> = Problem::ALL.iter().map(|p| scenario.plant(*p)).collect();
        let (planted_events, rejected) = planted_events(&planted);
        let reasons = post_expecting(&mut events, &planted_events, &rejected).await;

        // The bow-tie plot is refused with the reason, and quarantined; it is
        // not an anomaly.
        let bow_tie = planted
            .iter()
            .find_map(|p| p.rejected.as_deref())
            .expect("a planted rejection");
        assert!(
            reasons[bow_tie].contains("crosses itself"),
            "{}",
            reasons[bow_tie]
        );
        let quarantined = all_rejected(&mut server.provenance().await).await;
        assert_eq!(quarantined.len(), 1, "{quarantined:?}");
        assert_eq!(quarantined[0].event_id, bow_tie);
        assert!(
            quarantined[0].reason.contains("crosses itself"),
            "{}",
            quarantined[0].reason
        );

        let expected: Vec<&Expected> = planted.iter().flat_map(|p| p.anomalies()).collect();
        assert_eq!(expected.len(), 10);
        let all = all_anomalies(
            &mut audit,
            v1::ListAnomaliesRequest {
                limit: 1000,
                ..Default::default()
            },
        )
        .await;
        // Brought forward over the planted events, and says so; the ledgers too.
        let logged = tree_size(&server).await;
        let one = v1::ListAnomaliesRequest {
            limit: 1,
            ..Default::default()
        };
        assert_eq!(anomalies_page(&mut audit, one).await.current_to, logged);
        let books = audit
            .mass_balance(v1::MassBalanceRequest {
                org: all[0].org.clone(),
                claim: "fairtrade".into(),
                ..Default::default()
            })
            .await
            .expect("mass balance")
            .into_inner();
        assert_eq!(books.current_to, logged);
        let found: BTreeSet<(String, String)> = all.iter().map(key).collect();
        let wanted: BTreeSet<(String, String)> = expected
            .iter()
            .map(|e| (e.kind.to_string(), e.event_id.clone()))
            .collect();
        assert_eq!(found, wanted, "anomalies:\n{}", describe(&all));
        assert_eq!(all.len(), expected.len(), "anomalies:\n{}", describe(&all));
        for e in &expected {
            let a = all
                .iter()
                .find(|a| a.kind == e.kind && a.event_id == e.event_id)
                .expect("listed");
            assert_eq!((&a.lot, &a.org), (&e.lot, &e.org), "{a:?}");
            assert!(!a.explanation.is_empty(), "{a:?}");
        }
        let figure = |kind: &str, name: &str| -> String {
            let a = all.iter().find(|a| a.kind == kind).expect(kind);
            a.figures
                .get(name)
                .unwrap_or_else(|| panic!("{kind} has no figure {name}: {a:?}"))
                .clone()
        };
        assert_eq!(figure("yield_out_of_band", "observed_yield"), "0.55");
        assert_eq!(figure("yield_out_of_band", "band_max"), "0.40");
        assert_eq!(figure("premium_shortfall", "shortfall_per_unit"), "0.05");
        assert_eq!(figure("price_below_minimum", "shortfall_per_unit"), "100.00");
        assert_eq!(figure("expired_certificate", "role"), "seller");
        assert_eq!(
            figure("expired_certificate", "reason"),
            "certificate FLO-plant-expired-trader (fairtrade) expired on 2026-03-31"
        );
        // Shortfalls in total, on the paid quantity in the rule's unit.
        let planted_of = |p: Problem| planted.iter().find(|x| x.problem == p).expect("planted");
        let sold_kg = |p: Problem| {
            let coop = planted_of(p).coop.as_ref().expect("co-op");
            coop.sales[0].centikg as f64 / 100.0
        };
        let pounds = sold_kg(Problem::PremiumShortfall) / 0.453_592_37;
        let total = amount(&figure("premium_shortfall", "shortfall_total"));
        assert!((total - 0.05 * pounds).abs() < 0.006, "{total} vs {pounds} lb");
        let tonnes = sold_kg(Problem::PriceBelowMinimum) / 1000.0;
        let total = amount(&figure("price_below_minimum", "shortfall_total"));
        assert!((total - 100.0 * tonnes).abs() < 0.006, "{total} vs {tonnes} t");
        assert_eq!(figure("uncertified_seller", "role"), "seller");

        // Counts and total over all pages.
        let first = anomalies_page(
            &mut audit,
            v1::ListAnomaliesRequest {
                limit: 4,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(first.total as usize, expected.len());
        assert_eq!(first.anomalies.len(), 4);
        assert!(!first.next_cursor.is_empty());
        let counts: BTreeMap<String, u32> =
            expected.iter().map(|e| (e.kind.to_string(), 1)).collect();
        assert_eq!(first.counts, counts);

        // Pages of four: every anomaly once, in the same order as one page.
        let mut paged = Vec::new();
        let mut cursor = String::new();
        for round in 0.. {
            assert!(round < 10, "pagination does not end");
            let page = anomalies_page(
                &mut audit,
                v1::ListAnomaliesRequest {
                    cursor: cursor.clone(),
                    limit: 4,
                    ..Default::default()
                },
            )
            .await;
            assert!(page.anomalies.len() <= 4);
            assert_eq!(page.total as usize, expected.len(), "total is over all pages");
            paged.extend(page.anomalies);
            if page.next_cursor.is_empty() {
                break;
            }
            cursor = page.next_cursor;
        }
        assert_eq!(paged, all);

        // Filters: by kind, by org, by lot, and combined.
        for e in &expected {
            let by_kind = all_anomalies(
                &mut audit,
                v1::ListAnomaliesRequest {
                    kind: e.kind.to_uppercase().replace('_', "-"),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(
                by_kind.iter().map(key).collect::<Vec<_>>(),
                vec![(e.kind.to_string(), e.event_id.clone())]
            );
            let by_org = all_anomalies(
                &mut audit,
                v1::ListAnomaliesRequest {
                    org: e.org.clone(),
                    ..Default::default()
                },
            )
            .await;
            let want: BTreeSet<(String, String)> = expected
                .iter()
                .filter(|x| x.org == e.org)
                .map(|x| (x.kind.to_string(), x.event_id.clone()))
                .collect();
            assert_eq!(by_org.iter().map(key).collect::<BTreeSet<_>>(), want);
            if !e.lot.is_empty() {
                let by_lot = all_anomalies(
                    &mut audit,
                    v1::ListAnomaliesRequest {
                        lot: e.lot.clone(),
                        ..Default::default()
                    },
                )
                .await;
                assert!(
                    by_lot.iter().all(|a| a.lot == e.lot) && by_lot.iter().any(|a| key(a)
                        == (e.kind.to_string(), e.event_id.clone())),
                    "{}",
                    describe(&by_lot)
                );
            }
        }
        // Combined: the cocoa trader fell short on the price, not the premium.
        let page = anomalies_page(
            &mut audit,
            v1::ListAnomaliesRequest {
                org: lotline_testkit::scenario::COCOA_TRADER.into(),
                kind: "premium_shortfall".into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(page.total, 0, "{}", describe(&page.anomalies));
        assert!(page.counts.is_empty());
        // A clean lot has none.
        let clean_lot = scenario.coops[0].output().to_string();
        let page = anomalies_page(
            &mut audit,
            v1::ListAnomaliesRequest {
                lot: clean_lot,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(page.total, 0, "{}", describe(&page.anomalies));

        // Fixing three problems takes them off the list: the oversold shipment
        // declared erroneous, the coarse plot re-registered to six decimals, the
        // unmapped plot registered.
        let fixed = [
            Problem::NegativeMassBalance,
            Problem::NotEudrGrade,
            Problem::UnregisteredPlot,
        ];
        let oversold = planted_of(Problem::NegativeMassBalance)
            .expected
            .as_ref()
            .expect("expected");
        let coarse = planted_of(Problem::NotEudrGrade).coop.as_ref().expect("co-op");
        let ghost = planted_of(Problem::UnregisteredPlot).coop.as_ref().expect("co-op");
        let ghost_farm = ghost.farms.iter().find(|f| !f.plot_registered).expect("ghost");
        let square = |lon: f64, lat: f64| {
            format!(
                r#"{{"type":"Polygon","coordinates":[[[{lon:.6},{lat:.6}],[{:.6},{lat:.6}],[{:.6},{:.6}],[{lon:.6},{:.6}],[{lon:.6},{lat:.6}]]]}}"#,
                lon + 0.002,
                lon + 0.002,
                lat + 0.002,
                lat + 0.002
            )
        };
        let plot_event = |id: &str, org: &str, plot: &str, geometry: String| v1::Event {
            event_id: id.into(),
            event_time: "2026-06-01T09:00:00+00:00".into(),
            org: org.into(),
            chain: String::new(),
            site: String::new(),
            extensions: Default::default(),
            kind: Some(v1::event::Kind::RegisterPlot(v1::RegisterPlot {
                plot: plot.into(),
                geometry,
                area_ha: "4.9".into(),
                country: "CI".into(),
            })),
        };
        let fixes = vec![
            v1::Event {
                event_id: "fix-oversold".into(),
                event_time: "2026-06-01T09:00:00+00:00".into(),
                org: oversold.org.clone(),
                chain: "cocoa".into(),
                site: String::new(),
                extensions: Default::default(),
                kind: Some(v1::event::Kind::Correct(v1::Correct {
                    corrected_event_id: oversold.event_id.clone(),
                    reason: "the second shipment was keyed twice".into(),
                    corrective_event_ids: vec![],
                })),
            },
            plot_event(
                "fix-coarse-plot",
                &coarse.farms[0].org,
                &coarse.farms[0].plot,
                square(-5.1, 7.9),
            ),
            plot_event(
                "fix-ghost-plot",
                &ghost_farm.org,
                &ghost_farm.plot,
                square(-5.2, 7.9),
            ),
        ];
        post_expecting(&mut events, &fixes, &[]).await;
        let after = all_anomalies(&mut audit, v1::ListAnomaliesRequest::default()).await;
        let remaining: BTreeSet<(String, String)> = planted
            .iter()
            .filter(|p| !fixed.contains(&p.problem))
            .flat_map(|p| p.anomalies())
            .map(|e| (e.kind.to_string(), e.event_id.clone()))
            .collect();
        assert_eq!(remaining.len(), 6);
        assert_eq!(
            after.iter().map(key).collect::<BTreeSet<_>>(),
            remaining,
            "{}",
            describe(&after)
        );
        server.stop().await.expect("stop");
    })
    .await;
}

/// A server holding `events`, all accepted but `rejected`.
async fn server_with(events: &[v1::Event], rejected: &[&str]) -> TestServer {
    let server = TestServer::start().await;
    post_expecting(&mut server.events().await, events, rejected).await;
    server
}

fn amount(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} is not a decimal: {e}"))
}

fn close(got: &str, want: f64) -> bool {
    (amount(got) - want).abs() <= 1e-6 * want.abs().max(1.0)
}

/// One ledger line as the test computes it: (time, event id, direction, lot, amount).
type Line = (String, String, &'static str, String, f64);

/// The co-op's ledger of its farm product, by plain arithmetic: deliveries are
/// credits; each sale is a debit of the sold kilograms over the overall yield.
fn ledger_lines(coop: &Coop) -> Vec<Line> {
    let mut lines: Vec<Line> = coop
        .farms
        .iter()
        .map(|f| {
            (
                f.receive_time.clone(),
                f.receive_event.clone(),
                "input",
                f.lot.clone(),
                f.kg as f64,
            )
        })
        .collect();
    for s in &coop.sales {
        lines.push((
            s.time.clone(),
            s.ship_event.clone(),
            "output",
            s.lot.clone(),
            s.centikg as f64 / 100.0 / coop.overall_yield(),
        ));
    }
    // One UTC offset per co-op, so the text order is the time order.
    lines.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    lines
}

async fn ledgers(
    audit: &mut AuditServiceClient<Channel>,
    request: v1::MassBalanceRequest,
) -> Vec<v1::Ledger> {
    audit
        .mass_balance(request)
        .await
        .expect("mass balance")
        .into_inner()
        .ledgers
}

/// Checks `ledger` against `lines` (the period's lines) after `opening`.
fn check_ledger(ledger: &v1::Ledger, opening: f64, lines: &[Line]) {
    let shown: Vec<String> = ledger
        .entries
        .iter()
        .map(|e| format!("{} {} {} {}", e.event_id, e.direction, e.amount, e.balance))
        .collect();
    assert_eq!(ledger.entries.len(), lines.len(), "{shown:#?}");
    assert!(
        close(&ledger.opening, opening),
        "opening {}",
        ledger.opening
    );
    let mut balance = opening;
    let (mut inputs, mut outputs, mut violations) = (0.0, 0.0, 0);
    for (entry, (_, event_id, direction, lot, amount)) in ledger.entries.iter().zip(lines) {
        let what = format!("{event_id}: {entry:?}");
        assert_eq!(
            (&entry.event_id, entry.direction.as_str(), &entry.lot),
            (event_id, *direction, lot),
            "{shown:#?}"
        );
        assert!(close(&entry.amount, *amount), "{what}");
        if *direction == "input" {
            balance += amount;
            inputs += amount;
            assert_eq!(entry.ratio, "", "{what}");
        } else {
            balance -= amount;
            outputs += amount;
        }
        assert!(close(&entry.balance, balance), "{what}: want {balance}");
        let negative = *direction == "output" && balance < -1e-6;
        assert_eq!(entry.violation, negative, "{what}");
        violations += u32::from(negative);
    }
    assert!(close(&ledger.inputs, inputs), "inputs {}", ledger.inputs);
    assert!(
        close(&ledger.outputs, outputs),
        "outputs {}",
        ledger.outputs
    );
    assert!(
        close(&ledger.closing, balance),
        "closing {}",
        ledger.closing
    );
    assert_eq!(ledger.violations, violations);
}

#[tokio::test(flavor = "multi_thread")]
async fn mass_balance_ledgers_match_plain_arithmetic_over_sites_and_periods() {
    bounded(Duration::from_secs(120), async {
        let mut scenario = Scenario::clean(SEED + 1, 2, 5, 0);
        let planted = scenario.plant(Problem::NegativeMassBalance);
        let server = server_with(&scenario.all(), &[]).await;
        let mut audit = server.audit().await;
        let coop = planted.coop.as_ref().expect("a co-op");
        let all_lines = ledger_lines(coop);
        let received: f64 = coop.farms.iter().map(|f| f.kg as f64).sum();

        // The whole ledger: the second sale takes it below zero, once.
        let whole = ledgers(
            &mut audit,
            v1::MassBalanceRequest {
                org: coop.org.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(whole.len(), 1, "{whole:#?}");
        let l = &whole[0];
        assert_eq!(
            (l.org.as_str(), l.product.as_str(), l.unit.as_str()),
            (coop.org.as_str(), "wet cocoa beans", "kg")
        );
        check_ledger(l, 0.0, &all_lines);
        assert_eq!(l.violations, 1);
        let sold: f64 = coop.sales.iter().map(|s| s.centikg as f64 / 100.0).sum();
        assert!(close(&l.closing, received - sold / 0.38), "{}", l.closing);
        assert!(amount(&l.closing) < 0.0);
        let last = l.entries.last().expect("entries");
        assert_eq!(last.event_id, coop.sales[1].ship_event);
        assert!(last.violation);
        assert_eq!(last.ratio, "0.38");
        assert_eq!(last.lot_product, "dry cocoa beans");
        assert_eq!(last.site, coop.mill);
        assert_eq!(
            last.quantity
                .as_ref()
                .map(|q| (q.amount.as_str(), q.unit.as_str())),
            Some(("40", "kg"))
        );
        // The product filter is case-insensitive; another product has no ledger.
        let by_product = ledgers(
            &mut audit,
            v1::MassBalanceRequest {
                org: coop.org.clone(),
                product: "Wet Cocoa Beans".into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(by_product, whole);
        assert!(
            ledgers(
                &mut audit,
                v1::MassBalanceRequest {
                    org: coop.org.clone(),
                    product: "coffee cherry".into(),
                    ..Default::default()
                },
            )
            .await
            .is_empty()
        );

        // One buying station: its deliveries only.
        for station in &coop.stations {
            let scoped = ledgers(
                &mut audit,
                v1::MassBalanceRequest {
                    org: coop.org.clone(),
                    sites: vec![station.clone()],
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(scoped.len(), 1);
            assert_eq!(scoped[0].sites, vec![station.clone()]);
            let lines: Vec<Line> = all_lines
                .iter()
                .filter(|(_, id, ..)| {
                    coop.farms
                        .iter()
                        .any(|f| &f.receive_event == id && &f.station == station)
                })
                .cloned()
                .collect();
            assert!(!lines.is_empty());
            check_ledger(&scoped[0], 0.0, &lines);
        }
        // The mill alone sells what it never bought: both sales are negative.
        let mill = ledgers(
            &mut audit,
            v1::MassBalanceRequest {
                org: coop.org.clone(),
                sites: vec![coop.mill.clone()],
                ..Default::default()
            },
        )
        .await;
        let sales: Vec<Line> = all_lines
            .iter()
            .filter(|l| l.2 == "output")
            .cloned()
            .collect();
        check_ledger(&mill[0], 0.0, &sales);
        assert_eq!(mill[0].violations, 2);

        // A period after the deliveries: they make the opening balance.
        let from = "2026-03-10T00:00:00+00:00";
        let period = ledgers(
            &mut audit,
            v1::MassBalanceRequest {
                org: coop.org.clone(),
                from: from.into(),
                ..Default::default()
            },
        )
        .await;
        check_ledger(&period[0], received, &sales);
        assert_eq!(period[0].violations, 1);
        // Up to before the second sale: balanced to zero, nothing negative.
        let period = ledgers(
            &mut audit,
            v1::MassBalanceRequest {
                org: coop.org.clone(),
                from: from.into(),
                to: "2026-03-21T00:00:00+00:00".into(),
                ..Default::default()
            },
        )
        .await;
        check_ledger(&period[0], received, &sales[..1]);
        assert!(close(&period[0].closing, 0.0), "{}", period[0].closing);
        assert_eq!(period[0].violations, 0);
        // Only the deliveries' day.
        let period = ledgers(
            &mut audit,
            v1::MassBalanceRequest {
                org: coop.org.clone(),
                to: "2026-03-04T00:00:00+00:00".into(),
                ..Default::default()
            },
        )
        .await;
        let deliveries: Vec<Line> = all_lines
            .iter()
            .filter(|l| l.2 == "input")
            .cloned()
            .collect();
        check_ledger(&period[0], 0.0, &deliveries);

        // Clean co-ops balance to zero: cocoa through 0.38, coffee through 0.20 × 0.80.
        for clean in &scenario.coops {
            let all = ledgers(
                &mut audit,
                v1::MassBalanceRequest {
                    org: clean.org.clone(),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(all.len(), 1, "{all:#?}");
            check_ledger(&all[0], 0.0, &ledger_lines(clean));
            assert!(close(&all[0].closing, 0.0), "{}", all[0].closing);
            let ratio = match clean.crop {
                Crop::Cocoa => "0.38",
                Crop::Coffee => "0.16",
            };
            assert_eq!(all[0].entries.last().expect("a sale").ratio, ratio);
        }
        server.stop().await.expect("stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_report_names_every_textile_stage_its_org_and_certificates() {
    bounded(Duration::from_secs(120), async {
        let mut scenario = Scenario::clean(SEED + 2, 2, 2, 2);
        let planted = scenario.plant(Problem::MissingTextileStage);
        let server = server_with(&scenario.all(), &[]).await;
        let audit = server.audit().await;
        let report = |lot: &str, public_view: bool| {
            let mut audit = audit.clone();
            let lot = lot.to_string();
            async move {
                audit
                    .chain_report(v1::ChainReportRequest { lot, public_view })
                    .await
                    .expect("chain report")
                    .into_inner()
            }
        };
        let names = [
            "farm",
            "ginner",
            "spinner",
            "weaver/knitter",
            "wet processing",
            "cut-make-trim",
            "brand",
        ];
        for garment in &scenario.garments {
            let r = report(&garment.lot, false).await;
            assert_eq!(
                (r.lot.as_str(), r.chain.as_str(), r.product.as_str()),
                (garment.lot.as_str(), "textile", "crew-neck t-shirt navy")
            );
            assert_eq!(
                r.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                names
            );
            assert!(r.missing.is_empty(), "{:?}", r.missing);
            assert!(r.other.is_empty(), "{:?}", r.other);
            for stage in &r.stages {
                assert!(!stage.missing && !stage.entries.is_empty(), "{stage:?}");
                let orgs: BTreeSet<&str> = stage.entries.iter().map(|e| e.org.as_str()).collect();
                let want: BTreeSet<&str> = if stage.name == "farm" {
                    garment.farms.iter().map(String::as_str).collect()
                } else {
                    BTreeSet::from([garment.stages[&stage.name].as_str()])
                };
                assert_eq!(orgs, want, "{}", stage.name);
                for e in &stage.entries {
                    assert!(e.certified && !e.certificates.is_empty(), "{e:?}");
                    assert!(!e.org_name.is_empty(), "{e:?}");
                }
            }
            let farm = &r.stages[0];
            let lots: BTreeSet<&str> = farm
                .entries
                .iter()
                .flat_map(|e| e.lots.iter().map(String::as_str))
                .collect();
            assert_eq!(
                lots,
                garment.origin_lots.iter().map(String::as_str).collect()
            );
            assert!(farm.entries.iter().all(|e| e.process == "harvest"));
            // The public view leaves farmers' names out, and nothing else.
            let public = report(&garment.lot, true).await;
            for stage in &public.stages {
                for e in &stage.entries {
                    assert_eq!(e.org_name.is_empty(), stage.name == "farm", "{e:?}");
                }
            }
        }

        // Cut-make-trim turns kilograms of Fairtrade fabric into pieces: the
        // garments it sells are the fabric it bought, so its ledger balances.
        let cmt = ledgers(
            &mut audit.clone(),
            v1::MassBalanceRequest {
                org: lotline_testkit::scenario::CMT.into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(cmt.len(), 1, "{cmt:#?}");
        assert_eq!(
            (cmt[0].product.as_str(), cmt[0].unit.as_str()),
            ("single jersey dyed navy", "kg")
        );
        assert_eq!(cmt[0].entries.len(), 2 * scenario.garments.len());
        assert_eq!(cmt[0].violations, 0, "{cmt:#?}");
        assert!(close(&cmt[0].closing, 0.0), "{cmt:#?}");
        assert!(close(&cmt[0].inputs, amount(&cmt[0].outputs)), "{cmt:#?}");

        // Cocoa farms are certified through their co-op's group certificate.
        for coop in &scenario.coops {
            let lot = coop.output();
            let r = report(lot, false).await;
            assert_eq!(r.chain, coop.crop.chain());
            let farm = r
                .stages
                .iter()
                .find(|s| s.name == "farm")
                .expect("farm stage");
            let orgs: BTreeSet<&str> = farm.entries.iter().map(|e| e.org.as_str()).collect();
            assert_eq!(
                orgs,
                coop.farms.iter().map(|f| f.org.as_str()).collect(),
                "{lot}"
            );
            for stage in &r.stages {
                for e in &stage.entries {
                    assert!(e.certified, "{lot}: {e:?}");
                    assert!(
                        e.certificates.iter().all(|c| !c.valid_to.is_empty()),
                        "{e:?}"
                    );
                }
            }
            assert!(
                r.other.iter().any(|e| e.event_id == coop.aggregate_event),
                "aggregation belongs to no stage: {:?}",
                r.other
            );
        }

        // Knitted straight from lint by a knitter with no certificate.
        let garment = planted.garment.as_ref().expect("a garment");
        let knitter = planted.uncertified.as_deref().expect("the knitter");
        let r = report(&garment.lot, false).await;
        assert_eq!(r.missing, vec!["spinner".to_string()]);
        for stage in &r.stages {
            assert_eq!(stage.missing, stage.name == "spinner", "{stage:?}");
            assert_eq!(stage.entries.is_empty(), stage.name == "spinner");
            for e in &stage.entries {
                let uncertified = e.org == knitter;
                assert_eq!(uncertified, stage.name == "weaver/knitter", "{e:?}");
                assert_eq!(e.certified, !uncertified, "{e:?}");
                assert_eq!(e.certificates.is_empty(), uncertified, "{e:?}");
            }
        }
        server.stop().await.expect("stop");
    })
    .await;
}

/// The GeoJSON text parsed by the `geojson` crate as a FeatureCollection, with
/// every geometry a Point, Polygon or MultiPolygon on Earth.
fn feature_collection(text: &str) -> geojson::FeatureCollection {
    let parsed: geojson::GeoJson = text
        .parse()
        .unwrap_or_else(|e| panic!("not GeoJSON ({e}): {text}"));
    let geojson::GeoJson::FeatureCollection(fc) = parsed else {
        panic!("not a FeatureCollection: {text}");
    };
    fc
}

fn on_earth(p: &[f64]) -> bool {
    p.len() >= 2 && (-180.0..=180.0).contains(&p[0]) && (-90.0..=90.0).contains(&p[1])
}

fn check_geometry(feature: &geojson::Feature) {
    use geojson::Value;
    let geometry = feature
        .geometry
        .as_ref()
        .unwrap_or_else(|| panic!("no geometry: {feature:?}"));
    let positions: Vec<&Vec<f64>> = match &geometry.value {
        Value::Point(p) => vec![p],
        Value::Polygon(rings) => rings.iter().flatten().collect(),
        Value::MultiPolygon(polys) => polys.iter().flatten().flatten().collect(),
        other => panic!("geometry {} in {feature:?}", other.type_name()),
    };
    assert!(!positions.is_empty());
    for p in positions {
        assert!(on_earth(p), "{p:?} in {feature:?}");
    }
}

fn property<'a>(feature: &'a geojson::Feature, name: &str) -> Option<&'a str> {
    feature.property(name).and_then(|v| v.as_str())
}

async fn export(
    audit: &mut AuditServiceClient<Channel>,
    lot: &str,
    public_view: bool,
) -> v1::EudrExportResponse {
    audit
        .eudr_export(v1::EudrExportRequest {
            lot: lot.into(),
            public_view,
        })
        .await
        .expect("eudr export")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn eudr_export_lists_every_origin_plot_and_says_why_a_lot_is_not_traceable() {
    bounded(Duration::from_secs(120), async {
        let mut scenario = Scenario::clean(SEED + 3, 2, 12, 1);
        let mass_balance = scenario.plant(Problem::CoffeeMassBalance);
        let ghost = scenario.plant(Problem::UnregisteredPlot);
        let coarse = scenario.plant(Problem::NotEudrGrade);
        let server = server_with(&scenario.all(), &[]).await;
        let mut audit = server.audit().await;
        let mut provenance = server.provenance().await;

        for coop in &scenario.coops {
            let forward = coop.forward.as_ref().expect("sold on");
            // The brand's product (cocoa bars) or the lot the brand received (coffee).
            let lot = forward
                .product_lot
                .clone()
                .unwrap_or_else(|| coop.output().to_string());
            let answer = export(&mut audit, &lot, false).await;
            assert_eq!(answer.lot, lot);
            assert_eq!(answer.verdict, "eudr_traceable", "{:?}", answer.reasons);
            assert!(answer.reasons.is_empty());
            assert_eq!(answer.plots as usize, coop.farms.len());
            let fc = feature_collection(&answer.geojson);
            assert_eq!(fc.features.len(), coop.farms.len());
            let names: BTreeMap<&str, &str> = coop
                .farms
                .iter()
                .map(|f| (f.plot.as_str(), f.name.as_str()))
                .collect();
            let mut places = BTreeSet::new();
            let mut kinds = BTreeSet::new();
            for f in &fc.features {
                check_geometry(f);
                kinds.insert(f.geometry.as_ref().map(|g| g.value.type_name()));
                let place = property(f, "ProductionPlace").expect("ProductionPlace");
                places.insert(place.to_string());
                assert_eq!(property(f, "ProducerCountry"), Some(coop.crop.country()));
                assert_eq!(property(f, "ProducerName"), names.get(place).copied());
                assert!(property(f, "lotline:producer").is_some_and(|o| o.contains("-farm-")));
            }
            let want: BTreeSet<String> = coop
                .registered_plots()
                .into_iter()
                .map(str::to_string)
                .collect();
            assert_eq!(places, want);
            assert_eq!(
                kinds.len(),
                3,
                "points, polygons and multipolygons: {kinds:?}"
            );

            // The public view has the plots, not the people.
            let public = export(&mut audit, &lot, true).await;
            assert_eq!(public.verdict, "eudr_traceable");
            let fc = feature_collection(&public.geojson);
            assert_eq!(fc.features.len(), coop.farms.len());
            for f in &fc.features {
                assert!(f.property("ProducerName").is_none(), "{f:?}");
                assert!(f.property("lotline:producer").is_none(), "{f:?}");
                assert!(property(f, "ProductionPlace").is_some());
            }

            // The DDS reference filed on the trader's shipment to the brand.
            let dds = answer
                .dds_references
                .iter()
                .find(|d| d.reference == forward.dds)
                .unwrap_or_else(|| panic!("{} not in {:?}", forward.dds, answer.dds_references));
            assert_eq!(
                (dds.lot.as_str(), dds.event_id.as_str(), dds.org.as_str()),
                (
                    coop.output(),
                    forward.ship_event.as_str(),
                    forward.from.as_str()
                )
            );
            assert!(!dds.verification.is_empty());
            let got = provenance
                .get_lot(v1::GetLotRequest {
                    lot: lot.clone(),
                    public_view: false,
                })
                .await
                .expect("get lot")
                .into_inner();
            assert!(
                got.due_diligence_references
                    .iter()
                    .any(|d| d.reference == forward.dds && d.event_id == forward.ship_event),
                "{:?}",
                got.due_diligence_references
            );
        }
        // Only the lots downstream of the shipment carry its reference.
        let farm_lot = &scenario.coops[0].farms[0].lot;
        let upstream = export(&mut audit, farm_lot, false).await;
        assert!(
            upstream.dds_references.is_empty(),
            "{:?}",
            upstream.dds_references
        );
        assert_eq!(upstream.verdict, "eudr_traceable");
        assert_eq!(upstream.plots, 1);

        // Coffee pulped under mass balance: the lot and everything made from it.
        let coop = mass_balance.coop.as_ref().expect("co-op");
        let parchment = &coop.steps[0].lot;
        let answer = export(&mut audit, coop.output(), false).await;
        assert_eq!(answer.verdict, "not_traceable");
        assert!(
            answer
                .reasons
                .iter()
                .any(|r| r.contains(&format!("{parchment:?}")) && r.contains("mass balance")),
            "{:?}",
            answer.reasons
        );
        feature_collection(&answer.geojson);

        // A harvest from a plot never registered.
        let coop = ghost.coop.as_ref().expect("co-op");
        let farm = coop
            .farms
            .iter()
            .find(|f| !f.plot_registered)
            .expect("ghost");
        let answer = export(&mut audit, coop.output(), false).await;
        assert_eq!(answer.verdict, "not_traceable");
        assert!(
            answer
                .reasons
                .iter()
                .any(|r| r.contains(&format!("{:?}", farm.plot)) && r.contains("never registered")),
            "{:?}",
            answer.reasons
        );
        assert_eq!(answer.plots as usize, coop.farms.len());
        let fc = feature_collection(&answer.geojson);
        let unmapped = fc
            .features
            .iter()
            .find(|f| property(f, "ProductionPlace") == Some(farm.plot.as_str()))
            .expect("listed");
        assert!(unmapped.geometry.is_none(), "{unmapped:?}");

        // Coordinates truncated to four decimals.
        let coop = coarse.coop.as_ref().expect("co-op");
        let plot = &coop.farms[0].plot;
        let answer = export(&mut audit, coop.output(), false).await;
        assert_eq!(answer.verdict, "not_traceable");
        assert!(
            answer
                .reasons
                .iter()
                .any(|r| r.contains(&format!("{plot:?}"))
                    && r.contains("4 decimal places at most")),
            "{:?}",
            answer.reasons
        );

        // Cotton is not an EUDR commodity.
        let garment = &scenario.garments[0];
        let answer = export(&mut audit, &garment.lot, false).await;
        assert_eq!(answer.verdict, "not_applicable");
        server.stop().await.expect("stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_public_view_leaves_out_farmers_names_and_extensions() {
    bounded(Duration::from_secs(120), async {
        let scenario = Scenario::clean(SEED + 4, 2, 3, 0);
        let server = server_with(&scenario.all(), &[]).await;
        let mut provenance = server.provenance().await;
        let list = |kind: &str, org: &str, public_view: bool| v1::ListEventsRequest {
            kind: kind.into(),
            org: org.into(),
            limit: 1000,
            public_view,
            ..Default::default()
        };
        let register_org =
            |e: &v1::StoredEvent| match e.event.as_ref().and_then(|e| e.kind.as_ref()) {
                Some(v1::event::Kind::RegisterOrg(r)) => r.clone(),
                other => panic!("not a register_org event: {other:?}"),
            };
        let mut farms = 0;
        for farm in scenario.farms() {
            farms += 1;
            for public in [false, true] {
                let page = provenance
                    .list_events(list("register_org", &farm.org, public))
                    .await
                    .expect("list events")
                    .into_inner();
                assert_eq!(page.events.len(), 1);
                let stored = &page.events[0];
                let extensions = &stored.event.as_ref().expect("event").extensions;
                let org = register_org(stored);
                assert_eq!(org.role, v1::OrgRole::Farm as i32);
                if public {
                    assert_eq!(org.name, "", "{org:?}");
                    assert!(extensions.is_empty(), "{extensions:?}");
                } else {
                    assert_eq!(org.name, farm.name);
                    assert!(extensions.contains_key("contact_phone"), "{extensions:?}");
                }
                // Harvests lose their extensions too.
                let harvests = provenance
                    .list_events(list("harvest", &farm.org, public))
                    .await
                    .expect("list events")
                    .into_inner()
                    .events;
                assert_eq!(harvests.len(), 1);
                let extensions = &harvests[0].event.as_ref().expect("event").extensions;
                assert_eq!(extensions.is_empty(), public, "{extensions:?}");
            }
        }
        assert_eq!(farms, 6);
        // A lot's events in the public view carry no extensions either.
        let farm = scenario.farms().next().expect("a farm");
        for public_view in [false, true] {
            let lot = provenance
                .get_lot(v1::GetLotRequest {
                    lot: farm.lot.clone(),
                    public_view,
                })
                .await
                .expect("get lot")
                .into_inner();
            let harvest = lot
                .events
                .iter()
                .filter_map(|e| e.event.as_ref())
                .find(|e| e.event_id == farm.harvest_event)
                .expect("the harvest");
            assert_eq!(harvest.extensions.is_empty(), public_view, "{harvest:?}");
        }
        // Every registration in the public view: farms nameless, the others named.
        let all = provenance
            .list_events(list("register_org", "", true))
            .await
            .expect("list events")
            .into_inner()
            .events;
        let nameless = all
            .iter()
            .filter(|e| register_org(e).name.is_empty())
            .count();
        assert_eq!(nameless, farms);
        assert!(
            all.len() > farms,
            "co-ops, traders and brands keep their names"
        );
        server.stop().await.expect("stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_arguments_are_refused_with_the_right_code() {
    bounded(Duration::from_secs(120), async {
        let scenario = Scenario::clean(SEED + 5, 1, 2, 0);
        let server = server_with(&scenario.all(), &[]).await;
        let mut audit = server.audit().await;
        let coop = &scenario.coops[0].org;

        let err = audit
            .list_anomalies(v1::ListAnomaliesRequest {
                kind: "over_conversion_of_bananas".into(),
                ..Default::default()
            })
            .await
            .expect_err("an unknown kind");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains("over_conversion_of_bananas"),
            "{err:?}"
        );
        let err = audit
            .list_anomalies(v1::ListAnomaliesRequest {
                cursor: "not-a-cursor".into(),
                ..Default::default()
            })
            .await
            .expect_err("a made-up cursor");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");

        let err = audit
            .mass_balance(v1::MassBalanceRequest::default())
            .await
            .expect_err("no org");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("org"), "{err:?}");
        let err = audit
            .mass_balance(v1::MassBalanceRequest {
                org: coop.clone(),
                from: "2026-04-01T00:00:00+00:00".into(),
                to: "2026-03-01T00:00:00+00:00".into(),
                ..Default::default()
            })
            .await
            .expect_err("a period that ends before it starts");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        let err = audit
            .mass_balance(v1::MassBalanceRequest {
                org: coop.clone(),
                from: "last spring".into(),
                ..Default::default()
            })
            .await
            .expect_err("not a time");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        let err = audit
            .mass_balance(v1::MassBalanceRequest {
                org: "nobody-at-all".into(),
                ..Default::default()
            })
            .await
            .expect_err("an org with no events");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");

        let err = audit
            .chain_report(v1::ChainReportRequest {
                lot: "NO-SUCH-LOT".into(),
                public_view: false,
            })
            .await
            .expect_err("an unknown lot");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
        assert!(err.message().contains("NO-SUCH-LOT"), "{err:?}");
        let err = audit
            .chain_report(v1::ChainReportRequest::default())
            .await
            .expect_err("no lot");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        let err = audit
            .eudr_export(v1::EudrExportRequest {
                lot: "NO-SUCH-LOT".into(),
                public_view: false,
            })
            .await
            .expect_err("an unknown lot");
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
        server.stop().await.expect("stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_anomalies_exports_geojson_and_prints_ledgers_and_chains() {
    bounded(Duration::from_secs(240), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut scenario = Scenario::clean(SEED + 6, 2, 4, 1);
        let planted: Vec<Planted> = Problem::ALL.iter().map(|p| scenario.plant(*p)).collect();
        let (_, rejected) = planted_events(&planted);
        let server = BinaryServer::spawn(&dir.path().join("data")).await;
        let url = server.url();
        let mut events = EventServiceClient::connect(url.clone())
            .await
            .expect("connect");
        post_expecting(&mut events, &scenario.all(), &rejected).await;
        let run = |args: &[&str]| {
            let mut all: Vec<&str> = args.to_vec();
            all.extend(["--server", url.as_str()]);
            let out = lotline(&all);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            out
        };

        // `lotline anomalies --json`: the planted kinds and events, nothing else.
        let out = run(&["anomalies", "--json"]);
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)));
        let found: BTreeSet<(String, String)> = listed["anomalies"]
            .as_array()
            .expect("anomalies")
            .iter()
            .map(|a| {
                (
                    a["kind"].as_str().expect("kind").to_string(),
                    a["event_id"].as_str().expect("event_id").to_string(),
                )
            })
            .collect();
        let wanted: BTreeSet<(String, String)> = planted
            .iter()
            .flat_map(|p| p.anomalies())
            .map(|e| (e.kind.to_string(), e.event_id.clone()))
            .collect();
        assert_eq!(found, wanted, "{}", stdout(&out));
        assert_eq!(listed["counts"]["yield_out_of_band"], 1);
        let table = stdout(&run(&["anomalies", "--kind", "coffee_mass_balance"]));
        assert!(
            table.contains("1 anomalies: coffee_mass_balance 1"),
            "{table}"
        );

        // `lotline review ID --dispute --note …`, then the listing by status.
        let all = listed["anomalies"].as_array().expect("anomalies");
        let id = all[0]["id"].as_str().expect("id").to_string();
        assert!(all.iter().all(|a| a["status"] == "open"), "{listed}");
        let mut bare = vec!["review", id.as_str(), "--dispute", "--server", url.as_str()];
        let refused = lotline(&bare);
        assert_ne!(refused.status.code(), Some(0));
        assert!(
            stderr(&refused).contains("review.note"),
            "{}",
            stderr(&refused)
        );
        bare.truncate(3);
        bare.extend(["--note", "weighed again on site: the yield holds"]);
        let reviewed = stdout(&run(&bare));
        assert!(
            reviewed.contains(&format!("{id} disputed"))
                && reviewed.contains("weighed again on site"),
            "{reviewed}"
        );
        let disputed: serde_json::Value =
            serde_json::from_slice(&run(&["anomalies", "--status", "disputed", "--json"]).stdout)
                .expect("JSON");
        assert_eq!(disputed["anomalies"].as_array().map(Vec::len), Some(1));
        assert_eq!(disputed["anomalies"][0]["id"], id.as_str());
        assert_eq!(
            disputed["anomalies"][0]["reviews"][0]["verdict"],
            "disputed"
        );
        let open: serde_json::Value =
            serde_json::from_slice(&run(&["anomalies", "--status", "open", "--json"]).stdout)
                .expect("JSON");
        assert_eq!(
            open["anomalies"].as_array().map(Vec::len),
            Some(all.len() - 1)
        );

        // `lotline bundle`: the audit in one file, which `lotline verify --bundle` checks
        // offline; any change to what it cites is caught.
        let bundle_path = dir.path().join("audit.bundle.json");
        let path = bundle_path.to_str().expect("utf-8 path");
        let made = stdout(&run(&["bundle", "--out", path]));
        assert!(made.contains(&format!("{} anomalies", all.len())), "{made}");
        let bundle: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&bundle_path).expect("bundle"))
                .expect("JSON");
        assert!(
            bundle["proofs"]
                .as_array()
                .is_some_and(|p| p.len() > all.len())
        );
        assert!(bundle["ledgers"].as_array().is_some_and(|l| !l.is_empty()));
        let log_key = bundle["checkpoint"]["verifier_key"]
            .as_str()
            .expect("key")
            .to_string();
        let verified = lotline(&["verify", "--bundle", path, "--key", &log_key]);
        assert_eq!(verified.status.code(), Some(0), "{}", stderr(&verified));
        assert!(
            stdout(&verified).contains("verifies") && stdout(&verified).contains("1 reviews match"),
            "{}",
            stdout(&verified)
        );
        let tampered = |change: &dyn Fn(&mut serde_json::Value), expect: &str| {
            let mut copy = bundle.clone();
            change(&mut copy);
            let file = dir.path().join("tampered.json");
            std::fs::write(&file, copy.to_string()).expect("write");
            let out = lotline(&["verify", "--bundle", file.to_str().expect("path")]);
            assert_eq!(out.status.code(), Some(1), "{expect}: {}", stdout(&out));
            assert!(stderr(&out).contains(expect), "{expect}: {}", stderr(&out));
        };
        let reviewed_at = bundle["anomalies"]
            .as_array()
            .and_then(|a| a.iter().position(|x| x["id"] == id.as_str()))
            .expect("the reviewed anomaly");
        tampered(
            &|b| b["anomalies"][reviewed_at]["reviews"][0]["note"] = "nothing to see".into(),
            "is not what the log records",
        );
        tampered(
            &|b| b["anomalies"][0]["lot"] = "LOT-ELSEWHERE".into(),
            "its id is not made from its kind, event and lot",
        );
        tampered(
            &|b| {
                b["proofs"].as_array_mut().expect("proofs").remove(0);
            },
            "has no inclusion proof",
        );
        tampered(
            &|b| {
                let path = &mut b["proofs"][0]["audit_path"];
                if let Some(first) = path.as_array_mut().and_then(|p| p.first_mut()) {
                    *first = "00".repeat(32).into();
                }
            },
            "does not hold",
        );
        tampered(
            &|b| {
                b["checkpoint"]["note"] = b["checkpoint"]["note"]
                    .as_str()
                    .expect("note")
                    .replacen('\n', "\n1", 1)
                    .into()
            },
            "signature does not hold",
        );

        // `lotline eudr LOT --out FILE`: a FeatureCollection in the file.
        let coop = &scenario.coops[0];
        let bars = coop
            .forward
            .as_ref()
            .and_then(|f| f.product_lot.clone())
            .expect("bars");
        let file = dir.path().join("bars.geojson");
        let out = run(&["eudr", &bars, "--out", file.to_str().expect("utf-8 path")]);
        assert!(stdout(&out).contains("eudr_traceable"), "{}", stdout(&out));
        let text = std::fs::read_to_string(&file).expect("the export");
        let fc = feature_collection(&text);
        assert_eq!(fc.features.len(), coop.farms.len());
        fc.features.iter().for_each(check_geometry);
        // And by an independent RFC 7946 checker (standard-library Python), with
        // the plots the generator put behind the bars.
        let plots: Vec<&str> = coop.farms.iter().map(|f| f.plot.as_str()).collect();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/geojson_check.py");
        let checked = std::process::Command::new("python3")
            .arg(script)
            .arg(&file)
            .arg("--expect-plots")
            .arg(plots.join(","))
            .output()
            .expect("python3 (the independent GeoJSON checker needs it)");
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stdout)
        );

        // `lotline balance --org ORG`: the oversold shipment is the NEGATIVE line.
        let negative = planted
            .iter()
            .find(|p| p.problem == Problem::NegativeMassBalance)
            .and_then(|p| p.coop.as_ref())
            .expect("co-op");
        let text = stdout(&run(&["balance", "--org", &negative.org]));
        let negative_lines: Vec<&str> = text.lines().filter(|l| l.contains("NEGATIVE")).collect();
        assert_eq!(negative_lines.len(), 1, "{text}");
        assert!(
            negative_lines[0].contains(&negative.sales[1].ship_event),
            "{text}"
        );
        assert!(text.contains("(1 point(s) negative)"), "{text}");

        // `lotline audit LOT`: the skipped stage.
        let garment = planted
            .iter()
            .find_map(|p| p.garment.as_ref())
            .expect("garment");
        let text = stdout(&run(&["audit", &garment.lot]));
        assert!(text.contains("Missing stages: spinner"), "{text}");
        assert!(text.contains("NOT CERTIFIED"), "{text}");
        let text = stdout(&run(&["audit", &scenario.garments[0].lot]));
        assert!(text.contains("Missing stages: none"), "{text}");

        // `lotline rules` prints TOML that `lotline serve --rules` accepts.
        let out = lotline(&["rules"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let rules = stdout(&out);
        assert!(rules.contains("[[bands]]") && rules.contains("fermenting_drying"));
        let rules_file = dir.path().join("rules.toml");
        std::fs::write(&rules_file, &rules).expect("write rules");
        let checked = lotline(&["rules", "--file", rules_file.to_str().expect("utf-8 path")]);
        assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
        drop(server);
        let with_rules = BinaryServer::spawn_with(
            &dir.path().join("data"),
            "",
            &["--rules", rules_file.to_str().expect("utf-8 path")],
        )
        .await;
        let mut audit = AuditServiceClient::connect(with_rules.url())
            .await
            .expect("connect");
        let again = all_anomalies(&mut audit, v1::ListAnomaliesRequest::default()).await;
        assert_eq!(again.iter().map(key).collect::<BTreeSet<_>>(), wanted);
    })
    .await;
}

/// Every anomaly listed, as (kind, lot, event, status), sorted.
async fn listed(server: &TestServer) -> Vec<(String, String, String, String)> {
    let mut all: Vec<_> = all_anomalies(
        &mut server.audit().await,
        v1::ListAnomaliesRequest {
            limit: 1000,
            ..Default::default()
        },
    )
    .await
    .into_iter()
    .map(|a| (a.kind, a.lot, a.event_id, a.status))
    .collect();
    all.sort();
    all
}

/// Edits the kept audit state in `dir` as JSON.
fn edit_kept(dir: &std::path::Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("audit-state.json");
    let text = std::fs::read(&path).expect("the listing is kept in the data dir");
    let mut kept: serde_json::Value = serde_json::from_slice(&text).expect("kept state is JSON");
    edit(&mut kept);
    std::fs::write(&path, serde_json::to_vec(&kept).expect("JSON")).expect("write");
}

/// The maintained listing is kept in the data dir (issue 18). A restarted server answers from
/// it (a mark put into the kept file is listed), with reviews and ledgers as before, and brings
/// it forward by the events written since. A kept state of another log, or one that does not
/// read, is set aside and the listing built again from the log.
#[tokio::test(flavor = "multi_thread")]
async fn the_listing_is_kept_across_restarts_for_the_log_it_was_made_from() {
    bounded(Duration::from_secs(180), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut scenario = Scenario::clean(SEED, 6, 10, 1);
        let clean = scenario.all();
        let first: Vec<Planted> = [
            Problem::OverConversion,
            Problem::NegativeMassBalance,
            Problem::UnregisteredPlot,
        ]
        .iter()
        .map(|p| scenario.plant(*p))
        .collect();
        // A later co-op's registrations and certificates (which change answers across the log,
        // so the listing is built again after them) come before the stop; its lot events after.
        use v1::event::Kind as K;
        let (registrations, later): (Vec<v1::Event>, Vec<v1::Event>) = scenario
            .plant(Problem::PremiumShortfall)
            .events
            .into_iter()
            .partition(|e| {
                matches!(
                    e.kind,
                    Some(
                        K::RegisterOrg(_)
                            | K::RegisterSite(_)
                            | K::RegisterPlot(_)
                            | K::RegisterClass(_)
                            | K::Certify(_)
                            | K::ConfirmMember(_)
                    )
                )
            });
        assert!(!later.is_empty());
        let (mut planted, rejected) = planted_events(&first);
        assert!(rejected.is_empty());
        planted.extend(registrations);

        let server = TestServer::start_in(dir.path()).await;
        let mut events = server.events().await;
        post_expecting(&mut events, &clean, &[]).await;
        post_expecting(&mut events, &planted, &[]).await;
        let mut audit = server.audit().await;
        let found = all_anomalies(&mut audit, v1::ListAnomaliesRequest::default()).await;
        assert!(found.len() >= 3, "{}", describe(&found));
        audit
            .review_anomaly(v1::ReviewAnomalyRequest {
                anomaly: found[0].id.clone(),
                verdict: v1::ReviewVerdict::Acknowledged as i32,
                note: "seen at the co-op".into(),
                event_id: String::new(),
            })
            .await
            .expect("review");
        let before = listed(&server).await;
        assert!(before.iter().any(|a| a.3 == "acknowledged"), "{before:?}");
        let whole_books = v1::MassBalanceRequest {
            org: scenario.coops[0].org.clone(),
            ..Default::default()
        };
        let books = ledgers(&mut audit, whole_books.clone()).await;
        assert!(!books.is_empty());
        server.stop().await.expect("stop");

        // Restored: a mark put into the kept state shows that it answers.
        let put_mark = |kept: &mut serde_json::Value| {
            kept["state"]["by_lot"]["MARK-LOT"] = serde_json::json!([{
                "kind": "UnknownOrigin",
                "lot": "MARK-LOT",
                "event_id": null,
                "org": null,
                "explanation": "put there by the test",
                "figures": {}
            }]);
        };
        edit_kept(dir.path(), put_mark);
        let mark = (
            "unknown_origin".to_string(),
            "MARK-LOT".to_string(),
            String::new(),
            "open".to_string(),
        );
        let server = TestServer::start_in(dir.path()).await;
        let mut with_mark = before.clone();
        with_mark.push(mark.clone());
        with_mark.sort();
        assert_eq!(
            listed(&server).await,
            with_mark,
            "restored from the data dir"
        );
        assert_eq!(
            ledgers(&mut server.audit().await, whole_books.clone()).await,
            books
        );
        // Brought forward by what is written after the restart.
        post_expecting(&mut server.events().await, &later, &[]).await;
        let after = listed(&server).await;
        let premium: Vec<_> = after
            .iter()
            .filter(|a| a.0 == "premium_shortfall")
            .collect();
        assert_eq!(premium.len(), 1, "{after:?}");
        assert!(after.contains(&mark));
        let books = ledgers(&mut server.audit().await, whole_books.clone()).await;
        server.stop().await.expect("stop");

        // A kept state of another log (its root differs), or one another build of lotline
        // wrote (its checks may differ), is set aside: the mark is not listed.
        let mut without_mark = after.clone();
        without_mark.retain(|a| *a != mark);
        for (field, other) in [
            ("root", serde_json::json!("00".repeat(32))),
            ("build", serde_json::json!("lotline 0.0.1")),
        ] {
            edit_kept(dir.path(), |kept| {
                put_mark(kept);
                kept[field] = other;
            });
            let server = TestServer::start_in(dir.path()).await;
            assert_eq!(listed(&server).await, without_mark, "{field}: built again");
            server.stop().await.expect("stop");
        }

        // One that does not read is set aside too, and the server answers as before.
        std::fs::write(dir.path().join("audit-state.json"), b"{\"format\": 1, \"up")
            .expect("write");
        let server = TestServer::start_in(dir.path()).await;
        assert_eq!(listed(&server).await, without_mark);
        assert_eq!(ledgers(&mut server.audit().await, whole_books).await, books);
        server.stop().await.expect("stop");
    })
    .await;
}
