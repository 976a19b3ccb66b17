"""The fast implementation: one forward and one backward pass over the whole batch.

Forward hooks capture each covered layer's input; tensor hooks on its outputs receive the gradient
of ``Σ_n Σ_k f_k(x_n)`` with respect to them. With independent samples (BatchNorm ``"eval"`` or
``"batch"``) that gradient, at sample ``n``, is sample ``n``'s own, so each layer's Gram of
per-sample gradients is formed from (input, output gradient) as soon as the gradient arrives, and
both are released. No parameter gradient is computed: the backward pass asks only for gradients
with respect to layer outputs.

In the coupled mode (``"train"``) the gradient of each output row reaches every sample, so rows
are back-propagated in chunks through one batched (vmapped) backward pass each.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn
from torch.autograd.graph import get_gradient_edge

from scores.bn import BatchNormControl
from scores.checks import check_differentiable, check_outputs
from scores.coupling import Coupled, check_rows_alone
from scores.layers import Handler, handler_for
from scores.terms import Chunking, Direct, Term, combine, gram64


class Unsupported(Exception):
    """The fast path cannot handle this model; the message says why."""


# Layers applied to each position of a sequence, and the axes of their input that may be positions:
# on a (T, N, F) tensor (token ids (T, N) for an Embedding) whose T is the batch's N, the first
# dimension is no sample, and shapes alone cannot tell (an (N, T, F) input whose T is N goes to the
# slower path too).
TOKENWISE = {nn.Linear: slice(1, -1), nn.LayerNorm: slice(1, -1), nn.Embedding: slice(1, None)}


def uncovered(model: nn.Module) -> list[str]:
    """Reasons the fast path does not cover ``model`` (empty when it does)."""
    reasons: dict[str, None] = {}
    # Global forward hooks run before any module's own: one that changes outputs would hide the
    # layer's true output from the capture. torch offers no public way to list them.
    if torch.nn.modules.module._global_forward_hooks:
        reasons["a global module forward hook (register_module_forward_hook)"] = None
    owner: dict[nn.Parameter, str] = {}
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if handler_for(module) is None:
            reasons[f"{type(module).__name__} ('{name or 'the model itself'}')"] = None
        for p in own:
            if p in owner:
                reasons[f"parameter shared by '{owner[p]}' and '{name}'"] = None
            owner[p] = name
    return list(reasons)


@dataclass
class _Site:
    """One covered module: its captured calls and, once back-propagated, their gradients."""

    handler: Handler
    params: list[nn.Parameter]
    names: set[str]  # of the trainable parameters, one term each
    inputs: list[torch.Tensor] = field(default_factory=list)
    edges: list = field(default_factory=list)
    grads: dict[int, torch.Tensor] = field(default_factory=dict)
    received: set[int] = field(default_factory=set)  # calls whose output gradient arrived


class _Capture:
    """Hooks on every covered module of a model, for one forward pass."""

    def __init__(self, model: nn.Module, n: int, bn: BatchNormControl, stream) -> None:
        self.n = n
        self.bn = bn
        self.stream = stream
        self.roots: list = []
        # outputs whose own gradient hooks the capture cannot see past: (tensor, hooks of ours)
        self.watched: list[tuple[torch.Tensor, int]] = []
        self.output_elements = 0
        self.sites: dict[nn.Module, _Site] = {}
        for module in model.modules():
            named = {n: p for n, p in module.named_parameters(recurse=False) if p.requires_grad}
            if named:
                self.sites[module] = _Site(handler_for(module), list(named.values()), set(named))
        # First of each module's forward hooks: a user's hook that changes the output afterwards
        # (out * 3) is then part of the graph the gradients come back through.
        self.handles = [m.register_forward_hook(self._on_forward, prepend=True) for m in self.sites]

    def remove(self) -> None:
        """Remove every hook and drop every captured tensor and graph edge.

        Tensor hooks live on autograd nodes, which Python's collector cannot see through: left in
        place, node → hook → capture → edge → node would be a cycle that is never freed.
        """
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.roots.clear()
        self.sites.clear()

    def _on_forward(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        site = self.sites[module]
        layer = type(module).__name__
        if not args or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            raise Unsupported(f"{layer} was called without a tensor as its first positional input")
        if not out.requires_grad:  # under torch.no_grad(): the call adds nothing to the kernel
            return
        x = args[0]
        if x.shape[0] != self.n or out.shape[0] != self.n:
            raise Unsupported(f"{layer} was called on {x.shape[0]} rows, not on the batch's {self.n} samples")
        positions = next((axes for kind, axes in TOKENWISE.items() if isinstance(module, kind)), None)
        if positions is not None and self.n in x.shape[positions]:
            raise Unsupported(f"{layer} was called on a sequence whose length is the batch's size {self.n}")
        if isinstance(module, nn.modules.conv._ConvNd) and x.dim() != len(module.kernel_size) + 2:
            raise Unsupported(f"{layer} was called on an unbatched input of shape {tuple(x.shape)}")
        edge = get_gradient_edge(out)
        site.inputs.append(x)
        site.edges.append(edge)
        self.output_elements += out.numel()
        if self.stream is not None:
            call = len(site.inputs) - 1
            if x.requires_grad:
                # On the node, not the tensor: a node's pre-hook sees the gradient after the
                # tensor's own hooks (a hook the model registers on this output later) changed it.
                self.handles.append(edge.node.register_prehook(partial(self._on_node, module, call, edge)))
            else:  # a root (token ids in): back-propagation stops at its node, whose hooks never run
                self.handles.append(out.register_hook(partial(self._on_grad, module, call)))
                self.roots.append(edge)
                self.watched.append((out, 1))
        else:  # the batched backward stops at each edge, before the tensor's own hooks
            self.watched.append((out, 0))

    def _on_node(self, module: nn.Module, call: int, edge, grads: tuple) -> None:
        if grads[edge.output_nr] is not None:  # else the node ran for another of its outputs
            self._on_grad(module, call, grads[edge.output_nr])

    def _on_grad(self, module: nn.Module, call: int, g: torch.Tensor) -> None:
        site = self.sites[module]
        site.grads[call] = g
        site.received.add(call)
        if len(site.grads) == len(site.inputs):
            self.stream(module, site)

    def terms(self, module: nn.Module, site: _Site, grads: dict[int, torch.Tensor]) -> list[Term]:
        """Terms of ``module``'s parameters from its calls' inputs and output gradients."""
        per_name: dict[str, list[Term]] = {}
        for call, g in sorted(grads.items()):
            for name, term in _handled(site, module, site.inputs[call], g, self.bn).items():
                per_name.setdefault(name, []).append(term)
        return [combine(ts) for ts in per_name.values()]

    def check_graph(self, out: torch.Tensor) -> dict[nn.Module, set[int]]:
        """The calls of each module whose output reaches ``out`` (a call whose output was dropped
        adds nothing); Unsupported if a parameter reaches ``out`` other than through those calls
        (a weight also used by a function outside its module)."""
        uses: dict[int, int] = {}
        seen, stack = set(), [out.grad_fn]
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            for nxt, _ in node.next_functions:
                if nxt is None:
                    continue
                variable = getattr(nxt, "variable", None)
                if variable is not None:
                    uses[id(variable)] = uses.get(id(variable), 0) + 1
                else:
                    stack.append(nxt)
        live = {m: {i for i, e in enumerate(site.edges) if e.node in seen} for m, site in self.sites.items()}
        for module, site in self.sites.items():
            for p in site.params:
                if uses.get(id(p), 0) > len(live[module]):
                    raise Unsupported(f"a parameter of {type(module).__name__} is used outside its forward()")
        return live

    def check_unhooked(self) -> None:
        """Coupled (only the per-sample loop is exact) when the model put gradient hooks of its own
        on a layer output that the capture reads at its edge, before such hooks run. torch lists a
        tensor's hooks only in its private ``_backward_hooks``."""
        if any(len(getattr(t, "_backward_hooks", None) or ()) > ours for t, ours in self.watched):
            raise Coupled("a layer's output carries a gradient hook of the model's own")
        self.watched.clear()

    def check_reached(self, live: dict[nn.Module, set[int]]) -> None:
        """Unsupported unless every call in ``live`` received its output's gradient (a branch fed
        by a tensor that requires grad, not by a captured layer, is not back-propagated)."""
        for module, site in self.sites.items():
            if not live[module] <= site.received:
                raise Unsupported(f"a call of {type(module).__name__} is not reached from the input")


def _handled(site: _Site, module: nn.Module, x: torch.Tensor, g: torch.Tensor, bn: BatchNormControl) -> dict:
    """What ``site``'s handler gives for one call of ``module``, checked: one term
    (:class:`~scores.terms.Term`) for each of its trainable parameters, no more and no fewer (a
    rule registered for a class it does not fit, or a handler of one's own, fails here, naming the
    class, rather than deep inside, or leaves a parameter out of the kernel without a word)."""
    layer = type(module).__name__
    try:
        terms = site.handler(module, x, g, bn)
    except (AttributeError, TypeError, KeyError, IndexError) as e:
        raise ValueError(
            f"the pNTK rule for {layer} failed on it ({type(e).__name__}: {e}); register (scores."
            "register_layer) the rule of the class it computes like, or a handler of its own"
        ) from e
    wanted = site.names
    if not isinstance(terms, dict) or set(terms) != wanted:
        got = sorted(terms) if isinstance(terms, dict) else type(terms).__name__
        raise ValueError(
            f"the pNTK rule for {layer} gave terms for {got}, not for its trainable parameters "
            f"{sorted(wanted)}; a handler returns one scores.terms.Term per trainable parameter"
        )
    wrong = next((name for name, term in terms.items() if not isinstance(term, Term)), None)
    if wrong is not None:
        raise TypeError(
            f"the pNTK rule for {layer} gave a {type(terms[wrong]).__name__} for '{wrong}', not a "
            "scores.terms.Term (Direct, Outer, ConvOuter or Lookup)"
        )
    return terms


def hooks_gram(
    model: nn.Module,
    x: torch.Tensor,
    bn: BatchNormControl,
    coupled: bool,
    chunking: Chunking,
    group_of: Mapping[nn.Module, str] | None = None,
) -> tuple[dict[str, torch.Tensor], int]:
    """``J Jᵀ`` for the per-sample gradients of the summed outputs, split by group of modules
    (``group_of``: parametrised module → group; None: one group ``""``): {group: (N, N)
    float64}, in order of the groups' first modules, and O. The groups' kernels sum to the whole.

    Raises :class:`Unsupported` when the model needs the generic path.
    """
    n = x.shape[0]
    names = dict.fromkeys(group_of.values()) if group_of is not None else {"": None}
    k = {g: torch.zeros(n, n, dtype=torch.float64, device=x.device) for g in names}
    directs: dict[str, list[torch.Tensor]] = {g: [] for g in k}

    def group(module: nn.Module) -> str:
        return group_of[module] if group_of is not None else ""

    def stream(module: nn.Module, site: _Site) -> None:
        with torch.no_grad():
            for term in capture.terms(module, site, site.grads):
                if isinstance(term, Direct):
                    directs[group(module)].append(term.p)
                else:
                    k[group(module)].add_(term.gram(chunking))
        site.inputs.clear()
        site.grads.clear()

    capture = _Capture(model, n, bn, None if coupled else stream)
    source = None
    if not coupled and x.is_floating_point():
        # Back-propagated to the input, every layer's node runs, and its pre-hook sees the gradient
        # the model's own tensor hooks made; the model gets a copy, its in-place ops its own.
        source = x.detach().requires_grad_()
        x = source.clone()
    try:
        with bn.recording() if not coupled else nullcontext():  # replayed to check the rows apart
            out = model(x)
        check_outputs(out, n)
        check_differentiable(out)
        live = capture.check_graph(out)
        capture.check_unhooked()
        if coupled:
            for module, rows in _coupled_rows(capture, out, chunking):
                k[group(module)] += gram64(rows)
            return k, out.shape[1]
        targets = [source, *capture.roots] if source is not None else capture.roots
        if not targets:
            raise Unsupported("no layer takes the input directly")
        torch.autograd.grad(out.sum(), targets, allow_unused=True)
        capture.check_reached(live)
        for module, site in capture.sites.items():
            if site.grads:  # a call whose output never reached the loss adds nothing
                stream(module, site)
        for g, parts in directs.items():
            if parts:
                k[g] += gram64(torch.cat(parts, dim=1))
        check_rows_alone(model, x, out, bn)
        return k, out.shape[1]
    finally:
        capture.remove()


def _coupled_rows(
    capture: _Capture, out: torch.Tensor, chunking: Chunking
) -> list[tuple[nn.Module, torch.Tensor]]:
    """Per-row gradients (N, D) of each term and its module, back-propagating output rows in
    chunks."""
    n, o = out.shape
    sites = list(capture.sites.items())
    edges = [e for _, site in sites for e in site.edges]
    per_row = capture.output_elements  # one row brings back a gradient for every output
    step = chunking.samples or max(1, min(n, chunking.elements // max(1, per_row)))
    chunks: dict[tuple[int, int], tuple[nn.Module, list[torch.Tensor]]] = {}
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        seeds = out.new_zeros(r1 - r0, n, o)
        seeds[torch.arange(r1 - r0), torch.arange(r0, r1)] = 1
        grads = torch.autograd.grad(
            out, edges, grad_outputs=seeds, is_grads_batched=True, retain_graph=True, allow_unused=True
        )
        at = 0
        with torch.no_grad():
            for s, (module, site) in enumerate(sites):
                calls = {c: g for c, g in enumerate(grads[at : at + len(site.edges)]) if g is not None}
                at += len(site.edges)
                for t, term in enumerate(capture.terms(module, site, calls) if calls else []):
                    chunks.setdefault((s, t), (module, []))[1].append(term.row_grads())
    return [(module, torch.cat(parts)) for module, parts in chunks.values()]
