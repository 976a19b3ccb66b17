"""BatchNorm modes: how normalisation statistics enter the kernel.

Every kernel computation runs the model with dropout off and each BatchNorm in one explicit mode:

- ``"eval"``: the running statistics (eval mode). Samples are independent.
- ``"batch"``: this minibatch's statistics (mean, biased variance) used as constants, the same as
  eval mode after setting the running statistics to the batch's. Samples are independent.
- ``"train"``: train-mode statistics with gradients flowing through them (TE-NAS semantics).
  Samples are coupled.

An InstanceNorm that tracks running statistics reads them in ``"eval"``, and each sample's own
statistics in ``"batch"`` and ``"train"``, as in training.

The model is restored afterwards: ``training`` flags, forwards, and buffers are left as found (no
running statistic is ever updated).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from scores.modes import BN_MODES

_STOCK_BN_FORWARDS = (nn.modules.batchnorm._BatchNorm.forward, nn.SyncBatchNorm.forward)


def check_bn_mode(bn: str) -> None:
    """Raise ValueError unless ``bn`` names a BatchNorm mode."""
    if bn not in BN_MODES:
        raise ValueError(f"unknown bn mode {bn!r}; choose one of: {', '.join(BN_MODES)}")


def batch_stats(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance of ``x`` (N, C, ...), detached: shapes (C,), (C,).

    Read off PyTorch's fused batch-norm kernel (several times faster on CPUs than separate
    reductions); the variance comes back as ``invstd⁻² − eps``, exact to float rounding.
    """
    with torch.no_grad():
        _, mean, invstd = torch.native_batch_norm(x, None, None, None, None, True, 0.0, eps)
    return mean, invstd.pow(-2) - eps


class _BatchNormPatch:
    """Forward of one BatchNorm module under a given mode.

    In ``"batch"`` mode the statistics are computed from the batch at each call, unless
    :meth:`BatchNormControl.freeze` has recorded them: then the recorded statistics are replayed call
    by call, so that a per-sample (vmapped) forward normalises with the whole batch's statistics.
    """

    def __init__(self, module: nn.modules.batchnorm._BatchNorm, mode: str) -> None:
        self.module = module
        self.mode = mode
        self.recorded: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.recording = False
        self.calls = 0
        self.used: dict[int, tuple[weakref.ref, tuple[torch.Tensor, torch.Tensor]]] = {}

    def stats(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The (mean, var) this call normalises with; (None, None) means train-mode batch stats."""
        m = self.module
        if self.mode == "eval":
            return m.running_mean, m.running_var
        if self.mode == "train":
            return None, None
        if self.recorded is not None and not self.recording:
            stats = self.recorded[self.calls % len(self.recorded)]
        else:
            stats = batch_stats(x, self.module.eps)
            self.used[id(x)] = (weakref.ref(x), stats)
            if self.recording:
                self.recorded.append(stats)
        self.calls += 1
        return stats

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        m = self.module
        mean, var = self.stats(x)
        return F.batch_norm(x, mean, var, m.weight, m.bias, mean is None, 0.0, m.eps)


class BatchNormControl:
    """Handle on the patched BatchNorm modules of a model inside :func:`bn_mode`."""

    def __init__(self, patches: dict[nn.Module, _BatchNormPatch]) -> None:
        self.patches = patches

    def mode_of(self, module: nn.Module) -> str | None:
        """The mode a BatchNorm module runs in, None for other modules."""
        patch = self.patches.get(module)
        return patch.mode if patch is not None else None

    def stats_of(self, module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, var) that ``module`` normalised ``x`` with: its running statistics in
        ``"eval"`` mode, else the batch statistics of ``x`` (reused from the forward pass)."""
        patch = self.patches[module]
        if patch.mode == "eval":
            return module.running_mean, module.running_var
        ref, stats = patch.used.get(id(x), (None, None))
        return stats if ref is not None and ref() is x else batch_stats(x, module.eps)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record the batch statistics of each BatchNorm call made inside the block."""
        for p in self.patches.values():
            p.recorded, p.recording, p.calls = [], True, 0
        try:
            yield
        finally:
            for p in self.patches.values():
                p.recording = False

    def restart(self) -> None:
        """Start replaying recorded statistics from each module's first call."""
        for p in self.patches.values():
            p.calls = 0


@contextmanager
def bn_mode(model: nn.Module, mode: str) -> Iterator[BatchNormControl]:
    """Run ``model`` with dropout off and every BatchNorm in ``mode``; restore it afterwards.

    Raises ValueError for an unknown mode, for ``"eval"`` on a BatchNorm without running
    statistics, and for BatchNorm subclasses that override ``forward``.
    """
    check_bn_mode(mode)
    patches: dict[nn.Module, _BatchNormPatch] = {}
    for name, m in model.named_modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            continue
        if type(m).forward not in _STOCK_BN_FORWARDS:
            raise ValueError(
                f"BatchNorm subclass {type(m).__name__} at '{name}' overrides forward(), so its "
                "statistics mode cannot be set; use a standard torch.nn BatchNorm"
            )
        if mode == "eval" and (m.running_mean is None or m.running_var is None):
            raise ValueError(
                f"bn='eval' needs running statistics, but '{name}' has track_running_stats=False; "
                "use bn='batch' or bn='train'"
            )
        if "forward" in vars(m):
            raise ValueError(f"module '{name}' has a per-instance forward; remove it before scoring")
        patches[m] = _BatchNormPatch(m, mode)
    flags = {m: m.training for m in model.modules()}
    model.eval()
    for m, patch in patches.items():
        m.forward = patch
    # An InstanceNorm that tracks running statistics reads them in eval mode; in the other modes it
    # normalises each sample by its own statistics, as in training, with its running ones put aside
    # (so that none is updated).
    tracked = [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.instancenorm._InstanceNorm) and m.track_running_stats
    ]
    aside = {m: (m.running_mean, m.running_var) for m in tracked} if mode != "eval" else {}
    for m in aside:
        m.track_running_stats, m.running_mean, m.running_var = False, None, None
    try:
        yield BatchNormControl(patches)
    finally:
        for m in patches:
            del m.forward
        for m, (mean, var) in aside.items():
            m.track_running_stats, m.running_mean, m.running_var = True, mean, var
        for m, training in flags.items():
            m.training = training
