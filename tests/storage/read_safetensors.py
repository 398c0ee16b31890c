#!/usr/bin/env python3
"""Reads a safetensors file with only json + numpy, as a user would, and prints
{"metadata": {...}, "tensors": {name: {"dtype", "shape", "values"}}} as JSON.

    /usr/bin/python3 read_safetensors.py FILE

Proves flare's model files need neither the safetensors package nor torch."""
import json
import struct
import sys

import numpy as np

NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
         "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    buffer = memoryview(raw)[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        chunk = buffer[begin:end]
        if e["dtype"] == "BF16":  # numpy has no bfloat16: widen to float32
            a = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(chunk, NUMPY[e["dtype"]])
        tensors[name] = a.reshape(e["shape"])
    return metadata, tensors, header


def main():
    metadata, tensors, header = load(sys.argv[1])
    out = {"metadata": metadata, "tensors": {}}
    for name, a in tensors.items():
        out["tensors"][name] = {"dtype": header[name]["dtype"], "shape": list(a.shape),
                                "values": a.ravel().tolist()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
