"""ntknas scores: the pseudo neural tangent kernel of a network at initialisation, and its spectrum.

Examples:
    >>> import scores, torch, torchvision
    >>> net = torchvision.models.resnet18(num_classes=10)
    >>> scores.score(net, torch.randn(16, 3, 32, 32))["condition_number"]  # doctest: +SKIP
"""

from scores.analytic import analytic_ntk, ntk_mlp
from scores.bn import BN_MODES
from scores.kernels import IMPLEMENTATIONS, entk, layer_kernels, pntk, score
from scores.spectrum import SPECTRUM_SCORES, Spectrum, spectrum

__all__ = [
    "BN_MODES",
    "IMPLEMENTATIONS",
    "SPECTRUM_SCORES",
    "Spectrum",
    "analytic_ntk",
    "entk",
    "layer_kernels",
    "ntk_mlp",
    "pntk",
    "score",
    "spectrum",
]
