//! Lineage answers against ground truth computed independently (testkit::chains),
//! on generated chains of thousands of lots with merges, splits, partial
//! consumption and corrections, posted in order and shuffled.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use lotline_proto::v1;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_testkit::TestServer;
use lotline_testkit::chains::{Rng, generate};
use tonic::transport::Channel;

async fn post_all(client: &mut EventServiceClient<Channel>, events: &[v1::Event]) {
    for chunk in events.chunks(1000) {
        let outcomes = client
            .record_batch(v1::RecordBatchRequest {
                events: chunk.to_vec(),
            })
            .await
            .expect("record batch")
            .into_inner()
            .outcomes;
        for o in outcomes {
            assert!(
                matches!(o.result, Some(v1::outcome::Result::Accepted(_))),
                "{} not accepted: {:?}",
                o.event_id,
                o.result
            );
        }
    }
}

async fn origins(
    client: &mut ProvenanceServiceClient<Channel>,
    lot: &str,
) -> BTreeMap<String, f64> {
    let answer = client
        .trace_back(v1::TraceBackRequest {
            lot: lot.into(),
            ..Default::default()
        })
        .await
        .expect("trace back")
        .into_inner();
    answer
        .origins
        .into_iter()
        .map(|o| {
            (
                o.lot,
                o.content
                    .expect("content")
                    .amount
                    .parse::<f64>()
                    .expect("decimal"),
            )
        })
        .collect()
}

async fn descendants(client: &mut ProvenanceServiceClient<Channel>, lot: &str) -> BTreeSet<String> {
    client
        .trace_forward(v1::TraceForwardRequest {
            lot: lot.into(),
            ..Default::default()
        })
        .await
        .expect("trace forward")
        .into_inner()
        .descendants
        .into_iter()
        .map(|d| d.lot)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_match_ground_truth_in_order_and_shuffled() {
    let chain = generate(0x5eed_2026, "", 400, 1600);
    let ordered = TestServer::start().await;
    let shuffled = TestServer::start().await;
    post_all(&mut ordered.events().await, &chain.in_order()).await;
    post_all(&mut shuffled.events().await, &chain.shuffled(7)).await;

    let mut a = ordered.provenance().await;
    let mut b = shuffled.provenance().await;
    let lots: Vec<&String> = chain.truth.origins.keys().collect();
    let mut rng = Rng::new(42);
    let mut sample: BTreeSet<&String> = (0..110)
        .map(|_| lots[rng.below(lots.len() as u64) as usize])
        .collect();
    sample.extend(lots.iter().rev().take(10));
    assert!(sample.len() > 100);
    for lot in sample {
        let expected = &chain.truth.origins[lot];
        let got = origins(&mut a, lot).await;
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "origins of {lot}"
        );
        for (origin, want) in expected {
            let have = got[origin];
            assert!(
                (have - want).abs() <= 1e-6 * want.max(1.0),
                "{lot} <- {origin}: {have} vs {want}"
            );
        }
        let full_a = a
            .trace_back(v1::TraceBackRequest {
                lot: lot.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let full_b = b
            .trace_back(v1::TraceBackRequest {
                lot: lot.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(full_a, full_b, "trace of {lot} depends on arrival order");
        let lot_a = a
            .get_lot(v1::GetLotRequest {
                lot: lot.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let lot_b = b
            .get_lot(v1::GetLotRequest {
                lot: lot.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                lot_a.produced,
                lot_a.remaining,
                lot_a.holder,
                lot_a.custody,
                lot_a.anomalies
            ),
            (
                lot_b.produced,
                lot_b.remaining,
                lot_b.holder,
                lot_b.custody,
                lot_b.anomalies
            ),
            "lot state of {lot} depends on arrival order"
        );
    }
    for n in (0..400).step_by(37) {
        let lot = format!("F{n}");
        let got = descendants(&mut a, &lot).await;
        assert_eq!(&got, &chain.truth.descendants[&lot], "recall of {lot}");
        assert_eq!(
            got,
            descendants(&mut b, &lot).await,
            "recall of {lot} depends on arrival order"
        );
    }
    assert!(
        a.list_unknown_lots(v1::ListUnknownLotsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .lots
            .is_empty()
    );
    ordered.stop().await.unwrap();
    shuffled.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lot_of_unknown_origin_joins_up_when_its_creation_arrives() {
    let chain = generate(99, "", 20, 40);
    let server = TestServer::start().await;
    let mut events = server.events().await;
    let mut provenance = server.provenance().await;
    // Hold back the harvest of a farm lot that other lots were made from.
    let farm = (0..20)
        .map(|n| format!("F{n}"))
        .find(|f| !chain.truth.descendants[f].is_empty())
        .expect("some farm lot is used");
    let harvest_id = format!("h{}", &farm[1..]);
    let (held, rest): (Vec<_>, Vec<_>) = chain
        .in_order()
        .into_iter()
        .partition(|e| e.event_id == harvest_id);
    assert_eq!(held.len(), 1);
    post_all(&mut events, &rest).await;
    let unknown = provenance
        .list_unknown_lots(v1::ListUnknownLotsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lots;
    assert_eq!(
        unknown.iter().map(|u| u.lot.as_str()).collect::<Vec<_>>(),
        vec![farm.as_str()]
    );
    let downstream = chain.truth.descendants[&farm]
        .iter()
        .next()
        .unwrap()
        .clone();
    let before = origins(&mut provenance, &downstream).await;
    assert!(
        before.contains_key(&farm),
        "an unknown lot is its own origin"
    );
    post_all(&mut events, &held).await;
    assert!(
        provenance
            .list_unknown_lots(v1::ListUnknownLotsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .lots
            .is_empty()
    );
    for (lot, expected) in chain
        .truth
        .origins
        .iter()
        .filter(|(_, o)| o.contains_key(&farm))
    {
        let got = origins(&mut provenance, lot).await;
        let want = expected[&farm];
        assert!((got[&farm] - want).abs() <= 1e-6 * want.max(1.0), "{lot}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_lots_are_listed_in_pages() {
    use lotline_testkit::events::{register_org, ship};
    let server = TestServer::start().await;
    let mut events = EventServiceClient::connect(server.url()).await.unwrap();
    let mut provenance = ProvenanceServiceClient::connect(server.url())
        .await
        .unwrap();
    let mut batch = vec![register_org("coop")];
    for n in 0..25 {
        batch.push(ship(
            &format!("s{n}"),
            "coop",
            &format!("U-{n:02}"),
            1,
            "buyer",
        ));
    }
    post_all(&mut events, &batch).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = provenance
            .list_unknown_lots(v1::ListUnknownLotsRequest {
                cursor: cursor.clone(),
                limit: 10,
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.lots.len() <= 10);
        seen.extend(page.lots.into_iter().map(|u| u.lot));
        cursor = page.next_cursor;
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|n| format!("U-{n:02}")).collect();
    assert_eq!(seen, expected);
    server.stop().await.unwrap();
}

/// `RecordStream` read as encoded events: bytes that are no event are rejected for themselves,
/// with the reason, and the events beside them in the batch are recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_batch_with_bytes_that_are_no_event_records_the_rest() {
    use lotline_proto::encoded::{self, EncodedBatch};
    use lotline_testkit::events::{harvest, register_org};
    use prost::Message;

    let server = TestServer::start().await;
    let channel = Channel::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let batch = EncodedBatch {
        events: vec![
            register_org("coop").encode_to_vec(),
            vec![0xff, 0xff, 0x01],
            harvest("h-1", "coop", "LOT-1", 100).encode_to_vec(),
        ],
    };
    let mut answers = encoded::record_stream(channel, 4 << 20, tokio_stream::iter([batch]))
        .await
        .expect("record stream")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    let results: Vec<_> = answer.outcomes.iter().map(|o| o.result.clone()).collect();
    assert!(
        matches!(&results[..], [
            Some(v1::outcome::Result::Accepted(_)),
            Some(v1::outcome::Result::Rejected(r)),
            Some(v1::outcome::Result::Accepted(_)),
        ] if r.kind == "invalid" && r.reason.contains("not a protobuf lotline.v1.Event")),
        "{results:?}"
    );
    assert_eq!(answer.outcomes[2].event_id, "h-1");
    assert!(
        answers.message().await.unwrap().is_none(),
        "one answer per batch"
    );
    server.stop().await.unwrap();
}

/// `RecordStream`: batches read ahead of the one being written are still recorded in the order
/// sent, each answered in order with its own outcomes; a batch the server cannot take ends the
/// stream with its reason after the answers before it, and records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_batches_are_recorded_and_answered_in_the_order_sent() {
    use lotline_testkit::events::{harvest, register_org};

    let server = TestServer::start().await;
    let mut events = EventServiceClient::connect(server.url()).await.unwrap();
    let mut batches: Vec<Vec<v1::Event>> = vec![vec![register_org("coop")]];
    for b in 0..6 {
        batches.push(
            (0..150)
                .map(|i| harvest(&format!("h-{b}-{i}"), "coop", &format!("LOT-{b}-{i}"), 100))
                .collect(),
        );
    }
    // A repeat of an event of the third batch, in the fifth; an event with no lot, in the
    // sixth (the server reads each streamed event from its bytes: still refused for itself).
    batches[4].push(harvest("h-1-7", "coop", "LOT-1-7", 100));
    batches[5].push(harvest("h-no-lot", "coop", "", 100));
    let sent: Vec<Vec<String>> = batches
        .iter()
        .map(|b| b.iter().map(|e| e.event_id.clone()).collect())
        .collect();
    let mut requests: Vec<v1::RecordBatchRequest> = batches
        .into_iter()
        .map(|events| v1::RecordBatchRequest { events })
        .collect();
    // Over the limit of one batch: refused whole.
    requests.push(v1::RecordBatchRequest {
        events: (0..=10_000)
            .map(|i| harvest(&format!("big-{i}"), "coop", &format!("BIG-{i}"), 1))
            .collect(),
    });
    let mut answers = events
        .record_stream(tokio_stream::iter(requests))
        .await
        .expect("record stream")
        .into_inner();

    let mut last_seq = 0;
    let mut accepted = 0;
    let mut rejected = 0;
    let mut stored_at = BTreeMap::new();
    for (b, ids) in sent.iter().enumerate() {
        let answer = answers
            .message()
            .await
            .unwrap_or_else(|s| panic!("batch {b} failed: {s}"))
            .unwrap_or_else(|| panic!("no answer for batch {b}"));
        let got: Vec<&str> = answer
            .outcomes
            .iter()
            .map(|o| o.event_id.as_str())
            .collect();
        assert_eq!(got, *ids, "batch {b} answered out of order");
        for o in &answer.outcomes {
            match &o.result {
                Some(v1::outcome::Result::Accepted(a)) => {
                    assert!(a.sequence > last_seq, "{} stored out of order", o.event_id);
                    last_seq = a.sequence;
                    accepted += 1;
                    stored_at.insert(o.event_id.clone(), a.sequence);
                }
                Some(v1::outcome::Result::Duplicate(d)) => {
                    assert_eq!(o.event_id, "h-1-7");
                    assert_eq!(Some(&d.sequence), stored_at.get("h-1-7"));
                }
                Some(v1::outcome::Result::Rejected(r)) => {
                    assert_eq!(o.event_id, "h-no-lot");
                    assert_eq!(r.kind, "invalid");
                    assert!(r.reason.contains("harvest.lot"), "{}", r.reason);
                    rejected += 1;
                }
                other => panic!("{}: {other:?}", o.event_id),
            }
        }
    }
    let refused = answers
        .message()
        .await
        .expect_err("the batch over the limit ends the stream");
    assert!(
        refused.message().contains("at most 10000 events"),
        "{}",
        refused.message()
    );
    assert_eq!(accepted, 1 + 6 * 150, "every event once");
    assert_eq!(rejected, 1, "the event with no lot");
    // Nothing of the refused batch was stored after the last answered one.
    let mut provenance = ProvenanceServiceClient::connect(server.url())
        .await
        .unwrap();
    let stored = common::all_events(&mut provenance).await;
    assert_eq!(stored.last().map(|e| e.sequence), Some(last_seq));
    assert!(
        stored
            .iter()
            .all(|e| !e.event.as_ref().unwrap().event_id.starts_with("big-"))
    );
}
