"""The ``ntknas`` command line: one module per command.

Each module imports torch, Optuna and the other heavy libraries inside its command, so that
``--help`` and ``spaces`` start without any of them, and ``studies`` and ``results`` without torch
(tests/test_cli_fast.py checks it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import sys
import threading

import typer
from typer.core import TyperCommand, TyperGroup

from ntknas.cli import (
    benchmark,
    common,
    dashboard,
    export,
    plot,
    results,
    score,
    search,
    spaces,
    studies,
    verify,
)
from ntknas.core import library_logs, threads
from ntknas.core.errors import first_line
from ntknas.core.files import DISK_FULL, path_failure, write_failure
from ntknas.core.interrupts import interrupt
from ntknas.core.terminal import OutputClosed, closed_output


class _UntypedHelp:
    """Shows ``--help`` without a type label beside it (typer labels the flag ``<bool>``), and ends
    with exit code 141 when the help's reader goes away (``ntknas --help | head -1``)."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def format_help(self, ctx, formatter) -> None:
        try:
            super().format_help(ctx, formatter)
        except SystemExit:  # rich's console ends so on a broken pipe, its stdout sent to nothing
            raise OutputClosed("the help's reader closed it") from None


class Command(_UntypedHelp, TyperCommand):
    """A command of ``ntknas``. An option given an empty value (``--data ''``, ``--out ''``) is one
    error line, exit 2: no option of ours means anything by it, and a path would silently become
    the working folder or the default."""

    def parse_args(self, ctx, args):
        given, _, _ = self.make_parser(ctx).parse_args(args=list(args))  # the values as typed
        for param in self.params:
            if param.param_type_name == "option" and given.get(param.name) == "":
                flag = max(param.opts, key=len)
                common.fail(f"{flag} is empty; give it a value, or leave it out for its default")
        return super().parse_args(ctx, args)


# The base of the errors typer raises for bad arguments: click's ClickException, or the copy of it
# that newer typer versions carry.
_USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class Group(_UntypedHelp, TyperGroup):
    """The ``ntknas`` command group. A mistake in the arguments themselves (an unknown option or
    command, a value of the wrong type) is one ``error:`` line naming the help to read, exit 2,
    as every other bad input is."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _USAGE_ERRORS as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # bare ``ntknas``: the help is the answer
                e.show()
                sys.exit(e.exit_code)
            context = getattr(e, "ctx", None)
            where = f"; see '{context.command_path if context is not None else 'ntknas'} --help'"
            common.error_line(" ".join(e.format_message().split()).rstrip(".") + where)
            sys.exit(e.exit_code)
        except typer.Abort:
            common.error_line("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=Group,
    name="ntknas",
    help="Training-free neural architecture search with the pseudo neural tangent kernel (pNTK).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
for name, module in (
    ("search", search),
    ("results", results),
    ("verify", verify),
    ("plot", plot),
    ("export", export),
    ("dashboard", dashboard),
    ("studies", studies),
    ("spaces", spaces),
    ("score", score),
    ("benchmark", benchmark),
):
    app.command(name, cls=Command)(module.command)


def main() -> None:
    """Entry point of the ``ntknas`` console script."""
    # Optuna's INFO lines ("A new study created..."); warnings still show. Set here, not through
    # optuna.logging, which would import Optuna before a command needs it.
    logging.disable(logging.INFO)
    library_logs.one_line_each(common.warn)
    common.BOUND_MEMORY = True
    # OpenMP threads waiting at a barrier sleep instead of spinning: beside other busy processes a
    # spinning thread holds the CPU its late sibling needs, and a search ran 9 times slower
    # (benchmarks/threads_contention.py). OpenMP reads this when torch loads, after this line; a
    # value the user set wins.
    threads.drop_invalid_settings(os.environ, common.warn)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # A terminal or log that is not UTF-8 (LANG=en_US.ISO-8859-1, PYTHONIOENCODING=ascii) shows
    # what it cannot encode (τ, é) as an escape (\u03c4, \xe9), instead of a UnicodeEncodeError
    # ending the command, and unlike ? a name can still be told apart and typed.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")

    # SIGTERM (or SIGHUP) stops like Ctrl-C wherever it lands (loading data, creating a study), exit
    # code 128 + the signal;
    # the search and verify loops handle it themselves (common.stop_requests), saying what is kept.
    def on_sigterm(signum, frame) -> None:
        common.SIGTERMS.append(signum)
        interrupt(common.Terminated())

    for signum in common.STOPPING_SIGNALS:
        signal.signal(signum, on_sigterm)
    # What code outside any command step raises (a thread a plugin started, an object's __del__,
    # an atexit callback) is one warning line, not a traceback.
    threading.excepthook = lambda hook: _ignored(f"a thread ({hook.thread.name})", hook.exc_value)
    sys.unraisablehook = lambda hook: _ignored(
        " ".join(["code run on its own", *(hook.err_msg or "").removeprefix("Exception ignored").split()]),
        hook.exc_value,
    )
    try:
        _run()
    except SystemExit as e:
        _exit_without_waiting(e.code if isinstance(e.code, int) else int(e.code is not None))
        raise
    _exit_without_waiting(0)


def _run() -> None:
    """The command, its output flushed; a write to a full disk or a refused path is one line."""
    try:
        os.getcwd()
    except OSError:  # deleted or moved away: relative paths, and torch's own loading, would fail
        common.error_line(
            "the working directory no longer exists (deleted or moved): cd to an existing folder "
            "and run the command again"
        )
        sys.exit(2)
    try:
        try:
            app()
        finally:
            if not sys.stdout.closed:  # plugin code may have closed the real one
                sys.stdout.flush()  # what print() buffered: a full disk shows here, not at exit
    except OutputClosed:  # the reader of the output went away (| head): nothing to say
        sys.exit(common.OUTPUT_CLOSED)
    except ImportError as e:  # torch, imported where a command needs it, may not fit in memory
        if (failure := common.load_failure(e)) is None:
            raise
        common.error_line(failure)
        sys.exit(2)
    except OSError as e:
        if e.errno == errno.EPIPE:  # the same, found by the last flush
            closed_output(sys.stdout)
            sys.exit(common.OUTPUT_CLOSED)
        if e.errno not in DISK_FULL:
            failure = path_failure(e)  # a path the system refused, where no command caught it
            if failure is None:
                raise
            common.error_line(failure)
            sys.exit(2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the rest goes nowhere
        common.error_line(write_failure(e, "the output"))
        sys.exit(2)
    except SystemExit as e:
        # a SIGTERM taken by a command's own handler (common.stop_requests) that still ended the
        # command as an interruption, e.g. landing just before the dashboard's serving loop
        if common.SIGTERMS and e.code == common.INTERRUPTED:
            sys.exit(128 + common.SIGTERMS[-1])
        raise


def _exit_without_waiting(code: int) -> None:
    """End the process now with ``code`` when threads that are no daemons still run (plugin code
    may start one and never end it), instead of waiting for them forever as Python's exit does:
    one warning line, the output flushed, then ``os._exit``."""
    alive = [
        t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if not alive:
        return
    names = ", ".join(t.name for t in alive[:3]) + (", ..." if len(alive) > 3 else "")
    with contextlib.suppress(Exception):  # stderr may be gone
        common.warn(f"{len(alive)} thread(s) still running at exit ({names}); not waiting for them")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _ignored(where: str, error: BaseException | None) -> None:
    """One warning line on ``error``, raised by ``where`` outside any command step and ignored."""
    if error is None or isinstance(error, SystemExit):  # a thread's exit is no error
        return
    with contextlib.suppress(Exception):  # at exit, stderr may be gone
        common.warn(f"{where} raised {type(error).__name__}: {first_line(error)}; ignored")
