"""The PyTorch peer of bench/engine/ours.ts: the same models (written out in torch.nn, layer for
layer as src/nn/models.ts builds them), the same synthetic batch, Adam, cross-entropy; training
and inference throughput, then peak RSS. Prints one JSON line.

    python3 bench/engine/peer.py --model resnet18 --size 28 [--batch 128] [--warmup 2]
        [--steps 8] [--infer-warmup 1] [--infer-steps 8] [--threads 2] [--precision fp32|bf16]
        [--batch-range 16-64]

bf16: torch.cpu.amp.autocast(dtype=torch.bfloat16) around the forward pass, the loss on float32
logits (as ours: src/torch/precision.ts hands back float32), backward and Adam outside autocast.
--batch-range trains each step on a batch size drawn from that range, the same sizes as ours
(bench/common.ts batchSizes).
"""
import argparse
import json
import re
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class CompactCnn(nn.Sequential):
    """src/nn/models.ts CompactCnn: six 3x3 conv-BN-ReLU in three stages, GAP, linear."""

    def __init__(self, width=32, in_channels=3, num_classes=5):
        w = width
        super().__init__(
            *conv_bn_relu(in_channels, w), *conv_bn_relu(w, w), nn.MaxPool2d(2),
            *conv_bn_relu(w, 2 * w), *conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),
            *conv_bn_relu(2 * w, 4 * w), *conv_bn_relu(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, num_classes),
        )


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet18(nn.Module):
    """src/nn/models.ts ResNet with BasicBlock [2,2,2,2]: the MedMNIST 3x3 stride-1 stem without
    max-pool at input <= 32 px, torchvision's 7x7 stride-2 stem + 3x3/2 max-pool above."""

    def __init__(self, input_size, width=64, in_channels=3, num_classes=5):
        super().__init__()
        w = width
        if input_size <= 32:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, w, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
        stages = []
        cin = w
        for i, depth in enumerate([2, 2, 2, 2]):
            planes = w * 2 ** i
            blocks = []
            for b in range(depth):
                blocks.append(BasicBlock(cin, planes, 2 if b == 0 and i > 0 else 1))
                cin = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def build(name, size):
    return ResNet18(size) if name == 'resnet18' else CompactCnn(32)


def peak_rss_mib():
    try:
        with open('/proc/self/status') as f:
            m = re.search(r'VmHWM:\s+(\d+)\s+kB', f.read())
        return int(m.group(1)) / 1024 if m else float('nan')
    except OSError:
        return float('nan')


def batch_sizes(low, high, count, seed=1):
    """bench/common.ts batchSizes: xorshift32 from `seed`, uniform in low..high."""
    state = seed & 0xFFFFFFFF or 1
    sizes = []
    for _ in range(count):
        state ^= (state << 13) & 0xFFFFFFFF
        state ^= state >> 17
        state ^= (state << 5) & 0xFFFFFFFF
        sizes.append(low + state % (high - low + 1))
    return sizes


def faulted_mib(minor_faults_before):
    """MiB brought in by minor page faults (whole process) since the count given."""
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - minor_faults_before) * resource.getpagesize() / 2**20


def timed(fn):
    """Wall and CPU (user + system, all threads) seconds of fn()."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', choices=['resnet18', 'cnn'], default='resnet18')
    p.add_argument('--size', type=int, default=28)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--steps', type=int, default=8)
    p.add_argument('--infer-warmup', type=int, default=1)
    p.add_argument('--infer-steps', type=int, default=8)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--batch-range', default=None)
    a = p.parse_args()
    bf16 = a.precision == 'bf16'
    batch_range = [int(v) for v in a.batch_range.split('-')] if a.batch_range else None

    def forward(inputs):
        with torch.cpu.amp.autocast(enabled=bf16, dtype=torch.bfloat16):
            return model(inputs).float()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    model = build(a.model, a.size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    rows = max(a.batch, batch_range[1] if batch_range else 0)
    x = torch.randn(rows, 3, a.size, a.size, generator=g)
    y = torch.randint(0, 5, (rows,), generator=g)
    train_batches = batch_sizes(*batch_range, a.warmup + a.steps) if batch_range else [a.batch] * (a.warmup + a.steps)
    batch_iter = iter(train_batches)

    model.train()

    optimizer_seconds = []  # each training step's optimizer.step()

    def train_step():
        b = next(batch_iter)
        loss = F.cross_entropy(forward(x[:b]), y[:b])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t0 = time.perf_counter()
        optimizer.step()
        optimizer_seconds.append(time.perf_counter() - t0)
        train_step.last = loss.item()

    for _ in range(a.warmup):
        train_step()
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    train = [timed(train_step) for _ in range(a.steps)]
    train_memory = {'faultedMiB': faulted_mib(faults_before)}
    last_loss = train_step.last if a.steps else 0.0
    rss_after_train = peak_rss_mib()

    model.eval()

    def infer_step():
        with torch.no_grad():
            return forward(x[:a.batch]).sum().item()

    for _ in range(a.infer_warmup):
        infer_step()
    infer = [timed(infer_step) for _ in range(a.infer_steps)]

    def rate(runs, images):
        return images / sum(w for w, _ in runs) if runs else None

    result = {
        'side': 'peer',
        'engine': f'PyTorch {torch.__version__}, python {sys.version.split()[0]}',
        'model': a.model,
        'size': a.size,
        'precision': a.precision,
        'batch': a.batch,
        'threads': torch.get_num_threads(),
        'params': sum(p.numel() for p in model.parameters()),
        'batchRange': batch_range,
        'trainImgPerSec': rate(train, sum(train_batches[a.warmup:])),
        'inferImgPerSec': rate(infer, len(infer) * a.batch),
        'trainStepSeconds': [w for w, _ in train],
        'optimizerStepSeconds': optimizer_seconds[a.warmup:],
        'inferStepSeconds': [w for w, _ in infer],
        'trainCpuSeconds': sum(c for _, c in train),
        'inferCpuSeconds': sum(c for _, c in infer),
        'lastLoss': last_loss,
        'peakRssAfterTrainMiB': rss_after_train,
        'train': train_memory,
        'peakRssMiB': peak_rss_mib(),
    }
    print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
