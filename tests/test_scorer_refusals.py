"""What the library refuses, or scores as the model itself computes, for inputs outside the common
path: labels, kernels handed to the spectrum, detached outputs, mixed precision, and
implementations asked for by name that cannot transform a model."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_bad_input import KINDS, matches
from torch import nn

import scores
from ntknas.scoring import metrics
from scores import proxies


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))


X = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (
            torch.tensor([0, 1]),
            ValueError,
            r"labels must have shape \(N,\) = \(4,\), one per sample; got \(2,\)",
        ),
        (
            torch.tensor([0.0, 1, 2, 0]),
            TypeError,
            "labels must be integer class indices; got dtype torch.float32",
        ),
        (torch.tensor([True, False, True, False]), TypeError, "labels must be integer class indices"),
        (torch.tensor([0, 1, -1, 0]), ValueError, "labels must be class indices from 0"),
        (torch.zeros(4, 1, dtype=torch.long), ValueError, r"labels must have shape \(N,\)"),
        ([0, 1, 2, 0], TypeError, "labels must be a torch.Tensor of class indices"),
    ],
)
@pytest.mark.parametrize("metric", ["lga", "grad_norm", "params"])
def test_labels_that_are_no_class_indices_are_refused(labels, error, message, metric):
    with pytest.raises(error, match=message):
        metrics.compute(net(), X, labels, [metric])


def test_the_documented_label_refusal():
    with pytest.raises(ValueError) as refused:
        metrics.compute(net(), X, torch.tensor([0, 1]), ["lga"])
    assert matches(KINDS["labels that are no class indices"].message, str(refused.value))


def test_a_label_beyond_the_models_outputs_is_refused():
    with pytest.raises(ValueError, match=r"from 0 to 2 \(the model has 3 outputs\); got 0 to 7"):
        metrics.compute(net(), X, torch.tensor([0, 1, 7, 0]), ["grad_norm"])
    assert metrics.compute(net(), X, torch.tensor([0, 1, 2, 0]), "grad_norm")["grad_norm"] > 0  # one name


def test_alignment_with_a_non_finite_kernel_is_refused():
    with pytest.raises(ValueError, match="kernel has non-finite entries"):
        proxies.label_gradient_alignment(torch.full((4, 4), math.nan), torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (torch.tensor([[4.0, 100.0], [0.0, 1.0]]), "kernel is not symmetric"),
        (torch.eye(3).to_sparse(), "kernel must be a dense real tensor; got a torch.sparse_coo one"),
        (torch.eye(3, dtype=torch.complex128), "kernel must be a dense real tensor; got a complex one"),
        (torch.eye(3, device="meta"), "kernel must be a dense real tensor; got a meta one"),
    ],
)
def test_kernels_the_spectrum_cannot_read_are_refused(kernel, message):
    with pytest.raises(ValueError, match=message) as refused:
        scores.spectrum(kernel)
    if message == "kernel is not symmetric":
        assert matches(KINDS["a kernel that is not symmetric"].message, str(refused.value))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(-1000, 1023), st.integers(2, 6), st.integers(0, 2**31))
@example(1023, 3, 0)  # the largest: K + Kᵀ would overflow
def test_the_spectrum_of_any_finite_kernel_scales_with_it(exponent, n, seed):
    """A positive-definite kernel scaled by any power of two that keeps it normal in float64: eigenvalues
    scale exactly, the scale-free scores do not move, nothing overflows."""
    a = torch.randn(n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    base = a @ a.T + n * torch.eye(n, dtype=torch.float64)
    base = base / base.abs().max()
    small, scaled = scores.spectrum(base), scores.spectrum(torch.ldexp(base, torch.tensor(exponent)))
    expected = torch.ldexp(small.eigenvalues, torch.tensor(exponent))
    assert torch.allclose(scaled.eigenvalues, expected, rtol=1e-12, atol=0)
    for name in ("condition_number", "effective_rank", "flatness"):
        assert math.isclose(getattr(scaled, name), getattr(small, name), rel_tol=1e-9, abs_tol=1e-12), name


class Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        return self.fc(x.flatten(1)).detach()


@pytest.mark.parametrize("impl", ["auto", "hooks", "loop"])
def test_an_output_cut_off_from_the_parameters_is_refused(impl):
    with pytest.raises(ValueError) as refused:
        scores.pntk(Detached(), X, implementation=impl)
    assert matches(KINDS["an output cut off from the parameters"].message, str(refused.value))


class Mixed(nn.Module):
    """A float16 layer and a float32 one, converting its own input: it runs on float32 images."""

    def __init__(self) -> None:
        super().__init__()
        self.low = nn.Linear(12, 3).half()
        self.full = nn.Linear(12, 3)

    def forward(self, x):
        x = x.flatten(1)
        return self.full(x) + self.low(x.half()).float()


def test_inputs_keep_their_precision_when_the_trainable_parameters_have_several():
    model = Mixed()
    loop = scores.pntk(model, X, implementation="loop")
    assert torch.allclose(scores.pntk(model, X, implementation="func"), loop, rtol=1e-2)  # float16 arithmetic
    # frozen float16 parameters do not round float32 inputs: the kernel is the float32 network's
    frozen = FrozenHalf()
    plain = nn.Sequential(nn.Flatten(), frozen.full)
    assert torch.equal(scores.pntk(frozen, X), scores.pntk(plain, X))


class FrozenHalf(nn.Module):
    """A float32 network beside an unused, frozen float16 layer."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(2, 2).half().requires_grad_(False)
        self.full = nn.Linear(12, 3)

    def forward(self, x):
        return self.full(x.flatten(1))


@pytest.mark.parametrize("chunk", [True, False])
def test_a_bool_is_no_chunk_size(chunk):
    with pytest.raises(ValueError, match="chunk_size must be a positive integer or None; got"):
        scores.pntk(net(), X, chunk_size=chunk, implementation="func")


def test_func_asked_for_by_name_on_a_model_it_cannot_transform_says_so():
    scripted = torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)))
    with pytest.raises(ValueError, match=r"^implementation='func' cannot score this model \(torch\.func: "):
        scores.pntk(scripted, X, implementation="func")
    with pytest.warns(UserWarning, match="using the per-sample loop"):  # auto goes on to a path that can
        assert scores.pntk(scripted, X).shape == (4, 4)


def test_a_sparse_embedding_is_scored_by_every_implementation_that_can():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4, sparse=True), nn.Flatten(), nn.Linear(12, 3))
    ids = torch.randint(0, 10, (5, 3), generator=torch.Generator().manual_seed(2))
    dense = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 3))
    dense.load_state_dict(model.state_dict())
    expected = scores.pntk(dense, ids, implementation="loop")
    for impl in ("auto", "hooks", "loop"):
        assert torch.allclose(scores.pntk(model, ids, implementation=impl), expected, rtol=1e-6), impl


def test_a_global_forward_hook_that_changes_outputs_sends_the_model_to_the_slower_path():
    from torch.nn.modules.module import register_module_forward_hook

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = X.double()
    handle = register_module_forward_hook(lambda m, args, out: out * 3 if isinstance(m, nn.Linear) else None)
    try:
        loop = scores.pntk(model, x, implementation="loop")
        with pytest.warns(UserWarning, match=r"fast path unavailable \(a global module forward hook"):
            assert torch.allclose(scores.pntk(model, x), loop, rtol=1e-12)
        with pytest.raises(ValueError, match="implementation='hooks' cannot score this model"):
            scores.pntk(model, x, implementation="hooks")
    finally:
        handle.remove()
    assert not torch.allclose(scores.pntk(model, x, implementation="hooks"), loop)  # the hook mattered
