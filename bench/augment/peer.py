"""The PyTorch peer for bench/augment/run.ts: torchvision's per-sample PIL pipeline with the
datasheet's five transforms, from uint8 HWC arrays to a normalized float batch (what a
DataLoader with these transforms hands to the model). Prints one JSON line.

Usage, with Debian's python3 (python3-torch, python3-torchvision):
    python3 peer.py IMAGES_FILE COUNT SIZE BATCH THREADS
"""
import json
import sys
import time

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T


def main() -> None:
    path, count, size, batch, threads = sys.argv[1], *map(int, sys.argv[2:6])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    images = np.fromfile(path, dtype=np.uint8).reshape(count, size, size, 3)
    pipeline = T.Compose([
        T.RandomHorizontalFlip(0.5),
        T.RandomRotation(45),
        T.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3)),
        T.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.5, hue=0.1),
        T.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(0.8, 1.2)),
        T.ToTensor(),
        T.Normalize([0.5] * 3, [0.5] * 3),
    ])

    def run(first: int, last: int) -> None:
        for start in range(first, last, batch):
            torch.stack([pipeline(Image.fromarray(a)) for a in images[start:min(start + batch, last)]])

    run(0, min(batch, count))  # warm-up
    began = time.perf_counter()
    run(0, count)
    seconds = time.perf_counter() - began
    print(json.dumps({"images": count, "seconds": seconds, "imagesPerSecond": count / seconds}))


if __name__ == "__main__":
    main()
