//! The maintained audit state kept across restarts, as a file in the data dir (issue 18): without
//! it, the first listing question after a start builds the state from the whole log, which takes
//! minutes at ten million events.
//!
//! The file is derived data, like an index. It names the log it was made from (the log's size
//! and root when it was written); a file of another log, of other rules, in another format or
//! unreadable is set aside and the state built again. It is written whole or not at all (a new
//! file, then a rename).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use lotline_domain::audit::maintained::{Maintained, Saved};
use lotline_domain::audit::rules::Rules;
use lotline_store::{Snapshot, StoreError};
use serde::{Deserialize, Serialize};

/// The kept state's file name in the data dir.
pub const FILE: &str = "audit-state.json";

/// The format written; a file in another is not read.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Kept {
    format: u32,
    /// The log size the state is current to.
    upto: u64,
    /// The log's root at that size, in hex.
    root: String,
    state: Saved,
}

/// Why a kept state was not written or not taken.
#[derive(Debug, thiserror::Error)]
pub enum KeptError {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path} does not decode: {cause}")]
    Decode {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Writes `state`, current to log size `upto` of `store`'s log (`store` sees at least that far),
/// to `path`.
pub fn save(
    path: &Path,
    store: &Snapshot<'_>,
    upto: u64,
    state: &Maintained,
) -> Result<(), KeptError> {
    let kept = Kept {
        format: FORMAT,
        upto,
        root: hex::encode(store.tree_root(upto)?),
        state: state.save(),
    };
    let io = |cause| KeptError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let fresh = path.with_extension("json.new");
    let file = std::fs::File::create(&fresh).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, &kept).map_err(|cause| KeptError::Decode {
        path: fresh.clone(),
        cause,
    })?;
    out.flush().map_err(io)?;
    out.get_ref().sync_all().map_err(io)?;
    std::fs::rename(&fresh, path).map_err(io)
}

/// The state kept at `path` and the log size it is current to, when there is one for `store`'s
/// log and `rules`. `Ok(None)`: no file, or one that does not answer for this log (another log,
/// rules or format; a log shorter than it; a review it names missing).
pub fn load(
    path: &Path,
    store: &Snapshot<'_>,
    rules: &Rules,
) -> Result<Option<(u64, Maintained)>, KeptError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(KeptError::Io {
                path: path.to_path_buf(),
                cause,
            });
        }
    };
    let kept: Kept = serde_json::from_slice(&bytes).map_err(|cause| KeptError::Decode {
        path: path.to_path_buf(),
        cause,
    })?;
    if kept.format != FORMAT
        || kept.upto == 0
        || kept.upto > store.upto()
        || !kept.state.under(rules)
        || kept.root != hex::encode(store.tree_root(kept.upto)?)
    {
        return Ok(None);
    }
    Ok(Maintained::restore(store, kept.state)?.map(|state| (kept.upto, state)))
}
