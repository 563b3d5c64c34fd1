//! The scan engine: format detection by content, containers, compression, limits.

use std::cell::Cell;
use std::io::Write as _;

use proptest::prelude::*;
use rampart_formats::source::Source;
use rampart_scan::engine::{Format, detect};
use rampart_scan::limits::ContainerLimits;
use rampart_scan::{Report, ScanLimits, Scanned, Scanner, Severity, Verdict};

const MARKER: &[u8] = b"touch /tmp/rampart_engine_marker";

fn scan(bytes: &[u8]) -> Scanned {
    Scanner::default().scan_bytes(bytes)
}

fn glob(m: &str, n: &str) -> Vec<u8> {
    format!("c{m}\n{n}\n").into_bytes()
}

fn bu(s: &[u8]) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
    v.extend_from_slice(s);
    v
}

/// `posix.system(MARKER)`, protocol 2.
fn evil() -> Vec<u8> {
    let mut v = b"\x80\x02".to_vec();
    v.extend(glob("posix", "system"));
    v.extend(bu(MARKER));
    v.extend_from_slice(b"\x85R.");
    v
}

/// `{'a': [1, 2]}`, protocol 2.
fn benign() -> Vec<u8> {
    b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02es.".to_vec()
}

/// A torch `data.pkl`: OrderedDict of one `_rebuild_tensor_v2` tensor on storage "0".
fn torch_state() -> Vec<u8> {
    let mut v = b"\x80\x02".to_vec();
    v.extend(glob("collections", "OrderedDict"));
    v.extend_from_slice(b")Rq\x00X\x01\x00\x00\x00wq\x01");
    v.extend(glob("torch._utils", "_rebuild_tensor_v2"));
    v.extend_from_slice(b"((X\x07\x00\x00\x00storageq\x02");
    v.extend(glob("torch", "FloatStorage"));
    v.extend_from_slice(
        b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89",
    );
    v.extend(glob("collections", "OrderedDict"));
    v.extend_from_slice(b")RtRs.");
    v
}

fn findings_with(r: &Report, rule: &str) -> usize {
    r.findings.iter().filter(|f| f.rule == rule).count()
}

fn has_member(r: &Report, member: &str, rule_prefix: &str) -> bool {
    r.findings
        .iter()
        .any(|f| f.member.as_deref() == Some(member) && f.rule.starts_with(rule_prefix))
}

// ------------------------------------------------------------------ a tiny zip writer

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[derive(Clone)]
struct ZipEntry {
    name: String,
    data: Vec<u8>,
    deflate: bool,
    flags: u16,
    /// Overrides for hostile archives.
    crc: Option<u32>,
    declared_size: Option<u32>,
    local_name: Option<String>,
    /// Written as a local header only, left out of the central directory.
    hidden: bool,
}

fn entry(name: &str, data: &[u8]) -> ZipEntry {
    ZipEntry {
        name: name.to_owned(),
        data: data.to_vec(),
        deflate: false,
        flags: 0,
        crc: None,
        declared_size: None,
        local_name: None,
        hidden: false,
    }
}

fn zip(entries: &[ZipEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = u32::try_from(out.len()).unwrap();
        let body = if e.deflate {
            deflate(&e.data)
        } else {
            e.data.clone()
        };
        let method: u16 = if e.deflate { 8 } else { 0 };
        let crc = e.crc.unwrap_or_else(|| crc32(&e.data));
        let csize = u32::try_from(body.len()).unwrap();
        let usize_ = e
            .declared_size
            .unwrap_or(u32::try_from(e.data.len()).unwrap());
        let local_name = e.local_name.as_deref().unwrap_or(&e.name);
        out.extend_from_slice(b"PK\x03\x04\x14\x00");
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&usize_.to_le_bytes());
        out.extend_from_slice(&u16::try_from(local_name.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(local_name.as_bytes());
        out.extend_from_slice(&body);
        if e.hidden {
            continue;
        }
        central.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00");
        central.extend_from_slice(&e.flags.to_le_bytes());
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&csize.to_le_bytes());
        central.extend_from_slice(&usize_.to_le_bytes());
        central.extend_from_slice(&u16::try_from(e.name.len()).unwrap().to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(e.name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).unwrap();
    let cd_size = u32::try_from(central.len()).unwrap();
    out.extend_from_slice(&central);
    let n = u16::try_from(entries.iter().filter(|e| !e.hidden).count()).unwrap();
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn torch_zip(data_pkl: &[u8], storage: &[u8]) -> Vec<u8> {
    zip(&[
        entry("archive/data.pkl", data_pkl),
        entry("archive/byteorder", b"little"),
        entry("archive/data/0", storage),
        entry("archive/version", b"3\n"),
    ])
}

fn fixture(name: &str) -> Vec<u8> {
    let p = format!(
        "{}/../../testdata/containers/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

// ------------------------------------------------------------------ shared samples

#[test]
fn shared_samples_get_their_labelled_verdicts_through_the_engine() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scan-samples"
    );
    let labels = std::fs::read_to_string(format!("{dir}/labels.jsonl")).unwrap();
    let mut checked = 0;
    for line in labels.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = v["path"].as_str().unwrap();
        let category = v["category"].as_str().unwrap();
        let expected = match (v["label"].as_str().unwrap(), category) {
            ("malicious", _) => Verdict::Malicious,
            (_, "benign_review") => Verdict::Review,
            _ => Verdict::Safe,
        };
        let file = rampart_formats::source::FileSource::new(
            std::fs::File::open(format!("{dir}/{path}")).unwrap(),
        )
        .unwrap();
        let s = Scanner::default().scan_source(&file);
        assert_eq!(
            s.report.verdict, expected,
            "{path} ({}): {:#?}",
            s.format, s.report
        );
        checked += 1;
    }
    assert_eq!(checked, 24, "every shared sample checked");
}

#[test]
fn shared_sample_formats_are_recognised_by_content() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/scan-samples"
    );
    for (path, format) in [
        ("torch/pytorch_model.bin", "pytorch-zip"),
        ("torch/injected_model.pt", "pytorch-zip"),
        ("torch/legacy_format.bin", "pytorch-legacy"),
        ("numpy/weights.npy", "npy"),
        ("numpy/object_labels.npy", "npy"),
        ("numpy/arrays.npz", "npz"),
        ("joblib/model.joblib", "gzip"),
        ("pickle/exec_inst_p0.data", "pickle"),
        ("pickle/os_system_p0.pkl", "pickle"),
        ("keras/dense.keras", "keras"),
        ("safetensors/model.safetensors", "safetensors"),
        ("safetensors/bad_header_len.safetensors", "safetensors"),
        ("gguf/tiny.gguf", "gguf"),
        ("onnx/model.onnx", "onnx"),
        ("onnx/traversal.onnx", "onnx"),
    ] {
        let bytes = std::fs::read(format!("{dir}/{path}")).unwrap();
        assert_eq!(scan(&bytes).format, format, "{path}");
    }
    // The malicious torch zip names the member that carries the payload.
    let bytes = std::fs::read(format!("{dir}/torch/injected_model.pt")).unwrap();
    let r = scan(&bytes).report;
    assert!(
        has_member(&r, "archive/data.pkl", "pickle/denied"),
        "{r:#?}"
    );
}

// ------------------------------------------------------------------ detection

#[test]
fn detect_uses_magic_only() {
    assert_eq!(detect(b"", 0), Format::Empty);
    assert_eq!(detect(b"PK\x03\x04....", 100), Format::Zip);
    assert_eq!(detect(b"\x93NUMPY\x01\x00", 100), Format::Npy);
    assert_eq!(
        detect(b"\x1f\x8b\x08\x00", 100),
        Format::Compressed(rampart_formats::compress::Codec::Gzip)
    );
    assert_eq!(detect(b"GGUF\x03\x00\x00\x00", 100), Format::Gguf);
    assert_eq!(detect(b"\x89HDF\r\n\x1a\n", 100), Format::Hdf5);
    // SavedModel: schema version 1, then a meta_graphs entry starting with graph_def.
    assert_eq!(
        detect(b"\x08\x01\x12\x05\x12\x03\x0a\x01\x00", 100),
        Format::SavedModel
    );
    // A truncated head is not enough to call it a SavedModel.
    assert_ne!(detect(b"\x08\x01\x12\x05", 100), Format::SavedModel);
    assert_eq!(detect(b"\x80\x04\x95", 100), Format::Pickle);
    assert_eq!(detect(b"\x04\x22\x4d\x18", 100), Format::Lz4);
    assert_eq!(detect(b"(dp0\n", 100), Format::Other);
    assert_eq!(detect(b"{\"a\": 1}", 100), Format::Other);
}

#[test]
fn text_is_safe_and_protocol_0_pickles_with_calls_are_not_text() {
    for text in [
        &b"{\"vocab\": {\"a\": 1, \"b\": 2}}\n"[..],
        b"[PAD]\n[UNK]\ncat\ndog\n",
        b"cat\ndog\nfish\n",
        b"config:\n  hidden: 32\n",
        "h\u{e9}llo w\u{f6}rld\n".as_bytes(),
    ] {
        let s = scan(text);
        assert_eq!(
            (s.format, s.report.verdict),
            ("text", Verdict::Safe),
            "{text:?}: {:#?}",
            s.report
        );
    }
    let mut p0 = glob("os", "system");
    p0.extend_from_slice(b"(S'id'\ntR.");
    let s = scan(&p0);
    assert_eq!((s.format, s.report.verdict), ("pickle", Verdict::Malicious));
    // Broken after the call: still a pickle, still malicious.
    p0.truncate(p0.len() - 1);
    p0.extend_from_slice(b"\xfe");
    assert_eq!(scan(&p0).report.verdict, Verdict::Malicious);
    // A protocol-1 pickle: no PROTO opcode, binary opcodes.
    let mut p1 = glob("posix", "system");
    p1.extend(bu(MARKER));
    p1.extend_from_slice(b"\x85R.");
    assert_eq!(scan(&p1).report.verdict, Verdict::Malicious);
    // Plain-data protocol-0 pickle: a pickle, safe.
    let s = scan(b"(dp0\nVa\np1\nI1\ns.");
    assert_eq!((s.format, s.report.verdict), ("pickle", Verdict::Safe));
}

#[test]
fn unknown_binary_is_safe_with_a_note_and_empty_is_safe() {
    let s = scan(&[0x00, 0x01, 0xfe, 0xff, 0x10, 0x20]);
    assert_eq!((s.format, s.report.verdict), ("unknown", Verdict::Safe));
    assert_eq!(findings_with(&s.report, "format/unrecognised-data"), 1);
    assert!(
        s.report
            .findings
            .iter()
            .all(|f| f.severity == Severity::Info)
    );
    // A raw tensor blob (ONNX external data) and a sentencepiece-like protobuf: safe.
    let floats: Vec<u8> = (0u32..4096)
        .flat_map(|i| (i as f32 * 0.37).to_le_bytes())
        .collect();
    assert_eq!(scan(&floats).report.verdict, Verdict::Safe);
    let mut spm = Vec::new();
    for piece in ["\u{2581}the", "\u{2581}a", "ing", "<unk>"] {
        spm.push(0x0a);
        spm.push((piece.len() + 7) as u8);
        spm.push(0x0a);
        spm.push(piece.len() as u8);
        spm.extend_from_slice(piece.as_bytes());
        spm.extend_from_slice(b"\x15\x00\x00\x80\xbf\x18\x01");
    }
    spm.extend_from_slice(&[0xff, 0xfe, 0x00, 0x01]);
    assert_eq!(scan(&spm).report.verdict, Verdict::Safe);
    // The pickle guard stays: binary content that the VM reads as a pickle with calls.
    let mut p = glob("posix", "system");
    p.extend(bu(MARKER));
    p.extend_from_slice(b"\x85R\xff\xfe");
    let s = scan(&p);
    assert_eq!((s.format, s.report.verdict), ("pickle", Verdict::Malicious));
    // An import of an unknown module, then binary junk: a pickle, never safe.
    let s = scan(b"cfoo_mod\nbar\n\xff\xfe\x00");
    assert_eq!(s.format, "pickle");
    assert!(s.report.verdict >= Verdict::Review, "{:?}", s.report);
    let s = scan(b"");
    assert_eq!((s.format, s.report.verdict), ("empty", Verdict::Safe));
    // lz4 and 7z are recognised but not decoded: error, never safe.
    assert_eq!(
        scan(b"\x04\x22\x4d\x18\x40\x40").report.verdict,
        Verdict::Error
    );
    assert_eq!(
        scan(b"7z\xbc\xaf\x27\x1c\x00\x04").report.verdict,
        Verdict::Error
    );
    assert_eq!(
        scan(b"\x28\xb5\x2f\xfd\x00\x58").report.verdict,
        Verdict::Error
    );
}

#[test]
fn recognised_formats_are_judged_by_their_own_scanners() {
    // safetensors: an 8-byte length running past the end is an attack on parsers.
    let mut st = u64::MAX.to_le_bytes().to_vec();
    st.extend_from_slice(b"{\"a\": {}}");
    let s = scan(&st);
    assert_eq!(s.format, "safetensors");
    assert_eq!(s.report.verdict, Verdict::Malicious, "{:#?}", s.report);
    assert!(
        s.report
            .findings
            .iter()
            .all(|f| f.rule != "format/not-analysed"),
        "{:#?}",
        s.report
    );
}

// ------------------------------------------------------------------ zip / PyTorch

#[test]
fn torch_state_dict_zip_is_safe_and_payload_is_malicious() {
    let storage = vec![0u8; 64];
    let s = scan(&torch_zip(&torch_state(), &storage));
    assert_eq!(
        (s.format, s.report.verdict),
        ("pytorch-zip", Verdict::Safe),
        "{:#?}",
        s.report
    );
    let s = scan(&torch_zip(&evil(), &storage));
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert!(has_member(&s.report, "archive/data.pkl", "pickle/denied"));
    // The same state dict outside a torch archive needs review (weights_only rules off).
    assert_eq!(scan(&torch_state()).report.verdict, Verdict::Review);
}

#[test]
fn any_pickle_member_is_scanned_by_content_whatever_its_name() {
    let storage = vec![0u8; 64];
    // An extension-less protocol-1 member next to a benign data.pkl.
    let mut p1 = glob("posix", "system");
    p1.extend(bu(MARKER));
    p1.extend_from_slice(b"\x85R.");
    let z = zip(&[
        entry("m/data.pkl", &torch_state()),
        entry("m/version", b"3\n"),
        entry("m/data/0", &storage),
        entry("m/extra", &p1),
    ]);
    let s = scan(&z);
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert!(
        has_member(&s.report, "m/extra", "pickle/denied"),
        "{:#?}",
        s.report
    );
    // A pickle planted in a storage slot is found by peeking at the storage head.
    let z = torch_zip(&torch_state(), &evil());
    let s = scan(&z);
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert!(has_member(&s.report, "archive/data/0", "pickle/denied"));
}

#[test]
fn duplicate_names_each_member_is_scanned() {
    let z = zip(&[
        entry("archive/data.pkl", &evil()),
        entry("archive/data.pkl", &torch_state()),
        entry("archive/version", b"3\n"),
    ]);
    let s = scan(&z);
    assert_eq!(s.report.verdict, Verdict::Malicious, "{:#?}", s.report);
    assert_eq!(findings_with(&s.report, "zip/duplicate-name"), 1);
    // Benign duplicates: review (loaders disagree on which one wins).
    let z = zip(&[
        entry("archive/data.pkl", &torch_state()),
        entry("archive/data.pkl", &torch_state()),
        entry("archive/version", b"3\n"),
    ]);
    assert_eq!(scan(&z).report.verdict, Verdict::Review);
}

#[test]
fn nested_zips_carry_the_member_path_and_stop_at_max_depth() {
    let inner = zip(&[entry("data.pkl", &evil())]);
    let outer = zip(&[entry("inner.zip", &inner), entry("readme.txt", b"hello\n")]);
    let s = scan(&zip(&[entry("outer.zip", &outer)]));
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert!(
        has_member(&s.report, "outer.zip/inner.zip/data.pkl", "pickle/denied"),
        "{:#?}",
        s.report
    );
    // Nest a benign zip beyond the limit: error naming the limit.
    let mut z = zip(&[entry("data.pkl", &benign())]);
    for i in 0..6 {
        z = zip(&[entry(&format!("level{i}.zip"), &z)]);
    }
    assert_eq!(scan(&z).report.verdict, Verdict::Safe);
    let shallow = Scanner::new(ScanLimits {
        container: ContainerLimits {
            max_depth: 3,
            ..ContainerLimits::default()
        },
        ..ScanLimits::default()
    });
    let r = shallow.scan_bytes(&z).report;
    assert_eq!(r.verdict, Verdict::Error);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "limits/exceeded" && f.evidence.as_deref() == Some("max_depth"))
    );
}

#[test]
fn encrypted_flag_crc_mismatch_and_local_mismatch_are_reported_and_scanned() {
    let mut e = entry("data.pkl", &evil());
    e.flags = 1;
    let s = scan(&zip(&[e.clone()]));
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert_eq!(findings_with(&s.report, "zip/encrypted-flag"), 1);
    let mut b = entry("data.pkl", &benign());
    b.flags = 1;
    assert_eq!(scan(&zip(&[b])).report.verdict, Verdict::Review);
    // CRC mismatch: reported, not fatal.
    let mut c = entry("data.pkl", &evil());
    c.crc = Some(0xdead_beef);
    let s = scan(&zip(&[c]));
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert_eq!(findings_with(&s.report, "zip/crc-mismatch"), 1);
    let mut c = entry("data.pkl", &benign());
    c.crc = Some(0xdead_beef);
    assert_eq!(scan(&zip(&[c])).report.verdict, Verdict::Review);
    // Local header names another file.
    let mut l = entry("data.pkl", &benign());
    l.local_name = Some("other.pkl".to_owned());
    let r = scan(&zip(&[l])).report;
    assert_eq!(r.verdict, Verdict::Review);
    assert_eq!(findings_with(&r, "zip/local-mismatch"), 1);
    // A local entry missing from the central directory.
    let mut h = entry("hidden.pkl", &evil());
    h.hidden = true;
    let r = scan(&zip(&[h, entry("data.pkl", &benign())])).report;
    assert_eq!(r.verdict, Verdict::Review, "{r:#?}");
    assert_eq!(findings_with(&r, "zip/hidden-entry"), 1);
    // Unsafe paths.
    let r = scan(&zip(&[entry("../../etc/x.pkl", &benign())])).report;
    assert_eq!(findings_with(&r, "zip/unsafe-path"), 1);
}

#[test]
fn stored_and_deflated_members_are_both_read() {
    let mut d = entry("archive/data.pkl", &evil());
    d.deflate = true;
    let s = scan(&zip(&[d, entry("archive/version", b"3\n")]));
    assert_eq!(s.report.verdict, Verdict::Malicious);
    let mut d = entry("archive/data.pkl", &torch_state());
    d.deflate = true;
    let s = scan(&zip(&[d, entry("archive/version", b"3\n")]));
    assert_eq!(s.report.verdict, Verdict::Safe, "{:#?}", s.report);
}

#[test]
fn bzip2_and_lzma_zip_members_deflated_storages_and_prefixed_archives() {
    for tag in ["bzip2", "lzma"] {
        let s = scan(&fixture(&format!("torch_{tag}_members_evil.zip")));
        assert_eq!(
            s.report.verdict,
            Verdict::Malicious,
            "{tag}: {:#?}",
            s.report
        );
        let s = scan(&fixture(&format!("torch_{tag}_members_benign.zip")));
        assert_eq!(
            (s.format, s.report.verdict),
            ("pytorch-zip", Verdict::Safe),
            "{tag}: {:#?}",
            s.report
        );
    }
    // Deflated tensor storages are not judged as unknown content.
    let mut st = entry("archive/data/0", &[0x3f; 4096]);
    st.deflate = true;
    let z = zip(&[
        entry("archive/data.pkl", &torch_state()),
        st,
        entry("archive/version", b"3\n"),
    ]);
    assert_eq!(scan(&z).report.verdict, Verdict::Safe);
    // Junk before a zip: Python's zipfile still opens it, so it is scanned as a zip.
    let mut pre = vec![0u8; 64];
    pre.extend_from_slice(b"NOT A ZIP HEADER");
    pre.extend(torch_zip(&evil(), &[0u8; 16]));
    let s = scan(&pre);
    assert_eq!(
        (s.format, s.report.verdict),
        ("pytorch-zip", Verdict::Malicious)
    );
    assert_eq!(findings_with(&s.report, "zip/prefix-data"), 1);
    // A pickle with a zip appended: both are judged.
    let mut poly = benign();
    poly.extend(zip(&[entry("x.pkl", &evil())]));
    let s = scan(&poly);
    assert_eq!((s.format, s.report.verdict), ("pickle", Verdict::Malicious));
}

#[test]
fn zip_bombs_end_in_a_finding() {
    // High ratio: 64 MiB of zeros deflate to ~64 KiB.
    let mut z = entry("zeros.bin", &vec![0u8; 64 << 20]);
    z.deflate = true;
    let bomb = zip(&[z]);
    assert!(bomb.len() < 200_000);
    let r = scan(&bomb).report;
    assert_eq!(r.verdict, Verdict::Malicious, "{r:#?}");
    assert_eq!(findings_with(&r, "limits/decompression-bomb"), 1);
    // Huge declared size (4 GiB - 1) on a tiny member: refused before reading.
    let mut h = entry("data.pkl", &benign());
    h.declared_size = Some(u32::MAX);
    let r = scan(&zip(&[h])).report;
    assert_eq!(r.verdict, Verdict::Error);
    assert!(
        r.findings.iter().any(|f| f.rule == "limits/exceeded"),
        "{r:#?}"
    );
    // Two central entries pointing at one member's bytes (the overlapping-files bomb).
    let one = zip(&[entry("a.pkl", &benign())]);
    let local_len = 30 + "a.pkl".len() + benign().len();
    let central = one[local_len..one.len() - 22].to_vec();
    let mut overlap = one[..one.len() - 22].to_vec();
    let mut second = central.clone();
    second[46..51].copy_from_slice(b"b.pkl");
    overlap.extend_from_slice(&second);
    let cd_size = u32::try_from(central.len() * 2).unwrap();
    overlap.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x02\x00\x02\x00");
    overlap.extend_from_slice(&cd_size.to_le_bytes());
    overlap.extend_from_slice(&u32::try_from(local_len).unwrap().to_le_bytes());
    overlap.extend_from_slice(&0u16.to_le_bytes());
    let r = scan(&overlap).report;
    assert_eq!(r.verdict, Verdict::Malicious, "{r:#?}");
    assert_eq!(findings_with(&r, "zip/overlap"), 1);
    // Total budget across members.
    let small = Scanner::new(ScanLimits {
        container: ContainerLimits {
            max_total_bytes: 100,
            ..ContainerLimits::default()
        },
        ..ScanLimits::default()
    });
    let z = zip(&[entry("a.pkl", &[b'N'; 60]), entry("b.pkl", &[b'N'; 60])]);
    assert_eq!(small.scan_bytes(&z).report.verdict, Verdict::Error);
}

#[test]
fn truncated_zip_is_error_not_safe() {
    let z = torch_zip(&torch_state(), &[0u8; 64]);
    for cut in [10, z.len() / 2, z.len() - 5] {
        let s = scan(&z[..cut]);
        assert_ne!(s.report.verdict, Verdict::Safe, "cut at {cut}: {s:#?}");
    }
}

// ------------------------------------------------------------------ compression / joblib

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn compressed_pickles_are_decompressed_and_scanned() {
    for (name, bytes, format, verdict) in [
        ("gzip evil", gzip(&evil()), "gzip", Verdict::Malicious),
        ("gzip benign", gzip(&benign()), "gzip", Verdict::Safe),
        (
            "zlib evil (joblib)",
            zlib(&evil()),
            "zlib",
            Verdict::Malicious,
        ),
        ("zlib benign", zlib(&benign()), "zlib", Verdict::Safe),
        ("xz evil", fixture("evil.pkl.xz"), "xz", Verdict::Malicious),
        ("xz benign", fixture("benign.pkl.xz"), "xz", Verdict::Safe),
        (
            "bz2 evil",
            fixture("evil.pkl.bz2"),
            "bzip2",
            Verdict::Malicious,
        ),
        (
            "bz2 benign",
            fixture("benign.pkl.bz2"),
            "bzip2",
            Verdict::Safe,
        ),
        (
            "lzma evil",
            fixture("evil.joblib.lzma"),
            "lzma",
            Verdict::Malicious,
        ),
        (
            "gzip in gzip",
            gzip(&gzip(&evil())),
            "gzip",
            Verdict::Malicious,
        ),
    ] {
        let s = scan(&bytes);
        assert_eq!(
            (s.format, s.report.verdict),
            (format, verdict),
            "{name}: {:#?}",
            s.report
        );
    }
    let r = scan(&gzip(&evil())).report;
    assert!(has_member(&r, "[gzip]", "pickle/denied"), "{r:#?}");
    // A .pkl.gz inside a zip.
    let r = scan(&zip(&[entry("model.pkl.gz", &gzip(&evil()))])).report;
    assert!(
        has_member(&r, "model.pkl.gz/[gzip]", "pickle/denied"),
        "{r:#?}"
    );
}

#[test]
fn corrupt_or_bomb_streams_are_error() {
    // Truncated stream: error, but what was decompressed before the cut is still judged.
    let mut g = gzip(&benign());
    g.truncate(g.len() - 12);
    let r = scan(&g).report;
    assert_eq!(r.verdict, Verdict::Error);
    assert_eq!(findings_with(&r, "compress/corrupt"), 1, "{r:#?}");
    let mut g = gzip(&evil());
    g.truncate(g.len() - 12);
    assert_eq!(scan(&g).report.verdict, Verdict::Malicious);
    // A ratio only a bomb reaches: malicious, and the bytes before the stop are still scanned.
    let mut zeros = evil();
    zeros.extend(vec![0u8; 32 << 20]);
    let r = scan(&gzip(&zeros)).report;
    assert_eq!(r.verdict, Verdict::Malicious);
    assert_eq!(findings_with(&r, "limits/decompression-bomb"), 1, "{r:#?}");
    assert!(has_member(&r, "[gzip]", "pickle/denied"), "{r:#?}");
    // Nested streams that each stay under the ratio limit: the cumulative ratio catches them.
    let r = scan(&gzip(&gzip(&vec![0u8; 16 << 20]))).report;
    assert_eq!(r.verdict, Verdict::Malicious, "{r:#?}");
    assert_eq!(findings_with(&r, "limits/decompression-bomb"), 1, "{r:#?}");
    // An absolute size limit is an error.
    let tight = Scanner::new(ScanLimits {
        container: ContainerLimits {
            max_member_bytes: 1 << 20,
            ..ContainerLimits::default()
        },
        ..ScanLimits::default()
    });
    let noise: Vec<u8> = (0..(2u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = tight.scan_bytes(&gzip(&noise)).report;
    assert_eq!(r.verdict, Verdict::Error, "{r:#?}");
    assert!(r.findings.iter().any(|f| f.rule == "limits/exceeded"));
    // Payload before the damage still counts: a gzip of (evil + garbage) is malicious.
    let mut e = evil();
    e.pop();
    e.extend_from_slice(b"\xfe\xfe");
    assert_eq!(scan(&gzip(&e)).report.verdict, Verdict::Malicious);
}

/// An uncompressed joblib dump of `{'a': <2×3 float64 array>, 'b': tail}`: the wrapper pickle,
/// the alignment padding, the raw array bytes inline, then the rest of the pickle.
fn joblib_inline(tail_value: &[u8], dims: (u8, u8)) -> Vec<u8> {
    let mut v = b"\x80\x02}q\x00(X\x01\x00\x00\x00a".to_vec();
    v.extend(glob("joblib.numpy_pickle", "NumpyArrayWrapper"));
    v.extend_from_slice(b")\x81q\x01}q\x02(X\x08\x00\x00\x00subclass");
    v.extend(glob("numpy", "ndarray"));
    v.extend_from_slice(b"X\x05\x00\x00\x00shapeq\x03K");
    v.extend_from_slice(&[dims.0, b'K', dims.1, 0x86]);
    v.extend_from_slice(b"X\x05\x00\x00\x00orderX\x01\x00\x00\x00CX\x05\x00\x00\x00dtype");
    v.extend(glob("numpy", "dtype"));
    v.extend_from_slice(b"X\x02\x00\x00\x00f8\x89\x88\x87RX\x0a\x00\x00\x00allow_mmap\x88ub");
    let x = v.len() - 1;
    let pad = 16 - (x + 2) % 16;
    v.push(u8::try_from(pad).unwrap());
    v.extend(std::iter::repeat_n(0xff, pad));
    assert_eq!(v.len() % 16, 0);
    for _ in 0..6 {
        // 1.0f64 — its bytes are not valid opcodes, so a plain VM breaks here.
        v.extend_from_slice(&1.0f64.to_le_bytes());
    }
    v.extend_from_slice(b"X\x01\x00\x00\x00b");
    v.extend_from_slice(tail_value);
    v.extend_from_slice(b"u.");
    v
}

#[test]
fn uncompressed_joblib_skips_inline_arrays_and_scans_the_rest() {
    let s = scan(&joblib_inline(b"K\x05", (2, 3)));
    assert_eq!(
        (s.format, s.report.verdict),
        ("pickle", Verdict::Review),
        "{:#?}",
        s.report
    );
    assert_eq!(findings_with(&s.report, "joblib/inline-arrays"), 1);
    let mut payload = glob("posix", "system");
    payload.extend(bu(MARKER));
    payload.extend_from_slice(b"\x85R");
    let s = scan(&joblib_inline(&payload, (2, 3)));
    assert_eq!(s.report.verdict, Verdict::Malicious, "{:#?}", s.report);
    // Also inside zlib, as joblib.dump(compress=True) writes.
    assert_eq!(
        scan(&zlib(&joblib_inline(&payload, (2, 3)))).report.verdict,
        Verdict::Malicious
    );
    // A shape that does not match the data: the splice fails, never safe.
    let s = scan(&joblib_inline(b"K\x05", (9, 9)));
    assert_ne!(s.report.verdict, Verdict::Safe, "{:#?}", s.report);
}

// ------------------------------------------------------------------ legacy torch

fn legacy_stream(pickles: &[Vec<u8>], raw: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in pickles {
        v.extend_from_slice(p);
    }
    v.extend_from_slice(raw);
    v
}

fn legacy_parts() -> Vec<Vec<u8>> {
    vec![
        // magic number, LONG1 of 10 bytes
        b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec(),
        b"\x80\x02M\xe9\x03.".to_vec(),
        b"\x80\x02}q\x00X\x0d\x00\x00\x00little_endianq\x01\x88s.".to_vec(),
        torch_state(),
        b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a.".to_vec(),
    ]
}

#[test]
fn legacy_magic_stream_scans_every_pickle_and_skips_raw_storage() {
    // Raw storage bytes that would look like opcodes if parsed: 'c' + lines.
    // One FloatStorage of 4 elements (16 bytes), as the model pickle's persistent id says.
    let mut raw = 4u64.to_le_bytes().to_vec();
    raw.extend_from_slice(b"cos\nsystem\n\x00\x00\x00\x00\x00");
    let s = scan(&legacy_stream(&legacy_parts(), &raw));
    assert_eq!(
        (s.format, s.report.verdict),
        ("pytorch-legacy", Verdict::Safe),
        "{:#?}",
        s.report
    );
    for slot in [1, 3] {
        let mut parts = legacy_parts();
        parts[slot] = evil();
        let s = scan(&legacy_stream(&parts, &raw));
        assert_eq!(
            s.report.verdict,
            Verdict::Malicious,
            "payload in pickle {}",
            slot + 1
        );
    }
    // A payload appended after the storage records (torch never reads it; other tools might).
    let mut after = legacy_stream(&legacy_parts(), &raw);
    after.extend(evil());
    let s = scan(&after);
    assert_eq!(s.report.verdict, Verdict::Malicious, "{:#?}", s.report);
    assert_eq!(findings_with(&s.report, "pytorch/data-after-storages"), 1);
    // Storage records that run past the end of the file.
    let s = scan(&legacy_stream(&legacy_parts(), &raw[..12]));
    assert_eq!(s.report.verdict, Verdict::Error, "{:#?}", s.report);
    // Cut in the middle of the model pickle: error.
    let full = legacy_stream(&legacy_parts(), &[]);
    let s = scan(&full[..full.len() - 20]);
    assert_eq!(s.report.verdict, Verdict::Error);
}

#[test]
fn legacy_tar_and_long_names() {
    let s = scan(&fixture("legacy_torch_evil.tar"));
    assert_eq!(
        (s.format, s.report.verdict),
        ("pytorch-legacy-tar", Verdict::Malicious)
    );
    assert!(has_member(&s.report, "pickle", "pickle/denied"));
    let s = scan(&fixture("legacy_torch_benign.tar"));
    assert_eq!(
        (s.format, s.report.verdict),
        ("pytorch-legacy-tar", Verdict::Safe),
        "{:#?}",
        s.report
    );
    let long = format!("{}/payload", "d".repeat(120));
    for f in ["pax_longname_evil.tar", "gnu_longname_evil.tar"] {
        let s = scan(&fixture(f));
        assert_eq!(
            (s.format, s.report.verdict),
            ("tar", Verdict::Malicious),
            "{f}"
        );
        assert!(
            has_member(&s.report, &long, "pickle/denied"),
            "{f}: {:#?}",
            s.report
        );
    }
    let t = fixture("legacy_torch_evil.tar");
    assert_ne!(scan(&t[..700]).report.verdict, Verdict::Safe);
}

// ------------------------------------------------------------------ npy / npz

fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&u16::try_from(h.len()).unwrap().to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn npy_object_arrays_are_scanned_and_numeric_ones_are_safe() {
    let s = scan(&npy("<f4", "(2, 2)", &[0u8; 16]));
    assert_eq!((s.format, s.report.verdict), ("npy", Verdict::Safe));
    let s = scan(&npy("|O", "(1,)", &evil()));
    assert_eq!(s.report.verdict, Verdict::Malicious);
    // Offsets point into the file.
    let f = s
        .report
        .findings
        .iter()
        .find(|f| f.rule.starts_with("pickle/denied"))
        .unwrap();
    assert!(f.offset.unwrap() >= 64);
    // Truncated data.
    assert_eq!(
        scan(&npy("<f4", "(2, 2)", &[0u8; 8])).report.verdict,
        Verdict::Error
    );
    // npz with an object member.
    let z = zip(&[
        entry("a.npy", &npy("<f8", "(1,)", &[0u8; 8])),
        entry("b.npy", &npy("|O", "(1,)", &evil())),
    ]);
    let s = scan(&z);
    assert_eq!((s.format, s.report.verdict), ("npz", Verdict::Malicious));
    assert!(has_member(&s.report, "b.npy", "pickle/denied"));
    // np.savez_compressed of a 4 MiB all-zero array (ratio ~1000:1) is not a bomb.
    let mut zeros = entry("z.npy", &npy("<f4", "(1048576,)", &vec![0u8; 4 << 20]));
    zeros.deflate = true;
    let s = scan(&zip(&[zeros]));
    assert_eq!(
        (s.format, s.report.verdict),
        ("npz", Verdict::Safe),
        "{:#?}",
        s.report
    );
}

// ------------------------------------------------------------------ limits config

#[test]
fn limits_deserialize_strictly_with_defaults() {
    let l: ScanLimits =
        serde_json::from_str(r#"{"container": {"max_depth": 2}, "pickle": {"max_opcodes": 5}}"#)
            .unwrap();
    assert_eq!(l.container.max_depth, 2);
    assert_eq!(
        l.container.max_entries,
        ContainerLimits::default().max_entries
    );
    assert_eq!(l.pickle.max_opcodes, 5);
    assert_eq!(
        l.pickle.max_pickles,
        rampart_formats::pickle::Limits::default().max_pickles
    );
    assert!(serde_json::from_str::<ScanLimits>(r#"{"container": {"max_dpeth": 2}}"#).is_err());
    assert!(serde_json::from_str::<ScanLimits>(r#"{"pickle": {"bogus": 1}}"#).is_err());
    assert!(serde_json::from_str::<ScanLimits>(r#"{"other": {}}"#).is_err());
    assert_eq!(
        serde_json::from_str::<ScanLimits>("{}").unwrap(),
        ScanLimits::default()
    );
}

// ------------------------------------------------------------------ reads stay O(header)

/// A source that counts the bytes read, to prove tensor data is never touched.
struct Counting<'a> {
    inner: &'a [u8],
    read: Cell<u64>,
}

impl Source for Counting<'_> {
    fn len(&self) -> u64 {
        self.inner.len() as u64
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.read.set(self.read.get() + buf.len() as u64);
        self.inner.read_exact_at(offset, buf)
    }
}

#[test]
fn large_stored_tensor_is_not_read() {
    let tensor = vec![0x3fu8; 16 << 20];
    let z = torch_zip(&torch_state(), &tensor);
    let src = Counting {
        inner: &z,
        read: Cell::new(0),
    };
    let s = Scanner::default().scan_source(&src);
    assert_eq!(s.report.verdict, Verdict::Safe, "{:#?}", s.report);
    // The head (64 KiB), the central directory, local headers, the pickle, a 256-byte peek.
    assert!(src.read.get() < 80 * 1024, "read {} bytes", src.read.get());

    // The same archive stored inside another zip is scanned in place, still without the tensor.
    let outer = zip(&[entry("model.pt", &z), entry("notes.txt", b"hi\n")]);
    let src = Counting {
        inner: &outer,
        read: Cell::new(0),
    };
    let s = Scanner::default().scan_source(&src);
    assert_eq!(s.report.verdict, Verdict::Safe, "{:#?}", s.report);
    assert!(src.read.get() < 200 * 1024, "read {} bytes", src.read.get());
    let evil_outer = zip(&[entry("model.pt", &torch_zip(&evil(), &tensor))]);
    let s = scan(&evil_outer);
    assert_eq!(s.report.verdict, Verdict::Malicious);
    assert!(has_member(
        &s.report,
        "model.pt/archive/data.pkl",
        "pickle/denied"
    ));

    // A large unknown blob in a plain zip is judged from its head: review, not read in full.
    let mut blob = vec![0u8; 4 << 20];
    blob[0] = 0xfe;
    let z = zip(&[entry("blob.bin", &blob)]);
    let src = Counting {
        inner: &z,
        read: Cell::new(0),
    };
    let s = Scanner::default().scan_source(&src);
    assert_eq!(s.report.verdict, Verdict::Safe);
    assert!(has_member(
        &s.report,
        "blob.bin",
        "format/unrecognised-data"
    ));
    assert!(src.read.get() < 200 * 1024, "read {} bytes", src.read.get());
}

#[test]
fn embedded_keras_config_in_unrecognised_binary_is_judged() {
    // A keras_metadata.pb-like protobuf: string fields holding Keras config JSON.
    fn pb_string(field: u8, s: &[u8], out: &mut Vec<u8>) {
        out.push((field << 3) | 2);
        let mut n = s.len();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(s);
    }
    let lambda = br#"{"name": "model", "class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": 2}}, {"class_name": "Lambda", "config": {"name": "evil", "function": ["4wEAAAAAAAAA", null, null], "function_type": "lambda"}}]}}"#;
    // SavedMetadata { nodes: [SavedObject { node_id, node_path, identifier, metadata }] }.
    let node_head = |node: &mut Vec<u8>| {
        node.extend_from_slice(&[0x08, 0x00]);
        pb_string(2, b"root", node);
        pb_string(4, b"_tf_keras_sequential", node);
    };
    let mut pb = Vec::new();
    let mut node = Vec::new();
    node_head(&mut node);
    pb_string(5, lambda, &mut node);
    pb_string(1, &node, &mut pb);
    let s = scan(&pb);
    assert_eq!(s.report.verdict, Verdict::Malicious, "{:?}", s.report);
    assert!(
        findings_with(&s.report, "keras/lambda-code") >= 1,
        "{:#?}",
        s.report
    );
    // The same layout without a Lambda: judged, and safe.
    let benign = br#"{"name": "model", "class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": 2}}]}}"#;
    let mut pb = Vec::new();
    let mut node = Vec::new();
    node_head(&mut node);
    pb_string(5, benign, &mut node);
    pb_string(1, &node, &mut pb);
    let s = scan(&pb);
    assert_eq!(s.report.verdict, Verdict::Safe, "{:?}", s.report);
    assert_eq!(findings_with(&s.report, "format/embedded-keras-config"), 1);
}

// ------------------------------------------------------------------ properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        rampart_scan::engine::fuzz(&data);
    }

    #[test]
    fn engine_never_panics_on_mutated_containers(
        which in 0usize..4,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut base = match which {
            0 => torch_zip(&torch_state(), &[1u8; 32]),
            1 => gzip(&evil()),
            2 => npy("|O", "(1,)", &evil()),
            _ => fixture("legacy_torch_benign.tar"),
        };
        for (i, b) in flips {
            let n = base.len();
            base[i % n] ^= b;
        }
        base.truncate(cut % (base.len() + 1));
        let s = scan(&base);
        // A finding explains every non-safe verdict.
        prop_assert!(s.report.verdict == Verdict::Safe || !s.report.findings.is_empty());
    }
}
