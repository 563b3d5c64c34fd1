#!/usr/bin/env python3
"""Writes the legacy Keras HDF5 test files in this folder (needs h5py + numpy).

The files imitate what tf.keras 2.x `model.save("x.h5")` writes: root attributes
`keras_version`, `backend` and `model_config` (JSON), plus a `model_weights` group. Nothing
here imports Keras; the Lambda payload is a harmless base64 placeholder, not real bytecode.
Deterministic: fixed data, no timestamps (track_times=False).
"""
import json
import os
import sys

import h5py
import numpy as np

OUT = os.path.dirname(os.path.abspath(__file__)) if len(sys.argv) < 2 else sys.argv[1]

DENSE = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "input_1"}},
            {"class_name": "Dense", "config": {"name": "dense", "units": 2, "activation": "relu"}},
        ],
    },
}

LAMBDA = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {"class_name": "Dense", "config": {"name": "dense", "units": 2}},
            {
                "class_name": "TimeDistributed",
                "config": {
                    "name": "td",
                    "layer": {
                        "class_name": "Lambda",
                        "config": {
                            "name": "lambda",
                            "function": ["UExBQ0VIT0xERVI=", None, None],
                            "function_type": "lambda",
                            "module": "__main__",
                        },
                    },
                },
            },
        ],
    },
}


def write(name, config, as_str=False, big=False, libver="earliest"):
    path = os.path.join(OUT, name)
    with h5py.File(path, "w", libver=libver, track_order=False) as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        if config is not None:
            if big:
                config = json.loads(json.dumps(config))
                config["config"]["padding_note"] = "x" * 70000
            text = json.dumps(config)
            f.attrs["model_config"] = text if as_str else text.encode("utf8")
        g = f.create_group("model_weights")
        g.create_dataset("dense/kernel:0", data=np.arange(8, dtype=np.float32).reshape(4, 2), track_times=False)


write("keras2_dense.h5", DENSE)
write("keras2_lambda.h5", LAMBDA)
write("keras2_lambda_vlen.h5", LAMBDA, as_str=True)
write("keras2_lambda_dense_storage.h5", LAMBDA, big=True, libver="latest")
write("plain_hdf5.h5", None)
