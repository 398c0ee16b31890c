#!/usr/bin/env python3
"""A stand-in for flare-run that ends the way
CHAOS_FAKE_MODE says, so chaos_verdicts can check each of scripts/chaos.sh's
verdicts against a run whose end is known:
  complete  every round's global model, whole files, exit 0
  failed    two rounds, "the job failed: <reason>", exit 1
  silent    exit 1 without saying why
  hang      never ends
  orphan    "the job failed", but leaves a process naming the workspace
  corrupt   complete, but a model file cut short and a checkpoint with a changed byte
  resume    --help lists --resume; runs until killed; --resume RUN_DIR completes it
"""
import hashlib
import json
import os
import pathlib
import struct
import subprocess
import sys
import time

ROUNDS = int(os.environ.get("CHAOS_FAKE_ROUNDS", "3"))
MODE = os.environ["CHAOS_FAKE_MODE"]


def safetensors(values):
    data = struct.pack(f"<{len(values)}f", *values)
    header = json.dumps({"w": {"dtype": "F32", "shape": [len(values)],
                               "data_offsets": [0, len(data)]}}).encode()
    return struct.pack("<Q", len(header)) + header + data


def write_rounds(run, rounds):
    (run / "models").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    with open(run / "metrics.jsonl", "a") as metrics:
        for k in rounds:
            (run / "models" / f"global_round_{k}.safetensors").write_bytes(safetensors([k, 1.0]))
            if k > 0:
                body = safetensors([k])
                (run / "checkpoints" / f"checkpoint_round_{k}.ckpt").write_bytes(
                    body + hashlib.sha256(body).digest())
            metrics.write(json.dumps({"kind": "global", "round": k}) + "\n")


def main(args):
    if args == ["--help"]:
        print("usage: flare-run JOB.toml" + (" [--resume RUN_DIR]" if MODE == "resume" else ""))
        return 0
    if args[0] == "--resume":
        write_rounds(pathlib.Path(args[1]), range(2, ROUNDS + 1))
        return 0
    run = pathlib.Path(args[args.index("--workspace") + 1]) / "run-1"
    run.mkdir(parents=True)
    write_rounds(run, range(ROUNDS + 1) if MODE in ("complete", "corrupt") else range(2))
    if MODE == "complete":
        return 0
    if MODE == "corrupt":
        model = run / "models" / "global_round_1.safetensors"
        model.write_bytes(model.read_bytes()[:-3])
        checkpoint = run / "checkpoints" / "checkpoint_round_2.ckpt"
        data = bytearray(checkpoint.read_bytes())
        data[10] ^= 0xFF
        checkpoint.write_bytes(bytes(data))
        return 0
    if MODE in ("hang", "resume"):
        while True:
            time.sleep(0.1)
    if MODE == "orphan":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", str(run)],
                         start_new_session=True)
    if MODE != "silent":
        print("\nflare-run: the job failed: site-2 vanished (a stand-in's reason)")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
