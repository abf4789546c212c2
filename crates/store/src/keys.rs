//! Key layout. Every logical tree is a one-byte prefix; every id in a key is escaped
//! ([`push_id`]: 0x00 → 0x01 0x01, 0x01 → 0x01 0x02) and ended by 0x00, so no id,
//! whatever its bytes, can spell another id's key, while keys still sort by id and the
//! escaped beginning of an id is the beginning of its escaped form. Sequence numbers are
//! 8 bytes big-endian, so keys sort by id, then by sequence.

/// The log: `L seq` → record bytes.
pub const LOG: u8 = b'L';
/// `E h seq` → (), where `h` is the first [`EVENT_ID_HASH`] bytes of the SHA-256 of the event
/// id ([`event_id_key`]): the event id index, 17 bytes a key whatever the id's length. Ids
/// whose hashes share those bytes share the prefix, so a lookup reads the events under it and
/// compares their ids (the org that first used an id is the recorded event's org).
pub const EVENT_ID: u8 = b'E';

/// Bytes of an event id's SHA-256 in its index key: two ids share them by chance about once
/// in 2^64 pairs; a lookup compares the ids, so one that shares them (by chance, or made to)
/// costs a read, never a wrong answer.
pub const EVENT_ID_HASH: usize = 8;
/// Lot index: `T lot 0x00 role first_seq` → the later sequences of the same batch that name
/// the lot in that role ([`encode_postings`]): one key per lot, role and batch, not per event.
/// Role `c` (created: the events that create the lot, hence its inputs), `u` (consumed: the
/// transforms it went into, hence its outputs), `m` (mentioned by a ship, receive, pay or
/// certificate). A key with an empty value is one event (as index version 5 wrote every entry).
pub const LOT: u8 = b'T';
/// `O org 0x00 first_seq` → the org's other sequences written in the same batch
/// ([`encode_postings`]): one key per org per batch, not per event. A key with an empty value
/// is one event (as index version 4 wrote every entry).
pub const ORG: u8 = b'O';
/// `C corrected_event_id 0x00 seq-of-correction` → ().
pub const CORRECTION: u8 = b'C';
/// `R org` → seq of its latest RegisterOrg.
pub const REGISTERED_ORG: u8 = b'R';
/// `S org site` → seq.
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
/// `B member 0x00 seq` → (): every co-op's confirmation that `member` is its member (certificate
/// answers read a farm's confirmations with its registrations). No release before this one
/// wrote such an event, so older data dirs need no rebuild for it.
pub const MEMBER: u8 = b'B';
/// `W anomaly 0x00 seq` → (): every auditor's review of the anomaly with that id (answers that
/// show an anomaly show its reviews). No release before this one wrote a review, so older data
/// dirs need no rebuild for it.
pub const REVIEW: u8 = b'W';
/// `Q id` → encoded RejectedInput (the quarantine; not part of the log).
pub const REJECTED: u8 = b'Q';
/// `H level index` → 32-byte hash of the perfect Merkle subtree covering leaves
/// `[index·2^level, (index+1)·2^level)` (leaf `i` is the event at sequence `i+1`).
/// Written as subtrees complete; never rewritten. Not an index: never rebuilt
/// silently, because it is what proves the log was not changed.
pub const TREE: u8 = b'H';
/// `D kind 0x00 name 0x00` → a record kept beside the log (named queries, subscriptions): this
/// node's state, not part of the log, the tree or the indexes. Data dirs of releases before it
/// simply have none.
pub const KEPT: u8 = b'D';
/// `M name` → metadata (index version, indexed-through sequence, tree head).
pub const META: u8 = b'M';

/// Every derived index prefix (rebuilt from the log).
pub const INDEXES: [u8; 16] = [
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
    MEMBER,
    REVIEW,
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
/// Which stream that position is in (its name and creation time, as text): a stream deleted
/// and created again under the same name is another stream.
pub const META_STREAM_IDENTITY: &[u8] = b"stream_identity";

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

/// Appends `id` escaped and ended: 0x00 becomes 0x01 0x01, 0x01 becomes 0x01 0x02, every other
/// byte stays, then 0x00. The ending byte appears nowhere else, so the encoding is injective and
/// ends where the id ends; the mapping keeps byte order, so keys sort by id.
pub fn push_id(key: &mut Vec<u8>, id: &str) {
    key.reserve(id.len() + 1);
    for &b in id.as_bytes() {
        match b {
            0 => key.extend_from_slice(&[1, 1]),
            1 => key.extend_from_slice(&[1, 2]),
            b => key.push(b),
        }
    }
    key.push(0);
}

/// The id at the start of `bytes` (written by [`push_id`]) and what follows its end, or `None`
/// if `bytes` does not start with a whole escaped id.
pub fn split_id(bytes: &[u8]) -> Option<(String, &[u8])> {
    let mut id = Vec::with_capacity(bytes.len());
    let mut n = 0;
    while n < bytes.len() {
        match bytes[n] {
            0 => return Some((String::from_utf8(id).ok()?, &bytes[n + 1..])),
            1 => {
                id.push(bytes.get(n + 1)?.checked_sub(1)?);
                n += 2;
            }
            b => {
                id.push(b);
                n += 1;
            }
        }
    }
    None
}

/// `prefix id`, the id escaped and ended ([`push_id`]): the key of a one-entry-per-id tree, and
/// the prefix of every entry for `id` in the others.
pub fn id_key(prefix: u8, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + id.len());
    k.push(prefix);
    push_id(&mut k, id);
    k
}

/// The prefix of the event id index entries of `event_id` and of any id whose hash begins the
/// same way.
pub fn event_id_prefix(event_id: &str) -> Vec<u8> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(event_id.as_bytes());
    let mut k = Vec::with_capacity(1 + EVENT_ID_HASH + 8);
    k.push(EVENT_ID);
    k.extend_from_slice(&hash[..EVENT_ID_HASH]);
    k
}

/// The event id index entry of the event `event_id` at `seq`.
pub fn event_id_key(event_id: &str, seq: u64) -> Vec<u8> {
    let mut k = event_id_prefix(event_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of every entry for `id` (the same bytes as [`id_key`]).
pub fn id_prefix(prefix: u8, id: &str) -> Vec<u8> {
    id_key(prefix, id)
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

pub fn kept_prefix(kind: &str) -> Vec<u8> {
    id_key(KEPT, kind)
}

pub fn kept_key(kind: &str, name: &str) -> Vec<u8> {
    let mut k = kept_prefix(kind);
    push_id(&mut k, name);
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

/// The id of a `prefix id …` key.
pub fn key_id(key: &[u8]) -> Option<String> {
    split_id(key.get(1..)?).map(|(id, _)| id)
}

/// The trailing big-endian sequence number of a key.
pub fn trailing_seq(key: &[u8]) -> Option<u64> {
    let tail = key.len().checked_sub(8).map(|n| &key[n..])?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// The value of a posting key whose key ends in `seqs[0]`: every later sequence as the LEB128
/// varint of its distance from the one before. `seqs` ascends.
pub fn encode_postings(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(seqs.len().saturating_sub(1));
    for pair in seqs.windows(2) {
        let mut d = pair[1] - pair[0];
        loop {
            let byte = (d & 0x7f) as u8;
            d >>= 7;
            if d == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The sequences of a posting key ending in `first` with `value` ([`encode_postings`]);
/// `None` if the value is cut short or overflows.
pub fn decode_postings(first: u64, value: &[u8]) -> Option<Vec<u64>> {
    let mut seqs = vec![first];
    let (mut d, mut shift, mut last) = (0u64, 0u32, first);
    for &b in value {
        if shift > 63 {
            return None;
        }
        d |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            last = last.checked_add(d)?;
            seqs.push(last);
            d = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    (shift == 0).then_some(seqs)
}

pub fn decode_seq(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_decode_to_what_was_encoded_and_refuse_cut_values() {
        for seqs in [
            vec![7],
            vec![1, 2, 3],
            vec![5, 200, 201, 70_000, 1 << 40, u64::MAX],
        ] {
            let value = encode_postings(&seqs);
            assert_eq!(decode_postings(seqs[0], &value), Some(seqs.clone()));
        }
        // An entry as index version 4 wrote it: the key's sequence alone.
        assert_eq!(decode_postings(9, &[]), Some(vec![9]));
        // A varint cut short, or running past 64 bits.
        assert_eq!(decode_postings(1, &[0x80]), None);
        assert_eq!(decode_postings(1, &[0xff; 11]), None);
        assert_eq!(decode_postings(u64::MAX, &[1]), None);
    }

    #[test]
    fn no_id_spells_another_ids_key() {
        // The forgery: a NUL-suffixed lot id must not land among the lot's entries.
        let honest = lot_role_prefix("CC-H-1", ROLE_CREATED);
        let mut forged = lot_role_prefix("CC-H-1\u{0}c", ROLE_CREATED);
        forged.extend_from_slice(&7u64.to_be_bytes());
        assert!(!forged.starts_with(&honest));
        assert!(!forged.starts_with(&id_prefix(LOT, "CC-H-1")));
        let ids = [
            "",
            "a",
            "a\u{0}",
            "a\u{1}",
            "a\u{1}\u{1}",
            "a\u{0}c",
            "ab",
            "b",
            "\u{0}",
        ];
        for a in ids {
            for b in ids {
                let (ka, kb) = (id_key(LOT, a), id_key(LOT, b));
                assert_eq!(a == b, ka == kb, "{a:?} {b:?}");
                assert!(
                    a == b || !kb.starts_with(&ka),
                    "{a:?} is a key prefix of {b:?}"
                );
                assert_eq!(a.cmp(b), ka.cmp(&kb), "order of {a:?} and {b:?}");
                assert_eq!(key_id(&id_seq_key(PLOT, a, 9)).as_deref(), Some(a));
            }
        }
    }

    #[test]
    fn an_ids_beginning_is_its_keys_beginning() {
        let mut prefix = vec![LOT];
        push_id(&mut prefix, "urn:a\u{1}");
        prefix.pop();
        assert!(id_key(LOT, "urn:a\u{1}b").starts_with(&prefix));
        assert_eq!(split_id(&[b'a', 1]), None, "an unfinished escape");
        assert_eq!(split_id(b"abc"), None, "no ending");
    }
}
