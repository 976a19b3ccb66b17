"""ntknas scores: the pseudo neural tangent kernel of a network at initialisation, and its spectrum.

Importing the package loads no torch: each name below is imported on first use, so that
``scores.modes`` (the names of the modes) stays light for a command line.

Examples:
    >>> import scores, torch, torchvision
    >>> net = torchvision.models.resnet18(num_classes=10)
    >>> scores.score(net, torch.randn(16, 3, 32, 32))["condition_number"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scores.lazy import exports

if TYPE_CHECKING:
    from scores.analytic import analytic_ntk, ntk_mlp
    from scores.eigen import SPECTRUM_SCORES, Spectrum, spectrum
    from scores.kernels import entk, layer_kernels, pntk, score
    from scores.layers import register_layer
    from scores.modes import BN_MODES, IMPLEMENTATIONS, BnMode, Implementation

# Each public name → the module that defines it.
_HOME = {
    "analytic_ntk": "scores.analytic",
    "ntk_mlp": "scores.analytic",
    "entk": "scores.kernels",
    "layer_kernels": "scores.kernels",
    "pntk": "scores.kernels",
    "score": "scores.kernels",
    "register_layer": "scores.layers",
    "BN_MODES": "scores.modes",
    "IMPLEMENTATIONS": "scores.modes",
    "BnMode": "scores.modes",
    "Implementation": "scores.modes",
    "SPECTRUM_SCORES": "scores.eigen",
    "Spectrum": "scores.eigen",
    "spectrum": "scores.eigen",
}
__all__ = [
    "BN_MODES",
    "IMPLEMENTATIONS",
    "SPECTRUM_SCORES",
    "BnMode",
    "Implementation",
    "Spectrum",
    "analytic_ntk",
    "entk",
    "layer_kernels",
    "ntk_mlp",
    "pntk",
    "register_layer",
    "score",
    "spectrum",
]


__getattr__, __dir__ = exports(globals(), _HOME)
