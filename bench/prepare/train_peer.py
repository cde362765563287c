"""The PyTorch peer of bench/prepare/train-ours.ts: a bounded number of ResNet-18 training steps
reading the same prepared dataset's .npy arrays as a PyTorch user would: numpy memory maps, a
Dataset whose items are PIL images of the rows with torchvision's per-sample transforms at the
default recipe's strengths, DataLoader(batch, shuffle, num_workers 0), cross-entropy, AdamW
(lr 1e-3, weight decay 1e-4). Prints one JSON line.

    python3 bench/prepare/train_peer.py --data DIR --size 224 [--batch 32] [--steps 4] [--warmup 1]
        [--threads 2] [--seed 0]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'engine'))
from peer import ResNet18, peak_rss_mib  # noqa: E402  (bench/engine/peer.py: the same architecture)


class NpyRows(Dataset):
    """Rows of a memory-mapped N x S x S x 3 uint8 array, each a PIL image through `transform`."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(np.asarray(self.images[i]))), int(self.labels[i])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data', required=True)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--steps', type=int, default=4)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    images = np.load(os.path.join(a.data, 'train_images.npy'), mmap_mode='r')
    labels = np.load(os.path.join(a.data, 'train_labels.npy'))
    if images.shape[1] != a.size:
        raise SystemExit(f'{a.data} is stored at {images.shape[1]} px, not {a.size}')
    rows = sum(len(np.load(os.path.join(a.data, f'{s}_labels.npy'))) for s in ('train', 'val', 'test'))
    # The default recipe's five transforms (src/data/augment/config.ts AugmentSchema defaults).
    transform = transforms.Compose([
        transforms.RandomHorizontalFlip(0.5),
        transforms.RandomRotation(45),
        transforms.RandomResizedCrop(a.size, scale=(0.85, 1.0), ratio=(0.9, 1 / 0.9)),
        transforms.ColorJitter(brightness=0.2, contrast=0.2),
        transforms.RandomAffine(0, translate=(0.05, 0.05), scale=(0.95, 1.05)),
        transforms.ToTensor(),
        transforms.Normalize([0.5] * 3, [0.5] * 3),
    ])
    loader = DataLoader(NpyRows(images, labels, transform), batch_size=a.batch, shuffle=True, num_workers=0)
    model = ResNet18(a.size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    model.train()

    batches = iter(loader)
    data_seconds = 0.0

    def step():
        nonlocal data_seconds
        d0 = time.perf_counter()
        x, y = next(batches)
        data_seconds += time.perf_counter() - d0
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    data_seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    seconds = time.perf_counter() - t0
    print(json.dumps({
        'side': 'peer',
        'rows': rows,
        'size': a.size,
        'batchSize': a.batch,
        'steps': a.steps,
        'threads': torch.get_num_threads(),
        'seconds': seconds,
        'dataSeconds': data_seconds,
        'imagesPerSecond': a.steps * a.batch / seconds,
        'peakRssMiB': peak_rss_mib(),
    }), flush=True)


if __name__ == '__main__':
    main()
