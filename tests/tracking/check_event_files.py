#!/usr/bin/python3
"""Reads a run's TensorBoard event files with nothing of flare-cpp's code and
checks them against the run's metrics.jsonl.

    check_event_files.py RUN_DIR PROTO_DIR PROTOC SCRATCH_DIR

The Event/Summary classes are generated here, by PROTOC --python_out, from the
.proto files in PROTO_DIR (the public schema's field numbers); the TFRecord
framing and its masked CRC-32C are checked by this script's own code. Every
figure of metrics.jsonl must be in the event files, at the right step, with
its value as float32; each per-step figure exactly once. Prints what it
checked; exits 1 naming each mismatch.
"""
import json
import os
import struct
import subprocess
import sys


def crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


TABLE = crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        if len(data) - at < 12:
            raise ValueError(f"{path}: a torn record header at byte {at}")
        (length,) = struct.unpack_from("<Q", data, at)
        (length_crc,) = struct.unpack_from("<I", data, at + 8)
        if masked(crc32c(data[at:at + 8])) != length_crc:
            raise ValueError(f"{path}: the length CRC of the record at byte {at} is wrong")
        body = data[at + 12:at + 12 + length]
        if len(body) != length or len(data) < at + 16 + length:
            raise ValueError(f"{path}: a torn record at byte {at}")
        (body_crc,) = struct.unpack_from("<I", data, at + 12 + length)
        if masked(crc32c(body)) != body_crc:
            raise ValueError(f"{path}: the data CRC of the record at byte {at} is wrong")
        yield body
        at += 16 + length


def as_float32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def main():
    run_dir, proto_dir, protoc, scratch = sys.argv[1:5]
    os.makedirs(scratch, exist_ok=True)
    protos = [os.path.join("tensorboard/compat/proto", name) for name in ("summary.proto", "event.proto")]
    subprocess.run([protoc, f"--proto_path={proto_dir}", f"--python_out={scratch}", *protos], check=True)
    sys.path.insert(0, scratch)
    from tensorboard.compat.proto import event_pb2  # generated just now

    problems = []
    runs = {}  # run -> {(tag, step): [values]}
    tb_dir = os.path.join(run_dir, "tensorboard")
    for run in sorted(os.listdir(tb_dir)):
        files = [f for f in os.listdir(os.path.join(tb_dir, run)) if f.startswith("events.out.tfevents.")]
        if len(files) != 1:
            problems.append(f"{run}: expected one event file, found {files}")
            continue
        scalars = runs.setdefault(run, {})
        for i, body in enumerate(records(os.path.join(tb_dir, run, files[0]))):
            event = event_pb2.Event.FromString(body)
            if i == 0:
                if event.file_version != "brain.Event:2":
                    problems.append(f"{run}: the first event is not file_version brain.Event:2")
                continue
            for value in event.summary.value:
                if value.WhichOneof("value") != "simple_value":
                    problems.append(f"{run}: {value.tag} is not a simple_value")
                scalars.setdefault((value.tag, event.step), []).append(value.simple_value)

    def expect(run, tag, step, value, once=False):
        values = runs.get(run, {}).get((tag, step))
        if not values:
            problems.append(f"{run}: no {tag} at step {step}")
        elif as_float32(value) not in values:
            problems.append(f"{run}: {tag} at step {step} is {values}, expected {value}")
        elif once and len(values) != 1:
            problems.append(f"{run}: {tag} at step {step} written {len(values)} times")

    own = {"kind", "site", "round", "step", "epoch"}
    counts = {"train_step": 0, "site": 0, "global": 0}
    train_points = {}
    for line in open(os.path.join(run_dir, "metrics.jsonl")):
        rec = json.loads(line)
        kind = rec["kind"]
        if kind == "train_step":
            for name, value in rec.items():
                if name not in own:
                    expect(rec["site"], "train/" + name, rec["step"], value, once=True)
                    train_points[rec["site"]] = train_points.get(rec["site"], 0) + 1
        elif kind == "site":
            expect(rec["site"], "round/train_seconds", rec["round"], rec["train_seconds"])
            for name, value in rec["received_model"].items():
                expect(rec["site"], "eval/" + name, rec["round"] - 1, value)
        elif kind == "global":
            for name, value in rec.items():
                if name in ("round_seconds", "images_per_s"):
                    expect("global", "round/" + name, rec["round"], value)
                elif name not in ("kind", "round", "best", "model") and isinstance(value, (int, float)):
                    expect("global", "eval/" + name, rec["round"], value)
        else:
            continue
        counts[kind] += 1
    # Nothing per step in the event files that metrics.jsonl lacks.
    for run, scalars in runs.items():
        written = sum(len(v) for (tag, _), v in scalars.items() if tag.startswith("train/"))
        if written != train_points.get(run, 0):
            problems.append(f"{run}: {written} per-step values in the event file, "
                            f"{train_points.get(run, 0)} in metrics.jsonl")
    print(f"runs {sorted(runs)}; checked {counts['train_step']} train_step, {counts['site']} site "
          f"and {counts['global']} global lines")
    for p in problems:
        print("MISMATCH:", p)
    return 1 if problems or counts["train_step"] == 0 or counts["global"] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
