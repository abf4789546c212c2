//! The log's Ed25519 signing key: a file holding the 32-byte seed in hex, created
//! with mode 0600 on first start when it is the default one in the data dir.

use std::io::Write;
use std::path::Path;

use lotline_merkle::{NoteError, Signer};

/// The key file in the data dir when none is configured.
pub const DEFAULT_KEY_FILE: &str = "log-signing.key";

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create signing key {path}: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("signing key {path} is not 64 hex digits (a 32-byte Ed25519 seed)")]
    Malformed { path: String },
    #[error("cannot gather randomness for a new signing key: {0}")]
    Random(String),
    #[error(transparent)]
    Name(#[from] NoteError),
}

/// Reads the key at `path`, or creates it there if the file does not exist.
pub fn load_or_create(path: &Path, log_name: &str) -> Result<Signer, KeyError> {
    Ok(Signer::new(log_name, &load_or_create_seed(path)?)?)
}

/// Reads the 32-byte Ed25519 seed at `path` (64 hex digits), or creates a random one there
/// (mode 0600) if the file does not exist.
pub fn load_or_create_seed(path: &Path) -> Result<[u8; 32], KeyError> {
    let shown = path.display().to_string();
    let seed = match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Malformed {
                path: shown.clone(),
            })?;
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Malformed {
                path: shown.clone(),
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| KeyError::Create {
                    path: shown.clone(),
                    source,
                })?;
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(path).map_err(|source| KeyError::Create {
                path: shown.clone(),
                source,
            })?;
            writeln!(file, "{}", hex::encode(seed))
                .and_then(|()| file.sync_all())
                .map_err(|source| KeyError::Create {
                    path: shown.clone(),
                    source,
                })?;
            seed
        }
        Err(source) => {
            return Err(KeyError::Read {
                path: shown,
                source,
            });
        }
    };
    Ok(seed)
}

/// The file in the data dir that names this node on NATS (its durable consumer).
pub const NODE_ID_FILE: &str = "node-id";

/// Reads this node's id from `<data_dir>/node-id`, or makes one up
/// (`node-` and 8 hex digits) and keeps it there, so a restarted node resumes
/// its own consumer.
pub fn load_or_create_node_id(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_string();
            if lotline_ingest::subject::is_token(&id) {
                Ok(id)
            } else {
                Err(format!(
                    "{} holds {id:?}, which cannot name a NATS consumer",
                    path.display()
                ))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 4];
            getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
            let id = format!("node-{}", hex::encode(bytes));
            std::fs::create_dir_all(data_dir)
                .and_then(|()| std::fs::write(&path, format!("{id}\n")))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k").join(DEFAULT_KEY_FILE);
        let first = load_or_create(&path, "lotline.test/log").unwrap();
        let second = load_or_create(&path, "lotline.test/log").unwrap();
        assert_eq!(first.verifier_key(), second.verifier_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            load_or_create(&path, "lotline.test/log"),
            Err(KeyError::Malformed { .. })
        ));
    }
}
