//! Crash recovery on open: torn tails, records missing from `hashes.bin`, and refusal when signed
//! records are gone or changed; key-file permissions.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use rampart_audit::layout::Layout;
use rampart_audit::record::format_time_ms;
use rampart_audit::{AuditLog, Error, tools, verify};

use crate::{build_log, config, sample_record};

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let l = Layout::new(dir);
    l.segment(*l.segment_numbers().unwrap().last().unwrap())
}

fn reopen_and_close(dir: &Path) -> rampart_audit::Recovery {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(dir, config()).unwrap();
        let rec = log.recovery().clone();
        let i = log.append(sample_record(9999)).await.unwrap();
        assert_eq!(
            i, rec.records,
            "appends continue after the recovered records"
        );
        log.shutdown().await;
        rec
    })
}

#[test]
fn torn_tail_is_truncated_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 50, 1 << 20);
    let mut f = OpenOptions::new()
        .append(true)
        .open(last_segment(dir.path()))
        .unwrap();
    f.write_all(b"{\"action\":\"pu").unwrap();
    drop(f);
    // verify treats an unsigned torn tail as a crash artefact, not damage.
    let r = verify(dir.path(), None, None).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert!(
        r.warnings.iter().any(|w| w.contains("torn")),
        "{:?}",
        r.warnings
    );
    let rec = reopen_and_close(dir.path());
    assert_eq!(rec.truncated_bytes, 13);
    assert_eq!(rec.records, 50);
    let r = verify(dir.path(), None, None).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.records, 51);
}

#[test]
fn records_missing_from_hashes_are_rehashed() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 120, 1 << 20);
    let layout = Layout::new(dir.path());
    let original = fs::read(layout.hashes()).unwrap();
    // Crash between the segment fsync and the hash write: hashes.bin is short, and cut mid-hash.
    fs::write(layout.hashes(), &original[..original.len() / 3 + 5]).unwrap();
    // Three more records reached the segment but never the tree.
    let mut f = OpenOptions::new()
        .append(true)
        .open(last_segment(dir.path()))
        .unwrap();
    for i in 120..123u64 {
        let mut r = sample_record(i);
        r.seq = i;
        r.time = format_time_ms(4_102_444_800_000); // 2100-01-01, after every existing record
        f.write_all(format!("{}\n", r.to_line().unwrap()).as_bytes())
            .unwrap();
    }
    drop(f);
    let rec = reopen_and_close(dir.path());
    assert_eq!(rec.records, 123);
    assert!(rec.rehashed >= 83, "{rec:?}");
    assert!(!rec.rebuilt_hashes);
    let now = fs::read(layout.hashes()).unwrap();
    assert_eq!(
        &now[..original.len()],
        &original[..],
        "recomputed hashes differ"
    );
    let r = verify(dir.path(), None, None).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.records, 124);
    // The recovered records are provable.
    let proof = tools::prove(dir.path(), 121).unwrap();
    let line = tools::read_record_line(dir.path(), 121).unwrap();
    let key = rampart_audit::layout::load_verifier_key(&layout).unwrap();
    tools::check_proof(proof.to_text().as_bytes(), &line, &[key]).unwrap();
}

#[test]
fn missing_or_changed_signed_records_refuse_to_open() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 40, 1 << 20);
    let seg = last_segment(dir.path());
    let data = fs::read(&seg).unwrap();
    // Drop the last two (signed) records.
    let mut cut = data.len() - 1;
    for _ in 0..2 {
        cut = data[..cut].iter().rposition(|&b| b == b'\n').unwrap();
    }
    fs::write(&seg, &data[..=cut]).unwrap();
    let err = AuditLog::open(dir.path(), config()).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    assert!(
        err.to_string().contains("signed records are missing"),
        "{err}"
    );
    // Change one byte of a signed record instead.
    let mut changed = data.clone();
    let at = changed.iter().position(|&b| b == b'u').unwrap();
    changed[at] = b'v';
    fs::write(&seg, &changed).unwrap();
    let err = AuditLog::open(dir.path(), config()).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err}");
    // Intact again: opens.
    fs::write(&seg, &data).unwrap();
    reopen_and_close(dir.path());
}

#[test]
fn key_files_are_private_and_refused_when_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 1, 1 << 20);
    let layout = Layout::new(dir.path());
    for p in [layout.signing_key(), layout.hmac_key()] {
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    fs::set_permissions(layout.hmac_key(), fs::Permissions::from_mode(0o640)).unwrap();
    let err = AuditLog::open(dir.path(), config()).unwrap_err();
    assert!(matches!(err, Error::Key { .. }), "{err}");
    assert!(err.to_string().contains("chmod 600"), "{err}");
    fs::set_permissions(layout.hmac_key(), fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(layout.signing_key(), fs::Permissions::from_mode(0o604)).unwrap();
    assert!(matches!(
        AuditLog::open(dir.path(), config()),
        Err(Error::Key { .. })
    ));
}

#[test]
fn the_audit_key_hashes_secrets_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 1, 1 << 20);
    let key = rampart_audit::layout::load_audit_key(&Layout::new(dir.path())).unwrap();
    let h = key.hash_secret(b"rmp_secret_token");
    assert_eq!(h.len(), 64);
    assert_eq!(h, key.hash_secret(b"rmp_secret_token"));
    assert_ne!(h, key.hash_secret(b"rmp_secret_tokeN"));
    assert!(key.id().starts_with("hmac-"));
    // A second log has a different key.
    let other = tempfile::tempdir().unwrap();
    build_log(other.path(), 1, 1 << 20);
    let key2 = rampart_audit::layout::load_audit_key(&Layout::new(other.path())).unwrap();
    assert_ne!(key2.hash_secret(b"rmp_secret_token"), h);
}

#[test]
fn crash_between_history_and_latest_is_repaired_on_open() {
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 120, 1 << 20);
    let layout = Layout::new(dir.path());
    let history = layout.read_history().unwrap();
    assert!(history.len() >= 2);
    // `latest` one behind the history: a warning, not damage.
    fs::write(layout.latest(), &history[history.len() - 2]).unwrap();
    let r = verify(dir.path(), None, None).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert!(
        r.warnings.iter().any(|w| w.contains("older than")),
        "{:?}",
        r.warnings
    );
    reopen_and_close(dir.path());
    let r = verify(dir.path(), None, None).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert!(
        !r.warnings.iter().any(|w| w.contains("older than")),
        "{:?}",
        r.warnings
    );
    // `latest` never written (crash during the first checkpoint): reopening restores it.
    fs::remove_file(layout.latest()).unwrap();
    let rec = reopen_and_close(dir.path());
    assert_eq!(rec.checkpoint_size, 121);
    assert!(verify(dir.path(), None, None).unwrap().ok());
}

#[test]
fn records_without_any_checkpoint_are_refused_not_signed() {
    // A log signs a checkpoint at first open, before any record: records with no checkpoint at
    // all mean the checkpoints were removed. Reopening must not sign the (possibly rewritten)
    // records, which could contradict the lost checkpoints.
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 20, 1 << 20);
    let layout = Layout::new(dir.path());
    fs::remove_file(layout.latest()).unwrap();
    fs::remove_file(layout.history()).unwrap();
    match AuditLog::open(dir.path(), config()) {
        Err(Error::Corrupt(m)) => assert!(m.contains("no signed checkpoint"), "{m}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a log whose checkpoints were removed was reopened and re-signed"),
    }
    assert!(!layout.latest().exists(), "nothing was signed");
}

#[test]
fn a_torn_history_entry_is_dropped_on_open() {
    // A crash while appending a checkpoint to history.log leaves part of a note (never
    // acknowledged; `latest` not yet replaced). Reopening must cut it, or the next checkpoint
    // merges with it into an entry that no longer verifies.
    let dir = tempfile::tempdir().unwrap();
    build_log(dir.path(), 30, 1 << 20);
    let layout = Layout::new(dir.path());
    let history = layout.read_history().unwrap();
    let last = history.last().unwrap().clone();
    let mut f = OpenOptions::new()
        .append(true)
        .open(layout.history())
        .unwrap();
    f.write_all(&last.as_bytes()[..last.len() / 2]).unwrap();
    drop(f);
    reopen_and_close(dir.path());
    let r = verify(dir.path(), None, None).unwrap();
    assert!(r.ok(), "{:?}", r.failure);
    assert_eq!(r.records, 31);
    assert_eq!(layout.read_history().unwrap().len(), history.len() + 1);
}

/// One writer per log: a second open while the first is running is refused (two writers would
/// interleave indices and sign diverging checkpoints); after shutdown it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_has_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuditLog::open(dir.path(), config()).unwrap();
    first.append(sample_record(0)).await.unwrap();
    let e = AuditLog::open(dir.path(), config()).unwrap_err();
    assert!(matches!(e, Error::InUse(_)), "{e}");
    assert!(e.to_string().contains("already open"), "{e}");
    first.shutdown().await;
    let second = AuditLog::open(dir.path(), config()).unwrap();
    assert_eq!(second.append(sample_record(1)).await.unwrap(), 1);
    second.shutdown().await;
    assert!(verify(dir.path(), None, None).unwrap().ok());
}
