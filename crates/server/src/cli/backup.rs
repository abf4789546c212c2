//! `backup` and `restore`: an online, consistent copy of a node's log, and a new node made
//! from it.
//!
//! A backup is taken from a serving node over `GetEntries`, up to a signed checkpoint: the log
//! is append-only, so its first N entries never change while the node goes on writing. The
//! file is zstd-compressed: one JSON header line (the checkpoint's note and verifier key, and
//! in NATS mode where the stream resumes), then each entry as a big-endian `u32` length and
//! its bytes. `restore` re-hashes every entry against the signed root before it writes any
//! index, then builds the tree and the indexes from the log, as start-up does after a crash.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use lotline_merkle::{RootBuilder, leaf_hash};
use lotline_proto::v1;
use lotline_store::{Record, SledBackend, Store};
use serde::{Deserialize, Serialize};

use super::client::status_error;
use super::log::{hex, log_client, mismatch, open_checkpoint, trusted, walk_entries};
use super::{CliError, ClientArgs};

/// The format's name, first in every header.
const FORMAT: &str = "lotline-backup/1";
/// Entries written to the store at once on restore, and their most bytes.
const RESTORE_BATCH: usize = 10_000;
const RESTORE_BATCH_BYTES: usize = 64 << 20;
/// The largest entry a backup may hold (an event is at most 64 MiB as received).
const MAX_ENTRY_BYTES: usize = 128 << 20;
/// Where `restore` leaves the backup's checkpoint, for `lotline verify --checkpoint`.
pub(crate) const RESTORED_CHECKPOINT: &str = "backup-checkpoint.json";

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The file to write (written beside it under a temporary name, then renamed).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The backup file (`lotline backup --out`).
    file: PathBuf,
    /// The new node's data directory: missing or empty.
    #[arg(long)]
    data_dir: PathBuf,
    /// The verifier key to trust (name+keyhash+base64). Default: the one in the backup.
    #[arg(long)]
    key: Option<String>,
}

/// The header line.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    /// The signed note of the checkpoint the entries are the tree of.
    checkpoint: String,
    verifier_key: String,
    tree_size: u64,
    /// NATS mode: the node resumes the stream after this sequence (0: embedded).
    stream_position: u64,
    stream_identity: String,
    /// When the backup was taken (RFC 3339).
    taken: String,
}

pub(crate) async fn backup(args: BackupArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let mut client = log_client(&args.client).await?;
    // Where the node is in the stream, read before the checkpoint: every message up to the
    // position is within the entries the checkpoint covers once it covers `within`.
    let first = client
        .get_entries(v1::GetEntriesRequest { start: 0, count: 1 })
        .await
        .map_err(status_error)?
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(30);
    let checkpoint = loop {
        let cp = client
            .get_checkpoint(v1::GetCheckpointRequest { tree_size: 0 })
            .await
            .map_err(status_error)?
            .into_inner();
        if cp.tree_size >= first.stream_position_within {
            break cp;
        }
        if Instant::now() > deadline {
            return Err(CliError::Refused(format!(
                "the node's checkpoint stays at {} entries, short of the {} its stream position needs",
                cp.tree_size, first.stream_position_within
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (verifier, signed) = open_checkpoint(&checkpoint)?;
    let size = signed.size;
    let partial = partial_name(&args.out);
    let file = std::fs::File::create(&partial)
        .map_err(|e| CliError::Usage(format!("--out: cannot create {}: {e}", partial.display())))?;
    let write_error = |e: std::io::Error| CliError::Refused(format!("writing the backup: {e}"));
    let mut out = zstd::Encoder::new(BufWriter::new(file), 3).map_err(write_error)?;
    let header = Header {
        format: FORMAT.into(),
        checkpoint: checkpoint.note.clone(),
        verifier_key: checkpoint.verifier_key.clone(),
        tree_size: size,
        stream_position: first.stream_position,
        stream_identity: first.stream_identity.clone(),
        taken: chrono::Utc::now().to_rfc3339(),
    };
    let mut line = serde_json::to_vec(&header).map_err(|e| CliError::Refused(e.to_string()))?;
    line.push(b'\n');
    out.write_all(&line).map_err(write_error)?;
    let mut root = RootBuilder::new();
    let walked = walk_entries(&mut client, size, |leaf| {
        root.push(leaf_hash(leaf));
        let length = u32::try_from(leaf.len())
            .map_err(|_| mismatch(format!("entry {} is over 4 GiB", root.size() - 1)))?;
        out.write_all(&length.to_be_bytes()).map_err(write_error)?;
        out.write_all(leaf).map_err(write_error)
    })
    .await;
    if let Err(e) = walked {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    if root.root() != signed.root {
        let _ = std::fs::remove_file(&partial);
        return Err(mismatch(format!(
            "the node's {size} entries hash to {}, not to its signed root {}: no backup written",
            hex(&root.root()),
            hex(&signed.root)
        )));
    }
    let finished = (|| {
        let mut inner = out.finish()?;
        inner.flush()?;
        inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&partial, &args.out)?;
        match args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => std::fs::File::open(parent)?.sync_all(),
            None => Ok(()),
        }
    })();
    if let Err(e) = finished {
        let _ = std::fs::remove_file(&partial);
        return Err(write_error(e));
    }
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    outln!(
        "Backed up {size} entries to {} ({bytes} bytes, {:.1} s): root {} signed by {}.",
        args.out.display(),
        started.elapsed().as_secs_f64(),
        hex(&signed.root),
        verifier.name()
    );
    if first.stream_position > 0 {
        outln!(
            "A node restored from it resumes the stream after sequence {}.",
            first.stream_position
        );
    }
    Ok(())
}

/// `FILE.partial` beside `FILE`.
fn partial_name(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

pub(crate) async fn restore(args: RestoreArgs) -> Result<(), CliError> {
    tokio::task::spawn_blocking(move || restore_blocking(&args))
        .await
        .map_err(|e| CliError::Refused(format!("restore task failed: {e}")))?
}

/// What a finished restore found.
struct Restored {
    size: u64,
    root: String,
    signer: String,
    verifier_key: String,
    stream_position: u64,
}

/// Restores into `NEW.restoring` beside the data dir and renames it into place only once
/// everything is written, so a restore that fails at any point leaves nothing that could be
/// served (a half-written log, an unchecked prefix).
fn restore_blocking(args: &RestoreArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let dir = &args.data_dir;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CliError::Usage(format!(
            "--data-dir: {} is not empty; restore makes a new node in a new directory",
            dir.display()
        )));
    }
    let mut staging = dir.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        return Err(CliError::Usage(format!(
            "{} is left from a restore that did not finish: remove it first",
            staging.display()
        )));
    }
    let restored = match restore_into(args, &staging) {
        Ok(restored) => restored,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let moved = (|| {
        if dir.exists() {
            std::fs::remove_dir(dir)?;
        }
        std::fs::rename(&staging, dir)?;
        match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => std::fs::File::open(parent)?.sync_all(),
            None => Ok(()),
        }
    })();
    if let Err(e) = moved {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(CliError::Refused(format!(
            "moving the restored store into {}: {e}",
            dir.display()
        )));
    }
    outln!(
        "Restored {} entries into {} ({:.1} s): root {} signed by {}, re-hashed; tree and indexes built.",
        restored.size,
        dir.display(),
        started.elapsed().as_secs_f64(),
        restored.root,
        restored.signer
    );
    if args.key.is_none() {
        outln!(
            "The backup's own verifier key was trusted ({}): give --key to check it against the key you expect (without it, restore finds damage, not a forged backup).",
            restored.verifier_key
        );
    }
    if restored.stream_position > 0 {
        outln!(
            "Started with --nats-url on the same stream, the node resumes after sequence {}.",
            restored.stream_position
        );
    }
    outln!(
        "Check it: lotline verify --data-dir {} --checkpoint {}. It signs with a key of its own unless --signing-key names the original's.",
        dir.display(),
        dir.join(RESTORED_CHECKPOINT).display()
    );
    Ok(())
}

/// Reads the backup into a new store in `staging`: the checkpoint checked, every entry
/// re-hashed against its root, then the tree, the indexes and the stream position.
fn restore_into(args: &RestoreArgs, staging: &Path) -> Result<Restored, CliError> {
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.file.display())))?;
    let not_backup = |why: String| {
        CliError::Refused(format!(
            "{} is not a lotline backup: {why}",
            args.file.display()
        ))
    };
    let decoder = zstd::Decoder::new(file).map_err(|e| not_backup(e.to_string()))?;
    let mut input = BufReader::new(decoder);
    let mut line = Vec::new();
    input
        .by_ref()
        .take(1 << 20)
        .read_until(b'\n', &mut line)
        .map_err(|e| not_backup(e.to_string()))?;
    let header: Header =
        serde_json::from_slice(&line).map_err(|e| not_backup(format!("header: {e}")))?;
    if header.format != FORMAT {
        return Err(not_backup(format!("format {:?}", header.format)));
    }
    let verifier = trusted(args.key.as_deref(), Some(&header.verifier_key))?
        .ok_or_else(|| not_backup("no verifier key".into()))?;
    let signed = verifier.open(&header.checkpoint).map_err(|e| {
        mismatch(format!(
            "the backup's checkpoint does not verify with key {}: {e}",
            verifier.name()
        ))
    })?;
    if signed.size != header.tree_size {
        return Err(mismatch(format!(
            "the backup says {} entries, its checkpoint {}",
            header.tree_size, signed.size
        )));
    }
    std::fs::create_dir_all(staging)
        .map_err(|e| CliError::Usage(format!("{}: {e}", staging.display())))?;
    let backend = SledBackend::open(staging, crate::DEFAULT_CACHE_MB << 20)
        .map_err(|e| CliError::Usage(format!("--data-dir: {e}")))?;
    let store = Store::new(Arc::new(backend));
    let stored = |e: lotline_store::StoreError| {
        CliError::Refused(format!("writing {}: {e}", staging.display()))
    };
    let mut root = RootBuilder::new();
    let mut batch = Vec::with_capacity(RESTORE_BATCH);
    let mut batch_bytes = 0usize;
    let mut next_seq = 1u64;
    for index in 0..signed.size {
        let mut length = [0u8; 4];
        input
            .read_exact(&mut length)
            .map_err(|e| not_backup(format!("entry {index} of {}: {e}", signed.size)))?;
        let length = u32::from_be_bytes(length) as usize;
        if length > MAX_ENTRY_BYTES {
            return Err(not_backup(format!("entry {index} claims {length} bytes")));
        }
        let mut leaf = vec![0u8; length];
        input
            .read_exact(&mut leaf)
            .map_err(|e| not_backup(format!("entry {index} of {}: {e}", signed.size)))?;
        Record::decode(&leaf)
            .map_err(|e| mismatch(format!("entry {index} is not a lotline record: {e}")))?;
        root.push(leaf_hash(&leaf));
        batch_bytes += leaf.len();
        batch.push(leaf);
        if batch.len() == RESTORE_BATCH || batch_bytes >= RESTORE_BATCH_BYTES {
            let count = batch.len() as u64;
            store
                .restore_records(next_seq, std::mem::take(&mut batch))
                .map_err(stored)?;
            next_seq += count;
            batch_bytes = 0;
        }
    }
    if input
        .read(&mut [0u8; 1])
        .map_err(|e| not_backup(e.to_string()))?
        != 0
    {
        return Err(not_backup(format!(
            "bytes follow its {} entries",
            signed.size
        )));
    }
    if root.root() != signed.root {
        return Err(mismatch(format!(
            "the backup's {} entries hash to {}, not to its signed root {}",
            signed.size,
            hex(&root.root()),
            hex(&signed.root)
        )));
    }
    if !batch.is_empty() {
        store.restore_records(next_seq, batch).map_err(stored)?;
    }
    store.rebuild_tree().map_err(stored)?;
    store.rebuild_indexes().map_err(stored)?;
    if header.stream_position > 0 {
        store
            .restore_stream_position(header.stream_position, &header.stream_identity)
            .map_err(stored)?;
    }
    let saved = serde_json::json!({
        "checkpoint": header.checkpoint,
        "verifier_key": header.verifier_key,
    });
    std::fs::write(
        staging.join(RESTORED_CHECKPOINT),
        serde_json::to_vec_pretty(&saved).map_err(|e| CliError::Refused(e.to_string()))?,
    )
    .map_err(|e| CliError::Refused(format!("writing {RESTORED_CHECKPOINT}: {e}")))?;
    Ok(Restored {
        size: signed.size,
        root: hex(&signed.root),
        signer: verifier.name().to_string(),
        verifier_key: header.verifier_key,
        stream_position: header.stream_position,
    })
}
