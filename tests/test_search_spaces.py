"""Search spaces: registry, NAS-Bench-201's exact networks, round trips, and configuration errors."""

import optuna
import pytest
import torch

import search_spaces
from ntknas.measure import count_flops, count_params
from search_spaces import ConfigError, UnknownSpace
from search_spaces.nb201 import OPS

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_registry():
    assert search_spaces.names() == ["nb201", "resnet"]
    assert search_spaces.get("nb201").size == 15625
    assert search_spaces.get("resnet").size >= 10000
    with pytest.raises(UnknownSpace, match="unknown search space 'darts'; known spaces: nb201, resnet"):
        search_spaces.get("darts")


def test_nb201_parameter_counts_match_the_benchmark():
    space = search_spaces.get("nb201")
    assert count_params(space.build(space.parse(ALL_CONV))) == 1_531_546
    assert count_params(space.build(space.parse(ALL_NONE))) == 73_306


def test_nb201_flops_match_the_benchmark_and_torch_counter():
    from torch.utils.flop_counter import FlopCounterMode

    space = search_spaces.get("nb201")
    model = space.build(space.parse(ALL_CONV)).eval()
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(image)
    assert count_flops(model, image) == counter.get_total_flops()
    assert count_flops(model, image) / 2e6 == pytest.approx(220.11, abs=0.01)  # NB201 reports 220.11M MACs


def test_nb201_avg_pool_is_the_benchmarks_pooling():
    from search_spaces.nb201_net import AvgPool

    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    expected = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(x)
    assert torch.allclose(AvgPool()(x), expected, atol=1e-14)


def test_nb201_cell_equals_the_benchmarks_sum_with_zero_ops():
    from search_spaces.nb201 import EDGES
    from search_spaces.nb201_net import Zero

    space = search_spaces.get("nb201")
    torch.manual_seed(0)
    net = space.build(space.parse("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|"))
    cell = net.cells[0].eval()
    x = torch.randn(2, 16, 8, 8)
    nodes = [x]  # the benchmark's InferCell: every edge summed, `none` as x.mul(0.)
    for target in (1, 2, 3):
        nodes.append(
            sum(
                nodes[src].mul(0.0) if isinstance(layer, Zero) else layer(nodes[src])
                for layer, (to, src) in zip(cell.layers, EDGES, strict=True)
                if to == target
            )
        )
    assert torch.equal(cell(x), nodes[3])


def test_round_trips():
    for name in search_spaces.names():
        space = search_spaces.get(name)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        for _ in range(30):
            config = space.sample(study.ask())
            text = space.describe(config)
            assert space.parse(text) == config
            assert space.describe(space.parse(text)) == text
    assert search_spaces.get("nb201").describe(search_spaces.get("nb201").parse(ALL_CONV)) == ALL_CONV


def test_resnet_points():
    space = search_spaces.get("resnet")
    resnet18 = space.parse("block=basic blocks=2-2-2-2 width=64 growth=2 stem=cifar")
    assert count_params(space.build(resnet18)) == 11_173_962  # the CIFAR ResNet-18
    assert sum(1 for _ in space.configs()) == space.size
    small = space.build(space.parse("block=bottleneck blocks=1-1-1 width=16 growth=1.5 stem=imagenet"))
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert type(small.stages[0][0]).__module__ == "torchvision.models.resnet"


@pytest.mark.parametrize(
    "space,text,message",
    [
        (
            "nb201",
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",
            "expected 3 nodes joined by '\\+', got 2",
        ),
        (
            "nb201",
            ALL_CONV.replace("nor_conv_3x3~2", "conv_5x5~2"),
            "unknown op 'conv_5x5' on edge 2→3 of the nb201 arch string; ops: " + ", ".join(OPS),
        ),
        ("nb201", ALL_CONV.replace("nor_conv_3x3~1|+", "nor_conv_3x3~0|+", 1), "should read nor_conv_3x3~1"),
        ("nb201", "|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 edges"),
        (
            "resnet",
            "block=basic blocks=2-2-2-2 width=64",
            "give exactly block=, blocks=, width=, growth=, stem=",
        ),
        (
            "resnet",
            "block=basic blocks=2-9-2 width=64 growth=2 stem=cifar",
            "resnet blocks of stage 2 9 is not in the space; choose one of: 1, 2, 3, 4",
        ),
        (
            "resnet",
            "block=wide blocks=2-2-2 width=64 growth=2 stem=cifar",
            "resnet block 'wide' is not in the space",
        ),
        ("resnet", "block=basic blocks=a-b width=64 growth=2 stem=cifar", "must be numbers"),
    ],
)
def test_config_errors(space, text, message):
    with pytest.raises(ConfigError, match=message):
        search_spaces.get(space).parse(text)
