//! What happened to an event offered to the log.

use chrono::{DateTime, Utc};

/// Why an event was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Structurally invalid: undecodable, missing or malformed fields.
    Invalid,
    /// The recording org has not been registered.
    UnregisteredOrg,
    /// The event id is already in the log with different content.
    Conflict,
}

impl RejectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Invalid => "invalid",
            RejectKind::UnregisteredOrg => "unregistered_org",
            RejectKind::Conflict => "conflict",
        }
    }
}

/// What happened to one submitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Appended at `seq`, recorded at `record_time`.
    Accepted {
        seq: u64,
        record_time: DateTime<Utc>,
    },
    /// The same event is already in the log at `seq`.
    Duplicate { seq: u64 },
    /// Refused, and kept in the quarantine.
    Rejected { kind: RejectKind, reason: String },
}
