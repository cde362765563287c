"""The PyTorch peer of bench/distributed/ours.ts: one rank of DistributedDataParallel (gloo) on
ResNet-18 (bench/engine/peer.py's, layer for layer ours), synthetic N(0,1) images, each rank
taking every world_size-th index of each global batch (as DistributedSampler and ours split),
cross-entropy, AdamW. DDP as users get it: default 25 MB buckets, allreduce overlapped with the
backward pass. Alone (no RANK in the environment) it is the plain one-process step. Each rank prints
one JSON line.

    RANK=r WORLD_SIZE=n MASTER_ADDR=127.0.0.1 MASTER_PORT=p \\
    python3 bench/distributed/peer.py --size 28 [--n 1080] [--batch 128] [--warmup 2] [--threads 1]

After the epoch it times the allreduce alone of one flat buffer of the model's parameter count,
as ours does.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'engine'))
from peer import ResNet18, peak_rss_mib  # noqa: E402


def time_allreduce(numel, reps):
    buffer = torch.ones(numel)
    dist.all_reduce(buffer)
    seconds = []
    for _ in range(reps):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(buffer)
        seconds.append(time.perf_counter() - t0)
    return seconds


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--size', type=int, default=28)
    p.add_argument('--n', type=int, default=1080)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    distributed = int(os.environ.get('WORLD_SIZE', '1')) > 1
    if distributed:
        dist.init_process_group('gloo')  # env://: rank 0 hosts the TCPStore at MASTER_ADDR:MASTER_PORT
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1

    data = torch.Generator().manual_seed(a.seed + 1)
    train_x = torch.randn(a.n, 3, a.size, a.size, generator=data)
    train_y = torch.randint(0, 5, (a.n,), generator=data)
    torch.manual_seed(a.seed)
    model = ResNet18(a.size)
    # DDP broadcasts rank 0's weights at construction, as ours starts every rank from rank 0's.
    trained = DistributedDataParallel(model) if distributed else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    trained.train()

    def step(global_batch):
        index = global_batch[rank::world]
        loss = F.cross_entropy(trained(train_x[index]), train_y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # with DDP: returns once every bucket's allreduce has completed
        optimizer.step()
        return loss.item()

    warm = torch.randperm(a.n, generator=torch.Generator().manual_seed(a.seed + 2))
    for s in range(a.warmup):
        step(warm[s * a.batch:(s + 1) * a.batch])

    if distributed:
        dist.barrier()
    c0 = time.process_time()
    t0 = time.perf_counter()
    order = torch.randperm(a.n, generator=torch.Generator().manual_seed(a.seed + 3))
    steps = (a.n + a.batch - 1) // a.batch
    loss_sum = 0.0
    for s in range(steps):
        global_batch = order[s * a.batch:(s + 1) * a.batch]
        if len(global_batch) // world < 2:
            continue
        loss_sum += step(global_batch) * len(global_batch)
    epoch_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    parameters = sum(q.numel() for q in model.parameters())
    alone = time_allreduce(parameters, 5) if distributed else []

    print(json.dumps({
        'side': 'peer',
        'rank': rank,
        'engine': f'PyTorch {torch.__version__} DistributedDataParallel (gloo), python {sys.version.split()[0]}',
        'size': a.size,
        'n': a.n,
        'batchSize': a.batch,
        'worldSize': world,
        'steps': steps,
        'threads': torch.get_num_threads(),
        'parameters': parameters,
        'epochSeconds': epoch_seconds,
        'allreduceAloneSeconds': statistics.median(alone) if alone else 0,
        'cpuSeconds': cpu_seconds,
        'meanLoss': loss_sum / a.n,
        'peakRssMiB': peak_rss_mib(),
    }), flush=True)
    if distributed:
        dist.destroy_process_group()


if __name__ == '__main__':
    main()
