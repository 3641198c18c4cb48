#!/usr/bin/python3
"""Writes the .npy and .safetensors fixtures of tests/unit/test_io.cpp.

The .npy files come from NumPy itself, so the tests check cnv against the real writer.
There is no safetensors package here; those files are assembled with struct and json,
following https://github.com/huggingface/safetensors#format. Re-run after editing:
    /usr/bin/python3 tests/data/io/make_fixtures.py
"""
import json
import os
import struct

import numpy as np
from numpy.lib import format as npy_format

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def save_npy(name, array, version=None, **kwargs):
    with open(path(name), "wb") as f:
        npy_format.write_array(f, array, version=version, **kwargs)


def counting(shape, dtype="<f4"):
    """Values i / 8 - 1 for i = 0, 1, ...: exact in float32, distinct, some negative."""
    return (np.arange(int(np.prod(shape)), dtype=np.float64) / 8 - 1).astype(dtype).reshape(shape)


def save_safetensors(name, header, data):
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path(name), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def f32_bytes(array):
    return np.ascontiguousarray(array, dtype="<f4").tobytes()


# Valid .npy files, one per header version, plus the edge shapes.
save_npy("v1_2x3x4.npy", counting((2, 3, 4)), version=(1, 0))
save_npy("v2_5.npy", counting((5,)), version=(2, 0))
save_npy("v3_2x2.npy", counting((2, 2)), version=(3, 0))
save_npy("empty_0x5x2.npy", counting((0, 5, 2)), version=(1, 0))
save_npy("scalar.npy", np.array(2.5, dtype="<f4"), version=(1, 0))
np.save(path("save_3x4.npy"), counting((3, 4)))  # whatever version np.save picks

# Files cnv must reject.
save_npy("f8.npy", counting((2, 3), "<f8"))
save_npy("big_endian.npy", counting((2, 3), ">f4"))
save_npy("int32.npy", np.arange(6, dtype="<i4").reshape(2, 3))
save_npy("fortran.npy", np.asfortranarray(counting((2, 3))))
save_npy("object.npy", np.array([1.0, "pickled"], dtype=object), allow_pickle=True)
save_npy("structured.npy", np.zeros(3, dtype=[("a", "<f4"), ("b", "<f4")]))
with open(path("trailing.npy"), "wb") as f:
    npy_format.write_array(f, counting((2, 3)), version=(1, 0))
    f.write(b"\0\0\0\0")
with open(path("v1_2x3x4.npy"), "rb") as f:
    valid = f.read()
with open(path("truncated.npy"), "wb") as f:
    f.write(valid[:-4])

# Valid .safetensors: data stored in a different order than the names sort, plus metadata.
weight = counting((4, 2, 3))
bias = counting((4,)) + 10
save_safetensors(
    "two_tensors.safetensors",
    {
        "__metadata__": {"format": "pt"},
        "conv.weight": {"dtype": "F32", "shape": [4, 2, 3], "data_offsets": [16, 112]},
        "conv.bias": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
    },
    f32_bytes(bias) + f32_bytes(weight))
save_safetensors(
    "with_empty.safetensors",
    {
        "a": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
        "b": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
    },
    f32_bytes(np.array(7.0)))

# .safetensors files cnv must reject.
save_safetensors(
    "overlap.safetensors",
    {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
    },
    bytes(12))
save_safetensors(
    "hole.safetensors",
    {
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]},
    },
    bytes(20))
save_safetensors(
    "f16.safetensors",
    {"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}},
    np.array([1, 2], dtype="<f2").tobytes())
save_safetensors(
    "trailing.safetensors",
    {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
    bytes(12))
