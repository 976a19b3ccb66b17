"""Names of the image sources a search can score on (see ``ntknas.inputs.data``); importable without torch."""

BUNDLED = "cifar10-sample"
SYNTHETIC = "synthetic"
CIFAR10 = "cifar10"
SOURCES = (BUNDLED, CIFAR10, SYNTHETIC, "PATH (an ImageFolder)")
