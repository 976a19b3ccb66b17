"""Each Gram method of each gradient term against materialised per-sample gradients."""

import pytest
import torch
import torch.nn.functional as F

from scores.terms import Chunking, ConvOuter, Direct, Lookup, Outer, combine, ghost_gram, shift_ghost_gram

AUTO = Chunking(None, 2**26)


def gram(p: torch.Tensor) -> torch.Tensor:
    return p.reshape(p.shape[0], -1) @ p.reshape(p.shape[0], -1).T


def rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def test_outer_ghost_and_materialise_agree_with_einsum():
    g = torch.Generator().manual_seed(0)
    for n, t, groups, a, b in [(5, 1, 1, 7, 3), (4, 6, 2, 5, 3), (3, 9, 1, 40, 30)]:
        av = torch.randn(n, t, groups, a, generator=g, dtype=torch.float64)
        gv = torch.randn(n, t, groups, b, generator=g, dtype=torch.float64)
        ref = gram(torch.einsum("ntgb,ntga->ngba", gv, av))
        assert rel(ghost_gram(av, gv, AUTO), ref) < 1e-13
        assert rel(ghost_gram(av, gv, Chunking(2, 2**26)), ref) < 1e-13
        assert rel(Outer(av, gv).gram(Chunking(1, 2**26)), ref) < 1e-13


CONVS = [
    # (c_in, c_out, size, kernel, stride, dilation, padding)
    (3, 4, (6, 6), (3, 3), (1, 1), (1, 1), (1, 1)),
    (3, 5, (7, 6), (3, 3), (2, 2), (1, 1), (1, 1)),
    (2, 3, (9, 9), (3, 3), (1, 1), (2, 2), (2, 2)),
    (2, 3, (8, 7), (2, 4), (2, 1), (1, 1), (0, 2)),
    (4, 2, (1, 11), (1, 3), (1, 2), (1, 2), (0, 2)),
    (5, 6, (3, 3), (3, 3), (1, 1), (1, 1), (1, 1)),
    (3, 3, (34, 33), (3, 3), (1, 1), (1, 1), (1, 1)),
]


@pytest.mark.parametrize("c_in,c_out,size,kernel,stride,dilation,padding", CONVS)
def test_conv_methods_agree(c_in, c_out, size, kernel, stride, dilation, padding):
    gen = torch.Generator().manual_seed(1)
    n = 5
    x = torch.randn(n, c_in, *size, generator=gen, dtype=torch.float64)
    w = torch.randn(c_out, c_in, *kernel, generator=gen, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)
    g = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    per_sample = torch.stack(
        [
            torch.autograd.grad(
                F.conv2d(x[i : i + 1], w, stride=stride, padding=padding, dilation=dilation), w, g[i : i + 1]
            )[0]
            for i in range(n)
        ]
    )
    ref = gram(per_sample)
    term = ConvOuter(x, g, kernel, stride, dilation, padding, groups=1)
    assert rel(term.gram(AUTO), ref) < 1e-12
    assert rel(term.as_outer().gram(AUTO), ref) < 1e-12
    assert rel(ghost_gram(term.as_outer().a, term.as_outer().g, Chunking(2, 2**26)), ref) < 1e-12
    assert rel(term._grouped_conv_gram(Chunking(2, 2**26)), ref) < 1e-12
    for chunk in (None, 2):
        assert (
            rel(shift_ghost_gram(x, g, kernel, stride, dilation, padding, Chunking(chunk, 2**26)), ref)
            < 1e-12
        )


def test_grouped_conv_row_grads_match_autograd():
    gen = torch.Generator().manual_seed(2)
    n, r = 4, 3
    x = torch.randn(n, 4, 5, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(6, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, w, padding=1, groups=2)
    g = torch.randn(r, *y.shape, generator=gen, dtype=torch.float64)
    ref = torch.stack([torch.autograd.grad(y, w, g[i], retain_graph=True)[0].flatten() for i in range(r)])
    rows = ConvOuter(x, g, (3, 3), (1, 1), (1, 1), (1, 1), groups=2).row_grads()
    assert rel(gram(rows), gram(ref)) < 1e-12


def test_lookup_methods_agree():
    gen = torch.Generator().manual_seed(3)
    n, t, num, b = 4, 5, 7, 3
    idx = torch.randint(0, num, (n, t), generator=gen)
    g = torch.randn(n, t, b, generator=gen, dtype=torch.float64)
    per_sample = torch.zeros(n, num, b, dtype=torch.float64)
    for i in range(n):
        for s in range(t):
            per_sample[i, idx[i, s]] += g[i, s]
    ref = gram(per_sample)
    assert rel(Lookup(idx, g, num).gram(AUTO), ref) < 1e-13  # materialises (few rows)
    assert rel(Lookup(idx, g, 10**6).gram(AUTO), ref) < 1e-13  # ghost (many rows)


def test_combine_sums_gradients_of_repeated_calls():
    gen = torch.Generator().manual_seed(4)
    a1, a2 = (torch.randn(3, 2, 1, 4, generator=gen, dtype=torch.float64) for _ in range(2))
    g1, g2 = (torch.randn(3, 2, 1, 5, generator=gen, dtype=torch.float64) for _ in range(2))
    p = torch.einsum("ntgb,ntga->ngba", g1, a1) + torch.einsum("ntgb,ntga->ngba", g2, a2)
    assert rel(combine([Outer(a1, g1), Outer(a2, g2)]).gram(AUTO), gram(p)) < 1e-13
    d = combine([Direct(g1[:, 0, 0]), Direct(g2[:, 0, 0])])
    assert torch.allclose(d.p, g1[:, 0, 0] + g2[:, 0, 0])
