//! The tamper-evident log's mathematics, with no IO and nothing of lotline's:
//! RFC 6962 / RFC 9162 Merkle tree hashing ([`tree`]), inclusion and consistency
//! proofs and their verification ([`verify`]), and signed tree heads in the C2SP
//! signed-note checkpoint format ([`note`]).
//!
//! The tree is read through [`tree::NodeSource`]: the store answers it from the
//! perfect subtrees it keeps, tests from plain leaf lists. The verifiers need
//! nothing but hashes, so an auditor's tool can use them without a server.

pub mod note;
pub mod tree;
pub mod verify;

pub use note::{Checkpoint, NoteError, Signer, Verifier};
pub use tree::{
    Hash, LeafList, NodeSource, RootBuilder, consistency_proof, empty_root, inclusion_proof,
    leaf_hash, node_hash, root,
};
pub use verify::{VerifyError, verify_consistency, verify_inclusion};
