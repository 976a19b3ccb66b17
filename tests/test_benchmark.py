"""`ntknas benchmark` end to end on a tiny ground-truth file (real rows of the development file)."""

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from ntknas import metrics
from ntknas.cli import app

TINY = Path(__file__).parent / "data" / "nb201_tiny.csv"
runner = CliRunner()


def run(*args):
    return runner.invoke(
        app, ["benchmark", "--ground-truth", str(TINY), "--batch-size", "8", *map(str, args)]
    )


def test_json_is_one_object_with_every_score():
    result = run("--format", "json", "--search", 4, "--runs", 3)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert report["n"] == 8 and report["default_score"] == metrics.DEFAULT == "ntk_score"
    assert set(report["scores"]) == set(metrics.METRICS)
    for row in report["scores"].values():
        assert set(row) == {"kendall_tau", "spearman_rho"}
        assert all(v is None or -1 <= v <= 1 for v in row.values())
    # the cut-off cell (10 % accuracy) scores -inf on the default, so it ranks last, as it should
    assert report["scores"]["ntk_score"]["kendall_tau"] > 0
    s = report["search"]
    assert s["k"] == 4 and s["runs"] == 3 and s["random_mean_acc"] <= s["optimum_mean_acc"]
    assert s["mean_acc"] <= s["optimum_mean_acc"] and report["seconds_per_architecture"] > 0


def test_default_only_sample_and_table():
    result = run("--scores", "default", "--sample", 5, "--seed", 1)  # only what the default needs
    assert result.exit_code == 0, result.output
    assert "ntk_score (default)" in result.stdout and "Ranking quality on 5 architectures" in result.stdout
    cond = run("--scores", "condition_number,params", "--format", "json")
    table = json.loads(cond.stdout)["scores"]
    assert set(table) == {"condition_number", "params"}
    assert not math.isnan(table["condition_number"]["kendall_tau"])
    assert "negated: lower is better" in run("--scores", "condition_number").stdout


def test_bad_input(tmp_path):
    (tmp_path / "cols.csv").write_text("id,arch,acc\n1,x,2\n")
    (tmp_path / "bad.csv").write_text("index,arch,cifar10_test_acc\n1,|nope~0|,90\n")
    cases = [
        (["--ground-truth", tmp_path / "missing.csv"], "does not exist"),
        (["--ground-truth", tmp_path / "cols.csv"], "lacks column(s) index, cifar10_test_acc"),
        (["--ground-truth", tmp_path / "bad.csv"], "malformed nb201 arch string"),
        (["--ground-truth", TINY, "--scores", "accuracy"], "unknown --scores entry 'accuracy'"),
        (["--ground-truth", TINY, "--sample", 99], "--sample must be between 2 and 8"),
        (["--ground-truth", TINY, "--search", 20], "--search must be between 1 and 8"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["benchmark", *map(str, args)])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
