"""The one way into a plugin space's code: every method call (and the network's forward pass) made
through :class:`Guarded`, which turns whatever the plugin does wrong into a one-line
:class:`PluginError` that names the space, the method and the rule.

A plugin's code can raise anything, ``SystemExit`` included, and can return anything. Guarded
checks what comes back: ``build()`` a ``torch.nn.Module`` whose output for N images has shape
(N, num_classes) (tried once, on two blank images, in eval mode and without gradients, so that
nothing the network holds changes), ``describe()`` one line of printable text. KeyboardInterrupt
passes unchanged: a Ctrl-C cannot be told apart from one a plugin raises, and both interrupt.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from search_spaces.base import Config, ConfigError, SearchSpace

if TYPE_CHECKING:
    import optuna
    from torch import nn

_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
PROBE_IMAGES = 2  # images of the forward pass that checks a built network's output shape


class PluginError(Exception):
    """A plugin space's code failed or broke the SearchSpace contract; the message says which."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (empty when it has none)."""
    return (str(error).strip().splitlines() or [""])[0]


@contextmanager
def calling(
    label: str, what: str, error: type[Exception] = PluginError, passing: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Run plugin code: an exception it raises (SystemExit included; KeyboardInterrupt and
    ``passing`` excepted) becomes ``error("{label}: {what} failed: {type}: {first line}")``.
    What the process shares with the plugin is kept as it was (see :class:`_Shared`)."""
    with _Shared():
        try:
            yield
        except (PluginError, *passing):
            raise
        except (Exception, SystemExit) as e:
            raise error(f"{label}: {what} failed: {type(e).__name__}: {first_line(e)}") from None


class _Unclosable:
    """A standard stream lent to plugin code: writes reach the stream; closing it does nothing."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class _Shared:
    """Around a call into plugin code, what the process shares with it: the standard streams are
    lent unclosable and put back (a plugin may close or replace ``sys.stdout``), and the working
    directory (relative paths such as the default storage's) and the stop signals' handlers are
    restored as the call returns, so that nothing a plugin changes outlives its call."""

    STREAMS = ("stdin", "stdout", "stderr")

    def __enter__(self) -> None:
        self.streams = {name: getattr(sys, name) for name in self.STREAMS}
        for name, stream in self.streams.items():
            if stream is not None and not isinstance(stream, _Unclosable):
                setattr(sys, name, _Unclosable(stream))
        try:
            self.folder: str | None = os.getcwd()
        except OSError:  # the working directory was deleted: nothing to keep
            self.folder = None
        self.signals = {n: signal.getsignal(n) for n in _STOP_SIGNALS if signal.getsignal(n) is not None}

    def __exit__(self, *exc) -> None:
        import threading

        for name, stream in self.streams.items():
            setattr(sys, name, stream)
        if self.folder is not None:
            with suppress(OSError):
                if os.getcwd() != self.folder:
                    os.chdir(self.folder)
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self.signals.items():
                if signal.getsignal(signum) is not handler:
                    signal.signal(signum, handler)


def _check_output(label: str, output: object, images: int, num_classes: int) -> None:
    """PluginError unless ``output`` is a tensor of shape (images, num_classes)."""
    import torch

    wanted = (images, num_classes)
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    if shape != wanted:
        raise PluginError(
            f"{label}: the network built by build() returns {shape} for {images} images; "
            f"it must return a tensor of shape (N, num_classes) = {wanted}"
        )


def guard_network(net: nn.Module, label: str, num_classes: int) -> None:
    """Put a plugin network behind the guard, in every call any command makes into it (scoring,
    training, ``state_dict()`` for a checkpoint or an export): each method that a module of the
    plugin's own classes overrides from ``torch.nn.Module`` (``forward`` included) is replaced, on
    that module, by a guarded one, so what it raises (SystemExit included) becomes a PluginError;
    and the network's output must be a tensor of shape (N, num_classes) for N images."""
    with calling(label, "the network's modules()"):
        modules = list(net.modules())
    for module in modules:
        for name in _plugin_methods(module) | ({"forward"} if module is net else set()):
            _guard_method(module, name, label, num_classes if module is net and name == "forward" else None)


def _plugin_methods(module: nn.Module) -> set[str]:
    """Names of the ``torch.nn.Module`` methods (and ``forward``) that the plugin defines for
    ``module``: in its class or a base class of its own (outside torch), or on the module itself."""
    import types

    from torch import nn

    def overrides(name: str) -> bool:
        return (name == "forward" or hasattr(nn.Module, name)) and not (
            name.startswith("__") and name.endswith("__")
        )

    own = {name for name, value in vars(module).items() if callable(value) and overrides(name)}
    return own | {
        name
        for klass in type(module).__mro__
        if not klass.__module__.startswith("torch.") and klass is not object
        for name, value in vars(klass).items()
        if isinstance(value, types.FunctionType) and overrides(name)
    }


def _guard_method(module: nn.Module, name: str, label: str, num_classes: int | None) -> None:
    """Replace ``module.name`` by a guarded method bound to it (so that a deep copy calls the
    copy's own, and torch.export traces it as any method); with ``num_classes``, its output is
    checked to be (N, num_classes), except while torch.export traces it, so that the program
    keeps a dynamic batch."""
    import functools
    import types

    own = module.__dict__.get(name)  # a method the plugin set on the instance itself

    @functools.wraps(own if own is not None else getattr(type(module), name))  # its signature
    def method(self, *args, **kwargs):
        import torch

        call = own if own is not None else getattr(type(self), name).__get__(self)
        with calling(label, f"the network's {name}()", passing=(torch.OutOfMemoryError,)):
            output = call(*args, **kwargs)
        if num_classes is not None and args and isinstance(args[0], torch.Tensor):
            if not torch.compiler.is_compiling():
                _check_output(label, output, args[0].shape[0], num_classes)
        return output

    object.__setattr__(module, name, types.MethodType(method, module))


class Guarded(SearchSpace):
    """A plugin space seen through the guard: same name, summary, size and methods, each call
    checked (see the module's docstring). ``label`` names it in messages."""

    def __init__(self, space: SearchSpace, label: str) -> None:
        self.space, self.label = space, label
        self.name, self.summary, self.size = space.name, str(space.summary), space.size

    @property
    def origin(self) -> str:
        return self.space.origin

    def sample(self, trial: optuna.Trial) -> Config:
        with calling(self.label, "sample()"):
            return self.space.sample(trial)

    def build(
        self, config: Config, num_classes: int = 10, channels: int = 3, image_size: int = 32
    ) -> nn.Module:
        import torch
        from torch import nn

        with calling(self.label, "build()"):
            net = self.space.build(config, num_classes=num_classes, channels=channels, image_size=image_size)
        if not isinstance(net, nn.Module):
            raise PluginError(f"{self.label}: build() returned {type(net).__name__}, not a torch.nn.Module")
        guard_network(net, self.label, num_classes)
        training = net.training
        with calling(self.label, "the network's forward()"), torch.no_grad():  # checks its shape
            net.eval()(torch.zeros(PROBE_IMAGES, channels, image_size, image_size))
        net.train(training)
        return net

    def describe(self, config: Config) -> str:
        with calling(self.label, "describe()"):
            text = self.space.describe(config)
        if not isinstance(text, str):
            raise PluginError(f"{self.label}: describe() returned {type(text).__name__}, not a str")
        if not text or not text.isprintable():
            raise PluginError(
                f"{self.label}: describe() returned {text!a}; it must return one line of printable text"
            )
        return text

    def parse(self, text: str) -> Config:
        try:
            with calling(self.label, "parse()", passing=(ConfigError,)):
                return self.space.parse(text)
        except ConfigError as e:  # the plugin's own words, said to be its
            raise ConfigError(f"{self.label}: parse() refused the configuration: {first_line(e)}") from None

    def smallest(self) -> list[Config]:
        with calling(self.label, "smallest()"):
            return list(self.space.smallest())
