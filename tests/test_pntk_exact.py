"""The pNTK against an independent per-sample autograd loop, in float64, for every covered layer
kind, every BatchNorm mode and every implementation."""

import copy
import warnings

import pytest
import torch
from test_bad_input import KINDS, matches
from zoo import COUPLED, HIDDEN, NEEDS_FALLBACK, ZOO, make, reference_pntk

import scores

TOL = 1e-9  # relative Frobenius error; float64 lands near 1e-15


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("bn", scores.BN_MODES)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_fast_path_matches_reference(name, bn):
    model, x = make(name)
    ref = reference_pntk(model, x, bn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fast path covers these: no fallback warning
        k = scores.pntk(model, x, bn=bn, implementation="hooks")
    assert k.dtype == torch.float64 and k.shape == (x.shape[0],) * 2
    assert rel(k, ref) < TOL


@pytest.mark.parametrize("impl", ["func", "loop"])
@pytest.mark.parametrize("bn", scores.BN_MODES)
def test_other_implementations_match_reference(impl, bn):
    for name in ("conv_bn", "tokens", "shared_conv"):
        model, x = make(name)
        assert rel(scores.pntk(model, x, bn=bn, implementation=impl), reference_pntk(model, x, bn)) < TOL


@pytest.mark.parametrize("bn", scores.BN_MODES)
@pytest.mark.parametrize("name", sorted(NEEDS_FALLBACK))
def test_uncovered_models_fall_back_with_one_warning(name, bn):
    model, x = make(name)
    with pytest.warns(UserWarning, match="using the slower torch.func path"):
        k = scores.pntk(model, x, bn=bn)
    assert rel(k, reference_pntk(model, x, bn)) < TOL
    for impl in ("func", "loop"):
        assert rel(scores.pntk(model, x, bn=bn, implementation=impl), reference_pntk(model, x, bn)) < TOL
    with pytest.raises(ValueError, match="implementation='hooks' cannot score this model"):
        scores.pntk(model, x, bn=bn, implementation="hooks")


@pytest.mark.parametrize("bn", scores.BN_MODES)
@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_a_forward_that_hides_calls_from_hooks_is_scored_right(name, bn):
    """A dropped call whose weight is used elsewhere, a branch fed by a tensor that requires grad,
    keyword calls, a layer under no_grad, per-sample calls, sequence-first token-wise layers,
    convolutions edited after construction: ``auto`` matches the reference (falling back where the
    fast path cannot see the whole graph), and ``hooks`` either matches it or refuses in one line."""
    model, x = make(name)
    ref = reference_pntk(model, x, bn)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rel(scores.pntk(model, x, bn=bn), ref) < TOL
        assert rel(scores.pntk(model, x, bn=bn, implementation="loop"), ref) < TOL
    if name in ("dropped_call", "keyword_call", "per_sample", "sequence_first_t_is_n"):
        fallback = KINDS["a forward that hides calls from the fast path"].message
        assert matches(fallback, str(caught[0].message)), caught[0].message
    try:
        k = scores.pntk(model, x, bn=bn, implementation="hooks")
    except ValueError as e:
        assert str(e).startswith("implementation='hooks' cannot score this model (")
    else:
        assert rel(k, ref) < TOL


@pytest.mark.parametrize("bn", ["eval", "batch"])
@pytest.mark.parametrize("name", sorted(COUPLED))
def test_a_model_that_mixes_samples_is_scored_by_the_per_sample_loop(name, bn):
    """The fast paths take row n of every layer as sample n: a model whose rows depend on other
    samples (a roll, a mean over the batch, a layer across the sample axis) is caught by running
    two samples alone, and ``auto`` gives way to the loop, whose kernel is the per-row gradients
    of one whole-batch forward; ``hooks`` and ``func`` refuse in one line."""
    model, x = make(name)
    m = copy.deepcopy(model).eval()
    out = m(x)
    params = [p for p in m.parameters() if p.requires_grad]
    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(out[i].sum(), params, retain_graph=True)])
            for i in range(x.shape[0])]  # fmt: skip
    j = torch.stack(rows)
    ref = j @ j.T / out.shape[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert rel(scores.pntk(model, x, bn=bn), ref) < TOL
    shown = [str(w.message) for w in caught]
    if name != "across_samples":  # whose forward fails on two samples: said so instead
        assert shown == [KINDS["a model that mixes the samples of a batch"].message]
    assert any("using the per-sample loop" in message for message in shown), shown
    for impl in ("hooks", "func"):
        with pytest.raises(ValueError, match=f"^implementation='{impl}' cannot score this model"):
            scores.pntk(model, x, bn=bn, implementation=impl)


def test_modes_differ_where_they_should():
    model, x = make("conv_bn")
    eval_k, batch_k, train_k = (scores.pntk(model, x, bn=bn) for bn in scores.BN_MODES)
    assert rel(eval_k, batch_k) > 1e-3 and rel(batch_k, train_k) > 1e-3


def test_positive_semidefinite():
    model, x = make("conv_geometry", n=10)
    for bn in scores.BN_MODES:
        k = scores.pntk(model, x, bn=bn)
        ev = torch.linalg.eigvalsh(k)
        assert ev[0] > -1e-12 * ev[-1]


def test_float32_model_close_to_float64():
    model, x = make("conv_bn", n=8, dtype=torch.float32)
    ref = reference_pntk(model.double(), x.double(), "batch")
    k = scores.pntk(model.float(), x.float(), bn="batch")
    assert rel(k, ref) < 1e-5


def test_chunk_size_changes_nothing():
    for name in ("conv_geometry", "small_wide_conv", "tokens", "shared_conv"):
        model, x = make(name, n=7)
        for bn in ("batch", "train"):
            whole = scores.pntk(model, x, bn=bn)
            for chunk in (1, 3):
                assert rel(scores.pntk(model, x, bn=bn, chunk_size=chunk), whole) < 1e-12


def test_pntk_is_entk_traced_over_outputs():
    for name in ("mlp", "conv_bn", "tokens"):
        model, x = make(name, n=5)
        for bn in scores.BN_MODES:
            e = scores.entk(model, x, bn=bn)
            n = x.shape[0]
            o = e.shape[0] // n
            folded = e.view(n, o, n, o).sum((1, 3)) / o
            assert rel(folded, scores.pntk(model, x, bn=bn)) < TOL


def test_entk_matches_reference():
    from zoo import reference_entk

    model, x = make("conv_bn", n=4)
    e = scores.entk(model, x, bn="eval")
    assert e.shape == (4 * 5, 4 * 5)
    assert rel(e, reference_entk(model, x)) < TOL


def hooked_mlp(change) -> torch.nn.Module:
    """An MLP whose first layer's output a user's forward hook changes."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(12, 6),
        torch.nn.BatchNorm1d(6),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 3),
    ).double()
    model[1].register_forward_hook(lambda module, args, out: change(out))
    return model


@pytest.mark.parametrize("bn", ["eval", "batch", "train"])
@pytest.mark.parametrize(
    "change",
    [lambda out: out * 3, lambda out: out.mul_(3), lambda out: out + 1, lambda out: None],
    ids=["scaled", "scaled-in-place", "shifted", "observed"],
)
def test_a_users_forward_hook_is_part_of_the_kernel_in_every_implementation(bn, change):
    model, x = hooked_mlp(change), torch.randn(5, 3, 2, 2, dtype=torch.float64)
    expected = reference_pntk(model, x, bn)
    for impl in ("auto", "hooks", "func", "loop"):
        assert rel(scores.pntk(model, x, bn=bn, implementation=impl), expected) < TOL, impl


class Recurrent(torch.nn.Module):
    """A GRU over the rows of an image: torch.func cannot batch its per-sample gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = torch.nn.GRU(6, 5, batch_first=True, dtype=torch.float64)
        self.head = torch.nn.Linear(5, 3, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(x.flatten(1, 2))[0][:, -1])


def test_auto_goes_on_to_the_loop_where_torch_func_cannot_batch_the_model():
    torch.manual_seed(0)
    model, x = Recurrent(), torch.randn(4, 2, 3, 6, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        k = scores.pntk(model, x)
    assert [str(w.message).split(" (")[0] for w in caught] == [
        "ntknas: fast path unavailable",
        "ntknas: torch.func cannot score this model",
    ]
    assert str(caught[1].message).endswith("; using the per-sample loop, one backward pass per sample")
    assert rel(k, reference_pntk(model, x, "batch")) < TOL
    # asked for by name: one line naming the implementation, torch.func's reason, and the way out
    with pytest.raises(
        ValueError,
        match=r"^implementation='func' cannot score this model \(torch\.func: .+\); use "
        r"implementation='auto'$",
    ):
        scores.pntk(model, x, implementation="func")


@pytest.mark.parametrize("impl", ["auto", "hooks", "func", "loop"])
def test_integer_outputs_are_refused_as_such(impl):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    rounded = torch.nn.Sequential(
        model, type("Round", (torch.nn.Module,), {"forward": lambda s, x: x.long()})()
    )
    with pytest.raises(TypeError, match=r"model output must be floating point .*; got dtype torch\.int64"):
        scores.pntk(rounded, torch.randn(4, 3, 2, 2), implementation=impl)


class SelfChanging(torch.nn.Module):
    """A forward that scales its own weight and counts its calls in a buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(12, 3)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            self.linear.weight.mul_(1.5)
        self.calls += 1
        return self.linear(x.flatten(1))


@pytest.mark.parametrize("impl", ["auto", "hooks", "loop"])  # torch.func refuses such a forward itself
def test_a_forward_that_changes_the_model_is_named_in_a_warning(impl):
    model = SelfChanging()
    with pytest.warns(UserWarning, match=r"the model's forward changed 'linear\.weight', 'calls' in place"):
        scores.pntk(model, torch.randn(4, 3, 2, 2), implementation=impl)
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3), torch.nn.BatchNorm1d(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # BatchNorm's statistics are the mode's business: no warning
        for bn in ("eval", "batch", "train"):
            scores.pntk(plain, torch.randn(4, 3, 2, 2), bn=bn, implementation=impl)


def test_inputs_and_models_that_hold_no_values_are_refused_as_such():
    model, x = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)), torch.randn(4, 3, 2, 2)
    cases = [
        (lambda: scores.pntk(model, x.to("meta")), ValueError, "inputs are on the meta device"),
        (
            lambda: scores.pntk(copy.deepcopy(model).to("meta"), x),
            ValueError,
            "the model is on the meta device",
        ),
        (lambda: scores.pntk(model, x, device="meta"), ValueError, "device 'meta' holds no values"),
        (lambda: scores.pntk(model, x.flatten(1).to_sparse()), TypeError, "inputs must be a dense tensor"),
        (
            lambda: scores.pntk(model, torch.nested.nested_tensor([x[0], x[1]])),
            TypeError,
            "inputs must be a dense tensor; got a nested one",
        ),
        (lambda: scores.layer_kernels(model, x, groups="0"), TypeError, "groups must be a callable"),
        (lambda: scores.layer_kernels(model, x, groups=["1"]), TypeError, "groups must be a callable"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()


def test_a_kernel_beyond_the_models_precision_is_refused_not_returned_as_inf():
    """Inputs of 1e20 give finite float32 outputs, and per-sample gradient products beyond float32's
    range: every implementation refuses, naming the fix."""
    model = torch.nn.Linear(5, 3)
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0)) * 1e20
    for impl in ("auto", "func", "loop"):
        with pytest.raises(ValueError) as refused:
            scores.pntk(model, x, implementation=impl)
        assert str(refused.value) == KINDS["a kernel that overflows its precision"].message
    assert torch.isfinite(scores.pntk(model.double(), x.double())).all()  # the fix works
