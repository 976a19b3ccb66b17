"""The networks of the ``resnet`` space: CIFAR-style ResNets assembled from torchvision's
``BasicBlock`` and ``Bottleneck``, initialised as torchvision's ResNet is."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from search_spaces.resnet import ResNetConfig

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def _stem(kind: str, width: int, in_channels: int) -> nn.Sequential:
    def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(True),
        ]

    if kind == "cifar":
        return nn.Sequential(*conv_bn(in_channels, width, 3, 1))
    if kind == "deep":
        return nn.Sequential(
            *conv_bn(in_channels, width // 2, 3, 1),
            *conv_bn(width // 2, width // 2, 3, 1),
            *conv_bn(width // 2, width, 3, 1),
        )
    return nn.Sequential(*conv_bn(in_channels, width, 7, 2), nn.MaxPool2d(3, 2, 1))


class CifarResNet(nn.Module):
    def __init__(self, config: ResNetConfig, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        block = BLOCKS[config.block]
        widths = config.stage_widths()
        self.stem = _stem(config.stem, widths[0], in_channels)
        stages, channels = [], widths[0]
        for i, (depth, width) in enumerate(zip(config.blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            out = width * block.expansion
            shortcut = None
            if stride != 1 or channels != out:
                shortcut = nn.Sequential(nn.Conv2d(channels, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            layers = [block(channels, width, stride, shortcut)]
            layers += [block(out, width) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*layers))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))
