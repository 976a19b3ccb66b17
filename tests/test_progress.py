"""Long work shows itself: a live bar in a terminal, plain lines in a log (ntknas.cli.progress)."""

import io
import time

from rich.console import Console

from ntknas.cli import progress


def logged_lines(console: Console, wanted: str) -> list[str]:
    """The lines written so far, once one holds ``wanted`` (polled: the logger is a thread)."""
    for _ in range(2000):
        if wanted in console.file.getvalue():
            break
        time.sleep(0.005)
    return console.file.getvalue().splitlines()


def test_a_bar_in_a_log_writes_a_line_while_it_runs(monkeypatch):
    monkeypatch.setattr(progress, "FIRST_LINE_SECONDS", 0.01)
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.01)
    log = Console(file=io.StringIO(), width=100)  # not a terminal
    with progress.progress_bar(log, transient=True) as bar:
        task = bar.add_task("scoring 3 architectures", total=3, note="")
        assert logged_lines(log, "0/3")[0] == "scoring 3 architectures: 0/3, 0s"
        bar.update(task, completed=2, note="best -1.5")
        assert "scoring 3 architectures: 2/3, 0s · best -1.5" in logged_lines(log, "2/3")
    ended = len(log.file.getvalue())
    time.sleep(0.05)
    assert len(log.file.getvalue()) == ended  # the logger stopped with the bar


def test_a_short_phase_leaves_a_log_alone_and_a_terminal_gets_no_log_lines(monkeypatch):
    monkeypatch.setattr(progress, "FIRST_LINE_SECONDS", 3600.0)
    log = Console(file=io.StringIO(), width=100)
    with progress.phase("measuring ntk_score's reference", log) as step:
        step(5, 200)
    assert log.file.getvalue().strip() == ""
    monkeypatch.setattr(progress, "FIRST_LINE_SECONDS", 0.01)
    with progress.phase("measuring ntk_score's reference", log) as step:
        step(5, 200)
        assert "measuring ntk_score's reference: 5/200, 0s" in logged_lines(log, "5/200")
    terminal = Console(file=io.StringIO(), width=100, force_terminal=True)
    with progress.phase("measuring ntk_score's reference", terminal) as step:
        step(5, 200)
        time.sleep(0.05)
    assert ": 5/200" not in terminal.file.getvalue()


def test_a_bar_after_another_keeps_the_logs_pace(monkeypatch):
    """A new bar's first log line comes when the last bar's next one would have: a command whose
    phases follow one another is never silent for more than LOG_SECONDS (was: up to 2 × 20 s)."""
    monkeypatch.setattr(progress, "LAST_LINE", [])
    assert progress.first_wait(1000.0) == progress.FIRST_LINE_SECONDS  # nothing written yet
    monkeypatch.setattr(progress, "LAST_LINE", [1000.0])
    assert progress.first_wait(1015.0) == progress.LOG_SECONDS - 15.0
    assert progress.first_wait(1019.5) == 1.0  # almost due: after a second
    assert progress.first_wait(1030.0) == progress.FIRST_LINE_SECONDS  # long ago: a short phase stays quiet
    assert progress.first_wait(1000.5) == progress.LOG_SECONDS - 0.5


def test_a_line_written_is_remembered(monkeypatch):
    monkeypatch.setattr(progress, "LAST_LINE", [])
    bar = progress.progress_bar(Console(file=io.StringIO(), force_terminal=False))
    task = bar.add_task("x", total=2, note="")
    bar.write_line(bar.tasks[task])
    assert progress.LAST_LINE and abs(progress.LAST_LINE[0] - time.monotonic()) < 60
