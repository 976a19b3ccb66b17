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
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from search_spaces.base import Config, ConfigError, SearchSpace, clipped

if TYPE_CHECKING:
    import optuna
    import torch
    from torch import nn

_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
# torch.nn.Module's methods that return the module itself, which callers rely on (``net.eval()(x)``,
# ``net = net.to(device)``): a plugin's override must too.
RETURNS_SELF = frozenset(
    {"train", "eval", "requires_grad_", "to", "cpu", "cuda", "xpu", "ipu", "mtia", "type", "float",
     "double", "half", "bfloat16", "to_empty", "apply", "share_memory"}
)  # fmt: skip
PROBE_IMAGES = 2  # images of the forward pass that checks a built network's output shape


class PluginError(Exception):
    """A plugin space's code failed or broke the SearchSpace contract; the message says which."""


def message_of(error: BaseException) -> str:
    """``error``'s message as plain text; one that cannot be read (its ``__str__`` raises or
    returns no text, as plugin code may) is said to be so."""
    try:
        text = str(error)
        if not isinstance(text, str):
            raise TypeError
        return str.__str__(text)  # a plain str, whatever a subclass's methods would do
    except BaseException:
        return "(its message cannot be read)"


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message (:func:`message_of`; empty when it has none), at most
    ``MESSAGE_LIMIT`` characters."""
    return clipped((message_of(error).strip().splitlines() or [""])[0])


@contextmanager
def calling(
    label: str, what: str, error: type[Exception] = PluginError, passing: tuple[type[Exception], ...] = ()
) -> Iterator[None]:
    """Run plugin code: what it raises (any BaseException, SystemExit and GeneratorExit included;
    KeyboardInterrupt and ``passing`` excepted) becomes
    ``error("{label}: {what} failed: {type}: {first line}")``. What the process shares with the
    plugin is kept as it was (see :class:`_Shared`)."""
    with _Shared():
        try:
            yield
        except (PluginError, KeyboardInterrupt, *passing):
            raise
        except BaseException as e:
            raise error(f"{label}: {what} failed: {type(e).__name__}: {first_line(e)}") from None


class ProcessExit(Exception):
    """Plugin code called ``os._exit``, which would end the process at once, leaving its trial
    running and saying nothing."""


def _exit_refused(pid: int, real):
    """``os._exit`` as lent to plugin code: in process ``pid``, it raises :class:`ProcessExit`; in
    a child the plugin forked, it is ``real``."""

    def refused(status: int) -> None:
        if os.getpid() != pid:
            real(status)
        raise ProcessExit(f"os._exit({status})")

    return refused


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
    lent unclosable and put back (a plugin may close or replace ``sys.stdout``), what the plugin
    prints goes to stderr (stdout is the command's output: a table, JSON or CSV), and the working
    directory (relative paths such as the default storage's), the stop signals' handlers and
    torch's default dtype, device and gradient mode are restored as the call returns, so that
    nothing a plugin changes outlives its call. ``os._exit`` in the plugin's process raises
    :class:`ProcessExit` instead of ending it without a word (a process it forked exits)."""

    STREAMS = ("stdin", "stdout", "stderr")

    def __enter__(self) -> None:
        self.exit = os._exit
        os._exit = _exit_refused(os.getpid(), self.exit)
        self.streams = {name: getattr(sys, name) for name in self.STREAMS}
        for name, stream in self.streams.items():
            if stream is not None and not isinstance(stream, _Unclosable):
                setattr(sys, name, _Unclosable(stream))
        if sys.stderr is not None:  # stdout carries the command's tables, JSON and CSV alone
            sys.stdout = sys.stderr
        try:
            self.folder: str | None = os.getcwd()
        except OSError:  # the working directory was deleted: nothing to keep
            self.folder = None
        self.signals = {n: signal.getsignal(n) for n in _STOP_SIGNALS if signal.getsignal(n) is not None}
        torch = sys.modules.get("torch")  # torch's global modes, which every later network reads
        self.modes = None
        if torch is not None:
            self.modes = (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_default_device())

    def __exit__(self, *exc) -> None:
        import threading

        os._exit = self.exit
        for name, stream in self.streams.items():
            setattr(sys, name, stream)
        if self.folder is not None:
            with suppress(OSError):
                if os.getcwd() != self.folder:
                    os.chdir(self.folder)
        if self.modes is not None:
            torch = sys.modules["torch"]
            dtype, grad, device = self.modes
            torch.set_default_dtype(dtype)
            torch.set_grad_enabled(grad)
            if torch.get_default_device() != device:  # no device of its own is torch's default (CPU)
                torch.set_default_device(None if device == torch.device("cpu") else device)
        if threading.current_thread() is threading.main_thread():
            for signum, handler in self.signals.items():
                if signal.getsignal(signum) is not handler:
                    signal.signal(signum, handler)


def _check_output(
    label: str, output: object, inputs: torch.Tensor, num_classes: int, tracked: bool, training: bool
) -> None:
    """PluginError unless ``output`` is a real floating-point tensor of shape (N, num_classes) for
    N ``inputs`` (given by a network in train mode when ``training``), on their device, and (when
    ``tracked``: gradients on, a parameter that takes them) one that gradients flow through."""
    import torch

    wanted = (inputs.shape[0], num_classes)
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    rule = None
    if shape != wanted:
        rule = (
            f"returns {shape} for {wanted[0]} images in {'train' if training else 'eval'} mode; "
            f"it must return a tensor of shape (N, num_classes) = {wanted} in every mode"
        )
    elif not output.is_floating_point():
        rule = f"returns a tensor of {output.dtype}; it must return real floating-point logits"
    elif output.device != inputs.device:
        rule = (
            f"returns its output on {output.device} for inputs on {inputs.device}; it must keep their device"
        )
    elif tracked and not output.requires_grad:
        rule = (
            "returns an output that no gradient flows through (detached); "
            "it must return its logits as computed"
        )
    if rule is not None:
        raise PluginError(f"{label}: the network built by build() {rule}")


def guard_network(net: nn.Module, label: str, num_classes: int) -> None:
    """Put a plugin network behind the guard, in every call any command makes into it (scoring,
    training, ``state_dict()`` for a checkpoint or an export): each method that a module of the
    plugin's own classes overrides from ``torch.nn.Module`` (``forward`` included) is replaced, on
    that module, by a guarded one, so what it raises (SystemExit included) becomes a PluginError;
    the network's input is a copy (one minibatch is read by several passes, which a network
    writing into its input would corrupt); and the network's output, after any forward hook the
    plugin registered, must be what :func:`_check_output` asks (checked by a hook of our own,
    registered last), except while torch.export traces it, so that the program keeps a dynamic
    batch."""
    import torch

    with calling(label, "the network's modules()"):
        modules = list(net.modules())
    for module in modules:
        for name in _plugin_methods(module) | ({"forward"} if module is net else set()):
            _guard_method(module, name, label)

    def check(module: nn.Module, args: tuple, output: object) -> None:
        if args and isinstance(args[0], torch.Tensor) and not torch.compiler.is_compiling():
            detached = isinstance(output, torch.Tensor) and not output.requires_grad  # only then: the
            # parameters are walked for a detached output alone, not on every forward pass
            tracked = (
                detached and torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters())
            )
            _check_output(label, output, args[0], num_classes, tracked, module.training)

    def copied(module: nn.Module, args: tuple) -> tuple:
        return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)

    net.register_forward_pre_hook(copied, prepend=True)  # before any hook of the plugin's
    net.register_forward_hook(check)


def _plugin_methods(module: nn.Module) -> set[str]:
    """Names of the ``torch.nn.Module`` methods (and ``forward``) that the plugin defines for
    ``module``: in its class or a base class of its own (one that is not torch's), or on the
    module itself; as functions, static or class methods, or any other callable."""
    from torch import nn

    def overrides(name: str) -> bool:
        return (name == "forward" or hasattr(nn.Module, name)) and not (
            name.startswith("__") and name.endswith("__")
        )

    own = {name for name, value in vars(module).items() if callable(value) and overrides(name)}
    return own | {
        name
        for klass in type(module).__mro__
        if not _torch_class(klass) and klass is not object
        for name, value in vars(klass).items()
        if (callable(value) or isinstance(value, (staticmethod, classmethod)))
        and not isinstance(value, type)
        and overrides(name)
    }


def _torch_class(klass: type) -> bool:
    """Whether ``klass`` is torch's own: named in a torch module as that module's attribute (a
    class that only calls its module torch's is not)."""
    module = sys.modules.get(klass.__module__)
    return (
        klass.__module__.partition(".")[0] == "torch"
        and module is not None
        and getattr(module, klass.__name__, None) is klass
    )


def _guard_method(module: nn.Module, name: str, label: str) -> None:
    """Replace ``module.name`` by a guarded method bound to it (so that a deep copy calls the
    copy's own, and torch.export traces it as any method)."""
    import functools
    import inspect
    import types

    own = module.__dict__.get(name)  # a method the plugin set on the instance itself
    found = inspect.getattr_static(type(module), name)  # else the class's (a copy has the same class)

    def original(self: nn.Module):
        """What ``self.name`` is without the guard: the instance's own, or the class's, bound as
        Python binds it (a function to ``self``, a static method to nothing)."""
        if own is not None:
            return own
        return found.__get__(self, type(self)) if hasattr(found, "__get__") else found

    @functools.wraps(own if own is not None else getattr(type(module), name))  # its signature
    def method(self, *args, **kwargs):
        import torch

        with calling(label, f"the network's {name}()", passing=(torch.OutOfMemoryError,)):
            result = original(self)(*args, **kwargs)
        if name in RETURNS_SELF and result is not self:
            raise PluginError(
                f"{label}: the network's {name}() returned {type(result).__name__}, not the network; "
                f"return self from it, as torch.nn.Module.{name}() does"
            )
        return result

    object.__setattr__(module, name, types.MethodType(method, module))


def _dtype_hint(net: nn.Module, dtype: torch.dtype) -> str:
    """`` (its parameters are torch.float64, …)`` when ``net`` holds floating-point parameters of
    another dtype than its input's ``dtype`` (the likely cause of its failure), else ``""``."""
    with suppress(PluginError):
        others = sorted({str(p.dtype) for p in net.parameters() if p.is_floating_point()} - {str(dtype)})
        if others:
            found = ", ".join(others)
            return f" (its parameters are {found}, the images {dtype}: build the network in {dtype})"
    return ""


class _Asking:
    """The trial a plugin's ``sample()`` gets: it may ask for values (``suggest_*``) and read the
    trial's number and parameters, not reach the study or write attributes (a plugin that set the
    study's settings would change how every later command reads it)."""

    READABLE = frozenset({"number", "params", "distributions"})

    def __init__(self, trial: optuna.Trial) -> None:
        object.__setattr__(self, "_trial", trial)

    def __getattr__(self, name: str):
        if name.startswith("suggest_") or name in self.READABLE:
            return getattr(self._trial, name)
        raise AttributeError(
            f"sample() may only ask the trial for values (trial.suggest_*), not use trial.{name}"
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"sample() may not set trial.{name}")


class Guarded(SearchSpace):
    """A plugin space seen through the guard: same name, summary, size, image sides and methods,
    each call checked (see the module's docstring). ``label`` names it in messages."""

    def __init__(self, space: SearchSpace, label: str) -> None:
        self.space, self.label = space, label
        # the networks build() made that are still alive, by id (a module may not be hashable)
        self._built: weakref.WeakValueDictionary[int, nn.Module] = weakref.WeakValueDictionary()
        self.name, self.summary, self.size = space.name, str(space.summary), space.size
        self.min_image_size, self.image_size_multiple = space.min_image_size, space.image_size_multiple

    @property
    def origin(self) -> str:
        return self.space.origin

    @property
    def source_module(self) -> str:
        return self.space.source_module

    def sample(self, trial: optuna.Trial) -> Config:
        with calling(self.label, "sample()"):
            return self.space.sample(_Asking(trial))

    def build(
        self, config: Config, num_classes: int = 10, channels: int = 3, image_size: int = 32
    ) -> nn.Module:
        import torch
        from torch import nn

        with calling(self.label, "build()"):
            net = self.space.build(config, num_classes=num_classes, channels=channels, image_size=image_size)
        if not isinstance(net, nn.Module):
            raise PluginError(f"{self.label}: build() returned {type(net).__name__}, not a torch.nn.Module")
        if (
            self._built.get(id(net)) is net
        ):  # scored twice, it would give one network's scores to two candidates
            raise PluginError(
                f"{self.label}: build() returned a network it had returned before; return a new "
                "torch.nn.Module from each call"
            )
        self._built[id(net)] = net
        guard_network(net, self.label, num_classes)
        training = net.training
        images = torch.zeros(PROBE_IMAGES, channels, image_size, image_size)
        try:
            with calling(self.label, "the network's forward()"), torch.no_grad():  # checks its shape
                net.eval()(images)
        except PluginError as e:
            raise PluginError(f"{e}{_dtype_hint(net, images.dtype)}") from None
        net.train(training)
        return net

    def describe(self, config: Config) -> str:
        with calling(self.label, "describe()"):
            text = self.space.describe(config)
        if not isinstance(text, str):
            raise PluginError(f"{self.label}: describe() returned {type(text).__name__}, not a str")
        text = str.__str__(text)  # a plain str, whatever a subclass's methods would do
        if not text or not text.isprintable():
            raise PluginError(
                f"{self.label}: describe() returned {text!a}; it must return one line of printable text"
            )
        self._check_round_trip(config, text)
        return text

    def _check_round_trip(self, config: Config, text: str) -> None:
        """PluginError unless ``parse(text)`` gives ``config`` back, for configurations that can be
        compared (their type defines ``==``): a ``describe()`` that leaves a choice out gives two
        networks one text, and the stored text would rebuild the other (for export, verify, plot,
        and the reuse of scores)."""
        if type(config).__eq__ is object.__eq__:
            return
        try:
            with calling(self.label, "parse()", passing=(ConfigError,)):
                back = self.space.parse(text)
        except ConfigError as e:
            raise PluginError(
                f"{self.label}: parse() refused describe()'s own text {clipped(text, 80)!r} "
                f"({first_line(e)}); parse() must read every text describe() writes"
            ) from None
        try:
            same = bool(back == config)
        except Exception:  # configurations that compare element-wise (arrays): not comparable
            return
        if not same:
            raise PluginError(
                f"{self.label}: describe() and parse() do not round-trip: {clipped(repr(config), 80)} is "
                f"described as {clipped(text, 80)!r}, which parse() reads as {clipped(repr(back), 80)}; "
                "describe() must name every choice of the configuration"
            )

    def parse(self, text: str) -> Config:
        try:
            with calling(self.label, "parse()", passing=(ConfigError,)):
                return self.space.parse(text)
        except ConfigError as e:  # the plugin's own words, said to be its
            raise ConfigError(f"{self.label}: parse() refused the configuration: {first_line(e)}") from None

    def smallest(self) -> list[Config]:
        with calling(self.label, "smallest()"):
            return list(self.space.smallest())
