//! Integration tests for the non-pickle format rules: safetensors, GGUF, ONNX, Keras and
//! TensorFlow SavedModel. Every case is built here in Rust (or read from the shared samples) and
//! asserts the verdict a user relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;
use std::io;

use proptest::prelude::*;
use rampart_formats::source::Source;
use rampart_scan::{Report, Verdict};
use rampart_scan::{gguf, keras, onnx, safetensors, savedmodel};

fn rules(r: &Report) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule.as_str()).collect()
}

#[track_caller]
fn assert_verdict(r: &Report, v: Verdict, rule: Option<&str>) {
    assert_eq!(r.verdict, v, "findings: {:#?}", r.findings);
    if let Some(rule) = rule {
        assert!(rules(r).contains(&rule), "no {rule} in {:#?}", r.findings);
    }
}

// ---------------------------------------------------------------- shared samples

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/scan-samples"
);

/// Test-only zip reader: the stored member `name`, found through the local headers.
fn zip_member(zip: &[u8], name: &str) -> Vec<u8> {
    let mut pos = 0;
    while zip.len() >= pos + 30 && zip[pos..pos + 4] == *b"PK\x03\x04" {
        let u16at = |o: usize| usize::from(u16::from_le_bytes([zip[o], zip[o + 1]]));
        let u32at =
            |o: usize| u32::from_le_bytes([zip[o], zip[o + 1], zip[o + 2], zip[o + 3]]) as usize;
        let method = u16at(pos + 8);
        let csize = u32at(pos + 18);
        let nlen = u16at(pos + 26);
        let elen = u16at(pos + 28);
        let n = &zip[pos + 30..pos + 30 + nlen];
        let data = pos + 30 + nlen + elen;
        if n == name.as_bytes() {
            assert_eq!(method, 0, "test reader handles stored members only");
            return zip[data..data + csize].to_vec();
        }
        pos = data + csize;
    }
    panic!("{name} not found")
}

#[test]
fn shared_samples_get_their_labelled_verdicts() {
    let labels = std::fs::read_to_string(format!("{SAMPLES}/labels.jsonl")).unwrap();
    let mut checked = 0;
    for line in labels.lines().filter(|l| !l.trim().is_empty()) {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = entry["path"].as_str().unwrap();
        let expected = match entry["label"].as_str().unwrap() {
            "malicious" => Verdict::Malicious,
            _ => Verdict::Safe,
        };
        let bytes = std::fs::read(format!("{SAMPLES}/{path}")).unwrap();
        let head = &bytes[..bytes.len().min(4096)];
        let len = bytes.len() as u64;
        let report = match path.split('/').next().unwrap() {
            "safetensors" => {
                assert!(safetensors::sniff(head, len), "{path}");
                safetensors::scan(&bytes, &Default::default())
            }
            "gguf" => {
                assert!(gguf::sniff(head, len), "{path}");
                gguf::scan(&bytes, &Default::default())
            }
            "onnx" => {
                assert!(onnx::sniff(head, len), "{path}");
                assert!(!savedmodel::sniff(head, len), "{path}");
                onnx::scan(&bytes, &Default::default())
            }
            "keras" => {
                let config = zip_member(&bytes, "config.json");
                assert!(keras::sniff_config_json(&config), "{path}");
                keras::scan_config_json(&config, &Default::default())
            }
            _ => continue,
        };
        assert_eq!(report.verdict, expected, "{path}: {:#?}", report.findings);
        checked += 1;
    }
    assert_eq!(checked, 8, "expected 8 non-pickle samples");
}

// ---------------------------------------------------------------- safetensors

fn st(header: &str, data_len: usize) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(0u8, data_len));
    out
}

fn st_scan(bytes: &[u8]) -> Report {
    safetensors::scan(&bytes.to_vec(), &Default::default())
}

#[test]
fn safetensors_benign_cases_are_safe() {
    let h = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"BF16","shape":[],"data_offsets":[12,14]},"e":{"dtype":"F32","shape":[0],"data_offsets":[14,14]}}"#;
    let bytes = st(h, 14);
    assert!(safetensors::sniff(&bytes, bytes.len() as u64));
    assert_verdict(&st_scan(&bytes), Verdict::Safe, None);
    // Header padded with spaces, as the reference writer does for alignment.
    assert_verdict(
        &st_scan(&st(
            r#"{"w":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}    "#,
            4,
        )),
        Verdict::Safe,
        None,
    );
    // Sub-byte dtype: 4 × F4 = 2 bytes.
    assert_verdict(
        &st_scan(&st(
            r#"{"w":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}"#,
            2,
        )),
        Verdict::Safe,
        None,
    );
}

#[test]
fn safetensors_header_length_attacks_are_malicious() {
    let mut b = st(
        r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
        1,
    );
    b[..8].copy_from_slice(&(1u64 << 63).to_le_bytes());
    assert_verdict(
        &st_scan(&b),
        Verdict::Malicious,
        Some("safetensors/header-length-past-end"),
    );
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes()); // 8 + N overflows
    assert_verdict(
        &st_scan(&b),
        Verdict::Malicious,
        Some("safetensors/header-length-past-end"),
    );
    let len = b.len() as u64 - 7; // one byte past the end
    b[..8].copy_from_slice(&len.to_le_bytes());
    assert_verdict(
        &st_scan(&b),
        Verdict::Malicious,
        Some("safetensors/header-length-past-end"),
    );
}

#[test]
fn safetensors_deep_nesting_is_rejected_without_recursion() {
    let deep = format!(r#"{{"w":{}}}"#, "[".repeat(100_000));
    let start = std::time::Instant::now();
    let r = st_scan(&st(&deep, 0));
    assert_verdict(&r, Verdict::Malicious, Some("safetensors/header-too-deep"));
    assert!(start.elapsed().as_secs() < 5);
}

#[test]
fn safetensors_structural_problems_each_get_their_rule() {
    let cases: &[(&str, usize, Verdict, &str)] = &[
        (
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
            Verdict::Malicious,
            "safetensors/duplicate-name",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#,
            4,
            Verdict::Malicious,
            "safetensors/shape-overflow",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            8,
            Verdict::Malicious,
            "safetensors/size-mismatch",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]}}"#,
            8,
            Verdict::Malicious,
            "safetensors/out-of-bounds",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}"#,
            12,
            Verdict::Malicious,
            "safetensors/overlap",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}"#,
            8,
            Verdict::Malicious,
            "safetensors/reversed-offsets",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}}"#,
            12,
            Verdict::Review,
            "safetensors/gap",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
            9,
            Verdict::Review,
            "safetensors/trailing-bytes",
        ),
        (
            r#"{"a":{"dtype":"Q4","shape":[4],"data_offsets":[0,4]}}"#,
            4,
            Verdict::Error,
            "safetensors/unknown-dtype",
        ),
        (
            r#"{"__metadata__":{"k":1},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
            4,
            Verdict::Error,
            "safetensors/bad-metadata",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[4]}}"#,
            4,
            Verdict::Error,
            "safetensors/bad-entry",
        ),
        (
            r#"{"a": nope}"#,
            0,
            Verdict::Error,
            "safetensors/header-invalid-json",
        ),
        (
            r#"[1,2]"#,
            0,
            Verdict::Error,
            "safetensors/header-invalid-json",
        ),
    ];
    for (header, data, verdict, rule) in cases {
        let r = st_scan(&st(header, *data));
        assert_verdict(&r, *verdict, Some(rule));
    }
    // Not UTF-8.
    let mut b = st(r#"{"a":"xx"}"#, 0);
    b[14] = 0xff;
    assert_verdict(
        &st_scan(&b),
        Verdict::Error,
        Some("safetensors/header-not-utf8"),
    );
    // Too short.
    assert_verdict(
        &st_scan(&[1, 2, 3]),
        Verdict::Error,
        Some("safetensors/too-short"),
    );
}

#[test]
fn safetensors_sniff_claims_malformed_headers_that_fit_but_not_random_binary() {
    let raw = |n: u64, rest: &[u8]| {
        let mut b = n.to_le_bytes().to_vec();
        b.extend_from_slice(rest);
        b
    };
    let hlen_zero = raw(
        0,
        br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
    );
    let json_array = raw(10, b"[1,2,3]   \x00\x00\x80?\x00\x00\x80?");
    let non_json = raw(15, b"{'w': not json}\x00\x00\x80?\x00\x00\x80?");
    for b in [&hlen_zero, &json_array, &non_json] {
        assert!(safetensors::sniff(b, b.len() as u64), "{b:?}");
        let s = rampart_scan::Scanner::default().scan_bytes(b);
        assert_eq!(
            (s.format, s.report.verdict),
            ("safetensors", Verdict::Error),
            "{:?}",
            s.report
        );
    }
    // Not claimed: zero-filled or int64 tensor blobs, random bytes, lengths past the end of
    // ASCII-led data (text).
    let zeros = vec![0u8; 4096];
    let int64s: Vec<u8> = [5u64, 65, 3, 7]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let random: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for b in [
        &zeros,
        &int64s,
        &random,
        &b"hello world, this is text".to_vec(),
    ] {
        assert!(!safetensors::sniff(b, b.len() as u64), "{b:?}");
    }
}

#[test]
fn safetensors_trailing_pickle_is_a_malicious_polyglot() {
    let mut b = st(
        r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
        4,
    );
    b.extend_from_slice(b"cposix\nsystem\n(Vtouch /tmp/x\ntR.");
    let r = st_scan(&b);
    assert_verdict(&r, Verdict::Malicious, Some("safetensors/trailing-pickle"));
    // Inert trailing bytes stay review.
    let mut b = st(
        r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#,
        4,
    );
    b.extend_from_slice(&[0u8; 64]);
    assert_verdict(
        &st_scan(&b),
        Verdict::Review,
        Some("safetensors/trailing-bytes"),
    );
}

#[test]
fn safetensors_metadata_and_header_limits() {
    let meta: Vec<String> = (0..20).map(|i| format!(r#""k{i}":"v""#)).collect();
    let h = format!(r#"{{"__metadata__":{{{}}}}}"#, meta.join(","));
    let limits = rampart_formats::safetensors::Limits {
        max_metadata_entries: 10,
        ..Default::default()
    };
    let r = safetensors::scan(&st(&h, 0), &limits);
    assert_verdict(&r, Verdict::Review, Some("safetensors/metadata-too-large"));
    let limits = rampart_formats::safetensors::Limits {
        max_header_len: 16,
        ..Default::default()
    };
    let r = safetensors::scan(&st(&h, 0), &limits);
    assert_verdict(&r, Verdict::Error, Some("safetensors/header-too-large"));
}

/// A 1 GiB source whose reads are counted: only the header may be read.
struct Counting {
    header: Vec<u8>,
    len: u64,
    read: Cell<u64>,
}

impl Source for Counting {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read.set(self.read.get() + buf.len() as u64);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = *self.header.get(offset as usize + i).unwrap_or(&0);
        }
        Ok(())
    }
}

#[test]
fn safetensors_one_gib_file_is_judged_from_its_header_only() {
    let gib = 1u64 << 30;
    let h = format!(r#"{{"w":{{"dtype":"U8","shape":[{gib}],"data_offsets":[0,{gib}]}}}}"#);
    let header = st(&h, 0);
    let src = Counting {
        len: header.len() as u64 + gib,
        header,
        read: Cell::new(0),
    };
    let start = std::time::Instant::now();
    let r = safetensors::scan(&src, &Default::default());
    let took = start.elapsed();
    assert_verdict(&r, Verdict::Safe, None);
    assert_eq!(src.read.get(), 8 + h.len() as u64, "read beyond the header");
    assert!(took.as_millis() < 50, "took {took:?}");

    // The same through a real sparse file and positioned reads.
    let path = std::env::temp_dir().join(format!("rampart-st-{}.safetensors", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&st(&h, 0)).unwrap();
        f.set_len(8 + h.len() as u64 + gib).unwrap();
    }
    let src =
        rampart_formats::source::FileSource::new(std::fs::File::open(&path).unwrap()).unwrap();
    let start = std::time::Instant::now();
    let r = safetensors::scan(&src, &Default::default());
    let took = start.elapsed();
    std::fs::remove_file(&path).unwrap();
    assert_verdict(&r, Verdict::Safe, None);
    assert!(took.as_millis() < 50, "took {took:?}");
}

// ---------------------------------------------------------------- GGUF

fn gs(s: &[u8]) -> Vec<u8> {
    let mut b = (s.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(s);
    b
}

fn kv(key: &str, ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = gs(key.as_bytes());
    b.extend(ty.to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn kv_str(key: &str, value: &str) -> Vec<u8> {
    kv(key, 8, &gs(value.as_bytes()))
}

fn ti(name: &str, dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut b = gs(name.as_bytes());
    b.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend(d.to_le_bytes());
    }
    b.extend(ty.to_le_bytes());
    b.extend(offset.to_le_bytes());
    b
}

fn gguf_file(kvs: &[Vec<u8>], tensors: &[Vec<u8>], data: usize) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((kvs.len() as u64).to_le_bytes());
    for k in kvs {
        b.extend_from_slice(k);
    }
    for t in tensors {
        b.extend_from_slice(t);
    }
    while !b.len().is_multiple_of(32) {
        b.push(0);
    }
    b.extend(std::iter::repeat_n(0u8, data));
    b
}

fn gg(bytes: &[u8]) -> Report {
    gguf::scan(&bytes.to_vec(), &Default::default())
}

const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
const LLAMA3: &str = "{%- set ns = namespace(found=false) -%}{%- for message in messages -%}{%- if message['role'] == 'system' -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
const MISTRAL: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";
const TOOLS: &str = "{%- if tools %}{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}{%- endif %}{%- for message in messages %}{%- if message.role == 'tool' %}{{- '<tool_response>' + message.content + '</tool_response>' }}{%- elif message.tool_calls is defined %}{%- for call in message.tool_calls %}{{- call.function.name }}{{- call.function.arguments | tojson }}{%- endfor %}{%- endif %}{%- endfor %}";

#[test]
fn gguf_benign_files_are_safe() {
    let f = gguf_file(
        &[
            kv_str("general.architecture", "llama"),
            kv("general.alignment", 4, &32u32.to_le_bytes()),
            kv("llama.block_count", 4, &2u32.to_le_bytes()),
            kv("x.flag", 7, &[1]),
            kv("x.f", 12, &1.5f64.to_le_bytes()),
            kv("tokenizer.ggml.tokens", 9, &{
                let mut p = 8u32.to_le_bytes().to_vec();
                p.extend(2u64.to_le_bytes());
                p.extend(gs(b"a"));
                p.extend(gs(b"b"));
                p
            }),
            kv_str("tokenizer.chat_template", CHATML),
            kv_str("tokenizer.chat_template.llama3", LLAMA3),
            kv_str("tokenizer.chat_template.mistral", MISTRAL),
            kv_str("tokenizer.chat_template.tool_use", TOOLS),
        ],
        &[
            ti("a", &[4, 2], 0, 0),
            ti("b", &[32], 8, 32),   // Q8_0: one 34-byte block
            ti("c", &[256], 12, 96), // Q4_K: one 144-byte block
        ],
        96 + 144,
    );
    assert!(gguf::sniff(&f, f.len() as u64));
    assert_verdict(&gg(&f), Verdict::Safe, None);

    // Version 1: 32-bit counts, lengths and dims.
    let mut v1 = b"GGUF".to_vec();
    v1.extend(1u32.to_le_bytes());
    v1.extend(1u32.to_le_bytes()); // tensors
    v1.extend(1u32.to_le_bytes()); // kvs
    v1.extend(4u32.to_le_bytes());
    v1.extend(b"name");
    v1.extend(8u32.to_le_bytes());
    v1.extend(2u32.to_le_bytes());
    v1.extend(b"ok");
    v1.extend(1u32.to_le_bytes());
    v1.extend(b"t");
    v1.extend(1u32.to_le_bytes());
    v1.extend(4u32.to_le_bytes());
    v1.extend(0u32.to_le_bytes());
    v1.extend(0u64.to_le_bytes());
    while !v1.len().is_multiple_of(32) {
        v1.push(0);
    }
    v1.extend([0u8; 16]);
    assert_verdict(&gg(&v1), Verdict::Safe, None);
}

#[test]
fn gguf_large_file_with_big_vocabulary_is_judged_from_its_header() {
    // 200 000 tokens, then a 1 GiB F32 tensor that is never read (only a 64 KiB read-ahead
    // window past the header may be touched).
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend(200_000u64.to_le_bytes());
    for i in 0..200_000u32 {
        tokens.extend(gs(format!("tok{i}").as_bytes()));
    }
    let header = gguf_file(
        &[
            kv("tokenizer.ggml.tokens", 9, &tokens),
            kv_str("tokenizer.chat_template", LLAMA3),
        ],
        &[ti("big", &[1 << 28], 0, 0)],
        0,
    );
    let src = Counting {
        len: header.len() as u64 + (1 << 30),
        header,
        read: Cell::new(0),
    };
    let start = std::time::Instant::now();
    let r = gguf::scan(&src, &Default::default());
    let took = start.elapsed();
    assert_verdict(&r, Verdict::Safe, None);
    assert!(
        src.read.get() <= src.header.len() as u64 + 64 * 1024,
        "read {}",
        src.read.get()
    );
    assert!(took.as_secs() < 2, "took {took:?}");
}

#[test]
fn gguf_impossible_counts_and_lengths_are_malicious() {
    let mut huge_tensors = gguf_file(&[kv_str("a", "b")], &[], 0);
    huge_tensors[8..16].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert_verdict(
        &gg(&huge_tensors),
        Verdict::Malicious,
        Some("gguf/count-past-end"),
    );

    let mut huge_kvs = gguf_file(&[kv_str("a", "b")], &[], 0);
    huge_kvs[16..24].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert_verdict(
        &gg(&huge_kvs),
        Verdict::Malicious,
        Some("gguf/count-past-end"),
    );

    let mut long_value = kv("general.name", 8, &(1u64 << 60).to_le_bytes());
    long_value.extend(b"abc");
    assert_verdict(
        &gg(&gguf_file(&[long_value], &[], 0)),
        Verdict::Malicious,
        Some("gguf/length-past-end"),
    );

    let mut long_key = (1u64 << 60).to_le_bytes().to_vec();
    long_key.extend(b"abc");
    assert_verdict(
        &gg(&gguf_file(&[long_key], &[], 0)),
        Verdict::Malicious,
        Some("gguf/length-past-end"),
    );

    let mut arr = 10u32.to_le_bytes().to_vec(); // u64 elements
    arr.extend((1u64 << 61).to_le_bytes());
    assert_verdict(
        &gg(&gguf_file(&[kv("a", 9, &arr)], &[], 0)),
        Verdict::Malicious,
        Some("gguf/count-past-end"),
    );

    // Nested arrays deeper than the limit.
    let mut nested = 4u32.to_le_bytes().to_vec();
    nested.extend(1u64.to_le_bytes());
    nested.extend(7u32.to_le_bytes());
    for _ in 0..6 {
        let mut outer = 9u32.to_le_bytes().to_vec();
        outer.extend(1u64.to_le_bytes());
        outer.extend(nested);
        nested = outer;
    }
    assert_verdict(
        &gg(&gguf_file(&[kv("a", 9, &nested)], &[], 0)),
        Verdict::Malicious,
        Some("gguf/array-too-deep"),
    );

    // The shared sample's class: string length 2^62.
    let sample = std::fs::read(format!("{SAMPLES}/gguf/bad_string_len.gguf")).unwrap();
    assert_verdict(
        &gg(&sample),
        Verdict::Malicious,
        Some("gguf/length-past-end"),
    );
}

#[test]
fn gguf_tensor_info_problems_each_get_their_rule() {
    let name = [kv_str("general.architecture", "llama")];
    let cases: Vec<(Vec<u8>, Verdict, &str)> = vec![
        (
            gguf_file(&name, &[ti("t", &[1, 1, 1, 1, 1], 0, 0)], 32),
            Verdict::Malicious,
            "gguf/too-many-dims",
        ),
        (
            gguf_file(&name, &[ti("t", &[1 << 32, 1 << 32, 1 << 32], 0, 0)], 32),
            Verdict::Malicious,
            "gguf/dims-overflow",
        ),
        (
            gguf_file(&name, &[ti("t", &[1 << 61], 0, 0)], 32),
            Verdict::Malicious,
            "gguf/out-of-bounds",
        ),
        (
            gguf_file(&name, &[ti("t", &[4], 0, 3)], 64),
            Verdict::Malicious,
            "gguf/misaligned",
        ),
        (
            gguf_file(&name, &[ti("t", &[4], 0, 32)], 32),
            Verdict::Malicious,
            "gguf/out-of-bounds",
        ),
        (
            gguf_file(&name, &[ti("a", &[16], 0, 0), ti("b", &[16], 0, 32)], 96),
            Verdict::Malicious,
            "gguf/overlap",
        ),
        (
            gguf_file(&name, &[ti("t", &[33], 2, 0)], 64),
            Verdict::Malicious,
            "gguf/bad-block-multiple",
        ),
        (
            gguf_file(&[kv("general.alignment", 4, &24u32.to_le_bytes())], &[], 0),
            Verdict::Malicious,
            "gguf/bad-alignment",
        ),
        (
            gguf_file(&name, &[ti("t", &[4], 99, 0)], 32),
            Verdict::Malicious,
            "gguf/unknown-tensor-type",
        ),
        (
            gguf_file(&name, &[ti("t", &[4], 0, 0), ti("t", &[4], 0, 32)], 64),
            Verdict::Review,
            "gguf/duplicate-tensor",
        ),
        (
            gguf_file(&[kv_str("a", "1"), kv_str("a", "2")], &[], 0),
            Verdict::Review,
            "gguf/duplicate-key",
        ),
        (
            gguf_file(&[kv("a", 13, &[0; 8])], &[], 0),
            Verdict::Error,
            "gguf/bad-value-type",
        ),
    ];
    for (bytes, verdict, rule) in cases {
        assert_verdict(&gg(&bytes), verdict, Some(rule));
    }
    let mut bad_version = gguf_file(&name, &[], 0);
    bad_version[4..8].copy_from_slice(&3u32.to_be_bytes());
    assert_verdict(
        &gg(&bad_version),
        Verdict::Error,
        Some("gguf/unsupported-version"),
    );
    assert_verdict(
        &gg(b"GGUX\x03\0\0\0"),
        Verdict::Error,
        Some("gguf/bad-magic"),
    );
    let truncated = &gguf_file(&name, &[], 0)[..20];
    assert_verdict(&gg(truncated), Verdict::Error, Some("gguf/truncated"));
}

#[test]
fn gguf_ssti_templates_are_malicious() {
    let attacks = [
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__['__builtins__']['eval']('1') }}",
        "{{ namespace.__init__.__globals__.os.system('id') }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ x|attr('__globals__') }}",
        "{{ (lipsum|attr('__glo' + 'bals__'))['os'] }}",
        "{% set g = '__glo' ~ 'bals__' %}{{ lipsum[g] }}",
        "{{ lipsum|attr('\\x5f\\x5fglobals\\x5f\\x5f') }}",
        "{{ lipsum|attr('__slabolg__'|reverse) }}",
        "{{ lipsum|attr(['_','_','glo','bals','_','_']|join) }}",
        "{{ self._TemplateReference__context.cycler }}",
        "{{ request.application }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}",
        "{{ ('%c%c'|format(95,95)) ~ 'import' ~ ('%c%c'|format(95,95)) }}",
        "{{ messages[0]|attr(('_'*2) ~ 'cla' ~ 'ss' ~ ('_'*2)) }}",
        "{{ get_flashed_messages.__globals__ }}",
        "{{ url_for.__globals__.os }}",
        "{%- if true %}{{ x.__init__ }}{% endif -%}",
        "{{ '}}' ~ lipsum.__globals__.os }}",
        "{# a comment {{ #}{{ cycler.__init__ }}",
    ];
    for (i, t) in attacks.iter().enumerate() {
        assert!(!gguf::template_evidence(t).is_empty(), "missed: {t}");
        let key = if i % 2 == 0 {
            "tokenizer.chat_template"
        } else {
            "tokenizer.chat_template.rag"
        };
        let f = gguf_file(&[kv_str(key, &format!("{CHATML}{t}"))], &[], 0);
        assert_verdict(&gg(&f), Verdict::Malicious, Some("gguf/chat-template-ssti"));
    }
    const GEMMA: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}";
    const LLAMA31: &str = "{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- endif %}{%- if builtin_tools is defined or tools is not none %}{{- 'Environment: ipython\n' }}{%- endif %}{%- if builtin_tools is defined %}{{- 'Tools: ' + builtin_tools | reject('equalto', 'code_interpreter') | join(', ') + '\n\n' }}{%- endif %}{%- for t in tools %}{{- t | tojson(indent=4) }}{%- endfor %}{%- for key, value in messages[0].items() %}{{ key }}{%- endfor %}{%- set content = message['content'].split('</think>')[-1] %}";
    for t in [CHATML, LLAMA3, MISTRAL, TOOLS, GEMMA, LLAMA31] {
        assert_eq!(gguf::template_evidence(t), Vec::<String>::new(), "{t}");
    }
    // Text outside Jinja tags is output, not code.
    assert!(gguf::template_evidence("say __globals__ and os.popen literally").is_empty());
}

// ---------------------------------------------------------------- protobuf builders

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pv(field: u64, v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    varint(field << 3, &mut b);
    varint(v, &mut b);
    b
}

fn pl(field: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    varint((field << 3) | 2, &mut b);
    varint(payload.len() as u64, &mut b);
    b.extend_from_slice(payload);
    b
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------- ONNX

fn onnx_node(op: &str, domain: &str, attrs: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![pl(1, b"X"), pl(2, b"Y"), pl(4, op.as_bytes())];
    if !domain.is_empty() {
        parts.push(pl(7, domain.as_bytes()));
    }
    for a in attrs {
        parts.push(pl(5, a));
    }
    cat(&parts)
}

fn onnx_tensor(name: &str, dims: &[u64], external: &[(&str, &str)]) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = dims.iter().map(|&d| pv(1, d)).collect();
    parts.push(pv(2, 1));
    parts.push(pl(8, name.as_bytes()));
    for (k, v) in external {
        parts.push(pl(13, &cat(&[pl(1, k.as_bytes()), pl(2, v.as_bytes())])));
    }
    if !external.is_empty() {
        parts.push(pv(14, 1));
    }
    cat(&parts)
}

fn onnx_graph(nodes: &[Vec<u8>], inits: &[Vec<u8>]) -> Vec<u8> {
    let mut parts: Vec<Vec<u8>> = nodes.iter().map(|n| pl(1, n)).collect();
    parts.push(pl(2, b"g"));
    parts.extend(inits.iter().map(|t| pl(5, t)));
    cat(&parts)
}

fn onnx_model(graph: &[u8], opsets: &[(&str, u64)], extra: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![pv(1, 8), pl(2, b"pytorch"), pl(7, graph)];
    for (d, v) in opsets {
        parts.push(pl(8, &cat(&[pl(1, d.as_bytes()), pv(2, *v)])));
    }
    parts.extend_from_slice(extra);
    cat(&parts)
}

fn ox(bytes: &[u8]) -> Report {
    onnx::scan(&bytes.to_vec(), &Default::default())
}

#[test]
fn onnx_benign_models_are_safe() {
    let g = onnx_graph(
        &[
            onnx_node("MatMul", "", &[]),
            onnx_node("FusedMatMul", "com.microsoft", &[]),
            onnx_node("LinearClassifier", "ai.onnx.ml", &[]),
        ],
        &[
            onnx_tensor("W", &[2, 2], &[]),
            onnx_tensor(
                "E",
                &[2, 2],
                &[
                    ("location", "weights.bin"),
                    ("offset", "0"),
                    ("length", "16"),
                ],
            ),
            onnx_tensor("F", &[4], &[("location", "data/sub/w.bin")]),
        ],
    );
    let m = onnx_model(
        &g,
        &[("", 17), ("ai.onnx.ml", 3), ("com.microsoft", 1)],
        &[],
    );
    assert!(onnx::sniff(&m, m.len() as u64));
    assert!(!savedmodel::sniff(&m, m.len() as u64));
    let r = ox(&m);
    assert_verdict(&r, Verdict::Safe, Some("onnx/external-data"));
}

#[test]
fn onnx_external_data_escapes_are_malicious() {
    for loc in [
        "/etc/passwd",
        "\\\\server\\share\\w.bin",
        "..\\..\\windows\\win.ini",
        "../../../root/.bashrc",
        "data/../../x.bin",
        "C:\\Windows\\win.ini",
        "c:/x",
        "file:///etc/shadow",
        "http://evil.example/w.bin",
        "%2e%2e/%2e%2e/etc/passwd",
        "w.bin\0../../etc/passwd",
    ] {
        let g = onnx_graph(
            &[onnx_node("MatMul", "", &[])],
            &[onnx_tensor("W", &[2], &[("location", loc)])],
        );
        let r = ox(&onnx_model(&g, &[("", 17)], &[]));
        assert_verdict(&r, Verdict::Malicious, Some("onnx/external-data-escape"));
        assert!(
            r.findings
                .iter()
                .any(|f| f.evidence.as_deref() == Some(loc))
        );
    }
}

#[test]
fn onnx_escape_hidden_in_nested_subgraphs_and_sparse_tensors_is_found() {
    // If → then_branch → Loop body → attribute tensor, three graph levels deep.
    let inner = onnx_graph(
        &[onnx_node("Identity", "", &[])],
        &[onnx_tensor(
            "deep",
            &[1],
            &[("location", "../../../etc/passwd")],
        )],
    );
    let loop_node = onnx_node("Loop", "", &[cat(&[pl(1, b"body"), pl(6, &inner)])]);
    let mid = onnx_graph(&[loop_node], &[]);
    let if_node = onnx_node("If", "", &[cat(&[pl(1, b"then_branch"), pl(6, &mid)])]);
    let g = onnx_graph(&[if_node], &[]);
    assert_verdict(
        &ox(&onnx_model(&g, &[("", 17)], &[])),
        Verdict::Malicious,
        Some("onnx/external-data-escape"),
    );
    // Sparse initializer values with an absolute location.
    let sparse = pl(1, &onnx_tensor("sv", &[1], &[("location", "/etc/shadow")]));
    let g = cat(&[
        onnx_graph(&[onnx_node("MatMul", "", &[])], &[]),
        pl(15, &sparse),
    ]);
    assert_verdict(
        &ox(&onnx_model(&g, &[("", 17)], &[])),
        Verdict::Malicious,
        Some("onnx/external-data-escape"),
    );
    // A graph-valued attribute list (field 11) and an attribute tensor (field 5).
    let g2 = onnx_graph(&[], &[onnx_tensor("x", &[1], &[("location", "/x")])]);
    let node = onnx_node("Scan", "", &[cat(&[pl(1, b"bodies"), pl(11, &g2)])]);
    assert_verdict(
        &ox(&onnx_model(&onnx_graph(&[node], &[]), &[("", 17)], &[])),
        Verdict::Malicious,
        Some("onnx/external-data-escape"),
    );
    let node = onnx_node(
        "Constant",
        "",
        &[cat(&[
            pl(1, b"value"),
            pl(5, &onnx_tensor("c", &[1], &[("location", "/c")])),
        ])],
    );
    assert_verdict(
        &ox(&onnx_model(&onnx_graph(&[node], &[]), &[("", 17)], &[])),
        Verdict::Malicious,
        Some("onnx/external-data-escape"),
    );
}

#[test]
fn onnx_custom_domains_and_sizes() {
    let g = onnx_graph(&[onnx_node("Evil", "com.example.ops", &[])], &[]);
    let r = ox(&onnx_model(&g, &[("", 17)], &[]));
    assert_verdict(&r, Verdict::Review, Some("onnx/custom-operator"));

    let g = onnx_graph(&[onnx_node("MatMul", "", &[])], &[]);
    let r = ox(&onnx_model(&g, &[("", 17), ("my.custom", 1)], &[]));
    assert_verdict(&r, Verdict::Review, Some("onnx/custom-domain"));

    // A model-local function's domain is not a native custom op.
    let func = cat(&[
        pl(1, b"MyFn"),
        pl(10, b"local.fns"),
        pl(7, &onnx_node("Relu", "", &[])),
        pl(9, &cat(&[pl(1, b""), pv(2, 17)])),
    ]);
    let g = onnx_graph(&[onnx_node("MyFn", "local.fns", &[])], &[]);
    let r = ox(&onnx_model(
        &g,
        &[("", 17), ("local.fns", 1)],
        &[pl(25, &func)],
    ));
    assert_verdict(&r, Verdict::Safe, None);

    // A custom op inside a function is still reported.
    let func = cat(&[
        pl(1, b"F"),
        pl(10, b"local"),
        pl(7, &onnx_node("X", "vendor.ops", &[])),
    ]);
    let r = ox(&onnx_model(
        &onnx_graph(&[], &[]),
        &[("", 17)],
        &[pl(25, &func)],
    ));
    assert_verdict(&r, Verdict::Review, Some("onnx/custom-operator"));

    let g = onnx_graph(
        &[],
        &[onnx_tensor("big", &[1 << 20, 1 << 20, 1 << 10], &[])],
    );
    assert_verdict(
        &ox(&onnx_model(&g, &[("", 17)], &[])),
        Verdict::Review,
        Some("onnx/tensor-too-large"),
    );
    let g = onnx_graph(&[], &[onnx_tensor("neg", &[u64::MAX, 2], &[])]);
    assert_verdict(
        &ox(&onnx_model(&g, &[("", 17)], &[])),
        Verdict::Malicious,
        Some("onnx/dims-overflow"),
    );
    let g = onnx_graph(
        &[],
        &[onnx_tensor(
            "e",
            &[1],
            &[("location", "w.bin"), ("length", "999999999999999999")],
        )],
    );
    assert_verdict(
        &ox(&onnx_model(&g, &[("", 17)], &[])),
        Verdict::Malicious,
        Some("onnx/implausible-external-range"),
    );
    // Implausible: above 2^50, or not even a u64; plausible but over the limit: review.
    for (k, v, verdict, rule) in [
        (
            "offset",
            "1125899906842625",
            Verdict::Malicious,
            "onnx/implausible-external-range",
        ),
        (
            "offset",
            "4611686018427387904",
            Verdict::Malicious,
            "onnx/implausible-external-range",
        ),
        (
            "length",
            "99999999999999999999999",
            Verdict::Malicious,
            "onnx/implausible-external-range",
        ),
        (
            "length",
            "1125899906842624",
            Verdict::Review,
            "onnx/external-data-size",
        ),
        (
            "length",
            "137438953472",
            Verdict::Review,
            "onnx/external-data-size",
        ),
    ] {
        let g = onnx_graph(
            &[],
            &[onnx_tensor("e", &[1], &[("location", "w.bin"), (k, v)])],
        );
        assert_verdict(&ox(&onnx_model(&g, &[("", 17)], &[])), verdict, Some(rule));
    }
    let g = onnx_graph(
        &[],
        &[onnx_tensor(
            "e",
            &[1],
            &[("location", "w.bin"), ("offset", "-1")],
        )],
    );
    assert_verdict(
        &ox(&onnx_model(&g, &[("", 17)], &[])),
        Verdict::Review,
        Some("onnx/external-data-size"),
    );
    let t = cat(&[pv(1, 1), pl(8, b"noloc"), pv(14, 1)]);
    assert_verdict(
        &ox(&onnx_model(&onnx_graph(&[], &[t]), &[("", 17)], &[])),
        Verdict::Review,
        Some("onnx/external-without-location"),
    );
}

#[test]
fn onnx_one_gib_initializer_is_skipped_not_read() {
    let gib = 1u64 << 30;
    // TensorProto prefix, then the raw_data tag and length; the payload is the 1 GiB tail.
    let mut tensor = cat(&[pv(1, gib / 4), pv(2, 1), pl(8, b"W")]);
    tensor.push(0x4a);
    varint(gib, &mut tensor);
    let tensor_len = tensor.len() as u64 + gib;
    let mut graph = pl(1, &onnx_node("MatMul", "", &[]));
    graph.push(0x2a);
    varint(tensor_len, &mut graph);
    let graph_len = graph.len() as u64 + tensor.len() as u64 + gib;
    let mut header = pv(1, 8);
    header.push(0x3a);
    varint(graph_len, &mut header);
    header.extend(graph);
    header.extend(tensor);
    let src = Counting {
        len: header.len() as u64 + gib,
        header,
        read: Cell::new(0),
    };
    let start = std::time::Instant::now();
    let r = onnx::scan(&src, &Default::default());
    let took = start.elapsed();
    assert_verdict(&r, Verdict::Safe, None);
    assert!(src.read.get() < 1 << 20, "read {} bytes", src.read.get());
    assert!(took.as_millis() < 500, "took {took:?}");
}

#[test]
fn onnx_malformed_and_limits_are_errors() {
    let m = onnx_model(
        &onnx_graph(&[onnx_node("MatMul", "", &[])], &[]),
        &[("", 17)],
        &[],
    );
    assert_verdict(
        &ox(&m[..m.len() - 3]),
        Verdict::Error,
        Some("onnx/malformed"),
    );
    assert_verdict(
        &ox(&[0x08, 0x08, 0x0b]),
        Verdict::Error,
        Some("onnx/malformed"),
    );
    // Subgraphs nested past max_depth.
    let mut g = onnx_graph(&[onnx_node("Identity", "", &[])], &[]);
    for _ in 0..40 {
        g = onnx_graph(
            &[onnx_node("If", "", &[cat(&[pl(1, b"b"), pl(6, &g)])])],
            &[],
        );
    }
    assert_verdict(
        &ox(&onnx_model(&g, &[], &[])),
        Verdict::Error,
        Some("onnx/limit"),
    );
    let limits = rampart_formats::onnx::Limits {
        max_file_len: 10,
        ..Default::default()
    };
    assert_verdict(&onnx::scan(&m, &limits), Verdict::Error, Some("onnx/limit"));
}

// ---------------------------------------------------------------- SavedModel

fn tf_node(name: &str, op: &str, attrs: &[(&str, &str)]) -> Vec<u8> {
    let mut parts = vec![pl(1, name.as_bytes()), pl(2, op.as_bytes())];
    for (k, v) in attrs {
        let av = pl(2, v.as_bytes());
        parts.push(pl(5, &cat(&[pl(1, k.as_bytes()), pl(2, &av)])));
    }
    cat(&parts)
}

fn tf_list_attr_node(name: &str, op: &str, key: &str, values: &[&str]) -> Vec<u8> {
    let list = cat(&values
        .iter()
        .map(|v| pl(2, v.as_bytes()))
        .collect::<Vec<_>>());
    let av = pl(1, &list);
    cat(&[
        pl(1, name.as_bytes()),
        pl(2, op.as_bytes()),
        pl(5, &cat(&[pl(1, key.as_bytes()), pl(2, &av)])),
    ])
}

fn tf_function(name: &str, nodes: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![pl(1, &pl(1, name.as_bytes()))];
    parts.extend(nodes.iter().map(|n| pl(3, n)));
    cat(&parts)
}

fn saved_model(nodes: &[Vec<u8>], functions: &[Vec<u8>]) -> Vec<u8> {
    let mut graph: Vec<Vec<u8>> = nodes.iter().map(|n| pl(1, n)).collect();
    if !functions.is_empty() {
        let lib = cat(&functions.iter().map(|f| pl(1, f)).collect::<Vec<_>>());
        graph.push(pl(2, &lib));
    }
    let meta = cat(&[pl(1, &pl(4, b"serve")), pl(2, &cat(&graph))]);
    cat(&[pv(1, 1), pl(2, &meta)])
}

fn sm(bytes: &[u8]) -> Report {
    savedmodel::scan(&bytes.to_vec(), &Default::default())
}

fn benign_nodes() -> Vec<Vec<u8>> {
    vec![
        tf_node("x", "Placeholder", &[]),
        tf_node("w", "VarHandleOp", &[("shared_name", "w")]),
        tf_node("r", "ReadVariableOp", &[]),
        tf_node("m", "MatMul", &[]),
        tf_node("call", "StatefulPartitionedCall", &[]),
        tf_node("saver_filename", "Placeholder", &[]),
        tf_node("save", "SaveV2", &[]),
        tf_node("restore", "RestoreV2", &[]),
        tf_node("merge", "MergeV2Checkpoints", &[]),
        tf_node("shard", "ShardedFilename", &[]),
        tf_node("p", "PrintV2", &[("output_stream", "stderr")]),
        tf_node("d", "DebugIdentity", &[]),
        tf_node("f", "__inference_call_42", &[]),
    ]
}

#[test]
fn savedmodel_benign_graph_is_safe() {
    let f = tf_function(
        "__inference_call_42",
        &[tf_node("a", "Relu", &[]), tf_node("b", "AddV2", &[])],
    );
    let m = saved_model(&benign_nodes(), &[f]);
    assert!(savedmodel::sniff(&m, m.len() as u64));
    assert!(!onnx::sniff(&m, m.len() as u64));
    assert_verdict(&sm(&m), Verdict::Safe, None);
}

#[test]
fn savedmodel_file_and_python_ops_are_malicious() {
    for op in [
        "ReadFile",
        "WriteFile",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "MatchingFiles",
        "ImmutableConst",
        "WholeFileReaderV2",
        "CreateSummaryFileWriter",
    ] {
        // In the main graph.
        let mut nodes = benign_nodes();
        nodes.push(tf_node("bad", op, &[("token", "pyfunc_0")]));
        let r = sm(&saved_model(&nodes, &[]));
        assert_verdict(&r, Verdict::Malicious, Some("savedmodel/file-or-exec-op"));
        // Hidden in a library function.
        let f = tf_function(
            "__inference_helper_7",
            &[tf_node("x", "Identity", &[]), tf_node("bad", op, &[])],
        );
        let r = sm(&saved_model(&benign_nodes(), &[f]));
        assert_verdict(&r, Verdict::Malicious, Some("savedmodel/file-or-exec-op"));
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == "savedmodel/file-or-exec-op"
                    && f.message.contains("function \"__inference_helper_7\""))
        );
    }
    let r = sm(&saved_model(
        &[tf_list_attr_node(
            "dbg",
            "DebugIdentity",
            "debug_urls",
            &["file:///tmp/dump"],
        )],
        &[],
    ));
    assert_verdict(&r, Verdict::Malicious, Some("savedmodel/file-or-exec-op"));
    let r = sm(&saved_model(
        &[tf_node(
            "p",
            "PrintV2",
            &[("output_stream", "file:///tmp/leak")],
        )],
        &[],
    ));
    assert_verdict(&r, Verdict::Malicious, Some("savedmodel/file-or-exec-op"));
}

#[test]
fn savedmodel_keras_object_metadata_is_judged() {
    let user_object = |meta: &str| {
        let user = cat(&[pl(1, b"_tf_keras_layer"), pl(3, meta.as_bytes())]);
        pl(1, &pl(4, &user))
    };
    let build = |meta: &str| {
        let graph = pl(1, &tf_node("x", "Placeholder", &[]));
        let meta_graph = cat(&[pl(2, &graph), pl(7, &user_object(meta))]);
        cat(&[pv(1, 1), pl(2, &meta_graph)])
    };
    let benign = r#"{"class_name": "Dense", "config": {"units": 2}}"#;
    assert_verdict(&sm(&build(benign)), Verdict::Safe, None);
    let r = sm(&build(LAMBDA3));
    assert_verdict(&r, Verdict::Malicious, Some("keras/lambda-code"));
    assert!(
        r.findings
            .iter()
            .any(|f| f.message.contains("_tf_keras_layer"))
    );
    assert_verdict(
        &sm(&build("{broken")),
        Verdict::Error,
        Some("savedmodel/bad-keras-metadata"),
    );
}

#[test]
fn savedmodel_unknown_ops_need_review_and_garbage_is_an_error() {
    let r = sm(&saved_model(&[tf_node("c", "MyCustomNativeOp", &[])], &[]));
    assert_verdict(&r, Verdict::Review, Some("savedmodel/unknown-op"));
    let m = saved_model(&benign_nodes(), &[]);
    assert_verdict(
        &sm(&m[..m.len() - 2]),
        Verdict::Error,
        Some("savedmodel/malformed"),
    );
    let limits = rampart_formats::savedmodel::Limits {
        max_nodes: 3,
        ..Default::default()
    };
    assert_verdict(
        &savedmodel::scan(&m, &limits),
        Verdict::Error,
        Some("savedmodel/limit"),
    );
}

// ---------------------------------------------------------------- Keras

fn kc(json: &str) -> Report {
    keras::scan_config_json(json.as_bytes(), &Default::default())
}

const LAMBDA3: &str = r#"{"module":"keras.layers","class_name":"Lambda","config":{"name":"l","function":{"class_name":"__lambda__","config":{"code":"4wEAAAAA","defaults":null,"closure":null}}}}"#;

#[test]
fn keras_benign_configs_are_safe() {
    let nested = r#"{"module":"keras","class_name":"Functional","config":{"name":"f","layers":[
        {"module":"keras.layers","class_name":"InputLayer","config":{"batch_shape":[null,4]}},
        {"module":"keras.layers","class_name":"TimeDistributed","config":{"layer":{"module":"keras.layers","class_name":"Dense","config":{"units":2,"activation":"relu","kernel_initializer":{"module":"keras.initializers","class_name":"GlorotUniform","config":{"seed":null},"registered_name":null}}}}},
        {"module":"keras.layers","class_name":"Bidirectional","config":{"layer":{"module":"keras.layers","class_name":"LSTM","config":{"units":3}}}},
        {"module":"keras_hub.src.models.bert","class_name":"BertBackbone","config":{},"registered_name":"keras_hub>BertBackbone"},
        {"module":"keras","class_name":"Sequential","config":{"layers":[{"module":"keras.layers","class_name":"Dropout","config":{"rate":0.5}}]}}
    ]},"compile_config":{"optimizer":{"module":"keras.optimizers","class_name":"Adam","config":{"learning_rate":0.001}},"loss":"mse"}}"#;
    assert!(keras::sniff_config_json(nested.as_bytes()));
    assert_verdict(&kc(nested), Verdict::Safe, None);
    // Keras 2 legacy style (no module keys).
    assert_verdict(
        &kc(
            r#"{"class_name":"Sequential","config":{"layers":[{"class_name":"Dense","config":{"units":1}}]},"keras_version":"2.15.0"}"#,
        ),
        Verdict::Safe,
        None,
    );
}

#[test]
fn keras_lambda_anywhere_is_found() {
    assert_verdict(
        &kc(&format!(
            r#"{{"module":"keras","class_name":"Sequential","config":{{"layers":[{LAMBDA3}]}}}}"#
        )),
        Verdict::Malicious,
        Some("keras/lambda-code"),
    );
    // Three levels deep: Sequential → Functional → TimeDistributed → Lambda.
    let deep = format!(
        r#"{{"module":"keras","class_name":"Sequential","config":{{"layers":[{{"module":"keras","class_name":"Functional","config":{{"layers":[{{"module":"keras.layers","class_name":"TimeDistributed","config":{{"layer":{LAMBDA3}}}}}]}}}}]}}}}"#
    );
    let r = kc(&deep);
    assert_verdict(&r, Verdict::Malicious, Some("keras/lambda-code"));
    assert!(
        r.findings[0]
            .message
            .contains("$.config.layers[0].config.layers[0].config.layer")
    );
    // 55 nested Sequential models (JSON depth ~220, under the 256 limit) around one Lambda.
    let mut cfg = LAMBDA3.to_owned();
    for _ in 0..55 {
        cfg = format!(
            r#"{{"module":"keras","class_name":"Sequential","config":{{"layers":[{cfg}]}}}}"#
        );
    }
    assert_verdict(&kc(&cfg), Verdict::Malicious, Some("keras/lambda-code"));
    // Inside Bidirectional's backward_layer.
    let bi = format!(
        r#"{{"class_name":"Bidirectional","config":{{"layer":{{"class_name":"LSTM","config":{{}}}},"backward_layer":{LAMBDA3}}}}}"#
    );
    assert_verdict(&kc(&bi), Verdict::Malicious, Some("keras/lambda-code"));
    // Marshalled code outside any Lambda layer (as an activation).
    assert_verdict(
        &kc(
            r#"{"class_name":"Dense","config":{"activation":{"class_name":"__lambda__","config":{"code":"4wEAAAAA"}}}}"#,
        ),
        Verdict::Malicious,
        Some("keras/marshalled-code"),
    );
    // Keras 2: function is [base64 code, defaults, closure] with function_type "lambda".
    assert_verdict(
        &kc(
            r#"{"class_name":"Sequential","config":{"layers":[{"class_name":"Lambda","config":{"name":"l","function":["4wEAAAAA",null,null],"function_type":"lambda"}}]}}"#,
        ),
        Verdict::Malicious,
        Some("keras/lambda-code"),
    );
    // A Lambda naming a Keras function: still code, but no bytecode.
    assert_verdict(
        &kc(
            r#"{"class_name":"Lambda","config":{"name":"l","function":{"module":"keras.ops","class_name":"function","config":"relu"}}}"#,
        ),
        Verdict::Review,
        Some("keras/lambda"),
    );
}

#[test]
fn keras_module_references_are_judged() {
    let malicious = [
        r#"{"module":"os","class_name":"system","config":{}}"#,
        r#"{"module":"builtins","class_name":"function","config":"exec"}"#,
        r#"{"module":"posix","class_name":"function","config":"system"}"#,
        r#"{"class_name":"Sequential","config":{"layers":[{"module":"subprocess","class_name":"Popen","config":{"args":["id"]}}]}}"#,
        r#"{"class_name":"Dense","config":{"kernel_initializer":{"module":"importlib","class_name":"import_module","config":{}}}}"#,
        r#"{"class_name":"X","registered_name":"subprocess>Popen","config":{}}"#,
        r#"{"class_name":"os.system","config":{}}"#,
        r#"{"module":"keras.utils","class_name":"function","config":"get_file"}"#,
        r#"{"module":"tensorflow.io","class_name":"function","config":"write_file"}"#,
    ];
    for m in malicious {
        assert_verdict(&kc(m), Verdict::Malicious, None);
    }
    assert_verdict(
        &kc(
            r#"{"class_name":"Sequential","config":{"layers":[{"module":"my_pkg.layers","class_name":"MyLayer","config":{},"registered_name":"my_pkg>MyLayer"}]}}"#,
        ),
        Verdict::Review,
        Some("keras/custom-object"),
    );
    assert_verdict(
        &kc(r#"{"class_name":"Dense","config":{"units":1},"units":2,"config":{}}"#),
        Verdict::Review,
        Some("keras/duplicate-key"),
    );
}

#[test]
fn keras_safe_mode_tricks_are_malicious() {
    for c in [
        r#"{"module":"keras.config","class_name":"function","config":"enable_unsafe_deserialization"}"#,
        r#"{"class_name":"Sequential","config":{"layers":[{"class_name":"Dense","config":{"note":"keras.config.enable_unsafe_deserialization()"}}]}}"#,
        r#"{"class_name":"Functional","config":{"safe_mode":false,"layers":[]}}"#,
    ] {
        assert_verdict(
            &kc(c),
            Verdict::Malicious,
            Some("keras/unsafe-deserialization"),
        );
    }
}

#[test]
fn keras_bad_configs_are_errors() {
    assert_verdict(&kc("{not json"), Verdict::Error, Some("keras/bad-config"));
    let deep = format!(r#"{{"class_name":{}"#, "[".repeat(100_000));
    assert_verdict(&kc(&deep), Verdict::Error, Some("keras/bad-config"));
}

/// A fake HDF5 file: signature, filler, then `model_config` followed by an attribute-message
/// style preamble and the fixed-length JSON string value.
fn fake_h5(config: Option<&str>, far: bool) -> Vec<u8> {
    let mut b = b"\x89HDF\r\n\x1a\n".to_vec();
    b.extend([0u8; 200]);
    b.extend(b"keras_version\0\0\0\x10\0\0\0\x01\0\0\0");
    if let Some(c) = config {
        b.extend(b"model_config\0\0\0\0");
        b.extend([0x13, 0, 0x10, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        if far {
            b.extend([0u8; 5000]);
        }
        b.extend(c.as_bytes());
        b.extend([0u8; 16]);
    }
    b.extend([0u8; 300]);
    b
}

#[test]
fn keras_h5_model_config_is_found_and_judged() {
    let benign = r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 2}}]}}"#;
    let h5 = fake_h5(Some(benign), false);
    assert!(keras::sniff(&h5, h5.len() as u64));
    assert_verdict(&keras::scan(&h5, &Default::default()), Verdict::Safe, None);
    let evil = format!(r#"{{"class_name": "Sequential", "config": {{"layers": [{LAMBDA3}]}}}}"#);
    let h5 = fake_h5(Some(&evil), false);
    assert_verdict(
        &keras::scan(&h5, &Default::default()),
        Verdict::Malicious,
        Some("keras/lambda-code"),
    );
    // Far from the attribute name (variable-length string in a heap): the fallback scan.
    let h5 = fake_h5(Some(&evil), true);
    assert_verdict(
        &keras::scan(&h5, &Default::default()),
        Verdict::Malicious,
        Some("keras/lambda-code"),
    );
    // No configuration at all.
    let h5 = fake_h5(None, false);
    assert_verdict(
        &keras::scan(&h5, &Default::default()),
        Verdict::Error,
        Some("keras/no-config"),
    );
    // A name with unparsable JSON after it.
    let h5 = fake_h5(Some("{\"class_name\": [[[["), false);
    assert_verdict(
        &keras::scan(&h5, &Default::default()),
        Verdict::Error,
        Some("keras/no-config"),
    );
    // Neither HDF5 nor JSON.
    assert_verdict(
        &keras::scan(&b"hello".to_vec(), &Default::default()),
        Verdict::Error,
        Some("keras/not-keras"),
    );
}

#[test]
fn keras_h5_files_written_by_h5py_get_their_verdicts() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/formats");
    for (file, verdict) in [
        ("keras2_dense.h5", Verdict::Safe),
        ("keras2_lambda.h5", Verdict::Malicious),
        ("keras2_lambda_vlen.h5", Verdict::Malicious),
        ("keras2_lambda_dense_storage.h5", Verdict::Malicious),
        ("plain_hdf5.h5", Verdict::Error),
    ] {
        let bytes = std::fs::read(format!("{dir}/{file}")).unwrap();
        assert!(
            keras::sniff(&bytes[..bytes.len().min(4096)], bytes.len() as u64),
            "{file}"
        );
        let r = keras::scan(&bytes, &Default::default());
        assert_eq!(r.verdict, verdict, "{file}: {:#?}", r.findings);
    }
}

#[test]
fn files_from_the_reference_writers_get_their_verdicts() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/formats");
    type Scan = fn(&Vec<u8>) -> Report;
    let st_: Scan = |b| safetensors::scan(b, &Default::default());
    let gg_: Scan = |b| gguf::scan(b, &Default::default());
    let ox_: Scan = |b| onnx::scan(b, &Default::default());
    for (file, scan, verdict, rule) in [
        ("real.safetensors", st_, Verdict::Safe, None),
        ("real.gguf", gg_, Verdict::Safe, None),
        (
            "real_ssti.gguf",
            gg_,
            Verdict::Malicious,
            Some("gguf/chat-template-ssti"),
        ),
        ("real.onnx", ox_, Verdict::Safe, None),
        (
            "real_external_ok.onnx",
            ox_,
            Verdict::Safe,
            Some("onnx/external-data"),
        ),
        (
            "real_external_traversal.onnx",
            ox_,
            Verdict::Malicious,
            Some("onnx/external-data-escape"),
        ),
        (
            "real_external_url.onnx",
            ox_,
            Verdict::Malicious,
            Some("onnx/external-data-escape"),
        ),
        (
            "real_custom_domain.onnx",
            ox_,
            Verdict::Review,
            Some("onnx/custom-operator"),
        ),
    ] {
        let bytes = std::fs::read(format!("{dir}/{file}")).unwrap();
        let head = &bytes[..bytes.len().min(4096)];
        let len = bytes.len() as u64;
        let sniffed = [
            safetensors::sniff(head, len),
            gguf::sniff(head, len),
            onnx::sniff(head, len),
        ];
        assert_eq!(
            sniffed.iter().filter(|s| **s).count(),
            1,
            "{file}: {sniffed:?}"
        );
        let r = scan(&bytes);
        assert_eq!(r.verdict, verdict, "{file}: {:#?}", r.findings);
        if let Some(rule) = rule {
            assert!(rules(&r).contains(&rule), "{file}: {:#?}", r.findings);
        }
    }
}

// ---------------------------------------------------------------- sniffing

#[test]
fn sniffers_do_not_claim_each_others_files() {
    let st_b = st(
        r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
        1,
    );
    let gg_b = gguf_file(&[kv_str("a", "b")], &[], 0);
    let ox_b = onnx_model(
        &onnx_graph(&[onnx_node("Relu", "", &[])], &[]),
        &[("", 17)],
        &[],
    );
    let sm_b = saved_model(&benign_nodes(), &[]);
    let h5_b = fake_h5(None, false);
    let pickle = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.".to_vec();
    let zip = b"PK\x03\x04\x14\x00\x00\x00".to_vec();
    let all = [&st_b, &gg_b, &ox_b, &sm_b, &h5_b, &pickle, &zip];
    type Sniff = fn(&[u8], u64) -> bool;
    let sniffers: [(Sniff, usize); 5] = [
        (safetensors::sniff, 0),
        (gguf::sniff, 1),
        (onnx::sniff, 2),
        (savedmodel::sniff, 3),
        (keras::sniff, 4),
    ];
    for (sniff, own) in sniffers {
        for (i, bytes) in all.iter().enumerate() {
            assert_eq!(
                sniff(bytes, Source::len(*bytes)),
                i == own,
                "sniffer {own} on file {i}"
            );
        }
    }
    assert!(!keras::sniff_config_json(b"[1,2]"));
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fuzz_entry_points_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        safetensors::fuzz(&data);
        gguf::fuzz(&data);
        onnx::fuzz(&data);
        keras::fuzz(&data);
        savedmodel::fuzz(&data);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        which in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut base = match which {
            0 => st(r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8),
            1 => gguf_file(&[kv_str("tokenizer.chat_template", CHATML)], &[ti("t", &[8], 0, 0)], 32),
            2 => onnx_model(&onnx_graph(&[onnx_node("If", "", &[cat(&[pl(1, b"b"), pl(6, &onnx_graph(&[], &[onnx_tensor("w", &[2], &[("location", "w.bin")])]))])])], &[]), &[("", 17)], &[]),
            3 => saved_model(&benign_nodes(), &[tf_function("f", &[tf_node("a", "Relu", &[])])]),
            _ => fake_h5(Some(LAMBDA3), false),
        };
        for (at, v) in flips {
            let i = at % base.len();
            base[i] = v;
        }
        safetensors::fuzz(&base);
        gguf::fuzz(&base);
        onnx::fuzz(&base);
        keras::fuzz(&base);
        savedmodel::fuzz(&base);
    }

    #[test]
    fn template_analysis_never_panics(t in ".{0,300}") {
        let _ = gguf::template_evidence(&t);
    }
}
