"""CIFAR-style ResNets assembled from torchvision's ``BasicBlock`` and ``Bottleneck``
(``search_spaces.resnet_net``).

A configuration chooses the block type, 3 or 4 stages of 1–4 blocks each, the base width, how
the width grows from stage to stage, and the stem. Stage i has width ``base · growth^i``
(rounded to a multiple of 8; bottleneck blocks output 4× that); every stage after the first
halves the resolution. ResNet-18 for CIFAR is ``block=basic blocks=2-2-2-2 width=64 growth=2
stem=cifar``; ResNet-34's 3-4-6-3 is capped here at 3-4-4-3.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search_spaces.base import ConfigError, SearchSpace, not_a_config

if TYPE_CHECKING:
    import optuna
    from torch import nn

BLOCKS = ("basic", "bottleneck")
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


class ResNetSpace(SearchSpace):
    name = "resnet"
    summary = "CIFAR ResNets: basic/bottleneck blocks, 3-4 stages of 1-4 blocks, widths, stems"
    size = len(BLOCKS) * sum(len(DEPTHS) ** s for s in STAGES) * len(WIDTHS) * len(GROWTHS) * len(STEMS)

    def sample(self, trial: optuna.Trial) -> ResNetConfig:
        stages = trial.suggest_categorical("stages", STAGES)
        return ResNetConfig(
            block=trial.suggest_categorical("block", BLOCKS),
            blocks=tuple(trial.suggest_categorical(f"blocks{i + 1}", DEPTHS) for i in range(stages)),
            width=trial.suggest_categorical("width", WIDTHS),
            growth=trial.suggest_categorical("growth", GROWTHS),
            stem=trial.suggest_categorical("stem", STEMS),
        )

    def build(
        self, config: ResNetConfig, num_classes: int = 10, channels: int = 3, image_size: int = 32
    ) -> nn.Module:
        from search_spaces.resnet_net import CifarResNet

        self.describe(config)  # checks it
        return CifarResNet(config, num_classes, channels)

    def smallest(self) -> list[ResNetConfig]:
        # Fewer stages and blocks, the least width and growth add the least, and basic blocks no
        # more than bottlenecks (as much in the first stage, less after it); the stems trade
        # parameters for FLOPs (a strided stem has more weights, on fewer pixels; a deep one
        # fewer weights on many input channels).
        least = (min(DEPTHS),) * min(STAGES), min(WIDTHS), min(GROWTHS)
        return [ResNetConfig("basic", *least, stem) for stem in STEMS]

    def describe(self, config: ResNetConfig) -> str:
        if not isinstance(config, ResNetConfig):
            raise not_a_config("resnet", "a search_spaces.resnet.ResNetConfig", config)
        blocks = "-".join(map(str, config.blocks))
        return (
            f"block={config.block} blocks={blocks} width={config.width} "
            f"growth={config.growth:g} stem={config.stem}"
        )

    def parse(self, text: str) -> ResNetConfig:
        pairs = [part.partition("=")[::2] for part in text.split()]
        fields = dict(pairs)
        expected = ("block", "blocks", "width", "growth", "stem")
        if sorted(key for key, _ in pairs) != sorted(expected):  # each once
            raise ConfigError(
                f"malformed resnet config {text!r}: give exactly {', '.join(f'{k}=' for k in expected)} "
                "(e.g. block=basic blocks=2-2-2-2 width=64 growth=2 stem=cifar)"
            )
        numbers = [*fields["blocks"].split("-"), fields["width"], fields["growth"]]
        try:
            if not all(re.fullmatch(r"[0-9]+(\.[0-9]+)?", n) for n in numbers):  # as describe() writes them
                raise ValueError
            blocks = tuple(int(b) for b in fields["blocks"].split("-"))
            width, growth = int(fields["width"]), float(fields["growth"])
        except ValueError:
            raise ConfigError(
                f"malformed resnet config {text!r}: blocks, width and growth must be numbers"
            ) from None
        checks = [
            ("block", fields["block"], BLOCKS),
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
