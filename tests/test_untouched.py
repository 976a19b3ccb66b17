"""The caller's model comes back exactly as it was, whatever the mode or implementation."""

import warnings

import pytest
import torch
from zoo import make

import scores


def snapshot(model):
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grad": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "forwards": [vars(m).get("forward") for m in model.modules()],
        "bn_flags": [
            (m.track_running_stats, m.momentum)
            for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ],
        "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()],
    }


def assert_same(a, b):
    assert a.keys() == b.keys()
    assert a["state"].keys() == b["state"].keys()
    assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    assert all(
        (x is None and y is None) or torch.equal(x, y) for x, y in zip(a["grad"], b["grad"], strict=True)
    )
    for key in ("training", "requires_grad", "forwards", "bn_flags", "hooks"):
        assert a[key] == b[key], key


@pytest.mark.parametrize("impl", ["auto", "func", "loop"])
@pytest.mark.parametrize("bn", scores.BN_MODES)
def test_model_untouched(impl, bn):
    for name in ("conv_bn", "shared_conv", "scaled"):
        model, x = make(name, n=5)
        model.train()
        next(iter(model.children())).eval()  # mixed training flags must come back as they were
        params = list(model.parameters())
        params[0].grad = torch.full_like(params[0], 7.0)  # an existing .grad must survive
        before = snapshot(model)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores.pntk(model, x, bn=bn, implementation=impl)
            assert not torch.is_grad_enabled()  # the caller's grad mode is restored
        assert_same(before, snapshot(model))


def test_model_untouched_after_an_error():
    model, x = make("conv_bn", n=5)
    model.train()
    before = snapshot(model)
    x[0, 0, 0, 0] = float("nan")
    for bn in scores.BN_MODES:
        with pytest.raises(ValueError, match="non-finite"):
            scores.pntk(model, x, bn=bn)
    assert_same(before, snapshot(model))


def test_scoring_in_a_loop_leaks_nothing():
    import gc

    def live_tensors() -> int:
        gc.collect()
        with warnings.catch_warnings():  # isinstance() on some deprecated torch objects warns
            warnings.simplefilter("ignore")
            return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))

    model, x = make("conv_bn", n=6)
    for bn in scores.BN_MODES:
        scores.pntk(model, x, bn=bn)  # warm up any caches
    before = live_tensors()
    for _ in range(3):
        for bn in scores.BN_MODES:
            scores.pntk(model, x, bn=bn)
    assert live_tensors() == before


@pytest.mark.parametrize("bn", scores.BN_MODES)
def test_an_instance_norm_with_running_statistics_follows_the_mode_and_keeps_them(bn):
    """It reads its running statistics in eval mode only: in batch and train mode each sample's own,
    as an InstanceNorm without running statistics does, and its running ones are left as they were."""
    from torch import nn

    def net(track: bool) -> nn.Module:
        torch.manual_seed(0)
        norm = nn.InstanceNorm2d(4, affine=True, track_running_stats=track)
        model = nn.Sequential(nn.Conv2d(3, 4, 3), norm, nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
        if track:
            norm.running_mean.fill_(5.0)
            norm.running_var.fill_(0.1)
        return model

    tracked, untracked = net(True), net(False)
    x = torch.randn(5, 3, 8, 8)
    before = snapshot(tracked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the slower path's notice
        k, own = scores.pntk(tracked, x, bn=bn), scores.pntk(untracked, x, bn=bn)
    assert_same(before, snapshot(tracked))
    assert tracked[1].track_running_stats and tracked[1].running_mean.eq(5.0).all()
    differs = float((k - own).abs().max() / own.abs().max())
    assert differs > 0.1 if bn == "eval" else differs == 0.0
