"""Whether a model treats the samples of a batch apart: the fast paths (hooks, torch.func) take
row n of every layer's input and gradient as sample n's, which holds only when no sample's output
depends on another sample."""

from __future__ import annotations

import torch
from torch import nn

from scores.bn import BatchNormControl

# How far a row computed in a batch of two may be from the same row computed in the whole batch,
# relative to the largest output: float32 kernels for other batch sizes round differently.
TOLERANCE = 1e-4


class Coupled(Exception):
    """Only the per-sample loop scores this model exactly: a sample's output depends on other
    samples of the batch, or a gradient hook of its own acts where a fast path reads the gradient;
    the message says which."""


def check_rows_alone(model: nn.Module, x: torch.Tensor, out: torch.Tensor, bn: BatchNormControl) -> None:
    """Coupled unless the first and last samples of ``x`` (N, ...), run as a batch of their own,
    give the rows ``out`` (N, O) holds for them (within ``TOLERANCE``), BatchNorm replaying the
    statistics it recorded for the whole batch (``bn.recording()`` around the pass that gave
    ``out``). A model that mixes rows (a mean over the batch, a roll, a layer across the sample
    axis) fails it; one whose rows are apart passes at the cost of a forward pass on two samples."""
    n = x.shape[0]
    if n < 2:
        return
    rows = [0, n - 1] if n > 2 else [0]
    state = [(t, t._version) for t in (*model.parameters(), *model.buffers())]
    bn.restart()
    try:
        with torch.no_grad():
            alone = model(x[rows])
    except Exception as e:  # a layer across the sample axis, a shape made for N rows
        raise Coupled(f"its forward fails on {len(rows)} of the batch's samples ({type(e).__name__})") from e
    if any(t._version != version for t, version in state):
        return  # its forward changes its own weights or counters: no two passes compare (it is warned of)
    expected = out.detach()[rows]
    if not isinstance(alone, torch.Tensor) or alone.shape != expected.shape:
        raise Coupled(f"its output for {len(rows)} of the batch's samples has another shape")
    scale = float(expected.abs().max())
    if not torch.allclose(alone.to(expected.dtype), expected, rtol=TOLERANCE, atol=TOLERANCE * scale):
        raise Coupled("a sample's output depends on the other samples of the batch")
