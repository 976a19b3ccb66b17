"""Many local workers on one study: processes of their own, each running the search loop against
the same storage with its share of the CPU threads (or its GPU), supervised until they all end."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch

from ntknas.core import defaults, library_logs
from ntknas.core.errors import UserError, first_line, warnings_to
from ntknas.core.interrupts import interrupt
from ntknas.core.memory import available_memory, bound_to_available, own_memory
from ntknas.objectives.objective import Objective
from ntknas.run.request import SearchRequest
from ntknas.run.search import INTERRUPTED_REASON, search
from ntknas.study import heartbeat
from ntknas.study.storage import open_storage, redact
from ntknas.study.studies import open_study

STOPPED = 130  # exit code of a worker stopped on request
FAILED = 2  # exit code of a worker that met an error; its message goes to the supervisor
POLL_SECONDS = 1.0
STOP_SECONDS = 10.0  # how long a worker may take to stop on SIGTERM before it is killed


@dataclass(frozen=True)
class Ended:
    """How worker ``index`` ended: its exit code (negative when a signal killed it) and error."""

    index: int
    pid: int
    exit_code: int
    error: str | None = None

    def problem(self) -> str | None:
        """One line about a worker that neither finished nor was stopped on request, else None."""
        if self.exit_code in (0, STOPPED):
            return None
        who = f"worker {self.index} (pid {self.pid})"
        if self.error is not None:
            return f"{who} stopped: {self.error}"
        if self.exit_code < 0:
            killer = signal.Signals(-self.exit_code).name
            return f"{who} was killed by {killer}; the other workers retried its running trial"
        return f"{who} exited with code {self.exit_code}"


def check_memory(workers: int) -> None:
    """UserError when ``workers`` processes, each holding about the memory this one holds as its
    own (torch loaded, the minibatch: some 300 MB), would not fit in the memory available (the
    system's, or what this process's cgroup has left). No check where neither is known."""
    own, available = own_memory(), available_memory()
    if own is None or available is None or workers * own <= available:
        return
    raise UserError(
        f"--workers {workers} would take about {workers * own / 2**30:.1f} GiB of memory "
        f"({own / 2**20:.0f} MiB each: torch and the data), and {available / 2**30:.1f} GiB is "
        f"available; use --workers {max(1, available // own)} or fewer"
    )


def device_of(worker: int, device: str) -> str:
    """Where worker ``worker`` computes: on ``cuda`` with G GPUs, ``cuda:(worker mod G)``; any
    other device (``cpu``, ``cuda:K``) as given."""
    if device != "cuda":
        return device
    return f"cuda:{worker % max(1, torch.cuda.device_count())}"


def run(
    request: SearchRequest,
    score: Objective,
    workers: int,
    threads: int,
    stop: Callable[[], bool],
    poll: Callable[[], None],
) -> list[Ended]:
    """Run the search ``request`` asks for, scored by ``score`` (its reference prepared: each
    worker receives it), in ``workers`` new processes and wait until all of them have ended.

    Each worker runs torch with ``threads`` threads, on the device :func:`device_of` gives it.
    ``poll`` is called about every ``POLL_SECONDS`` (to show progress). Once ``stop()`` says True,
    each worker finishes its candidate and stops. A KeyboardInterrupt meanwhile (a second Ctrl-C)
    stops them at once, their running trials marked failed ("interrupted"), and propagates.
    """
    context = multiprocessing.get_context("spawn")
    _start_resource_tracker_deaf_to_hangups()
    storage = open_storage(request.storage)
    first = storage.get_n_trials(storage.get_study_id_from_name(request.study))  # the workers' from here
    stopping = context.Event()
    errors = context.SimpleQueue()
    processes = [
        context.Process(
            target=_work, args=(request, score, threads, i, stopping, errors), name=f"ntknas-worker-{i}"
        )
        for i in range(workers)
    ]
    # Workers start with SIGINT ignored (an ignored signal stays ignored across exec): Ctrl-C in a
    # terminal reaches them too, and the stop is this process's decision.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for p in processes:
            p.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        while running := [p.sentinel for p in processes if p.is_alive()]:
            if stop():
                stopping.set()
            poll()
            multiprocessing.connection.wait(running, timeout=POLL_SECONDS)
    except KeyboardInterrupt:
        _stop_now(processes, request, storage, first)
        raise
    poll()
    messages = {}
    while not errors.empty():
        index, message = errors.get()
        messages[index] = message
    return [Ended(i, p.pid, p.exitcode, messages.get(i)) for i, p in enumerate(processes)]


def _stop_now(processes: list, request: SearchRequest, storage, first: int) -> None:
    """Stop the workers at once: SIGTERM, on which each fails its running trial as "interrupted"
    and exits; a worker still alive ``STOP_SECONDS`` later (deep in a native call, or hung) is
    killed. Then the workers' running trials are failed here, with any trial numbered ``first`` or
    later still unlabelled (a worker stopped or killed between asking for a trial and labelling it
    leaves one; were it a live worker's on another machine, that worker finds it failed and goes
    on to its next)."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join()
    # Every worker is gone: what any of them left running is failed here, stopped or killed (a
    # signal can land between asking for a trial and labelling it, where a worker cannot fail it)
    gone = {heartbeat.worker_label(p.pid) for p in processes}
    heartbeat.fail_running_of(storage, request.study, gone, INTERRUPTED_REASON, unlabelled_from=first)


def check(ended: list[Ended], completed: int, trials: int) -> list[str]:
    """Lines to warn about workers that ended badly, when the study holds its ``trials``
    completed trials anyway; UserError naming the first problem when it does not."""
    problems = [line for e in ended if (line := e.problem()) is not None]
    if completed < trials:
        first = problems[0] if problems else "every worker ended"
        raise UserError(
            f"the workers stopped with {completed} of {trials} trials complete ({first}); "
            "fix that and run the same command to resume"
        )
    return problems


def _work(request: SearchRequest, score: Objective, threads: int, index: int, stopping, errors) -> None:
    """One worker process: the search loop on ``request``. Exits 0 once the study is complete,
    ``STOPPED`` when asked to stop (``stopping`` set, or SIGTERM), ``FAILED`` on an error."""
    for signum in defaults.STOPPING_SIGNALS:  # the supervisor's stop, and the terminal's closing
        signal.signal(signum, _interrupt)
    sys.unraisablehook = partial(_unraisable, stopping)
    library_logs.one_line_each(_warn, quiet=partial(_stopping, stopping))
    torch.set_num_threads(threads)
    with warnings_to(_warn):  # one line each, as the supervisor's own
        try:
            study = open_study(
                request.study, request.storage, request.settings, request.sampler, request.heartbeat
            )
            score = replace(score, device=device_of(index, request.device))
            if score.device == "cpu":
                bound_to_available()  # for this worker process's life
            search(
                study,
                score,
                request.settings,
                request.trials,
                stop=partial(_stopping, stopping),
            )
        except KeyboardInterrupt:
            sys.exit(STOPPED)
        except Exception as e:  # whatever ends this worker, the supervisor reports it in one line
            reason = redact(first_line(e), request.storage if isinstance(request.storage, str) else None)
            errors.put((index, reason if isinstance(e, UserError) else f"{type(e).__name__}: {reason}"))
            sys.exit(FAILED)


_SIGTERMS: list[int] = []


def _unraisable(stopping, unraisable) -> None:
    """What a worker's garbage-collection callbacks and finalizers raise: nothing once the worker
    is stopping (a stop that lands inside the storage's bookkeeping can leave a callback to fail on
    it; the supervisor says what happened), else one line on stderr, never a traceback."""
    error = unraisable.exc_value
    if not _stopping(stopping) and not isinstance(error, KeyboardInterrupt):
        _warn(f"a worker's cleanup raised {type(error).__name__}: {first_line(error)}; ignored")


def _stopping(stopping) -> bool:
    """Whether this worker was asked to stop (the supervisor's event, or a signal of its own)."""
    return stopping.is_set() or bool(_SIGTERMS)


def _warn(message: str) -> None:
    """One warning line on a worker's stderr (dropped when stderr is gone, as at exit)."""
    with contextlib.suppress(Exception):
        sys.stderr.write(f"warning: {message}\n")


def _start_resource_tracker_deaf_to_hangups() -> None:
    """Start multiprocessing's resource tracker (a helper process the workers share) ignoring
    SIGHUP and SIGQUIT, as it ignores SIGINT and SIGTERM: a closing terminal hangs up every process
    of its session (and Ctrl-\\ quits them all), and a tracker killed so makes the others print
    tracebacks as they exit."""
    from multiprocessing import resource_tracker

    deaf = [getattr(signal, name) for name in ("SIGHUP", "SIGQUIT") if hasattr(signal, name)]
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in deaf}  # the tracker inherits
    try:
        resource_tracker.ensure_running()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum, frame) -> None:
    """SIGTERM in a worker: stop at once. Should the KeyboardInterrupt land in a garbage-collection
    callback, where Python swallows it, the flag stops the loop before its next candidate."""
    _SIGTERMS.append(signum)
    interrupt()
