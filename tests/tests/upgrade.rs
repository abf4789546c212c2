//! Upgrade: a data dir written by an earlier release opens with this release and answers the
//! same. Each fixture in `tests/fixtures/upgrade` (its README says how `regenerate.sh` made them)
//! is that release's stopped data dir, with the demo chains and `cocoa_chain.jsonld` loaded, and
//! that release's `--json` answers to the commands below: `v2` (index version 2) and `v3` (index
//! version 3, the release before the service layer: ids in keys unescaped), both migrated by
//! rebuilding the indexes from the log on their first start; `v4` (the release before the
//! storage issue: an org-index key per event and every Merkle level stored) and `v4-postings`
//! (the release before log blocks: one record per key, event ids whole in their index keys),
//! both index version 4, rebuilt to version 5 (event ids by hash); `v5` (the release before
//! lot-index postings: a lot-index key per event), read as it is by index version 6. Every
//! start must give the recorded answers, the recorded tree head, and verify the checkpoint that
//! release signed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{lotline, stderr, stdout};
use lotline_testkit::BinaryServer;
use serde_json::Value;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/upgrade");

/// The lots asked about (name in the answer files, lot id): a product and a farm lot of each
/// demo chain, and of the EPCIS import (GS1 lots, in their canonical Digital Link form).
const LOTS: [(&str, &str); 8] = [
    ("cocoa-bar", "CC-BAR-2026-W12"),
    ("cocoa-farm", "CC-H-2026-0412"),
    ("coffee-retail", "CO-RET-2026-B"),
    ("coffee-farm", "CO-H-2026-0007"),
    ("textile-garment", "TX-GAR-2026-T1"),
    ("textile-farm", "TX-H-2026-0101"),
    (
        "gs1-liquor",
        "https://id.gs1.org/01/06181234111114/10/LQ-251118",
    ),
    (
        "gs1-farm",
        "https://id.gs1.org/01/06180123123450/10/H-251014-A",
    ),
];

/// Every recorded command: (answer file name, arguments before `--server URL --json`). The
/// same list as in `tests/fixtures/upgrade/regenerate.sh`.
fn commands() -> Vec<(String, Vec<String>)> {
    let mut out = vec![("events-all".to_string(), args(&["events", "--all"]))];
    for (name, lot) in LOTS {
        for command in ["trace", "recall", "lot"] {
            out.push((format!("{command}-{name}"), args(&[command, lot])));
        }
    }
    out.extend([
        ("anomalies".to_string(), args(&["anomalies"])),
        ("checkpoint".to_string(), args(&["checkpoint"])),
        ("unknown".to_string(), args(&["unknown"])),
        ("rejected".to_string(), args(&["rejected"])),
        ("eudr-cocoa-bar".to_string(), args(&["eudr", LOTS[0].1])),
        ("eudr-gs1-liquor".to_string(), args(&["eudr", LOTS[6].1])),
        (
            "audit-textile-garment".to_string(),
            args(&["audit", LOTS[4].1]),
        ),
        (
            "balance-vn-coop-eahleo".to_string(),
            args(&["balance", "--org", "vn-coop-eahleo"]),
        ),
        ("proof-cc-bar-01".to_string(), args(&["proof", "cc-bar-01"])),
    ]);
    out
}

/// The event ids of an answer's `events`, in order.
fn event_ids(answer: &Value) -> Vec<String> {
    answer["events"]
        .as_array()
        .expect("the answer lists events")
        .iter()
        .map(|e| {
            e["event"]["eventId"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn answer_file(fixture: &str, name: &str) -> PathBuf {
    Path::new(FIXTURE)
        .join(format!("{fixture}-answers"))
        .join(format!("{name}.json"))
}

/// The earlier release's answer, as recorded.
fn recorded(fixture: &str, name: &str) -> Value {
    let path = answer_file(fixture, name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("recorded answer {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// This release's answer to `args` from the server at `url`.
fn answer(url: &str, args: &[String]) -> Value {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::json_answer(url, &args)
}

/// The part of an answer that must not change. Checkpoints and proofs carry the signed note
/// and the verifier key: what identifies the log's state there is the tree size and root hash
/// (kept, and the proof's audit path and leaf), and the note the previous release signed is
/// checked by `lotline verify --checkpoint` instead. Fields added since (recall shipments and
/// containers, anomaly ids, status and reviews) are set aside. Three changes of the rules since are set
/// aside, each said where it is done (self-declared certificates marked, membership that a
/// co-op must confirm, logistic units that are not lots of unknown origin); nothing else is dropped: every other answer was identical when the
/// previous release answered twice (restarted in between).
///
/// `since` is `None` for a fixture whose release already had every field and rule of today's
/// (`v5` on): only the checkpoint and proof are set aside there, the rest must be identical.
fn comparable(
    name: &str,
    mut value: Value,
    since: Option<(&BTreeSet<String>, &BTreeSet<String>)>,
) -> Value {
    if name == "checkpoint" {
        return serde_json::json!({
            "tree_size": value["tree_size"],
            "root_hash": value["root_hash"],
        });
    }
    if name.starts_with("proof-")
        && let Some(object) = value.as_object_mut()
    {
        object.remove("checkpoint");
        object.remove("verifier_key");
    }
    let Some((farms, containers)) = since else {
        return value;
    };
    // Added since: the listing and the ledgers say the log sequence they are current to (the
    // audit test holds it to the tree size).
    if (name == "anomalies" || name.starts_with("balance-"))
        && let Some(object) = value.as_object_mut()
    {
        object.remove("current_to");
        object.remove("currentTo");
    }
    // Added since: a recall lists the shipments and containers of the recalled lots.
    if name.starts_with("recall-")
        && let Some(object) = value.as_object_mut()
    {
        object.remove("shipments");
        object.remove("containers");
    }
    // Added since: an anomaly has a stable id, a status and auditors' reviews, and the listing
    // counts by status. No earlier release could record a review, so every anomaly of its log
    // is open and unreviewed.
    if name == "anomalies" || name.starts_with("lot-") || name.starts_with("trace-") {
        if let Some(object) = value.as_object_mut() {
            object.remove("status_counts");
        }
        for a in value
            .get_mut("anomalies")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            // (The recorded answers have none of these fields; today's have all three.)
            if a.get("status").is_some() {
                assert_eq!(a["status"], "open", "{name}: {a}");
                assert_eq!(a["reviews"], serde_json::json!([]), "{name}: {a}");
                assert!(
                    a["id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(a["kind"].as_str().unwrap_or("?"))),
                    "{name}: {a}"
                );
            }
            if let Some(object) = a.as_object_mut() {
                for key in ["id", "status", "reviews"] {
                    object.remove(key);
                }
            }
        }
    }
    // Added since: a chain report says which certificates their orgs declared themselves
    // (every certificate of the demo chains is). Which certificates count is unchanged.
    if name.starts_with("audit-") {
        drop_key(&mut value, "selfDeclared");
    }
    // Changed since, on purpose: a farm is covered by its co-op's group certificate only on
    // dates the co-op confirms the membership (confirmMember), which no earlier release could
    // record. So these logs now also list uncertified claims and sales of the farms that
    // named a co-op; every other anomaly is as before.
    if (name == "anomalies" || name.starts_with("lot-"))
        && let Some(list) = value.get_mut("anomalies").and_then(Value::as_array_mut)
    {
        // Changed since, on purpose: a logistic unit (an aggregation's or association's
        // parent) is not a lot of unknown origin.
        let packed_origin = |a: &Value| {
            a["kind"] == "unknown_origin"
                && a["lot"].as_str().is_some_and(|l| containers.contains(l))
        };
        list.retain(|a| !(unconfirmed_member_anomaly(a, farms) || packed_origin(a)));
        let mut counts = serde_json::Map::new();
        for a in list.iter() {
            let kind = a["kind"].as_str().unwrap_or_default().to_string();
            let n = counts.get(&kind).and_then(Value::as_u64).unwrap_or(0);
            counts.insert(kind, Value::from(n + 1));
        }
        if value.get("counts").is_some() {
            value["counts"] = Value::Object(counts);
        }
    }
    value
}

/// An anomaly the confirmed-membership rule adds on an earlier release's log: an uncertified
/// claim or sale charged to a farm that named a co-op.
fn unconfirmed_member_anomaly(anomaly: &Value, farms: &BTreeSet<String>) -> bool {
    matches!(
        anomaly["kind"].as_str(),
        Some("uncertified_claim" | "uncertified_seller")
    ) && anomaly["org"].as_str().is_some_and(|o| farms.contains(o))
}

/// The orgs whose registration names a co-op (`memberOf`), in the earlier release's log.
fn members(fixture: &str) -> BTreeSet<String> {
    let events = recorded(fixture, "events-all");
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event"]["registerOrg"]["memberOf"].as_str().is_some())
        .filter_map(|e| e["event"]["org"].as_str().map(str::to_string))
        .collect()
}

/// The parents of the aggregation and association events in the earlier release's log.
fn containers(fixture: &str) -> BTreeSet<String> {
    let events = recorded(fixture, "events-all");
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let observe = &e["event"]["observe"];
            matches!(
                observe["eventType"].as_str(),
                Some("AggregationEvent" | "AssociationEvent")
            )
            .then(|| observe["parent"].as_str().map(str::to_string))
            .flatten()
        })
        .collect()
}

fn drop_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| drop_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| drop_key(v, key)),
        _ => {}
    }
}

/// Where two JSON values differ, as `path: recorded ≠ now` lines (at most `limit`).
fn differences(path: &str, recorded: &Value, now: &Value, out: &mut Vec<String>, limit: usize) {
    if out.len() >= limit {
        return;
    }
    match (recorded, now) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => differences(&format!("{path}.{key}"), value, other, out, limit),
                    None => out.push(format!("{path}.{key}: recorded {value}, now missing")),
                }
            }
            for (key, value) in b {
                if !a.contains_key(key) {
                    out.push(format!("{path}.{key}: not recorded, now {value}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out, limit);
            }
        }
        (Value::Array(a), Value::Array(b)) => out.push(format!(
            "{path}: recorded {} items, now {}",
            a.len(),
            b.len()
        )),
        _ if recorded != now => out.push(format!("{path}: recorded {recorded}, now {now}")),
        _ => {}
    }
    out.truncate(limit);
}

/// The fixtures whose release answered with every field and rule of today's.
const ANSWERS_AS_TODAY: [&str; 1] = ["v5"];

/// Runs every recorded command against `url` and fails listing every answer that differs.
fn assert_same_answers(fixture: &str, url: &str, when: &str) {
    let mut failures = Vec::new();
    let farms = members(fixture);
    assert!(!farms.is_empty(), "{fixture}: no farm names a co-op");
    let packed = containers(fixture);
    assert!(!packed.is_empty(), "{fixture}: nothing is packed");
    let since = (!ANSWERS_AS_TODAY.contains(&fixture)).then_some((&farms, &packed));
    for (name, args) in commands() {
        let expected = comparable(&name, recorded(fixture, &name), since);
        let now = comparable(&name, answer(url, &args), since);
        if now != expected {
            let mut diff = Vec::new();
            differences("", &expected, &now, &mut diff, 10);
            failures.push(format!(
                "lotline {} ({name}.json):\n    {}",
                args.join(" "),
                diff.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{fixture}, {when}: {} of {} answers differ from that release's:\n{}",
        failures.len(),
        commands().len(),
        failures.join("\n")
    );
}

/// The first line the server logged containing `needle`, waiting up to 30 s for it.
fn logged(server: &BinaryServer, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match server.log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("the server logged no line with {needle:?} within 30 s ({e})"),
        }
    }
}

/// The earlier release's checkpoint checks out against the log `url` serves.
fn assert_verifies(fixture: &str, url: &str) {
    let saved = answer_file(fixture, "checkpoint");
    let out = lotline(&[
        "verify",
        "--server",
        url,
        "--checkpoint",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{fixture}: that release's checkpoint does not verify: {}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The indexes this release added answer for the history written before it: every org and
/// site the log registered is listed, and the sites are found by id.
fn assert_master_data_listed(fixture: &str, url: &str) {
    let registered = |kind: &str| -> std::collections::BTreeSet<String> {
        recorded(fixture, "events-all")["events"]
            .as_array()
            .expect("recorded events")
            .iter()
            .filter_map(|e| {
                let event = &e["event"];
                match kind {
                    "orgs" => event.get("registerOrg").map(|_| event["org"].clone()),
                    _ => event.get("registerSite").map(|s| s["site"].clone()),
                }
            })
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    for kind in ["orgs", "sites"] {
        let out = lotline(&[kind, "--all", "--json", "--server", url]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr(&out));
        let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON listing");
        let listed: std::collections::BTreeSet<String> = listed["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| {
                let event = &e["event"];
                match kind {
                    "orgs" => event["org"].as_str(),
                    _ => event["registerSite"]["site"].as_str(),
                }
                .map(str::to_string)
            })
            .collect();
        let expected = registered(kind);
        assert!(!expected.is_empty(), "the fixture registers {kind}");
        assert_eq!(listed, expected, "{kind} after the migration");
    }
}

/// The first start on a fixture of index version `version`: the indexes are rebuilt from the
/// log, the Merkle tree is taken as it is and matches, and every answer, the checkpoint that
/// release signed and the master-data listings are the same.
async fn first_start_migrates(fixture: &str, data: &Path, version: u64) -> BinaryServer {
    let server = BinaryServer::spawn(data).await;
    let open = logged(&server, "store open");
    assert!(
        open.contains("indexes were rebuilt")
            && open.contains(&format!("index version Some({version})")),
        "{fixture}: the first start did not migrate the index version {version} keys: {open}"
    );
    let tree = logged(&server, "Merkle tree");
    assert!(tree.contains("matches the log"), "{fixture}: {tree}");
    assert_same_answers(fixture, &server.url(), "first start (migrating)");
    assert_verifies(fixture, &server.url());
    assert_master_data_listed(fixture, &server.url());
    server
}

/// A start that finds the indexes of a migrated dir in order.
fn assert_indexes_match(fixture: &str, server: &BinaryServer) {
    let open = logged(server, "store open");
    assert!(
        open.contains("indexes match the log"),
        "{fixture}: the start after the migration did not find the indexes in order: {open}"
    );
}

fn stop(server: BinaryServer) {
    let status = server.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// The fixture's stopped data dir, unpacked into `dir`, after checking that the fixture is
/// complete and not trivial: every answer is recorded, and the log holds the demo chains and the
/// EPCIS import.
fn unpack(fixture: &str, dir: &Path) -> PathBuf {
    for (name, _) in commands() {
        recorded(fixture, &name);
    }
    let events = recorded(fixture, "events-all")["events"]
        .as_array()
        .expect("recorded events")
        .len();
    assert!(events > 100, "only {events} events recorded");
    assert_eq!(recorded(fixture, "checkpoint")["tree_size"], events);
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(Path::new(FIXTURE).join(format!("{fixture}-datadir.tar.gz")))
        .arg("-C")
        .arg(dir)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xzf failed: {status:?}");
    let data = dir.join("data");
    assert!(data.join("db").is_file(), "the tarball holds no sled dir");
    data
}

/// Offline, the stopped dir still holds exactly the history the fixture's checkpoint signed.
fn assert_verifies_offline(fixture: &str, data: &Path) {
    assert_checkpoint_verifies_offline(&answer_file(fixture, "checkpoint"), data);
}

/// Offline, the stopped dir holds exactly the history the checkpoint in `checkpoint` signed.
fn assert_checkpoint_verifies_offline(checkpoint: &Path, data: &Path) {
    let out = lotline(&[
        "verify",
        "--data-dir",
        data.to_str().unwrap(),
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "offline verify of the stopped dir against {}: {}{}",
        checkpoint.display(),
        stdout(&out),
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_of_index_version_2_is_migrated_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = unpack("v2", dir.path());

    // First start: the index version differs, so the indexes are rebuilt from the log; the
    // Merkle tree is never rebuilt silently and must match as it is.
    let server = first_start_migrates("v2", &data, 2).await;
    stop(server);

    // Second start on the migrated dir: nothing to rebuild, the same answers.
    let server = BinaryServer::spawn(&data).await;
    assert_indexes_match("v2", &server);
    assert_same_answers("v2", &server.url(), "second start (migrated)");
    assert_verifies("v2", &server.url());
    stop(server);
    assert_verifies_offline("v2", &data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_of_index_version_3_is_migrated_to_escaped_keys_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = unpack("v3", dir.path());

    // Index version 3 wrote ids into keys as they are; version 4 escapes them, so that no id
    // can spell another's key. The first start rebuilds the indexes from the log (the records,
    // read by the store's own record type, are not touched); the tree is taken as it is.
    let server = first_start_migrates("v3", &data, 3).await;
    stop(server);

    let server = BinaryServer::spawn(&data).await;
    assert_indexes_match("v3", &server);
    assert_same_answers("v3", &server.url(), "second start (migrated)");
    stop(server);
    assert_verifies_offline("v3", &data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_of_the_release_that_stored_every_tree_level_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = unpack("v4", dir.path());

    // That release stored a key per event in the org index and every level of the Merkle tree,
    // and the event id index by whole ids (index version 4). This one rebuilds the indexes from
    // the log (event ids by hash), hashes the tree's lowest levels from the records, and reads
    // the records one per key as they are: the stored tree matches, and every answer and proof
    // is the same.
    let server = first_start_migrates("v4", &data, 4).await;
    // A new event of an org that has old index entries: its listing holds both kinds (one key
    // per event as that release wrote them, one per batch as this one does).
    let line = dir.path().join("re-register.jsonl");
    std::fs::write(
        &line,
        r#"{"eventId": "reg-org-vn-coop-eahleo-2", "eventTime": "2026-06-01T09:00:00+00:00", "org": "vn-coop-eahleo", "registerOrg": {"country": "VN", "gln": "8930000000017", "name": "Ea H'Leo Cocoa Co-operative", "role": "ORG_ROLE_COOPERATIVE"}}"#,
    )
    .unwrap();
    let posted = lotline(&["post", line.to_str().unwrap(), "--server", &server.url()]);
    assert_eq!(posted.status.code(), Some(0), "{}", stderr(&posted));
    let org_events = |url: &str| -> Vec<String> {
        event_ids(&answer(
            url,
            &args(&["events", "--org", "vn-coop-eahleo", "--limit", "5", "--all"]),
        ))
    };
    let mut expected: Vec<String> = recorded("v4", "events-all")["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["org"] == "vn-coop-eahleo")
        .map(|e| e["event"]["eventId"].as_str().unwrap().to_string())
        .collect();
    expected.push("reg-org-vn-coop-eahleo-2".into());
    assert_eq!(org_events(&server.url()), expected);
    stop(server);

    // A full check of the tree re-hashes every record against the stored groups of eight.
    let server = BinaryServer::spawn_with(&data, "lotline.v1.LogService", &["--full-check"]).await;
    let tree = logged(&server, "Merkle tree");
    assert!(tree.contains("matches the log"), "{tree}");
    assert_eq!(org_events(&server.url()), expected);
    stop(server);
    assert_verifies_offline("v4", &data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_of_the_release_before_log_blocks_is_migrated_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = unpack("v4-postings", dir.path());

    // That release kept one record per log key (imported events zstd-compressed one by one) and
    // the event id index by whole ids (index version 4). This one rebuilds the indexes (event
    // ids by hash), reads those records as they are, and writes new ones in blocks.
    let server = first_start_migrates("v4-postings", &data, 4).await;

    // New events in one batch (a block of records) after the old ones: each is found by id, a
    // repeat is a duplicate of it, and its proof checks out against a new checkpoint.
    let recorded_events = recorded("v4-postings", "events-all")["events"]
        .as_array()
        .unwrap()
        .len();
    let lines: Vec<String> = (1..=5)
        .map(|i| {
            format!(
                r#"{{"eventId": "reg-site-eahleo-new-{i}", "eventTime": "2026-06-0{i}T09:00:00+00:00", "org": "vn-coop-eahleo", "registerSite": {{"site": "eahleo-store-{i}", "name": "Store {i}", "country": "VN"}}}}"#
            )
        })
        .collect();
    let file = dir.path().join("sites.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let posted = lotline(&["post", file.to_str().unwrap(), "--server", &server.url()]);
    assert_eq!(posted.status.code(), Some(0), "{}", stderr(&posted));
    let again = lotline(&["post", file.to_str().unwrap(), "--server", &server.url()]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("5 duplicate") || stderr(&again).contains("5 duplicate"),
        "a repeat of the new events: {}{}",
        stdout(&again),
        stderr(&again)
    );
    let events = answer(&server.url(), &args(&["events", "--all"]));
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), recorded_events + 5);
    assert_eq!(
        events.last().unwrap()["event"]["eventId"],
        "reg-site-eahleo-new-5"
    );
    let proof = lotline(&["proof", "reg-site-eahleo-new-3", "--server", &server.url()]);
    assert_eq!(proof.status.code(), Some(0), "{}", stderr(&proof));
    let checkpoint = dir.path().join("checkpoint.json");
    std::fs::write(
        &checkpoint,
        serde_json::to_vec(&answer(&server.url(), &args(&["checkpoint"]))).unwrap(),
    )
    .unwrap();
    stop(server);

    // The migrated dir, restarted with a full check of the tree over old and new records.
    let server = BinaryServer::spawn_with(&data, "lotline.v1.LogService", &["--full-check"]).await;
    assert_indexes_match("v4-postings", &server);
    let tree = logged(&server, "Merkle tree");
    assert!(tree.contains("matches the log"), "{tree}");
    assert_verifies("v4-postings", &server.url());
    stop(server);
    assert_verifies_offline("v4-postings", &data);
    // The checkpoint over the new blocks too.
    assert_checkpoint_verifies_offline(&checkpoint, &data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_of_index_version_5_is_read_as_it_is_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data = unpack("v5", dir.path());

    // That release wrote a lot index key per event (index version 5); this one writes one per
    // lot, role and batch, whose value lists the batch's other events. A version 5 key is such
    // a posting of one event, so the first start reads the indexes as they are, without a
    // rebuild, and every answer is the same.
    let server = BinaryServer::spawn(&data).await;
    let open = logged(&server, "store open");
    assert!(
        open.contains("indexes match the log") && !open.contains("rebuilt"),
        "the first start on a version 5 dir: {open}"
    );
    let tree = logged(&server, "Merkle tree");
    assert!(tree.contains("matches the log"), "{tree}");
    assert_same_answers("v5", &server.url(), "first start");
    assert_verifies("v5", &server.url());
    assert_master_data_listed("v5", &server.url());

    // New events in one batch that name a farm lot of the old ones twice: the lot's listing
    // holds the old entries and the new posting, in log order.
    let lot = LOTS[1].1;
    let lines: Vec<String> = (1..=2)
        .map(|i| {
            format!(
                r#"{{"chain": "cocoa", "eventId": "cc-pay-{lot}-bonus-{i}", "eventTime": "2026-06-0{i}T10:00:00+07:00", "org": "vn-coop-eahleo", "pay": {{"contractDate": "2026-03-01", "currency": "USD", "lots": [{{"lot": "{lot}", "quantity": {{"amount": "420", "unit": "kg"}}}}], "payeeOrg": "vn-farm-hoa", "premiumPerUnit": "0.05", "pricePerUnit": "0.10", "priceUnit": "kg"}}}}"#
            )
        })
        .collect();
    let file = dir.path().join("bonus.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let posted = lotline(&["post", file.to_str().unwrap(), "--server", &server.url()]);
    assert_eq!(posted.status.code(), Some(0), "{}", stderr(&posted));
    let lot_events = |url: &str| event_ids(&answer(url, &args(&["lot", lot])));
    let mut expected = event_ids(&recorded("v5", "lot-cocoa-farm"));
    assert!(expected.len() > 2, "the farm lot has events: {expected:?}");
    expected.extend((1..=2).map(|i| format!("cc-pay-{lot}-bonus-{i}")));
    assert_eq!(lot_events(&server.url()), expected);
    stop(server);

    // Restarted with a full check of every index entry, old and new: no rebuild, the same.
    let server = BinaryServer::spawn_with(&data, "lotline.v1.LogService", &["--full-check"]).await;
    assert_indexes_match("v5", &server);
    assert_eq!(lot_events(&server.url()), expected);
    stop(server);
    assert_verifies_offline("v5", &data);
}
