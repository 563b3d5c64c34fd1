//! RFC 6962 / RFC 9162 Merkle tree hashing, the Go `sumdb/tlog` stored-hash layout, and inclusion and
//! consistency proofs (generation, and verification as RFC 9162 §2.1.3.2 and §2.1.4.2 specify).
//!
//! Stored hashes: every leaf hash and every root of a complete power-of-two subtree, in the order
//! they become known while appending, so a log of `n` leaves stores about `2n` hashes and any
//! subtree or proof hash is a handful of reads (see [`stored_hash_index`]).

use sha2::{Digest as _, Sha256};

use crate::Error;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: `SHA-256("")`.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// `SHA-256(0x00 || data)`: the hash of a leaf.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly less than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of the tree over `leaves` (already leaf-hashed), computed recursively as RFC 6962 defines.
#[must_use]
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => EMPTY_ROOT,
        1 => leaves[0],
        n => {
            let k = usize::try_from(split_point(n as u64)).unwrap_or(n / 2);
            node_hash(&root_of_leaves(&leaves[..k]), &root_of_leaves(&leaves[k..]))
        }
    }
}

/// Where the `n`-th hash of tree level `level` lives in the stored-hash sequence (Go `tlog`'s
/// `StoredHashIndex`).
#[must_use]
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut i = 0u64;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + u64::from(level)
}

/// How many stored hashes a tree of `n` leaves has.
#[must_use]
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = n - 1;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// Random access to stored hashes (in memory, or `hashes.bin`).
pub trait HashReader {
    /// Returns the stored hashes at `indexes`, in the same order.
    ///
    /// # Errors
    /// An index past the end, or an I/O error.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error>;
}

impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or(Error::Proof("stored hash index out of range"))
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        self.as_slice().read_hashes(indexes)
    }
}

/// The right edge of a tree: the roots of its complete subtrees, largest first. Appending a leaf
/// yields the new stored hashes; the root of the tree is a fold over the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `(level, hash)` of each complete subtree, from the leftmost (largest) to the rightmost.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its stored hashes.
    ///
    /// # Errors
    /// When the reader fails.
    pub fn from_stored<R: HashReader + ?Sized>(size: u64, r: &R) -> Result<Self, Error> {
        let mut nodes = Vec::new();
        let mut indexes = Vec::new();
        let mut lo = 0u64;
        for level in (0..64u32).rev() {
            if size & (1u64 << level) != 0 {
                indexes.push(stored_hash_index(level, lo >> level));
                nodes.push(level);
                lo += 1u64 << level;
            }
        }
        let hashes = r.read_hashes(&indexes)?;
        Ok(Self {
            size,
            nodes: nodes.into_iter().zip(hashes).collect(),
        })
    }

    /// The number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the stored hashes it adds (the leaf, then each subtree it
    /// completes), to be written in order after the existing ones.
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut out = vec![leaf];
        self.push_into(leaf, &mut out);
        out
    }

    /// As [`Frontier::push`], appending the new stored hashes (leaf first) to `out`, which must
    /// already end with `leaf` or be extended by the caller (this pushes only the completed subtrees).
    fn push_into(&mut self, leaf: Hash, out: &mut Vec<Hash>) {
        let mut h = leaf;
        let mut level = 0u32;
        while let Some(&(l, left)) = self.nodes.last() {
            if l != level {
                break;
            }
            self.nodes.pop();
            h = node_hash(&left, &h);
            level += 1;
            out.push(h);
        }
        self.nodes.push((level, h));
        self.size += 1;
    }

    /// Appends a leaf hash, writing its stored hashes (the leaf first) to `out`.
    pub fn append_to(&mut self, leaf: Hash, out: &mut Vec<Hash>) {
        out.push(leaf);
        self.push_into(leaf, out);
    }

    /// The root of the tree.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(&(_, mut h)) = it.next() else {
            return EMPTY_ROOT;
        };
        for (_, left) in it {
            h = node_hash(left, &h);
        }
        h
    }
}

/// The hash of the leaves `[lo, hi)`, where `lo` is a multiple of the largest power of two not
/// above `hi - lo` (every range in an RFC 6962 proof is), read from stored hashes.
fn range_hash<R: HashReader + ?Sized>(lo: u64, hi: u64, r: &R) -> Result<Hash, Error> {
    if lo >= hi {
        return Err(Error::Proof("empty subtree"));
    }
    let mut indexes = Vec::new();
    let mut at = lo;
    while at < hi {
        let level = 63 - (hi - at).leading_zeros();
        let width = 1u64 << level;
        if at & (width - 1) != 0 {
            return Err(Error::Proof("unaligned subtree"));
        }
        indexes.push(stored_hash_index(level, at >> level));
        at += width;
    }
    let hashes = r.read_hashes(&indexes)?;
    let mut it = hashes.iter().rev();
    let Some(&last) = it.next() else {
        return Err(Error::Proof("empty subtree"));
    };
    Ok(it.fold(last, |acc, left| node_hash(left, &acc)))
}

/// The root of the first `n` leaves, from stored hashes (`SHA-256("")` for `n = 0`).
///
/// # Errors
/// When the reader fails.
pub fn tree_hash<R: HashReader + ?Sized>(n: u64, r: &R) -> Result<Hash, Error> {
    if n == 0 {
        return Ok(EMPTY_ROOT);
    }
    range_hash(0, n, r)
}

/// The inclusion proof (RFC 9162 §2.1.3.1 `PATH`) of leaf `index` in the tree of `size` leaves.
///
/// # Errors
/// `index >= size`, or the reader fails.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    r: &R,
) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(Error::Proof("index not in tree"));
    }
    // Walk from the root down, collecting siblings; the proof lists them leaf-first.
    let mut siblings = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            siblings.push(range_hash(lo + k, hi, r)?);
            hi = lo + k;
        } else {
            siblings.push(range_hash(lo, lo + k, r)?);
            lo += k;
        }
    }
    siblings.reverse();
    Ok(siblings)
}

/// The consistency proof (RFC 9162 §2.1.4.1 `PROOF`) between the trees of `old` and `new` leaves.
///
/// # Errors
/// `old > new`, or the reader fails.
pub fn consistency_proof<R: HashReader + ?Sized>(
    old: u64,
    new: u64,
    r: &R,
) -> Result<Vec<Hash>, Error> {
    if old > new {
        return Err(Error::Proof("old size larger than new size"));
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    // SUBPROOF(m, D[lo:hi], b), unrolled; hashes are appended after the recursive part, so collect
    // them in reverse and flip at the end.
    let (mut m, mut lo, mut hi, mut b) = (old, 0u64, new, true);
    loop {
        let size = hi - lo;
        if m == size {
            if !b {
                out.push(range_hash(lo, hi, r)?);
            }
            break;
        }
        let k = split_point(size);
        if m <= k {
            out.push(range_hash(lo + k, hi, r)?);
            hi = lo + k;
        } else {
            out.push(range_hash(lo, lo + k, r)?);
            m -= k;
            lo += k;
            b = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Verifies an inclusion proof as RFC 9162 §2.1.3.2 specifies.
#[must_use]
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// Verifies a consistency proof as RFC 9162 §2.1.4.2 specifies (plus the trivial cases: an empty
/// old tree, and equal sizes with an empty proof and equal roots).
#[must_use]
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == EMPTY_ROOT;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    fn stored(leaves: &[Hash]) -> Vec<Hash> {
        let mut f = Frontier::new();
        let mut out = Vec::new();
        for l in leaves {
            f.append_to(*l, &mut out);
        }
        out
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(EMPTY_ROOT, <[u8; 32]>::from(Sha256::digest(b"")));
        assert_eq!(root_of_leaves(&[]), EMPTY_ROOT);
        assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    }

    #[test]
    fn stored_hash_layout_matches_go_tlog() {
        // From Go's tlog: level-0 hash n=3 is at 4 (0,1,[01],2,3,[23],[0123]...).
        assert_eq!(stored_hash_index(0, 0), 0);
        assert_eq!(stored_hash_index(0, 1), 1);
        assert_eq!(stored_hash_index(1, 0), 2);
        assert_eq!(stored_hash_index(0, 2), 3);
        assert_eq!(stored_hash_index(0, 3), 4);
        assert_eq!(stored_hash_index(1, 1), 5);
        assert_eq!(stored_hash_index(2, 0), 6);
        for n in 0..300u64 {
            let l = leaves(n);
            let s = stored(&l);
            assert_eq!(s.len() as u64, stored_hash_count(n), "n={n}");
            for (i, h) in l.iter().enumerate() {
                assert_eq!(s[stored_hash_index(0, i as u64) as usize], *h);
            }
        }
    }

    #[test]
    fn frontier_root_tree_hash_and_recursive_root_agree() {
        for n in 0..200u64 {
            let l = leaves(n);
            let s = stored(&l);
            let mut f = Frontier::new();
            for h in &l {
                f.push(*h);
            }
            let want = root_of_leaves(&l);
            assert_eq!(f.root(), want, "n={n}");
            assert_eq!(tree_hash(n, &s).unwrap(), want, "n={n}");
            assert_eq!(Frontier::from_stored(n, &s).unwrap(), f, "n={n}");
        }
    }

    #[test]
    fn proofs_verify_and_reject_wrong_inputs() {
        for n in 1..70u64 {
            let l = leaves(n);
            let s = stored(&l);
            let root = root_of_leaves(&l);
            for i in 0..n {
                let p = inclusion_proof(i, n, &s).unwrap();
                assert!(verify_inclusion(i, n, &l[i as usize], &p, &root));
                assert!(!verify_inclusion(i, n, &leaf_hash(b"other"), &p, &root));
                if n > 1 {
                    assert!(!verify_inclusion((i + 1) % n, n, &l[i as usize], &p, &root));
                }
            }
            for m in 0..=n {
                let old = root_of_leaves(&l[..m as usize]);
                let p = consistency_proof(m, n, &s).unwrap();
                assert!(verify_consistency(m, n, &old, &root, &p), "{m} {n}");
                if m > 0 && m < n {
                    assert!(!verify_consistency(m, n, &root, &root, &p), "{m} {n}");
                    assert!(!verify_consistency(m, n, &old, &old, &p), "{m} {n}");
                }
            }
        }
        assert!(inclusion_proof(3, 3, &stored(&leaves(3))).is_err());
        assert!(consistency_proof(4, 3, &stored(&leaves(3))).is_err());
    }
}
