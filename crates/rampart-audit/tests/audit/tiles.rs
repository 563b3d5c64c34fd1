//! Tile export checked independently: entry bundles and hash tiles recomputed with `tlog_tiles`,
//! the checkpoint verified with `signed_note`, proofs checked from the CLI-facing tools.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use rampart_audit::layout::Layout;
use rampart_audit::record::format_time_ms;
use rampart_audit::tools::{self, tile_path};
use rampart_audit::{AuditLog, verify};

use crate::{Rng, config, sample_record};

struct TlogReader(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for TlogReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        Ok(indexes.iter().map(|&i| self.0[i as usize]).collect())
    }
}

/// Writes `n` valid records straight into a segment in two halves, letting the log recover (hash)
/// and sign after each. As a real log, it is opened once before any record (signing the empty
/// tree: a log with records and no checkpoint is refused as damaged); each later open signs a
/// checkpoint chained to the one before (so the exported checkpoint carries a `rampart-prev`
/// extension line naming the one at `n / 2`).
fn fast_log(dir: &Path, n: u64) {
    let layout = Layout::new(dir);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { AuditLog::open(dir, config()).unwrap().shutdown().await });
    let half = n / 2;
    for (from, to) in [(0, half), (half, n)] {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(layout.segment(0))
            .unwrap();
        let mut buf = Vec::new();
        for i in from..to {
            let mut r = sample_record(i);
            r.seq = i;
            r.time = format_time_ms(1_700_000_000_000 + i);
            buf.extend_from_slice(r.to_line().unwrap().as_bytes());
            buf.push(b'\n');
        }
        f.write_all(&buf).unwrap();
        drop(f);
        rt.block_on(async {
            let log = AuditLog::open(dir, config()).unwrap();
            assert_eq!(log.recovery().rehashed, to - from);
            log.shutdown().await;
        });
    }
    let history = layout.read_history().unwrap();
    // The empty tree's, then one per non-empty half.
    let want = if half == 0 { 2 } else { 3 };
    assert_eq!(history.len(), want, "checkpoints signed");
}

fn check_export(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    fast_log(dir.path(), n);
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    let out = tempfile::tempdir().unwrap();
    assert_eq!(tools::export_tiles(dir.path(), out.path()).unwrap(), n);
    let o = out.path();

    // Checkpoint: verified by signed_note with the log's vkey.
    let vkey = fs::read_to_string(Layout::new(dir.path()).verifier_key()).unwrap();
    let cp_bytes = fs::read(o.join("checkpoint")).unwrap();
    let note = signed_note::Note::from_bytes(&cp_bytes).unwrap();
    let v = signed_note::StandardVerifier::new(vkey.trim()).unwrap();
    note.verify(&signed_note::VerifierList::new(vec![Box::new(v)]))
        .unwrap();
    let text = String::from_utf8(note.text().to_vec()).unwrap();
    // The body, with its rampart-prev extension line, is a C2SP checkpoint to tlog_tiles.
    let tl = tlog_tiles::Checkpoint::from_bytes(note.text()).unwrap();
    assert_eq!(tl.size(), n);
    assert!(
        tl.extension().starts_with("rampart-prev ") && tl.extension().ends_with('\n'),
        "{:?}",
        tl.extension()
    );
    assert_eq!(tl.to_bytes(), note.text());
    let ours = rampart_audit::Checkpoint::parse_body(&text).unwrap();
    let link = ours.prev().unwrap().expect("a chained checkpoint");
    let history = Layout::new(dir.path()).read_history().unwrap();
    assert_eq!(
        link,
        rampart_audit::PrevCheckpoint::of_note(n / 2, history[history.len() - 2].as_bytes())
    );
    let mut lines = text.lines();
    lines.next();
    assert_eq!(lines.next().unwrap().parse::<u64>().unwrap(), n);
    let root = tlog_tiles::Hash::parse_hash(lines.next().unwrap()).unwrap();
    assert_eq!(&root, tl.hash());

    // Entry bundles: uint16-length-prefixed records, 256 per full bundle.
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let bundles = n.div_ceil(256);
    for b in 0..bundles {
        let width = (n - b * 256).min(256);
        let data = fs::read(o.join(tile_path(None, b, width))).unwrap();
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            entries.push(rest[2..2 + len].to_vec());
            rest = &rest[2 + len..];
        }
    }
    assert_eq!(entries.len() as u64, n);

    // Recompute the tree with tlog_tiles from the entries alone.
    let mut r = TlogReader(Vec::new());
    for (i, e) in entries.iter().enumerate() {
        let new = tlog_tiles::stored_hashes(i as u64, e, &r).unwrap();
        r.0.extend(new);
    }
    assert_eq!(
        tlog_tiles::tree_hash(n, &r).unwrap(),
        root,
        "root differs at n={n}"
    );

    // Every hash tile equals tlog_tiles' hashes at tree level 8L.
    let mut level = 0u32;
    while n >> (8 * level) > 0 {
        let count = n >> (8 * level);
        for t in 0..count.div_ceil(256) {
            let width = (count - t * 256).min(256);
            let data = fs::read(o.join(tile_path(Some(level), t, width))).unwrap();
            assert_eq!(data.len() as u64, width * 32);
            for j in 0..width {
                let idx = tlog_tiles::stored_hash_index((8 * level) as u8, t * 256 + j);
                assert_eq!(
                    &data[(j * 32) as usize..(j * 32 + 32) as usize],
                    &r.0[idx as usize].0,
                    "tile L{level} N{t} hash {j} at n={n}"
                );
            }
        }
        level += 1;
    }
    // No tile beyond the top level.
    assert!(!o.join(format!("tile/{level}")).exists());

    // JSONL export is the records, in order.
    let jl = out.path().join("all.jsonl");
    assert_eq!(tools::export_jsonl(dir.path(), &jl).unwrap(), n);
    let text = fs::read(&jl).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len() as u64, n);
    assert!(lines.iter().zip(&entries).all(|(a, b)| *a == b.as_slice()));
}

#[test]
fn exported_tiles_verify_independently_for_edge_sizes() {
    for n in [1, 255, 256, 257, 512, 1000] {
        check_export(n);
    }
}

#[test]
fn exported_tiles_verify_independently_for_random_sizes() {
    let mut rng = Rng::new(0x711e5);
    for _ in 0..4 {
        check_export(1 + rng.below(3000));
    }
}

#[test]
fn exported_tiles_reach_level_two() {
    check_export(65_536 + 300);
}

#[test]
fn query_filters_and_proofs_for_every_record() {
    let dir = tempfile::tempdir().unwrap();
    fast_log(dir.path(), 100);
    let mut seen = Vec::new();
    let f = tools::Filter {
        principal: Some("user1".into()),
        action: Some("push".into()),
        ..Default::default()
    };
    tools::query(dir.path(), &f, |r| seen.push(r.seq)).unwrap();
    let want: Vec<u64> = (0..100).filter(|i| i % 5 == 1 && i % 4 == 1).collect();
    assert_eq!(seen, want);
    let f = tools::Filter {
        since_ms: Some(1_700_000_000_010),
        until_ms: Some(1_700_000_000_020),
        ..Default::default()
    };
    let n = tools::query(dir.path(), &f, |_| {}).unwrap();
    assert_eq!(n, 10);
    let key = rampart_audit::layout::load_verifier_key(&Layout::new(dir.path())).unwrap();
    for i in 0..100 {
        let proof = tools::prove(dir.path(), i).unwrap().to_text();
        let line = tools::read_record_line(dir.path(), i).unwrap();
        tools::check_proof(proof.as_bytes(), &line, std::slice::from_ref(&key)).unwrap();
        let other = tools::read_record_line(dir.path(), (i + 1) % 100).unwrap();
        assert!(tools::check_proof(proof.as_bytes(), &other, std::slice::from_ref(&key)).is_err());
    }
    assert!(tools::prove(dir.path(), 100).is_err());
}

#[test]
fn a_checkpoint_claiming_a_huge_tree_is_refused_by_prove_and_export() {
    // `prove` and `export` read `latest` without verifying it (the consumer checks the signature);
    // a crafted size must give an error, not overflow the stored-hash index arithmetic.
    let dir = tempfile::tempdir().unwrap();
    fast_log(dir.path(), 40);
    let layout = Layout::new(dir.path());
    let skey = fs::read_to_string(layout.signing_key()).unwrap();
    let signer = rampart_audit::NoteSigner::from_skey(&skey).unwrap();
    let latest = fs::read(layout.latest()).unwrap();
    let note = rampart_audit::note::Note::parse(&latest).unwrap();
    let mut cp = rampart_audit::Checkpoint::parse_body(&note.text).unwrap();
    for size in [u64::MAX, u64::MAX / 2 + 7, 1 << 40] {
        cp.size = size;
        fs::write(layout.latest(), cp.sign(&signer).unwrap()).unwrap();
        assert!(tools::prove(dir.path(), 5).is_err(), "prove, size {size}");
        let out = tempfile::tempdir().unwrap();
        assert!(
            tools::export_tiles(dir.path(), out.path()).is_err(),
            "export, size {size}"
        );
    }
}
