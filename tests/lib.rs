//! End-to-end tests live in `tests/`, grouped by concern: `cli` (post, trace,
//! recall and friends through the real binary), `lineage` (answers against
//! independently computed ground truth, in order and shuffled), `restart`
//! (SIGKILL after acknowledged writes, SIGTERM draining under load, index
//! rebuild), `discovery` (health and server reflection) and `integrity` (proofs
//! checked by the independent verifier in `tools/rfc6962_verify.py`, checkpoints
//! by ed25519-dalek, and `lotline verify` finding changed, removed and rewritten
//! history).
