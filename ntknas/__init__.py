"""ntknas: training-free neural architecture search with the pseudo neural tangent kernel."""

__version__ = "0.1.0"
