//! Proof verification exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 specify it: a
//! verifier needs only the hashes in the proof and the roots it trusts.

use crate::tree::{Hash, node_hash};

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof leads to root {computed}, not the expected {expected}")]
    RootMismatch { computed: String, expected: String },
    #[error("old size {old} is greater than new size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
}

fn hex(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose
/// root is `root`, given its audit path.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in path {
        if s == 0 {
            return Err(VerifyError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(VerifyError::WrongLength);
    }
    if r != *root {
        return Err(VerifyError::RootMismatch {
            computed: hex(&r),
            expected: hex(root),
        });
    }
    Ok(())
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the
/// tree of `new` leaves with root `new_root`, given a consistency proof.
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), VerifyError> {
    if old > new {
        return Err(VerifyError::SizesOutOfOrder { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(VerifyError::WrongLength);
        }
        if old_root != new_root {
            return Err(VerifyError::RootMismatch {
                computed: hex(old_root),
                expected: hex(new_root),
            });
        }
        return Ok(());
    }
    if old == 0 {
        // The empty tree is a prefix of every tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(VerifyError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(VerifyError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if s == 0 {
            return Err(VerifyError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(VerifyError::WrongLength);
    }
    if fr != *old_root {
        return Err(VerifyError::RootMismatch {
            computed: hex(&fr),
            expected: hex(old_root),
        });
    }
    if sr != *new_root {
        return Err(VerifyError::RootMismatch {
            computed: hex(&sr),
            expected: hex(new_root),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{LeafList, brute_root, consistency_proof, inclusion_proof, leaf_hash, root};

    fn tree(n: usize) -> LeafList {
        LeafList::from_leaves((0..n).map(|i| format!("leaf {i}").into_bytes()))
    }

    /// The audit path by brute force: the sibling subtree at every level of the
    /// RFC's recursion, computed from the leaves directly.
    fn brute_path(leaves: &[Hash], m: usize) -> Vec<Hash> {
        if leaves.len() <= 1 {
            return Vec::new();
        }
        let mut k = 1;
        while k * 2 < leaves.len() {
            k *= 2;
        }
        if m < k {
            let mut p = brute_path(&leaves[..k], m);
            p.push(brute_root(&leaves[k..]));
            p
        } else {
            let mut p = brute_path(&leaves[k..], m - k);
            p.push(brute_root(&leaves[..k]));
            p
        }
    }

    #[test]
    fn every_inclusion_proof_matches_brute_force_and_verifies() {
        for n in 1..=300usize {
            let t = tree(n);
            let r = root(&t, n as u64).unwrap();
            assert_eq!(r, brute_root(&t.leaves));
            for m in 0..n {
                let path = inclusion_proof(&t, m as u64, n as u64).unwrap();
                assert_eq!(path, brute_path(&t.leaves, m), "path of {m} in {n}");
                verify_inclusion(&t.leaves[m], m as u64, n as u64, &path, &r).unwrap();
                // Any other leaf, index or root fails.
                let wrong = leaf_hash(b"not a leaf");
                assert!(verify_inclusion(&wrong, m as u64, n as u64, &path, &r).is_err());
                if n > 1 {
                    let other = (m + 1) % n;
                    assert!(
                        verify_inclusion(&t.leaves[m], other as u64, n as u64, &path, &r).is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_tampering_fails() {
        for n in 1..=130usize {
            let t = tree(n);
            let new_root = root(&t, n as u64).unwrap();
            for m in 0..=n {
                let old_root = root(&t, m as u64).unwrap();
                let proof = consistency_proof(&t, m as u64, n as u64).unwrap();
                verify_consistency(m as u64, n as u64, &proof, &old_root, &new_root)
                    .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
                if m > 0 && m < n {
                    let forged = leaf_hash(b"forged");
                    assert!(
                        verify_consistency(m as u64, n as u64, &proof, &forged, &new_root).is_err()
                    );
                    let mut bad = proof.clone();
                    bad[0][0] ^= 1;
                    assert!(
                        verify_consistency(m as u64, n as u64, &bad, &old_root, &new_root).is_err()
                    );
                    assert!(
                        verify_consistency(m as u64, n as u64, &proof[1..], &old_root, &new_root)
                            .is_err()
                    );
                }
            }
        }
    }

    #[test]
    fn a_rewritten_history_is_not_consistent() {
        let t = tree(20);
        let mut rewritten = t.clone();
        rewritten.leaves[3] = leaf_hash(b"rewritten");
        let old_root = root(&t, 10).unwrap();
        let proof = consistency_proof(&rewritten, 10, 20).unwrap();
        let new_root = root(&rewritten, 20).unwrap();
        assert!(verify_consistency(10, 20, &proof, &old_root, &new_root).is_err());
    }
}
