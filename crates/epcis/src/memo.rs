//! Per-thread memos of pure functions of identifiers. A document names each lot in every event
//! that makes, moves or uses it, and the importer reads each name more than once (to ask the
//! registry, to map the event, to hash it), so parsing an identifier again is most of the work
//! these functions would repeat.

use std::cell::RefCell;
use std::thread::LocalKey;

// Keyed by identifiers from the document. foldhash is seeded per process but only minimally
// resistant to chosen collisions; what bounds the harm of a document made to collide is the
// memo's size (it starts again at `MEMO_ENTRIES`), and such a document only slows its own
// import. It hashes a short string several times faster than SipHash.
use foldhash::{HashMap, HashMapExt};

/// Entries one memo holds before it starts again (a few MiB of identifiers).
const MEMO_ENTRIES: usize = 16_384;

/// One function's answers by argument.
pub(crate) type Memo<V> = RefCell<HashMap<Box<str>, V>>;

/// An empty memo, for a `thread_local!` initialiser.
pub(crate) fn empty<V>() -> Memo<V> {
    RefCell::new(HashMap::new())
}

/// `compute(key)`, remembered in this thread's `memo`. `compute` must be a pure function of
/// `key` that does not use the same memo.
pub(crate) fn remembered<V: Clone>(
    memo: &'static LocalKey<Memo<V>>,
    key: &str,
    compute: impl FnOnce(&str) -> V,
) -> V {
    memo.with_borrow_mut(|known| {
        if let Some(answer) = known.get(key) {
            return answer.clone();
        }
        let answer = compute(key);
        if known.len() >= MEMO_ENTRIES {
            known.clear();
        }
        known.insert(key.into(), answer.clone());
        answer
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static LENGTHS: Memo<usize> = empty();
        static CALLS: Cell<usize> = const { Cell::new(0) };
    }

    fn length(key: &str) -> usize {
        remembered(&LENGTHS, key, |k| {
            CALLS.set(CALLS.get() + 1);
            k.len()
        })
    }

    #[test]
    fn a_key_asked_again_is_answered_without_computing_and_the_memo_stays_bounded() {
        assert_eq!(length("abc"), 3);
        assert_eq!(length("abc"), 3);
        assert_eq!(CALLS.get(), 1);
        for n in 0..MEMO_ENTRIES + 10 {
            assert_eq!(length(&"x".repeat(n % 300)), n % 300);
            length(&n.to_string());
        }
        assert!(LENGTHS.with_borrow(|m| m.len()) <= MEMO_ENTRIES);
        let before = CALLS.get();
        assert_eq!(length("abcd"), 4);
        assert_eq!(length("abcd"), 4);
        assert_eq!(CALLS.get(), before + 1);
    }
}
