"""The command line's fast paths: what the light commands import, and the library constants the
command line copies to stay light."""

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import ntknas
from ntknas.cli import app
from ntknas.inputs.sources import SYNTHETIC
from ntknas.study.settings import Settings
from ntknas.study.studies import open_study

HEAVY = ("torch", "torchvision", "optuna", "sqlalchemy", "numpy", "matplotlib")
# Each command, and the heavy modules it may import; in this order, as imports accumulate.
LIGHT = (
    (["--help"], ()),
    (["spaces"], ()),
    *(([name, "--help"], ()) for name in ("search", "results", "verify", "plot", "dashboard", "score")),
    (["studies"], ("optuna", "sqlalchemy", "numpy")),
    (["results"], ("optuna", "sqlalchemy", "numpy")),
    (["results", "--format", "csv"], ("optuna", "sqlalchemy", "numpy")),
)
# Runs the commands in one interpreter; after each, prints a line: MARK argv | heavy modules loaded.
PROBE = """
import sys
from ntknas.cli import main
for argv in {commands!r}:
    sys.argv = ["ntknas", *argv]
    try:
        main()
    except SystemExit as e:
        assert e.code in (0, None), (argv, e.code)
    loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
    print("MARK", " ".join(argv), "|", " ".join(loaded))
"""


def test_light_commands_import_neither_torch_nor_optuna_until_they_need_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = open_study("tiny", None, Settings("nb201", SYNTHETIC, 8, "batch", 0, "params"), "random")
    study.add_trial(optuna.trial.create_trial(value=5.0, user_attrs={"config": "a", "params": 5}))
    probe = PROBE.format(commands=[argv for argv, _ in LIGHT], heavy=HEAVY)
    env = {**os.environ, "PYTHONPATH": str(Path(ntknas.__file__).parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    reports = [
        line.removeprefix("MARK ").split(" | ")
        for line in done.stdout.splitlines()
        if line.startswith("MARK ")
    ]
    assert [command for command, _ in reports] == [" ".join(argv) for argv, _ in LIGHT]
    for (command, loaded), (_, allowed) in zip(reports, LIGHT, strict=True):
        assert set(loaded.split()) <= set(allowed), f"ntknas {command} imported {loaded}"


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise(tmp_path):
    """Set before torch loads: spinning threads beside busy processes made scoring 9x slower."""
    probe = "import os, sys; from ntknas.cli import main; sys.argv = ['ntknas', 'spaces']\n"
    probe += "try:\n    main()\nexcept SystemExit:\n    print('MARK', os.environ['OMP_WAIT_POLICY'])"
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    base["PYTHONPATH"] = str(Path(ntknas.__file__).parents[1])
    for given, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        env = base if given is None else {**base, "OMP_WAIT_POLICY": given}
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert f"MARK {expected}" in done.stdout.splitlines(), done.stderr


def test_a_terminal_that_is_not_utf8_shows_escapes_instead_of_crashing(tmp_path):
    """`spaces` prints × (image sizes); an ASCII terminal ended it with UnicodeEncodeError. It
    shows the escape, which (unlike ?) tells one name from another and can be typed."""
    probe = "import sys; from ntknas.cli import main; sys.argv = ['ntknas', 'spaces']; main()"
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    env["PYTHONPATH"] = str(Path(ntknas.__file__).parents[1])
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "nb201" in done.stdout and "\\xd7" in done.stdout and "\u00d7" not in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cost", "flops"], "--cost is the second objective of --sampler nsga2, not of tpe; drop it"),
        (
            ["--verify-epochs", "3"],
            "--verify-epochs trains the --verify-top picks; add --verify-top K or drop it",
        ),
        (["--sampler", "nsga2", "--cost", "size"], "unknown --cost 'size'; choose one of: params, flops"),
    ],
)
def test_search_refuses_options_that_would_do_nothing(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["search", *args])
    assert done.exit_code == 2 and done.stderr.strip() == f"error: {message}"
    assert not (tmp_path / "results").exists()  # refused before anything was opened


def test_nsga2_refuses_an_objective_that_is_its_cost():
    from typer.testing import CliRunner

    from ntknas.cli import app

    done = CliRunner().invoke(app, ["search", "--sampler", "nsga2", "--objective", "params", "--trials", "2"])
    assert done.exit_code == 2
    assert done.stderr.strip() == (
        "error: --objective params and --cost params are one metric: nsga2 would weigh it against itself; "
        "choose another --cost (it is params unless given)"
    )
