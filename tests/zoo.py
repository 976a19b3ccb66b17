"""Small models covering every layer kind the scorer handles, and an independent reference pNTK."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class Flatten(nn.Module):
    def forward(self, x):
        return x.flatten(1)


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 7), nn.LayerNorm(7), nn.Tanh(), nn.Dropout(0.5), nn.Linear(7, 3))


def conv_bn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        Flatten(),
        nn.Linear(6, 5),
    )


def conv_geometry() -> nn.Module:
    """Dilation, groups, depthwise, 1×1, padding modes and asymmetric 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1, groups=2, padding_mode="reflect"),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6, padding_mode="circular"),
        nn.Conv2d(6, 4, (2, 4), padding="same"),
        nn.Conv2d(4, 4, 1, stride=2),
        nn.GroupNorm(2, 4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, stride=(2, 1), padding=(0, 1)),
        Flatten(),
        nn.LazyLinear(4),
    )


def small_wide_conv() -> nn.Module:
    """Few output positions and many channels: the shifted ghost method's regime."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, dilation=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        Flatten(),
        nn.Linear(16 * 2 * 2, 3),
    )


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(4)
        self.c2 = nn.Conv1d(4, 4, 3, stride=2, dilation=2, padding=2, groups=2)
        self.fc = nn.Linear(4 * 6, 3)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.bn(self.c1(x))))).flatten(1))


class TokenNet(nn.Module):
    """Embedding (with padding index) → LayerNorm over tokens → Linear applied per token."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 5, padding_idx=0)
        self.norm = nn.LayerNorm(5)
        self.proj = nn.Linear(5, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, idx):
        return self.head(torch.tanh(self.proj(self.norm(self.emb(idx)))).mean(1))


class SharedConv(nn.Module):
    """One convolution called twice (weight sharing), and BatchNorm1d on features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.bn = nn.BatchNorm1d(3)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        h = F.relu(self.conv(F.relu(self.conv(x))))
        return self.fc(self.bn(h.mean((2, 3))))


class ParamOutsideModule(nn.Module):
    """Uses a Linear's weight directly besides calling the module: the fast path must notice."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(x)) + F.linear(x, self.fc.weight))


class DroppedCall(nn.Module):
    """Calls a Linear and drops its output, then uses its weight through a function: the one call
    the fast path sees adds nothing, and the weight reaches the output only outside it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        self.fc(x)
        return self.out(torch.tanh(F.linear(x, self.fc.weight, self.fc.bias)))


class GradBranch(nn.Module):
    """A branch fed by a tensor that requires grad without coming from a captured layer (a copy
    of the input marked requires_grad, a tensor made to require grad): the fast path's backward
    pass, which starts from the layers that take the input, would never reach it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 2)
        self.b = nn.Linear(6, 2)
        self.c = nn.Linear(6, 2)

    def forward(self, x):
        shift = torch.linspace(-1, 1, 6, dtype=x.dtype).requires_grad_()
        return self.a(x) + self.b(x.clone().requires_grad_()) + self.c(x + shift)


class KeywordCall(nn.Module):
    """Calls its layers with keyword inputs, which forward hooks do not see as arguments."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        return self.out(input=torch.tanh(self.fc(input=x)))


class NoGradFeatures(nn.Module):
    """A frozen feature extractor run under torch.no_grad() inside forward: its layer adds nothing."""

    def __init__(self):
        super().__init__()
        self.features = nn.Linear(6, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        with torch.no_grad():
            h = torch.tanh(self.features(x))
        return self.head(h)


class PerSample(nn.Module):
    """A layer called on each sample alone (or on halves of the batch), the results concatenated."""

    def __init__(self, pieces: int = 0):
        super().__init__()
        self.pieces = pieces
        self.fc = nn.Linear(6, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        parts = x.split(1) if not self.pieces else x.chunk(self.pieces)
        return self.out(torch.tanh(torch.cat([self.fc(p) for p in parts])))


class SequenceFirst(nn.Module):
    """Token-wise layers on a (T, N, F) sequence-first tensor, from (N, T, F) inputs."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 6)
        self.norm = nn.LayerNorm(6)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        h = self.norm(self.fc(x.transpose(0, 1))).transpose(0, 1)
        return self.out(h.mean(1))


class EditedConv(nn.Module):
    """Convolutions whose padding and dilation were set after construction, and one whose
    ``_conv_forward`` scales its weight: the layer computes what its attributes say now."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.a.padding = (0, 0)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.b.dilation, self.b.padding = (2, 2), (2, 2)
        self.c = _DoubledConv(4, 3, 1)
        self.head = nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        return self.head(self.c(torch.tanh(self.b(torch.tanh(self.a(x))))).flatten(1))


class _DoubledConv(nn.Conv2d):
    def _conv_forward(self, x, weight, bias):
        return F.conv2d(x, 2 * weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Scaled(nn.Module):
    """A parametrised layer no handler covers (a bare learnable scale): torch.func fallback."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.fc(x) * self.scale))


def frozen_mlp() -> nn.Module:
    net = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    net[0].weight.requires_grad_(False)
    net[1].bias.requires_grad_(False)
    return net


# name → (constructor, input maker)
ZOO = {
    "mlp": (mlp, lambda g, n: torch.randn(n, 6, generator=g)),
    "conv_bn": (conv_bn, lambda g, n: torch.randn(n, 3, 8, 8, generator=g)),
    "conv_geometry": (conv_geometry, lambda g, n: torch.randn(n, 3, 9, 10, generator=g)),
    "small_wide_conv": (small_wide_conv, lambda g, n: torch.randn(n, 3, 4, 4, generator=g)),
    "conv1d": (Conv1dNet, lambda g, n: torch.randn(n, 2, 11, generator=g)),
    "tokens": (TokenNet, lambda g, n: torch.randint(0, 11, (n, 7), generator=g)),
    "shared_conv": (SharedConv, lambda g, n: torch.randn(n, 3, 5, 5, generator=g)),
    "frozen": (frozen_mlp, lambda g, n: torch.randn(n, 6, generator=g)),
}
NEEDS_FALLBACK = {
    "param_outside": (ParamOutsideModule, lambda g, n: torch.randn(n, 6, generator=g)),
    "scaled": (Scaled, lambda g, n: torch.randn(n, 6, generator=g)),
}


# Models whose forward hides part of its graph from forward hooks, or calls layers on other rows
# than the batch's samples, or layers whose attributes changed after construction: the fast path
# must notice and fall back, or score them right.
class HookedOutputs(nn.Module):
    """Tensor hooks the forward registers on layer outputs (the first layer's and a middle one's),
    scaling their gradients: the kernel is that of the hooked gradients."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.o = nn.Linear(6, 5), nn.Linear(5, 5), nn.Linear(5, 2)

    def forward(self, x):
        h = self.a(x)
        if h.requires_grad:
            h.register_hook(lambda g: -5 * g)
        h = self.b(torch.tanh(h))
        if h.requires_grad:
            h.register_hook(lambda g: 0.5 * g)
        return self.o(torch.tanh(h))


class TokensFirst(nn.Module):
    """An Embedding on sequence-first token ids (T, N), T = N = 6."""

    def __init__(self):
        super().__init__()
        self.e, self.o = nn.Embedding(10, 3), nn.Linear(18, 2)

    def forward(self, x):
        return self.o(self.e(x.t()).transpose(0, 1).flatten(1))


class Rolled(nn.Module):
    """Each sample's output computed from the previous sample's features."""

    def __init__(self):
        super().__init__()
        self.a, self.o = nn.Linear(6, 5), nn.Linear(5, 2)

    def forward(self, x):
        return self.o(torch.tanh(self.a(x)).roll(1, 0))


class Centred(nn.Module):
    """Features centred by their mean over the batch."""

    def __init__(self):
        super().__init__()
        self.a, self.o = nn.Linear(6, 5), nn.Linear(5, 2)

    def forward(self, x):
        h = self.a(x)
        return self.o(torch.tanh(h - h.mean(0, keepdim=True)))


class AcrossSamples(nn.Module):
    """A convolution whose channels are the batch's 6 samples (the input read as unbatched)."""

    def __init__(self):
        super().__init__()
        self.c, self.o = nn.Conv1d(6, 6, 3, padding=1), nn.Linear(5, 2)

    def forward(self, x):
        return self.o(torch.tanh(self.c(x)))


# Models whose output rows depend on other samples: the pNTK is the per-row gradients of one
# whole-batch forward, which only the per-sample loop computes.
COUPLED = {
    "rolled": (Rolled, lambda g, n: torch.randn(n, 6, generator=g)),
    "centred": (Centred, lambda g, n: torch.randn(n, 6, generator=g)),
    "across_samples": (AcrossSamples, lambda g, n: torch.randn(n, 5, generator=g)),
}
HIDDEN = {
    "dropped_call": (DroppedCall, lambda g, n: torch.randn(n, 6, generator=g)),
    "grad_branch": (GradBranch, lambda g, n: torch.randn(n, 6, generator=g)),
    "keyword_call": (KeywordCall, lambda g, n: torch.randn(n, 6, generator=g)),
    "no_grad_features": (NoGradFeatures, lambda g, n: torch.randn(n, 6, generator=g)),
    "per_sample": (PerSample, lambda g, n: torch.randn(n, 6, generator=g)),
    "halves": (lambda: PerSample(2), lambda g, n: torch.randn(n, 6, generator=g)),
    "sequence_first": (SequenceFirst, lambda g, n: torch.randn(n, 3, 5, generator=g)),
    "sequence_first_t_is_n": (SequenceFirst, lambda g, n: torch.randn(n, n, 5, generator=g)),
    "edited_conv": (EditedConv, lambda g, n: torch.randn(n, 3, 7, 7, generator=g)),
    "hooked_outputs": (HookedOutputs, lambda g, n: torch.randn(n, 6, generator=g)),
    "tokens_first": (TokensFirst, lambda g, n: torch.randint(0, 10, (n, n), generator=g)),
}


def make(name: str, n: int = 6, dtype=torch.float64, seed: int = 0):
    """A seeded (model, inputs) pair from the zoo, with randomised BatchNorm running statistics."""
    ctor, inputs = {**ZOO, **NEEDS_FALLBACK, **HIDDEN, **COUPLED}[name]
    torch.manual_seed(seed)
    model = ctor()
    g = torch.Generator().manual_seed(seed + 1)
    x = inputs(g, n)
    if x.is_floating_point():
        x = x.to(dtype)
    with torch.no_grad():
        model(x.float() if x.is_floating_point() else x)  # materialise lazy modules
    model = model.to(dtype)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                if m.affine:
                    m.weight.uniform_(0.5, 1.5, generator=g)
                    m.bias.uniform_(-0.5, 0.5, generator=g)
    return model, x


def flat(grads, params) -> torch.Tensor:
    """One row: the gradients of every parameter, flattened; zeros where unused."""
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params, strict=True)]
    )


def reference_pntk(model: nn.Module, x: torch.Tensor, bn: str) -> torch.Tensor:
    """pNTK by one backward pass per sample, on a copy, written without any of scores' machinery.

    ``batch``: running statistics set to the batch's (momentum 1, then the unbiased variance
    rescaled to the biased one), then eval mode, one sample at a time.
    """
    m = copy.deepcopy(model)
    bns = [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    if bn == "batch":
        m.train()
        for b in bns:
            b.momentum = 1.0
        with torch.no_grad():
            m(x)
        # Each BatchNorm saw n = numel / C values per channel; turn unbiased into biased variance.
        counts = {}

        def count(mod, args, out):
            counts[mod] = args[0].numel() // args[0].shape[1]

        hooks = [b.register_forward_hook(count) for b in bns]
        with torch.no_grad():
            m.eval()
            m(x)
        for h in hooks:
            h.remove()
        with torch.no_grad():
            for b in bns:
                n = counts[b]
                b.running_var.mul_((n - 1) / n)
    m.eval()
    if bn == "train":
        for b in bns:
            b.train()
            b.track_running_stats = False
            b.running_mean = b.running_var = None
    params = [p for p in m.parameters() if p.requires_grad]
    rows = []
    if bn == "train":
        out = m(x)
        for i in range(x.shape[0]):
            grads = torch.autograd.grad(out[i].sum(), params, retain_graph=True, allow_unused=True)
            rows.append(flat(grads, params))
    else:
        for i in range(x.shape[0]):
            out = m(x[i : i + 1])
            grads = torch.autograd.grad(out.sum(), params, allow_unused=True)
            rows.append(flat(grads, params))
    j = torch.stack(rows).double()
    return j @ j.T / out.shape[1]


def reference_entk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Empirical NTK in eval mode, one backward pass per (sample, output)."""
    m = copy.deepcopy(model).eval()
    params = [p for p in m.parameters() if p.requires_grad]
    rows = []
    for i in range(x.shape[0]):
        out = m(x[i : i + 1])[0]
        for a in range(out.shape[0]):
            grads = torch.autograd.grad(out[a], params, retain_graph=True, allow_unused=True)
            rows.append(flat(grads, params))
    j = torch.stack(rows).double()
    return j @ j.T
