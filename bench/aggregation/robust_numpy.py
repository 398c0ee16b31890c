#!/usr/bin/env python3
"""NumPy baselines for the robust aggregators (bench/aggregation/robust_run.sh).

CLIENTS float32 updates of PARAMS parameters, stacked (CLIENTS, PARAMS), each
rule timed as the peers compute it:
  median            np.median(stack, axis=0)                    (Flower's aggregate_median)
  trimmed mean      np.sort along axis 0, mean of the middle    (the sort-based version)
  trimmed mean      np.partition, mean of the middle            (Flower's _trim_mean, scipy)
  krum              Flower's _compute_distances (norm of every pairwise difference), scores
  krum, gram        |a|^2 + |b|^2 - 2 a.b from one BLAS product (a faster NumPy, less exact)
  multi-krum        Flower's Krum with num_clients_to_keep = n - f: the distances, the
                    weighted mean of the best (Flower's aggregate)
  bulyan            Flower's aggregate_bulyan: Krum over the models left, theta times
                    (distances recomputed each time, as Flower does), then per coordinate
                    the mean of the beta nearest the median (argpartition)
  memcpy            np.copyto of the stack
Prints one line per rule (median seconds of REPEATS, and GB/s over
(clients + 1) x 4 x params bytes, as flare-bench-aggregation counts), then a
JSON line. Uses the same f / beta as robust_run.sh passes the plugins.
"""
import argparse
import json
import time

import numpy as np


def median(stack):
    return np.median(stack, axis=0)


def trimmed_mean_sort(stack, beta):
    n = stack.shape[0]
    cut = int(beta * n)
    return np.mean(np.sort(stack, axis=0)[cut : n - cut], axis=0)


def trimmed_mean_partition(stack, beta):
    n = stack.shape[0]
    lower = int(beta * n)
    upper = n - lower
    part = np.partition(stack, (lower, upper - 1), axis=0)
    return np.mean(part[lower:upper], axis=0)


def krum_scores(distances, f):
    n = distances.shape[0]
    closest = max(1, n - f - 2)
    return [np.sum(np.sort(row)[1 : closest + 1]) for row in distances]


def krum_flower(stack, f):
    n = stack.shape[0]
    distances = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            distances[i, j] = np.linalg.norm(stack[i] - stack[j]) ** 2
    return stack[int(np.argmin(krum_scores(distances, f)))].copy()


def krum_best(stack, f, keep):
    n = stack.shape[0]
    distances = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            distances[i, j] = np.linalg.norm(stack[i] - stack[j]) ** 2
    return list(np.argsort(krum_scores(distances, f))[:keep])


def multi_krum_flower(stack, f, weights):
    best = krum_best(stack, f, stack.shape[0] - f)
    w = weights[best] / weights[best].sum()
    return np.tensordot(w.astype(np.float32), stack[best], axes=1)


def bulyan_flower(stack, f):
    left = list(range(stack.shape[0]))
    chosen = []
    theta = stack.shape[0] - 2 * f
    while len(chosen) < theta:
        pick = left[krum_best(stack[left], f, 1)[0]]
        chosen.append(pick)
        left.remove(pick)
    selected = stack[chosen]
    median_vector = np.median(selected, axis=0)
    beta = theta - 2 * f
    distance = np.abs(selected - median_vector)
    nearest = np.argpartition(distance, kth=beta - 1, axis=0)[:beta]
    return np.mean(np.take_along_axis(selected, nearest, axis=0), axis=0)


def krum_gram(stack, f):
    gram = stack @ stack.T  # float32 BLAS
    norms = np.diag(gram).astype(np.float64)
    distances = np.maximum(norms[:, None] + norms[None, :] - 2.0 * gram, 0.0)
    return stack[int(np.argmin(krum_scores(distances, f)))].copy()


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--params", type=int, default=25_000_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--beta", type=float, default=0.2)
    p.add_argument("--f", type=int, default=1)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    stack = rng.standard_normal((a.clients, a.params), dtype=np.float32)
    target = np.empty_like(stack)
    weights = 100.0 + np.arange(a.clients)  # as flare-bench-aggregation's num_samples
    nbytes = (a.clients + 1) * 4 * a.params
    rules = {
        "median": lambda: median(stack),
        "trimmed mean, sort": lambda: trimmed_mean_sort(stack, a.beta),
        "trimmed mean, partition": lambda: trimmed_mean_partition(stack, a.beta),
        "krum, Flower's distances": lambda: krum_flower(stack, a.f),
        "krum, gram matrix": lambda: krum_gram(stack, a.f),
        "multi-krum, Flower's": lambda: multi_krum_flower(stack, a.f, weights),
        "bulyan, Flower's": lambda: bulyan_flower(stack, a.f),
        "memcpy (np.copyto)": lambda: np.copyto(target, stack),
    }
    results = {}
    for name, fn in rules.items():
        seconds = timed(fn, a.repeats)
        results[name] = {"seconds": seconds, "gbps": nbytes / seconds / 1e9}
        print(f"  {name:<26} {seconds * 1e3:9.1f} ms  {nbytes / seconds / 1e9:7.2f} GB/s")
    print(json.dumps({"clients": a.clients, "params": a.params, "numpy": np.__version__,
                      "rules": results}))


if __name__ == "__main__":
    main()
