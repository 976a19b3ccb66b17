"""Search spaces: registry, NAS-Bench-201's exact networks, round trips, and configuration errors."""

import csv
from pathlib import Path

import optuna
import pytest
import torch

import search_spaces
from ntknas.scoring.measure import count_flops, count_params
from search_spaces import ConfigError, UnknownSpace
from search_spaces.nb201 import OPS

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def test_registry():
    assert search_spaces.names() == ["nb201", "nbmacro", "resnet"]
    assert search_spaces.get("nb201").size == 15625
    # 2 block types × (4³ + 4⁴ stage depths) × 4 widths × 2 growths × 3 stems; the canonical macro nets.
    assert search_spaces.get("resnet").size == 15_360
    assert search_spaces.get("nbmacro").size == 3_969
    known = "known spaces: nb201, nbmacro, resnet"
    with pytest.raises(UnknownSpace, match=f"unknown search space 'darts'; {known}"):
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


NBMACRO_SIZES = Path(__file__).parent / "data" / "nbmacro_sizes.csv"  # 24 rows of the dev file
NBMACRO_DEV = Path(__file__).parents[2] / "shared" / "data" / "nbmacro_cifar10_dev.csv"


def _nbmacro_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("source", ["bundled", "dev"])
def test_nbmacro_sizes_match_the_benchmark(source):
    """Parameter counts equal the benchmark's; FLOPs are twice its multiply-adds."""
    if source == "dev" and not NBMACRO_DEV.is_file():
        pytest.skip(f"{NBMACRO_DEV} is not here (it is beside the checkout in development and CI)")
    rows = _nbmacro_rows(NBMACRO_SIZES if source == "bundled" else NBMACRO_DEV)
    space = search_spaces.get("nbmacro")
    image = torch.randn(1, 3, 32, 32)
    for row in rows:
        model = space.build(space.parse(row["arch"]))
        assert count_params(model) == int(row["params"]), row["arch"]
        if source == "bundled":
            assert count_flops(model, image) == 2 * int(row["flops"]), row["arch"]


def test_nbmacro_all_identity_network_by_hand():
    """Stem 3·32·9 + BN; 1×1 stride-2 convs + BN at 32→64→128→256; head 256·1280 + BN; linear."""
    space = search_spaces.get("nbmacro")
    expected = (864 + 64) + (2048 + 128) + (8192 + 256) + (32768 + 512) + (327680 + 2560) + 12810
    assert count_params(space.build(space.parse("00000000"))) == expected == 387_882


def test_nbmacro_canonical_form():
    space = search_spaces.get("nbmacro")
    assert space.parse("12001102") == "12010120"  # identities after a stage's first layer go last
    assert space.parse("00000000") == "00000000"
    assert space.describe(space.parse("22212220")) == "22212220"
    assert len(set(space.configs())) == space.size == 3969
    for text in ("2221222", "222122201", "22212223", "2221222x"):
        with pytest.raises(ConfigError, match=r"malformed nbmacro config .*8 digits"):
            space.parse(text)


def test_nbmacro_blocks_add_their_input_when_shapes_allow():
    from search_spaces.nbmacro_net import InvertedResidual

    space = search_spaces.get("nbmacro")
    torch.manual_seed(0)
    net = space.build(space.parse("12000000"))
    first, second = net.layers[0], net.layers[1]
    assert isinstance(first, InvertedResidual) and not first.residual  # stride 2, 32 → 64
    assert isinstance(second, InvertedResidual) and second.residual
    x = torch.randn(2, 64, 16, 16)
    second.eval()
    with torch.no_grad():
        assert torch.allclose(second(x), x + second.conv(x))
        assert net(torch.randn(4, 3, 32, 32)).shape == (4, 10)


def test_nbmacro_samples_canonical_configurations():
    space = search_spaces.get("nbmacro")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    configs = [space.sample(study.ask()) for _ in range(50)]
    assert all(space.parse(c) == c for c in configs)
    assert len(set(configs)) > 40


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "nb201",
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        ),
        ("resnet", "block=basic blocks=1-1-1 width=16 growth=2 stem=cifar"),
    ],
)
def test_a_built_in_space_refuses_what_is_not_its_configuration(name, text):
    """A described string (to be parsed first), None, or a configuration of another space goes to
    describe() and build() as a TypeError naming the space and the fix, never as another network
    (an nb201 arch string read as six one-letter ops built the all-none cell)."""
    space = search_spaces.get(name)
    others = {"nb201": ("abcdef", ("conv",) * 6, ("none",) * 5), "resnet": (("none",) * 6, 5)}[name]
    for wrong in (text, None, *others):
        for method in (space.describe, space.build):
            with pytest.raises(TypeError, match=rf"^{name} configuration must be .*; got "):
                method(wrong)
    with pytest.raises(TypeError, match=r"read an arch string with space\.parse\(text\) first"):
        space.describe(text)
    assert space.describe(space.parse(text)) == text
    macro = search_spaces.get("nbmacro")
    for wrong in ("2221222", "22a12220", "22202220", 22212220, None):  # 22202220: not canonical
        with pytest.raises(TypeError, match=r"^nbmacro configuration must be a canonical string"):
            macro.describe(wrong)
    assert macro.describe(macro.parse("22202220")) == "22220220"
