"""Names of the image sources a search can score on (see ``ntknas.inputs.data``); importable without torch."""

BUNDLED = "cifar10-sample"
SYNTHETIC = "synthetic"
CIFAR10 = "cifar10"
SOURCES = (BUNDLED, CIFAR10, SYNTHETIC, "PATH (an ImageFolder)")


def canonical(source: str) -> str:
    """``source`` as a study records it: a named source as it is, a folder in its absolute form (so
    that it names one folder from any working directory: ``one/`` and ``./one`` are ``one``, and
    ``one`` resumed elsewhere is another folder); any other path as given (for the message that
    says what is wrong with it)."""
    import os

    if source in SOURCES or not os.path.isdir(os.path.expanduser(source)):
        return source
    return os.path.abspath(os.path.expanduser(source))


def shown(source: str) -> str:
    """A recorded ``source`` as a listing shows it: a folder under the working directory relative
    to it (``photos``), any other as recorded."""
    import os

    if source in SOURCES or not os.path.isabs(source):
        return source
    relative = os.path.relpath(source)
    return source if relative.startswith("..") else relative
