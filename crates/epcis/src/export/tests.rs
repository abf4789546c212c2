use super::*;
use crate::hash::{Context, event_hash_json};
use crate::import::{Importer, Options};
use chrono::NaiveDate;
use lotline_domain::{Chain, Harvest, Movement, OutputLot, Transform};
use rust_decimal::Decimal;

fn native(id: &str, kind: EventKind) -> Event {
    Event {
        id: id.into(),
        time: DateTime::parse_from_rfc3339("2025-10-14T06:30:00+02:00").unwrap(),
        org: "coop".into(),
        chain: Some(Chain::Cocoa),
        site: Some("S 1".into()),
        extensions: [("note".to_string(), "dry".to_string())].into(),
        kind,
    }
}

fn kg(n: i64) -> Quantity {
    Quantity::new(Decimal::from(n), Unit::parse("kg").unwrap())
}

fn natives() -> Vec<Event> {
    vec![
        native(
            "h1",
            EventKind::Harvest(Harvest {
                lot: "L1".into(),
                plot: "P1".into(),
                product: "wet_cocoa_beans".into(),
                quantity: kg(820),
                harvest_start: NaiveDate::from_ymd_opt(2025, 10, 1),
                harvest_end: None,
                custody: Some(CustodyModel::Segregated),
                claims: vec!["fairtrade".into()],
            }),
        ),
        native(
            "t1",
            EventKind::Transform(Transform {
                inputs: vec![LotQuantity {
                    lot: "L1".into(),
                    quantity: kg(820),
                }],
                outputs: vec![OutputLot {
                    lot: "https://id.gs1.org/01/09506000134352/10/D1".into(),
                    product: "dry_cocoa_beans".into(),
                    quantity: kg(310),
                    custody: None,
                    claims: vec![],
                }],
                process: "fermenting_drying".into(),
                conversion_ratio: Some(Decimal::new(38, 2)),
            }),
        ),
        native(
            "s1",
            EventKind::Ship(Movement {
                lots: vec![LotQuantity {
                    lot: "L1".into(),
                    quantity: kg(5),
                }],
                counterparty: "brand".into(),
                documents: vec![lotline_domain::BusinessDocument {
                    kind: "invoice".into(),
                    id: "INV-1".into(),
                }],
            }),
        ),
        native(
            "p1",
            EventKind::Pay(lotline_domain::Pay {
                lots: vec![LotQuantity {
                    lot: "L1".into(),
                    quantity: kg(820),
                }],
                payee_org: "farm".into(),
                currency: "USD".into(),
                price_per_unit: Decimal::new(2400, 0),
                price_unit: "t".into(),
                premium_per_unit: Some(Decimal::new(240, 0)),
                contract_date: NaiveDate::from_ymd_opt(2025, 10, 1),
            }),
        ),
    ]
}

#[test]
fn native_events_become_their_natural_epcis_events_and_import_back() {
    let merge = ContextMerge::new();
    let context = merge.context();
    let hashing = Context::from_context(&context);
    let mut importer = Importer::new(Options::default());
    importer.context(&context, hashing.clone());
    for (n, event) in natives().iter().enumerate() {
        let out = to_epcis(event, None, &merge).unwrap();
        assert_eq!(out.len(), 1);
        let epcis = &out[0];
        event_hash_json(epcis, &hashing).unwrap();
        let back = importer.event(n, epcis).remove(0).result.unwrap();
        assert_eq!(back.kind, event.kind, "{epcis}");
        assert_eq!(
            (
                back.id.as_str(),
                back.org.as_str(),
                back.time,
                back.chain,
                back.site.as_deref()
            ),
            (
                event.id.as_str(),
                "coop",
                event.time,
                event.chain,
                Some("S 1")
            )
        );
        assert_eq!(back.extensions.get("note").map(String::as_str), Some("dry"));
    }
    let harvest = &to_epcis(&natives()[0], None, &merge).unwrap()[0];
    assert_eq!(
        harvest.get("type"),
        Some(&Json::String("ObjectEvent".into()))
    );
    assert_eq!(
        harvest.get("bizStep"),
        Some(&Json::String("commissioning".into()))
    );
    assert_eq!(
        harvest.get("eventID"),
        Some(&Json::String("urn:lotline:event:h1".into()))
    );
}

#[test]
fn an_imported_event_comes_back_as_it_came_and_clashing_prefixes_keep_the_hash() {
    let text = r#"{"type":"ObjectEvent","eventTime":"2025-10-14T06:30:00Z","eventTimeZoneOffset":"+00:00","action":"OBSERVE","epcList":["urn:epc:id:sgtin:9506000.013435.7"],"ex:temp":"12","bizStep":"inspecting"}"#;
    let a = r#"["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"ex":"https://a.example/"}]"#;
    let b = r#"["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",{"ex":"https://b.example/"}]"#;
    let kept = |ctx: &str| Event {
        extensions: [
            (crate::names::EXT_EVENT.to_string(), text.to_string()),
            (crate::names::EXT_CONTEXT.to_string(), ctx.to_string()),
        ]
        .into(),
        kind: EventKind::Observe(lotline_domain::Observe {
            event_type: "ObjectEvent".into(),
            action: "OBSERVE".into(),
            biz_step: "inspecting".into(),
            disposition: String::new(),
            lots: vec![],
            epcs: vec!["x".into()],
            parent: None,
        }),
        ..native(
            "o",
            EventKind::Harvest(match natives().remove(0).kind {
                EventKind::Harvest(h) => h,
                _ => unreachable!(),
            }),
        )
    };
    let mut merge = ContextMerge::new();
    merge.add(a);
    merge.add(b);
    let from_a = to_epcis(&kept(a), None, &merge).unwrap().remove(0);
    assert_eq!(from_a.to_string(), text, "verbatim, member order kept");
    let from_b = to_epcis(&kept(b), None, &merge).unwrap().remove(0);
    assert!(from_b.get("ex_2:temp").is_some(), "{from_b}");
    let original = event_hash_json(
        &Json::parse(text).unwrap(),
        &Context::from_context(&Json::parse(b).unwrap()),
    )
    .unwrap();
    let merged = event_hash_json(&from_b, &Context::from_context(&merge.context())).unwrap();
    assert_eq!(original, merged);
}

#[test]
fn a_written_document_reads_back() {
    let merge = ContextMerge::new();
    let mut master = MasterData::new();
    for e in natives() {
        master.observe(&e);
    }
    let mut writer = DocumentWriter::new(
        Vec::new(),
        &merge.context(),
        Some(&master.to_json()),
        "2025-11-22T00:00:00Z",
    )
    .unwrap();
    let events: Vec<Json> = natives()
        .iter()
        .flat_map(|e| to_epcis(e, None, &merge).unwrap())
        .collect();
    for e in &events {
        writer.event(e).unwrap();
    }
    let bytes = writer.finish().unwrap();
    let mut read = Vec::new();
    let mut header = String::new();
    crate::stream::read_document(bytes.as_slice(), &mut |p| {
        match p {
            crate::stream::Part::Event(_, e) => read.push(e),
            part @ (crate::stream::Part::Header(_) | crate::stream::Part::Vocabulary { .. }) => {
                header.push_str(&part.header_view().unwrap_or(Json::Null).to_string())
            }
            crate::stream::Part::Context(_) => {}
        }
        Ok(crate::stream::Flow::Continue)
    })
    .unwrap();
    assert_eq!(read, events);
    assert!(
        header.contains("https://id.gs1.org/01/09506000134352")
            && header.contains("dry_cocoa_beans"),
        "{header}"
    );
}
