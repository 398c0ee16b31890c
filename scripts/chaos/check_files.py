#!/usr/bin/env python3
"""Checks that a run's saved files are whole: every models/*.safetensors parses
and every checkpoints/*.ckpt verifies (runtime/checkpoint/round_checkpoint.hpp:
a safetensors file, then the SHA-256 of all of it in the last 32 bytes).

    check_files.py RUN_DIR...

Prints one line per bad file (its path and what is wrong) and a count; exits 1
when any file is bad, 2 on bad usage. Temp files of an interrupted atomic write
start with a dot and are skipped: no reader ever loads them.
"""
import hashlib
import json
import math
import pathlib
import struct
import sys

DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
               "I8": 1, "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1,
               "F8_E4M3": 1, "F8_E5M2": 1}
SHA256_BYTES = 32


def safetensors_problem(data):
    """What is wrong with `data` as a safetensors file, or None."""
    if len(data) < 8:
        return f"truncated: {len(data)} bytes, shorter than the 8-byte header length"
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        return f"header length {header_len} runs past the end ({len(data)} bytes)"
    try:
        header = json.loads(data[8:8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return f"header is not JSON: {error}"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    body = len(data) - 8 - header_len
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = entry["data_offsets"]
            size = DTYPE_BYTES[entry["dtype"]] * math.prod(entry["shape"])
        except (KeyError, TypeError, ValueError):
            return f"tensor '{name}': no dtype, shape or data_offsets"
        if not 0 <= begin <= end <= body:
            return f"tensor '{name}': offsets [{begin}, {end}] outside the {body}-byte data"
        if end - begin != size:
            return f"tensor '{name}': {end - begin} bytes for {entry['dtype']} {entry['shape']}"
    return None


def checkpoint_problem(data):
    if len(data) < SHA256_BYTES:
        return f"truncated: {len(data)} bytes, shorter than the SHA-256 trailer"
    body, trailer = data[:-SHA256_BYTES], data[-SHA256_BYTES:]
    if hashlib.sha256(body).digest() != trailer:
        return "SHA-256 mismatch: the trailer is not the digest of the rest"
    problem = safetensors_problem(body)
    return problem and f"verified but not safetensors: {problem}"


def main(run_dirs):
    if not run_dirs:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    checked, bad = 0, 0
    for run in map(pathlib.Path, run_dirs):
        files = [(f, safetensors_problem) for f in sorted(run.glob("models/*.safetensors"))]
        files += [(f, checkpoint_problem) for f in sorted(run.glob("checkpoints/*.ckpt"))]
        for file, problem_of in files:
            if file.name.startswith("."):
                continue
            checked += 1
            problem = problem_of(file.read_bytes())
            if problem:
                bad += 1
                print(f"corrupted: {file}: {problem}")
    print(f"{checked} files checked, {bad} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
