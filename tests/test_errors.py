"""Bad input gets one clear line naming the problem and the fix."""

import pytest
import torch
from torch import nn

import scores


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))


X = torch.randn(6, 4)

CASES = [
    (
        lambda: scores.pntk(net().requires_grad_(False), X),
        ValueError,
        "model has no trainable parameters .* unfreeze some with p.requires_grad_\\(True\\)",
    ),
    (lambda: scores.pntk(nn.ReLU(), X), ValueError, "no trainable parameters"),
    (lambda: scores.pntk("resnet", X), TypeError, "model must be a torch.nn.Module; got str"),
    (
        lambda: scores.pntk(net(), X.numpy()),
        TypeError,
        "inputs must be a torch.Tensor batch of shape \\(N, ...\\); got ndarray "
        "\\(convert with torch.as_tensor\\)",
    ),
    (lambda: scores.pntk(net(), [[0.0] * 4] * 6), TypeError, "got list"),
    (
        lambda: scores.pntk(net(), torch.ones(6, 4, dtype=torch.int64)),
        TypeError,
        "inputs must be a floating-point batch tensor; got dtype torch.int64",
    ),
    (
        lambda: scores.pntk(net(), torch.ones(6, 4, dtype=torch.bool)),
        TypeError,
        "floating-point batch tensor",
    ),
    (lambda: scores.pntk(net(), torch.randn(4)), ValueError, "at least 2 dimensions; got shape \\(4,\\)"),
    (lambda: scores.pntk(net(), X[:1]), ValueError, "need at least 2 samples to form a kernel; got N=1"),
    (
        lambda: scores.pntk(nn.Linear(4, 3), torch.randn(6, 2, 4)),
        ValueError,
        "model output must be a tensor of shape \\(N, O\\) = \\(6, O\\); got \\(6, 2, 3\\)",
    ),
    (lambda: scores.pntk(nn.Sequential(nn.Linear(4, 3), nn.Flatten(0)), X), ValueError, "got \\(18,\\)"),
    (
        lambda: scores.pntk(net(), X * float("inf")),
        ValueError,
        "model output has \\d+ non-finite values \\(NaN/inf\\) of 18; check the model's initialisation",
    ),
    (
        lambda: scores.pntk(net(), X, bn="frozen"),
        ValueError,
        "unknown bn mode 'frozen'; choose one of: eval, batch, train",
    ),
    (
        lambda: scores.pntk(net(), X, implementation="jax"),
        ValueError,
        "unknown implementation 'jax'; choose one of: auto, hooks, func, loop",
    ),
    (
        lambda: scores.pntk(net(), X, chunk_size=0),
        ValueError,
        "chunk_size must be a positive integer or None",
    ),
    (
        lambda: scores.pntk(
            nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, track_running_stats=False)), X, bn="eval"
        ),
        ValueError,
        "bn='eval' needs running statistics.*use bn='batch' or bn='train'",
    ),
    (lambda: scores.spectrum(torch.ones(3)), ValueError, "kernel must be a square \\(N, N\\) tensor"),
]


@pytest.mark.parametrize("call,kind,message", CASES, ids=[c[2][:30] for c in CASES])
def test_bad_input_message(call, kind, message):
    with pytest.raises(kind, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_custom_batchnorm_forward_is_refused():
    class MyBN(nn.BatchNorm1d):
        def forward(self, x):
            return super().forward(x) * 2

    model = nn.Sequential(nn.Linear(4, 3), MyBN(3))
    with pytest.raises(ValueError, match="BatchNorm subclass MyBN at '1' overrides forward"):
        scores.pntk(model, X)


def test_singular_kernel_is_not_an_error():
    torch.manual_seed(0)
    result = scores.score(nn.Linear(4, 1, bias=False), torch.randn(8, 4))  # rank ≤ 4 < N = 8
    assert result["condition_number"] == float("inf")


def test_warnings_reach_the_user_as_one_line_each():
    import warnings

    from ntknas.core.errors import InputWarning, warnings_to

    shown = []
    line = "skipped 1 entry of imgs that cannot be images: imgs/a/x.png (a FIFO)"
    with warnings_to(shown.append):
        warnings.warn(line, InputWarning, stacklevel=1)
        warnings.warn(line, InputWarning, stacklevel=1)  # every time, not once per place
        for _ in range(2):  # a plugin's or torch's: once per place, as Python's filter says
            warnings.warn("something else\n  at the plugin's line 3", UserWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    assert shown == [line, line, "something else", "DeprecationWarning: old API"]


@pytest.mark.parametrize(
    "error,shown",
    [
        (
            MemoryError(),
            "error: not enough memory; use a smaller --batch-size or --image-size, a smaller model, ",
        ),
        (
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 79 GiB total)"),
            "error: not enough memory (it tried to allocate 20.00 GiB); use a smaller --batch-size",
        ),
        (
            RuntimeError(
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                "memory: you tried to allocate 480000000000 bytes. Error code 12 (Cannot allocate memory)"
            ),
            "error: not enough memory (it tried to allocate 480000000000 bytes); use a smaller --batch-size",
        ),
        (
            ImportError("libtorch_cpu.so: failed to map segment from shared object", name="torch._C"),
            "error: not enough memory to load a library (libtorch_cpu.so: failed to map segment from "
            "shared object): the process's address-space limit (ulimit -v) is too low; raise it",
        ),
        (
            OSError(24, "Too many open files"),
            "error: too many open files (Too many open files): raise the limit (ulimit -n, now ",
        ),
    ],
)
def test_running_out_of_memory_is_one_line(error, shown, capsys):
    import typer

    from ntknas.cli.common import user_errors

    with pytest.raises(typer.Exit) as exit_, user_errors():
        raise error
    assert exit_.value.exit_code == 2
    shown_line = capsys.readouterr().err
    assert shown_line.startswith(shown)
    from test_bad_input import KINDS, matches

    documented = {
        ImportError: KINDS["a memory limit below what torch maps"].message,
        OSError: KINDS["too many open files"].message.replace("now 12", "now …"),
    }
    if type(error) in documented:
        assert matches("error: " + documented[type(error)], shown_line.strip()), shown_line


def test_other_runtime_errors_are_not_taken_for_memory():
    from ntknas.cli.common import user_errors

    with pytest.raises(RuntimeError, match="a bug"), user_errors():
        raise RuntimeError("a bug")


def test_an_extras_hint_fits_how_ntknas_was_installed(monkeypatch, tmp_path):
    from ntknas.core import extras

    checkout = extras.CHECKOUT
    assert extras.install_hint("plot") == f'pip install -e ".[plot]" (in {checkout})'  # the tests' checkout
    monkeypatch.setattr(extras, "CHECKOUT", tmp_path / "site-packages")  # a wheel: no pyproject.toml beside
    assert extras.install_hint("plot") == "pip install 'ntknas[plot]'"
    assert extras.install_hint("dashboard") == "pip install 'ntknas[dashboard]'"
