"""Stops that wait for a storage write to finish: the one place where a signal handler of ours
raises its KeyboardInterrupt, now or at the end of the write it landed in.

A KeyboardInterrupt raised between ``study.ask()`` creating a trial and the caller holding it
leaves a trial RUNNING that nobody fails. Inside :func:`uninterrupted` a stop is held back and
raised as the block ends, so the caller always holds what it asked for.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0
_held: list[BaseException] = []


def interrupt(stop: BaseException | None = None) -> None:
    """Raise ``stop`` (a KeyboardInterrupt by default): now, or as the innermost
    :func:`uninterrupted` block around this point ends. Signal handlers call this instead of
    raising."""
    stop = KeyboardInterrupt() if stop is None else stop
    if _depth:
        _held.append(stop)
        return
    raise stop


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold back stops (Ctrl-C, and SIGTERM/SIGHUP where a handler of ours takes them) while the
    block runs, then raise the first one held. Where Ctrl-C still has Python's default handler
    (a library caller), it is taken over for the block."""
    global _depth
    own_sigint = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if own_sigint:
        signal.signal(signal.SIGINT, lambda signum, frame: interrupt())
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if own_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if not _depth and _held:
            stop = _held[0]
            _held.clear()
            raise stop
