//! Entry points shared by the fuzz targets (`fuzz/`) and the corpus-replay test, so both check the
//! same properties. Each panics only when an invariant is broken.

use crate::note::{Checkpoint, Note, PrevCheckpoint, TlogProof};
use crate::record::Record;

/// Parses `data` as a signed note and as a checkpoint body; accepted values must round-trip, and
/// an accepted body's `rampart-prev` chain link must be well-formed and round-trip.
pub fn checkpoint(data: &[u8]) {
    if let Ok(note) = Note::parse(data) {
        assert!(note.text.ends_with('\n'));
        assert!(!note.signatures.is_empty());
        if let Ok(cp) = Checkpoint::parse_body(&note.text) {
            assert_eq!(
                cp.to_text(),
                note.text,
                "checkpoint body does not round-trip"
            );
            check_prev(&cp);
        }
    }
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(cp) = Checkpoint::parse_body(s)
    {
        assert_eq!(cp.to_text(), s, "checkpoint body does not round-trip");
        check_prev(&cp);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<crate::VerifierKey>();
        // Each line as a lone extension line.
        for line in s.split('\n') {
            if let Ok(Some(p)) = PrevCheckpoint::parse_line(line) {
                assert_eq!(p.to_line(), line, "rampart-prev line does not round-trip");
            }
        }
    }
}

/// A parsed checkpoint has at most one `rampart-prev` line, and it round-trips.
fn check_prev(cp: &Checkpoint) {
    let Ok(link) = cp.prev() else {
        panic!("parse_body accepted a malformed rampart-prev line");
    };
    let ours: Vec<&String> = cp
        .extensions
        .iter()
        .filter(|l| matches!(PrevCheckpoint::parse_line(l), Ok(Some(_))))
        .collect();
    match link {
        Some(p) => assert_eq!(
            ours,
            [&p.to_line()],
            "rampart-prev line does not round-trip"
        ),
        None => assert!(ours.is_empty()),
    }
}

/// Parses `data` as a `tlog-proof`; an accepted proof must round-trip.
pub fn tlog_proof(data: &[u8]) {
    if let Ok(p) = TlogProof::parse(data) {
        assert!(p.hashes.len() <= crate::note::MAX_PROOF_HASHES);
        assert_eq!(
            p.to_text().as_bytes(),
            data,
            "tlog-proof does not round-trip"
        );
    }
}

/// Parses `data` as a record line; an accepted record must serialise back to the same bytes.
pub fn record_line(data: &[u8]) {
    if let Ok(r) = Record::parse_line(data) {
        let line = r.to_line().unwrap_or_default();
        assert_eq!(line.as_bytes(), data, "record does not round-trip");
    }
}
