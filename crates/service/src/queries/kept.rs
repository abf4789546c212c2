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
    /// The build of lotline that wrote it ([`build`]): what the state holds depends on the
    /// checks of the code that made it, so another build's state is not taken.
    build: String,
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
    #[error("the state does not encode: {0}")]
    Encode(serde_json::Error),
    #[error("{path} {why}")]
    NotThisLog { path: PathBuf, why: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// This build of lotline: its version, the index version and the running executable's size
/// and modification time (a new build, an upgrade or a rebuild of the binary changes it).
/// `None` when the executable cannot be looked at: no state is then kept or taken.
fn build() -> Option<&'static str> {
    static BUILD: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BUILD
        .get_or_init(|| {
            let exe = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
            let modified = exe
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some(format!(
                "lotline {} index {} executable {} bytes modified {}.{:09}",
                env!("CARGO_PKG_VERSION"),
                lotline_store::INDEX_VERSION,
                exe.len(),
                modified.as_secs(),
                modified.subsec_nanos()
            ))
        })
        .as_deref()
}

/// Writes `state`, current to log size `upto` of `store`'s log (`store` sees at least that far),
/// to `path`. An empty log, or a build that cannot name itself, keeps nothing.
pub fn save(
    path: &Path,
    store: &Snapshot<'_>,
    upto: u64,
    state: &Maintained,
) -> Result<(), KeptError> {
    let Some(build) = build() else {
        return Ok(());
    };
    if upto == 0 {
        return Ok(());
    }
    let kept = Kept {
        format: FORMAT,
        build: build.to_string(),
        upto,
        root: hex::encode(store.tree_root(upto)?),
        state: state.save(),
    };
    let fresh = path.with_extension("json.new");
    let io = |cause| KeptError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let written = write(&fresh, &kept).and_then(|()| {
        std::fs::rename(&fresh, path).map_err(io)?;
        // The rename itself is durable once the directory is synced (a rename lost in a crash
        // would only leave the previous kept state, which a restart brings forward).
        match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io),
            _ => Ok(()),
        }
    });
    if written.is_err() {
        // A partial file must not hold space the log needs.
        let _ = std::fs::remove_file(&fresh);
    }
    written
}

/// `kept` as JSON in a new file at `path`, synced.
fn write(path: &Path, kept: &Kept) -> Result<(), KeptError> {
    let io = |cause| KeptError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, kept).map_err(KeptError::Encode)?;
    out.flush().map_err(io)?;
    out.get_ref().sync_all().map_err(io)
}

/// The state kept at `path` and the log size it is current to. `Ok(None)`: there is none. An
/// error says why a kept state is not taken: it does not read, or does not answer for this
/// log (another log, rules, format or build; a log shorter than it; a review it names
/// corrected since).
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
    let not_this = |why: String| {
        Err(KeptError::NotThisLog {
            path: path.to_path_buf(),
            why,
        })
    };
    if kept.format != FORMAT {
        return not_this(format!("is in format {}, not {FORMAT}", kept.format));
    }
    if Some(kept.build.as_str()) != build() {
        return not_this(format!("was written by another build ({})", kept.build));
    }
    if kept.upto == 0 || kept.upto > store.upto() {
        return not_this(format!(
            "is current to log size {}, and the log holds {}",
            kept.upto,
            store.upto()
        ));
    }
    if kept.root != hex::encode(store.tree_root(kept.upto)?) {
        return not_this(format!(
            "was written for another log (its root at size {} differs)",
            kept.upto
        ));
    }
    if !kept.state.under(rules) {
        return not_this("was made under other rules".to_string());
    }
    match Maintained::restore(store, kept.state)? {
        Some(state) => Ok(Some((kept.upto, state))),
        None => not_this("names a review that is no longer in the log".to_string()),
    }
}
