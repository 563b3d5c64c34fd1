//! Paged reads of raw entries and a mirror rebuilt from them (what `rampart audit verify --server`
//! does): the mirror verifies like the original, exports the same tiles, and a changed entry is
//! caught by the signed checkpoints.

use std::fs;

use rampart_audit::layout::{Layout, load_verifier_key};
use rampart_audit::tools::{self, EntryIndex, Mirror};
use rampart_audit::{Damage, verify};

use crate::build_log;

fn lines(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    rampart_audit::layout::for_each_line(&Layout::new(dir), |l, t| {
        assert!(t);
        out.push(l.to_vec());
        true
    })
    .unwrap();
    out
}

#[test]
fn paged_entries_rebuild_a_log_that_verifies_and_exports_alike() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("audit");
    // Small segments: pages cross segment boundaries and sealed segments are skipped by count.
    build_log(&src, 300, 8 * 1024);
    assert!(Layout::new(&src).segment_numbers().unwrap().len() > 3);
    let all = lines(&src);
    assert_eq!(all.len(), 300);

    let index = EntryIndex::new();
    for (start, limit) in [
        (0, 7),
        (1, 1),
        (57, 100),
        (250, 100),
        (299, 5),
        (300, 5),
        (999, 1),
    ] {
        let mut got = Vec::new();
        let n = tools::read_entries(&src, &index, start, limit, |l| {
            got.push(l.to_vec());
            Ok(true)
        })
        .unwrap();
        let s = usize::try_from(start).unwrap().min(all.len());
        let e = (s + usize::try_from(limit).unwrap()).min(all.len());
        assert_eq!(got, all[s..e].to_vec(), "start {start} limit {limit}");
        assert_eq!(n as usize, e - s);
    }

    // The callback stops a page early.
    let mut seen = 0;
    let n = tools::read_entries(&src, &index, 10, 100, |_| {
        seen += 1;
        Ok(seen < 3)
    })
    .unwrap();
    assert_eq!((n, seen), (3, 3));

    // Rebuild from pages of 64, as the CLI does from the server.
    let key = load_verifier_key(&Layout::new(&src)).unwrap();
    let latest = fs::read(Layout::new(&src).latest()).unwrap();
    let copy = tmp.path().join("copy");
    let mut m = Mirror::create(&copy).unwrap();
    let mut start = 0;
    loop {
        let n = tools::read_entries(&src, &index, start, 64, |l| m.push(l).map(|()| true)).unwrap();
        start += n;
        if n < 64 {
            break;
        }
    }
    fs::copy(Layout::new(&src).history(), m.layout().history()).unwrap();
    assert_eq!(m.finish(&latest).unwrap(), 300);
    let report = verify(&copy, None, Some(&key)).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, 300);
    assert_eq!(
        fs::read(Layout::new(&copy).hashes()).unwrap(),
        fs::read(Layout::new(&src).hashes()).unwrap()
    );
    let (a, b) = (tmp.path().join("tiles-a"), tmp.path().join("tiles-b"));
    assert_eq!(tools::export_tiles(&src, &a).unwrap(), 300);
    assert_eq!(tools::export_tiles(&copy, &b).unwrap(), 300);
    for e in walk(&a) {
        let rel = e.strip_prefix(&a).unwrap();
        assert_eq!(
            fs::read(&e).unwrap(),
            fs::read(b.join(rel)).unwrap(),
            "{rel:?}"
        );
    }

    // One changed entry: the signed checkpoints no longer match.
    let bad = tmp.path().join("bad");
    let mut m = Mirror::create(&bad).unwrap();
    for (i, l) in all.iter().enumerate() {
        let mut l = l.clone();
        if i == 100 {
            let at = l.iter().position(|&b| b == b'v').unwrap();
            l[at] = b'w';
        }
        m.push(&l).unwrap();
    }
    fs::copy(Layout::new(&src).history(), m.layout().history()).unwrap();
    m.finish(&latest).unwrap();
    let report = verify(&bad, None, Some(&key)).unwrap();
    let f = report.failure.expect("damage found");
    assert!(
        matches!(f.kind, Damage::InconsistentCheckpoint | Damage::Modified),
        "{f:?}"
    );
    assert!(f.index > 100, "{f:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn read_entries_keeps_a_bounded_part_of_an_over_long_line() {
    // A crafted line longer than any record is handed on cut to MAX_LINE_LEN + 1 bytes (so the
    // receiver's checks fail on it) instead of being read into memory whole.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("audit");
    build_log(&src, 10, 1 << 20);
    let layout = Layout::new(&src);
    let seg = layout.segment(*layout.segment_numbers().unwrap().last().unwrap());
    let mut data = fs::read(&seg).unwrap();
    data.extend(std::iter::repeat_n(
        b'x',
        rampart_audit::record::MAX_LINE_LEN * 4,
    ));
    data.extend_from_slice(b"\n{}\n");
    fs::write(&seg, data).unwrap();
    let mut got = Vec::new();
    let n = tools::read_entries(&src, &EntryIndex::new(), 9, 3, |l| {
        got.push(l.to_vec());
        Ok(true)
    })
    .unwrap();
    assert_eq!(n, 3);
    assert_eq!(got[1].len(), rampart_audit::record::MAX_LINE_LEN + 1);
    assert_eq!(got[2], b"{}");
}
