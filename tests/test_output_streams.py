"""The command line's standard streams, as a shell hands them over: a reader that goes away
(``| head``), a stream closed at start (``>&-``), a full disk behind stderr. Each in a process of
its own, as the stream belongs to the process: exit 141 for an output whose reader left (and
nothing on stderr), never a traceback, and the refused-input code 2 even when the error line
cannot be shown."""

import os
import subprocess
import sys

import pytest
from test_bad_input import KINDS, matches
from tiny_study import make_study

from ntknas.cli.common import OUTPUT_CLOSED

NTKNAS = [sys.executable, "-m", "ntknas"]
URL = "sqlite:///results/ntknas.db"
# Commands that write to stdout, from the help to a study's rows in each format.
WRITERS = [
    ["--help"],
    ["search", "--help"],
    ["spaces"],
    ["studies"],
    ["results", "tiny"],
    ["results", "tiny", "--format", "csv"],
    ["results", "tiny", "--format", "json"],
]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        make_study()
    finally:
        os.chdir(cwd)
    return root


def stored_bytes(root) -> bytes:
    return (root / "results" / "ntknas.db").read_bytes()


@pytest.mark.parametrize("args", WRITERS, ids=" ".join)
def test_a_reader_that_went_away_ends_the_command_with_141_and_nothing_said(study_dir, args):
    before = stored_bytes(study_dir)
    process = subprocess.Popen(
        [*NTKNAS, *args], cwd=study_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.stdout.close()  # before the command writes: its first write finds no reader
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == OUTPUT_CLOSED, stderr
    assert KINDS["an output whose reader went away"].outcome.startswith(f"exit {OUTPUT_CLOSED},")
    assert stderr == ""
    assert stored_bytes(study_dir) == before


@pytest.mark.parametrize("args", [WRITERS[2], WRITERS[5], ["results", "nope"]], ids=" ".join)
def test_a_stdout_closed_at_start_is_no_traceback(study_dir, args):
    done = subprocess.run(
        [*NTKNAS, *args],
        cwd=study_dir,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),  # a closed stdout, as `>&-` gives
    )
    assert done.returncode == (2 if args[-1] == "nope" else 0), done.stderr
    assert "Traceback" not in done.stderr


def test_an_error_line_that_cannot_be_shown_still_exits_2(study_dir):
    with open("/dev/full", "w") as full:
        done = subprocess.run([*NTKNAS, "results", "nope"], cwd=study_dir, stderr=full, timeout=120)
    assert done.returncode == 2


def test_a_deleted_working_directory_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = (
        "import os, sys; os.chdir(sys.argv[1]); os.rmdir(sys.argv[1]); "
        "sys.argv = ['ntknas', 'score', '--space', 'nb201']; from ntknas.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(gone)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    assert matches(f"error: {KINDS['a working directory that was deleted'].message}", done.stderr.strip())
