"""The Python peer of `retinagrade prepare`: PIL decodes each photograph (EXIF orientation, RGB),
finds the retina disc as src/data/fundus.ts does (max-channel brightness on a copy at most 256 px,
threshold between the 2nd and 99th percentiles, largest 4-connected bright region; the centre of
a disc clipped by an edge is not corrected, which the benchmark's whole discs never need), crops
the square around it (black beyond the image), resizes it bilinearly to SIZE and writes the rows
to a .npy through numpy's memmap. One process per core (multiprocessing.Pool, results in order).
Prints one JSON line: photographs, seconds, photographs per second."""
import argparse
import json
import os
import time
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage

ANALYSIS_SIZE = 256
DISC_THRESHOLD = 0.15
MIN_CONTRAST = 40


def find_disc(image):
    scale = min(1.0, ANALYSIS_SIZE / max(image.width, image.height))
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    small = np.asarray(image.resize((w, h), Image.BILINEAR))
    brightness = small.max(axis=2)
    low, high = np.percentile(brightness, 2), np.percentile(brightness, 99)
    if high - low < MIN_CONTRAST:
        return None
    bright = brightness > low + DISC_THRESHOLD * (high - low)
    edge = np.concatenate([bright[0], bright[-1], bright[:, 0], bright[:, -1]])
    if (~edge).sum() < w + h:
        return None
    labels, count = ndimage.label(bright)
    if count == 0:
        return None
    areas = np.bincount(labels.ravel())[1:]
    region = labels == (areas.argmax() + 1)
    ys, xs = np.nonzero(region)
    radius = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / 2
    fill = areas.max() / (np.pi * radius * radius)
    if areas.max() < 0.05 * w * h or fill < 0.55 or fill > 1.1:
        return None
    return (xs.min() + xs.max() + 1) / 2 / scale, (ys.min() + ys.max() + 1) / 2 / scale, radius / scale


def prepare(path, size):
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    disc = find_disc(image)
    if disc is None:
        side = min(image.width, image.height)
        left, top = (image.width - side) // 2, (image.height - side) // 2
    else:
        cx, cy, radius = disc
        side = max(1, round(2 * radius))
        left, top = round(cx - side / 2), round(cy - side / 2)
    # crop() pads with black where the box runs past the image, as ours does.
    square = image.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((size, size), Image.BILINEAR), dtype=np.uint8)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    started = time.perf_counter()
    files = sorted(
        os.path.join(root, f) for root, _, names in os.walk(args.src) for f in names if f.lower().endswith((".jpg", ".jpeg", ".png"))
    )
    rows = np.lib.format.open_memmap(args.out, mode="w+", dtype=np.uint8, shape=(len(files), args.size, args.size, 3))
    with Pool(args.workers) as pool:
        for i, row in enumerate(pool.imap(_prepare_at_size, [(f, args.size) for f in files], chunksize=4)):
            rows[i] = row
    rows.flush()
    seconds = time.perf_counter() - started
    print(json.dumps({"photos": len(files), "seconds": seconds, "per_second": len(files) / seconds}))


def _prepare_at_size(job):
    return prepare(*job)


if __name__ == "__main__":
    main()
