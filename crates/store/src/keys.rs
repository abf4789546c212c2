//! Key layout. Every logical tree is a one-byte prefix; ids are followed by a
//! 0x00 separator (validation forbids control characters in ids) and sequence
//! numbers are 8 bytes big-endian, so keys sort by id, then by sequence.

/// The log: `L seq` → record bytes.
pub const LOG: u8 = b'L';
/// `E event_id` → seq.
pub const EVENT_ID: u8 = b'E';
/// Lot index: `T lot 0x00 role seq` → (). Role `c` (created: the events that
/// create the lot, hence its inputs), `u` (consumed: the transforms it went into,
/// hence its outputs), `m` (mentioned by a ship, receive, pay or certificate).
pub const LOT: u8 = b'T';
/// `O org 0x00 seq` → ().
pub const ORG: u8 = b'O';
/// `C corrected_event_id 0x00 seq-of-correction` → ().
pub const CORRECTION: u8 = b'C';
/// `R org` → seq of its latest RegisterOrg.
pub const REGISTERED_ORG: u8 = b'R';
/// `S org 0x00 site` → seq.
pub const SITE: u8 = b'S';
/// `P plot 0x00 seq` → (): every registration of a plot (answers pick the latest
/// by event time, then event id, so arrival order does not matter).
pub const PLOT: u8 = b'P';
/// `U lot` → (): lots mentioned before any event created them, kept after their
/// creation arrives (candidates for ListUnknownLots; answers re-check each one
/// against the view of the log they are asked in).
pub const UNKNOWN: u8 = b'U';
/// `G org 0x00 seq` → (): every registration of an org (answers pick the latest
/// by event time, then event id, as for plots).
pub const ORG_REGISTRATION: u8 = b'G';
/// `K seq` → (): every Certify event (certificates are few and every audit
/// answer needs them all).
pub const CERTIFICATE: u8 = b'K';
/// `I site 0x00 seq` → (): every registration of a site, by site id, whichever
/// org registered it (imports find a location's owner by its id).
pub const SITE_ID: u8 = b'I';
/// `N gln 0x00 seq` → (): every registration of an org or a site that gives a
/// GLN (imports find the org of a PGLN and the site of an SGLN by it).
pub const GLN: u8 = b'N';
/// `A party 0x00 seq` → (): every org registration that gives the id other systems know the
/// org by (an EPCIS party id that is not a PGLN).
pub const PARTY: u8 = b'A';
/// `Y class 0x00 seq` → (): every registration of a product class (answers pick
/// the latest by event time, then event id, as for plots).
pub const CLASS: u8 = b'Y';
/// `Q id` → encoded RejectedInput (the quarantine; not part of the log).
pub const REJECTED: u8 = b'Q';
/// `H level index` → 32-byte hash of the perfect Merkle subtree covering leaves
/// `[index·2^level, (index+1)·2^level)` (leaf `i` is the event at sequence `i+1`).
/// Written as subtrees complete; never rewritten. Not an index: never rebuilt
/// silently, because it is what proves the log was not changed.
pub const TREE: u8 = b'H';
/// `M name` → metadata (index version, indexed-through sequence, tree head).
pub const META: u8 = b'M';

/// Every derived index prefix (rebuilt from the log).
pub const INDEXES: [u8; 14] = [
    EVENT_ID,
    LOT,
    ORG,
    CORRECTION,
    REGISTERED_ORG,
    SITE,
    PLOT,
    UNKNOWN,
    CERTIFICATE,
    ORG_REGISTRATION,
    SITE_ID,
    GLN,
    CLASS,
    PARTY,
];

pub const ROLE_CREATED: u8 = b'c';
pub const ROLE_CONSUMED: u8 = b'u';
pub const ROLE_MENTIONED: u8 = b'm';

pub const META_INDEX_VERSION: &[u8] = b"index_version";
pub const META_INDEXED_THROUGH: &[u8] = b"indexed_through";
/// Tree size (8 bytes, big-endian) ‖ root hash (32 bytes), written with every batch.
pub const META_TREE_HEAD: &[u8] = b"tree_head";
/// The last JetStream stream sequence applied (8 bytes, big-endian), written in the
/// same batch as the events it carried: a restarted node resumes after it.
pub const META_STREAM_POSITION: &[u8] = b"stream_position";

pub fn tree_key(level: u32, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(TREE);
    k.push(level as u8);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

pub fn seq_key(prefix: u8, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(prefix);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn id_key(prefix: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(prefix);
    k.extend_from_slice(id.as_bytes());
    k
}

/// `prefix id 0x00`: the prefix of every entry for `id`.
pub fn id_prefix(prefix: u8, id: &str) -> Vec<u8> {
    let mut k = id_key(prefix, id);
    k.push(0);
    k
}

pub fn id_seq_key(prefix: u8, id: &str, seq: u64) -> Vec<u8> {
    let mut k = id_prefix(prefix, id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn lot_role_prefix(lot: &str, role: u8) -> Vec<u8> {
    let mut k = id_prefix(LOT, lot);
    k.push(role);
    k
}

pub fn lot_key(lot: &str, role: u8, seq: u64) -> Vec<u8> {
    let mut k = lot_role_prefix(lot, role);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn meta_key(name: &[u8]) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name);
    k
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// The trailing big-endian sequence number of a key.
pub fn trailing_seq(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8).map(|n| &key[n..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub fn decode_seq(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}
