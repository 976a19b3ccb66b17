"""`ntknas benchmark` end to end on a tiny ground-truth file (real rows of the development file)."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import search_spaces
from ntknas import metrics
from ntknas.cli import app
from ntknas.measure import count_params
from ntknas.ranking import kendall_tau, oriented

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "nb201_tiny.csv"
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


def acc_of(rows):
    return [float(r["cifar10_test_acc"]) for r in rows]


def test_save_writes_every_architectures_scores(tmp_path):
    saved = tmp_path / "out" / "scores.csv"
    result = run("--scores", "condition_number,params", "--format", "json", "--save", saved)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(saved.open()))
    truth = list(csv.DictReader(TINY.open()))
    assert [r["arch"] for r in rows] == [t["arch"] for t in truth] and len(rows) == 8
    assert acc_of(rows) == acc_of(truth)
    nb201 = search_spaces.get("nb201")
    built = [nb201.build(nb201.parse(r["arch"])) for r in rows]
    assert [float(r["params"]) for r in rows] == [count_params(m) for m in built]
    # the saved values are the ones correlated in the report
    kappa = np.array([float(r["condition_number"]) if r["condition_number"] else math.inf for r in rows])
    expected = kendall_tau(oriented(kappa, False), np.array(acc_of(rows)))
    assert json.loads(result.stdout)["scores"]["condition_number"]["kendall_tau"] == expected


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
        (["--ground-truth", TINY, "--save", tmp_path], "cannot write --save file"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["benchmark", *map(str, args)])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_fit_default_script_scores_as_the_product_does(tmp_path):
    spec = importlib.util.spec_from_file_location("fit_default", ROOT / "benchmarks" / "fit_default.py")
    fit_default = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_default)
    saved = tmp_path / "scores.csv"
    names = ",".join([*metrics.NTK_INPUTS, metrics.DEFAULT])
    assert run("--scores", names, "--save", saved).exit_code == 0
    terms, acc, columns = fit_default.load([str(saved)])
    assert sorted(acc) == sorted(acc_of(csv.DictReader(TINY.open())))
    rebuilt = fit_default.score(terms, metrics.TERMS)
    shipped = np.array(
        [float(r[metrics.DEFAULT]) if r[metrics.DEFAULT] else -np.inf for r in csv.DictReader(saved.open())]
    )
    order = np.argsort([int(r["index"]) for r in csv.DictReader(saved.open())], kind="stable")
    np.testing.assert_allclose(rebuilt, shipped[order], rtol=1e-12)
    assert np.isinf(rebuilt).sum() == 1 and set(columns) == set(metrics.NTK_INPUTS)  # the cut-off cell
