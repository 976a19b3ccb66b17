"""NAS-Bench-Macro's networks, exactly: module structure and parameter counts follow the
benchmark's, so that its accuracies apply to the networks built here.

Stem 3×3 conv 3→32 (stride 1) + BN + ReLU; three stages (64, 128, 256 channels) whose first layer
has stride 2; each layer an identity or a MobileNetV2 inverted residual (1×1 expand + BN + ReLU6,
depthwise k×k + BN + ReLU6, 1×1 project + BN; no biases; residual when stride 1 and the channels
are unchanged), an identity at a stage's first layer being a 1×1 stride-2 conv + BN; head 1×1 conv
256→1280 + BN + ReLU, global average pooling, linear classifier.
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nbmacro import STAGES

STEM = 32
WIDTHS = (64, 128, 256)
HEAD = 1280
OPS = {"1": (3, 3), "2": (5, 6)}  # digit → (kernel, expansion)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand, depthwise, project; the input added when shapes allow."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.conv = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


def layer(digit: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """The layer ``digit`` names; an identity that must change the shape is a 1×1 conv + BN."""
    if digit in OPS:
        return InvertedResidual(c_in, c_out, stride, *OPS[digit])
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class MacroNetwork(nn.Module):
    def __init__(self, config: str, num_classes: int = 10, channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(channels, STEM, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM), nn.ReLU(inplace=True)
        )
        layers, c_in, start = [], STEM, 0
        for count, width in zip(STAGES, WIDTHS, strict=True):
            for i, digit in enumerate(config[start : start + count]):
                layers.append(layer(digit, c_in, width, 2 if i == 0 else 1))
                c_in = width
            start += count
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(c_in, HEAD, 1, bias=False), nn.BatchNorm2d(HEAD), nn.ReLU(inplace=True)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(HEAD, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.layers(self.stem(x)))
        return self.classifier(self.pool(x).flatten(1))
