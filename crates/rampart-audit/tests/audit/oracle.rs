//! Differential tests against independent implementations: `ct-merkle` and `tlog_tiles` for roots
//! and proofs, `signed_note` for notes, and a from-the-RFC reference.

use ct_merkle::RootHash;
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use proptest::prelude::*;
use rampart_audit::merkle::{
    Frontier, Hash, consistency_proof, inclusion_proof, leaf_hash, root_of_leaves,
    verify_consistency, verify_inclusion,
};
use rampart_audit::note::{Checkpoint, NoteSigner};
use sha2::{Digest as _, Sha256};

/// RFC 6962 §2.1 MTH, written directly from the RFC text.
fn reference_root(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => Sha256::digest(b"").into(),
        1 => Sha256::digest([&[0u8][..], &d[0]].concat()).into(),
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let (l, r) = (reference_root(&d[..k]), reference_root(&d[k..]));
            Sha256::digest([&[1u8][..], &l, &r].concat()).into()
        }
    }
}

struct TlogReader(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for TlogReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

fn data(n: u64, salt: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("{{\"seq\":{i},\"salt\":{salt}}}").into_bytes())
        .collect()
}

struct Built {
    leaves: Vec<Hash>,
    stored: Vec<Hash>,
    ct: MemoryBackedTree<Sha256, Vec<u8>>,
    tlog: TlogReader,
}

fn build(d: &[Vec<u8>]) -> Built {
    let mut f = Frontier::new();
    let mut stored = Vec::new();
    let mut leaves = Vec::new();
    let mut ct = MemoryBackedTree::<Sha256, Vec<u8>>::new();
    let mut tlog = TlogReader(Vec::new());
    for (i, x) in d.iter().enumerate() {
        let l = leaf_hash(x);
        leaves.push(l);
        f.append_to(l, &mut stored);
        ct.push(x.clone());
        let new = tlog_tiles::stored_hashes(i as u64, x, &tlog).unwrap();
        tlog.0.extend(new);
    }
    Built {
        leaves,
        stored,
        ct,
        tlog,
    }
}

#[test]
fn roots_agree_for_pinned_sizes() {
    for n in [0u64, 1, 2, 3, 7, 8, 9, 255, 256, 257, 1000, 4097] {
        let d = data(n, 1);
        let b = build(&d);
        let mine = root_of_leaves(&b.leaves);
        assert_eq!(mine, reference_root(&d), "n={n}");
        assert_eq!(mine, <[u8; 32]>::from(*b.ct.root().as_bytes()), "n={n}");
        assert_eq!(mine, tlog_tiles::tree_hash(n, &b.tlog).unwrap().0, "n={n}");
        let stored_tlog: Vec<Hash> = b.tlog.0.iter().map(|h| h.0).collect();
        assert_eq!(b.stored, stored_tlog, "stored-hash layout differs at n={n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn proofs_agree_with_ct_merkle_and_tlog_tiles(n in 1u64..600, salt in any::<u64>(), pick in any::<u64>(), pick2 in any::<u64>()) {
        let d = data(n, salt);
        let b = build(&d);
        let root = root_of_leaves(&b.leaves);
        prop_assert_eq!(root, reference_root(&d));
        prop_assert_eq!(root, tlog_tiles::tree_hash(n, &b.tlog).unwrap().0);
        // Inclusion.
        let i = pick % n;
        let mine = inclusion_proof(i, n, &b.stored).unwrap();
        let ct = b.ct.prove_inclusion(i as usize);
        let ct_hashes: Vec<u8> = mine.concat();
        prop_assert_eq!(ct.as_bytes(), ct_hashes.as_slice());
        let tl = tlog_tiles::prove_record(n, i, &b.tlog).unwrap();
        prop_assert_eq!(tl.iter().map(|h| h.0).collect::<Vec<_>>(), mine.clone());
        prop_assert!(verify_inclusion(i, n, &b.leaves[i as usize], &mine, &root));
        prop_assert!(tlog_tiles::check_record(&tl, n, tlog_tiles::Hash(root), i, tlog_tiles::Hash(b.leaves[i as usize])).is_ok());
        let ct_root = b.ct.root();
        prop_assert!(ct_root.verify_inclusion(&d[i as usize], i, &ct).is_ok());
        // Consistency from a random older size.
        let m = 1 + pick2 % n;
        let old_root = root_of_leaves(&b.leaves[..m as usize]);
        let mine = consistency_proof(m, n, &b.stored).unwrap();
        let tl = tlog_tiles::prove_tree(n, m, &b.tlog).unwrap();
        prop_assert_eq!(tl.iter().map(|h| h.0).collect::<Vec<_>>(), mine.clone());
        prop_assert!(verify_consistency(m, n, &old_root, &root, &mine));
        prop_assert!(tlog_tiles::check_tree(&tl, n, tlog_tiles::Hash(root), m, tlog_tiles::Hash(old_root)).is_ok());
        let ct_proof = b.ct.prove_consistency((n - m) as usize);
        let mine_bytes = mine.concat();
        prop_assert_eq!(ct_proof.as_bytes(), mine_bytes.as_slice());
        let old = RootHash::<Sha256>::new(old_root.into(), m);
        prop_assert!(ct_root.verify_consistency(&old, &ct_proof).is_ok());
        // A proof for the wrong leaf or the wrong old root fails.
        if n > 1 {
            let j = (i + 1) % n;
            prop_assert!(!verify_inclusion(j, n, &b.leaves[i as usize], &inclusion_proof(i, n, &b.stored).unwrap(), &root));
        }
        if m < n {
            let wrong_old = leaf_hash(b"not the old root");
            prop_assert!(!verify_consistency(m, n, &wrong_old, &root, &mine));
        }
    }
}

#[test]
fn checkpoints_interoperate_with_signed_note() {
    use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
    let signer = NoteSigner::from_seed("rampart.example/audit", &[42u8; 32]).unwrap();
    let cp = Checkpoint {
        origin: "rampart.example/audit".into(),
        size: 1_000_000,
        root: [5u8; 32],
        extensions: vec![],
    };
    let ours = cp.sign(&signer).unwrap();
    // Our note and vkey verify with signed_note.
    let v = StandardVerifier::new(&signer.verifier().to_string()).unwrap();
    let list = VerifierList::new(vec![Box::new(v)]);
    let note = Note::from_bytes(ours.as_bytes()).unwrap();
    note.verify(&list).unwrap();
    assert_eq!(note.to_bytes(), ours.as_bytes());
    // signed_note's signature over the same text, from our skey, verifies with our parser, and
    // is byte-identical (Ed25519 is deterministic).
    let theirs_signer = StandardSigner::new(&signer.to_skey()).unwrap();
    let mut theirs = Note::new(cp.to_text().as_bytes(), &[]).unwrap();
    theirs.add_sigs(&[&theirs_signer]).unwrap();
    let theirs = theirs.to_bytes();
    assert_eq!(theirs, ours.as_bytes());
    assert_eq!(Checkpoint::open(&theirs, &[signer.verifier()]).unwrap(), cp);
}
