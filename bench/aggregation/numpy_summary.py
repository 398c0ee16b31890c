#!/usr/bin/env python3
"""Prints agg_numpy.py's last JSON line (stdin) as one line per variant."""
import json
import sys

r = json.loads(sys.stdin.read().strip().splitlines()[-1])
for name, v in r["aggregation"]["variants"].items():
    if isinstance(v, dict) and "gbps_median" in v:
        print(f"  {name:<22} {v['gbps_median']:8.2f} GB/s median, {v['gbps_best']:.2f} best")
for name, v in (r.get("memory_bandwidth") or {}).items():
    if isinstance(v, dict) and "gbps_median" in v:
        print(f"  bandwidth {name:<12} {v['gbps_median']:8.2f} GB/s median (1 thread)")
print("  cpu steal during the numpy run:", r["env"]["cpu_steal_frac_during_run"])
