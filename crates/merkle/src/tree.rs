//! Merkle Tree Hash and proofs exactly as RFC 6962 §2.1 (RFC 9162 §2.1) defines
//! them, computed from perfect subtrees.
//!
//! A perfect subtree at `(level, index)` covers leaves `[index·2^level,
//! (index+1)·2^level)`. Every range the RFC's recursions ask for splits into
//! such subtrees, so a tree that keeps them (about two hashes per leaf, each
//! written once) answers a root or a proof with O(log n) lookups.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ bytes)`: the hash of a leaf.
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Where the hashes of perfect subtrees come from.
pub trait NodeSource {
    type Error;
    /// The hash of the perfect subtree at `(level, index)`; level 0 is a leaf hash.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two strictly below `n` (`n > 1`).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]), for the ranges RFC 6962's recursions produce (`start` is a
/// multiple of the largest power of two not above `end - start`).
pub fn subtree_root<S: NodeSource>(src: &S, start: u64, end: u64) -> Result<Hash, S::Error> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros(), start / n);
    }
    let k = split(n);
    let left = subtree_root(src, start, start + k)?;
    let right = subtree_root(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The Merkle Tree Hash of the first `size` leaves.
pub fn root<S: NodeSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_root(src, 0, size)
}

/// The audit path of leaf `index` in the tree of `size` leaves (RFC 6962 PATH),
/// nearest sibling first. `index < size`.
pub fn inclusion_proof<S: NodeSource>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut path = Vec::new();
    path_into(src, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_into<S: NodeSource>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < start + k {
        path_into(src, m, start, start + k, out)?;
        out.push(subtree_root(src, start + k, end)?);
    } else {
        path_into(src, m, start + k, end, out)?;
        out.push(subtree_root(src, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `old` leaves to the tree of `new`
/// leaves (RFC 6962 PROOF). Empty when `old` is 0 or equals `new`.
pub fn consistency_proof<S: NodeSource>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, S::Error> {
    let mut proof = Vec::new();
    if old == 0 || old >= new {
        return Ok(proof);
    }
    subproof_into(src, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

fn subproof_into<S: NodeSource>(
    src: &S,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(subtree_root(src, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof_into(src, m, start, start + k, complete, out)?;
        out.push(subtree_root(src, start + k, end)?);
    } else {
        subproof_into(src, m - k, start + k, end, false, out)?;
        out.push(subtree_root(src, start, start + k)?);
    }
    Ok(())
}

/// A tree held as its leaf hashes, computing nodes on demand: the reference the
/// stored tree is tested against, and what a verifier builds from downloaded entries.
#[derive(Debug, Clone, Default)]
pub struct LeafList {
    pub leaves: Vec<Hash>,
}

impl LeafList {
    pub fn from_leaves<I: IntoIterator<Item = B>, B: AsRef<[u8]>>(leaves: I) -> Self {
        LeafList {
            leaves: leaves.into_iter().map(|b| leaf_hash(b.as_ref())).collect(),
        }
    }
}

impl NodeSource for LeafList {
    type Error = std::convert::Infallible;

    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let width = 1usize << level;
        let start = index as usize * width;
        Ok(brute_root(&self.leaves[start..start + width]))
    }
}

/// MTH of a list of leaf hashes by the RFC's definition, recursively.
pub fn brute_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&brute_root(&leaves[..k]), &brute_root(&leaves[k..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves of the RFC 6962 reference test vectors (certificate-transparency
    /// merkle_tree_test), and the roots of their first 1..=8 leaves.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn hexes(hashes: Vec<Hash>) -> Vec<String> {
        hashes.iter().map(hex::encode).collect()
    }

    fn vectors() -> LeafList {
        LeafList::from_leaves(LEAVES.iter().map(|h| hex::decode(h).unwrap()))
    }

    #[test]
    fn roots_match_the_rfc_6962_test_vectors() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let all = vectors();
        for (n, expected) in ROOTS.iter().enumerate() {
            let prefix = LeafList {
                leaves: all.leaves[..=n].to_vec(),
            };
            assert_eq!(
                hex::encode(root(&prefix, n as u64 + 1).unwrap()),
                *expected,
                "root of {} leaves",
                n + 1
            );
        }
    }

    #[test]
    fn paths_match_the_rfc_6962_test_vectors() {
        // Leaf 0 of 8, leaf 5 of 8, leaf 2 of 3 (certificate-transparency vectors).
        let tree = vectors();
        let path: Vec<String> = hexes(inclusion_proof(&tree, 0, 8).unwrap());
        assert_eq!(
            path,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        let path: Vec<String> = hexes(inclusion_proof(&tree, 5, 8).unwrap());
        assert_eq!(
            path,
            vec![
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        let path: Vec<String> = hexes(inclusion_proof(&tree, 2, 3).unwrap());
        assert_eq!(
            path,
            vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]
        );
    }

    #[test]
    fn consistency_matches_the_rfc_6962_test_vectors() {
        let tree = vectors();
        let proof: Vec<String> = hexes(consistency_proof(&tree, 1, 8).unwrap());
        assert_eq!(
            proof,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        let proof: Vec<String> = hexes(consistency_proof(&tree, 6, 8).unwrap());
        assert_eq!(
            proof,
            vec![
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        let proof: Vec<String> = hexes(consistency_proof(&tree, 2, 5).unwrap());
        assert_eq!(
            proof,
            vec![
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
    }
}

/// Computes the root of a stream of leaves in O(log n) memory: the tree's
/// perfect subtrees so far, right-folded at the end as RFC 6962 does.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    /// (level, hash) of the perfect subtrees, largest first.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl RootBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next leaf's hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(level, left)) = self.stack.last() {
            if level != node.0 {
                break;
            }
            self.stack.pop();
            node = (level + 1, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle Tree Hash of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut nodes = self.stack.iter().rev();
        match nodes.next() {
            None => empty_root(),
            Some(&(_, last)) => nodes.fold(last, |acc, (_, left)| node_hash(left, &acc)),
        }
    }
}

#[cfg(test)]
mod builder_tests {
    use super::*;

    #[test]
    fn the_streaming_root_equals_the_recursive_one() {
        let mut b = RootBuilder::new();
        assert_eq!(b.root(), empty_root());
        let mut leaves = Vec::new();
        for n in 0..200u32 {
            let h = leaf_hash(&n.to_be_bytes());
            leaves.push(h);
            b.push(h);
            assert_eq!(b.root(), brute_root(&leaves), "size {}", n + 1);
        }
    }
}
