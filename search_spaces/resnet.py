"""CIFAR-style ResNets assembled from torchvision's ``BasicBlock`` and ``Bottleneck``.

A configuration chooses the block type, 3 or 4 stages of 1–4 blocks each, the base width, how
the width grows from stage to stage, and the stem. Stage i has width ``base · growth^i``
(rounded to a multiple of 8; bottleneck blocks output 4× that); every stage after the first
halves the resolution. ResNet-18 for CIFAR is ``block=basic blocks=2-2-2-2 width=64 growth=2
stem=cifar``; ResNet-34's 3-4-6-3 is capped here at 3-4-4-3.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import optuna
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from search_spaces.base import ConfigError, SearchSpace

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}
STAGES = (3, 4)
DEPTHS = (1, 2, 3, 4)
WIDTHS = (16, 32, 48, 64)
GROWTHS = (1.5, 2.0)
STEMS = ("cifar", "deep", "imagenet")  # 3×3 conv; three 3×3 convs; 7×7 stride-2 conv + max-pool


@dataclass(frozen=True)
class ResNetConfig:
    block: str
    blocks: tuple[int, ...]
    width: int
    growth: float
    stem: str

    def stage_widths(self) -> list[int]:
        return [max(8, round(self.width * self.growth**i / 8) * 8) for i in range(len(self.blocks))]


def _stem(kind: str, width: int) -> nn.Sequential:
    def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(True),
        ]

    if kind == "cifar":
        return nn.Sequential(*conv_bn(3, width, 3, 1))
    if kind == "deep":
        return nn.Sequential(
            *conv_bn(3, width // 2, 3, 1),
            *conv_bn(width // 2, width // 2, 3, 1),
            *conv_bn(width // 2, width, 3, 1),
        )
    return nn.Sequential(*conv_bn(3, width, 7, 2), nn.MaxPool2d(3, 2, 1))


class CifarResNet(nn.Module):
    def __init__(self, config: ResNetConfig, num_classes: int) -> None:
        super().__init__()
        block = BLOCKS[config.block]
        widths = config.stage_widths()
        self.stem = _stem(config.stem, widths[0])
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


class ResNetSpace(SearchSpace):
    name = "resnet"
    summary = "CIFAR ResNets: basic/bottleneck blocks, 3-4 stages of 1-4 blocks, widths, stems"
    size = len(BLOCKS) * sum(len(DEPTHS) ** s for s in STAGES) * len(WIDTHS) * len(GROWTHS) * len(STEMS)

    def sample(self, trial: optuna.Trial) -> ResNetConfig:
        stages = trial.suggest_categorical("stages", STAGES)
        return ResNetConfig(
            block=trial.suggest_categorical("block", tuple(BLOCKS)),
            blocks=tuple(trial.suggest_categorical(f"blocks{i + 1}", DEPTHS) for i in range(stages)),
            width=trial.suggest_categorical("width", WIDTHS),
            growth=trial.suggest_categorical("growth", GROWTHS),
            stem=trial.suggest_categorical("stem", STEMS),
        )

    def build(self, config: ResNetConfig, num_classes: int = 10) -> nn.Module:
        return CifarResNet(config, num_classes)

    def describe(self, config: ResNetConfig) -> str:
        blocks = "-".join(map(str, config.blocks))
        return (
            f"block={config.block} blocks={blocks} width={config.width} "
            f"growth={config.growth:g} stem={config.stem}"
        )

    def parse(self, text: str) -> ResNetConfig:
        fields = dict(part.partition("=")[::2] for part in text.split())
        expected = ("block", "blocks", "width", "growth", "stem")
        if sorted(fields) != sorted(expected):
            raise ConfigError(
                f"malformed resnet config {text!r}: give exactly {', '.join(f'{k}=' for k in expected)} "
                "(e.g. block=basic blocks=2-2-2-2 width=64 growth=2 stem=cifar)"
            )
        try:
            blocks = tuple(int(b) for b in fields["blocks"].split("-"))
            width, growth = int(fields["width"]), float(fields["growth"])
        except ValueError:
            raise ConfigError(
                f"malformed resnet config {text!r}: blocks, width and growth must be numbers"
            ) from None
        checks = [
            ("block", fields["block"], tuple(BLOCKS)),
            ("stages", len(blocks), STAGES),
            ("width", width, WIDTHS),
            ("growth", growth, GROWTHS),
            ("stem", fields["stem"], STEMS),
        ] + [(f"blocks of stage {i + 1}", b, DEPTHS) for i, b in enumerate(blocks)]
        for what, value, allowed in checks:
            if value not in allowed:
                choices = ", ".join(map(str, allowed))
                raise ConfigError(f"resnet {what} {value!r} is not in the space; choose one of: {choices}")
        return ResNetConfig(fields["block"], blocks, width, growth, fields["stem"])

    def configs(self):
        """Every configuration (for counting and tests)."""
        for block, stages, width, growth, stem in itertools.product(BLOCKS, STAGES, WIDTHS, GROWTHS, STEMS):
            for blocks in itertools.product(DEPTHS, repeat=stages):
                yield ResNetConfig(block, blocks, width, growth, stem)
