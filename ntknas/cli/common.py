"""What the commands share: consoles, options, one-line errors, checks, and the
handling of Ctrl-C and SIGTERM. Importable without torch, Optuna or numpy."""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.text import Text

from ntknas.cli.progress import phase
from ntknas.core import defaults
from ntknas.core.checks import check_positive_int
from ntknas.core.errors import CandidateFailed, UserError, first_line, memory_problem, warnings_to
from ntknas.core.files import path_failure
from ntknas.core.interrupts import interrupt
from ntknas.core.terminal import Terminal, closed_output, standard_streams
from ntknas.inputs import image_size
from ntknas.inputs.sources import BUNDLED, CIFAR10, SYNTHETIC
from search_spaces.guard import PluginError, message_of

if TYPE_CHECKING:
    from ntknas.objectives.reference import Measuring, Progress
    from search_spaces import SearchSpace

# Every line the commands print goes through these two (and write_out): strings are shown as the
# text they are (ntknas.core.terminal). Output that is not a terminal (a log, a pipe) gets wide
# tables instead of rich's 80 columns.
standard_streams()
out = Terminal(width=None if sys.stdout.isatty() else 200)
err = Terminal(stderr=True, highlight=False, soft_wrap=True)
WIDE = 180  # console columns from which tables show every score (and a configuration has ~40)
INTERRUPTED, TERMINATED = 130, 143  # exit codes after Ctrl-C and after SIGTERM (128 + signal)
OUTPUT_CLOSED = 141  # exit code once the output's reader went away (128 + SIGPIPE)
STOPPING_SIGNALS = defaults.STOPPING_SIGNALS


def parse_image_size(text: str | int) -> int:
    """``--image-size``'s value, checked as it is parsed: bad input is one error line, exit 2."""
    try:
        return image_size.parse(text)
    except UserError as e:
        fail(str(e))


# Options shared by several commands. Help text escapes "[" (rich markup) as "\[".
DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help=f"{BUNDLED} (bundled real images), {CIFAR10}, {SYNTHETIC}, or an ImageFolder path.",
    ),
]
DataRootOpt = Annotated[
    str | None, typer.Option(help=f"Folder holding torchvision's CIFAR-10, for --data {CIFAR10}.")
]
BatchOpt = Annotated[int, typer.Option(help="Minibatch size N: the kernel is N×N.")]
ImageSizeOpt = Annotated[
    int,
    typer.Option(
        parser=parse_image_size,
        help="Side S of the S×S images that networks are built for, scored and trained at: "
        "image folders are read at S (shorter side resized to S, central square kept), CIFAR-10 "
        "resized from its 32 pixels.",
    ),
]
BnOpt = Annotated[str, typer.Option(help="BatchNorm statistics: batch, eval or train.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the minibatch and of every initialisation.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:K.")]
StudyArg = Annotated[str | None, typer.Argument(help="Study name; optional when the storage holds one.")]
StorageOpt = Annotated[
    str | None,
    typer.Option(help=f"Optuna storage URL \\[default: {defaults.DEFAULT_STORAGE}].", show_default=False),
]
THREADS_DEFAULT = "the CPUs this process may use (CPU affinity, container CPU quota)"
ThreadsOpt = Annotated[
    int | None, typer.Option(help=f"Torch threads \\[default: {THREADS_DEFAULT}].", show_default=False)
]


def storage_label(storage: str | None) -> str:
    """The storage URL fit to print: the default's when None, any password masked."""
    from ntknas.study.storage import mask

    return mask(storage or defaults.DEFAULT_STORAGE)


@contextmanager
def user_errors(storage: str | None = None) -> Iterator[None]:
    """Turn bad input into one red line on stderr and exit code 2 (any secret of the ``storage``
    URL masked in messages that did not come from ntknas), and each skipped input into one
    warning line. Running out of memory (input too large for this machine: a batch, an image
    size, a model) and a fault of the storage (a full disk, a damaged database) are one line too."""
    try:
        with warnings_to(warn):
            yield
    except UserError as e:  # its message masks secrets already
        fail(str(e))
    except (CandidateFailed, PluginError, ValueError, TypeError) as e:  # may quote a secret
        from ntknas.study.storage import fault, redact

        fail(fault(e, storage) or redact(message_of(e), storage))
    except typer.Exit:  # a command's own exit (after its own message)
        raise
    except Exception as e:  # running out of memory, or a fault of the storage (a full disk, damage)
        fail(_resource_problem(e, storage))


def _resource_problem(error: Exception, storage: str | None) -> str:
    """The one line on ``error`` when memory ran out or the storage failed; else ``error`` again."""
    from ntknas.study.storage import fault

    if (short := memory_problem(error)) is not None:
        return short
    if (unloadable := load_failure(error)) is not None:
        return unloadable
    if isinstance(error, OSError) and error.errno in (errno.EMFILE, errno.ENFILE):
        return (
            f"too many open files ({error.strerror}): raise the limit (ulimit -n, now "
            f"{_open_files_limit()}), or use fewer --workers"
        )
    message = fault(error, storage)
    if message is None and isinstance(error, OSError):  # a path the system refused, whichever
        message = path_failure(error)
    if message is None:
        raise error
    return message


def load_failure(error: BaseException) -> str | None:
    """The one line on a library that could not be loaded for want of memory (``ulimit -v`` below
    what torch maps), or None for any other error."""
    if isinstance(error, ImportError) and re.search(r"(?i)failed to map segment|cannot allocate", str(error)):
        return (
            f"not enough memory to load a library ({first_line(error)}): the process's "
            "address-space limit (ulimit -v) is too low; raise it (torch needs about 4 GB)"
        )
    return None


def _open_files_limit() -> str:
    """This process's limit on open files, as ``ulimit -n`` shows it."""
    try:
        import resource

        return str(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    except (ImportError, OSError, ValueError):  # not a Unix
        return "unknown"


def fail(message: str) -> NoReturn:
    """Print ``message`` as one error line on stderr and exit with code 2."""
    error_line(message)
    raise typer.Exit(2)


def write_out(text: str) -> None:
    """Write ``text`` (CSV, JSON) to stdout as it is; OutputClosed when its reader went away."""
    try:
        sys.stdout.write(text)
    except BrokenPipeError:
        raise closed_output(sys.stdout) from None


def error_line(message: str) -> None:
    """Print ``message`` as one error line on stderr."""
    err.print(Text("error:", style="bold red"), message)


def check_space_at(space: SearchSpace, pixels: int) -> None:
    """``ntknas.objectives.fit.check_for_space``, shown as it runs: it samples and builds one of
    the space's networks, and a plugin's ``sample()`` or ``build()`` may take long."""
    from ntknas.objectives.fit import check_for_space

    with phase(f"checking space {space.name} at {pixels} px", err):
        check_for_space(space, pixels)


def warn(message: str) -> None:
    """Print ``message`` as one warning line on stderr."""
    err.print(Text("warning:", style="yellow"), message)


def check_choice(option: str, value: str | None, choices) -> None:
    """UserError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise UserError(f"unknown {option} {value!r}; choose one of: {', '.join(choices)}")


# Set by the console script's entry point, whose process lives for one command: only there is memory
# bounded (resolve_device), as a limit set inside another program (a test calling the app) would
# outlive the command.
BOUND_MEMORY = False


def resolve_device(device: str) -> str:
    """``auto`` → cuda when present, else cpu; ``cpu``, ``cuda`` and ``cuda:K`` as given, checked.
    On the CPU, in the console script's process, memory is bounded to what the machine has
    (:func:`ntknas.core.memory.bound_to_available`): a batch or image size too large for it fails
    in one line instead of being killed."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        if BOUND_MEMORY:
            from ntknas.core.memory import bound_to_available

            bound_to_available()
        return device
    if device != "cpu" and device != "cuda" and not _is_cuda_index(device):
        raise UserError(f"unknown --device {device!r}; use auto, cpu, cuda or cuda:K")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device} asked for, but no CUDA device is available; use --device cpu")
        count = torch.cuda.device_count()
        if device != "cuda" and int(device.removeprefix("cuda:")) >= count:
            raise UserError(
                f"--device {device}: this machine has {count} CUDA device(s); use cuda:0 to cuda:{count - 1}"
            )
    return device


def _is_cuda_index(device: str) -> bool:
    index = device.removeprefix("cuda:")
    return device.startswith("cuda:") and index.isdigit()


def use_threads(threads: int | None, workers: int = 1) -> int:
    """Set torch's threads for this process (``threads``, or its share of the usable CPUs among
    ``workers``) and return the number each worker gets."""
    import torch

    from ntknas.core.threads import threads_per_worker

    if threads is not None:
        check_positive_int("--threads", threads)
        cpus = os.cpu_count() or 1
        if threads > cpus:  # more only contend for the CPUs; torch crashes on a million
            raise UserError(f"--threads must be at most {cpus}, the CPUs of this machine; got {threads}")
    count = threads_per_worker(workers, threads)
    torch.set_num_threads(count)
    return count


def space_reference(space, image_size: int, classes: int, batch: int) -> dict[str, tuple[float, float]]:
    """The terms' (centre, spread) in ``space`` that ``ntk_score`` needs for batches of ``batch``
    images: shipped or cached, else measured now, once, shown as :func:`measuring_reference` shows
    it (see :mod:`ntknas.objectives.reference`)."""
    from ntknas.objectives import reference

    return reference.for_space(space, image_size, classes, measuring_reference(space.name), batch).terms


def measuring_reference(space: str) -> Measuring:
    """How the command line shows the measurement of ``space``'s reference: a progress bar (or log
    lines) while it runs, then one line saying how many architectures it took."""

    @contextmanager
    def measuring(what: str) -> Iterator[Progress]:
        counted = [0]
        with phase(f"{space} · measuring ntk_score's reference ({what}; once)", err) as step:

            def progress(done: int, total: int) -> None:
                counted[0] = done
                step(done, total)

            yield progress
        err.print(f"measured ntk_score's reference for space {space}: {counted[0]} architectures")

    return measuring


SIGTERMS: list[int] = []  # every SIGTERM this process received, whichever handler took it


class Terminated(KeyboardInterrupt):
    """SIGTERM (docker stop, Kubernetes, a batch scheduler): stop now, as a second Ctrl-C does."""


class StopRequest:
    """What Ctrl-C and SIGTERM asked for. With a ``step`` to finish, the first Ctrl-C asks to stop
    after the current one (``requested``) and a second stops at once; without, Ctrl-C stops at
    once. SIGTERM stops at once and sets ``terminated``.

    (A KeyboardInterrupt raised at an arbitrary point can land in a garbage-collection callback,
    where Python swallows it; the flags, checked between steps, cannot be lost.)
    """

    def __init__(self, step: str | None) -> None:
        self.step = step
        self.event = threading.Event()
        self.terminated = False

    def requested(self) -> bool:
        return self.event.is_set()

    def exit_code(self) -> int:
        return 128 + SIGTERMS[-1] if self.terminated and SIGTERMS else INTERRUPTED

    def on_sigint(self, signum, frame) -> None:
        if self.event.is_set() or self.step is None:
            self.event.set()
            interrupt()
            return
        self.event.set()
        err.print(f"stopping after the current {self.step} (Ctrl-C again to stop now)")

    def on_sigterm(self, signum, frame) -> None:
        SIGTERMS.append(signum)
        self.terminated = True
        self.event.set()
        interrupt(Terminated())


@contextmanager
def stop_requests(step: str | None = None) -> Iterator[StopRequest]:
    """Handle Ctrl-C and SIGTERM as :class:`StopRequest` says inside the block; restore after."""
    request = StopRequest(step)
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, request.on_sigint)}
    previous.update({signum: signal.signal(signum, request.on_sigterm) for signum in STOPPING_SIGNALS})
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_about_stops(unraisable)
    try:
        yield request
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = unraisable


def _quiet_about_stops(hook):
    """An unraisable hook that drops the Ctrl-C or SIGTERM a garbage-collection callback swallowed
    (the request's flags carry it) and passes anything else on to ``hook``."""

    def quiet(unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    return quiet
