"""The torchvision side of bench/augment/fidelity.ts: the datasheet's geometric transforms with
given parameters, per sample on PIL images, with torchvision's own interpolation per transform
(nearest for RandomRotation and RandomAffine, bilinear for RandomResizedCrop: their defaults).

Usage, with Debian's python3 (python3-torchvision):
    python3 fidelity.py IMAGES_FILE PARAMS_JSON OUT_FILE COUNT SIZE
"""
import json
import sys

import numpy as np
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F


def main() -> None:
    images_file, params_file, out_file = sys.argv[1:4]
    count, size = map(int, sys.argv[4:6])
    images = np.fromfile(images_file, dtype=np.uint8).reshape(count, size, size, 3)
    with open(params_file) as f:
        params = json.load(f)
    out = np.empty_like(images)
    for k, (array, p) in enumerate(zip(images, params)):
        img = Image.fromarray(array)
        if p["flip"]:
            img = F.hflip(img)
        img = F.rotate(img, p["angle"], InterpolationMode.NEAREST, fill=[0, 0, 0])
        crop = p["crop"]
        img = F.resized_crop(img, crop["top"], crop["left"], crop["height"], crop["width"], [size, size],
                             InterpolationMode.BILINEAR)
        img = F.affine(img, angle=0.0, translate=list(p["translate"]), scale=p["scale"], shear=[0.0, 0.0],
                       interpolation=InterpolationMode.NEAREST, fill=[0, 0, 0])
        out[k] = np.asarray(img)
    out.tofile(out_file)


if __name__ == "__main__":
    main()
