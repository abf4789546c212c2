//! Request fields in domain terms: every door parses its callers' strings with these, so a lot,
//! an id, a time or a page means the same whichever door it came through.

use chrono::{DateTime, FixedOffset};
use lotline_domain::{AnomalyKind, AnomalyStatus, Chain, KindName, Verdict};

use crate::error::ServiceError;

/// A page when the caller asks for none, and the most one page holds.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1_000;

/// A lot to look up, required, in the form lotline stores it: a GS1 identifier written as an EPC
/// URN or a Digital Link on any domain becomes its canonical Digital Link (docs/epcis.md), so
/// either form finds the lot; a wrong check digit is an invalid argument.
pub fn lot(lot: &str) -> Result<String, ServiceError> {
    if lot.trim().is_empty() {
        return Err(ServiceError::invalid("lot", "is required"));
    }
    canonical_lot("lot", &id("lot", lot)?)
}

/// An optional lot filter (empty for none), in its stored form.
pub fn opt_lot(field: &str, lot: &str) -> Result<Option<String>, ServiceError> {
    Ok(Some(canonical_lot(field, &id(field, lot)?)?).filter(|s| !s.is_empty()))
}

fn canonical_lot(field: &str, lot: &str) -> Result<String, ServiceError> {
    Ok(lotline_domain::ids::lot_id(field, lot)?)
}

/// An id to look up: no id in the log contains control characters (validation refuses them),
/// and the key layout relies on it.
pub fn id(field: &str, id: &str) -> Result<String, ServiceError> {
    if id.chars().any(char::is_control) {
        return Err(ServiceError::invalid(field, "contains control characters"));
    }
    Ok(id.to_string())
}

/// An optional id filter: empty for none.
pub fn opt_id(field: &str, value: &str) -> Result<Option<String>, ServiceError> {
    Ok(Some(id(field, value)?).filter(|s| !s.is_empty()))
}

/// An optional chain filter: empty for none.
pub fn chain(chain: &str) -> Result<Option<Chain>, ServiceError> {
    match chain.trim() {
        "" => Ok(None),
        c => Chain::parse(c).map(Some).ok_or_else(|| {
            ServiceError::invalid(
                "chain",
                format!("unknown chain {c:?} (cocoa, coffee or textile)"),
            )
        }),
    }
}

/// An optional event kind filter: empty for none.
pub fn kind(kind: &str) -> Result<Option<KindName>, ServiceError> {
    match kind {
        "" => Ok(None),
        k => KindName::parse(k).map(Some).ok_or_else(|| {
            let known: Vec<&str> = KindName::ALL.iter().map(|k| k.as_str()).collect();
            ServiceError::invalid(
                "kind",
                format!("unknown kind {k:?} (one of {})", known.join(", ")),
            )
        }),
    }
}

/// An optional anomaly kind filter: empty for none.
pub fn anomaly_kind(kind: &str) -> Result<Option<AnomalyKind>, ServiceError> {
    match kind.trim() {
        "" => Ok(None),
        k => AnomalyKind::parse(k).map(Some).ok_or_else(|| {
            let known: Vec<&str> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
            ServiceError::invalid(
                "kind",
                format!("unknown anomaly kind {k:?} (one of {})", known.join(", ")),
            )
        }),
    }
}

/// An anomaly status filter: empty for any.
pub fn anomaly_status(status: &str) -> Result<Option<AnomalyStatus>, ServiceError> {
    match status.trim() {
        "" => Ok(None),
        s => AnomalyStatus::parse(s).map(Some).ok_or_else(|| {
            ServiceError::invalid(
                "status",
                format!("unknown status {s:?} (one of open, acknowledged, disputed)"),
            )
        }),
    }
}

/// An anomaly id to find: empty for any; otherwise it must have the form of one.
pub fn anomaly_id(field: &'static str, id: &str) -> Result<Option<String>, ServiceError> {
    match id.trim() {
        "" => Ok(None),
        id if lotline_domain::anomaly::is_anomaly_id(id) => Ok(Some(id.to_string())),
        id => Err(ServiceError::invalid(
            field,
            format!(
                "{id:?} is not an anomaly id (as the listing prints it: a kind, a dash, 16 hex \
                 digits)"
            ),
        )),
    }
}

/// A review's verdict, required.
pub fn verdict(verdict: &str) -> Result<Verdict, ServiceError> {
    Verdict::parse(verdict).ok_or_else(|| {
        ServiceError::invalid(
            "verdict",
            format!("{verdict:?}: one of acknowledged, disputed"),
        )
    })
}

/// A page size: 0 for the default, at most [`MAX_PAGE`].
pub fn page_limit(limit: u32) -> usize {
    match limit as usize {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    }
}

/// A numeric cursor this server gave out: empty for the start.
pub fn cursor(cursor: &str) -> Result<u64, ServiceError> {
    if cursor.is_empty() {
        return Ok(0);
    }
    cursor.parse().map_err(|_| {
        ServiceError::invalid(
            "cursor",
            format!("{cursor:?} is not a cursor this server gave out"),
        )
    })
}

/// An optional RFC 3339 time: empty for none.
pub fn time(field: &str, value: &str) -> Result<Option<DateTime<FixedOffset>>, ServiceError> {
    if value.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value).map(Some).map_err(|e| {
        ServiceError::invalid(field, format!("{value:?} is not an RFC 3339 time: {e}"))
    })
}

/// An optional ISO 3166-1 alpha-2 country code, upper-cased: empty for none.
pub fn country(value: &str) -> Result<Option<String>, ServiceError> {
    match value.trim() {
        "" => Ok(None),
        c if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            Ok(Some(c.to_ascii_uppercase()))
        }
        c => Err(ServiceError::invalid(
            "country",
            format!("{c:?} is not an ISO 3166-1 alpha-2 code"),
        )),
    }
}
