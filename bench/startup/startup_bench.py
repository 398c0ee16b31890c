#!/usr/bin/env python3
"""Where flare-run's start-up goes, and the seed job's whole run against the
plain-PyTorch reference, in the same run (see bench/startup/run.sh).

Each repetition runs, in alternating order:
  - flare-run on the seed job (2 sites x 1 rank, LitNet, batch 4, ROUNDS rounds,
    1 intra-op thread per rank on a 2-core machine), timed from launch to exit,
    its start-up split into phases from the timestamps in its per-process logs;
  - torch_reference.py --concurrent_clients 1 with the same settings, timed from
    launch to exit, its start-up taken from its own figures and the moment it
    reports its ranks up;
  - flare-run on a trivial C trainer (tests/e2e/fixtures/c_trainer.c, 2 sites x
    1 rank and 2 sites x 2 ranks, 1 round): the runtime's own start-up, without
    LibTorch in the trainer or data; with 2 ranks a site's group meets first.
Prints the median and the range [min-max] of every figure over the repetitions.
"""
import argparse
import datetime
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def log_lines(path):
    """(unix time, text) of every line of a flare log."""
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[[^]]*\] (.*)", line)
        if m:
            when = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            out.append((when, m.group(2)))
    return out


def first(lines, pattern, what):
    for when, text in lines:
        m = re.search(pattern, text)
        if m:
            return when, m
    raise RuntimeError(f"no line matching {pattern!r} in {what}")


def flare_timeline(logs, launched):
    """Phases of the site that registered last (round 1 waits for it), in seconds."""
    server = log_lines(logs / "server.log")
    ago_at, ago = first(server, r"start-up: flare-run began the job (\d+) ms ago", "server.log")
    began = ago_at - int(ago.group(1)) / 1000
    steps = {m.group(1): int(m.group(2)) / 1000 for _, text in server
             for m in [re.match(r"start-up: (.*) in (\d+) ms$", text)] if m}
    listening, _ = first(server, r"^listening on", "server.log")
    sites = sorted(p.name[:-len(".log")] for p in logs.glob("*.log")
                   if p.name != "server.log" and ".rank" not in p.name)
    timelines = []
    for site in sites:
        client = log_lines(logs / f"{site}.log")
        worker = log_lines(logs / f"{site}.rank0.log")
        c_started, _ = first(client, r"^started$", site)
        spawning, threads = first(client, r"starting \d+ worker ranks .*?(\d+) threads each", site)
        w_started, _ = first(worker, r"^started$", site + " rank 0")
        joined, _ = first(worker, r"joined the worker group", site + " rank 0")
        registered, _ = first(worker, r"registered with the server", site + " rank 0")
        created, _ = first(worker, r"trainer created", site + " rank 0")
        received, _ = first(worker, r"round 1: received the global model", site + " rank 0")
        training, _ = first(worker, r"round 1: evaluated the global model", site + " rank 0")
        try:  # the cifar10 trainer says when its data is in
            loaded, _ = first(worker, r"cifar10: .* images$", site + " rank 0")
        except RuntimeError:
            loaded = received
        phases = [
            ("flare-run: process start, job read", began - launched),
            ("flare-run: plugins checked", steps.get("checked the plugins", 0)),
            ("flare-run: device probe", steps.get("planned the devices", 0)),
            ("flare-run: run folder, server up",
             listening - began - steps.get("checked the plugins", 0)
             - steps.get("planned the devices", 0)),
            ("client: process start", c_started - listening),
            ("client: job read, device probe", spawning - c_started),
            ("worker: process start (LibTorch load)", w_started - spawning),
            ("worker: job read, rendezvous", joined - w_started),
            ("worker: register with the server", registered - joined),
            ("worker: trainer plugin load, create", created - registered),
            ("wait for all sites, initial model", received - created),
            ("round 1: model in, data load", loaded - received),
            ("round 1: evaluation of the initial model", training - loaded),
        ]
        timelines.append((registered, training - launched, site, int(threads.group(1)), phases))
    return max(timelines)[1:]


def cpu_seconds():
    """User + system time of every finished descendant so far (each run's
    processes are all reaped by the time it returns)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_flare(build, job_args, work, tag):
    ws = work / f"ws-{tag}"
    cpu = cpu_seconds()
    launched = time.time()
    subprocess.run([str(build / "bin/flare-run"), *job_args, "--workspace", str(ws)],
                   stdout=subprocess.DEVNULL, check=True)
    wall = time.time() - launched
    first_round, site, threads, phases = flare_timeline(ws / "latest/logs", launched)
    return {"wall": wall, "cpu": cpu_seconds() - cpu, "first_round": first_round,
            "threads": threads, "phases": phases}


def run_reference(reference, data, rounds, work, tag):
    out = work / f"ref-{tag}.json"
    cpu = cpu_seconds()
    launched = time.time()
    proc = subprocess.Popen([sys.executable, str(reference), "--data", str(data), "--n_clients", "2",
                             "--devices", "1", "--num_rounds", str(rounds), "--batch_size", "4",
                             "--lr", "0.001", "--momentum", "0.9", "--local_epochs", "1",
                             "--threads", "1", "--concurrent_clients", "1", "--json_out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ranks_up = None
    for line in proc.stderr:  # stamped as it arrives: "... ranks up in 2.72s" starts round 1
        if ranks_up is None and " up in " in line:
            ranks_up = time.time() - launched
    if proc.wait() != 0:
        raise RuntimeError("torch_reference.py failed")
    wall = time.time() - launched
    result = json.loads(out.read_text())
    spawn = result["startup_s"]
    return {"wall": wall, "cpu": cpu_seconds() - cpu, "first_round": ranks_up, "phases": [
        ("python, import torch, test set, initial test", ranks_up - spawn),
        ("ranks spawned to ready (import torch, data load, DDP)", spawn)]}


def c_trainer_job(build, work, tag, ranks):
    plugin = build / "tests/e2e/fixtures/libflare_c_counter_trainer.so"
    job = work / f"c_trainer-{tag}-{ranks}.toml"
    job.write_text(f"""[job]
name = "c-trainer"
num_rounds = 1
[clients]
count = 2
devices = {ranks}
[data]
dir = "."
[trainer]
path = "{plugin}"
[aggregator]
plugin = "fedavg"
[server]
key_metric = "val_acc"
""")
    return [str(job)]


def spread(values, fmt="{:.2f}"):
    return (fmt + " [" + fmt + "-" + fmt + "]").format(statistics.median(values), min(values),
                                                       max(values))


def print_phases(title, columns):
    """columns: {label: runs}, side by side."""
    runs = next(iter(columns.values()))
    print(f"\n{title} (median [min-max] over {len(runs)} runs, seconds)")
    print(f"  {'':46}" + "".join(f"{label:>22}" for label in columns))
    for i, (name, _) in enumerate(runs[0]["phases"]):
        print(f"  {name:46}" + "".join(f"{spread([r['phases'][i][1] for r in rs]):>22}"
                                       for rs in columns.values()))
    print(f"  {'= launch to the first round training':46}" +
          "".join(f"{spread([r['first_round'] for r in rs]):>22}" for rs in columns.values()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train", type=int, default=10000, help="generated training images")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--build", default=str(ROOT / "build"), help="the build to measure")
    ap.add_argument("--baseline", default="", help="another build (e.g. of an earlier commit), "
                    "run interleaved with --build and shown beside it")
    ap.add_argument("--reference", default=os.environ.get(
        "FLARE_TORCH_REFERENCE", str(ROOT.parent / "shared/bench/torch_reference.py")))
    args = ap.parse_args()
    builds = {"flare-run": Path(args.build)}
    if args.baseline:
        builds = {"baseline": Path(args.baseline), "flare-run": Path(args.build)}

    with tempfile.TemporaryDirectory(prefix="flare-bench-startup.") as tmp:
        work = Path(tmp)
        data = work / "data"
        subprocess.run([str(builds["flare-run"] / "bin/flare-make-cifar"), "--out", str(data),
                        "--train", str(args.train), "--test", "2000", "--seed", "0"],
                       stdout=subprocess.DEVNULL, check=True)
        seed_job = [str(ROOT / "jobs/cifar10.toml"), "--num_rounds", str(args.rounds),
                    "--set", "clients.devices=1", "--set", f"data.dir={data}"]
        seed = {label: [] for label in builds}
        trivial = {ranks: {label: [] for label in builds} for ranks in (1, 2)}
        reference = []
        for i in range(args.repeats):
            # Alternate the order: the VM's speed drifts within seconds.
            order = [*builds, "reference"]
            if i % 2:
                order.reverse()
            for what in order:
                if what == "reference":
                    reference.append(run_reference(args.reference, data, args.rounds, work, i))
                else:
                    seed[what].append(run_flare(builds[what], seed_job, work, f"{what}-seed{i}"))
            for ranks, runs in trivial.items():
                for label, build in builds.items():
                    runs[label].append(run_flare(build, c_trainer_job(build, work, label, ranks),
                                                 work, f"{label}-c{ranks}-{i}"))
            print(f"run {i + 1}/{args.repeats}: " +
                  ", ".join(f"{label} {seed[label][-1]['wall']:.2f} s" for label in builds) +
                  f", reference {reference[-1]['wall']:.2f} s", file=sys.stderr, flush=True)

    threads = sorted({r["threads"] for runs in seed.values() for r in runs})
    print(f"seed job: 2 sites x 1 rank, {args.rounds} rounds, {args.train} generated images, "
          f"batch 4; intra-op threads per rank: flare-run {threads}, reference 1; "
          f"machine load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_phases("flare-run start-up, seed job (the site that registered last)", seed)
    for ranks, runs in trivial.items():
        print_phases(f"flare-run start-up, trivial C trainer, 2 sites x {ranks} rank(s)", runs)
    print_phases("torch_reference.py start-up", {"reference": reference})
    print(f"\nwhole run, launch to exit (median [min-max] over {args.repeats} runs)")
    for label, runs in seed.items():
        ratios = [r["wall"] / f["wall"] for f, r in zip(runs, reference)]
        cpu_ratios = [r["cpu"] / f["cpu"] for f, r in zip(runs, reference)]
        print(f"  {label + ', s':46}{spread([f['wall'] for f in runs]):>22}")
        print(f"  {'  its first round training to exit, s':46}"
              f"{spread([f['wall'] - f['first_round'] for f in runs]):>22}")
        print(f"  {'  reference / ' + label + ', run by run':46}{spread(ratios):>22}")
        print(f"  {'  CPU s, all its processes':46}{spread([f['cpu'] for f in runs]):>22}")
        print(f"  {'  reference / ' + label + ', CPU s':46}{spread(cpu_ratios):>22}")
    print(f"  {'torch_reference.py, s':46}{spread([r['wall'] for r in reference]):>22}")
    print(f"  {'  its first round to exit, s':46}"
          f"{spread([r['wall'] - r['first_round'] for r in reference]):>22}")
    print(f"  {'  CPU s, all its processes':46}{spread([r['cpu'] for r in reference]):>22}")


if __name__ == "__main__":
    main()
