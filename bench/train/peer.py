"""The PyTorch peer of bench/train/ours.ts: one timed training epoch of ResNet-18 (or --arch cnn) the way users of
the official MedMNIST scripts run it: a Dataset of PIL images with the datasheet's torchvision
transforms applied per sample, DataLoader(batch 128, shuffle, num_workers 0), cross-entropy,
AdamW. Synthetic uint8 28x28 RGB images, upsampled once (PIL bilinear) when --size > 28.
Prints one JSON line.

    python3 bench/train/peer.py --size 28 [--arch resnet18|cnn] [--n 1080] [--batch 128] [--warmup 2]
        [--threads 2] [--seed 0]
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'engine'))
from peer import build, faulted_mib, peak_rss_mib  # noqa: E402  (bench/engine/peer.py: the same architectures)

SOURCE_SIZE = 28


class ImageDataset(Dataset):
    def __init__(self, images, labels, transform):
        self.images = [Image.fromarray(a) for a in images]
        self.labels = labels
        self.transform = transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--arch', choices=['resnet18', 'cnn'], default='resnet18')
    p.add_argument('--size', type=int, default=28)
    p.add_argument('--n', type=int, default=1080)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    rng = np.random.default_rng(a.seed + 1)
    images = rng.integers(0, 256, size=(a.n, SOURCE_SIZE, SOURCE_SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, size=a.n)
    t0 = time.perf_counter()
    if a.size != SOURCE_SIZE:
        images = np.stack([np.asarray(Image.fromarray(im).resize((a.size, a.size), Image.BILINEAR)) for im in images])
    transform = transforms.Compose([
        transforms.RandomHorizontalFlip(0.5),
        transforms.RandomRotation(45),
        transforms.RandomResizedCrop(a.size, scale=(0.6, 1.0)),
        transforms.ColorJitter(0.5, 0.5, 0.5, 0.1),
        transforms.RandomAffine(0, translate=(0.1, 0.1), scale=(0.8, 1.2)),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),
    ])
    dataset = ImageDataset(images, labels, transform)
    prep_seconds = time.perf_counter() - t0

    torch.manual_seed(a.seed)
    model = build(a.arch, a.size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loader = DataLoader(dataset, batch_size=a.batch, shuffle=True, num_workers=0)
    model.train()

    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    # Warm-up steps, not timed.
    it = iter(loader)
    for _ in range(a.warmup):
        x, y = next(it)
        step(x, y)
    del it

    # One timed epoch; data time is the time spent fetching (and augmenting) batches.
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    c0 = time.process_time()
    t0 = time.perf_counter()
    data_seconds = 0.0
    loss_sum = 0.0
    steps = 0
    it = iter(loader)
    while True:
        d0 = time.perf_counter()
        try:
            x, y = next(it)
        except StopIteration:
            break
        data_seconds += time.perf_counter() - d0
        loss_sum += step(x, y) * len(y)
        steps += 1
    epoch_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0

    print(json.dumps({
        'side': 'peer',
        'engine': f'PyTorch {torch.__version__}, python {sys.version.split()[0]}',
        'arch': a.arch,
        'size': a.size,
        'n': a.n,
        'batchSize': a.batch,
        'steps': steps,
        'threads': torch.get_num_threads(),
        'epochSeconds': epoch_seconds,
        'dataSeconds': data_seconds,
        'cpuSeconds': cpu_seconds,
        'prepSeconds': prep_seconds,
        'meanLoss': loss_sum / a.n,
        'peakRssMiB': peak_rss_mib(),
        'faultedMiB': faulted_mib(faults_before),
    }), flush=True)


if __name__ == '__main__':
    main()
