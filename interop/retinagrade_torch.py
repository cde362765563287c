"""retinagrade's architectures in PyTorch, loading a run's best.safetensors as it is.

Not for clinical use. Not shipped with the npm package: a reference for people who use PyTorch,
and the check (test/interop/pytorch.test.ts) that the saved names and values mean what they say.

    python3 interop/retinagrade_torch.py RUN_DIR INPUT.f32 N OUTPUT.f32

reads N images as float32 NCHW in [-1, 1] at the model's input size (raw little-endian bytes),
and writes their class probabilities (N x grades, float32), ensembles averaged.
"""

import json
import struct
import sys

import numpy as np
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """(metadata, {name: tensor}) of a safetensors file."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        start, end = entry["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return metadata, tensors


class ConvBnRelu(nn.Sequential):
    def __init__(self, cin, cout, kernel=3, stride=1, padding=None):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 if padding is None else padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()


class CompactCnn(nn.Module):
    """Three stages of two 3x3 conv-bn-relu, a 2x2 max-pool between stages, pooling, dropout, fc."""

    def __init__(self, config):
        super().__init__()
        w = config.get("width", 32)
        cin = config.get("inChannels", 3)
        for i, width in enumerate([w, 2 * w, 4 * w]):
            stride = config.get("stemStride", 1) if i == 0 else 1
            setattr(self, f"stage{i + 1}", nn.Sequential(ConvBnRelu(cin, width, stride=stride), ConvBnRelu(width, width)))
            cin = width
        self.fc = nn.Linear(cin, config.get("outputs", config["numClasses"]))

    def forward(self, x):
        x = nn.functional.max_pool2d(self.stage1(x), 2)
        x = nn.functional.max_pool2d(self.stage2(x), 2)
        x = self.stage3(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class ResNet(nn.Module):
    """torchvision's ResNet blocks; MedMNIST's 3x3 stride-1 stem without max-pool at <= 32 px."""

    def __init__(self, block, depths, config):
        super().__init__()
        w = config.get("width", 64)
        small = config["inputSize"] <= 32
        cin = config.get("inChannels", 3)
        self.stem = ConvBnRelu(cin, w) if small else ConvBnRelu(cin, w, kernel=7, stride=2, padding=3)
        self.stem_pool = nn.Identity() if small else nn.MaxPool2d(3, 2, 1)
        inplanes = w
        for i, depth in enumerate(depths):
            planes, blocks = w * 2**i, []
            for b in range(depth):
                stride = 2 if b == 0 and i > 0 else 1
                downsample = None
                if stride != 1 or inplanes != planes * block.expansion:
                    downsample = nn.Sequential(
                        nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                blocks.append(block(inplanes, planes, stride, downsample))
                inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(inplanes, config.get("outputs", config["numClasses"]))

    def forward(self, x):
        x = self.stem_pool(self.stem(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def create_model(config):
    if config["name"] == "cnn":
        return CompactCnn(config)
    if config["name"] == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], config)
    if config["name"] == "resnet50":
        return ResNet(Bottleneck, [3, 4, 6, 3], config)
    raise ValueError(f"unknown model {config['name']!r}")


def probabilities(outputs, objective):
    """Class probabilities from a model's outputs, as the objective it was trained with defines them."""
    if objective in ("ce", "focal"):
        return outputs.softmax(1)
    if objective == "ordinal":  # cumulative P(grade > k), made non-increasing in k
        exceed = torch.cummin(outputs.sigmoid(), 1).values
        n = outputs.shape[0]
        cumulative = torch.cat([torch.ones(n, 1), exceed, torch.zeros(n, 1)], 1)
        return cumulative[:, :-1] - cumulative[:, 1:]
    raise ValueError(f"unknown objective {objective!r}")


class RunModel(nn.Module):
    """A run's model (an ensemble: its members' mean probability); forward gives probabilities."""

    def __init__(self, run_dir):
        super().__init__()
        metadata, state = read_safetensors(f"{run_dir}/best.safetensors")
        self.config = json.loads(metadata["model"])
        self.objective = metadata["objective"]
        members = int(metadata.get("ensemble", "1"))
        self.members = nn.ModuleList(create_model(self.config) for _ in range(members))
        for k, member in enumerate(self.members):
            prefix = f"member{k}." if members > 1 else ""
            member.load_state_dict({name[len(prefix) :]: t for name, t in state.items() if name.startswith(prefix)})
        self.eval()

    def forward(self, x):
        return torch.stack([probabilities(m(x), self.objective) for m in self.members]).mean(0)


def main(run_dir, input_file, count, output_file):
    model = RunModel(run_dir)
    size = model.config["inputSize"]
    x = torch.from_numpy(np.fromfile(input_file, dtype="<f4").reshape(int(count), 3, size, size))
    with torch.no_grad():
        model(x).numpy().astype("<f4").tofile(output_file)


if __name__ == "__main__":
    main(*sys.argv[1:])
