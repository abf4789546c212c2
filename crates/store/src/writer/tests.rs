use std::sync::Arc;

use lotline_domain::lineage::{Lineage, LineageSource};
use lotline_proto::v1;
use lotline_proto::v1::event::Kind;

use super::*;
use crate::backend::SledBackend;
use crate::snapshot::Snapshot;
use crate::store::{EventFilter, StartupCheck};
use crate::tree::TreeCheck;

fn base(id: &str, org: &str, kind: Kind) -> v1::Event {
    v1::Event {
        event_id: id.into(),
        event_time: "2026-03-01T08:00:00+07:00".into(),
        org: org.into(),
        chain: "cocoa".into(),
        site: String::new(),
        extensions: Default::default(),
        kind: Some(kind),
    }
}

fn register(org: &str) -> v1::Event {
    base(
        &format!("reg-{org}"),
        org,
        Kind::RegisterOrg(v1::RegisterOrg {
            name: org.into(),
            role: v1::OrgRole::Cooperative as i32,
            country: "VN".into(),
            ..Default::default()
        }),
    )
}

fn qty(amount: &str) -> Option<v1::Quantity> {
    Some(v1::Quantity {
        amount: amount.into(),
        unit: "kg".into(),
    })
}

fn harvest(id: &str, lot: &str, amount: &str) -> v1::Event {
    base(
        id,
        "coop",
        Kind::Harvest(v1::Harvest {
            lot: lot.into(),
            plot: "plot-1".into(),
            product: "wet cocoa beans".into(),
            quantity: qty(amount),
            ..Default::default()
        }),
    )
}

fn transform(id: &str, input: &str, output: &str) -> v1::Event {
    base(
        id,
        "coop",
        Kind::Transform(v1::Transform {
            inputs: vec![v1::LotQuantity {
                lot: input.into(),
                quantity: qty("100"),
            }],
            outputs: vec![v1::OutputLot {
                lot: output.into(),
                product: "dry cocoa beans".into(),
                quantity: qty("40"),
                ..Default::default()
            }],
            process: "drying".into(),
            ..Default::default()
        }),
    )
}

fn correct(id: &str, org: &str, target: &str) -> v1::Event {
    base(
        id,
        org,
        Kind::Correct(v1::Correct {
            corrected_event_id: target.into(),
            reason: "recorded in error".into(),
            corrective_event_ids: vec![],
        }),
    )
}

fn subs(events: &[v1::Event]) -> Vec<Submission> {
    events
        .iter()
        .map(|e| crate::test_input::submission(e, "test"))
        .collect()
}

/// A store with the co-op registered and its harvest `h-1` of LOT-1, and its writer.
async fn with_one_harvest() -> (Store, Writer) {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let out = writer
        .submit(subs(&[register("coop"), harvest("h-1", "LOT-1", "100")]))
        .await
        .unwrap();
    assert!(
        matches!(out[1], Outcome::Accepted { seq: 2, .. }),
        "{out:?}"
    );
    (store, writer)
}

async fn start(store: &Store) -> Writer {
    Writer::spawn(store.clone(), WriterConfig::default())
        .unwrap()
        .0
}

#[tokio::test]
async fn accepts_deduplicates_and_rejects_with_reasons() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let mut bad = harvest("h-bad", "LOT-X", "0");
    bad.event_id = "h-bad".into();
    let conflicting = harvest("h-1", "LOT-1", "999");
    let out = writer
        .submit(subs(&[
            harvest("h-0", "LOT-0", "5"), // before the org is registered
            register("coop"),
            harvest("h-1", "LOT-1", "100"),
            harvest("h-1", "LOT-1", "100.000"),
            conflicting,
            bad,
        ]))
        .await
        .unwrap();
    assert!(matches!(
        &out[0],
        Outcome::Rejected {
            kind: RejectKind::UnregisteredOrg,
            ..
        }
    ));
    assert!(matches!(out[1], Outcome::Accepted { seq: 1, .. }));
    assert!(matches!(out[2], Outcome::Accepted { seq: 2, .. }));
    assert_eq!(
        out[3],
        Outcome::Duplicate { seq: 2 },
        "same content in another spelling"
    );
    assert!(
        matches!(&out[4], Outcome::Rejected { kind: RejectKind::Conflict, reason } if reason.contains("sequence 2"))
    );
    assert!(
        matches!(&out[5], Outcome::Rejected { kind: RejectKind::Invalid, reason } if reason.contains("harvest.quantity"))
    );
    assert_eq!(store.last_seq().unwrap(), 2);
    let rejected = store.list_rejected(0, 100).unwrap().items;
    assert_eq!(rejected.len(), 3);
    assert_eq!(rejected[0].kind, "unregistered_org");
    assert!(!rejected[2].payload.is_empty());
    // A duplicate in a later batch answers with the original sequence.
    let again = writer
        .submit(subs(&[harvest("h-1", "LOT-1", "100")]))
        .await
        .unwrap();
    assert_eq!(again, vec![Outcome::Duplicate { seq: 2 }]);
    // An event id belongs to the org that first used it: another org's re-use is a rejection
    // that names the owner, never a silent drop.
    let mut stolen = harvest("h-1", "LOT-1", "100");
    stolen.org = "evil".into();
    let out = writer
        .submit(subs(&[register("evil"), stolen]))
        .await
        .unwrap();
    assert!(
        matches!(&out[1], Outcome::Rejected { kind: RejectKind::Conflict, reason }
            if reason.contains("belongs to org \"coop\"") && reason.contains("\"evil\"")),
        "{:?}",
        out[1]
    );
}

#[tokio::test]
async fn corrections_and_unknown_lots_follow_the_log_in_any_order() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let correction = correct("c-1", "coop", "h-2");
    // The transform and the correction arrive before what they refer to.
    writer
        .submit(subs(&[
            register("coop"),
            transform("t-1", "LOT-1", "LOT-2"),
            correction,
        ]))
        .await
        .unwrap();
    let unknown = store.snapshot().unwrap().list_unknown_lots().unwrap();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].lot, "LOT-1");
    assert_eq!(unknown[0].event_ids, vec!["t-1".to_string()]);
    writer
        .submit(subs(&[harvest("h-1", "LOT-1", "100")]))
        .await
        .unwrap();
    assert!(
        store
            .snapshot()
            .unwrap()
            .list_unknown_lots()
            .unwrap()
            .is_empty()
    );
    // h-2 arrives after its correction: it is stored but left out of provenance.
    writer
        .submit(subs(&[harvest("h-2", "LOT-9", "50")]))
        .await
        .unwrap();
    assert!(store.snapshot().unwrap().is_corrected("h-2").unwrap());
    assert!(
        store
            .snapshot()
            .unwrap()
            .creations("LOT-9")
            .unwrap()
            .is_empty()
    );
    let snapshot = store.snapshot().unwrap();
    let t = Lineage::new(&snapshot).trace_back("LOT-2").unwrap();
    assert_eq!(t.origins.len(), 1);
    assert_eq!(t.origins[0].lot, "LOT-1");
    // LOT-9's only creation was corrected, but nothing uses it, so it is not listed.
    assert!(
        store
            .snapshot()
            .unwrap()
            .list_unknown_lots()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn list_events_filters_and_pages() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let mut events = vec![register("coop")];
    for n in 0..25 {
        events.push(harvest(&format!("h-{n}"), &format!("LOT-{n}"), "10"));
    }
    writer.submit(subs(&events)).await.unwrap();
    let filter = EventFilter {
        org: Some("coop".into()),
        kind: Some(lotline_domain::KindName::Harvest),
        ..Default::default()
    };
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = store
            .snapshot()
            .unwrap()
            .list_events(&filter, after, 10)
            .unwrap();
        seen.extend(page.items.iter().map(|s| s.event.id.clone()));
        match page.next_after {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let by_lot = EventFilter {
        lot: Some("LOT-7".into()),
        ..Default::default()
    };
    let page = store
        .snapshot()
        .unwrap()
        .list_events(&by_lot, 0, 10)
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].event.id, "h-7");
}

#[tokio::test]
async fn an_orgs_events_list_in_order_across_batches_and_views() {
    // The org index keeps one key per org per batch: a listing reads whole batches and
    // still pages, stops at its view and agrees with a rebuilt index.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Arc::new(SledBackend::open(dir.path(), 16 << 20).unwrap()));
    let writer = start(&store).await;
    writer
        .submit(subs(&[register("coop"), register("other")]))
        .await
        .unwrap();
    let mut views = Vec::new();
    for batch in 0..6 {
        let events: Vec<v1::Event> = (0..(batch * 3 + 2))
            .map(|n| {
                let mut e = harvest(&format!("h-{batch}-{n}"), &format!("L-{batch}-{n}"), "1");
                if n % 3 == 1 {
                    e.org = "other".into();
                }
                e
            })
            .collect();
        writer.submit(subs(&events)).await.unwrap();
        views.push(store.snapshot().unwrap().upto());
    }
    let listed = |store: &Store, upto: u64, limit: usize| -> Vec<String> {
        let view = Snapshot::new(store, upto);
        let filter = EventFilter {
            org: Some("coop".into()),
            ..Default::default()
        };
        let (mut after, mut seen) = (0, Vec::new());
        loop {
            let page = view.list_events(&filter, after, limit).unwrap();
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|s| s.event.id.clone()));
            match page.next_after {
                Some(n) => after = n,
                None => return seen,
            }
        }
    };
    let expected = |upto: u64| -> Vec<String> {
        (1..=upto)
            .filter_map(|seq| store.event_at(seq).unwrap())
            .filter(|s| s.event.org == "coop")
            .map(|s| s.event.id.clone())
            .collect()
    };
    for &upto in &views {
        for limit in [1, 2, 5, 100] {
            assert_eq!(
                listed(&store, upto, limit),
                expected(upto),
                "view {upto}, limit {limit}"
            );
        }
        let view = Snapshot::new(&store, upto);
        let ids: Vec<String> = view
            .org_events("coop")
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(ids, expected(upto));
    }
    drop(writer);
    store.rebuild_indexes().unwrap();
    let last = *views.last().unwrap();
    assert_eq!(listed(&store, last, 3), expected(last));
    assert_eq!(
        store.check_and_repair(true).unwrap(),
        StartupCheck::Consistent { events: last }
    );
}

#[tokio::test]
async fn a_queued_stream_batch_is_written_only_where_it_follows() {
    // A consumer queues its next batch before the last one is written; if that one failed,
    // the next must not land after the hole it would leave.
    let store = Store::in_memory();
    let writer = start(&store).await;
    let first = writer
        .queue_at(subs(&[register("coop")]), 0, 3)
        .await
        .unwrap();
    let orphan = writer
        .queue_at(subs(&[harvest("h-1", "LOT-1", "1")]), 7, 9)
        .await
        .unwrap();
    let next = writer
        .queue_at(subs(&[harvest("h-2", "LOT-2", "1")]), 3, 4)
        .await
        .unwrap();
    assert!(matches!(
        first.outcomes().await.unwrap()[..],
        [Outcome::Accepted { .. }]
    ));
    let refused = orphan.outcomes().await.unwrap_err().to_string();
    assert!(
        refused.contains("after stream position 7") && refused.contains("the store is at 3"),
        "{refused}"
    );
    assert!(matches!(
        next.outcomes().await.unwrap()[..],
        [Outcome::Accepted { seq: 2, .. }]
    ));
    assert_eq!(store.stream_position().unwrap(), 4);
    assert!(store.seq_of("h-1").unwrap().is_none());
}

#[tokio::test]
async fn sled_store_survives_reopen_and_rebuilds_damaged_indexes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::new(Arc::new(SledBackend::open(dir.path(), 16 << 20).unwrap()));
        assert_eq!(
            store.check_and_repair(false).unwrap(),
            StartupCheck::Consistent { events: 0 }
        );
        let (writer, done) = Writer::spawn(store.clone(), WriterConfig::default()).unwrap();
        writer
            .submit(subs(&[
                register("coop"),
                harvest("h-1", "LOT-1", "100"),
                transform("t-1", "LOT-1", "LOT-2"),
            ]))
            .await
            .unwrap();
        drop(writer);
        done.wait().await;
        store.damage_index_for_test("h-1").unwrap();
    }
    let store = Store::new(Arc::new(SledBackend::open(dir.path(), 16 << 20).unwrap()));
    match store.check_and_repair(false).unwrap() {
        StartupCheck::Rebuilt { events: 3, reason } => assert!(reason.contains("h-1"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert_eq!(store.seq_of("h-1").unwrap(), Some(2));
    assert_eq!(
        store.check_and_repair(true).unwrap(),
        StartupCheck::Consistent { events: 3 }
    );
    let snapshot = store.snapshot().unwrap();
    let t = Lineage::new(&snapshot).trace_back("LOT-2").unwrap();
    assert_eq!(t.origins[0].lot, "LOT-1");
    // The writer continues the sequence after a restart, and knows the ids stored before it
    // (its filter of ids is built from the index at the start).
    let (writer, _done) = Writer::spawn(store.clone(), WriterConfig::default()).unwrap();
    let out = writer
        .submit(subs(&[
            harvest("h-3", "LOT-3", "1"),
            harvest("h-1", "LOT-1", "100"),
            transform("t-1", "LOT-1", "LOT-2"),
        ]))
        .await
        .unwrap();
    assert!(matches!(out[0], Outcome::Accepted { seq: 4, .. }));
    assert!(matches!(out[1], Outcome::Duplicate { seq: 2 }), "{out:?}");
    assert!(matches!(out[2], Outcome::Duplicate { seq: 3 }), "{out:?}");
}

#[tokio::test]
async fn a_snapshot_keeps_reading_the_log_as_it_was() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    writer
        .submit(subs(&[
            register("coop"),
            transform("t-1", "LOT-1", "LOT-2"),
        ]))
        .await
        .unwrap();
    let before = store.snapshot().unwrap();
    writer
        .submit(subs(&[
            harvest("h-1", "LOT-1", "100"),
            correct("c-1", "coop", "t-1"),
        ]))
        .await
        .unwrap();
    // The old view still sees LOT-1 as unknown and t-1 as standing.
    assert!(before.creations("LOT-1").unwrap().is_empty());
    assert!(!before.is_corrected("t-1").unwrap());
    assert_eq!(before.list_unknown_lots().unwrap().len(), 1);
    assert_eq!(before.seq_of("h-1").unwrap(), None);
    assert_eq!(
        before
            .list_events(&EventFilter::default(), 0, 100)
            .unwrap()
            .items
            .len(),
        2
    );
    // A new view sees both.
    let after = store.snapshot().unwrap();
    assert_eq!(after.creations("LOT-1").unwrap().len(), 1);
    assert!(after.is_corrected("t-1").unwrap());
    assert!(after.creations("LOT-2").unwrap().is_empty());
}

#[tokio::test]
async fn a_snapshot_past_its_deadline_stops_reading() {
    let (store, _writer) = with_one_harvest().await;
    let soon = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let waited = store.snapshot().unwrap().until(Some(soon));
    assert_eq!(waited.all_events().unwrap().len(), 2);
    let gone = store
        .snapshot()
        .unwrap()
        .until(Some(std::time::Instant::now()));
    assert!(matches!(gone.all_events(), Err(StoreError::Deadline)));
    assert!(matches!(gone.creations("LOT-1"), Err(StoreError::Deadline)));
}

#[tokio::test]
async fn only_the_recording_org_can_correct_an_event() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let foreign = correct("c-foreign", "rival", "h-1");
    let own = correct("c-own", "coop", "h-1");
    writer
        .submit(subs(&[
            register("coop"),
            register("rival"),
            foreign,
            harvest("h-1", "LOT-1", "10"),
        ]))
        .await
        .unwrap();
    assert!(!store.snapshot().unwrap().is_corrected("h-1").unwrap());
    writer.submit(subs(&[own])).await.unwrap();
    assert!(store.snapshot().unwrap().is_corrected("h-1").unwrap());
}

#[tokio::test]
async fn the_stored_tree_follows_the_log_and_proves_it() {
    use lotline_merkle::{RootBuilder, leaf_hash, verify_consistency, verify_inclusion};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Arc::new(SledBackend::open(dir.path(), 16 << 20).unwrap()));
    let (writer, done) = Writer::spawn(store.clone(), WriterConfig::default()).unwrap();
    writer.submit(subs(&[register("coop")])).await.unwrap();
    let mut heads = Vec::new();
    for batch in 0..7 {
        let events: Vec<v1::Event> = (0..(batch * 5 + 1))
            .map(|n| harvest(&format!("h-{batch}-{n}"), &format!("LOT-{batch}-{n}"), "1"))
            .collect();
        writer.submit(subs(&events)).await.unwrap();
        heads.push(store.tree_head().unwrap().unwrap());
    }
    drop(writer);
    done.wait().await;
    let view = store.snapshot().unwrap();
    let size = view.upto();
    // The stored root is the RFC 6962 root of the record bytes.
    let mut builder = RootBuilder::new();
    for seq in 1..=size {
        builder.push(leaf_hash(&store.record_bytes(seq).unwrap().unwrap()));
    }
    assert_eq!(store.tree_head().unwrap(), Some((size, builder.root())));
    assert_eq!(view.tree_root(size).unwrap(), builder.root());
    for index in 0..size {
        let leaf = leaf_hash(&view.leaf(index).unwrap().unwrap());
        for tree_size in [index + 1, size] {
            let path = view.inclusion_proof(index, tree_size).unwrap();
            verify_inclusion(
                &leaf,
                index,
                tree_size,
                &path,
                &view.tree_root(tree_size).unwrap(),
            )
            .unwrap();
        }
    }
    // Every head taken after a batch is consistent with every later one.
    for (i, (old, old_root)) in heads.iter().enumerate() {
        for (new, new_root) in &heads[i..] {
            let proof = view.consistency_proof(*old, *new).unwrap();
            verify_consistency(*old, *new, &proof, old_root, new_root).unwrap();
        }
    }
    assert_eq!(
        store.check_tree(true).unwrap(),
        TreeCheck::Consistent { size }
    );
    // A byte changed in a stored event is found.
    let mut bytes = store.record_bytes(5).unwrap().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    store.tamper_record_for_test(5, Some(bytes)).unwrap();
    assert!(
        matches!(store.check_tree(true).unwrap(), TreeCheck::Mismatch { reason } if reason.contains("sequences 1 to 8"))
    );
}

#[tokio::test]
async fn nodes_applying_the_same_events_with_the_same_record_times_have_the_same_root() {
    // What NATS mode relies on: the stream gives every node the same order and
    // the same timestamps, so every node writes the same records and tree.
    let events: Vec<v1::Event> = std::iter::once(register("coop"))
        .chain((0..50).map(|n| harvest(&format!("h-{n}"), &format!("LOT-{n}"), "3")))
        .collect();
    let stamped = |chunk: &[v1::Event], offset: usize| -> Vec<Submission> {
        chunk
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let mut s = crate::test_input::submission(e, "nats");
                s.record_time =
                    chrono::DateTime::from_timestamp(1_790_000_000 + (offset + n) as i64, 0);
                s
            })
            .collect()
    };
    let a = Store::in_memory();
    let b = Store::in_memory();
    let wa = start(&a).await;
    let wb = start(&b).await;
    // Different batching on each node, same stream.
    for (i, chunk) in events.chunks(7).enumerate() {
        wa.submit(stamped(chunk, i * 7)).await.unwrap();
    }
    for (i, chunk) in events.chunks(13).enumerate() {
        wb.submit(stamped(chunk, i * 13)).await.unwrap();
    }
    let (ha, hb) = (
        a.tree_head().unwrap().unwrap(),
        b.tree_head().unwrap().unwrap(),
    );
    assert_eq!(ha, hb);
    assert_eq!(ha.0, events.len() as u64);
}

#[tokio::test]
async fn a_missing_tree_is_a_mismatch_until_the_operator_rebuilds_it() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    writer
        .submit(subs(&[
            register("coop"),
            harvest("h-1", "LOT-1", "1"),
            harvest("h-2", "LOT-2", "2"),
        ]))
        .await
        .unwrap();
    let head = store.tree_head().unwrap();
    store.drop_tree_for_test().unwrap();
    assert!(
        matches!(store.check_tree(false).unwrap(), TreeCheck::Mismatch { reason } if reason.contains("--build-tree"))
    );
    assert_eq!(store.rebuild_tree().unwrap(), TreeCheck::Built { size: 3 });
    assert_eq!(
        store.check_tree(true).unwrap(),
        TreeCheck::Consistent { size: 3 }
    );
    assert_eq!(
        store.tree_head().unwrap(),
        head,
        "the same log gives the same tree"
    );
}

/// A backend that works until told to fail every call.
struct Flaky {
    inner: crate::backend::MemoryBackend,
    failing: std::sync::atomic::AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend("disk gone".into()));
        }
        Ok(())
    }
}

impl crate::backend::Backend for Flaky {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.get(key)
    }
    fn range(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> Result<Vec<crate::backend::Entry>, StoreError> {
        self.check()?;
        self.inner.range(start, end, limit)
    }
    fn last_in(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> Result<Option<crate::backend::Entry>, StoreError> {
        self.check()?;
        self.inner.last_in(start, end)
    }
    fn apply(&self, batch: crate::backend::WriteBatch) -> Result<(), StoreError> {
        self.check()?;
        self.inner.apply(batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        self.check()?;
        self.inner.flush()
    }
}

#[tokio::test]
async fn a_writer_that_cannot_read_the_store_back_refuses_writes_and_says_so() {
    let backend = Arc::new(Flaky {
        inner: crate::backend::MemoryBackend::new(),
        failing: false.into(),
    });
    let store = Store::new(backend.clone());
    let writer = start(&store).await;
    let mut failure = writer.failure();
    assert!(failure.borrow().is_none());
    writer.submit(subs(&[register("coop")])).await.unwrap();
    backend
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        writer
            .submit(subs(&[harvest("h-1", "LOT-1", "1")]))
            .await
            .is_err()
    );
    failure.changed().await.unwrap();
    assert!(
        failure
            .borrow()
            .as_deref()
            .is_some_and(|r| r.contains("disk gone"))
    );
    // Even once the disk is back, this writer no longer trusts where the log ends.
    backend
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(
        writer
            .submit(subs(&[harvest("h-2", "LOT-2", "1")]))
            .await
            .is_err()
    );
    assert_eq!(store.last_seq().unwrap(), 1);
}

#[tokio::test]
async fn an_event_dated_in_the_future_is_rejected_and_a_future_stamp_refused() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let soon = chrono::Utc::now() + chrono::Duration::hours(20);
    let late = chrono::Utc::now() + chrono::Duration::hours(30);
    let mut within = harvest("h-soon", "LOT-S", "1");
    within.event_time = soon.to_rfc3339();
    let mut beyond = harvest("h-late", "LOT-L", "1");
    beyond.event_time = late.to_rfc3339();
    let out = writer
        .submit(subs(&[register("coop"), within, beyond]))
        .await
        .unwrap();
    assert!(matches!(out[1], Outcome::Accepted { .. }), "{:?}", out[1]);
    assert!(
        matches!(&out[2], Outcome::Rejected { kind: RejectKind::Invalid, reason }
            if reason.starts_with("event_time:") && reason.contains("1 day")),
        "{:?}",
        out[2]
    );
    // A stream timestamp far ahead of this node's clock is not stamped: nothing is written.
    let mut stamped = subs(&[harvest("h-2", "LOT-2", "1")]);
    stamped[0].record_time = Some(chrono::Utc::now() + chrono::Duration::days(3));
    let err = writer.submit(stamped).await.unwrap_err();
    assert!(err.to_string().contains("clocks disagree"), "{err}");
    assert_eq!(store.last_seq().unwrap(), 2);
    // Judged against the record time given (a stream's), not this node's clock.
    let store = Store::in_memory();
    let writer = start(&store).await;
    let mut dated = harvest("h-3", "LOT-3", "1");
    dated.event_time = (chrono::Utc::now() - chrono::Duration::days(5)).to_rfc3339();
    let mut relative = subs(&[register("coop"), dated]);
    for item in &mut relative {
        item.record_time = Some(chrono::Utc::now() - chrono::Duration::days(10));
    }
    let out = writer.submit(relative).await.unwrap();
    let out = &out[1..];
    assert!(
        matches!(&out[0], Outcome::Rejected { reason, .. } if reason.starts_with("event_time:")),
        "{out:?}"
    );
}

/// `org` registers `plot` as a point at longitude `lon`, at `time`.
fn register_plot(id: &str, org: &str, plot: &str, lon: &str, time: &str) -> v1::Event {
    let mut e = base(
        id,
        org,
        Kind::RegisterPlot(v1::RegisterPlot {
            plot: plot.into(),
            geometry: format!(r#"{{"type":"Point","coordinates":[{lon},6.8]}}"#),
            area_ha: "1".into(),
            country: "CI".into(),
        }),
    );
    e.event_time = time.into();
    e
}

/// The org "farm" registers itself as a farm, a member of `member_of` (none when empty).
fn register_farm(id: &str, member_of: &str) -> v1::Event {
    let mut e = register("farm");
    e.event_id = id.into();
    if let Some(Kind::RegisterOrg(r)) = &mut e.kind {
        r.role = v1::OrgRole::Farm as i32;
        r.member_of = member_of.into();
    }
    e
}

#[tokio::test]
async fn a_plot_site_or_class_belongs_to_the_org_that_registered_it_first() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let plot =
        |id: &str, org: &str, lon: &str, time: &str| register_plot(id, org, "P-1", lon, time);
    let site = |id: &str, org: &str, name: &str| {
        base(
            id,
            org,
            Kind::RegisterSite(v1::RegisterSite {
                site: "S-1".into(),
                name: name.into(),
                country: "CI".into(),
                ..Default::default()
            }),
        )
    };
    let out = writer
        .submit(subs(&[
            register("coop"),
            register("evil"),
            plot("p-1", "coop", "-5.5", "2026-03-01T08:00:00Z"),
            // Later, by another org: moves nothing.
            plot("p-evil", "evil", "-7.0", "2026-04-01T08:00:00Z"),
            site("s-1", "coop", "Warehouse"),
            site("s-evil", "evil", "Evil's"),
            // The owner moves its own plot.
            plot("p-2", "coop", "-5.6", "2026-03-02T08:00:00Z"),
        ]))
        .await
        .unwrap();
    assert!(
        out.iter().all(|o| matches!(o, Outcome::Accepted { .. })),
        "{out:?}"
    );
    let view = store.snapshot().unwrap();
    let (event, standing) = view.plot("P-1").unwrap().expect("plot");
    assert_eq!(event.id, "p-2");
    assert!(standing.geometry.contains("-5.6"), "{}", standing.geometry);
    let site = view.site("S-1").unwrap().expect("site");
    assert_eq!(site.id, "s-1");

    // A farm's plot: the co-op the farm is a member of may move it too; a co-op the farm is
    // not a member of may not.
    let farm = register_farm("reg-farm", "coop");
    let farm_plot =
        |id: &str, org: &str, lon: &str, time: &str| register_plot(id, org, "P-FARM", lon, time);
    writer
        .submit(subs(&[
            farm,
            farm_plot("fp-1", "farm", "-5.1", "2026-03-01T08:00:00Z"),
            farm_plot("fp-evil", "evil", "-9.9", "2026-05-01T08:00:00Z"),
        ]))
        .await
        .unwrap();
    let (event, _) = store
        .snapshot()
        .unwrap()
        .plot("P-FARM")
        .unwrap()
        .expect("plot");
    assert_eq!(event.id, "fp-1", "another co-op moved the farm's plot");
    writer
        .submit(subs(&[farm_plot(
            "fp-coop",
            "coop",
            "-5.2",
            "2026-04-01T08:00:00Z",
        )]))
        .await
        .unwrap();
    let (event, standing) = store
        .snapshot()
        .unwrap()
        .plot("P-FARM")
        .unwrap()
        .expect("plot");
    assert_eq!(
        event.id, "fp-coop",
        "the farm's co-op re-registers its plot"
    );
    assert!(standing.geometry.contains("-5.2"), "{}", standing.geometry);
}

#[tokio::test]
async fn a_plot_read_before_is_read_again_once_its_registrations_its_farms_membership_or_corrections_change()
 {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let plot =
        |id: &str, org: &str, lon: &str, time: &str| register_plot(id, org, "P-FARM", lon, time);
    let farm = register_farm;
    let standing = |store: &Store| {
        let view = store.snapshot().unwrap();
        // Asked twice in one view: the second answer is the kept one.
        let first = view.plot("P-FARM").unwrap().map(|(e, _)| e.id.clone());
        assert_eq!(
            view.plot("P-FARM").unwrap().map(|(e, _)| e.id.clone()),
            first
        );
        first
    };
    writer
        .submit(subs(&[
            register("coop"),
            farm("farm-1", ""),
            plot("fp-1", "farm", "-5.1", "2026-03-01T08:00:00Z"),
            // Not yet the farm's co-op: moves nothing.
            plot("fp-coop", "coop", "-5.2", "2026-04-01T08:00:00Z"),
        ]))
        .await
        .unwrap();
    let before = store.snapshot().unwrap();
    assert_eq!(standing(&store).as_deref(), Some("fp-1"));
    // An event on something else: the plot reads the same.
    writer
        .submit(subs(&[harvest("h-1", "LOT-1", "1")]))
        .await
        .unwrap();
    assert_eq!(standing(&store).as_deref(), Some("fp-1"));
    // The farm joins the co-op (an event on the farm, none on the plot): the co-op's later
    // registration of the plot stands now.
    writer
        .submit(subs(&[farm("farm-2", "coop")]))
        .await
        .unwrap();
    assert_eq!(standing(&store).as_deref(), Some("fp-coop"));
    // The view from before still reads it as it was.
    assert_eq!(
        before
            .plot("P-FARM")
            .unwrap()
            .map(|(e, _)| e.id.clone())
            .as_deref(),
        Some("fp-1")
    );
    // The co-op's registration is declared erroneous: the farm's own stands again.
    writer
        .submit(subs(&[correct("c-1", "coop", "fp-coop")]))
        .await
        .unwrap();
    assert_eq!(standing(&store).as_deref(), Some("fp-1"));
    // A new registration by the farm.
    writer
        .submit(subs(&[plot(
            "fp-2",
            "farm",
            "-5.3",
            "2026-05-01T08:00:00Z",
        )]))
        .await
        .unwrap();
    assert_eq!(standing(&store).as_deref(), Some("fp-2"));
}

#[tokio::test]
async fn an_index_read_kept_from_an_earlier_view_holds_until_a_batch_writes_under_its_id() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    writer
        .submit(subs(&[register("coop"), harvest("h-1", "LOT-1", "1")]))
        .await
        .unwrap();
    let lot = crate::keys::id_prefix(crate::keys::LOT, "LOT-1");
    let read = |store: &Store| {
        let upto = store.snapshot().unwrap().upto();
        store.indexed_seqs(&lot, upto).unwrap()
    };
    let first = read(&store);
    assert_eq!(first.len(), 1);
    // Batches on other lots: the read is kept as it was (the very same list).
    for n in 2..5 {
        writer
            .submit(subs(&[harvest(
                &format!("h-{n}"),
                &format!("LOT-{n}"),
                "1",
            )]))
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&first, &read(&store)), "read again after h-{n}");
    }
    // A lot whose id extends this one's is another id.
    writer
        .submit(subs(&[harvest("h-10", "LOT-10", "1")]))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&first, &read(&store)));
    // A batch that writes under it: read again, with the new entry.
    writer
        .submit(subs(&[transform("t-1", "LOT-1", "LOT-5")]))
        .await
        .unwrap();
    let grown = read(&store);
    assert_eq!(grown.len(), 2);
    assert_eq!(
        Lineage::new(&store.snapshot().unwrap())
            .trace_back("LOT-5")
            .unwrap()
            .origins
            .len(),
        1
    );
    // After a rebuild nothing kept from before is taken.
    store.rebuild_indexes().unwrap();
    let rebuilt = read(&store);
    assert!(!Arc::ptr_eq(&grown, &rebuilt));
    assert_eq!(*grown, *rebuilt);
}

#[tokio::test]
async fn a_trace_kept_in_an_earlier_view_holds_as_it_is_until_a_lot_it_judged_or_the_corrections_change()
 {
    use lotline_domain::lineage::KeptSince;
    let store = Store::in_memory();
    let writer = start(&store).await;
    writer
        .submit(subs(&[
            register("coop"),
            harvest("h-1", "LOT-1", "100"),
            harvest("h-9", "LOT-9", "1"),
            transform("t-1", "LOT-1", "LOT-2"),
        ]))
        .await
        .unwrap();
    let since = |store: &Store| {
        LineageSource::kept_trace(&store.snapshot().unwrap(), "LOT-2").map(|(_, since)| since)
    };
    // Answers from a store over the same data that keeps nothing yet.
    let fresh = |store: &Store| {
        let fresh = store.keeping_nothing();
        let view = fresh.snapshot().unwrap();
        Lineage::new(&view).trace_back("LOT-2").unwrap()
    };
    let asked = |store: &Store| {
        Lineage::new(&store.snapshot().unwrap())
            .trace_back("LOT-2")
            .unwrap()
    };
    assert_eq!(since(&store), None);
    let first = asked(&store);
    assert_eq!(since(&store), Some(KeptSince::ThisView));
    // A batch on a lot it did not judge: it holds as it is.
    writer
        .submit(subs(&[harvest("h-8", "LOT-8", "1")]))
        .await
        .unwrap();
    assert_eq!(since(&store), Some(KeptSince::ThisView));
    assert_eq!(asked(&store), first);
    // A batch on a lot it judged: checked lot by lot, then kept as of this view.
    writer
        .submit(subs(&[at(
            base("s-1", "coop", build_ship("LOT-2", "mill")),
            "13:00",
        )]))
        .await
        .unwrap();
    assert_eq!(since(&store), Some(KeptSince::AnotherView));
    assert_eq!(asked(&store), fresh(&store));
    assert_eq!(since(&store), Some(KeptSince::ThisView));
    // A correction, even of an event on another lot: checked again.
    writer
        .submit(subs(&[correct("c-1", "coop", "h-9")]))
        .await
        .unwrap();
    assert_eq!(since(&store), Some(KeptSince::AnotherView));
    assert_eq!(asked(&store), fresh(&store));
}

#[tokio::test]
async fn a_panic_of_the_writer_refuses_writes_and_says_why() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    writer.submit(subs(&[register("coop")])).await.unwrap();
    let mut failure = writer.failure();
    let mut boom = subs(&[harvest("h-1", "LOT-1", "1")]);
    boom[0].source = super::PANIC_FOR_TEST.into();
    let err = writer.submit(boom).await.unwrap_err();
    assert!(err.to_string().contains("panicked"), "{err}");
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        failure.wait_for(Option::is_some),
    )
    .await
    .expect("the failure is published")
    .expect("failure channel");
    assert!(writer.refusal().unwrap().contains("panicked"));
    let again = writer.submit(subs(&[harvest("h-2", "LOT-2", "1")])).await;
    assert!(again.unwrap_err().to_string().contains("panicked"));
    assert_eq!(
        store.last_seq().unwrap(),
        1,
        "nothing of the failed batch is in the log"
    );
}

#[tokio::test]
async fn ids_that_share_their_hash_in_the_event_id_index_stay_apart() {
    let (store, writer) = with_one_harvest().await;
    // As if "h-2" and "h-3" hashed like "h-1" (found by chance or made to): entries under their
    // prefixes point at the event of h-1. Neither is taken for h-1, and h-1 is still found.
    let mut forged = crate::backend::WriteBatch::default();
    forged.insert(crate::keys::event_id_key("h-2", 2), Vec::new());
    forged.insert(crate::keys::event_id_key("h-3", 2), Vec::new());
    store.backend().apply(forged).unwrap();
    assert_eq!(store.seq_of("h-2").unwrap(), None);
    // The duplicate check reads the forged entries when its filter may hold the id (as every
    // id before the filter is built) and takes neither for h-2. (Written behind the writer's
    // back, they may be unknown to the writer's filter: nothing but this test does that.)
    let pending = Pending::new(store.backend());
    assert!(
        recorded_as(&pending, &Ids::none(), &event_id_prefix("h-2"), "h-2")
            .unwrap()
            .is_none()
    );
    let (seq, _) = recorded_as(&pending, &Ids::none(), &event_id_prefix("h-1"), "h-1")
        .unwrap()
        .unwrap();
    assert_eq!(seq, 2);
    drop(pending);
    let out = writer
        .submit(subs(&[
            harvest("h-2", "LOT-2", "50"),
            harvest("h-2", "LOT-2", "50"),
        ]))
        .await
        .unwrap();
    assert!(
        matches!(out[0], Outcome::Accepted { seq: 3, .. }),
        "{out:?}"
    );
    assert_eq!(out[1], Outcome::Duplicate { seq: 3 });
    assert_eq!(store.seq_of("h-1").unwrap(), Some(2));
    assert_eq!(store.seq_of("h-2").unwrap(), Some(3));
    assert_eq!(store.seq_of("h-3").unwrap(), None);
    // The index keys are the same length whatever an id's length.
    let long = "x".repeat(400);
    assert_eq!(
        crate::keys::event_id_key(&long, 1).len(),
        crate::keys::event_id_key("h", 1).len()
    );
}

#[tokio::test]
async fn a_lot_asked_about_again_after_new_events_has_them_and_old_views_do_not() {
    let (store, writer) = with_one_harvest().await;
    // Read (and kept in memory) while LOT-1 has one event.
    let first = store.snapshot().unwrap();
    assert!(first.consumptions("LOT-1").unwrap().is_empty());
    assert_eq!(first.creations("LOT-1").unwrap().len(), 1);
    writer
        .submit(subs(&[transform("t-1", "LOT-1", "LOT-2")]))
        .await
        .unwrap();
    let second = store.snapshot().unwrap();
    assert_eq!(second.consumptions("LOT-1").unwrap().len(), 1);
    // The first view, asked again after the second read the newer entries, stays as it was.
    assert!(first.consumptions("LOT-1").unwrap().is_empty());
    writer
        .submit(subs(&[transform("t-2", "LOT-1", "LOT-3")]))
        .await
        .unwrap();
    assert_eq!(
        store
            .snapshot()
            .unwrap()
            .consumptions("LOT-1")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(second.consumptions("LOT-1").unwrap().len(), 1);
}

#[tokio::test]
async fn kept_records_stay_beside_the_log_and_followers_see_it_grow() {
    let (store, writer) = with_one_harvest().await;
    let mut grew = store.durable_changes();
    let before = store.last_seq().unwrap();
    assert_eq!(*grew.borrow_and_update(), before);
    let root = store.snapshot().unwrap().tree_root(before).unwrap();
    store
        .keep("query", "a\u{0}b", Some(b"one".to_vec()))
        .unwrap();
    store.keep("query", "a", Some(b"two".to_vec())).unwrap();
    store
        .keep("subscription", "a", Some(b"three".to_vec()))
        .unwrap();
    assert_eq!(
        store.kept("query").unwrap(),
        vec![
            ("a".into(), b"two".to_vec()),
            ("a\u{0}b".into(), b"one".to_vec())
        ]
    );
    assert_eq!(store.kept_one("query", "a").unwrap(), Some(b"two".to_vec()));
    store.keep("query", "a", None).unwrap();
    assert_eq!(store.kept_one("query", "a").unwrap(), None);
    assert_eq!(store.kept("query").unwrap().len(), 1);
    assert_eq!(store.kept("subscription").unwrap().len(), 1);
    // Not events: the log, and what it proves, are unchanged.
    assert_eq!(store.last_seq().unwrap(), before);
    assert_eq!(store.snapshot().unwrap().tree_root(before).unwrap(), root);
    writer
        .submit(subs(&[transform("t-1", "LOT-1", "LOT-2")]))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), grew.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*grew.borrow(), before + 1);
}

/// `event` at `time` on 2026-03-01 (Vietnam time).
fn at(mut event: v1::Event, time: &str) -> v1::Event {
    event.event_time = format!("2026-03-01T{time}:00+07:00");
    event
}

fn origins(view: &Snapshot<'_>, lot: &str) -> Vec<String> {
    let trace = Lineage::new(view).trace_back(lot).unwrap();
    trace.origins.into_iter().map(|o| o.lot).collect()
}

#[tokio::test]
async fn a_lot_judged_for_one_question_is_judged_again_once_its_lot_container_or_corrections_change()
 {
    let store = Store::in_memory();
    let writer = start(&store).await;
    let mut milled = transform("t-1", "LOT-1", "LOT-2");
    milled.org = "mill".into();
    let pack = base(
        "pack-1",
        "coop",
        Kind::Observe(v1::Observe {
            event_type: "AggregationEvent".into(),
            action: "ADD".into(),
            biz_step: "packing".into(),
            disposition: "in_progress".into(),
            lots: vec![],
            epcs: vec!["LOT-1".into()],
            parent: "PALLET-1".into(),
        }),
    );
    writer
        .submit(subs(&[
            register("coop"),
            register("mill"),
            at(harvest("h-1", "LOT-1", "100"), "08:00"),
            at(pack, "09:00"),
            at(milled, "12:00"),
        ]))
        .await
        .unwrap();
    // The mill milled a lot it never received: LOT-2 has no origin it can name.
    let first = store.snapshot().unwrap();
    assert!(origins(&first, "LOT-2").is_empty());
    let judged = first.custody("LOT-1").unwrap();
    assert!(!judged.admits("t-1"));
    // Asked again with nothing new, the judgement is the one kept.
    assert!(Arc::ptr_eq(
        &judged,
        &store.snapshot().unwrap().custody("LOT-1").unwrap()
    ));

    // The pallet that carries LOT-1 goes to the mill: an event on the container, not the lot.
    let pallet_shipped = at(base("s-1", "coop", build_ship("PALLET-1", "mill")), "10:00");
    writer.submit(subs(&[pallet_shipped])).await.unwrap();
    let shipped = store.snapshot().unwrap();
    let rejudged = shipped.custody("LOT-1").unwrap();
    assert!(!Arc::ptr_eq(&judged, &rejudged));
    assert!(rejudged.admits("t-1"));
    assert_eq!(origins(&shipped, "LOT-2"), ["LOT-1"]);
    // The first view still reads the log as it was, though a later one judged the lot since.
    assert!(origins(&first, "LOT-2").is_empty());
    assert!(!first.custody("LOT-1").unwrap().admits("t-1"));

    // Judged again in the newer view, so that only the correction below tells it apart.
    assert_eq!(origins(&shipped, "LOT-2"), ["LOT-1"]);

    // The co-op declares the shipment erroneous: a correction names neither lot nor pallet.
    writer
        .submit(subs(&[correct("c-1", "coop", "s-1")]))
        .await
        .unwrap();
    let corrected = store.snapshot().unwrap();
    assert!(origins(&corrected, "LOT-2").is_empty());
    assert_eq!(origins(&shipped, "LOT-2"), ["LOT-1"]);

    // It ships the lot itself instead.
    let lot_shipped = at(base("s-2", "coop", build_ship("LOT-1", "mill")), "10:30");
    writer.submit(subs(&[lot_shipped])).await.unwrap();
    assert_eq!(origins(&store.snapshot().unwrap(), "LOT-2"), ["LOT-1"]);
    assert!(origins(&corrected, "LOT-2").is_empty());
}

fn build_ship(lot: &str, to: &str) -> Kind {
    lotline_proto::build::ship([(lot, 100)], to)
}

#[tokio::test]
async fn the_duplicate_check_finds_stored_ids_through_a_built_filter() {
    let store = Store::in_memory();
    let writer = start(&store).await;
    writer
        .submit(subs(&[register("coop"), harvest("h-1", "LOT-1", "100")]))
        .await
        .unwrap();
    let mut ids = Ids::start(&store);
    ids.wait_built();
    let pending = Pending::new(store.backend());
    let (seq, record) = recorded_as(&pending, &ids, &event_id_prefix("h-1"), "h-1")
        .unwrap()
        .unwrap();
    assert_eq!((seq, record.event().unwrap().id.as_str()), (2, "h-1"));
    assert!(
        recorded_as(&pending, &ids, &event_id_prefix("h-new"), "h-new")
            .unwrap()
            .is_none()
    );
    // Through the writer: a resend is a duplicate, a changed event under the id a conflict.
    let out = writer
        .submit(subs(&[
            harvest("h-1", "LOT-1", "100"),
            harvest("h-1", "LOT-1", "90"),
        ]))
        .await
        .unwrap();
    assert!(matches!(out[0], Outcome::Duplicate { seq: 2 }), "{out:?}");
    assert!(
        matches!(
            out[1],
            Outcome::Rejected {
                kind: RejectKind::Conflict,
                ..
            }
        ),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_lot_named_by_many_events_of_a_batch_is_one_index_key_per_role_in_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Arc::new(SledBackend::open(dir.path(), 16 << 20).unwrap()));
    let writer = start(&store).await;
    let ship = |id: &str, lot: &str| base(id, "coop", build_ship(lot, "buyer"));
    // LOT-1 is created, mentioned twice and consumed twice in one batch; LOT-9 is consumed
    // before the same batch creates it.
    let first = writer
        .submit(subs(&[
            register("coop"),
            harvest("h-1", "LOT-1", "100"),
            ship("s-1", "LOT-1"),
            transform("t-1", "LOT-1", "LOT-2"),
            transform("t-9", "LOT-9", "LOT-10"),
            harvest("h-9", "LOT-9", "100"),
            transform("t-2", "LOT-1", "LOT-3"),
            ship("s-2", "LOT-1"),
        ]))
        .await
        .unwrap();
    assert!(
        first.iter().all(|o| matches!(o, Outcome::Accepted { .. })),
        "{first:?}"
    );
    let keys = |lot: &str| {
        let prefix = id_prefix(LOT, lot);
        store
            .backend()
            .range(&prefix, &prefix_end(&prefix), usize::MAX)
            .unwrap()
            .len()
    };
    assert_eq!(
        keys("LOT-1"),
        3,
        "one key each for created, mentioned and consumed"
    );
    // Created earlier in the batch: not unknown. Used before its creation: unknown.
    assert!(
        store
            .backend()
            .get(&id_key(UNKNOWN, "LOT-1"))
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .backend()
            .get(&id_key(UNKNOWN, "LOT-9"))
            .unwrap()
            .is_some()
    );
    let ids = |events: Vec<Arc<lotline_domain::Event>>| -> Vec<String> {
        events.iter().map(|e| e.id.clone()).collect()
    };
    let after_first = store.snapshot().unwrap();
    assert_eq!(after_first.lot_seqs("LOT-1").unwrap(), vec![2, 3, 4, 7, 8]);
    assert_eq!(
        ids(after_first.consumptions("LOT-1").unwrap()),
        ["t-1", "t-2"]
    );
    assert_eq!(ids(after_first.creations("LOT-1").unwrap()), ["h-1"]);
    // A view that ends inside the batch sees only the part of each posting up to its end.
    let inside = Snapshot::new(&store, 4);
    assert_eq!(inside.lot_seqs("LOT-1").unwrap(), vec![2, 3, 4]);
    assert_eq!(ids(inside.consumptions("LOT-1").unwrap()), ["t-1"]);

    writer
        .submit(subs(&[
            transform("t-4", "LOT-1", "LOT-4"),
            ship("s-3", "LOT-1"),
        ]))
        .await
        .unwrap();
    assert_eq!(keys("LOT-1"), 5);
    let after_second = store.snapshot().unwrap();
    assert_eq!(
        ids(after_second.consumptions("LOT-1").unwrap()),
        ["t-1", "t-2", "t-4"]
    );
    assert_eq!(
        ids(after_second.mentions("LOT-1").unwrap()),
        ["h-1", "s-1", "t-1", "t-2", "s-2", "t-4", "s-3"]
    );
    assert_eq!(
        ids(after_first.consumptions("LOT-1").unwrap()),
        ["t-1", "t-2"]
    );
    assert_eq!(
        store.check_and_repair(true).unwrap(),
        StartupCheck::Consistent { events: 10 }
    );
    drop(writer);
    store.rebuild_indexes().unwrap();
    assert_eq!(keys("LOT-1"), 3, "the rebuild writes one batch");
    let rebuilt = store.snapshot().unwrap();
    assert_eq!(
        ids(rebuilt.mentions("LOT-1").unwrap()),
        ids(after_second.mentions("LOT-1").unwrap())
    );
    assert_eq!(
        ids(rebuilt.consumptions("LOT-1").unwrap()),
        ["t-1", "t-2", "t-4"]
    );

    // A posting cut short is reported, not read as something else.
    let mut damaged = lot_role_prefix("LOT-1", ROLE_MENTIONED);
    damaged.extend_from_slice(&20u64.to_be_bytes());
    let mut batch = crate::backend::WriteBatch::default();
    batch.insert(damaged, vec![0x80]);
    store.backend().apply(batch).unwrap();
    store.forget_kept();
    let err = Snapshot::new(&store, 10).lot_seqs("LOT-1").unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(reason) if reason.contains("LOT-1")),
        "{err:?}"
    );
}
