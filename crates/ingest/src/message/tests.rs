use super::*;
use lotline_proto::v1;
use lotline_proto::v1::event::Kind;
use prost::Message;

fn harvest(id: &str, org: &str) -> v1::Event {
    v1::Event {
        event_id: id.into(),
        event_time: "2026-03-01T08:00:00+07:00".into(),
        org: org.into(),
        chain: "cocoa".into(),
        kind: Some(Kind::Harvest(v1::Harvest {
            lot: "L1".into(),
            plot: "P1".into(),
            product: "wet cocoa beans".into(),
            quantity: Some(v1::Quantity {
                amount: "10".into(),
                unit: "kg".into(),
            }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, *v);
    }
    h
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_770_000_000, 123_456_000).expect("time")
}

fn reason(s: &Submission) -> String {
    match &s.event {
        Ok(_) => panic!("accepted: {s:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_protobuf_event_on_its_own_subject_is_accepted_with_the_stream_time() {
    let e = harvest("h1", "coop");
    let bytes = e.encode_to_vec();
    let h = headers(&[(MSG_ID, "coop.h1")]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        Some(&h),
        &bytes,
        at(),
        false,
    );
    assert!(s.event.is_ok(), "{s:?}");
    assert_eq!(s.record_time, Some(at()));
    assert_eq!(s.payload, bytes, "the original bytes are kept");
    assert_eq!(s.source, SOURCE);
    // No Nats-Msg-Id is allowed (the store still dedups by event id).
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        None,
        &bytes,
        at(),
        false,
    );
    assert!(s.event.is_ok());
}

#[test]
fn json_needs_its_content_type_and_is_kept_as_sent() {
    let e = harvest("h1", "coop");
    let text = serde_json::to_string(&e).expect("json");
    let h = headers(&[(CONTENT_TYPE, "application/json; charset=utf-8")]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        Some(&h),
        text.as_bytes(),
        at(),
        false,
    );
    assert!(s.event.is_ok(), "{s:?}");
    assert_eq!(s.payload, text.as_bytes());
    // Without the header it is read as protobuf, and the reason says what to do.
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        None,
        text.as_bytes(),
        at(),
        false,
    );
    assert!(reason(&s).contains(CONTENT_TYPE), "{}", reason(&s));
    // Not UTF-8.
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        Some(&h),
        &[0xff, 0xfe],
        at(),
        false,
    );
    assert!(reason(&s).contains("UTF-8"));
    assert_eq!(s.payload, vec![0xff, 0xfe]);
}

#[test]
fn undecodable_payloads_name_the_org_and_id_from_the_envelope() {
    let h = headers(&[(MSG_ID, "coop.x-1")]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        Some(&h),
        b"\xff\xff\xff",
        at(),
        false,
    );
    assert!(reason(&s).contains("protobuf"));
    assert_eq!(s.event_id, "x-1");
    assert_eq!(s.org, "coop");
    assert_eq!(s.payload, b"\xff\xff\xff");
}

#[test]
fn the_envelope_must_agree_with_the_event() {
    let bytes = harvest("h1", "coop").encode_to_vec();
    let ok = headers(&[(MSG_ID, "coop.h1")]);
    let cases = [
        ("lotline.events.cocoa.other", &ok, "org"),
        ("lotline.events.coffee.coop", &ok, "chain"),
        ("lotline.events.coop", &ok, "subject"),
        ("lotline.events.cocoa.coop.extra", &ok, "subject"),
        ("elsewhere.events.cocoa.coop", &ok, "subject"),
    ];
    for (subject, h, word) in cases {
        let s = submission("lotline", subject, Some(h), &bytes, at(), false);
        assert!(reason(&s).contains(word), "{subject}: {}", reason(&s));
        assert_eq!(s.event_id, "h1");
    }
    // Another id, or another org's: a message id names the org too, so that the stream's
    // duplicate window cannot drop one org's event for another's. (The bare event id of earlier
    // releases is still read.)
    let bare = headers(&[(MSG_ID, "h1")]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        Some(&bare),
        &bytes,
        at(),
        false,
    );
    assert!(s.event.is_ok(), "{s:?}");
    for other in ["coop.h2", "other.h1", "h2"] {
        let other_id = headers(&[(MSG_ID, other)]);
        let s = submission(
            "lotline",
            "lotline.events.cocoa.coop",
            Some(&other_id),
            &bytes,
            at(),
            false,
        );
        assert!(reason(&s).contains(MSG_ID), "{other}: {}", reason(&s));
        assert!(reason(&s).contains("coop.h1"), "{other}: {}", reason(&s));
    }
}

#[test]
fn events_without_a_chain_take_any_chain_token() {
    let mut e = harvest("reg", "coop");
    e.chain = String::new();
    e.kind = Some(Kind::RegisterOrg(v1::RegisterOrg {
        name: "Coop".into(),
        role: v1::OrgRole::Cooperative as i32,
        country: "CI".into(),
        ..Default::default()
    }));
    let s = submission(
        "lotline",
        "lotline.events.none.coop",
        None,
        &e.encode_to_vec(),
        at(),
        false,
    );
    assert!(s.event.is_ok(), "{s:?}");
}

#[test]
fn a_copied_event_must_be_on_a_subject_its_source_copies() {
    // What nats-server 2.15 wrote on a message the hub's stream copied from a co-op edge.
    let copied = |subject: &str| {
        format!(
            "LOTLINE_EVENTS:ixi26bST 7 lotline.events.*.coop\u{c}lotline.relay.*.coop >\u{c}> {subject} pJsHL34w"
        )
    };
    let e = harvest("h1", "coop");
    let bytes = e.encode_to_vec();
    let own = copied("lotline.events.cocoa.coop");
    let h = headers(&[(MSG_ID, "coop.h1"), (STREAM_SOURCE, &own)]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.coop",
        Some(&h),
        &bytes,
        at(),
        false,
    );
    assert!(s.event.is_ok(), "{s:?}");

    // A doctored edge server delivering another org's event: the hub's own filters refuse it.
    let other = harvest("h2", "brand");
    let forged = copied("lotline.events.cocoa.brand");
    let h = headers(&[(MSG_ID, "brand.h2"), (STREAM_SOURCE, &forged)]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.brand",
        Some(&h),
        &other.encode_to_vec(),
        at(),
        false,
    );
    let why = reason(&s);
    assert!(
        why.contains("stream source") && why.contains("lotline.events.*.coop"),
        "{why}"
    );

    // A 2.9 server's header names no filters: nothing to hold the subject to.
    let h = headers(&[(MSG_ID, "brand.h2"), (STREAM_SOURCE, "LOTLINE_EVENTS 7")]);
    let s = submission(
        "lotline",
        "lotline.events.cocoa.brand",
        Some(&h),
        &other.encode_to_vec(),
        at(),
        false,
    );
    assert!(s.event.is_ok(), "{s:?}");
}

#[test]
fn master_data_may_travel_on_the_none_chain_whatever_chain_it_names() {
    let mut reg = harvest("reg-coop", "coop");
    reg.kind = Some(Kind::RegisterOrg(v1::RegisterOrg {
        name: "Coop".into(),
        role: v1::OrgRole::Cooperative as i32,
        country: "VN".into(),
        ..Default::default()
    }));
    let bytes = reg.encode_to_vec();
    for subject in ["lotline.events.none.coop", "lotline.events.cocoa.coop"] {
        let s = submission("lotline", subject, None, &bytes, at(), false);
        assert!(s.event.is_ok(), "{subject}: {s:?}");
    }
    let s = submission(
        "lotline",
        "lotline.events.coffee.coop",
        None,
        &bytes,
        at(),
        false,
    );
    assert!(reason(&s).contains("chain"), "{}", reason(&s));
    // A lot event still needs its own chain's subject.
    let lot = harvest("h1", "coop").encode_to_vec();
    let s = submission(
        "lotline",
        "lotline.events.none.coop",
        None,
        &lot,
        at(),
        false,
    );
    assert!(reason(&s).contains("chain"), "{}", reason(&s));
}
