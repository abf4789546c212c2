//! The auditor's commands: `checkpoint`, `proof`, `consistency` and `verify`.
//! Proofs are checked here with `lotline-merkle`'s RFC 9162 verifiers before they
//! are printed, and `verify` recomputes the whole tree from the entries.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use lotline_merkle::{
    Checkpoint, Hash, RootBuilder, Signer, Verifier, leaf_hash, verify_consistency,
    verify_inclusion,
};
use lotline_proto::v1::log_service_client::LogServiceClient;
use lotline_proto::{documents, v1};
use lotline_store::{LEAF_GROUP, Record, SledBackend, Store};
use serde_json::{Value, json};

use super::client::{Conn, connect, status_error};
use super::{CliError, ClientArgs, CredentialArgs, print_json};
use crate::keyfile::{self, DEFAULT_KEY_FILE};

#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// A past tree size (default: the latest tree).
    #[arg(long)]
    size: Option<u64>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ProofArgs {
    /// The event whose inclusion to prove.
    event_id: String,
    /// The tree size to prove it in (default: the latest tree).
    #[arg(long)]
    size: Option<u64>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConsistencyArgs {
    old_size: u64,
    /// Default: the latest tree.
    new_size: Option<u64>,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Verify a running server's log (default http://127.0.0.1:50051).
    #[arg(long, env = "LOTLINE_SERVER", conflicts_with = "data_dir")]
    server: Option<String>,
    /// Verify a stopped node's data directory, offline.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Verify an audit bundle (`lotline bundle`), offline: its checkpoint's signature, and that
    /// every event it cites is in the signed log (no server is asked, whatever --server says).
    #[arg(long, conflicts_with_all = ["data_dir", "checkpoint"])]
    bundle: Option<PathBuf>,
    /// A checkpoint saved earlier (`lotline checkpoint --json`, or the note itself):
    /// the log must still contain exactly that history.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The verifier key to trust (name+keyhash+base64). Default: the saved
    /// checkpoint's key, else the key the log presents.
    #[arg(long)]
    key: Option<String>,
    /// With --data-dir: the log name the node signs under.
    #[arg(long, env = "LOTLINE_LOG_NAME", default_value = crate::DEFAULT_LOG_NAME)]
    log_name: String,
    /// With --server: how to reach it (an auditor's token reads the whole log).
    #[command(flatten)]
    credentials: CredentialArgs,
}

/// `--size` / `NEW_SIZE`: a tree of at least one entry (0 would mean "latest" to
/// the server, so it is refused rather than silently changed).
fn size_arg(name: &str, size: Option<u64>) -> Result<u64, CliError> {
    match size {
        Some(0) => Err(CliError::Usage(format!("{name}: must be at least 1"))),
        Some(n) => Ok(n),
        None => Ok(0),
    }
}

pub(super) fn hex(h: &[u8]) -> String {
    ::hex::encode(h)
}

fn hash_of(bytes: &[u8], what: &str) -> Result<Hash, CliError> {
    bytes.try_into().map_err(|_| {
        CliError::Refused(format!(
            "the server sent a {what} that is not a 32-byte hash"
        ))
    })
}

pub(super) async fn log_client(args: &ClientArgs) -> Result<LogServiceClient<Conn>, CliError> {
    Ok(LogServiceClient::new(connect(args).await?).max_decoding_message_size(256 << 20))
}

/// Checks a checkpoint's signature with the key it names (the server's own
/// claim; `verify` lets the user pin a key) and that it says what the fields say.
pub(super) fn open_checkpoint(cp: &v1::Checkpoint) -> Result<(Verifier, Checkpoint), CliError> {
    let verifier = Verifier::parse(&cp.verifier_key)
        .map_err(|e| CliError::Refused(format!("the server's verifier key is unusable: {e}")))?;
    let opened = verifier
        .open(&cp.note)
        .map_err(|e| CliError::Refused(format!("the checkpoint does not verify: {e}")))?;
    if opened.size != cp.tree_size
        || opened.root.as_slice() != cp.root_hash.as_slice()
        || opened.origin != cp.origin
    {
        return Err(CliError::Refused(
            "the checkpoint's note and fields disagree".into(),
        ));
    }
    Ok((verifier, opened))
}

pub(crate) async fn checkpoint(args: CheckpointArgs) -> Result<(), CliError> {
    let cp = log_client(&args.client)
        .await?
        .get_checkpoint(v1::GetCheckpointRequest {
            tree_size: size_arg("--size", args.size)?,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let (_, signed) = open_checkpoint(&cp)?;
    if let Some(size) = args.size
        && signed.size != size
    {
        return Err(CliError::Refused(format!(
            "asked for a checkpoint of {size} entries, got {}",
            signed.size
        )));
    }
    if args.client.json {
        print_json(&documents::checkpoint_json(&cp))
    } else {
        out!("{}", cp.note);
        outln!("verifier key: {}", cp.verifier_key);
        Ok(())
    }
}

pub(crate) async fn proof(args: ProofArgs) -> Result<(), CliError> {
    let p = log_client(&args.client)
        .await?
        .get_inclusion_proof(v1::GetInclusionProofRequest {
            leaf: Some(v1::get_inclusion_proof_request::Leaf::EventId(
                args.event_id.clone(),
            )),
            tree_size: size_arg("--size", args.size)?,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let cp = p
        .checkpoint
        .clone()
        .ok_or_else(|| CliError::Refused("the proof came without a checkpoint".into()))?;
    let (_, signed) = open_checkpoint(&cp)?;
    // Tie every field the proof is checked with to the signed checkpoint and to
    // the event asked for, not to the server's word.
    if p.tree_size != signed.size || args.size.is_some_and(|n| n != signed.size) {
        return Err(CliError::Refused(format!(
            "the proof is for a tree of {} entries but the checkpoint signs {}",
            p.tree_size, signed.size
        )));
    }
    if p.sequence != p.leaf_index + 1 {
        return Err(CliError::Refused(
            "the proof's sequence and leaf index disagree".into(),
        ));
    }
    // A caller not entitled to the event in full gets its leaf hash only: the proof still
    // shows that a leaf with this hash is in the signed tree.
    let withheld = p.leaf.is_empty();
    let leaf = if withheld {
        hash_of(&p.leaf_hash, "leaf hash")?
    } else {
        let event = Record::decode(&p.leaf)
            .and_then(|r| r.event())
            .map_err(|e| {
                CliError::Refused(format!("the proved leaf is not a lotline record: {e}"))
            })?;
        if event.id != args.event_id {
            return Err(CliError::Refused(format!(
                "the server proved leaf {} holding event {:?}, not {:?}",
                p.leaf_index, event.id, args.event_id
            )));
        }
        let leaf = leaf_hash(&p.leaf);
        if leaf.as_slice() != p.leaf_hash.as_slice() {
            return Err(CliError::Refused(
                "the leaf hash does not match the leaf bytes".into(),
            ));
        }
        leaf
    };
    let path = p
        .audit_path
        .iter()
        .map(|h| hash_of(h, "path hash"))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(&leaf, p.leaf_index, p.tree_size, &path, &signed.root)
        .map_err(|e| CliError::Refused(format!("the inclusion proof does not verify: {e}")))?;
    if args.client.json {
        print_json(&documents::inclusion_json(&p))
    } else {
        outln!(
            "Event {} (sequence {}) is leaf {} of the log's tree of {} entries.",
            p.event_id,
            p.sequence,
            p.leaf_index,
            p.tree_size
        );
        outln!(
            "Audit path ({} hashes) verified against the signed root {}.",
            path.len(),
            hex(&signed.root)
        );
        if withheld {
            outln!(
                "The leaf (the whole event) is not in your view: the proof is of its hash {}.",
                hex(&p.leaf_hash)
            );
        }
        out!("{}", cp.note);
        Ok(())
    }
}

pub(crate) async fn consistency(args: ConsistencyArgs) -> Result<(), CliError> {
    let c = log_client(&args.client)
        .await?
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            old_size: args.old_size,
            new_size: size_arg("NEW_SIZE", args.new_size)?,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let cp = c
        .checkpoint
        .clone()
        .ok_or_else(|| CliError::Refused("the proof came without a checkpoint".into()))?;
    let (verifier, signed) = open_checkpoint(&cp)?;
    if c.new_size != signed.size
        || args.new_size.is_some_and(|n| n != signed.size)
        || c.old_size != args.old_size
        || c.new_root.as_slice() != signed.root.as_slice()
    {
        return Err(CliError::Refused(
            "the consistency proof's sizes or new root disagree with the signed checkpoint".into(),
        ));
    }
    // The old root must be one the log signed, too.
    let old_root = if c.old_size == 0 {
        lotline_merkle::empty_root()
    } else {
        let old_cp = log_client(&args.client)
            .await?
            .get_checkpoint(v1::GetCheckpointRequest {
                tree_size: c.old_size,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let old_signed = verifier.open(&old_cp.note).map_err(|e| {
            CliError::Refused(format!(
                "the checkpoint of {} entries does not verify: {e}",
                c.old_size
            ))
        })?;
        if old_signed.size != c.old_size || old_signed.root.as_slice() != c.old_root.as_slice() {
            return Err(CliError::Refused(format!(
                "the old root is not the signed root of {} entries",
                c.old_size
            )));
        }
        old_signed.root
    };
    let proof = c
        .proof
        .iter()
        .map(|h| hash_of(h, "proof hash"))
        .collect::<Result<Vec<_>, _>>()?;

    verify_consistency(c.old_size, c.new_size, &proof, &old_root, &signed.root)
        .map_err(|e| CliError::Refused(format!("the consistency proof does not verify: {e}")))?;
    if args.client.json {
        print_json(&json!({
            "old_size": c.old_size,
            "new_size": c.new_size,
            "proof": proof.iter().map(|h| hex(h)).collect::<Vec<_>>(),
            "old_root": hex(&c.old_root),
            "new_root": hex(&c.new_root),
            "checkpoint": cp.note,
            "verifier_key": cp.verifier_key,
        }))
    } else {
        outln!(
            "The tree of {} entries (root {}) is a prefix of the tree of {} entries (root {}); proof of {} hashes verified.",
            c.old_size,
            hex(&c.old_root),
            c.new_size,
            hex(&c.new_root),
            proof.len()
        );
        out!("{}", cp.note);
        Ok(())
    }
}

/// A checkpoint saved earlier: the JSON `lotline checkpoint --json` prints, or
/// the signed note alone.
struct Saved {
    note: String,
    verifier_key: Option<String>,
}

fn read_saved(path: &Path) -> Result<Saved, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!("--checkpoint: cannot read {}: {e}", path.display()))
    })?;
    if let Ok(value) = serde_json::from_str::<Value>(&text) {
        let note = value["checkpoint"].as_str().ok_or_else(|| {
            CliError::Usage(format!(
                "--checkpoint: {} has no \"checkpoint\" note",
                path.display()
            ))
        })?;
        return Ok(Saved {
            note: note.to_string(),
            verifier_key: value["verifier_key"].as_str().map(str::to_string),
        });
    }
    Ok(Saved {
        note: text,
        verifier_key: None,
    })
}

/// A mismatch `verify` found: exit 1 with the reason.
/// Checks a full group of eight records (sequence, leaf hash, record) against the tree's node
/// over them; a mismatch names the group's events, one of which was changed.
fn check_group(store: &Store, group: Vec<(u64, Hash, Record)>) -> Result<(), CliError> {
    let (first, last) = match (group.first(), group.last()) {
        (Some(f), Some(l)) => (f.0, l.0),
        _ => return Ok(()),
    };
    let mut builder = RootBuilder::new();
    for (_, leaf, _) in &group {
        builder.push(*leaf);
    }
    match store
        .stored_group((first - 1) / LEAF_GROUP)
        .map_err(|e| mismatch(e.to_string()))?
    {
        Some(stored) if stored == builder.root() => Ok(()),
        Some(_) => {
            let ids: Vec<String> = group
                .iter()
                .map(|(_, _, r)| r.event().map(|e| e.id).unwrap_or_default())
                .collect();
            Err(mismatch(format!(
                "one of the events at sequences {first} to {last} ({}) was changed: they no longer hash to their node in the tree",
                ids.join(", ")
            )))
        }
        None => Err(mismatch(format!(
            "the tree has no node for the events at sequences {first} to {last}"
        ))),
    }
}

pub(super) fn mismatch(reason: String) -> CliError {
    CliError::Refused(format!("VERIFICATION FAILED: {reason}"))
}

/// The roots of every prefix that a check needs, computed while streaming leaves.
struct Streamed {
    builder: RootBuilder,
    /// Root at the saved checkpoint's size, once reached.
    prefix_root: Option<Hash>,
}

impl Streamed {
    fn new() -> Self {
        Streamed {
            builder: RootBuilder::new(),
            prefix_root: None,
        }
    }

    fn push(&mut self, leaf: Hash, prefix_size: Option<u64>) {
        if prefix_size == Some(0) && self.prefix_root.is_none() {
            self.prefix_root = Some(self.builder.root());
        }
        self.builder.push(leaf);
        if prefix_size == Some(self.builder.size()) {
            self.prefix_root = Some(self.builder.root());
        }
    }
}

/// Checks a saved checkpoint against the log's history, given the root of the
/// log's first `saved.size` entries.
fn check_saved(
    saved: &Checkpoint,
    origin: &str,
    prefix_root: Option<Hash>,
    size: u64,
) -> Result<(), CliError> {
    if saved.origin != origin {
        return Err(mismatch(format!(
            "the saved checkpoint is of log {:?}, not {origin:?}",
            saved.origin
        )));
    }
    if saved.size > size {
        return Err(mismatch(format!(
            "the saved checkpoint is of {} entries but the log has only {size}: entries were removed",
            saved.size
        )));
    }
    let root = prefix_root.unwrap_or_else(lotline_merkle::empty_root);
    if root != saved.root {
        return Err(mismatch(format!(
            "the log's first {} entries hash to {}, not to the saved checkpoint's root {}: history was rewritten",
            saved.size,
            hex(&root),
            hex(&saved.root)
        )));
    }
    Ok(())
}

pub(crate) async fn verify(args: VerifyArgs) -> Result<(), CliError> {
    let saved_file = args.checkpoint.as_deref().map(read_saved).transpose()?;
    let pinned = args
        .key
        .clone()
        .or_else(|| saved_file.as_ref().and_then(|s| s.verifier_key.clone()));
    if let Some(bundle) = &args.bundle {
        return super::bundle::verify(bundle, args.key.as_deref());
    }
    match &args.data_dir {
        Some(dir) => verify_dir(dir, &args.log_name, pinned, saved_file).await,
        None => {
            let server = args
                .server
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:50051".into());
            let client = ClientArgs {
                server,
                json: false,
                credentials: args.credentials.clone(),
            };
            verify_server(&client, pinned, saved_file).await
        }
    }
}

pub(super) fn trusted(
    pinned: Option<&str>,
    presented: Option<&str>,
) -> Result<Option<Verifier>, CliError> {
    let Some(key) = pinned.or(presented) else {
        return Ok(None);
    };
    Verifier::parse(key)
        .map(Some)
        .map_err(|e| CliError::Usage(format!("--key: {e}")))
}

fn open_saved(
    saved: Option<&Saved>,
    verifier: Option<&Verifier>,
) -> Result<Option<Checkpoint>, CliError> {
    let Some(saved) = saved else { return Ok(None) };
    let verifier = verifier.ok_or_else(|| {
        CliError::Usage(
            "--checkpoint: give --key (the verifier key) to check the saved checkpoint's signature"
                .into(),
        )
    })?;
    verifier.open(&saved.note).map(Some).map_err(|e| {
        mismatch(format!(
            "the saved checkpoint does not verify with key {}: {e}",
            verifier.name()
        ))
    })
}

/// Reads a node's first `size` entries in order, a page at a time, each checked to be the
/// entry asked for and a lotline record, and hands each to `each`.
pub(super) async fn walk_entries(
    client: &mut LogServiceClient<Conn>,
    size: u64,
    mut each: impl FnMut(&[u8]) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut next = 0u64;
    while next < size {
        let page = client
            .get_entries(v1::GetEntriesRequest {
                start: next,
                count: 1000,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        if page.entries.is_empty() {
            return Err(mismatch(format!(
                "the server has no entry {next} though its checkpoint covers {size}"
            )));
        }
        for entry in page.entries.into_iter().take((size - next) as usize) {
            if entry.leaf_index != next {
                return Err(mismatch(format!(
                    "asked for entry {next}, the server sent entry {}",
                    entry.leaf_index
                )));
            }
            Record::decode(&entry.leaf)
                .map_err(|e| mismatch(format!("entry {next} is not a lotline record: {e}")))?;
            each(&entry.leaf)?;
            next += 1;
        }
    }
    Ok(())
}

async fn verify_server(
    server: &ClientArgs,
    pinned: Option<String>,
    saved_file: Option<Saved>,
) -> Result<(), CliError> {
    let mut client = log_client(server).await?;
    let cp = client
        .get_checkpoint(v1::GetCheckpointRequest { tree_size: 0 })
        .await
        .map_err(status_error)?
        .into_inner();
    let verifier = trusted(pinned.as_deref(), Some(&cp.verifier_key))?
        .ok_or_else(|| CliError::Refused("the server presented no verifier key".into()))?;
    let signed = verifier.open(&cp.note).map_err(|e| {
        mismatch(format!(
            "the server's checkpoint does not verify with key {}: {e}",
            verifier.name()
        ))
    })?;
    let saved = open_saved(saved_file.as_ref(), Some(&verifier))?;
    let size = signed.size;
    let mut streamed = Streamed::new();
    let prefix_size = saved.as_ref().map(|s| s.size);
    walk_entries(&mut client, size, |leaf| {
        streamed.push(leaf_hash(leaf), prefix_size);
        Ok(())
    })
    .await?;
    let root = streamed.builder.root();
    if root != signed.root {
        return Err(mismatch(format!(
            "the server's {size} entries hash to {}, not to its signed root {}",
            hex(&root),
            hex(&signed.root)
        )));
    }
    outln!(
        "{size} entries re-hashed: root {} matches the checkpoint signed by {}.",
        hex(&root),
        verifier.name()
    );
    if let Some(saved) = saved {
        check_saved(&saved, &signed.origin, streamed.prefix_root, size)?;
        // The server's own proof must agree too.
        let c = client
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                old_size: saved.size,
                new_size: size,
            })
            .await
            .map_err(status_error)?
            .into_inner();
        let proof = c
            .proof
            .iter()
            .map(|h| hash_of(h, "proof hash"))
            .collect::<Result<Vec<_>, _>>()?;
        verify_consistency(saved.size, size, &proof, &saved.root, &signed.root).map_err(|e| {
            mismatch(format!(
                "the server's consistency proof does not verify: {e}"
            ))
        })?;
        outln!(
            "The saved checkpoint of {} entries is a prefix of this log (consistency proof verified).",
            saved.size
        );
    }
    Ok(())
}

async fn verify_dir(
    dir: &Path,
    log_name: &str,
    pinned: Option<String>,
    saved_file: Option<Saved>,
) -> Result<(), CliError> {
    if !dir.join("conf").exists() && !dir.join("db").exists() {
        return Err(CliError::Usage(format!(
            "--data-dir: {} holds no lotline store",
            dir.display()
        )));
    }
    let dir = dir.to_path_buf();
    let log_name = log_name.to_string();
    tokio::task::spawn_blocking(move || verify_dir_blocking(&dir, &log_name, pinned, saved_file))
        .await
        .map_err(|e| CliError::Refused(format!("verification task failed: {e}")))?
}

fn verify_dir_blocking(
    dir: &Path,
    log_name: &str,
    pinned: Option<String>,
    saved_file: Option<Saved>,
) -> Result<(), CliError> {
    // The node's own key, if it is in the data dir (never created here).
    let key_path = dir.join(DEFAULT_KEY_FILE);
    let signer: Option<Signer> = if key_path.exists() {
        Some(
            keyfile::load_or_create(&key_path, log_name)
                .map_err(|e| CliError::Usage(e.to_string()))?,
        )
    } else {
        None
    };
    let backend = SledBackend::open(dir, 64 << 20)
        .map_err(|e| CliError::Usage(format!("--data-dir: {e} (is the node still running?)")))?;
    let store = Store::new(Arc::new(backend));
    let events = store.last_seq().map_err(|e| mismatch(e.to_string()))?;
    let verifier = trusted(pinned.as_deref(), None)?.or_else(|| {
        signer
            .as_ref()
            .and_then(|s| Verifier::parse(&s.verifier_key()).ok())
    });
    let saved = open_saved(saved_file.as_ref(), verifier.as_ref())?;
    let prefix_size = saved.as_ref().map(|s| s.size);
    let mut streamed = Streamed::new();
    // The tree stores a node over every eight records; the newest, unfinished group is checked
    // by the root.
    let mut group = Vec::with_capacity(LEAF_GROUP as usize);
    for seq in 1..=events {
        let bytes = store
            .record_bytes(seq)
            .map_err(|e| mismatch(e.to_string()))?
            .ok_or_else(|| {
                mismatch(format!(
                    "the event at sequence {seq} is missing from the log"
                ))
            })?;
        let record = Record::decode(&bytes)
            .map_err(|e| mismatch(format!("the event at sequence {seq}: {e}")))?;
        let leaf = leaf_hash(&bytes);
        group.push((seq, leaf, record));
        if seq.is_multiple_of(LEAF_GROUP) {
            check_group(&store, std::mem::take(&mut group))?;
        }
        streamed.push(leaf, prefix_size);
    }
    let root = streamed.builder.root();
    match store.tree_head().map_err(|e| mismatch(e.to_string()))? {
        Some((size, stored_root)) => {
            if size != events {
                return Err(mismatch(format!(
                    "the tree covers {size} events but the log holds {events}: events were removed or added outside lotline"
                )));
            }
            if stored_root != root {
                return Err(mismatch(format!(
                    "the log's {events} events hash to {}, not to the stored root {}",
                    hex(&root),
                    hex(&stored_root)
                )));
            }
            // The interior nodes that proofs are built from must agree as well.
            let from_nodes = store
                .root_from_nodes(size)
                .map_err(|e| mismatch(e.to_string()))?;
            if from_nodes != root {
                return Err(mismatch(
                    "the stored tree's interior nodes do not hash to the stored root".into(),
                ));
            }
        }
        None if events > 0 => {
            return Err(mismatch("the store has events but no Merkle tree".into()));
        }
        None => {}
    }
    outln!(
        "{events} events re-hashed offline: root {} matches the stored tree.",
        hex(&root)
    );
    if let Some(signer) = &signer {
        let cp = Checkpoint {
            origin: signer.name().to_string(),
            size: events,
            root,
        };
        out!("{}", signer.sign(&cp));
        outln!("verifier key: {}", signer.verifier_key());
    }
    if let Some(saved) = saved {
        check_saved(&saved, log_name, streamed.prefix_root, events)?;
        outln!(
            "The saved checkpoint of {} entries is a prefix of this log.",
            saved.size
        );
    }
    Ok(())
}
