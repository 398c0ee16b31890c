"""check_metrics.py EXAMPLE WORKSPACE: the example's job (its one run in
WORKSPACE) succeeded and did what the example is for. Standard library only."""
import json
import math
import pathlib
import struct
import sys


def fail(message):
    sys.exit(f"{example}: {message}")


def first_tensor(model_file):
    """The values of a safetensors file's one float32 tensor."""
    data = model_file.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    tensors = [v for k, v in header.items() if k != "__metadata__"]
    if len(tensors) != 1 or tensors[0]["dtype"] != "F32":
        fail(f"{model_file.name}: expected one float32 tensor, found {header}")
    begin, end = tensors[0]["data_offsets"]
    raw = data[8 + header_size + begin : 8 + header_size + end]
    return struct.unpack(f"<{len(raw) // 4}f", raw)


example, workspace = sys.argv[1], pathlib.Path(sys.argv[2])
runs = sorted(workspace.glob("run-*"))
if len(runs) != 1:
    fail(f"expected one run in {workspace}, found {[r.name for r in runs]}")
run = runs[0]
lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
of_kind = lambda kind: [l for l in lines if l.get("kind") == kind]
job = of_kind("job")
if len(job) != 1 or job[0]["status"] != "succeeded" or of_kind("failure"):
    fail(f"the job did not succeed: {job + of_kind('failure')}")
rounds = job[0]["rounds_completed"]
globals_ = {l["round"]: l for l in of_kind("global")}
if sorted(globals_) != list(range(rounds + 1)) or len(of_kind("site")) != 2 * rounds:
    fail(f"expected {rounds + 1} global and {2 * rounds} site lines: {lines}")
first, last = globals_[0], globals_[rounds]
print(f"{example}: initial {first}, final {last}")

if example == "spirals_trainer":
    # Two spirals are not linearly separable: 0.9 needs the hidden layers.
    if not (last["test_acc"] > 0.9 and last["test_acc"] > first["test_acc"] + 0.2):
        fail(f"did not learn the spirals: test_acc {first['test_acc']} -> {last['test_acc']}")
elif example == "c_linear_trainer":
    if not last["test_loss"] < first["test_loss"] / 20:
        fail(f"did not fit the line: test_loss {first['test_loss']} -> {last['test_loss']}")
elif example == "clipped_fedavg":
    max_norm = 0.5  # the job's aggregator.config.max_norm
    figures = of_kind("aggregator")
    if [f["round"] for f in figures] != list(range(1, rounds + 1)):
        fail(f"expected the aggregator's figures every round: {figures}")
    # The sites' deltas are far larger than max_norm (they fit the line in one
    # round unclipped) ...
    if not all(f["clipped_sites"] == 2 and f["max_update_norm"] > 2 * max_norm for f in figures):
        fail(f"expected both sites clipped every round: {figures}")
    # ... so each round moves the global model by max_norm, no more, and the
    # loss still falls.
    models = [first_tensor(run / "models" / f"global_round_{r}.safetensors") for r in range(rounds + 1)]
    for r in range(1, rounds + 1):
        step = math.dist(models[r], models[r - 1])
        if not (0.9 * max_norm < step <= max_norm * (1 + 1e-5)):
            fail(f"round {r} moved the model by {step}, not by at most and about {max_norm}")
    if not last["test_loss"] < first["test_loss"]:
        fail(f"test_loss did not fall: {first['test_loss']} -> {last['test_loss']}")
else:
    fail("no check for this example")
