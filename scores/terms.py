"""Per-parameter gradient terms and their Gram matrices.

A *term* holds one parameter's per-sample gradients in factored form, as captured from one
forward and one backward pass. In the independent BatchNorm modes a gradient ``g`` has shape
``(N, ...)``: row ``n`` is sample ``n``'s gradient. In the coupled mode it has a leading row axis,
``(R, N, ...)``: the gradient of output row ``r`` reaches every sample ``n`` of the batch.

``term.gram(chunking)`` returns the ``(N, N)`` float64 Gram of the independent per-sample
gradients, choosing per term between materialising them and the "ghost" identity
``<Σ_t g_it a_itᵀ, Σ_s g_js a_jsᵀ> = Σ_ts (a_it·a_js)(g_it·g_js)``, whichever costs less.
``term.row_grads()`` returns the coupled per-row gradients ``(R, D)``.
Products are formed in the model's dtype and accumulated in float64.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Cost model, in multiply-adds at full GEMM speed (calibrated on an AVX-512 CPU). Forming one
# element of a per-sample gradient is memory-bound below _WRITE_COST multiply-adds; one element of
# the ghost methods' pairwise matrices costs _ELEMENTWISE_COST to multiply and sum, and
# _SHIFT_COST to add in for each kernel tap of the shifted variant.
_WRITE_COST = 96
_ELEMENTWISE_COST = 16
_SHIFT_COST = 32
# Rows of the pairwise blocks the ghost methods aim for: large enough for efficient GEMMs, small
# enough that skipping the blocks below the diagonal pays (measured best for each method).
_GHOST_ROWS = 256
_SHIFT_ROWS = 512
# Shape thresholds for forming per-sample convolution gradients (measured): below _FEW_CHANNELS
# input channels, from unfolded patches; from _GROUPED_MIN_POSITIONS output positions, with one
# grouped convolution (the batch as groups); else one batched product per kernel tap.
_FEW_CHANNELS = 8
_GROUPED_MIN_POSITIONS = 256


def materialise_cost(n: int, t: int, groups: int, a: int, b: int) -> int:
    """Multiply-adds to form ``n`` per-sample gradients over ``t`` positions and take their Gram."""
    return n * groups * a * b * (max(t, _WRITE_COST) + n)


def ghost_cost(n: int, t: int, groups: int, a: int, b: int) -> int:
    """Multiply-adds of the ghost identity with ``a``-long inputs and ``b``-long output gradients."""
    return (n * t) ** 2 * groups * (a + b + _ELEMENTWISE_COST)


@dataclass(frozen=True)
class Chunking:
    """How large the temporaries of a Gram computation may grow.

    ``samples``: the user's ``chunk_size`` (samples per block) or None for automatic;
    ``elements``: the automatic cap on a temporary's number of elements.
    """

    samples: int | None
    elements: int

    def ghost_block(self, n: int, rows: int, groups: int = 1, target: int = _GHOST_ROWS) -> int:
        """Samples per block of a ghost method's pairwise matrices, ``rows`` rows per sample.

        Blocks aim at ``target`` rows, within the cap on three (groups, rows, rows) temporaries.
        """
        if self.samples is not None:
            return max(1, min(n, self.samples))
        fits = int(math.sqrt(self.elements / (3 * groups))) // rows
        return max(1, min(n, target // rows, fits))

    def channel_block(self, n: int, channels: int, per_channel: int) -> int:
        """Output channels per block when materialising ``n`` per-sample gradients."""
        if self.samples is not None:
            return max(1, channels * min(n, self.samples) // n)
        return max(1, min(channels, self.elements // (n * per_channel)))


def gram64(p: torch.Tensor) -> torch.Tensor:
    """``p pᵀ`` for ``p`` (N, D), returned in float64."""
    return (p @ p.T).to(torch.float64)


def symmetric_blocks(n: int, step: int):
    """Yield ``(rows, cols)`` slice pairs covering the upper block triangle of an (n, n) matrix."""
    for i0 in range(0, n, step):
        for j0 in range(i0, n, step):
            yield slice(i0, min(n, i0 + step)), slice(j0, min(n, j0 + step))


def _set_block(k: torch.Tensor, rows: slice, cols: slice, block: torch.Tensor) -> None:
    k[rows, cols] = block
    k[cols, rows] = block.T


class Term(ABC):
    """One parameter's per-sample (or per-row) gradients, factored."""

    @abstractmethod
    def gram(self, chunking: Chunking) -> torch.Tensor:
        """Gram of the independent per-sample gradients: (N, N) float64."""

    @abstractmethod
    def row_grads(self) -> torch.Tensor:
        """Coupled per-row gradients (R, D), summed over the batch's samples."""

    def as_outer(self) -> Outer:
        """This term as an :class:`Outer`, for combining repeated calls of a module."""
        raise TypeError(f"{type(self).__name__} cannot be combined with other terms")


@dataclass
class Direct(Term):
    """Gradients given as they are: ``p`` (*L, N, D)."""

    p: torch.Tensor

    def gram(self, chunking: Chunking) -> torch.Tensor:
        return gram64(self.p)

    def row_grads(self) -> torch.Tensor:
        return self.p.sum(-2)


@dataclass
class Outer(Term):
    """Sum of outer products: sample n's gradient for group k is ``Σ_t g[n,t,k]ᵀ a[n,t,k]``.

    ``a``: (N, T, G, A) layer inputs (e.g. unfolded patches); ``g``: (*L, N, T, G, B) output
    gradients. The gradient is laid out (G, B, A), matching a weight of shape (G·B, A).
    """

    a: torch.Tensor
    g: torch.Tensor

    def as_outer(self) -> Outer:
        return self

    def gram(self, chunking: Chunking) -> torch.Tensor:
        n, t, groups, a = self.a.shape
        b = self.g.shape[-1]
        if ghost_cost(n, t, groups, a, b) < materialise_cost(n, t, groups, a, b):
            return ghost_gram(self.a, self.g, chunking)
        step = chunking.channel_block(n, b, groups * a)
        k = torch.zeros(n, n, dtype=torch.float64, device=self.a.device)
        for b0 in range(0, b, step):
            p = torch.einsum("ntgb,ntga->ngba", self.g[..., b0 : b0 + step], self.a)
            k += gram64(p.reshape(n, -1))
        return k

    def row_grads(self) -> torch.Tensor:
        r, n, t, groups, b = self.g.shape
        g = self.g.reshape(r, n * t, groups, b)
        a = self.a.reshape(n * t, groups, -1)
        return torch.einsum("rugb,uga->rgba", g, a).reshape(r, -1)


def ghost_gram(a: torch.Tensor, g: torch.Tensor, chunking: Chunking) -> torch.Tensor:
    """``K[i,j] = Σ_k Σ_ts (a[i,t,k]·a[j,s,k]) (g[i,t,k]·g[j,s,k])`` in sample blocks.

    ``a``: (N, T, G, A); ``g``: (N, T, G, B). Returns (N, N) float64.
    """
    n, t, groups, _ = a.shape
    af = a.permute(2, 0, 1, 3).reshape(groups, n, t, -1)
    gf = g.permute(2, 0, 1, 3).reshape(groups, n, t, -1)
    k = torch.zeros(n, n, dtype=torch.float64, device=a.device)
    for rows, cols in symmetric_blocks(n, chunking.ghost_block(n, t, groups)):
        ar, ac = af[:, rows].flatten(1, 2), af[:, cols].flatten(1, 2)
        gr, gc = gf[:, rows].flatten(1, 2), gf[:, cols].flatten(1, 2)
        prod = torch.bmm(ar, ac.mT).mul_(torch.bmm(gr, gc.mT))
        ni, nj = ar.shape[1] // t, ac.shape[1] // t
        _set_block(k, rows, cols, prod.view(groups, ni, t, nj, t).sum(dim=(0, 2, 4), dtype=torch.float64))
    return k


def shift_ghost_gram(
    x: torch.Tensor,
    g: torch.Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int],
    chunking: Chunking,
) -> torch.Tensor:
    """The ghost identity for an ungrouped 2-d convolution without unfolding its input.

    The patch Gram ``<a_it, a_js>`` is the sum, over kernel taps δ, of the pixel Gram
    ``<x_i[p(t)+δ], x_j[p(s)+δ]>`` (zero outside the image): C_in-long products instead of
    C_in·k²-long ones. ``x``: (N, C_in, H, W); ``g``: (N, C_out, H_out, W_out). Returns (N, N) float64.
    """
    n, c_in, h, w = x.shape
    c_out, h_out, w_out = g.shape[1:]
    xf = x.permute(2, 3, 0, 1).reshape(h * w, n, c_in)
    gf = g.permute(2, 3, 0, 1).reshape(h_out * w_out, n, c_out)
    taps = []
    for dy in range(kernel[0]):
        rows = _tap_range(h, h_out, dy * dilation[0] - padding[0], stride[0])
        for dx in range(kernel[1]):
            cols = _tap_range(w, w_out, dx * dilation[1] - padding[1], stride[1])
            if rows is not None and cols is not None:
                taps.append((rows, cols))
    k = torch.zeros(n, n, dtype=torch.float64, device=x.device)
    for rows, cols in symmetric_blocks(
        n, chunking.ghost_block(n, max(h * w, h_out * w_out), target=_SHIFT_ROWS)
    ):
        ni, nj = rows.stop - rows.start, cols.stop - cols.start
        pixels = (xf[:, rows].reshape(-1, c_in) @ xf[:, cols].reshape(-1, c_in).T).view(h, w, ni, h, w, nj)
        grads = (gf[:, rows].reshape(-1, c_out) @ gf[:, cols].reshape(-1, c_out).T).view(
            h_out, w_out, ni, h_out, w_out, nj
        )
        patches = torch.zeros_like(grads)
        for (out_y, in_y), (out_x, in_x) in taps:
            patches[out_y, out_x, :, out_y, out_x, :] += pixels[in_y, in_x, :, in_y, in_x, :]
        _set_block(k, rows, cols, patches.mul_(grads).sum(dim=(0, 1, 3, 4), dtype=torch.float64))
    return k


def _tap_range(size: int, size_out: int, offset: int, stride: int) -> tuple[slice, slice] | None:
    """(output slice, input slice) of the output positions whose tap at ``offset`` lands inside.

    Output position ``a`` reads input position ``a·stride + offset`` of ``size``.
    """
    lo = max(0, -(offset // stride))
    hi = min(size_out, (size - 1 - offset) // stride + 1)
    if lo >= hi:
        return None
    start = lo * stride + offset
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * stride + 1, stride)


@dataclass
class ConvOuter(Term):
    """A 2-d convolution's weight gradient, kept unexpanded until a method is chosen.

    ``x``: (N, C_in, H, W) input before zero padding ``padding`` (rows, columns);
    ``g``: (*L, N, C_out, H_out, W_out).
    Materialising uses the grouped-convolution trick (the batch as groups) when the output has
    many positions, and unfolded patches otherwise; the ghost method always unfolds.
    """

    x: torch.Tensor
    g: torch.Tensor
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int]
    groups: int

    def as_outer(self) -> Outer:
        n = self.x.shape[0]
        cols = F.unfold(self.x, self.kernel, dilation=self.dilation, padding=self.padding, stride=self.stride)
        t = cols.shape[-1]
        a = cols.view(n, self.groups, -1, t).permute(0, 3, 1, 2)
        lead = self.g.shape[: self.g.dim() - 4]
        g = self.g.reshape(*lead, n, self.groups, -1, t).movedim(-1, -3)
        return Outer(a, g)

    def gram(self, chunking: Chunking) -> torch.Tensor:
        n, c_in, h, w = self.x.shape
        c_out, h_out, w_out = self.g.shape[-3:]
        t, taps = h_out * w_out, self.kernel[0] * self.kernel[1]
        a, b = c_in // self.groups * taps, c_out // self.groups
        costs = {
            "materialise": materialise_cost(n, t, self.groups, a, b),
            "ghost": ghost_cost(n, t, self.groups, a, b),
        }
        if self.groups == 1:
            costs["shift"] = (n * h * w) ** 2 * c_in + (n * t) ** 2 * (
                b + taps * _SHIFT_COST + _ELEMENTWISE_COST
            )
        method = min(costs, key=costs.get)
        if method == "shift":
            return shift_ghost_gram(
                self.x, self.g, self.kernel, self.stride, self.dilation, self.padding, chunking
            )
        # Materialising: the fastest way to form per-sample gradients depends on the shape.
        if method == "ghost" or self.groups > 1 or c_in < _FEW_CHANNELS:
            return self.as_outer().gram(chunking)  # unfolded patches (small when C_in is)
        if self.kernel == (1, 1) and self.padding == (0, 0):
            return self._pointwise_gram(chunking)
        if t >= _GROUPED_MIN_POSITIONS:
            return self._grouped_conv_gram(chunking)
        return self._tap_gram(chunking)

    def _pointwise_gram(self, chunking: Chunking) -> torch.Tensor:
        """Materialise a 1×1 convolution's per-sample gradients as batched ``g xᵀ`` products."""
        x = self.x[:, :, :: self.stride[0], :: self.stride[1]]
        return self._tap_products([x], chunking)

    def _tap_gram(self, chunking: Chunking) -> torch.Tensor:
        """Materialise per-sample gradients one kernel tap at a time: the gradient of tap δ is
        ``g · shift_δ(x)ᵀ`` (C_out × C_in per sample), and its Gram is taken while in cache."""
        x = F.pad(self.x, (self.padding[1], self.padding[1], self.padding[0], self.padding[0]))
        h_out, w_out = self.g.shape[-2:]
        taps = []
        for dy in range(self.kernel[0]):
            for dx in range(self.kernel[1]):
                y0, x0 = dy * self.dilation[0], dx * self.dilation[1]
                taps.append(
                    x[
                        :,
                        :,
                        y0 : y0 + self.stride[0] * (h_out - 1) + 1 : self.stride[0],
                        x0 : x0 + self.stride[1] * (w_out - 1) + 1 : self.stride[1],
                    ]
                )
        return self._tap_products(taps, chunking)

    def _tap_products(self, taps: list[torch.Tensor], chunking: Chunking) -> torch.Tensor:
        """Σ over taps of the Gram of ``g · tapᵀ``, each tap (N, C_in, H_out, W_out)."""
        n, c_out = self.g.shape[:2]
        g = self.g.reshape(n, c_out, -1)
        step = chunking.channel_block(n, c_out, self.x.shape[1])
        k = torch.zeros(n, n, dtype=torch.float64, device=self.x.device)
        for tap in taps:
            shifted = tap.reshape(n, tap.shape[1], -1).mT
            for b0 in range(0, c_out, step):
                k += gram64(torch.bmm(g[:, b0 : b0 + step], shifted).reshape(n, -1))
        return k

    def _grouped_conv_gram(self, chunking: Chunking) -> torch.Tensor:
        """Materialise per-sample gradients with one convolution, the batch as groups."""
        n, c_in = self.x.shape[:2]
        c_out, h_out, w_out = self.g.shape[-3:]
        step = chunking.channel_block(n, c_out, c_in * self.kernel[0] * self.kernel[1])
        xs = self.x.reshape(1, n * c_in, *self.x.shape[2:])
        k = torch.zeros(n, n, dtype=torch.float64, device=self.x.device)
        for b0 in range(0, c_out, step):
            gb = self.g[:, b0 : b0 + step]
            width = gb.shape[1]
            p = torch.nn.grad.conv2d_weight(
                xs,
                (n * width, c_in, *self.kernel),
                gb.reshape(1, n * width, h_out, w_out),
                stride=self.stride,
                padding=self.padding,
                dilation=self.dilation,
                groups=n,
            )
            k += gram64(p.reshape(n, -1))
        return k

    def row_grads(self) -> torch.Tensor:
        return self.as_outer().row_grads()


@dataclass
class Lookup(Term):
    """An embedding's gradient: sample n's gradient is ``Σ_t e_{idx[n,t]} g[n,t]ᵀ``.

    ``idx``: (N, T) indices into ``num`` rows; ``g``: (*L, N, T, B).
    """

    idx: torch.Tensor
    g: torch.Tensor
    num: int

    def gram(self, chunking: Chunking) -> torch.Tensor:
        n, t = self.idx.shape
        b = self.g.shape[-1]
        ghost = (n * t) ** 2 * (b + _ELEMENTWISE_COST)
        materialise = n * self.num * b * (_WRITE_COST + n)
        if materialise <= ghost:
            return gram64(self._scatter(self.g.reshape(1, n, t, b)).squeeze(0).reshape(n, -1))
        flat_idx = self.idx.reshape(-1)
        same = flat_idx[:, None] == flat_idx[None, :]
        gf = self.g.reshape(n * t, b)
        prod = (gf @ gf.T) * same
        return prod.view(n, t, n, t).sum(dim=(1, 3), dtype=torch.float64)

    def _scatter(self, g: torch.Tensor) -> torch.Tensor:
        """Per-(row, sample) gradients (R, N, num, B) from ``g`` (R, N, T, B)."""
        r, n, t, b = g.shape
        out = g.new_zeros(r, n, self.num, b)
        index = self.idx.reshape(1, n, t, 1).expand(r, n, t, b)
        return out.scatter_add_(2, index, g)

    def row_grads(self) -> torch.Tensor:
        r = self.g.shape[0]
        return self._scatter(self.g).sum(1).reshape(r, -1)


def combine(terms: list[Term]) -> Term:
    """One term for a module called several times: the gradient is the sum over calls."""
    if len(terms) == 1:
        return terms[0]
    if all(isinstance(t, Direct) for t in terms):
        return Direct(torch.stack([t.p for t in terms]).sum(0))
    if all(isinstance(t, Lookup) for t in terms):
        return Lookup(torch.cat([t.idx for t in terms], 1), torch.cat([t.g for t in terms], -2), terms[0].num)
    outers = [t.as_outer() for t in terms]
    return Outer(torch.cat([o.a for o in outers], 1), torch.cat([o.g for o in outers], -3))
