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

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from search_spaces.base import Config, ConfigError, SearchSpace

if TYPE_CHECKING:
    import optuna
    from torch import nn

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
    ``passing`` excepted) becomes ``error("{label}: {what} failed: {type}: {first line}")``."""
    try:
        yield
    except (PluginError, *passing):
        raise
    except (Exception, SystemExit) as e:
        raise error(f"{label}: {what} failed: {type(e).__name__}: {first_line(e)}") from None


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


def guard_forward(net: nn.Module, label: str, num_classes: int) -> None:
    """Put a plugin network's forward pass behind the guard, in every pass any command makes
    (scoring, training, export): what it raises (SystemExit included) becomes a PluginError, and
    its output must be a tensor of shape (N, num_classes) for N images. The guarded forward is a
    method bound to the network (so that a deep copy calls the copy's own forward, and
    torch.export traces it as it traces any method; the output's shape is not checked while it
    traces, so that the program keeps a dynamic batch)."""
    import functools
    import types

    own = net.__dict__.get("forward")  # a forward the plugin set on the instance itself

    @functools.wraps(own if own is not None else type(net).forward)  # its signature, for torch.export
    def forward(self, *args, **kwargs):
        import torch

        call = own if own is not None else type(self).forward.__get__(self)
        with calling(label, "the network's forward()", passing=(torch.OutOfMemoryError,)):
            output = call(*args, **kwargs)
        if args and isinstance(args[0], torch.Tensor) and not torch.compiler.is_compiling():
            _check_output(label, output, args[0].shape[0], num_classes)  # not while torch.export
        return output  # traces: a check on the batch's size would pin the program to it

    net.forward = types.MethodType(forward, net)


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
        training = net.training
        with calling(self.label, "the network's forward()"), torch.no_grad():
            output = net.eval()(torch.zeros(PROBE_IMAGES, channels, image_size, image_size))
        net.train(training)
        _check_output(self.label, output, PROBE_IMAGES, num_classes)
        guard_forward(net, self.label, num_classes)
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
