//! Integration tests for the non-pickle parsers: JSON, protobuf, safetensors, GGUF, ONNX,
//! Keras (config and HDF5 scan) and SavedModel. Property tests check that arbitrary bytes never
//! panic and that what the parsers keep stays within their limits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use rampart_formats::json::{self, JsonLimits, Value};
use rampart_formats::protobuf::{Fields, Wire, fields};
use rampart_formats::{gguf, keras, onnx, safetensors, savedmodel};

const JL: JsonLimits = JsonLimits {
    max_depth: 16,
    max_values: 10_000,
};

#[test]
fn json_keeps_duplicates_in_order_and_decodes_escapes() {
    let v = json::parse(br#" {"a":1,"b":[true,null,"\ud83d\ude00"],"a":"2"} "#, &JL).unwrap();
    let Value::Object(m) = &v else {
        panic!("{v:?}")
    };
    let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "b", "a"]);
    assert_eq!(v.get("a").unwrap().as_u64(), Some(1));
    assert_eq!(
        v.get("b"),
        Some(&Value::Array(vec![
            Value::Bool(true),
            Value::Null,
            Value::String("😀".into())
        ]))
    );
}

#[test]
fn json_rejects_malformed_and_over_limit_input() {
    for bad in [
        &b"{"[..],
        b"{\"a\" 1}",
        b"[1,]",
        b"\"\\ud800\"",
        b"\"a\nb\"",
        b"tru",
        b"{} {}",
        b"",
        b"+1",
    ] {
        assert!(
            json::parse(bad, &JL).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let e = json::parse("[".repeat(100_000).as_bytes(), &JL).unwrap_err();
    assert!(e.is_limit(), "{e}");
    let many = format!("[{}]", vec!["1"; 20_000].join(","));
    assert!(json::parse(many.as_bytes(), &JL).unwrap_err().is_limit());
    let (v, used) = json::parse_prefix(b"{\"a\":1}\0\0garbage", &JL).unwrap();
    assert_eq!(used, 7);
    assert_eq!(v.get("a").and_then(Value::as_u64), Some(1));
}

#[test]
fn protobuf_reader_decodes_and_bounds_fields() {
    // field 1 varint 300, field 2 bytes "hi", field 3 fixed32, field 4 fixed64.
    let msg = [
        0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0, 0,
    ];
    let f = fields(&msg, 100).unwrap();
    assert_eq!(f.len(), 4);
    assert_eq!(f[0].varint(), Some(300));
    assert_eq!(f[1].wire, Wire::Bytes(b"hi", 105));
    assert_eq!(f[2].wire, Wire::Fixed32(1));
    assert_eq!(f[3].wire, Wire::Fixed64(2));
    // Length past the end, groups, 11-byte varints, field number 0.
    for bad in [
        &[0x12u8, 0x05, b'a'][..],
        &[0x0b],
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
        &[0x00, 0x01],
        &[0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ] {
        assert!(fields(bad, 0).is_err(), "{bad:?}");
    }
    let mut it = Fields::new(&[], 0);
    assert_eq!(it.next_field().unwrap(), None);
}

#[test]
fn limits_deserialise_with_defaults_and_reject_unknown_keys() {
    let l: safetensors::Limits = serde_json::from_str(r#"{"max_header_len": 5}"#).unwrap();
    assert_eq!(l.max_header_len, 5);
    assert_eq!(
        l.max_json_depth,
        safetensors::Limits::default().max_json_depth
    );
    assert!(serde_json::from_str::<safetensors::Limits>(r#"{"max_headr_len": 5}"#).is_err());
    assert!(serde_json::from_str::<gguf::Limits>(r#"{"bogus": 1}"#).is_err());
    assert!(serde_json::from_str::<onnx::Limits>(r#"{"bogus": 1}"#).is_err());
    assert!(serde_json::from_str::<keras::Limits>(r#"{"bogus": 1}"#).is_err());
    assert!(serde_json::from_str::<savedmodel::Limits>(r#"{"bogus": 1}"#).is_err());
    let g: gguf::Limits = serde_json::from_str(r#"{"max_array_depth": 1}"#).unwrap();
    assert_eq!(g.max_array_depth, 1);
}

#[test]
fn safetensors_parse_reports_tensors_and_problems() {
    let h = br#"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(h);
    b.extend([0u8; 8]);
    let p = safetensors::parse(&b, &Default::default());
    assert_eq!(p.problems, vec![]);
    assert_eq!(p.metadata, vec![("k".to_owned(), "v".to_owned())]);
    assert_eq!(p.tensors.len(), 1);
    assert_eq!((p.tensors[0].begin, p.tensors[0].end), (0, 8));
    assert_eq!(safetensors::byte_size(&[u64::MAX, 2], 8), None);
    assert_eq!(safetensors::byte_size(&[3], 4), None); // 12 bits is not whole bytes
    assert_eq!(safetensors::dtype_bits("F6_E2M3"), Some(6));
}

#[test]
fn gguf_huge_counts_are_refused_before_allocating() {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((1u64 << 62).to_le_bytes());
    b.extend((1u64 << 62).to_le_bytes());
    let p = gguf::parse(&b, &Default::default());
    assert_eq!(p.problems.len(), 1);
    assert_eq!(p.problems[0].kind, gguf::Kind::CountPastEnd);
    assert!(p.kvs.is_empty() && p.tensors.is_empty());
    // Plausible counts over the limit.
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(3u64.to_le_bytes());
    b.extend([0u8; 64]);
    let limits = gguf::Limits {
        max_kv_count: 2,
        ..Default::default()
    };
    assert_eq!(
        gguf::parse(&b, &limits).problems[0].kind,
        gguf::Kind::LimitExceeded
    );
    assert_eq!(gguf::type_block(12), Some((256, 144)));
    assert_eq!(gguf::type_block(4), None);
}

#[test]
fn onnx_and_savedmodel_walks_collect_what_the_rules_need() {
    // ModelProto { ir_version: 8, graph { node { op_type: "Relu", domain: "x" } } }
    let node = [0x22, 4, b'R', b'e', b'l', b'u', 0x3a, 1, b'x'];
    let mut graph = vec![0x0a, node.len() as u8];
    graph.extend(node);
    let mut m = vec![0x08, 0x08, 0x3a, graph.len() as u8];
    m.extend(graph);
    let model = onnx::parse_bytes(&m, &Default::default()).unwrap();
    assert_eq!(model.ir_version, Some(8));
    assert_eq!(model.nodes.len(), 1);
    assert_eq!(
        (
            model.nodes[0].op_type.as_str(),
            model.nodes[0].domain.as_str()
        ),
        ("Relu", "x")
    );
    // SavedModel { meta_graphs { graph_def { node { name: "n", op: "ReadFile" } } } }
    let node = [
        0x0a, 1, b'n', 0x12, 8, b'R', b'e', b'a', b'd', b'F', b'i', b'l', b'e',
    ];
    let mut gd = vec![0x0a, node.len() as u8];
    gd.extend(node);
    let mut mg = vec![0x12, gd.len() as u8];
    mg.extend(gd);
    let mut sm = vec![0x08, 0x01, 0x12, mg.len() as u8];
    sm.extend(mg);
    let model = savedmodel::parse_bytes(&sm, &Default::default()).unwrap();
    assert_eq!(model.meta_graphs, 1);
    assert_eq!(model.nodes[0].op, "ReadFile");
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn pb_ld(field: u64, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    pb_varint((field << 3) | 2, &mut b);
    pb_varint(payload.len() as u64, &mut b);
    b.extend_from_slice(payload);
    b
}

fn pb_v(field: u64, v: u64) -> Vec<u8> {
    let mut b = Vec::new();
    pb_varint(field << 3, &mut b);
    pb_varint(v, &mut b);
    b
}

#[test]
fn onnx_large_models_are_streamed_with_the_same_result() {
    // A 3 MiB initializer (raw_data) plus external data, a node, an opset import and a function.
    let big = [
        pb_v(1, 1024),
        pb_v(1, 768),
        pb_v(2, 1),
        pb_ld(8, b"big"),
        pb_ld(9, &vec![0u8; 3 << 20]),
        pb_ld(13, &[pb_ld(1, b"location"), pb_ld(2, b"../x.bin")].concat()),
        pb_v(14, 1),
    ]
    .concat();
    let small = [pb_ld(1, &[2, 2]), pb_v(2, 1), pb_ld(8, b"small")].concat();
    let node = [pb_ld(4, b"Custom"), pb_ld(7, b"my.domain")].concat();
    let graph = [pb_ld(1, &node), pb_ld(5, &big), pb_ld(5, &small)].concat();
    let func = [pb_ld(1, b"F"), pb_ld(10, b"f.dom"), pb_ld(7, &node)].concat();
    let model = [
        pb_v(1, 8),
        pb_ld(7, &graph),
        pb_ld(8, &[pb_ld(1, b""), pb_v(2, 17)].concat()),
        pb_ld(25, &func),
    ]
    .concat();
    let in_memory = onnx::parse(&model, &onnx::Limits::default()).unwrap();
    let limits = onnx::Limits {
        max_in_memory: 1 << 20,
        ..Default::default()
    };
    let streamed = onnx::parse(&model, &limits).unwrap();
    assert_eq!(streamed, in_memory);
    assert_eq!(streamed.tensors.len(), 2);
    assert_eq!(streamed.tensors[0].dims, vec![1024, 768]);
    assert_eq!(streamed.tensors[0].raw_len, Some(3 << 20));
    assert_eq!(streamed.tensors[1].dims, vec![2, 2]);
    assert_eq!(streamed.nodes.len(), 2);
    // Truncated while streaming: an error, not a panic.
    assert!(onnx::parse(&model[..model.len() - 5].to_vec(), &limits).is_err());
    // A node message over max_in_memory is refused before reading it.
    let tiny = onnx::Limits {
        max_in_memory: 4,
        ..Default::default()
    };
    assert!(onnx::parse(&model, &tiny).unwrap_err().is_limit());
}

#[test]
fn keras_h5_scan_finds_config_after_the_attribute_name() {
    let mut b = keras::HDF5_MAGIC.to_vec();
    b.extend([0u8; 100]);
    b.extend(b"model_config\0\0\0\0\x13\0\x10\0");
    b.extend(br#"{"class_name": "Sequential", "config": {"layers": []}}"#);
    b.extend([0u8; 50]);
    let found = keras::h5_configs(&b, &Default::default());
    assert_eq!(found.names, vec![108]);
    assert_eq!(found.configs.len(), 1, "{found:?}");
    assert_eq!(found.configs[0].0, 108 + 20);
    assert_eq!(
        found.configs[0].1.get("class_name").and_then(Value::as_str),
        Some("Sequential")
    );
    let small = keras::Limits {
        max_h5_scan_bytes: 50,
        ..Default::default()
    };
    let found = keras::h5_configs(&b, &small);
    assert!(found.truncated && found.configs.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_within_limits(
        data in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let _ = json::parse(&data, &JL);
        let _ = fields(&data, 0);

        let sl = safetensors::Limits { max_tensors: 4, max_metadata_entries: 2, ..Default::default() };
        let p = safetensors::parse(&data, &sl);
        prop_assert!(p.tensors.len() <= 4);
        prop_assert!(p.metadata.len() <= 2);

        let gl = gguf::Limits { max_kv_count: 8, max_tensor_count: 8, max_kept_string: 16, ..Default::default() };
        let p = gguf::parse(&data, &gl);
        prop_assert!(p.kvs.len() <= 8 && p.tensors.len() <= 8);
        for kv in &p.kvs {
            if let gguf::Value::String(s) = &kv.value {
                prop_assert!(kv.key.contains("chat_template") || s.len() <= 16 * 3);
            }
        }
        for t in &p.tensors {
            prop_assert!(t.dims.len() <= 4);
        }

        let ol = onnx::Limits { max_items: 16, max_depth: 3, ..Default::default() };
        let in_memory = onnx::parse_bytes(&data, &ol);
        if let Ok(m) = &in_memory {
            prop_assert!(m.nodes.len() + m.tensors.len() + m.functions.len() <= 16);
            prop_assert!(m.tensors.iter().all(|t| t.dims.len() <= ol.max_dims));
        }
        // The streaming walk agrees with the in-memory one whenever both succeed.
        let sl = onnx::Limits { max_in_memory: (data.len() as u64).saturating_sub(1), ..ol.clone() };
        if let (Ok(a), Ok(b)) = (&in_memory, onnx::parse(&data, &sl)) {
            prop_assert_eq!(a, &b);
        }
        let ml = savedmodel::Limits { max_nodes: 8, ..Default::default() };
        if let Ok(m) = savedmodel::parse_bytes(&data, &ml) {
            prop_assert!(m.nodes.len() <= 8);
        }

        let kl = keras::Limits { max_candidates: 2, ..Default::default() };
        let _ = keras::parse_config(&data, &kl);
        let found = keras::h5_configs(&data, &kl);
        prop_assert!(found.configs.len() <= 2);
    }

    #[test]
    fn safetensors_with_valid_prefix_never_panics(
        header in "\\{[\"a-z0-9:,\\[\\]\\{\\} ]{0,200}\\}",
        extra in 0usize..64,
    ) {
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend(header.as_bytes());
        b.extend(vec![0u8; extra]);
        let p = safetensors::parse(&b, &Default::default());
        for t in &p.tensors {
            prop_assert!(t.name.len() <= header.len());
        }
    }
}
