//! End-to-end tests live in `tests/`, grouped by concern: `cli` (post, trace,
//! recall and friends through the real binary), `lineage` (answers against
//! independently computed ground truth, in order and shuffled), `restart`
//! (SIGKILL after acknowledged writes, SIGTERM draining, index rebuild) and
//! `discovery` (health and server reflection).
