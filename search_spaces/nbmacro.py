"""NAS-Bench-Macro (Su et al., CVPR 2021): the exact macro space of MobileNetV2-style networks
on CIFAR-10, so that the benchmark's accuracies apply to the networks built here
(``search_spaces.nbmacro_net``).

Eight layers in three stages of 2, 3 and 3; each layer is 0 (identity), 1 (inverted residual,
kernel 3, expansion 3) or 2 (kernel 5, expansion 6). A configuration prints and parses as the
benchmark's 8-digit string, e.g. ``22212220``. Identities after a stage's first layer change
nothing wherever they stand, so the canonical form moves them to the end of their stage, as the
benchmark does: 3^8 = 6,561 strings name 3,969 distinct networks.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from search_spaces.base import ConfigError, SearchSpace, not_a_config

if TYPE_CHECKING:
    import optuna
    from torch import nn

CHOICES = ("0", "1", "2")  # identity; MBConv k3 e3; MBConv k5 e6
STAGES = (2, 3, 3)  # layers per stage
LAYERS = sum(STAGES)
EXAMPLE = "22212220"
Config = str  # the canonical 8-digit string


def _digits(text: str) -> bool:
    return len(text) == LAYERS and all(d in CHOICES for d in text)


def canonical(digits: str) -> str:
    """``digits`` with the identities after each stage's first layer moved to its end."""
    out, start = [], 0
    for count in STAGES:
        first, rest = digits[start], digits[start + 1 : start + count]
        out.append(first + rest.replace("0", "") + "0" * rest.count("0"))
        start += count
    return "".join(out)


class NBMacro(SearchSpace):
    name = "nbmacro"
    summary = "NAS-Bench-Macro: 8 MobileNetV2 layers in 3 stages, each identity / k3e3 / k5e6"
    size = 3969

    def sample(self, trial: optuna.Trial) -> Config:
        return canonical("".join(trial.suggest_categorical(f"layer{i + 1}", CHOICES) for i in range(LAYERS)))

    def build(
        self, config: Config, num_classes: int = 10, channels: int = 3, image_size: int = 32
    ) -> nn.Module:
        from search_spaces.nbmacro_net import MacroNetwork

        self.describe(config)  # checks it
        return MacroNetwork(config, num_classes, channels)

    def smallest(self) -> list[Config]:
        # Every layer's choice adds to the network alone (the widths are fixed), and an identity
        # (a strided 1×1 convolution at a stage's first layer) adds the least.
        return ["0" * LAYERS]

    def describe(self, config: Config) -> str:
        if not (isinstance(config, str) and _digits(config) and config == canonical(config)):
            raise not_a_config(
                "nbmacro", f"a canonical string of {LAYERS} digits 0-2 (space.parse gives one)", config
            )
        return config

    def parse(self, text: str) -> Config:
        digits = text.strip()
        if len(digits) != LAYERS or any(d not in CHOICES for d in digits):
            raise ConfigError(
                f"malformed nbmacro config {text!r}: give {LAYERS} digits, each 0 (identity), "
                f"1 (k3 e3) or 2 (k5 e6), e.g. {EXAMPLE}"
            )
        return canonical(digits)

    def configs(self):
        """Every distinct configuration, in canonical form (for counting and tests)."""
        seen = dict.fromkeys(canonical("".join(d)) for d in itertools.product(CHOICES, repeat=LAYERS))
        return iter(seen)
