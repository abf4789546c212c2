//! Tests across the audit modules: lineage's custody and claim flags, group
//! certificates, the EUDR verdict, the chain report and the anomaly listing,
//! each on a small chain built for the rule at hand.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::anomaly::AnomalyKind;
use crate::audit::certs::{CertStatus, Certificates};
use crate::audit::chain::{ChainFacts, report};
use crate::audit::eudr::{EudrFacts, Verdict, assess, feature_collection};
use crate::audit::rules::Rules;
use crate::audit::scan::anomalies;
use crate::event::Chain::{Cocoa, Coffee, Textile};
use crate::event::CustodyModel::{MassBalance, Segregated};
use crate::event::*;
use crate::fixtures::*;
use crate::lineage::Lineage;
use crate::quantity::{Quantity, Unit};

const FT: &[&str] = &["fairtrade"];

fn register(org: &str, role: OrgRole, member_of: Option<&str>) -> Arc<Event> {
    let mut e = (*event(
        &format!("reg-{org}"),
        org,
        "2025-01-01",
        Cocoa,
        EventKind::RegisterOrg(RegisterOrg {
            name: format!("{org} name"),
            role,
            country: "CI".into(),
            gln: None,
            member_of: member_of.map(str::to_string),
            party: None,
        }),
    ))
    .clone();
    e.chain = None;
    Arc::new(e)
}

fn certify(org: &str, standard: &str, to: &str) -> Arc<Event> {
    event(
        &format!("cert-{org}-{standard}"),
        org,
        "2025-01-01",
        Cocoa,
        EventKind::Certify(Certify {
            standard: standard.into(),
            certificate_id: format!("C-{org}"),
            products: vec![],
            valid_from: None,
            valid_to: Some(day(to)),
            outcome: "certified".into(),
            lot: None,
            subject_org: None,
        }),
    )
}

fn day(s: &str) -> chrono::NaiveDate {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

fn plot(
    id: &str,
    org: &str,
    geometry: &str,
    area: &str,
    country: &str,
) -> (String, (Arc<Event>, RegisterPlot)) {
    let p = RegisterPlot {
        plot: id.into(),
        geometry: geometry.into(),
        area_ha: Some(d(area)),
        country: country.into(),
    };
    let e = event(
        &format!("plot-{id}"),
        org,
        "2025-01-01",
        Cocoa,
        EventKind::RegisterPlot(p.clone()),
    );
    (id.to_string(), (e, p))
}

const SQUARE_CI: &str = r#"{"type":"Polygon","coordinates":[[[-5.500000,6.800000],[-5.490000,6.800000],[-5.490000,6.810000],[-5.500000,6.810000],[-5.500000,6.800000]]]}"#;

#[test]
fn declared_custody_above_the_inputs_and_unsupported_claims_are_flagged() {
    let events = vec![
        event(
            "h1",
            "farm-a",
            "2026-01-01",
            Cocoa,
            harvest("A", "p1", "wet cocoa beans", kg("100"), FT),
        ),
        event(
            "h2",
            "farm-b",
            "2026-01-01",
            Cocoa,
            harvest("B", "p2", "wet cocoa beans", kg("100"), &[]),
        ),
        event(
            "t1",
            "coop",
            "2026-01-02",
            Cocoa,
            transform(
                "aggregation",
                &[("A", kg("100")), ("B", kg("100"))],
                vec![output(
                    "AB",
                    "wet cocoa beans",
                    kg("200"),
                    Some(CustodyModel::IdentityPreserved),
                    FT,
                )],
                None,
            ),
        ),
    ];
    let source = Events(with_hand_overs(events));
    let mut lineage = Lineage::new(&source);
    let state = lineage.lot_state("AB").expect("state");
    assert_eq!(
        state.custody, Segregated,
        "two inputs make at most a segregated lot"
    );
    assert!(
        state.claims.is_empty(),
        "an uncertified input removes the claim under segregation"
    );
    let kinds: Vec<_> = state
        .anomalies
        .iter()
        .map(|a| (a.kind, a.event_id.clone()))
        .collect();
    assert!(
        kinds.contains(&(AnomalyKind::CustodyUpgrade, Some("t1".into()))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(AnomalyKind::UnsupportedClaim, Some("t1".into()))),
        "{kinds:?}"
    );
}

#[test]
fn mass_balance_keeps_a_claim_any_input_carries_and_coffee_under_it_is_flagged() {
    let events = vec![
        event(
            "h1",
            "farm-a",
            "2026-01-01",
            Coffee,
            harvest("A", "p1", "coffee cherry", kg("100"), FT),
        ),
        event(
            "h2",
            "farm-b",
            "2026-01-01",
            Coffee,
            harvest("B", "p2", "coffee cherry", kg("100"), &[]),
        ),
        event(
            "t1",
            "mill",
            "2026-01-02",
            Coffee,
            transform(
                "pulping",
                &[("A", kg("100")), ("B", kg("100"))],
                vec![output("P", "parchment", kg("40"), Some(MassBalance), FT)],
                None,
            ),
        ),
    ];
    let source = Events(with_hand_overs(events));
    let state = Lineage::new(&source).lot_state("P").expect("state");
    assert_eq!(state.custody, MassBalance);
    assert_eq!(state.claims, vec!["fairtrade".to_string()]);
    let coffee: Vec<_> = state
        .anomalies
        .iter()
        .filter(|a| a.kind == AnomalyKind::CoffeeMassBalance)
        .collect();
    assert_eq!(coffee.len(), 1);
    assert_eq!(coffee[0].event_id.as_deref(), Some("t1"));
    assert_eq!(coffee[0].org.as_deref(), Some("mill"));
}

#[test]
fn a_co_op_certificate_covers_its_member_farms_only() {
    let mut certs = Certificates::default();
    certs.add(&register("farm-a", OrgRole::Farm, Some("coop")));
    certs.add(&confirm("c-a", "coop", "farm-a", "2025-01-01", None));
    certs.add(&register("farm-b", OrgRole::Farm, None));
    certs.add(&certify("coop", "fairtrade", "2026-12-31"));
    let on = day("2026-06-01");
    assert!(matches!(
        certs.status("farm-a", "fairtrade", "cocoa beans", Some("cocoa"), on),
        CertStatus::Valid(_)
    ));
    assert!(matches!(
        certs.status("farm-b", "fairtrade", "cocoa beans", Some("cocoa"), on),
        CertStatus::Missing
    ));
    // Valid through its last day, lapsed the day after, for members too.
    assert!(matches!(
        certs.status("farm-a", "fairtrade", "x", Some("cocoa"), day("2026-12-31")),
        CertStatus::Valid(_)
    ));
    assert!(matches!(
        certs.status("farm-a", "fairtrade", "x", Some("cocoa"), day("2027-01-01")),
        CertStatus::Lapsed { .. }
    ));
}

/// A two-farm cocoa chain into one dry lot, with plots as given.
fn cocoa_chain(custody: Option<CustodyModel>) -> Vec<Arc<Event>> {
    vec![
        event(
            "h1",
            "farm-a",
            "2026-01-01",
            Cocoa,
            harvest("A", "PA", "wet cocoa beans", kg("100"), FT),
        ),
        event(
            "h2",
            "farm-b",
            "2026-01-02",
            Cocoa,
            harvest("B", "PB", "wet cocoa beans", kg("300"), FT),
        ),
        event(
            "t1",
            "coop",
            "2026-01-05",
            Cocoa,
            transform(
                "fermenting_drying",
                &[("A", kg("100")), ("B", kg("300"))],
                vec![output("D", "dry cocoa beans", kg("150"), custody, FT)],
                Some("0.375"),
            ),
        ),
        event(
            "s1",
            "coop",
            "2026-01-10",
            Cocoa,
            ship(
                &[("D", kg("150"))],
                "trader",
                &[("dds", "REF-1"), ("dds_verification", "V-1")],
            ),
        ),
    ]
}

fn eudr_of(
    events: Vec<Arc<Event>>,
    plots: &BTreeMap<String, (Arc<Event>, RegisterPlot)>,
) -> crate::audit::eudr::EudrReport {
    let shipments: Vec<Arc<Event>> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Ship(_)))
        .cloned()
        .collect();
    let source = Events(with_hand_overs(events));
    let mut lineage = Lineage::new(&source);
    let upstream = lineage.upstream("D").expect("upstream");
    let orgs = BTreeMap::new();
    assess(&EudrFacts {
        lot: "D",
        upstream: &upstream,
        plots,
        orgs: &orgs,
        shipments: &shipments,
    })
}

#[test]
fn eudr_traceable_when_every_origin_has_a_grade_plot() {
    let plots: BTreeMap<_, _> = [
        plot("PA", "farm-a", SQUARE_CI, "1", "CI"),
        plot("PB", "farm-b", SQUARE_CI, "1", "CI"),
    ]
    .into();
    let report = eudr_of(cocoa_chain(None), &plots);
    assert_eq!(report.verdict, Verdict::Traceable, "{:?}", report.reasons);
    assert_eq!(report.plots.len(), 2);
    assert_eq!(report.plots[0].production_start, Some(day("2026-01-01")));
    assert_eq!(report.dds.len(), 1);
    assert_eq!(report.dds[0].reference, "REF-1");
    assert_eq!(report.dds[0].verification.as_deref(), Some("V-1"));
    let fc = feature_collection(&report, false);
    let text = fc.to_string();
    let parsed: geojson::GeoJson = text.parse().expect("valid GeoJSON");
    let geojson::GeoJson::FeatureCollection(fc) = parsed else {
        panic!("not a FeatureCollection");
    };
    assert_eq!(fc.features.len(), 2);
    let props = fc.features[0].properties.as_ref().expect("properties");
    assert_eq!(props["ProducerCountry"], "CI");
    assert_eq!(props["ProductionPlace"], "PA");
    assert!(!props.contains_key("Area"), "Area is for points only");
}

#[test]
fn eudr_fails_on_mass_balance_a_missing_plot_and_a_coarse_one() {
    let coarse = r#"{"type":"Point","coordinates":[-5.5,6.8]}"#;
    let plots: BTreeMap<_, _> = [plot("PA", "farm-a", coarse, "1", "CI")].into();
    let report = eudr_of(cocoa_chain(Some(MassBalance)), &plots);
    assert_eq!(report.verdict, Verdict::NotTraceable);
    let all = report.reasons.join("\n");
    assert!(all.contains("\"D\" is under mass balance"), "{all}");
    assert!(
        all.contains("plot \"PB\"") && all.contains("never registered"),
        "{all}"
    );
    assert!(
        all.contains("plot \"PA\"") && all.contains("1 decimal places at most"),
        "{all}"
    );
    let fc = feature_collection(&report, true);
    let features = fc["features"].as_array().expect("features");
    let pb = features
        .iter()
        .find(|f| f["id"] == "PB")
        .expect("PB listed");
    assert!(
        pb["geometry"].is_null(),
        "an unregistered plot has a null geometry"
    );
    let pa = features
        .iter()
        .find(|f| f["id"] == "PA")
        .expect("PA listed");
    assert_eq!(pa["properties"]["Area"], serde_json::json!(1));
    assert!(pa["properties"].get("ProducerName").is_none());
}

#[test]
fn textile_report_names_each_stage_and_the_missing_one() {
    let mut events = vec![
        register("brand", OrgRole::Brand, None),
        certify("gin", "gots", "2027-01-01"),
        event(
            "h1",
            "farm",
            "2026-01-01",
            Textile,
            harvest("SC", "P", "seed cotton", kg("1000"), &["organic"]),
        ),
        event(
            "g1",
            "gin",
            "2026-01-05",
            Textile,
            transform(
                "ginning",
                &[("SC", kg("1000"))],
                vec![output("LINT", "cotton lint", kg("350"), None, &[])],
                None,
            ),
        ),
        // No spinning: knitting straight from lint.
        event(
            "k1",
            "knit",
            "2026-01-09",
            Textile,
            transform(
                "knitting",
                &[("LINT", kg("350"))],
                vec![output("FAB", "jersey", kg("330"), None, &[])],
                None,
            ),
        ),
        event(
            "d1",
            "dye",
            "2026-01-12",
            Textile,
            transform(
                "dyeing",
                &[("FAB", kg("330"))],
                vec![output("NAVY", "jersey navy", kg("320"), None, &[])],
                None,
            ),
        ),
        event(
            "c1",
            "cmt",
            "2026-01-15",
            Textile,
            transform(
                "cut_make_trim",
                &[("NAVY", kg("320"))],
                vec![output(
                    "TEE",
                    "t-shirt",
                    Quantity::new(d("1500"), Unit::Piece),
                    None,
                    &[],
                )],
                None,
            ),
        ),
    ];
    let movements = vec![event(
        "r1",
        "brand",
        "2026-01-20",
        Textile,
        receive(&[("TEE", Quantity::new(d("1500"), Unit::Piece))], "cmt"),
    )];
    events.extend(movements.clone());
    let mut certs = Certificates::default();
    events.iter().for_each(|e| certs.add(e));
    let orgs: BTreeMap<String, RegisterOrg> = [(
        "brand".to_string(),
        RegisterOrg {
            name: "Brand".into(),
            role: OrgRole::Brand,
            country: "SE".into(),
            gln: None,
            member_of: None,
            party: None,
        },
    )]
    .into();
    let source = Events(with_hand_overs(events));
    let upstream = Lineage::new(&source).upstream("TEE").expect("upstream");
    let r = report(&ChainFacts {
        lot: "TEE",
        upstream: &upstream,
        orgs: &orgs,
        certs: &certs,
        movements: &movements,
        chain_hint: None,
    });
    assert_eq!(r.missing, vec!["spinner".to_string()]);
    let stage = |name: &str| r.stages.iter().find(|s| s.name == name).expect("stage");
    assert_eq!(stage("ginner").entries[0].org, "gin");
    assert!(stage("ginner").entries[0].certified());
    assert!(!stage("cut-make-trim").entries[0].certified());
    assert_eq!(stage("brand").entries[0].org, "brand");
    // A fabric lot is not expected to have reached cut-make-trim or a brand.
    let fabric = Lineage::new(&source).upstream("FAB").expect("upstream");
    let r = report(&ChainFacts {
        lot: "FAB",
        upstream: &fabric,
        orgs: &orgs,
        certs: &certs,
        movements: &[],
        chain_hint: None,
    });
    assert_eq!(r.missing, vec!["spinner".to_string()]);
}

#[test]
fn a_clean_chain_lists_no_anomaly_and_each_planted_one_is_named() {
    let plots: BTreeMap<_, _> = [
        plot("PA", "farm-a", SQUARE_CI, "1", "CI"),
        plot("PB", "farm-b", SQUARE_CI, "1", "CI"),
    ]
    .into();
    let clean = membership_history("2025-01-01", None);
    let rules = Rules::default();
    let source = Events(clean.clone());
    let found = anomalies(&source, &clean, &rules, &plots).expect("scan");
    assert!(found.is_empty(), "{found:#?}");

    // Sell 10 kg more than was bought: the balance goes negative at that sale.
    let mut planted = clean.clone();
    planted.push(event(
        "s2",
        "coop",
        "2026-01-11",
        Cocoa,
        ship(&[("D", kg("10"))], "trader", &[]),
    ));
    let source = Events(planted.clone());
    let found = anomalies(&source, &planted, &rules, &plots).expect("scan");
    let kinds: Vec<_> = found
        .iter()
        .map(|a| (a.kind, a.event_id.as_deref()))
        .collect();
    assert!(
        kinds.contains(&(AnomalyKind::NegativeMassBalance, Some("s2"))),
        "{found:#?}"
    );
    // The co-op had shipped all of D the day before: it ships what it no longer holds.
    assert!(
        kinds.contains(&(AnomalyKind::NotHolder, Some("s2"))),
        "{found:#?}"
    );
    assert_eq!(found.len(), 2, "only the planted problem: {found:#?}");
}

#[test]
fn exported_rings_wind_as_rfc_7946_asks_and_features_lose_their_properties() {
    // Clockwise, and registered as a Feature with a farmer's name in its properties.
    let clockwise = r#"{"type":"Feature","properties":{"farmer":"Nguyen Van A"},"geometry":{"type":"Polygon","coordinates":[[[-5.500000,6.800000],[-5.500000,6.810000],[-5.490000,6.810000],[-5.490000,6.800000],[-5.500000,6.800000]]]}}"#;
    let plots: BTreeMap<_, _> = [
        plot("PA", "farm-a", clockwise, "1", "CI"),
        plot("PB", "farm-b", SQUARE_CI, "1", "CI"),
    ]
    .into();
    let report = eudr_of(cocoa_chain(None), &plots);
    let fc = feature_collection(&report, false);
    let text = fc.to_string();
    assert!(!text.contains("Nguyen"), "{text}");
    for feature in fc["features"].as_array().expect("features") {
        let ring = feature["geometry"]["coordinates"][0]
            .as_array()
            .expect("ring");
        let area: f64 = ring
            .windows(2)
            .map(|w| {
                let (x1, y1) = (w[0][0].as_f64().expect("x"), w[0][1].as_f64().expect("y"));
                let (x2, y2) = (w[1][0].as_f64().expect("x"), w[1][1].as_f64().expect("y"));
                x1 * y2 - x2 * y1
            })
            .sum();
        assert!(
            area > 0.0,
            "exterior ring of {} is not counterclockwise",
            feature["id"]
        );
    }
}

#[test]
fn minimum_prices_apply_to_dry_beans_and_green_coffee_only() {
    let rules = Rules::default();
    let on = day("2026-03-01");
    assert!(rules.price_for("cocoa", "dry cocoa beans", on).is_some());
    assert!(rules.price_for("cocoa", "wet cocoa beans", on).is_none());
    assert!(rules.price_for("cocoa", "cocoa liquor", on).is_none());
    let green = rules
        .price_for("coffee", "green coffee washed robusta", on)
        .expect("green robusta");
    assert_eq!(green.class, "coffee_washed_robusta");
    assert!(rules.price_for("coffee", "coffee cherry", on).is_none());
    assert!(rules.price_for("coffee", "arabica parchment", on).is_none());
}

#[test]
fn membership_counts_on_the_event_date() {
    let mut certs = Certificates::default();
    let joined = {
        let mut e = (*register("farm", OrgRole::Farm, Some("coop"))).clone();
        e.id = "reg-farm-1".into();
        e.time = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00+00:00").expect("time");
        e
    };
    let left = {
        let mut e = (*register("farm", OrgRole::Farm, None)).clone();
        e.id = "reg-farm-2".into();
        e.time = chrono::DateTime::parse_from_rfc3339("2026-07-01T00:00:00+00:00").expect("time");
        e
    };
    certs.add(&left);
    certs.add(&joined);
    certs.add(&certify("coop", "fairtrade", "2027-12-31"));
    certs.add(&confirm("c-1", "coop", "farm", "2025-06-01", None));
    let status = |d: &str| certs.status("farm", "fairtrade", "cocoa", Some("cocoa"), day(d));
    assert!(matches!(status("2026-03-01"), CertStatus::Valid(_)));
    assert!(matches!(status("2026-08-01"), CertStatus::Missing));
    // Before its first registration (a late sync), the first one applies.
    assert!(matches!(status("2025-12-01"), CertStatus::Valid(_)));
    // Before the co-op confirms it, the farm's word alone is not membership.
    assert!(matches!(status("2025-05-01"), CertStatus::Missing));
}

fn confirm(id: &str, co_op: &str, member: &str, from: &str, to: Option<&str>) -> Event {
    let mut e = (*register(co_op, OrgRole::Cooperative, None)).clone();
    e.id = id.into();
    e.kind = EventKind::ConfirmMember(crate::event::ConfirmMember {
        member: member.into(),
        valid_from: Some(day(from)),
        valid_to: to.map(day),
    });
    e
}

/// A farm's membership of a co-op counts only where both say so: the farm's registration names
/// the co-op and the co-op confirms the farm for that date. A farm naming a co-op that never
/// confirmed it, or a co-op confirming a farm that names another co-op, gets no coverage.
#[test]
fn membership_needs_the_farm_and_its_co_op() {
    let mut certs = Certificates::default();
    for (farm, co_op) in [("farm-a", "coop"), ("farm-b", "coop"), ("farm-c", "other")] {
        let mut e = (*register(farm, OrgRole::Farm, Some(co_op))).clone();
        e.id = format!("reg-{farm}");
        certs.add(&e);
    }
    certs.add(&certify("coop", "fairtrade", "2027-12-31"));
    // coop confirms farm-a for 2026 only, and farm-c (which says it belongs to "other").
    certs.add(&confirm(
        "c-a",
        "coop",
        "farm-a",
        "2026-01-01",
        Some("2026-12-31"),
    ));
    certs.add(&confirm("c-c", "coop", "farm-c", "2026-01-01", None));
    let status =
        |farm: &str, d: &str| certs.status(farm, "fairtrade", "cocoa", Some("cocoa"), day(d));
    assert!(matches!(
        status("farm-a", "2026-06-01"),
        CertStatus::Valid(_)
    ));
    assert!(matches!(
        status("farm-a", "2027-01-01"),
        CertStatus::Missing
    ));
    assert!(matches!(
        status("farm-b", "2026-06-01"),
        CertStatus::Missing
    ));
    assert!(matches!(
        status("farm-c", "2026-06-01"),
        CertStatus::Missing
    ));
    assert_eq!(certs.co_op_of("farm-a", day("2026-06-01")), Some("coop"));
    assert_eq!(certs.co_op_of("farm-b", day("2026-06-01")), None);
}

#[test]
fn a_brand_that_makes_the_lot_is_its_brand_stage() {
    let events = vec![
        register("brand", OrgRole::Brand, None),
        event(
            "h1",
            "farm",
            "2026-01-01",
            Cocoa,
            harvest("W", "P", "wet cocoa beans", kg("1000"), &[]),
        ),
        event(
            "d1",
            "coop",
            "2026-01-05",
            Cocoa,
            transform(
                "fermenting_drying",
                &[("W", kg("1000"))],
                vec![output("D", "dry cocoa beans", kg("380"), None, &[])],
                None,
            ),
        ),
        event(
            "g1",
            "grinder",
            "2026-01-09",
            Cocoa,
            transform(
                "roasting_grinding",
                &[("D", kg("380"))],
                vec![output("L", "cocoa liquor", kg("300"), None, &[])],
                None,
            ),
        ),
        event(
            "m1",
            "brand",
            "2026-01-12",
            Cocoa,
            transform(
                "manufacturing",
                &[("L", kg("300"))],
                vec![output("BAR", "chocolate bar", kg("600"), None, &[])],
                None,
            ),
        ),
    ];
    let orgs: BTreeMap<String, RegisterOrg> = [(
        "brand".to_string(),
        RegisterOrg {
            name: "Brand".into(),
            role: OrgRole::Brand,
            country: "NL".into(),
            gln: None,
            member_of: None,
            party: None,
        },
    )]
    .into();
    let certs = Certificates::default();
    let source = Events(with_hand_overs(events));
    let upstream = Lineage::new(&source).upstream("BAR").expect("upstream");
    let r = report(&ChainFacts {
        lot: "BAR",
        upstream: &upstream,
        orgs: &orgs,
        certs: &certs,
        movements: &[],
        chain_hint: None,
    });
    assert!(r.missing.is_empty(), "{:?}", r.missing);
    let brand = r
        .stages
        .iter()
        .find(|s| s.name == "brand")
        .expect("brand stage");
    assert_eq!(brand.entries[0].org, "brand");
}

fn pack(parent: &str, lots: &[&str]) -> EventKind {
    EventKind::Observe(Observe {
        event_type: "AggregationEvent".into(),
        action: "ADD".into(),
        biz_step: "packing".into(),
        disposition: "in_progress".into(),
        lots: Vec::new(),
        epcs: lots.iter().map(|l| l.to_string()).collect(),
        parent: Some(parent.into()),
    })
}

#[test]
fn a_logistic_unit_is_not_a_lot_of_unknown_origin() {
    let pallet = "https://id.gs1.org/00/106141412345678908";
    let crate_ = "urn:epc:id:sscc:0614141.1234567891";
    let mut events = cocoa_chain(None);
    events.push(event(
        "pack",
        "coop",
        "2026-01-20",
        Cocoa,
        pack(pallet, &["D"]),
    ));
    events.push(event(
        "pack2",
        "coop",
        "2026-01-20",
        Cocoa,
        pack("urn:lotline:box:7", &["D"]),
    ));
    events.push(event(
        "observe",
        "coop",
        "2026-01-20",
        Cocoa,
        EventKind::Observe(Observe {
            event_type: "ObjectEvent".into(),
            action: "OBSERVE".into(),
            biz_step: "storing".into(),
            disposition: "in_progress".into(),
            lots: Vec::new(),
            epcs: vec![crate_.into()],
            parent: None,
        }),
    ));
    // A lot nothing creates, named by a shipment: still an unknown origin.
    events.push(event(
        "stray",
        "coop",
        "2026-01-21",
        Cocoa,
        ship(&[("STRAY", kg("5"))], "trader", &[]),
    ));
    let found = scan(&events);
    let unknown: Vec<&str> = found
        .iter()
        .filter(|a| a.kind == AnomalyKind::UnknownOrigin)
        .map(|a| a.lot.as_str())
        .collect();
    assert_eq!(unknown, ["STRAY"], "{found:#?}");

    // An SSCC a transformation consumes is taken as a lot: nothing made it.
    let mut consumed = events.clone();
    consumed.push(event(
        "roast",
        "coop",
        "2026-01-22",
        Cocoa,
        transform(
            "roasting",
            &[(pallet, kg("1"))],
            vec![output("R", "roasted", kg("1"), None, &[])],
            None,
        ),
    ));
    let found = scan(&consumed);
    assert!(
        found
            .iter()
            .any(|a| a.kind == AnomalyKind::UnknownOrigin && a.lot == pallet),
        "{found:#?}"
    );
}

/// The cocoa chain with both farms registered as members of the co-op, farm A confirmed from
/// 2025 (until `a_until`), farm B from `b_from`, each lot received by the co-op on 2026-01-03.
fn membership_history(b_from: &str, a_until: Option<&str>) -> Vec<Arc<Event>> {
    let mut events = vec![
        register("farm-a", OrgRole::Farm, Some("coop")),
        register("farm-b", OrgRole::Farm, Some("coop")),
        Arc::new(confirm("c-a", "coop", "farm-a", "2025-01-01", a_until)),
        Arc::new(confirm("c-b", "coop", "farm-b", b_from, None)),
        certify("coop", "fairtrade", "2027-01-01"),
        certify("trader", "fairtrade", "2027-01-01"),
        event(
            "rA",
            "coop",
            "2026-01-03",
            Cocoa,
            receive(&[("A", kg("100"))], "farm-a"),
        ),
        event(
            "rB",
            "coop",
            "2026-01-03",
            Cocoa,
            receive(&[("B", kg("300"))], "farm-b"),
        ),
    ];
    events.extend(cocoa_chain(None));
    events
}

/// The anomaly listing of `events`, with default rules and no plots.
fn scan(events: &[Arc<Event>]) -> Vec<crate::anomaly::Anomaly> {
    anomalies(
        &Events(events.to_vec()),
        events,
        &Rules::default(),
        &BTreeMap::new(),
    )
    .expect("scan")
}

fn non_member(found: &[crate::anomaly::Anomaly]) -> Vec<(&str, &str, &str, &str)> {
    found
        .iter()
        .filter(|a| a.kind == AnomalyKind::NonMemberDelivery)
        .map(|a| {
            (
                a.event_id.as_deref().unwrap_or(""),
                a.lot.as_str(),
                a.figures["farm"].as_str(),
                a.figures["harvest_lot"].as_str(),
            )
        })
        .collect()
}

#[test]
fn a_co_op_selling_a_non_members_lot_as_certified_is_named_with_farm_and_dates() {
    let events = membership_history("2026-01-04", None);
    let found = scan(&events);
    // B was harvested on 2026-01-02 and delivered on 2026-01-03, before its confirmation:
    // the certified output D made of it, and D's sale, are each an anomaly.
    assert_eq!(
        non_member(&found),
        [("s1", "D", "farm-b", "B"), ("t1", "D", "farm-b", "B")],
        "{found:#?}"
    );
    let sale = found
        .iter()
        .find(|a| a.kind == AnomalyKind::NonMemberDelivery && a.event_id.as_deref() == Some("s1"))
        .expect("the sale");
    assert_eq!(sale.figures["co_op"], "coop");
    assert_eq!(sale.figures["harvest_date"], "2026-01-02");
    assert_eq!(sale.figures["delivery_date"], "2026-01-03");
    assert!(
        sale.explanation.contains("farm \"farm-b\"") && sale.explanation.contains("2026-01-02"),
        "{}",
        sale.explanation
    );

    // A's membership ended the day before its delivery: A is named too.
    let events = membership_history("2026-01-04", Some("2026-01-02"));
    let found = scan(&events);
    let named: Vec<_> = non_member(&found).into_iter().map(|n| n.3).collect();
    assert_eq!(named, ["A", "B", "A", "B"], "{found:#?}");
}

#[test]
fn a_co_op_that_never_confirms_keeps_its_members_as_registered() {
    // Master data alone: farms name the co-op, which confirms nobody. A farm registered with
    // another co-op is still no member.
    let mut events: Vec<Arc<Event>> = membership_history("2026-01-04", None)
        .into_iter()
        .filter(|e| !matches!(e.kind, EventKind::ConfirmMember(_)))
        .collect();
    let found = scan(&events);
    assert!(non_member(&found).is_empty(), "{found:#?}");
    events.retain(|e| e.id != "reg-farm-b");
    let mut b = (*register("farm-b", OrgRole::Farm, Some("other-coop"))).clone();
    b.id = "reg-farm-b".into();
    events.push(Arc::new(b));
    let found = scan(&events);
    assert_eq!(
        non_member(&found),
        [("s1", "D", "farm-b", "B"), ("t1", "D", "farm-b", "B")],
        "{found:#?}"
    );
}

/// A history with one of each kind of anomaly the listing finds, as events (plots included).
fn rich_history() -> Vec<Arc<Event>> {
    let mut events = membership_history("2026-01-04", None);
    let plot_event = |id: &str, org: &str, geometry: &str| {
        let (_, (e, _)) = plot(id, org, geometry, "1", "CI");
        e
    };
    events.push(plot_event("PA", "farm-a", SQUARE_CI));
    // Four decimals: not EUDR-grade.
    events.push(plot_event(
        "PB",
        "farm-b",
        r#"{"type":"Point","coordinates":[-5.5001,6.8001]}"#,
    ));
    events.push(event(
        "h3",
        "farm-a",
        "2026-01-02",
        Cocoa,
        harvest("C", "PZ", "wet cocoa beans", kg("50"), FT),
    ));
    events.push(plot_event("PZ", "farm-a", SQUARE_CI));
    let pallet = "https://id.gs1.org/00/106141412345678908";
    events.push(event(
        "pack",
        "coop",
        "2026-01-20",
        Cocoa,
        pack(pallet, &["D"]),
    ));
    // Sold twice (not the holder the second time), and over-consumed by the trader.
    events.push(event(
        "s2",
        "coop",
        "2026-01-11",
        Cocoa,
        ship(&[("D", kg("10"))], "trader", &[]),
    ));
    events.push(event(
        "t2",
        "trader",
        "2026-01-12",
        Cocoa,
        transform(
            "grinding",
            &[("D", kg("200"))],
            vec![output("E", "cocoa liquor", kg("160"), None, FT)],
            None,
        ),
    ));
    events.push(event(
        "s3",
        "trader",
        "2026-01-13",
        Cocoa,
        ship(&[("E", kg("160"))], "brand", &[]),
    ));
    // A lot made from one whose harvest arrives later.
    events.push(event(
        "t3",
        "coop",
        "2026-01-06",
        Cocoa,
        transform(
            "fermenting_drying",
            &[("X", kg("40"))],
            vec![output("Y", "dry cocoa beans", kg("15"), None, FT)],
            Some("0.375"),
        ),
    ));
    events.push(event(
        "hX",
        "farm-c",
        "2026-01-04",
        Cocoa,
        harvest("X", "PA", "wet cocoa beans", kg("40"), FT),
    ));
    events.push(event(
        "rX",
        "coop",
        "2026-01-05",
        Cocoa,
        receive(&[("X", kg("40"))], "farm-c"),
    ));
    events.push(event(
        "s4",
        "coop",
        "2026-01-07",
        Cocoa,
        ship(&[("Y", kg("5"))], "trader", &[]),
    ));
    // A pallet of Y shipped to a roaster, who roasts Y: the pallet's moves carry Y.
    let pallet_events = ["pack", "ship-pallet", "receive-pallet", "roast"];
    for e in pallet_chain(false)
        .into_iter()
        .filter(|e| pallet_events.contains(&e.id.as_str()))
    {
        let mut e = (*e).clone();
        e.id = format!("{}-Y", e.id);
        match &mut e.kind {
            EventKind::Observe(o) => o.epcs = vec!["Y".into()],
            EventKind::Transform(t) => {
                t.inputs[0].lot = "Y".into();
                t.inputs[0].quantity = kg("15");
                t.outputs[0].lot = "RY".into();
                t.outputs[0].claims = vec![FT[0].into()];
            }
            _ => {}
        }
        events.push(Arc::new(e));
    }
    // A pallet of W passed on whole by a warehouse: W's harvest decides what its books take.
    let pallet2 = "https://id.gs1.org/00/106141412345678915";
    events.push(event(
        "hW",
        "farm-a",
        "2026-01-03",
        Cocoa,
        harvest("W", "PA", "wet cocoa beans", kg("20"), FT),
    ));
    events.push(event(
        "rW",
        "coop",
        "2026-01-03",
        Cocoa,
        receive(&[("W", kg("20"))], "farm-a"),
    ));
    events.push(event(
        "pack-W",
        "coop",
        "2026-01-04",
        Cocoa,
        pack(pallet2, &["W"]),
    ));
    let pallets = [(pallet2, Quantity::new(d("1"), Unit::Piece))];
    events.push(event(
        "ship-W",
        "coop",
        "2026-01-05",
        Cocoa,
        ship(&pallets, "warehouse", &[]),
    ));
    events.push(event(
        "receive-W",
        "warehouse",
        "2026-01-06",
        Cocoa,
        receive(&pallets, "coop"),
    ));
    events.push(event(
        "pass-W",
        "warehouse",
        "2026-01-07",
        Cocoa,
        ship(&pallets, "brand", &[]),
    ));
    // The roaster sells what it roasted: its books take in Y by the pallet.
    events.push(event(
        "sell-RY",
        "roaster",
        "2026-01-12",
        Cocoa,
        ship(&[("RY", kg("100"))], "brand", &[]),
    ));
    let full = full_listing(&events);
    assert!(full.len() >= 8, "the history plants anomalies: {full:#?}");
    for (i, a) in full.iter().take(2).enumerate() {
        let event_id = a.event_id.clone().unwrap_or_default();
        let mut review = (*event(
            &format!("review-{i}"),
            "auditor",
            "2026-02-01",
            Cocoa,
            EventKind::Review(Review {
                anomaly: crate::anomaly::anomaly_id(a.kind, &event_id, &a.lot),
                verdict: crate::event::Verdict::Disputed,
                note: "seen".into(),
            }),
        ))
        .clone();
        review.chain = None;
        events.push(Arc::new(review));
    }
    events
}

/// The full scan of `events` (uncorrected, in log order) with its reviews.
fn full_listing(events: &[Arc<Event>]) -> Vec<crate::anomaly::Anomaly> {
    use crate::audit::maintained::{AuditSource, full_scan};
    let source = Events(events.to_vec());
    let mut plots = BTreeMap::new();
    for e in events {
        if let EventKind::RegisterPlot(p) = &e.kind
            && let Some(standing) = source.plot(&p.plot).expect("plot")
        {
            plots.insert(p.plot.clone(), standing);
        }
    }
    full_scan(&source, events, &Rules::default(), &plots).expect("scan")
}

/// The maintained listing, fed a history in many orders and batch sizes, equals the full scan
/// of the log after every batch (a late upstream event, a plot registered after its harvest,
/// a certificate or registration that rebuilds, reviews). Before one batch in three, the state
/// goes through its saved form (as JSON, as a restart reads it) and is restored without its
/// ledgers.
#[test]
fn the_maintained_listing_equals_the_full_scan_after_every_batch() {
    use crate::audit::maintained::Maintained;
    let history = rich_history();
    let rules = Rules::default();
    let mut incremental_updates = 0;
    let mut restores = 0;
    let mut builds = 0;
    for seed in 0..24u64 {
        // A deterministic shuffle (a linear congruential generator) and batch sizes 1-4.
        let mut order = history.clone();
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as usize
        };
        for i in (1..order.len()).rev() {
            order.swap(i, next() % (i + 1));
        }
        let mut state: Option<Maintained> = None;
        let mut log: Vec<Arc<Event>> = Vec::new();
        let mut rest = order.as_slice();
        while !rest.is_empty() {
            let (batch, after) = rest.split_at((1 + next() % 4).min(rest.len()));
            rest = after;
            log.extend(batch.iter().cloned());
            let source = Events(log.clone());
            if next() % 3 == 0
                && let Some(kept) = state.take()
            {
                let json = serde_json::to_vec(&kept.save()).expect("a state saves");
                let saved = serde_json::from_slice(&json).expect("a saved state reads back");
                state = Some(
                    Maintained::restore(&source, saved)
                        .expect("restore")
                        .expect("its reviews are in the log"),
                );
                restores += 1;
            }
            let applied = match state.as_mut() {
                Some(s) => s.apply(&source, batch).expect("apply"),
                None => None,
            };
            if applied.is_some() {
                incremental_updates += 1;
            } else {
                // Chunks of 1 to 5 events: a build holds one chunk of the log at a time.
                let chunk = 1 + next() % 5;
                state = Some(Maintained::build_in_chunks(&source, &rules, chunk).expect("build"));
                builds += 1;
            }
            let state = state.as_mut().expect("state");
            assert_eq!(
                *state.listing(),
                full_listing(&log),
                "seed {seed}, after {} events",
                log.len()
            );
            let orgs: BTreeSet<&str> = log.iter().map(|e| e.org.as_str()).collect();
            for org in orgs {
                assert_eq!(
                    state.ledgers(&source, org).expect("ledgers").as_deref(),
                    Some(&fresh_books(&log, org)),
                    "seed {seed}, {org}'s books after {} events",
                    log.len()
                );
            }
        }
    }
    assert!(incremental_updates > 100, "{incremental_updates}");
    assert!(restores > 50, "{restores}");
    assert!(builds > 50, "{builds}");
}

/// A build reads the log in chunks and checks each lot in the first chunk that names it; what a
/// later walk finds on a lot checked before (here an input consumed in a unit its lot cannot
/// be counted in, found on the input when its consumer is worked out) stays in the listing.
#[test]
fn a_build_in_chunks_keeps_what_a_later_walk_finds_on_a_lot_checked_before() {
    use crate::audit::maintained::Maintained;
    let mut log = vec![event(
        "h1",
        "farm-a",
        "2026-01-02",
        Cocoa,
        harvest("H", "PZ", "wet cocoa beans", kg("50"), &[]),
    )];
    for (i, day) in ["2026-01-03", "2026-01-04", "2026-01-05"]
        .iter()
        .enumerate()
    {
        log.push(event(
            &format!("other{i}"),
            "farm-b",
            day,
            Cocoa,
            harvest(&format!("O{i}"), "PY", "wet cocoa beans", kg("5"), &[]),
        ));
    }
    log.push(event(
        "t1",
        "farm-a",
        "2026-01-06",
        Cocoa,
        transform(
            "fermenting_drying",
            &[("H", Quantity::new(d("3"), Unit::Piece))],
            vec![output("D", "dry cocoa beans", kg("20"), None, &[])],
            None,
        ),
    ));
    let scanned = full_listing(&log);
    assert!(
        scanned
            .iter()
            .any(|a| a.kind == AnomalyKind::UnitMismatch && a.lot == "H"),
        "{scanned:?}"
    );
    let source = Events(log.clone());
    for chunk in 1..=log.len() {
        let mut built =
            Maintained::build_in_chunks(&source, &Rules::default(), chunk).expect("build");
        assert_eq!(*built.listing(), scanned, "chunks of {chunk}");
    }
}

/// The cocoa chain's dry lot D packed on a pallet, the pallet shipped to a roaster and received,
/// and the roaster roasting D. `unpacked`: D is taken off the pallet before it leaves.
fn pallet_chain(unpacked: bool) -> Vec<Arc<Event>> {
    let pallet = "urn:epc:id:sscc:0614141.1234567891";
    let mut events: Vec<Arc<Event>> = with_hand_overs(
        cocoa_chain(None)
            .into_iter()
            .filter(|e| e.id != "s1")
            .collect(),
    );
    events.push(event(
        "pack",
        "coop",
        "2026-01-06",
        Cocoa,
        pack(pallet, &["D"]),
    ));
    if unpacked {
        let mut out = pack(pallet, &["D"]);
        if let EventKind::Observe(o) = &mut out {
            o.action = "DELETE".into();
        }
        events.push(event("unpack", "coop", "2026-01-07", Cocoa, out));
    }
    let pallets = Quantity::new(d("1"), Unit::Piece);
    events.push(event(
        "ship-pallet",
        "coop",
        "2026-01-08",
        Cocoa,
        EventKind::Ship(Movement {
            lots: vec![LotQuantity {
                lot: pallet.into(),
                quantity: pallets.clone(),
            }],
            counterparty: "roaster".into(),
            documents: vec![],
        }),
    ));
    events.push(event(
        "receive-pallet",
        "roaster",
        "2026-01-09",
        Cocoa,
        EventKind::Receive(Movement {
            lots: vec![LotQuantity {
                lot: pallet.into(),
                quantity: pallets,
            }],
            counterparty: "coop".into(),
            documents: vec![],
        }),
    ));
    events.push(event(
        "roast",
        "roaster",
        "2026-01-10",
        Cocoa,
        transform(
            "roasting",
            &[("D", kg("150"))],
            vec![output("R", "roasted cocoa beans", kg("130"), None, &[])],
            None,
        ),
    ));
    events
}

/// A Ship or Receive of a pallet moves the lots on it: the roaster that received the pallet holds
/// D and may roast it, and D's trace runs through. A lot taken off the pallet before it left
/// stays with the co-op, and roasting it is still reported.
#[test]
fn a_pallet_shipped_and_received_moves_the_lots_on_it() {
    let events = pallet_chain(false);
    let found = scan(&events);
    assert!(
        !found.iter().any(|a| a.kind == AnomalyKind::NotHolder),
        "{found:#?}"
    );
    let source = Events(events.clone());
    let state = Lineage::new(&source).lot_state("D").expect("state");
    assert_eq!(state.holder.as_deref(), Some("roaster"));
    let roasted = Lineage::new(&source).trace_back("R").expect("trace");
    assert_eq!(roasted.origins.len(), 2, "{roasted:#?}");

    let events = pallet_chain(true);
    let found = scan(&events);
    let not_holder: Vec<_> = found
        .iter()
        .filter(|a| a.kind == AnomalyKind::NotHolder)
        .map(|a| (a.lot.as_str(), a.event_id.as_deref()))
        .collect();
    assert_eq!(not_holder, [("D", Some("roast"))], "{found:#?}");
}

/// The pallet chain with the roaster's roasted lot sold under the claim, and D packed in
/// `packed` (none: the whole lot).
fn certified_pallet_chain(packed: Option<Quantity>) -> Vec<Arc<Event>> {
    let mut events = pallet_chain(false);
    for e in &mut events {
        let mut changed = (**e).clone();
        match &mut changed.kind {
            EventKind::Transform(t) if e.id == "roast" => t.outputs[0].claims = vec![FT[0].into()],
            EventKind::Observe(o) if e.id == "pack" => {
                if let Some(q) = &packed {
                    o.epcs.clear();
                    o.lots = vec![LotQuantity {
                        lot: "D".into(),
                        quantity: q.clone(),
                    }];
                }
            }
            _ => continue,
        }
        *e = Arc::new(changed);
    }
    // The co-op's books take in what its members delivered.
    events.push(event(
        "rA",
        "coop",
        "2026-01-03",
        Cocoa,
        receive(&[("A", kg("100"))], "farm-a"),
    ));
    events.push(event(
        "rB",
        "coop",
        "2026-01-03",
        Cocoa,
        receive(&[("B", kg("300"))], "farm-b"),
    ));
    events.push(event(
        "sell-roasted",
        "roaster",
        "2026-01-11",
        Cocoa,
        ship(&[("R", kg("130"))], "brand", &[]),
    ));
    events
}

/// `org`'s whole books over `events`, drawn up from scratch.
fn fresh_books(events: &[Arc<Event>], org: &str) -> Vec<crate::audit::balance::Ledger> {
    let source = Events(events.to_vec());
    let mine: Vec<Arc<Event>> = events.iter().filter(|e| e.org == org).cloned().collect();
    crate::audit::scan::LotCache::new(&source)
        .ledgers(&crate::audit::maintained::whole_books(org), &mine)
        .expect("books")
}

/// Whole-books ledger entries of `org` over `events`: (event, direction, lot, amount).
fn book_entries(events: &[Arc<Event>], org: &str) -> Vec<(String, &'static str, String, String)> {
    fresh_books(events, org)
        .iter()
        .flat_map(|l| l.entries.iter())
        .map(|e| {
            (
                e.event_id.clone(),
                e.direction.as_str(),
                e.lot.clone(),
                e.amount.normalize().to_string(),
            )
        })
        .collect()
}

/// The books count a pallet's contents: the co-op that ships a pallet of its certified lot sells
/// that lot, and the roaster that receives the pallet takes it in, so selling what it roasted
/// from it leaves its balance whole. An item packed in a stated quantity moves that quantity.
#[test]
fn a_pallet_shipped_and_received_enters_the_books_as_what_it_held() {
    let events = certified_pallet_chain(None);
    let found = scan(&events);
    assert!(
        !found
            .iter()
            .any(|a| a.kind == AnomalyKind::NegativeMassBalance),
        "{found:#?}"
    );
    let roaster = book_entries(&events, "roaster");
    assert!(
        roaster.contains(&("receive-pallet".into(), "input", "D".into(), "150".into())),
        "{roaster:#?}"
    );
    let coop = book_entries(&events, "coop");
    assert!(
        coop.iter()
            .any(|(id, dir, lot, _)| id == "ship-pallet" && *dir == "output" && lot == "D"),
        "{coop:#?}"
    );

    // Packed at 100 kg, the pallet brings 100 kg: selling 150 kg's worth is over the balance.
    let events = certified_pallet_chain(Some(kg("100")));
    let roaster = book_entries(&events, "roaster");
    assert!(
        roaster.contains(&("receive-pallet".into(), "input", "D".into(), "100".into())),
        "{roaster:#?}"
    );
    let found = scan(&events);
    let negative: Vec<_> = found
        .iter()
        .filter(|a| a.kind == AnomalyKind::NegativeMassBalance)
        .map(|a| a.org.as_deref())
        .collect();
    assert_eq!(negative, [Some("roaster")], "{found:#?}");
}

/// A lot upstream of itself is one cycle, named once however the build reads the log: a walk
/// from a later chunk that reaches a cycle an earlier chunk's walk named does not name it again
/// (on another of its lots).
#[test]
fn a_build_in_chunks_names_a_cycle_once() {
    use crate::audit::maintained::Maintained;
    let step = |id: &str, day: &str, input: &str, out: &str| {
        event(
            id,
            "farm-a",
            day,
            Cocoa,
            transform(
                "fermenting_drying",
                &[(input, kg("10"))],
                vec![output(out, "dry cocoa beans", kg("10"), None, &[])],
                None,
            ),
        )
    };
    let log = vec![
        step("t1", "2026-01-02", "B", "A"),
        step("t2", "2026-01-03", "A", "B"),
        step("t3", "2026-01-04", "B", "C"),
        step("t4", "2026-01-05", "C", "D"),
    ];
    let cycles = |found: &[crate::anomaly::Anomaly]| {
        found
            .iter()
            .filter(|a| a.kind == AnomalyKind::LineageCycle)
            .count()
    };
    let scanned = full_listing(&log);
    assert_eq!(cycles(&scanned), 1, "{scanned:?}");
    let source = Events(log.clone());
    for chunk in 1..=log.len() {
        let mut built =
            Maintained::build_in_chunks(&source, &Rules::default(), chunk).expect("build");
        let listing = built.listing();
        assert_eq!(cycles(&listing), 1, "chunks of {chunk}: {listing:?}");
        assert_eq!(*listing, scanned, "chunks of {chunk}");
    }
}
