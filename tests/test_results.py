"""`ntknas results`: one row per configuration with how many trials reused it; one number format
per column across the table, CSV and JSON; --top caps the table (10 by default), and CSV and JSON
only when given."""

import csv
import dataclasses
import io
import json
import warnings

import optuna
import pytest
from test_bad_input import KINDS, matches
from typer.testing import CliRunner

from ntknas.cli import app
from ntknas.inputs.sources import SYNTHETIC
from ntknas.outputs import tables
from ntknas.study.records import REUSED_FROM
from ntknas.study.settings import Settings
from ntknas.study.studies import open_study

INTEGERS = ("trial", "params", "flops", "reuses")
REUSES = {11: 2, 3: 1}  # configuration → trials that reused its values


def attrs(i: int) -> dict:
    """Configuration c{i}'s attributes, sizes stored as floats, as older studies hold them."""
    return {
        "config": f"c{i}",
        "ntk_score": i + 0.25,
        "condition_number": 100.0 / (i + 1),
        "lambda_max": 524.3 * 10 ** (i % 5),
        "params": 16894282.0 + i,
        "flops": 1.11816e7 + i,
        "seconds": 0.5,
    }


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = open_study("s", None, Settings("nb201", SYNTHETIC, 8, "batch", 0, "ntk_score"), "random")
    for i in range(12):
        made.add_trial(optuna.trial.create_trial(value=i + 0.25, user_attrs=attrs(i)))
    numbers = {t.user_attrs["config"]: t.number for t in made.trials}
    for i, count in REUSES.items():
        for _ in range(count):
            reused = {**attrs(i), REUSED_FROM: numbers[f"c{i}"]}
            made.add_trial(optuna.trial.create_trial(value=i + 0.25, user_attrs=reused))
    return made


def results(*args: str) -> str:
    done = CliRunner().invoke(app, ["results", *args])
    assert done.exit_code == 0, done.output
    return done.stdout


def table_rows(text: str) -> list[dict[str, str]]:
    """The rows of a rich table, by column name."""
    lines = [line for line in text.splitlines() if line.startswith(("┃", "│"))]
    header, *body = ([c.strip() for c in line.split(line[0])[1:-1]] for line in lines)
    return [dict(zip(header, row, strict=True)) for row in body]


def test_one_row_per_configuration_with_its_reuses(study):
    rows = json.loads(results("--format", "json"))
    assert [r["config"] for r in rows] == [f"c{i}" for i in reversed(range(12))]
    assert {r["config"]: r["reuses"] for r in rows} == {f"c{i}": REUSES.get(i, 0) for i in range(12)}
    assert [r["trial"] for r in rows] == list(reversed(range(12)))  # the trial that scored it


def test_top_caps_the_table_by_default_and_csv_and_json_only_when_given(study):
    table = results()
    assert "Top 10 of 12 in study 's' by ntk_score (ntk_score: higher is better)" in table
    assert len(table_rows(table)) == 10
    assert len(list(csv.DictReader(io.StringIO(results("--format", "csv"))))) == 12
    assert len(json.loads(results("--format", "json"))) == 12
    assert len(table_rows(results("--top", "3"))) == 3
    assert len(list(csv.DictReader(io.StringIO(results("--format", "csv", "--top", "3"))))) == 3
    assert [r["config"] for r in json.loads(results("--format", "json", "--top", "2"))] == ["c11", "c10"]


def test_each_column_has_one_number_format_in_table_csv_and_json(study):
    table = {r["config"]: r for r in table_rows(results("--top", "12"))}
    rows = {r["config"]: r for r in csv.DictReader(io.StringIO(results("--format", "csv")))}
    items = {r["config"]: r for r in json.loads(results("--format", "json"))}
    for config, item in items.items():
        for column in INTEGERS:
            value = item[column]
            assert type(value) is int, (column, value)
            assert rows[config][column] == str(value)
            assert table[config][column] == f"{value:,}"
        assert item["params"] == 16894282 + int(config[1:])
        assert item["flops"] == 11181600 + int(config[1:])
        for column in ("ntk_score", "condition_number", "lambda_max", "seconds"):
            assert type(item[column]) is float and float(rows[config][column]) == item[column]
        assert table[config]["ntk_score"] == f"{item['ntk_score']:.4g}"
    assert not any(
        "e+" in row["params"] or "M" in row["params"] or "." in row["params"] for row in table.values()
    )


def test_a_float_column_is_scientific_throughout_when_one_value_needs_it():
    assert tables.float_spec("lambda_max", [9632.0, 524.3, 1.604e6]) == ".3e"
    assert [tables.cell("lambda_max", v, ".3e") for v in (9632.0, 524.3, 1.604e6)] == [
        "9.632e+03",
        "5.243e+02",
        "1.604e+06",
    ]
    assert tables.float_spec("ntk_score", [2.004, 10.44, -0.09461, float("nan"), None]) == ".4g"
    assert tables.float_spec("params", [16894282.0, 1.0]) == ".4g"  # an integer column: no floats
    assert tables.cell("params", 16894282.0) == "16,894,282"


def test_a_table_cuts_a_long_configuration_and_csv_and_json_keep_it_whole():
    from rich.console import Console

    config = "w=" + "8," * 5000  # a plugin's describe() may run to pages
    rows = [{"trial": 0, "config": config, "params": 10}]
    table = tables.render(rows, ["trial", "config", "params"], "t")
    console = Console(width=400, record=True, file=io.StringIO())
    console.print(table)
    shown = console.export_text()
    assert config[: tables.CONFIG_SHOWN] + "…" in shown.replace("\n", "").replace("│", "").replace(" ", "")
    assert len(shown) < 3 * 400 * 6  # a few lines, not a page per row
    assert config in tables.to_csv(rows, ["trial", "config", "params"])


def test_trials_the_table_leaves_out_are_said_in_one_line(study):
    assert "not shown" not in CliRunner().invoke(app, ["results", "s"]).stderr
    study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={"seconds": 0.5}))  # other code's
    with warnings.catch_warnings():  # Optuna: heartbeats are meant for Study.optimize
        warnings.simplefilter("ignore", UserWarning)
        study.ask()  # trials still running
        study.ask()
    done = CliRunner().invoke(app, ["results", "s", "--format", "csv"])
    assert done.exit_code == 0 and done.stderr.replace("\n", " ").strip() == (
        "warning: not shown: 2 trials still running (a search is scoring them, or one that stopped left "
        "them: the next search of the study fails them and tries again); 1 completed trial without a "
        "stored configuration (added by other code than ntknas)"
    )
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 12


def test_a_study_without_a_scored_candidate_says_why(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = open_study("s", None, Settings("nb201", SYNTHETIC, 8, "batch", 0, "ntk_score"), "random")
    done = CliRunner().invoke(app, ["results"])
    assert done.exit_code == 0 and "study 's' has no scored candidate: it has no trials" in done.stderr
    for reason in ("RuntimeError: one", "RuntimeError: [/x] two"):
        failed = optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, user_attrs={"fail_reason": reason}
        )
        made.add_trial(failed)
    made.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED))
    done = CliRunner().invoke(app, ["results", "--format", "csv"])
    assert done.exit_code == 0 and done.stdout.startswith("trial,")
    expected = "no scored candidate: 2 trials failed, 1 trial pruned (the last: RuntimeError: [/x] two)"
    assert expected in done.stderr.replace("\n", " ")


# Values a hand or another program may store in a setting: of the wrong kind, empty, or out of range.
HOSTILE_VALUES = ("nope", "", " ", "8", 0, -1, 1, 2**40, 1.5, float("nan"), True, None, [1, 2], {"a": 1})


@pytest.mark.parametrize("key", [f.name for f in dataclasses.fields(Settings)])
def test_a_stored_setting_edited_by_hand_is_one_line_in_every_reader(study, key):
    """Every setting, given every hostile value with Optuna's public API: Settings.from_attrs (which
    every command reading a study goes through) either reads it as a valid setting or refuses it in
    one UserError naming the study, the setting and its value; `results` is then one line, exit 2,
    and `studies` still lists the storage."""
    from ntknas.core.errors import UserError

    runner = CliRunner()
    good = dict(study.user_attrs)
    for value in HOSTILE_VALUES:
        study.set_user_attr(key, value)
        stored = {**good, key: value}
        try:
            settings = Settings.from_attrs("s", stored)
        except UserError as e:
            assert str(e).startswith(f"study 's' stores {key}="), e
            done = runner.invoke(app, ["results", "s"])
            assert done.exit_code == 2 and done.stderr.count("\n") == 1, done.output
            assert done.stderr.startswith(f"error: study 's' stores {key}=")
        else:  # what it accepts is a valid value of that setting: the budget, for one, describes
            assert settings.budget.describe() is not None and settings.higher_is_better in (True, False)
            assert runner.invoke(app, ["results", "s"]).exit_code == 0
        listed = runner.invoke(app, ["studies"])
        assert listed.exit_code == 0 and "Traceback" not in listed.output, listed.output
    study.set_user_attr(key, good[key])


def test_the_documented_stored_setting_row(study):
    study.set_user_attr("objective", "nope")
    done = CliRunner().invoke(app, ["results", "s"])
    assert done.exit_code == 2
    row = KINDS["a stored setting edited by hand"]
    assert matches("error: " + row.message.replace("'nb201'", "'s'"), done.stderr.strip())
