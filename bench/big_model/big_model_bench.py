#!/usr/bin/env python3
"""What a big model costs the runtime: flare-run with a plain-C trainer whose
model is PARAMS float32 parameters in TENSORS tensors (big_model_trainer.c,
training nearly free), SITES sites x 1 rank, FedAvg, ROUNDS rounds.

Memory: every process of flare-run's tree (flare-run is the server; it starts
the sites, which start their ranks) is polled every --poll_ms until the run
ends; each process's peak is its own VmHWM (the kernel's high-water mark of
its resident memory, so a peak between two polls is not missed, only growth in
the last poll before a process exits). Reported: the server's peak as a
multiple of the model's size, the sum of every process's peak, and the
largest sum of resident memory seen at one poll. A guard kills the run when
the machine's available memory falls below --guard_mib (this machine has no
swap; the OOM killer would pick anyone's process), and reports that.

Time: seconds per round as the server measures it (metrics.jsonl,
round_seconds: start of the round to the aggregated global model saved), and
the bytes a round moves, 2 x SITES x model bytes (the global model to every
site, every site's update back), divided by it.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def read_status(pid):
    """{'VmHWM': kB, 'VmRSS': kB, 'Name': str} of a process, or None when gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "Name":
                    out[key] = value.strip()
                elif key in ("VmHWM", "VmRSS"):
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return out


def children_by_parent():
    tree = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may hold spaces and parentheses: the fields after the last ')'
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(root):
    tree = children_by_parent()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def mem_available_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def job_text(plugin, sites, rounds, params, tensors, seed):
    return f"""[job]
name = "big-model-bench"
num_rounds = {rounds}
seed = {seed}
[clients]
count = {sites}
devices = 1
[data]
dir = "."
[trainer]
path = "{plugin}"
[trainer.config]
params = {params}
tensors = {tensors}
seed = {seed}
[aggregator]
plugin = "fedavg"
[server]
key_metric = "val_acc"
"""


def run_once(args, work, tag):
    """One flare-run; returns its figures (or the way it ended)."""
    job = work / f"job-{tag}.toml"
    job.write_text(job_text(args.plugin, args.sites, args.rounds, args.params, args.tensors,
                            args.seed))
    ws = work / f"ws-{tag}"
    out_path = work / f"flare-run-{tag}.out"
    peaks = {}  # pid -> (name, VmHWM kB)
    max_sum_rss = 0
    guard_tripped = None
    started = time.monotonic()
    with open(out_path, "w") as out:
        proc = subprocess.Popen([str(args.build / "bin/flare-run"), str(job), "--workspace",
                                 str(ws)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        while proc.poll() is None:
            sum_rss = 0
            pids = descendants(proc.pid)
            for pid in pids:
                status = read_status(pid)
                if status and "VmHWM" in status:
                    peaks[pid] = (status["Name"], status["VmHWM"])
                    sum_rss += status["VmRSS"]
            max_sum_rss = max(max_sum_rss, sum_rss)
            if guard_tripped is None and mem_available_kib() < args.guard_mib * 1024:
                guard_tripped = (time.monotonic() - started, sum_rss)
                for pid in reversed(pids):  # this run's processes only
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(args.poll_ms / 1000)
    wall = time.monotonic() - started
    model_bytes = 4 * args.params
    server_kib = peaks.get(proc.pid, ("", 0))[1]
    result = {
        "tag": tag, "exit_code": proc.returncode, "wall_s": wall,
        "server_peak_bytes": server_kib * 1024,
        "server_peak_x_model": server_kib * 1024 / model_bytes,
        "sum_of_peaks_bytes": sum(kib for _, kib in peaks.values()) * 1024,
        "max_sum_rss_bytes": max_sum_rss * 1024,
        "processes": sorted(((name, kib * 1024) for pid, (name, kib) in peaks.items()),
                            key=lambda p: -p[1]),
    }
    if guard_tripped:
        result["guard"] = (f"killed after {guard_tripped[0]:.1f} s: the machine had less than "
                           f"{args.guard_mib} MiB available, this run's processes held "
                           f"{guard_tripped[1] / MIB:.1f} GiB")
    metrics = ws / "latest/metrics.jsonl"
    lines = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()] \
        if metrics.exists() else []
    rounds = [l["round_seconds"] for l in lines
              if l.get("kind") == "global" and l.get("round", 0) > 0 and "round_seconds" in l]
    result["round_seconds"] = rounds
    ended = [l for l in lines if l.get("kind") == "job"]
    result["job"] = ended[-1] if ended else None
    result["failures"] = [l for l in lines if l.get("kind") == "failure"]
    if proc.returncode != 0:
        result["output_tail"] = out_path.read_text(errors="replace")[-3000:]
        logs = ws / "latest/logs"
        if logs.is_dir():
            result["log_tails"] = {p.name: p.read_text(errors="replace")[-1500:]
                                   for p in sorted(logs.glob("*.log"))}
    return result


def spread(values, fmt):
    if not values:
        return "-"
    return (fmt + " [" + fmt + "-" + fmt + "]").format(statistics.median(values), min(values),
                                                       max(values))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", type=int, default=125_000_000)
    ap.add_argument("--tensors", type=int, default=20)
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--build", type=Path, default=ROOT / "build")
    ap.add_argument("--plugin", type=Path, default=None,
                    help="the trainer (default: the build's bench/big_model plugin)")
    ap.add_argument("--poll_ms", type=float, default=20)
    ap.add_argument("--guard_mib", type=int, default=2048,
                    help="kill the run when the machine has less available")
    ap.add_argument("--json_out", type=Path, default=None, help="every run's figures")
    args = ap.parse_args()
    if args.plugin is None:
        args.plugin = args.build / "bench/big_model/libflare_bench_big_model_trainer.so"
    model_bytes = 4 * args.params
    print(f"model: {args.params:,} float32 parameters in {args.tensors} tensors = "
          f"{model_bytes / MIB:.1f} MiB; {args.sites} sites x 1 rank, FedAvg, {args.rounds} "
          f"rounds; {args.repeats} runs", flush=True)

    runs = []
    with tempfile.TemporaryDirectory(prefix="flare-bench-big-model.") as tmp:
        work = Path(tmp)
        for i in range(args.repeats):
            r = run_once(args, work, str(i))
            runs.append(r)
            subprocess.run(["rm", "-rf", str(work / f"ws-{i}")], check=False)  # GBs of models
            rounds = ", ".join(f"{s:.2f}" for s in r["round_seconds"])
            print(f"run {i + 1}: exit {r['exit_code']}, wall {r['wall_s']:.1f} s, server peak "
                  f"{r['server_peak_bytes'] / MIB:.0f} MiB = {r['server_peak_x_model']:.2f}x "
                  f"the model, sum of peaks {r['sum_of_peaks_bytes'] / MIB:.0f} MiB, "
                  f"s/round [{rounds}]", flush=True)
            if r.get("guard"):
                print(f"  memory guard: {r['guard']}", flush=True)
            if r["exit_code"] != 0:
                print("  flare-run's output (tail):\n" + r.get("output_tail", ""), flush=True)
                for name, text in r.get("log_tails", {}).items():
                    print(f"  --- {name} (tail)\n{text}", flush=True)
                break  # a failure repeats; its figures are the finding

    if args.json_out:
        args.json_out.write_text(json.dumps(runs, indent=1))
    ok = [r for r in runs if r["exit_code"] == 0 and len(r["round_seconds"]) == args.rounds]
    print(f"\nsummary over {len(ok)} successful runs of {len(runs)} "
          f"(median [min-max]); GB = 1e9 bytes, MiB/GiB = 2^20/2^30")
    per_round = [s for r in ok for s in r["round_seconds"]]
    moved = 2 * args.sites * model_bytes
    print(f"  server (flare-run) peak RSS      {spread([r['server_peak_bytes'] / MIB for r in ok], '{:.0f}')} MiB")
    print(f"  server peak / model              {spread([r['server_peak_x_model'] for r in ok], '{:.2f}')} x")
    print(f"  sum of every process's peak RSS  {spread([r['sum_of_peaks_bytes'] / MIB for r in ok], '{:.0f}')} MiB"
          f" = {spread([r['sum_of_peaks_bytes'] / model_bytes for r in ok], '{:.1f}')} x the model")
    print(f"  largest sum of RSS at one poll   {spread([r['max_sum_rss_bytes'] / MIB for r in ok], '{:.0f}')} MiB")
    print(f"  seconds per round (every round)  {spread(per_round, '{:.2f}')}")
    print(f"  GB/s moved per round ({moved / 1e9:.2f} GB) {spread([moved / 1e9 / s for s in per_round], '{:.3f}')}")
    for k in range(args.rounds):  # round by round: the first is the slower one here
        this_round = [r["round_seconds"][k] for r in ok]
        print(f"    round {k + 1}: s {spread(this_round, '{:.2f}')}, GB/s "
              f"{spread([moved / 1e9 / s for s in this_round], '{:.3f}')}")
    if ok:
        print("  peak RSS per process (last run): " +
              ", ".join(f"{name} {b / MIB:.0f}" for name, b in ok[-1]["processes"]) + " MiB")
    print(f"  machine load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0 if len(ok) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
