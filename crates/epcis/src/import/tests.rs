use super::*;
use crate::json::Json;

const CTX: &str = r#"["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld", {"lotline": "https://ns.lotline.dev/epcis/"}]"#;

const HEADER: &str = r#"{"epcisMasterData": {"vocabularyList": [
  {"type": "urn:epcglobal:epcis:vtype:Party", "vocabularyElementList": [
    {"id": "urn:epc:id:pgln:9506000.00001", "attributes": [
      {"id": "cbvmda:name", "attribute": "Koffi farm"}, {"id": "cbvmda:countryCode", "attribute": "CI"},
      {"id": "lotline:role", "attribute": "farm"}, {"id": "lotline:memberOf", "attribute": "urn:lotline:org:coop"}]},
    {"id": "urn:lotline:org:coop", "attributes": [
      {"id": "cbvmda:countryCode", "attribute": "CI"}, {"id": "lotline:role", "attribute": "cooperative"},
      {"id": "lotline:chain", "attribute": "cocoa"},
      {"id": "lotline:certificate", "attribute": {"scheme": "fairtrade", "id": "FLO-1", "validFrom": "2025-01-01", "validTo": "2027-12-31", "products": ["cocoa"]}}]},
    {"id": "urn:lotline:org:nameless", "attributes": [{"id": "cbvmda:countryCode", "attribute": "CI"}]}]},
  {"type": "urn:epcglobal:epcis:vtype:Location", "vocabularyElementList": [
    {"id": "urn:lotline:plot:P1", "attributes": [
      {"id": "lotline:owningParty", "attribute": "urn:epc:id:pgln:9506000.00001"},
      {"id": "lotline:geometry", "attribute": {"type": "Point", "coordinates": [-6.451234, 6.877654]}},
      {"id": "lotline:areaHa", "attribute": "1.5"}]},
    {"id": "urn:epc:id:sgln:9506000.00002.0", "attributes": [
      {"id": "lotline:owningParty", "attribute": "urn:lotline:org:coop"}, {"id": "cbvmda:name", "attribute": "Store"}]}]},
  {"type": "urn:epcglobal:epcis:vtype:EPCClass", "vocabularyElementList": [
    {"id": "urn:epc:idpat:sgtin:9506000.013435.*", "attributes": [
      {"id": "lotline:product", "attribute": "wet_cocoa_beans"}, {"id": "lotline:chain", "attribute": "cocoa"}]}]}]}}"#;

fn importer(org: Option<&str>) -> (Importer, Vec<Mapped>) {
    let mut i = Importer::new(Options {
        org: org.map(str::to_string),
        ..Options::default()
    });
    let ctx = Json::parse(CTX).unwrap();
    i.context(&ctx, Context::from_context(&ctx));
    let header = i.header(&Json::parse(HEADER).unwrap());
    (i, header)
}

fn one(i: &mut Importer, n: usize, text: &str) -> Result<Event, String> {
    let mut out = i.event(n, &Json::parse(text).unwrap());
    assert_eq!(out.len(), 1, "{text}");
    out.remove(0).result
}

const HARVEST: &str = r#"{"type": "ObjectEvent", "eventTime": "2025-10-14T06:30:00Z", "eventTimeZoneOffset": "+00:00",
  "action": "ADD", "bizStep": "commissioning", "bizLocation": {"id": "urn:lotline:plot:P1"},
  "quantityList": [{"epcClass": "urn:epc:class:lgtin:9506000.013435.LOT1", "quantity": 820, "uom": "KGM"}],
  "ilmd": {"cbvmda:harvestStartDate": "2025-10-10", "lotline:custody": "segregated", "lotline:claims": ["fairtrade"]}}"#;

#[test]
fn master_data_registers_orgs_plots_sites_and_certificates() {
    let (_, out) = importer(None);
    let ok: Vec<&Event> = out.iter().filter_map(|m| m.result.as_ref().ok()).collect();
    let farm = ok
        .iter()
        .find(|e| matches!(&e.kind, EventKind::RegisterOrg(o) if o.role == OrgRole::Farm))
        .expect("the farm");
    assert_eq!(farm.org, "gln-9506000000015");
    assert!(
        matches!(&farm.kind, EventKind::RegisterOrg(o) if o.member_of.as_deref() == Some("coop") && o.gln.as_deref() == Some("9506000000015"))
    );
    assert!(ok.iter().any(
        |e| matches!(&e.kind, EventKind::Certify(c) if c.certificate_id == "FLO-1")
            && e.org == "coop"
    ));
    assert!(ok.iter().any(
        |e| matches!(&e.kind, EventKind::RegisterPlot(p) if p.plot == "P1")
            && e.org == "gln-9506000000015"
    ));
    assert!(ok.iter().any(|e| matches!(&e.kind, EventKind::RegisterSite(s) if s.site == "https://id.gs1.org/414/9506000000022")));
    let bad = out
        .iter()
        .find(|m| m.result.is_err())
        .expect("the party without a role");
    assert_eq!(
        bad.source,
        Source::MasterData("urn:lotline:org:nameless".into())
    );
    assert!(bad.result.as_ref().unwrap_err().contains("lotline:role"));
    // The same master data twice gives the same ids (a re-import records nothing new).
    let (_, again) = importer(None);
    let ids = |v: &[Mapped]| -> Vec<String> {
        v.iter()
            .filter_map(|m| m.result.as_ref().ok())
            .map(|e| e.id.clone())
            .collect()
    };
    assert_eq!(ids(&out), ids(&again));
}

#[test]
fn a_commissioning_at_a_farm_is_a_harvest_with_its_hash_kept() {
    let (mut i, _) = importer(None);
    let e = one(&mut i, 0, HARVEST).unwrap();
    let EventKind::Harvest(h) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(h.lot, "https://id.gs1.org/01/09506000134352/10/LOT1");
    assert_eq!(h.plot, "P1");
    assert_eq!(h.product, "wet_cocoa_beans");
    assert_eq!(h.custody, Some(CustodyModel::Segregated));
    assert_eq!(e.org, "gln-9506000000015");
    assert_eq!(e.chain, Some(Chain::Cocoa));
    let hash = e.extensions.get(EXT_HASH).unwrap();
    assert_eq!(&e.id, hash, "no eventID: the hash is the id");
    assert_eq!(
        Json::parse(e.extensions.get(EXT_EVENT).unwrap()).unwrap(),
        Json::parse(HARVEST).unwrap()
    );
}

#[test]
fn both_forms_of_a_lot_are_one_lot_and_a_wrong_check_digit_is_named() {
    let (mut i, _) = importer(None);
    let ship = |class: &str| {
        format!(
            r#"{{"type": "ObjectEvent", "eventTime": "2025-10-17T08:00:00+02:00", "eventTimeZoneOffset": "+02:00",
            "action": "OBSERVE", "bizStep": "urn:epcglobal:cbv:bizstep:shipping", "bizLocation": {{"id": "urn:epc:id:sgln:9506000.00002.0"}},
            "quantityList": [{{"epcClass": "{class}", "quantity": 1, "uom": "KGM"}}],
            "destinationList": [{{"type": "owning_party", "destination": "urn:lotline:org:brand"}}]}}"#
        )
    };
    let a = one(&mut i, 0, &ship("urn:epc:class:lgtin:9506000.013435.LOT1")).unwrap();
    let b = one(
        &mut i,
        1,
        &ship("https://example.com/01/09506000134352/10/LOT1"),
    )
    .unwrap();
    let lot = |e: &Event| match &e.kind {
        EventKind::Ship(m) => m.lots[0].lot.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(lot(&a), lot(&b));
    assert_eq!(a.org, "coop");
    assert_eq!(a.time.offset().local_minus_utc(), 7200);
    let err = one(
        &mut i,
        2,
        &ship("https://id.gs1.org/01/09506000134353/10/LOT1"),
    )
    .unwrap_err();
    assert!(
        err.contains("quantityList[0].epcClass") && err.contains("check digit"),
        "{err}"
    );
}

#[test]
fn errors_of_each_kind_give_a_reason() {
    let (mut i, _) = importer(None);
    let err = |i: &mut Importer, text: &str| one(i, 0, text).unwrap_err();
    assert!(
        err(
            &mut i,
            &HARVEST.replace(
                r#"}],"#,
                r#"}, {"epcClass": "urn:lotline:lot:X", "quantity": 1}],"#
            )
        )
        .contains("one lot")
    );
    assert!(err(&mut i, &HARVEST.replace("820", "-5")).contains("quantity"));
    assert!(
        err(
            &mut i,
            &HARVEST.replace("2025-10-14T06:30:00Z", "yesterday")
        )
        .contains("eventTime")
    );
    assert!(
        err(
            &mut i,
            &HARVEST.replace("urn:lotline:plot:P1", "urn:lotline:site:unknown")
        )
        .contains("no org")
    );
    assert!(err(&mut i, r#""a string""#).contains("object"));
    let (mut with_org, _) = importer(Some("coop"));
    let no_chain = r#"{"type": "TransformationEvent", "eventTime": "2025-10-14T06:30:00Z", "eventTimeZoneOffset": "+00:00",
      "inputQuantityList": [{"epcClass": "urn:lotline:lot:A", "quantity": 1, "uom": "KGM"}],
      "outputQuantityList": [{"epcClass": "urn:lotline:lot:B", "quantity": 1, "uom": "KGM"}], "lotline:org": "urn:lotline:org:nameless"}"#;
    assert!(err(&mut with_org, no_chain).contains("chain"));
}

#[test]
fn transformation_records_join_by_their_id() {
    let (mut i, _) = importer(Some("coop"));
    let part = |list: &str, lot: &str| {
        Json::parse(&format!(
            r#"{{"type": "TransformationEvent", "eventTime": "2025-10-30T09:00:00Z", "eventTimeZoneOffset": "+00:00",
            "transformationID": "urn:uuid:t1", "{list}": [{{"epcClass": "urn:lotline:lot:{lot}", "quantity": 10, "uom": "KGM"}}],
            "bizStep": "commissioning", "lotline:process": "grinding", "lotline:chain": "cocoa"}}"#
        ))
        .unwrap()
    };
    assert!(i.event(3, &part("inputQuantityList", "IN")).is_empty());
    assert!(i.event(5, &part("outputQuantityList", "OUT")).is_empty());
    let lonely = Json::parse(
        &part("outputQuantityList", "X")
            .to_string()
            .replace("urn:uuid:t1", "urn:uuid:t2"),
    )
    .unwrap();
    assert!(i.event(6, &lonely).is_empty());
    let done = i.finish();
    assert_eq!(done.len(), 2);
    let joined = done
        .iter()
        .find(|m| m.source == Source::Joined(vec![3, 5]))
        .unwrap();
    let e = joined.result.as_ref().unwrap();
    let EventKind::Transform(t) = &e.kind else {
        panic!()
    };
    assert_eq!(
        (
            t.inputs[0].lot.as_str(),
            t.outputs[0].lot.as_str(),
            t.process.as_str()
        ),
        ("IN", "OUT", "grinding")
    );
    assert_eq!(e.extensions.get(EXT_HASH).unwrap().split(' ').count(), 2);
    let unjoined = done.iter().find(|m| m.source == Source::Event(6)).unwrap();
    assert!(
        unjoined
            .result
            .as_ref()
            .unwrap_err()
            .contains("transformation")
    );
    assert_eq!(Source::Joined(vec![3, 5]).to_string(), "events #3, #5");
}

#[test]
fn an_error_declaration_corrects_the_event_it_restates() {
    let (mut i, _) = importer(None);
    let original = one(
        &mut i,
        0,
        &HARVEST.replace(r#""action""#, r#""eventID": "urn:uuid:e1", "action""#),
    )
    .unwrap();
    let declared = HARVEST.replace(
        r#""action""#,
        r#""eventID": "urn:uuid:e1", "errorDeclaration": {"declarationTime": "2025-11-01T00:00:00Z", "reason": "urn:epcglobal:cbv:er:incorrect_data", "correctiveEventIDs": ["urn:uuid:e2"]}, "action""#,
    );
    let e = one(&mut i, 1, &declared).unwrap();
    let EventKind::Correct(c) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(c.corrected_event_id, "urn:uuid:e1");
    assert_eq!(c.reason, "incorrect_data");
    assert_eq!(c.corrective_event_ids, ["urn:uuid:e2"]);
    assert_eq!(e.id, "urn:uuid:e1#errorDeclaration");
    assert_eq!(
        e.extensions.get(EXT_HASH),
        original.extensions.get(EXT_HASH)
    );
}

#[test]
fn an_observation_keeps_what_it_names() {
    let (mut i, _) = importer(Some("coop"));
    let e = one(
        &mut i,
        0,
        r#"{"type": "AggregationEvent", "eventTime": "2025-10-30T09:00:00Z", "eventTimeZoneOffset": "+00:00", "action": "ADD",
        "parentID": "urn:epc:id:sscc:9506000.0000000001", "bizStep": "packing",
        "childQuantityList": [{"epcClass": "urn:lotline:lot:L", "quantity": 2, "uom": "KGM"}]}"#,
    )
    .unwrap();
    let EventKind::Observe(o) = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(
        (
            o.event_type.as_str(),
            o.action.as_str(),
            o.biz_step.as_str()
        ),
        ("AggregationEvent", "ADD", "packing")
    );
    assert_eq!(o.lots[0].lot, "L");
    assert!(
        o.parent
            .as_deref()
            .is_some_and(|p| p.starts_with("https://id.gs1.org/00/"))
    );
}

/// A registry of what an earlier import recorded, counting the questions asked of it.
#[derive(Default)]
struct Earlier {
    asked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Registry for Earlier {
    fn resolve(&mut self, ask: &Ask) -> Answers {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let coop = KnownOrg {
            org: "coop".into(),
            role: Some(OrgRole::Cooperative),
            chain: Some(Chain::Cocoa),
            country: Some("CI".into()),
        };
        let farm = KnownOrg {
            org: "gln-9506000000015".into(),
            role: Some(OrgRole::Farm),
            chain: None,
            country: Some("CI".into()),
        };
        let mut answers = Answers::default();
        // As the server does: a location as named, else without its extension.
        for l in &ask.locations {
            let found = location_candidates(l)
                .iter()
                .find_map(|c| match c.as_str() {
                    "P1" => Some(KnownLocation {
                        owner: Some(farm.clone()),
                        plot: true,
                    }),
                    "https://id.gs1.org/414/9506000000022" => Some(KnownLocation {
                        owner: Some(coop.clone()),
                        plot: false,
                    }),
                    _ => None,
                });
            answers.locations.push((l.clone(), found));
        }
        for p in &ask.parties {
            let found = (p == "https://id.gs1.org/417/9506000000039").then(|| KnownOrg {
                org: "brand".into(),
                role: Some(OrgRole::Brand),
                chain: None,
                country: Some("BE".into()),
            });
            answers.parties.push((p.clone(), found));
        }
        for c in &ask.classes {
            let found = (c == "https://id.gs1.org/01/09506000134352").then(|| KnownClass {
                product: Some("wet_cocoa_beans".into()),
                chain: Some(Chain::Cocoa),
            });
            answers.classes.push((c.clone(), found));
        }
        answers
    }
}

#[test]
fn events_without_master_data_find_what_an_earlier_import_registered() {
    let earlier = Earlier::default();
    let asked = earlier.asked.clone();
    let mut i = Importer::with_registry(Options::default(), Box::new(earlier));
    let ctx = Json::parse(CTX).unwrap();
    i.context(&ctx, Context::from_context(&ctx));
    let harvest = one(&mut i, 0, HARVEST).unwrap();
    assert_eq!(harvest.org, "gln-9506000000015");
    assert_eq!(harvest.chain, Some(Chain::Cocoa));
    assert!(
        matches!(&harvest.kind, EventKind::Harvest(h) if h.product == "wet_cocoa_beans" && h.plot == "P1"),
        "{harvest:?}"
    );
    // The co-op's site, named with an extension; the destination party by its PGLN.
    let ship = one(
        &mut i,
        1,
        r#"{"type": "ObjectEvent", "eventTime": "2025-10-15T06:30:00Z", "eventTimeZoneOffset": "+00:00",
          "action": "OBSERVE", "bizStep": "shipping", "bizLocation": {"id": "urn:epc:id:sgln:9506000.00002.12"},
          "quantityList": [{"epcClass": "urn:epc:class:lgtin:9506000.013435.LOT1", "quantity": 820, "uom": "KGM"}],
          "destinationList": [{"type": "owning_party", "destination": "urn:epc:id:pgln:9506000.00003"}]}"#,
    )
    .unwrap();
    assert_eq!(ship.org, "coop");
    assert!(
        matches!(&ship.kind, EventKind::Ship(m) if m.counterparty == "brand"),
        "{ship:?}"
    );
    let questions = asked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(questions <= 3, "{questions} questions for two events");
    // Names asked once are not asked again.
    one(&mut i, 2, HARVEST.replace("LOT1", "LOT2").as_str()).unwrap();
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), questions);
    // A location nobody registered is named in the rejection.
    let err = one(
        &mut i,
        3,
        &HARVEST.replace("urn:lotline:plot:P1", "urn:epc:id:sgln:9506000.00009.0"),
    )
    .unwrap_err();
    assert!(
        err.contains("https://id.gs1.org/414/9506000000091"),
        "{err}"
    );
}

#[test]
fn product_classes_are_registered_by_their_owner_with_their_attributes() {
    let mut i = Importer::new(Options::default());
    let ctx = Json::parse(CTX).unwrap();
    i.context(&ctx, Context::from_context(&ctx));
    let party = Json::parse(
        r#"{"id": "urn:lotline:org:coop", "attributes": [{"id": "cbvmda:countryCode", "attribute": "CI"},
            {"id": "lotline:role", "attribute": "cooperative"}, {"id": "lotline:chain", "attribute": "cocoa"}]}"#,
    )
    .unwrap();
    let org = i.vocabulary("urn:epcglobal:epcis:vtype:Party", &party);
    let registered = org[0].result.as_ref().unwrap();
    assert_eq!(
        registered.chain,
        Some(Chain::Cocoa),
        "the party's chain is registered"
    );
    assert!(registered.id.ends_with("-c"));
    let owned = Json::parse(
        r#"{"id": "urn:epc:idpat:sgtin:9506000.013435.*", "attributes": [
            {"id": "lotline:product", "attribute": "wet_cocoa_beans"}, {"id": "lotline:chain", "attribute": "cocoa"},
            {"id": "lotline:owningParty", "attribute": "urn:lotline:org:coop"},
            {"id": "urn:epcglobal:cbv:mda#descriptionShort", "attribute": "Wet beans"},
            {"id": "cbvmda:netContent", "attribute": {"value": 25, "uom": "KGM"}}]}"#,
    )
    .unwrap();
    let out = i.vocabulary("urn:epcglobal:epcis:vtype:EPCClass", &owned);
    let class = out[0].result.as_ref().unwrap();
    assert_eq!(class.org, "coop");
    assert_eq!(class.chain, Some(Chain::Cocoa));
    let EventKind::RegisterClass(c) = &class.kind else {
        panic!("{class:?}")
    };
    assert_eq!(c.class, "https://id.gs1.org/01/09506000134352");
    assert_eq!(c.product.as_deref(), Some("wet_cocoa_beans"));
    assert_eq!(
        c.attributes
            .get("cbvmda:descriptionShort")
            .map(String::as_str),
        Some("\"Wet beans\"")
    );
    assert_eq!(
        c.attributes.get("cbvmda:netContent").map(String::as_str),
        Some(r#"{"value":25,"uom":"KGM"}"#)
    );
    // Without an owner, a class serves this document only.
    let unowned = Json::parse(
        r#"{"id": "urn:epc:idpat:sgtin:9506000.099999.*", "attributes": [{"id": "lotline:product", "attribute": "x"}]}"#,
    )
    .unwrap();
    assert!(
        i.vocabulary("urn:epcglobal:epcis:vtype:EPCClass", &unowned)
            .is_empty()
    );
    assert_eq!(i.unowned_classes(), 1);
}

#[test]
fn a_batch_of_events_asks_the_registry_once() {
    let earlier = Earlier::default();
    let asked = earlier.asked.clone();
    let mut i = Importer::with_registry(Options::default(), Box::new(earlier));
    let ctx = Json::parse(CTX).unwrap();
    i.context(&ctx, Context::from_context(&ctx));
    let events: Vec<(usize, Json)> = (0..3)
        .map(|n| {
            let text = HARVEST.replace("LOT1", &format!("LOT{n}"));
            (n, Json::parse(&text).unwrap())
        })
        .collect();
    let out = i.events(&events);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|m| m.result.is_ok()), "{out:?}");
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn lotline_members_are_read_under_whatever_prefix_the_document_binds_to_lotline() {
    let custody_with = |context: &str, key: &str| {
        let mut i = Importer::new(Options::default());
        let ctx = Json::parse(context).unwrap();
        i.context(&ctx, Context::from_context(&ctx));
        let ilmd = Json::parse(&format!(r#"{{"{key}": "segregated"}}"#)).unwrap();
        i.ext_str(&ilmd, "custody")
    };
    let own = r#"[{"ll": "https://ns.lotline.dev/epcis/"}]"#;
    let elsewhere = r#"[{"lotline": "https://example.org/other/"}]"#;
    assert_eq!(
        custody_with(CTX, "lotline:custody").as_deref(),
        Some("segregated")
    );
    assert_eq!(
        custody_with(own, "ll:custody").as_deref(),
        Some("segregated")
    );
    assert_eq!(
        custody_with(own, "lotline:custody").as_deref(),
        Some("segregated"),
        "unbound, lotline: is lotline's"
    );
    assert_eq!(
        custody_with(elsewhere, "https://ns.lotline.dev/epcis/custody").as_deref(),
        Some("segregated")
    );
    assert_eq!(
        custody_with(elsewhere, "lotline:custody"),
        None,
        "bound to another namespace"
    );
    assert_eq!(custody_with(CTX, "lotline:custodyModel"), None);
    assert_eq!(custody_with(CTX, "custody"), None);
}

/// Collects what a whole document's import gives, in the order it is given.
#[derive(Default)]
struct Collected(Vec<Mapped>);

impl document::Sink for Collected {
    fn send(&mut self, mapped: Mapped) -> Result<(), document::Stopped> {
        self.0.push(mapped);
        Ok(())
    }
    fn barrier(&mut self) -> Result<(), document::Stopped> {
        Ok(())
    }
}

#[test]
fn a_document_of_many_chunks_keeps_each_events_own_hash_in_document_order() {
    // Events hashed on their own thread, a chunk ahead of the mapping: over several chunks and
    // a last short one, every event must come out in document order with its own hash.
    let events: Vec<String> = (0..(3 * document::ELEMENTS + 17))
        .map(|n| {
            HARVEST
                .replace("LOT1", &format!("LOT{n}"))
                .replace("820", &format!("{}", 100 + n))
        })
        .collect();
    let text = format!(
        r#"{{"@context": {CTX}, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2025-10-20T00:00:00Z", "epcisHeader": {HEADER},
            "epcisBody": {{"eventList": [{}]}}}}"#,
        events.join(",")
    );
    let hashing = crate::stream::hash_context(text.as_bytes()).unwrap();
    let open = |_: document::Pass| -> std::io::Result<Box<dyn std::io::Read>> {
        Ok(Box::new(std::io::Cursor::new(text.clone().into_bytes())))
    };
    let import = |check_only: bool| {
        let mut sink = Collected::default();
        let options = Options {
            check_only,
            ..Options::default()
        };
        let summary =
            document::import_document("doc", &open, options, Box::new(NoRegistry), &mut sink)
                .unwrap();
        assert_eq!(summary.events, events.len());
        sink.0
            .into_iter()
            .filter_map(|m| match m.source {
                Source::Event(i) => Some((i, m.result)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    let recorded = import(false);
    let order: Vec<usize> = recorded.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, (0..events.len()).collect::<Vec<_>>());
    for (i, result) in &recorded {
        let event = result.as_ref().unwrap_or_else(|e| panic!("event {i}: {e}"));
        let own = event_hash_json(&Json::parse(&events[*i]).unwrap(), &hashing).unwrap();
        assert_eq!(event.extensions.get(EXT_HASH), Some(&own), "event {i}");
        assert_eq!(
            event.id, own,
            "event {i}: no eventID, so the hash is the id"
        );
        let EventKind::Harvest(h) = &event.kind else {
            panic!("event {i}: {event:?}")
        };
        assert!(
            h.lot.ends_with(&format!("/10/LOT{i}")),
            "event {i}: {}",
            h.lot
        );
    }

    // A checking pass hashes nothing and gives the same events in the same order.
    let checked = import(true);
    assert_eq!(checked.iter().map(|(i, _)| *i).collect::<Vec<_>>(), order);
    assert!(checked.iter().all(|(_, r)| {
        r.as_ref()
            .is_ok_and(|e| !e.extensions.contains_key(EXT_HASH))
    }));
}
