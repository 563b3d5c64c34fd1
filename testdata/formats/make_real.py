#!/usr/bin/env python3
"""Writes benign and malicious files with the formats' own reference writers (needs numpy, gguf,
safetensors, onnx). Deterministic. Nothing is loaded or executed; malicious payloads are inert
strings that a loader would act on.
"""
import os
import sys

import numpy as np

OUT = os.path.dirname(os.path.abspath(__file__)) if len(sys.argv) < 2 else sys.argv[1]


def path(name):
    return os.path.join(OUT, name)


# ---- safetensors (reference writer: header padded, tensors contiguous)
from safetensors.numpy import save_file

save_file(
    {
        "a": np.arange(6, dtype=np.float16).reshape(2, 3),
        "b": np.ones((3,), dtype=np.int64),
        "c": np.zeros((0,), dtype=np.float32),
        "d": np.ones((4, 4), dtype=np.uint8),
    },
    path("real.safetensors"),
    metadata={"format": "pt", "note": "benign"},
)

# ---- GGUF (gguf-py writer: alignment padding, several value types, quantised tensor type)
import gguf

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SSTI = "{{ cycler.__init__.__globals__.os.popen('touch /tmp/rampart_marker').read() }}" + CHATML


def write_gguf(name, template):
    w = gguf.GGUFWriter(path(name), "llama")
    w.add_name("tiny")
    w.add_block_count(1)
    w.add_context_length(128)
    w.add_float32("test.f32", 0.5)
    w.add_bool("test.bool", True)
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b"])
    w.add_array("test.ints", [1, 2, 3])
    w.add_chat_template(template)
    w.add_tensor("tok_embd.weight", np.ones((4, 8), dtype=np.float32))
    w.add_tensor("out.weight", np.ones((8,), dtype=np.float16))
    w.add_tensor(
        "q8.weight",
        np.zeros((2, 34), dtype=np.uint8),
        raw_dtype=gguf.GGMLQuantizationType.Q8_0,
    )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


write_gguf("real.gguf", CHATML)
write_gguf("real_ssti.gguf", SSTI)

# ---- ONNX (onnx helper: a subgraph in an If node, external data)
import onnx
from onnx import TensorProto, helper


def model(location, domain=""):
    init = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    ext = helper.make_tensor("E", TensorProto.FLOAT, [2], b"\0" * 8, raw=True)
    if location is not None:
        onnx.external_data_helper.set_external_data(ext, location=location, offset=0, length=8)
        ext.data_location = TensorProto.EXTERNAL
        ext.ClearField("raw_data")
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["T"])],
        "then",
        [],
        [helper.make_tensor_value_info("T", TensorProto.FLOAT, [2, 2])],
        [ext],
    )
    else_g = helper.make_graph(
        [helper.make_node("Identity", ["X"], ["F"])],
        "else",
        [],
        [helper.make_tensor_value_info("F", TensorProto.FLOAT, [2, 2])],
    )
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["M"]),
        helper.make_node("If", ["C"], ["Y"], then_branch=then_g, else_branch=else_g),
    ]
    opsets = [helper.make_opsetid("", 17)]
    if domain:
        nodes.append(helper.make_node("MyOp", ["M"], ["Z"], domain=domain))
        opsets.append(helper.make_opsetid(domain, 1))
    g = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 2]),
            helper.make_tensor_value_info("C", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 2])],
        [init],
    )
    m = helper.make_model(g, opset_imports=opsets, producer_name="rampart-test")
    m.ir_version = 8
    return m.SerializeToString()


for name, loc, dom in [
    ("real.onnx", None, ""),
    ("real_external_ok.onnx", "weights.bin", ""),
    ("real_external_traversal.onnx", "..\\..\\secrets\\key.bin", ""),
    ("real_external_url.onnx", "file:///etc/passwd", ""),
    ("real_custom_domain.onnx", None, "com.example.custom"),
]:
    with open(path(name), "wb") as f:
        f.write(model(loc, dom))
