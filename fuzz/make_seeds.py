#!/usr/bin/env python3
"""Writes the binary seed corpora (fuzz/corpus/safetensors, fuzz/corpus/cifar):
small valid files and near-valid ones, each a few hundred bytes to a few KiB.
Standard library only; the output is deterministic. Inputs that made a target
fail go to fuzz/regressions/<target>/ as found, not here."""
import json
import pathlib
import struct

corpus = pathlib.Path(__file__).resolve().parent / "corpus"


def safetensors(header, data=b"", pad=True, length=None):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def write_safetensors():
    out = corpus / "safetensors"
    out.mkdir(parents=True, exist_ok=True)
    f32 = struct.pack("<6f", *range(6))
    seeds = {
        "empty.safetensors": safetensors({}),
        "metadata_only.safetensors": safetensors({"__metadata__": {"round": "3", "val_acc": "0.5"}}),
        "one_f32.safetensors": safetensors({"w": tensor("F32", [2, 3], 0, 24)}, f32),
        "scalar_and_empty.safetensors": safetensors(
            {"s": tensor("F64", [], 0, 8), "e": tensor("I32", [0, 4], 8, 8)}, struct.pack("<d", 1.5)),
        "dtypes.safetensors": safetensors(
            {"__metadata__": {"format": "pt"},
             "a": tensor("BF16", [2], 0, 4), "b": tensor("BOOL", [3], 4, 7),
             "c": tensor("U8", [1], 7, 8), "d": tensor("I64", [1], 8, 16),
             "e": tensor("F16", [2, 2], 16, 24)}, bytes(range(24))),
        "unpadded.safetensors": safetensors({"x": tensor("I8", [2], 0, 2)}, b"\x01\x02", pad=False),
        "truncated.safetensors": safetensors({"w": tensor("F32", [2, 3], 0, 24)}, f32[:20]),
        "overlap.safetensors": safetensors(
            {"a": tensor("U8", [4], 0, 4), "b": tensor("U8", [4], 2, 6)}, bytes(6)),
        "gap.safetensors": safetensors({"a": tensor("U8", [2], 2, 4)}, bytes(4)),
        "bad_dtype.safetensors": safetensors({"a": tensor("F8", [1], 0, 1)}, bytes(1)),
        "huge_shape.safetensors": safetensors(
            {"a": tensor("F64", [2**62, 2**62], 0, 8)}, bytes(8)),
        "header_too_long.safetensors": safetensors({}, length=2**40),
        "not_json.safetensors": struct.pack("<Q", 8) + b"{\"a\":[1,",
        # Nested values in an error message once recursed per level (a million
        # levels: a stack overflow; tests/storage has that case).
        "nested_shape.safetensors": safetensors(
            {"a": {"dtype": "U8", "shape": [[[[[[[[1]]]]]]]], "data_offsets": [0, [[0]]]}}),
    }
    for name, content in seeds.items():
        (out / name).write_bytes(content)


def write_cifar():
    out = corpus / "cifar"
    out.mkdir(parents=True, exist_ok=True)
    image = bytes(i % 251 for i in range(3072))
    seeds = {
        "one_record.bin": bytes([3]) + image,
        "two_records.bin": bytes([0]) + image + bytes([9]) + image[::-1],
        "label_10.bin": bytes([10]) + image,
        "truncated.bin": bytes([1]) + image[:100],
    }
    for name, content in seeds.items():
        (out / name).write_bytes(content)


write_safetensors()
write_cifar()
