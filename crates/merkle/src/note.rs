//! Signed tree heads in the C2SP signed-note checkpoint format
//! (<https://c2sp.org/tlog-checkpoint>, <https://c2sp.org/signed-note>):
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//!
//! — <key name> <base64(key id ‖ Ed25519 signature)>
//! ```
//!
//! The signature covers the text before the blank line, final newline included.
//! The key id is the first four bytes of `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public
//! key)`, and the verifier key is written `<name>+<hex key id>+<base64(0x01 ‖
//! public key)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::tree::Hash;

/// The Ed25519 signature type byte of signed notes.
const ED25519: u8 = 0x01;

/// Why a note or key is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("key name {0:?} is empty or contains whitespace or '+'")]
    BadName(String),
    #[error("verifier key is malformed: {0}")]
    BadVerifierKey(String),
    #[error("note is malformed: {0}")]
    Malformed(String),
    #[error("no signature by {0} on the note")]
    NoSignature(String),
    #[error("the signature by {0} does not verify")]
    BadSignature(String),
}

/// A checkpoint's content: which log, how many leaves, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The signed part of the note: three lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
        return Err(NoteError::BadName(name.to_string()));
    }
    Ok(())
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(public);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Signs checkpoints with an Ed25519 key under a name.
pub struct Signer {
    name: String,
    key: SigningKey,
}

impl Signer {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Signer {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn verifier_key(&self) -> String {
        let public = self.public_key();
        let id = key_id(&self.name, &public);
        let mut typed = vec![ED25519];
        typed.extend_from_slice(&public);
        format!(
            "{}+{}+{}",
            self.name,
            id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            STANDARD.encode(typed)
        )
    }

    /// The whole signed note for `checkpoint`. Ed25519 is deterministic, so the
    /// same checkpoint always gets the same note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        let signature = self.key.sign(body.as_bytes());
        let mut blob = key_id(&self.name, &self.public_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!("{body}\n\u{2014} {} {}\n", self.name, STANDARD.encode(blob))
    }
}

/// Verifies notes signed by one key.
#[derive(Debug, Clone)]
pub struct Verifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl Verifier {
    /// Parses a verifier key `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(why.to_string());
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected name+keyid+key"));
        };
        check_name(name)?;
        let typed = STANDARD
            .decode(key_b64)
            .map_err(|_| bad("key is not base64"))?;
        if typed.len() != 33 || typed[0] != ED25519 {
            return Err(bad("not an Ed25519 key (0x01 followed by 32 bytes)"));
        }
        let mut public = [0u8; 32];
        public.copy_from_slice(&typed[1..]);
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid Ed25519 public key"))?;
        let id = key_id(name, &public);
        let id_text: String = id.iter().map(|b| format!("{b:02x}")).collect();
        if !id_hex.eq_ignore_ascii_case(&id_text) {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(Verifier {
            name: name.to_string(),
            id,
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the note's signature by this key and returns the checkpoint it signs.
    pub fn open(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let (body, signatures) = note
            .rsplit_once("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let body = format!("{body}\n");
        let mut found = false;
        for line in signatures.lines().filter(|l| !l.is_empty()) {
            let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| {
                NoteError::Malformed(format!(
                    "signature line {line:?} does not start with an em dash"
                ))
            })?;
            let (name, blob) = rest.split_once(' ').ok_or_else(|| {
                NoteError::Malformed(format!("signature line {line:?} has no signature"))
            })?;
            if name != self.name {
                continue;
            }
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| NoteError::Malformed("signature is not base64".into()))?;
            if blob.len() != 68 || blob[..4] != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            self.key
                .verify_strict(body.as_bytes(), &signature)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            found = true;
        }
        if !found {
            return Err(NoteError::NoSignature(self.name.clone()));
        }
        parse_body(&body)
    }
}

/// Parses a checkpoint body (without checking any signature).
pub fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
    let mut lines = body.lines();
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or_else(|| NoteError::Malformed("no origin line".into()))?;
    // A decimal number without sign or leading zeros, as C2SP requires.
    let size = lines
        .next()
        .filter(|s| {
            s == &"0"
                || (!s.starts_with('0') && !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        })
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| NoteError::Malformed("second line is not a tree size".into()))?;
    let root_b64 = lines
        .next()
        .ok_or_else(|| NoteError::Malformed("no root hash line".into()))?;
    let root: Hash = STANDARD
        .decode(root_b64)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| NoteError::Malformed("root hash is not 32 bytes of base64".into()))?;
    Ok(Checkpoint {
        origin: origin.to_string(),
        size,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new("lotline.example/log", &[7u8; 32]).unwrap()
    }

    #[test]
    fn signs_and_verifies_checkpoints() {
        let s = signer();
        let cp = Checkpoint {
            origin: "lotline.example/log".into(),
            size: 42,
            root: [9u8; 32],
        };
        let note = s.sign(&cp);
        assert!(note.starts_with("lotline.example/log\n42\nCQkJ"));
        assert!(note.contains("\n\n\u{2014} lotline.example/log "));
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v.open(&note).unwrap(), cp);
        assert_eq!(s.sign(&cp), note, "Ed25519 signatures are deterministic");
    }

    #[test]
    fn tampered_notes_and_foreign_keys_fail() {
        let s = signer();
        let cp = Checkpoint {
            origin: "lotline.example/log".into(),
            size: 42,
            root: [9u8; 32],
        };
        let note = s.sign(&cp);
        let v = Verifier::parse(&s.verifier_key()).unwrap();
        let tampered = note.replacen("42", "43", 1);
        assert!(matches!(v.open(&tampered), Err(NoteError::BadSignature(_))));
        let other = Signer::new("lotline.example/log", &[8u8; 32]).unwrap();
        let v2 = Verifier::parse(&other.verifier_key()).unwrap();
        assert!(matches!(v2.open(&note), Err(NoteError::NoSignature(_))));
        assert!(Verifier::parse("name+00000000+AAAA").is_err());
        assert!(parse_body("log\n+42\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n").is_err());
        assert!(parse_body("log\n042\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n").is_err());
        let mut key = s.verifier_key();
        key.replace_range(key.find('+').unwrap() + 1..key.find('+').unwrap() + 3, "zz");
        assert!(Verifier::parse(&key).is_err());
    }
}
