#!/usr/bin/env python3
"""Server optimizers the way Flower computes them, in NumPy: the weighted mean
of the clients' models by flwr's aggregate(), then FedAvgM, FedAdam, FedYogi
or FedAdagrad's list comprehensions from flwr.server.strategy (each state
kept across repetitions, as across rounds). Timed: the mean and the step.
And central DP as Flower's DifferentialPrivacyServerSideFixedClipping does it
(flwr.common.differential_privacy): each client's update clipped in NumPy,
aggregate(), np.random.normal noise added (clipping_norm 1, multiplier 1).
And SCAFFOLD's server step as NVFlare's Scaffold workflow computes it.

    /usr/bin/python3 fedopt_numpy.py [--clients 8] [--params 25000000] [--reps 5]

Same model as agg_bench.cpp (20 float32 tensors growing like a CNN's weight
and bias pairs), random values. GB/s counts (clients + 1) x 4 x params bytes,
as flare-bench-aggregation does. Prints a line per optimizer and a JSON line.
"""
import argparse
import json
import os
import time
from functools import reduce

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402


def layer_sizes(params):
    """agg_bench.cpp's layer_sizes: 10 (weight, bias) pairs, growing."""
    sizes, used = [], 0
    for k in range(1, 11):
        bias = 64 * k
        weight = params * k // 55 - bias if k < 10 else params - used - bias
        sizes += [weight, bias]
        used += weight + bias
    return sizes


def aggregate(results):
    """flwr.server.strategy.aggregate.aggregate."""
    num_examples_total = sum(num_examples for (_, num_examples) in results)
    weighted_weights = [[layer * num_examples for layer in weights] for weights, num_examples in results]
    return [reduce(np.add, layer_updates) / num_examples_total for layer_updates in zip(*weighted_weights)]


class FedAvgM:
    """flwr FedAvgM.aggregate_fit's server step (server_opt)."""

    def __init__(self, server_learning_rate=1.0, server_momentum=0.9):
        self.lr, self.momentum, self.momentum_vector = server_learning_rate, server_momentum, None

    def step(self, current, fedavg_result):
        pseudo_gradient = [x - y for x, y in zip(current, fedavg_result)]
        if self.momentum_vector is None:
            self.momentum_vector = pseudo_gradient
        else:
            self.momentum_vector = [self.momentum * x + y for x, y in zip(self.momentum_vector, pseudo_gradient)]
        return [x - self.lr * y for x, y in zip(current, self.momentum_vector)]


class FedOpt:
    """flwr FedAdam / FedYogi / FedAdagrad.aggregate_fit after the mean."""

    def __init__(self, rule, eta, beta_1, beta_2, tau):
        self.rule, self.eta, self.beta_1, self.beta_2, self.tau = rule, eta, beta_1, beta_2, tau
        self.m_t = self.v_t = None

    def step(self, current, fedavg_weights_aggregate):
        delta_t = [x - y for x, y in zip(fedavg_weights_aggregate, current)]
        if not self.m_t:
            self.m_t = [np.zeros_like(x) for x in delta_t]
        self.m_t = [np.multiply(self.beta_1, x) + (1 - self.beta_1) * y for x, y in zip(self.m_t, delta_t)]
        if not self.v_t:
            self.v_t = [np.zeros_like(x) for x in delta_t]
        if self.rule == "adam":
            self.v_t = [self.beta_2 * x + (1 - self.beta_2) * np.multiply(y, y) for x, y in zip(self.v_t, delta_t)]
        elif self.rule == "yogi":
            self.v_t = [x - (1.0 - self.beta_2) * np.multiply(y, y) * np.sign(x - np.multiply(y, y))
                        for x, y in zip(self.v_t, delta_t)]
        else:
            self.v_t = [x + np.multiply(y, y) for x, y in zip(self.v_t, delta_t)]
        return [x + self.eta * y / (np.sqrt(z) + self.tau) for x, y, z in zip(current, self.m_t, self.v_t)]


def get_norm(input_arrays):
    """flwr.common.differential_privacy.get_norm."""
    array_norms = [np.linalg.norm(array.flat) for array in input_arrays]
    return float(np.sqrt(sum(norm**2 for norm in array_norms)))


class DpFixedClipping:
    """flwr DifferentialPrivacyServerSideFixedClipping.aggregate_fit around FedAvg."""

    def __init__(self, clipping_norm=1.0, noise_multiplier=1.0):
        self.clipping_norm, self.noise_multiplier = clipping_norm, noise_multiplier

    def round(self, current, results):
        clipped = []
        for params, n in results:
            update = [np.subtract(x, y) for (x, y) in zip(params, current)]  # compute_clip_model_update
            scaling = min(1, self.clipping_norm / get_norm(update))           # clip_inputs_inplace
            for u in update:
                u *= scaling
            clipped.append(([np.add(y, u) for y, u in zip(current, update)], n))
        aggregated = aggregate(clipped)
        std_dev = self.noise_multiplier * self.clipping_norm / len(results)  # add_gaussian_noise_to_params
        for x in aggregated:
            x += np.random.normal(0, std_dev, x.shape).astype(x.dtype)
        return aggregated


class NvflareScaffold:
    """NVFlare's Scaffold workflow's server step: the sites' model diffs and
    control-variate diffs averaged (uniform), x += lr * mean(dy), c += |S|/N *
    mean(dc) (lr 1, every site taking part). The tensors are weights and
    control variates alike here: the same arithmetic on each."""

    def round(self, current, results):
        diffs = [[y - x for y, x in zip(params, current)] for params, _ in results]
        mean = [reduce(np.add, d) / len(results) for d in zip(*diffs)]
        return [x + 1.0 * m for x, m in zip(current, mean)]


OPTIMIZERS = {
    "flower_fedavgm": lambda: FedAvgM(),
    "flower_fedadagrad": lambda: FedOpt("adagrad", 0.1, 0.0, 0.0, 1e-9),
    "flower_fedadam": lambda: FedOpt("adam", 0.1, 0.9, 0.99, 1e-9),
    "flower_fedyogi": lambda: FedOpt("yogi", 0.01, 0.9, 0.99, 1e-3),
    "flower_dp_fixed_clipping": lambda: DpFixedClipping(),
    "nvflare_scaffold": lambda: NvflareScaffold(),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--params", type=int, default=25_000_000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    sizes = layer_sizes(args.params)
    clients = [[rng.standard_normal(n, dtype=np.float32) for n in sizes] for _ in range(args.clients)]
    results = [(c, 100 + k) for k, c in enumerate(clients)]
    current = [x * np.float32(0.5) for x in clients[0]]  # no client sits on it (a zero norm)
    nbytes = (args.clients + 1) * 4 * args.params
    out = {}
    for name, make in OPTIMIZERS.items():
        opt = make()
        if isinstance(opt, (DpFixedClipping, NvflareScaffold)):
            job = lambda: opt.round(current, results)  # noqa: E731
        else:
            job = lambda: opt.step(current, aggregate(results))  # noqa: E731
        job()  # warm-up: first-round allocations
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            job()
            times.append(time.perf_counter() - start)
        times.sort()
        median = times[len(times) // 2]
        out[name] = {"gbps_median": nbytes / median / 1e9, "gbps_best": nbytes / times[0] / 1e9}
        print(f"  {name:<22} {out[name]['gbps_median']:8.2f} GB/s median, {out[name]['gbps_best']:.2f} best")
    print(json.dumps({"clients": args.clients, "params": args.params, "reps": args.reps, "variants": out}))


if __name__ == "__main__":
    main()
