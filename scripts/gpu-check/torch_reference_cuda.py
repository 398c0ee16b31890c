#!/usr/bin/env python3
"""The seed job in plain PyTorch on one GPU, for scripts/gpu-check/run.sh: the
same facts as the project's CPU reference (the workplace's
bench/torch_reference.py): LitNet (the PyTorch CIFAR-10 tutorial CNN), CIFAR-10
binary-format data normalised (x/255-0.5)/0.5, the training records shuffled
with the seed and split into n_clients near-equal shards, each 80/20 into train
and validation, SGD(lr, momentum) re-created every round, FedAvg weighted by
training samples. Every client is a process with a one-rank DDP group on
cuda:0 through NCCL (the GPU analogue of the CPU reference's Gloo group), all
clients training at the same time, as flare-run's sites do.

    python3 torch_reference_cuda.py --data DIR [--n_clients 2] [--num_rounds 4]

Prints one JSON line: images/s per round (images trained by all clients / the
slowest client's training time), seconds per round, start-up, test accuracy.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

REC = 3073


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def read_cifar(paths):
    raw = np.concatenate([np.fromfile(p, dtype=np.uint8).reshape(-1, REC) for p in paths])
    x = (raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0 - 0.5) / 0.5
    return torch.from_numpy(x), torch.from_numpy(raw[:, 0].astype(np.int64))


def client_split(n_total, n_clients, client, seed, val_frac):
    perm = np.random.default_rng(seed).permutation(n_total)
    shard = np.array_split(perm, n_clients)[client]
    n_tr = int(round(len(shard) * (1.0 - val_frac)))
    return shard[:n_tr], shard[n_tr:]


def client(client_id, a, port, to_q, from_q):
    t0 = time.perf_counter()
    torch.set_num_threads(a.threads)
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    x, y = read_cifar([os.path.join(a.data, f"data_batch_{i}.bin") for i in range(1, 6)])
    tr, va = client_split(len(y), a.n_clients, client_id, a.seed, 0.2)
    xtr, ytr = x[tr].to(device), y[tr].to(device)
    xva, yva = x[va].to(device), y[va].to(device)
    net = Net().to(device)
    model = DDP(net, device_ids=[0])
    from_q.put(("ready", client_id, time.perf_counter() - t0))
    gen = torch.Generator().manual_seed(a.seed + client_id)
    while True:
        cmd = to_q.get()
        if cmd is None:
            break
        with torch.no_grad():
            for k, t in net.state_dict().items():
                t.copy_(torch.from_numpy(cmd[k]))
            val_acc = sum((net(xva[i:i + 1000]).argmax(1) == yva[i:i + 1000]).sum().item()
                          for i in range(0, len(yva), 1000)) / max(len(yva), 1)
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=a.momentum)
        torch.cuda.synchronize()
        tt0 = time.perf_counter()
        order = torch.randperm(len(ytr), generator=gen).to(device)
        for i in range(0, len(ytr), a.batch_size):
            idx = order[i:i + a.batch_size]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        torch.cuda.synchronize()
        train_s = time.perf_counter() - tt0
        weights = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
        from_q.put(("result", client_id, weights, len(ytr), train_s, val_acc))
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--n_clients", type=int, default=2)
    ap.add_argument("--num_rounds", type=int, default=4)
    ap.add_argument("--batch_size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t_start = time.perf_counter()
    ctx = mp.get_context("spawn")
    from_q = ctx.Queue()
    queues, procs = [], []
    for c in range(a.n_clients):
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        q = ctx.Queue()
        p = ctx.Process(target=client, args=(c, a, port, q, from_q), daemon=True)
        p.start()
        queues.append(q)
        procs.append(p)
    for _ in range(a.n_clients):
        assert from_q.get(timeout=600)[0] == "ready"
    startup_s = time.perf_counter() - t_start
    torch.manual_seed(a.seed)
    global_w = {k: v.numpy().copy() for k, v in Net().state_dict().items()}
    xte, yte = read_cifar([os.path.join(a.data, "test_batch.bin")])
    ips, wall, acc = [], [], []
    for _ in range(a.num_rounds):
        r0 = time.perf_counter()
        for q in queues:
            q.put(global_w)
        results = [from_q.get(timeout=600) for _ in range(a.n_clients)]
        total = sum(r[3] for r in results)
        global_w = {k: sum(r[2][k] * r[3] for r in results) / total for k in global_w}
        ips.append(total / max(r[4] for r in results))
        net = Net()
        net.load_state_dict({k: torch.from_numpy(v) for k, v in global_w.items()})
        with torch.no_grad():
            acc.append((net(xte).argmax(1) == yte).float().mean().item())
        wall.append(time.perf_counter() - r0)
    for q in queues:
        q.put(None)
    for p in procs:
        p.join(timeout=60)
    print(json.dumps({"images_per_s_per_round": ips, "wall_s_per_round": wall,
                      "startup_s": startup_s, "whole_run_s": time.perf_counter() - t_start,
                      "test_acc_per_round": acc, "device": torch.cuda.get_device_name(0)}))


if __name__ == "__main__":
    main()
