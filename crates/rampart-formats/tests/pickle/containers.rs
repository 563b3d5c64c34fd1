//! Container parsers: zip (incl. ZIP64), tar, npy and compressed streams.

use std::io::Write as _;

use proptest::prelude::*;
use rampart_formats::compress::{self, Codec};
use rampart_formats::source::Source;
use rampart_formats::{Error, npy, tar, zip};

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

/// A stored zip; `zip64` writes the ZIP64 end records (and 0xffff.. in the classic record).
fn stored_zip(entries: &[(&str, &[u8])], comment: &[u8], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cd = Vec::new();
    for (name, data) in entries {
        let off = u32::try_from(out.len()).unwrap();
        let n = u32::try_from(data.len()).unwrap();
        let nl = u16::try_from(name.len()).unwrap();
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00");
        out.extend_from_slice(&crc32(data).to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&nl.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        cd.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x21\x00");
        cd.extend_from_slice(&crc32(data).to_le_bytes());
        cd.extend_from_slice(&n.to_le_bytes());
        cd.extend_from_slice(&n.to_le_bytes());
        cd.extend_from_slice(&nl.to_le_bytes());
        cd.extend_from_slice(&[0; 12]);
        cd.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u64;
    let cd_len = cd.len() as u64;
    out.extend_from_slice(&cd);
    let count = entries.len() as u64;
    if zip64 {
        let rec = out.len() as u64;
        out.extend_from_slice(b"PK\x06\x06");
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[0x2d, 0, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&cd_len.to_le_bytes());
        out.extend_from_slice(&cd_off.to_le_bytes());
        out.extend_from_slice(b"PK\x06\x07\x00\x00\x00\x00");
        out.extend_from_slice(&rec.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff");
        out.extend_from_slice(&[0xff; 8]);
    } else {
        let c = u16::try_from(count).unwrap();
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&u32::try_from(cd_len).unwrap().to_le_bytes());
        out.extend_from_slice(&u32::try_from(cd_off).unwrap().to_le_bytes());
    }
    out.extend_from_slice(&u16::try_from(comment.len()).unwrap().to_le_bytes());
    out.extend_from_slice(comment);
    out
}

#[test]
fn zip_reads_entries_with_comment_prefix_and_zip64() {
    let entries: &[(&str, &[u8])] = &[("a/data.pkl", b"N."), ("a/version", b"3\n")];
    for (comment, zip64) in [
        (&b""[..], false),
        (b"a comment PK\x05\x06 inside", false),
        (b"", true),
    ] {
        let z = stored_zip(entries, comment, zip64);
        let a = zip::open(&z, &zip::Limits::default()).unwrap();
        assert_eq!(a.zip64, zip64);
        assert_eq!(a.entries.len(), 2);
        assert_eq!(a.entries[0].name, "a/data.pkl");
        assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
        let m = zip::read_member(&z, &a, 1, &zip::Limits::default(), 1 << 20).unwrap();
        assert_eq!(m.data, b"3\n");
        assert!(m.crc_ok);
    }
    // Archive appended to other bytes: offsets are corrected, prefix reported.
    let mut pre = b"#!/bin/sh\nexit 0\n".to_vec();
    pre.extend(stored_zip(entries, b"", false));
    let a = zip::open(&pre, &zip::Limits::default()).unwrap();
    assert!(
        a.anomalies
            .iter()
            .any(|x| x.kind == zip::AnomalyKind::PrefixData)
    );
    assert_eq!(
        zip::read_member(&pre, &a, 0, &zip::Limits::default(), 100)
            .unwrap()
            .data,
        b"N."
    );
}

#[test]
fn zip_limits_and_damage() {
    let names: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let z = stored_zip(&entries, b"", false);
    let few = zip::Limits {
        max_entries: 10,
        ..zip::Limits::default()
    };
    assert!(matches!(
        zip::open(&z, &few),
        Err(Error::LimitExceeded {
            limit: "max_entries",
            ..
        })
    ));
    let short = zip::Limits {
        max_name_len: 1,
        ..zip::Limits::default()
    };
    assert!(zip::open(&z, &short).unwrap_err().is_limit());
    // Every truncation is an error or a readable prefix, never a panic.
    for cut in 0..z.len() {
        if let Ok(a) = zip::open(&&z[..cut], &zip::Limits::default()) {
            for i in 0..a.entries.len() {
                let _ = zip::read_member(&&z[..cut], &a, i, &zip::Limits::default(), 100);
            }
        }
    }
    assert!(
        zip::open(
            &&b"not a zip at all, not even close......"[..],
            &zip::Limits::default()
        )
        .is_err()
    );
    // A member larger than the caller's budget is refused before reading.
    let big = stored_zip(&[("t", &[0u8; 1000][..])], b"", false);
    let a = zip::open(&big, &zip::Limits::default()).unwrap();
    assert!(
        zip::read_member(&big, &a, 0, &zip::Limits::default(), 999)
            .unwrap_err()
            .is_limit()
    );
}

#[test]
fn zip_deflate_bomb_and_mismatch() {
    // Hand-assemble a deflate member whose declared size is smaller than the real output.
    let data = vec![b'a'; 10_000];
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&data).unwrap();
    let body = enc.finish().unwrap();
    let mut z = Vec::new();
    z.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00");
    z.extend_from_slice(&crc32(&data).to_le_bytes());
    z.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    z.extend_from_slice(&100u32.to_le_bytes());
    z.extend_from_slice(&1u16.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.push(b'x');
    z.extend_from_slice(&body);
    let cd_off = u32::try_from(z.len()).unwrap();
    z.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x08\x00\x00\x00\x21\x00");
    z.extend_from_slice(&crc32(&data).to_le_bytes());
    z.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    z.extend_from_slice(&100u32.to_le_bytes());
    z.extend_from_slice(&1u16.to_le_bytes());
    z.extend_from_slice(&[0; 16]);
    z.push(b'x');
    let cd_len = u32::try_from(z.len()).unwrap() - cd_off;
    z.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend_from_slice(&cd_len.to_le_bytes());
    z.extend_from_slice(&cd_off.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    let a = zip::open(&z, &zip::Limits::default()).unwrap();
    let e = zip::read_member(&z, &a, 0, &zip::Limits::default(), 1 << 20).unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e}");
}

#[test]
fn compress_round_trips_and_rejects_garbage() {
    let payload = b"\x80\x02N.".repeat(100);
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(&payload).unwrap();
    let g = g.finish().unwrap();
    assert_eq!(compress::sniff(&g), Some(Codec::Gzip));
    assert_eq!(
        compress::decompress(Codec::Gzip, &g, &compress::Limits::default()).unwrap(),
        payload
    );
    for codec in [
        Codec::Gzip,
        Codec::Zlib,
        Codec::Bzip2,
        Codec::Xz,
        Codec::Lzma,
        Codec::Deflate,
    ] {
        let r = compress::decompress(
            codec,
            b"\x00\x01garbage that is not a stream",
            &compress::Limits::default(),
        );
        if let Ok(out) = r {
            assert!(out.len() < 1 << 20);
        }
    }
    // An lzma header declaring a 4 GiB dictionary is refused by the memory limit, not allocated.
    let mut lz = vec![0x5d, 0xff, 0xff, 0xff, 0xff];
    lz.extend_from_slice(&[0xff; 8]);
    lz.extend_from_slice(&[0; 32]);
    let small = compress::Limits {
        max_output: 1 << 20,
        ..compress::Limits::default()
    };
    assert!(compress::decompress(Codec::Lzma, &lz, &small).is_err());
}

fn tar_header(name: &str, size: usize, typeflag: u8) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn tar_member(name: &str, data: &[u8], typeflag: u8) -> Vec<u8> {
    let mut v = tar_header(name, data.len(), typeflag);
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

#[test]
fn tar_headers_pax_and_limits() {
    let mut t = tar_member("sys_info", b"\x80\x02}.", b'0');
    let pax = b"26 path=dir/long/name.pkl\n";
    t.extend(tar_member("PaxHeader", pax, b'x'));
    t.extend(tar_member("short", b"N.", b'0'));
    t.extend(vec![0u8; 1024]);
    assert!(tar::sniff(&t));
    let a = tar::open(&t, &tar::Limits::default()).unwrap();
    assert!(a.terminated);
    let names: Vec<&str> = a.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["sys_info", "dir/long/name.pkl"]);
    assert_eq!(tar::read_member(&t, &a.entries[1], 100).unwrap(), b"N.");
    assert!(
        tar::read_member(&t, &a.entries[1], 1)
            .unwrap_err()
            .is_limit()
    );
    let one = tar::Limits {
        max_entries: 1,
        ..tar::Limits::default()
    };
    assert!(tar::open(&t, &one).unwrap_err().is_limit());
    // Bad checksum and a size past the end are errors.
    let mut bad = t.clone();
    bad[0] ^= 1;
    assert!(tar::open(&bad, &tar::Limits::default()).is_err());
    let big = tar_header("x", 1 << 30, b'0');
    assert!(
        tar::open(&big, &tar::Limits::default())
            .unwrap_err()
            .is_truncation()
    );
    for cut in (0..t.len()).step_by(97) {
        let _ = tar::open(&&t[..cut], &tar::Limits::default());
    }
}

#[test]
fn npy_headers() {
    let mut v = b"\x93NUMPY\x02\x00".to_vec();
    let h = b"{'descr': '<i8', 'fortran_order': True, 'shape': (3,), }\n";
    v.extend_from_slice(&u32::try_from(h.len()).unwrap().to_le_bytes());
    v.extend_from_slice(h);
    v.extend_from_slice(&[0u8; 24]);
    let hdr = npy::parse(&v, &npy::Limits::default()).unwrap();
    assert_eq!(hdr.version, (2, 0));
    assert!(hdr.fortran_order);
    assert_eq!(hdr.data_offset, 12 + h.len() as u64);
    assert_eq!(
        hdr.payload,
        npy::Payload::Plain {
            expected_bytes: Some(24)
        }
    );
    // Header length beyond the limit or the file.
    let mut huge = b"\x93NUMPY\x02\x00".to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        npy::parse(&huge, &npy::Limits::default())
            .unwrap_err()
            .is_limit()
    );
    let mut short = b"\x93NUMPY\x01\x00".to_vec();
    short.extend_from_slice(&100u16.to_le_bytes());
    assert!(
        npy::parse(&short, &npy::Limits::default())
            .unwrap_err()
            .is_truncation()
    );
    assert!(npy::parse(&&b"\x93NUMPY\x09\x00\x00\x00"[..], &npy::Limits::default()).is_err());
    // shape × itemsize overflow.
    let mut o = b"\x93NUMPY\x01\x00".to_vec();
    let h = b"{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 4), }";
    o.extend_from_slice(&u16::try_from(h.len()).unwrap().to_le_bytes());
    o.extend_from_slice(h);
    assert!(npy::parse(&o, &npy::Limits::default()).is_err());
}

struct Tiny;
impl Source for Tiny {
    fn len(&self) -> u64 {
        u64::MAX
    }
    fn read_exact_at(&self, _offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        buf.fill(0);
        Ok(())
    }
}

#[test]
fn sources_claiming_huge_lengths_do_not_allocate() {
    // A source that claims u64::MAX bytes of zeros: no EOCD, no tar magic, no npy magic.
    assert!(zip::open(&Tiny, &zip::Limits::default()).is_err());
    assert!(npy::parse(&Tiny, &npy::Limits::default()).is_err());
    let a = tar::open(&Tiny, &tar::Limits::default()).unwrap();
    assert!(a.entries.is_empty() && a.terminated);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn zip_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        zip::fuzz(&data);
    }

    #[test]
    fn zip_mutations_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut z = stored_zip(&[("a/data.pkl", b"N."), ("b", b"xyz")], b"", true);
        for (i, b) in flips {
            let n = z.len();
            z[i % n] ^= b;
        }
        zip::fuzz(&z);
    }

    #[test]
    fn tar_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        tar::fuzz(&data);
    }

    #[test]
    fn tar_mutations_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut t = tar_member("a", b"N.", b'0');
        t.extend(tar_member("PaxHeader", b"14 size=99999\n", b'x'));
        t.extend(tar_member("b", b"N.", b'0'));
        for (i, b) in flips {
            let n = t.len();
            t[i % n] ^= b;
        }
        tar::fuzz(&t);
    }

    #[test]
    fn npy_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..256), v in 0u8..4) {
        let mut data = b"\x93NUMPY".to_vec();
        data.push(v);
        data.push(0);
        data.extend_from_slice(&tail);
        npy::fuzz(&data);
        npy::fuzz(&tail);
    }

    #[test]
    fn npy_header_text_never_panics(text in "\\{[ -~]{0,120}") {
        let mut data = b"\x93NUMPY\x01\x00".to_vec();
        data.extend_from_slice(&u16::try_from(text.len()).unwrap().to_le_bytes());
        data.extend_from_slice(text.as_bytes());
        npy::fuzz(&data);
    }

    #[test]
    fn compress_never_panics_and_stays_bounded(data in proptest::collection::vec(any::<u8>(), 0..512), magic in 0usize..6) {
        let prefixes: [&[u8]; 6] = [b"\x1f\x8b\x08", b"BZh9", b"\xfd7zXZ\x00", b"\x5d\x00\x00", b"\x78\x9c", b""];
        let mut v = prefixes[magic].to_vec();
        v.extend_from_slice(&data);
        compress::fuzz(&v);
    }
}
