"""NAS-Bench-201 (Dong & Yang, ICLR 2020): the exact cell topology space, so that published
accuracies apply to the networks built here (``search_spaces.nb201_net``).

A cell has 4 nodes and 6 edges, each carrying one of 5 operations; a configuration is the
benchmark's arch string, e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...|``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search_spaces.base import ConfigError, SearchSpace, not_a_config

if TYPE_CHECKING:
    import optuna
    from torch import nn

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), arch-string order
Cell = tuple[str, str, str, str, str, str]  # the op on each edge, in EDGES order
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


class NB201(SearchSpace):
    name = "nb201"
    summary = "NAS-Bench-201 cells: 6 edges × {none, skip, conv1x1, conv3x3, avgpool3x3}"
    size = len(OPS) ** len(EDGES)
    # Two reduction blocks halve the image, each a stride-2 convolution beside a 2 × 2 average
    # pool whose outputs are added: they agree in size only on even sides.
    min_image_size = image_size_multiple = 4

    def sample(self, trial: optuna.Trial) -> Cell:
        return tuple(trial.suggest_categorical(f"edge_{to}_{src}", OPS) for to, src in EDGES)

    def build(
        self, config: Cell, num_classes: int = 10, channels: int = 3, image_size: int = 32
    ) -> nn.Module:
        from search_spaces.nb201_net import TinyNetwork

        self.describe(config)  # checks it
        return TinyNetwork(tuple(config), num_classes, channels)

    def smallest(self) -> list[Cell]:
        # Every edge's op adds to the network alone, and none adds no parameter nor FLOP.
        return [("none",) * len(EDGES)]

    def describe(self, config: Cell) -> str:
        if not (
            isinstance(config, tuple | list) and len(config) == len(EDGES) and all(op in OPS for op in config)
        ):
            raise not_a_config("nb201", f"a tuple of {len(EDGES)} ops from {', '.join(OPS)}", config)
        nodes = []
        for target in (1, 2, 3):
            nodes.append(
                "|"
                + "|".join(f"{config[e]}~{src}" for e, (to, src) in enumerate(EDGES) if to == target)
                + "|"
            )
        return "+".join(nodes)

    def parse(self, text: str) -> Cell:
        nodes = text.strip().split("+")
        if len(nodes) != 3:
            raise ConfigError(
                f"malformed nb201 arch string: expected 3 nodes joined by '+', got {len(nodes)} "
                f"(e.g. {EXAMPLE})"
            )
        ops: list[str] = []
        for target, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")):
                raise ConfigError(
                    f"malformed nb201 arch string: node {target} {node!r} must look like |op~i|...|"
                )
            edges = node[1:-1].split("|")
            if len(edges) != target:
                raise ConfigError(
                    f"malformed nb201 arch string: node {target} needs {target} edges "
                    f"(from nodes 0..{target - 1}), got {len(edges)} in {node!r}"
                )
            for src, edge in enumerate(edges):
                op, sep, index = edge.partition("~")
                if not sep or index != str(src):
                    raise ConfigError(
                        f"malformed nb201 arch string: edge {edge!r} of node {target} "
                        f"should read {op or 'op'}~{src}"
                    )
                if op not in OPS:
                    raise ConfigError(
                        f"unknown op {op!r} on edge {src}→{target} of the nb201 arch string; "
                        f"ops: {', '.join(OPS)}"
                    )
                ops.append(op)
        return tuple(ops)
