//! Tamper detection: every kind of damage, at random places, must be flagged with the right kind at
//! the right index.

use std::fs;
use std::path::Path;

use rampart_audit::layout::{Layout, split_history};
use rampart_audit::note::{Checkpoint, NoteSigner, PrevCheckpoint};
use rampart_audit::{Damage, verify};

use crate::{Rng, build_log, copy_dir};

const RECORDS: u64 = 300;
const TRIALS: u64 = 20;

/// Records per segment file, in order, without newlines.
fn read_segments(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    let layout = Layout::new(dir);
    layout
        .segment_numbers()
        .unwrap()
        .into_iter()
        .map(|n| {
            let data = fs::read(layout.segment(n)).unwrap();
            assert!(data.is_empty() || data.ends_with(b"\n"));
            data.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect()
        })
        .collect()
}

fn write_segments(dir: &Path, segs: &[Vec<Vec<u8>>]) {
    let layout = Layout::new(dir);
    for (n, lines) in segs.iter().enumerate() {
        let mut data = Vec::new();
        for l in lines {
            data.extend_from_slice(l);
            data.push(b'\n');
        }
        fs::write(layout.segment(n as u32), data).unwrap();
    }
}

/// (segment, position) of flat record index `j`.
fn locate(segs: &[Vec<Vec<u8>>], mut j: usize) -> (usize, usize) {
    for (s, lines) in segs.iter().enumerate() {
        if j < lines.len() {
            return (s, j);
        }
        j -= lines.len();
    }
    panic!("index out of range");
}

fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // ~330-byte records, 16 KiB segments: several segment files.
    build_log(dir.path(), RECORDS, 16 * 1024);
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.ok(), "{:?}", report.failure);
    assert_eq!(report.records, RECORDS);
    assert!(Layout::new(dir.path()).segment_numbers().unwrap().len() > 2);
    assert!(
        Layout::new(dir.path()).read_history().unwrap().len() > 3,
        "want several checkpoints"
    );
    dir
}

fn expect(dir: &Path, kind: Damage, index: u64, what: &str) {
    let report = verify(dir, None, None).unwrap();
    let f = report
        .failure
        .unwrap_or_else(|| panic!("{what}: damage not detected"));
    assert_eq!((f.kind, f.index), (kind, index), "{what}: {}", f.detail);
}

#[test]
fn every_damage_kind_is_flagged_at_the_right_index() {
    let base = base();
    let layout0 = Layout::new(base.path());
    let history0 = layout0.read_history().unwrap();
    let latest0 = fs::read_to_string(layout0.latest()).unwrap();
    let skey = fs::read_to_string(layout0.signing_key()).unwrap();
    let signer = NoteSigner::from_skey(&skey).unwrap();
    let mut rng = Rng::new(0x5eed_a0d1);
    let mut checked = 0;
    // Case 4's variants hit: latest, first, last, middle history entry.
    let mut drops = [0u32; 4];
    for trial in 0..TRIALS {
        for kind in 0..8 {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path();
            copy_dir(base.path(), dir);
            let layout = Layout::new(dir);
            let mut segs = read_segments(dir);
            let what = format!("trial {trial} kind {kind}");
            match kind {
                0 => {
                    // Flip one byte (newline included) of a random record.
                    let j = rng.below(RECORDS);
                    let (s, p) = locate(&segs, j as usize);
                    let len = segs[s][p].len() + 1;
                    let at = rng.below(len as u64) as usize;
                    let mask = 1 + rng.below(255) as u8;
                    let is_final_newline =
                        at == len - 1 && s == segs.len() - 1 && p == segs[s].len() - 1;
                    let mut data = fs::read(layout.segment(s as u32)).unwrap();
                    let offset: usize =
                        segs[s][..p].iter().map(|l| l.len() + 1).sum::<usize>() + at;
                    data[offset] ^= mask;
                    fs::write(layout.segment(s as u32), data).unwrap();
                    // A lost final newline is indistinguishable from a torn write.
                    let want = if is_final_newline {
                        Damage::Truncated
                    } else {
                        Damage::Modified
                    };
                    expect(dir, want, j, &what);
                }
                1 => {
                    // Delete a record (not the last: that is truncation).
                    let j = rng.below(RECORDS - 1);
                    let (s, p) = locate(&segs, j as usize);
                    segs[s].remove(p);
                    write_segments(dir, &segs);
                    expect(dir, Damage::Missing, j, &what);
                }
                2 => {
                    // Swap two adjacent records (possibly across segments).
                    let j = rng.below(RECORDS - 1);
                    let (s1, p1) = locate(&segs, j as usize);
                    let (s2, p2) = locate(&segs, j as usize + 1);
                    let a = segs[s1][p1].clone();
                    segs[s1][p1] = segs[s2][p2].clone();
                    segs[s2][p2] = a;
                    write_segments(dir, &segs);
                    expect(dir, Damage::Reordered, j, &what);
                }
                3 => {
                    // Truncate at a random byte: the record containing it is the first lost.
                    let j = rng.below(RECORDS);
                    let (s, p) = locate(&segs, j as usize);
                    let cut = rng.below(segs[s][p].len() as u64) as usize;
                    let mut data = fs::read(layout.segment(s as u32)).unwrap();
                    let offset: usize =
                        segs[s][..p].iter().map(|l| l.len() + 1).sum::<usize>() + cut;
                    data.truncate(offset);
                    fs::write(layout.segment(s as u32), data).unwrap();
                    for later in s + 1..segs.len() {
                        fs::remove_file(layout.segment(later as u32)).unwrap();
                    }
                    expect(dir, Damage::Truncated, j, &what);
                }
                4 => {
                    // Drop a checkpoint: latest, or the first, the last or a random middle
                    // history entry. Flagged at the dropped checkpoint's size.
                    assert_eq!(note_size(&latest0), RECORDS);
                    let last = history0.len() - 1;
                    let variant = rng.below(4);
                    drops[variant as usize] += 1;
                    let size = match variant {
                        0 => {
                            fs::remove_file(layout.latest()).unwrap();
                            RECORDS
                        }
                        pick => {
                            let h = match pick {
                                1 => 0,
                                2 => last,
                                _ => 1 + rng.below(last as u64 - 1) as usize,
                            };
                            let mut hist = history0.clone();
                            let dropped = hist.remove(h);
                            write_history(&layout, &hist);
                            note_size(&dropped)
                        }
                    };
                    expect(dir, Damage::MissingCheckpoint, size, &what);
                }
                5 => {
                    // Forge: edit the root of a random checkpoint in the history, keeping its
                    // signature (a history entry, or latest + its history copy).
                    let h = rng.below(history0.len() as u64) as usize;
                    let note = &history0[h];
                    let mut lines: Vec<String> = note.split('\n').map(str::to_owned).collect();
                    let size: u64 = lines[1].parse().unwrap();
                    let mut root = [0u8; 32];
                    for b in &mut root {
                        *b = rng.next() as u8;
                    }
                    lines[2] = base64(&root);
                    let forged = lines.join("\n");
                    let mut hist = history0.clone();
                    hist[h] = forged.clone();
                    write_history(&layout, &hist);
                    if h == history0.len() - 1 {
                        fs::write(layout.latest(), &forged).unwrap();
                    }
                    expect(dir, Damage::BadSignature, size, &what);
                }
                6 => {
                    // Forge: a checkpoint signed by another key with the same name replaces the
                    // latest one.
                    let other =
                        NoteSigner::from_seed(signer.name(), &[rng.next() as u8; 32]).unwrap();
                    let cp = Checkpoint {
                        origin: signer.name().to_owned(),
                        size: RECORDS,
                        root: [rng.next() as u8; 32],
                        extensions: vec![],
                    };
                    let forged = cp.sign(&other).unwrap();
                    let mut hist = history0.clone();
                    let last = hist.len() - 1;
                    hist[last] = forged.clone();
                    write_history(&layout, &hist);
                    fs::write(layout.latest(), &forged).unwrap();
                    expect(dir, Damage::BadSignature, RECORDS, &what);
                }
                _ => {
                    // Inconsistent: a checkpoint validly signed by the log key whose root does
                    // not match the records, inserted into the history in size order.
                    let size = 1 + rng.below(RECORDS - 1);
                    let cp = Checkpoint {
                        origin: signer.name().to_owned(),
                        size,
                        root: [rng.next() as u8 | 1; 32],
                        extensions: vec![],
                    };
                    let bad = cp.sign(&signer).unwrap();
                    let mut hist = history0.clone();
                    let pos = hist
                        .iter()
                        .position(|n| note_size(n) > size)
                        .unwrap_or(hist.len() - 1);
                    hist.insert(pos, bad);
                    write_history(&layout, &hist);
                    expect(dir, Damage::InconsistentCheckpoint, size, &what);
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, TRIALS * 8);
    assert!(drops.iter().all(|&d| d > 0), "drop variants hit: {drops:?}");
}

/// Every history entry but the first links to the entry before it; `latest` is the last entry.
#[test]
fn the_history_is_a_hash_chain() {
    let base = base();
    let layout = Layout::new(base.path());
    let history = layout.read_history().unwrap();
    assert_eq!(
        fs::read_to_string(layout.latest()).unwrap(),
        *history.last().unwrap()
    );
    for (i, note) in history.iter().enumerate() {
        let cp = checkpoint_of(note);
        let link = cp.prev().unwrap();
        if i == 0 {
            assert_eq!(cp.size, 0, "a new log first signs the empty tree");
            assert_eq!(link, None, "the first checkpoint has no link");
            assert!(cp.extensions.is_empty());
        } else {
            let before = &history[i - 1];
            assert_eq!(
                link,
                Some(PrevCheckpoint::of_note(
                    note_size(before),
                    before.as_bytes()
                )),
                "entry {i}"
            );
            assert_eq!(cp.extensions.len(), 1);
        }
    }
}

#[test]
fn dropping_any_single_checkpoint_is_flagged_at_its_size() {
    let base = base();
    let history0 = Layout::new(base.path()).read_history().unwrap();
    for h in 0..history0.len() {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(base.path(), tmp.path());
        let mut hist = history0.clone();
        let dropped = hist.remove(h);
        write_history(&Layout::new(tmp.path()), &hist);
        expect(
            tmp.path(),
            Damage::MissingCheckpoint,
            note_size(&dropped),
            &format!("drop history entry {h}"),
        );
    }
    // Two adjacent entries dropped: flagged at the later one's size (the link only names the
    // checkpoint immediately before).
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(base.path(), tmp.path());
    let mut hist = history0.clone();
    hist.drain(1..3);
    write_history(&Layout::new(tmp.path()), &hist);
    expect(
        tmp.path(),
        Damage::MissingCheckpoint,
        note_size(&history0[2]),
        "drop entries 1 and 2",
    );
}

#[test]
fn reordering_history_entries_is_flagged() {
    let base = base();
    let history0 = Layout::new(base.path()).read_history().unwrap();
    let n = history0.len();
    let mut rng = Rng::new(0x0dd_0de5);
    // Every adjacent pair, then random pairs.
    let mut pairs: Vec<(usize, usize)> = (0..n - 1).map(|a| (a, a + 1)).collect();
    for _ in 0..8 {
        let a = rng.below(n as u64 - 1) as usize;
        let b = a + 1 + rng.below((n - a - 1) as u64) as usize;
        pairs.push((a, b));
    }
    for (a, b) in pairs {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(base.path(), tmp.path());
        let mut hist = history0.clone();
        hist.swap(a, b);
        write_history(&Layout::new(tmp.path()), &hist);
        // The earlier checkpoint now comes after a later one: flagged at its size.
        expect(
            tmp.path(),
            Damage::InconsistentCheckpoint,
            note_size(&history0[a]),
            &format!("swap history entries {a} and {b}"),
        );
    }
}

#[test]
fn a_history_rewritten_without_links_is_flagged() {
    // Someone with the signing key re-signs every checkpoint without its rampart-prev line (as a
    // log written before the chain, or by another tool, would look): the second entry is flagged.
    let base = base();
    let layout = Layout::new(base.path());
    let signer = NoteSigner::from_skey(&fs::read_to_string(layout.signing_key()).unwrap()).unwrap();
    let history0 = layout.read_history().unwrap();
    let rewritten: Vec<String> = history0
        .iter()
        .map(|n| {
            let mut cp = checkpoint_of(n);
            cp.extensions.clear();
            cp.sign(&signer).unwrap()
        })
        .collect();
    write_history(&layout, &rewritten);
    fs::write(layout.latest(), rewritten.last().unwrap()).unwrap();
    expect(
        base.path(),
        Damage::InconsistentCheckpoint,
        note_size(&history0[1]),
        "history without links",
    );
    // A single unlinked checkpoint is a log's first: fine.
    write_history(&layout, &rewritten[..1]);
    fs::write(layout.latest(), &rewritten[0]).unwrap();
    let r = verify(base.path(), None, None).unwrap();
    // (Records beyond it are unsigned, not damage.)
    assert!(r.ok(), "{:?}", r.failure);
}

#[test]
fn trusted_checkpoint_catches_a_rollback_of_records_and_checkpoints() {
    let base = base();
    let layout = Layout::new(base.path());
    let trusted = fs::read(layout.latest()).unwrap();
    // The attacker removes the last 10 records and rewrites every checkpoint file to an older one.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(base.path(), tmp.path());
    let l2 = Layout::new(tmp.path());
    let mut segs = read_segments(tmp.path());
    let mut left = 10;
    while left > 0 {
        let last = segs.iter().rposition(|s| !s.is_empty()).unwrap();
        segs[last].pop();
        left -= 1;
    }
    write_segments(tmp.path(), &segs);
    let hist = l2.read_history().unwrap();
    let keep: Vec<String> = hist
        .into_iter()
        .filter(|n| note_size(n) <= RECORDS - 10)
        .collect();
    write_history(&l2, &keep);
    fs::write(l2.latest(), keep.last().unwrap()).unwrap();
    fs::remove_file(l2.hashes()).unwrap();
    // Without the trusted checkpoint, a consistent rollback is invisible (records and checkpoints
    // agree); with it, verify reports the truncation.
    let plain = verify(tmp.path(), None, None).unwrap();
    assert!(plain.ok(), "{:?}", plain.failure);
    let r = verify(tmp.path(), Some(&trusted), None).unwrap();
    let f = r.failure.expect("rollback not detected");
    assert_eq!(
        (f.kind, f.index),
        (Damage::Truncated, RECORDS - 10),
        "{}",
        f.detail
    );
    // And the history parser splits what the writer wrote.
    assert_eq!(
        split_history(&fs::read_to_string(layout.history()).unwrap()).len(),
        layout.read_history().unwrap().len()
    );
}

fn checkpoint_of(note: &str) -> Checkpoint {
    let body = note.split("\n\n").next().unwrap();
    Checkpoint::parse_body(&format!("{body}\n")).unwrap()
}

fn note_size(note: &str) -> u64 {
    let body = note.split("\n\n").next().unwrap();
    Checkpoint::parse_body(&format!("{body}\n")).unwrap().size
}

fn write_history(layout: &Layout, notes: &[String]) {
    let text: String = notes.iter().map(|n| format!("{n}\n")).collect();
    fs::write(layout.history(), text).unwrap();
}

fn base64(b: &[u8]) -> String {
    use base64ct::Encoding as _;
    base64ct::Base64::encode_string(b)
}

#[test]
fn deleting_every_checkpoint_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 20, 1 << 20);
    let layout = Layout::new(dir.path());
    fs::remove_file(layout.latest()).unwrap();
    fs::remove_file(layout.history()).unwrap();
    expect(dir.path(), Damage::MissingCheckpoint, 0, "no checkpoints");
}

#[test]
fn a_missing_newline_at_the_end_of_an_earlier_segment_is_flagged() {
    // The leaf hash excludes the newline, so only the scan can see this; the log itself refuses to
    // open such a directory, so verify must not call it intact.
    let dir = base();
    let layout = Layout::new(dir.path());
    let segs = read_segments(dir.path());
    assert!(segs.len() >= 2);
    let path = layout.segment(0);
    let mut data = fs::read(&path).unwrap();
    assert_eq!(data.pop(), Some(b'\n'));
    fs::write(&path, data).unwrap();
    let last = segs[0].len() as u64 - 1;
    expect(dir.path(), Damage::Truncated, last, "newline removed");
    assert!(rampart_audit::AuditLog::open(dir.path(), crate::config()).is_err());
}

#[test]
fn an_over_long_line_is_flagged_and_refused_without_reading_it_whole() {
    // No record is longer than MAX_LINE_LEN (the writer refuses one). The scanner streams segments
    // and keeps at most MAX_LINE_LEN + 1 bytes of a line, so a crafted huge line costs no memory;
    // such a line is damage even after the last checkpoint, and the log must not sign it.
    let dir = base();
    let layout = Layout::new(dir.path());
    let segs = read_segments(dir.path());
    let last = String::from_utf8(segs.last().unwrap().last().unwrap().clone()).unwrap();
    let n = segs.iter().map(Vec::len).sum::<usize>() as u64;
    let pad = "x".repeat(rampart_audit::record::MAX_LINE_LEN * 3);
    let forged = last
        .replacen('{', &format!("{{\"_pad\":\"{pad}\","), 1)
        .replace(&format!("\"seq\":{}", n - 1), &format!("\"seq\":{n}"));
    assert!(forged.contains(&format!("\"seq\":{n}")));
    let path = layout.segment(*layout.segment_numbers().unwrap().last().unwrap());
    let mut data = fs::read(&path).unwrap();
    data.extend_from_slice(forged.as_bytes());
    data.push(b'\n');
    fs::write(&path, data).unwrap();
    expect(dir.path(), Damage::Modified, n, "over-long record");
    match rampart_audit::AuditLog::open(dir.path(), crate::config()) {
        Err(rampart_audit::Error::Corrupt(m)) => assert!(m.contains("longer than"), "{m}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("an over-long record was accepted"),
    }
}

#[test]
fn a_segment_missing_from_the_middle_is_damage_not_an_error() {
    // verify reports damage in the report (the CLI's exit 1), never as an error (exit 2).
    let dir = base();
    let layout = Layout::new(dir.path());
    let segs = read_segments(dir.path());
    assert!(segs.len() >= 3);
    fs::remove_file(layout.segment(1)).unwrap();
    expect(
        dir.path(),
        Damage::Missing,
        segs[0].len() as u64,
        "middle segment deleted",
    );
}
