"""`ntknas benchmark` end to end on a tiny ground-truth file (real rows of the development file)."""

import csv
import importlib.util
import io
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import search_spaces
from ntknas.cli import app
from ntknas.core.errors import UserError
from ntknas.objectives import reference
from ntknas.run import benchmark
from ntknas.scoring import metrics
from ntknas.scoring.measure import count_params
from ntknas.scoring.ranking import kendall_tau, oriented, spearman_rho
from scores import proxies

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "nb201_tiny.csv"
runner = CliRunner()


def run(*args):
    return runner.invoke(
        app, ["benchmark", "--ground-truth", str(TINY), "--batch-size", "8", *map(str, args)]
    )


def strict(text):
    """Parse JSON as any strict parser would: NaN and Infinity tokens fail."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"non-standard JSON token {token}"))


def rows_of(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def saved_values(path, name):
    return np.array([float(r[name]) if r[name] else np.nan for r in rows_of(path)])


def test_json_is_one_object_with_every_score(tmp_path):
    saved = tmp_path / "scores.csv"
    result = run("--format", "json", "--search", 4, "--runs", 3, "--save", saved)
    assert result.exit_code == 0, result.output
    report = strict(result.stdout)  # exactly one JSON object, nothing else on stdout
    assert report["n"] == 8 and report["default_score"] == metrics.DEFAULT == "ntk_score"
    acc = np.array(acc_of(rows_of(saved)))
    assert set(report["scores"]) == set(metrics.METRICS)
    for name, metric in metrics.METRICS.items():  # each correlation is the one of the saved scores
        score = oriented(saved_values(saved, name), metric.higher_is_better)
        expected = {"kendall_tau": kendall_tau(score, acc), "spearman_rho": spearman_rho(score, acc)}
        assert report["scores"][name] == {k: None if math.isnan(v) else v for k, v in expected.items()}, name
    # the cut-off cell (10 % accuracy) scores -inf on the default, so it ranks last, as it should
    assert report["scores"]["ntk_score"]["kendall_tau"] > 0
    assert report["search"] == {
        **benchmark.search_experiment(saved_values(saved, "ntk_score"), True, acc, 4, 3, 0),
        "score": "ntk_score",
    }
    assert report["seconds_per_architecture"] > 0


def test_default_only_sample_and_table(tmp_path):
    result = run("--scores", "default", "--sample", 5, "--seed", 1)  # only what the default needs
    assert result.exit_code == 0, result.output
    assert "ntk_score (default)" in result.stdout and "Ranking quality on 5 architectures" in result.stdout
    saved = tmp_path / "scores.csv"
    cond = run("--scores", "condition_number,params", "--format", "json", "--save", saved)
    table = strict(cond.stdout)["scores"]
    assert rows_of(saved)[0].keys() == {"index", "arch", "cifar10_test_acc", *table, "scored_with"}
    acc = np.array(acc_of(rows_of(saved)))
    kappa = oriented(saved_values(saved, "condition_number"), higher_is_better=False)
    assert table["condition_number"]["kendall_tau"] == kendall_tau(kappa, acc) > 0
    assert "negated: lower is better" in run("--scores", "condition_number").stdout


def acc_of(rows):
    return [float(r["cifar10_test_acc"]) for r in rows]


def test_save_writes_every_architectures_scores(tmp_path):
    saved = tmp_path / "out" / "scores.csv"
    result = run("--scores", "condition_number,params", "--format", "json", "--save", saved)
    assert result.exit_code == 0, result.output
    rows = rows_of(saved)
    truth = rows_of(TINY)
    assert [r["arch"] for r in rows] == [t["arch"] for t in truth] and len(rows) == 8
    assert acc_of(rows) == acc_of(truth)
    assert {r["scored_with"] for r in rows} == {
        "space=nb201 data=cifar10-sample batch_size=8 bn=batch seed=0 repeats=1 image_size=32"
    }
    nb201 = search_spaces.get("nb201")
    built = [nb201.build(nb201.parse(r["arch"])) for r in rows]
    assert [float(r["params"]) for r in rows] == [count_params(m) for m in built]
    # the saved values are the ones correlated in the report
    kappa = np.array([float(r["condition_number"]) if r["condition_number"] else math.inf for r in rows])
    expected = kendall_tau(oriented(kappa, False), np.array(acc_of(rows)))
    assert json.loads(result.stdout)["scores"]["condition_number"]["kendall_tau"] == expected


def test_a_save_file_is_resumed_only_with_the_settings_it_was_scored_with(tmp_path):
    from test_bad_input import KINDS, matches

    saved = tmp_path / "scores.csv"
    assert run("--scores", "params", "--data", "synthetic", "--save", saved).exit_code == 0
    lines = saved.read_text().splitlines()
    saved.write_text("\n".join(lines[:5]) + "\n")  # a run killed after 4 rows
    before = saved.read_bytes()
    other = run("--scores", "params", "--data", "synthetic", "--bn", "eval", "--save", saved)
    kept = KINDS["a --save file scored with other settings"].message.replace("kept.csv", str(saved))
    assert matches(f"error: {kept}", other.stderr.strip())
    assert other.exit_code == 2 and other.stderr.strip() == (
        f"error: --save file {saved} line 2 was scored with 'space=nb201 data=synthetic batch_size=8 "
        "bn=batch seed=0 repeats=1 image_size=32', not 'space=nb201 data=synthetic batch_size=8 bn=eval "
        "seed=0 repeats=1 image_size=32'; give another --save path, or delete the file"
    )
    assert saved.read_bytes() == before
    same = run("--scores", "params", "--data", "synthetic", "--save", saved)
    assert same.exit_code == 0 and "kept the 4 of 8 architectures" in same.stderr


def test_bad_input(tmp_path):
    (tmp_path / "cols.csv").write_text("id,arch,acc\n1,x,2\n")
    (tmp_path / "bad.csv").write_text("index,arch,cifar10_test_acc\n1,|nope~0|,90\n2,|nope~1|,80\n")
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
    space = fit_default.load("nb201", str(saved), batch=8)
    assert sorted(space.acc) == sorted(acc_of(rows_of(TINY)))
    assert space.placed == reference.lookup(search_spaces.get("nb201"), 32, 10, 8).terms
    rebuilt = fit_default.score(space.terms, metrics.WEIGHTS, space.placed)
    shipped = np.array([float(r[metrics.DEFAULT]) if r[metrics.DEFAULT] else -np.inf for r in rows_of(saved)])
    order = np.argsort([int(r["index"]) for r in rows_of(saved)], kind="stable")
    np.testing.assert_allclose(rebuilt, shipped[order], rtol=1e-12)
    assert np.isinf(rebuilt).sum() == 1  # the cut-off cell
    assert set(space.columns) == set(metrics.NTK_INPUTS)


HEADER = "index,arch,cifar10_test_acc,cifar100_test_acc\n"
ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"
OTHER = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|skip_connect~2|"


def ground_truth(tmp_path, text, name="truth.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_ground_truth_rows_target_and_byte_order_mark(tmp_path):
    path = ground_truth(
        tmp_path, "\ufeff" + HEADER + f"1,{ARCH},91.5,70.25\n\n2,{OTHER},84.0,60.0\n", encoding="utf-8"
    )
    truth = benchmark.load_ground_truth(path)
    assert truth.index == ("1", "2") and truth.arch == (ARCH, OTHER) and truth.acc.tolist() == [91.5, 84.0]
    assert truth.lines == (2, 4) and truth.where(1) == f"{path} line 4"
    assert benchmark.load_ground_truth(path, target="cifar100_test_acc").acc.tolist() == [70.25, 60.0]
    assert truth.subset(np.array([1])).lines == (4,)


@pytest.mark.parametrize(
    "rows,target,message",
    [
        (
            f"1,{ARCH},high,1\n",
            "cifar10_test_acc",
            "line 2: cifar10_test_acc 'high' is not a number (accuracy in %)",
        ),
        (f"1,{ARCH},nan,1\n", "cifar10_test_acc", "line 2: cifar10_test_acc nan is not a finite number"),
        (
            f'1,"{ARCH}",90,1\n2,{OTHER},-inf,1\n',
            "cifar10_test_acc",
            "line 3: cifar10_test_acc -inf is not a finite",
        ),
        (
            f"1,{ARCH},912.5,1\n",
            "cifar10_test_acc",
            "line 2: cifar10_test_acc 912.5 is not an accuracy from 0 to 100 %",
        ),
        (
            f"1,{ARCH},90,-1\n",
            "cifar100_test_acc",
            "line 2: cifar100_test_acc -1 is not an accuracy from 0 to 100 %",
        ),
        (f"1,{ARCH},90,1\n2,{ARCH},91,1\n", "cifar10_test_acc", f"line 3 repeats arch '{ARCH}' of line 2"),
        (f"7,{ARCH},90,1\n7,{OTHER},91,1\n", "cifar10_test_acc", "line 3 repeats index '7' of line 2"),
        (f"1,{ARCH}\n", "cifar10_test_acc", "line 2 has 2 cells, not 4; fix that row"),
        (
            f"1,{ARCH},90,1\n",
            "imagenet16_test_acc",
            "lacks column(s) imagenet16_test_acc; it needs index,arch,",
        ),
    ],
)
def test_malformed_ground_truth_names_the_line(tmp_path, rows, target, message):
    path = ground_truth(tmp_path, HEADER + rows)
    with pytest.raises(UserError) as info:
        benchmark.load_ground_truth(path, target=target)
    assert str(info.value).startswith(f"{path} {message}") or str(info.value).startswith(f"{path}: {message}")


@pytest.mark.parametrize("seed", range(12))
def test_a_row_with_a_comma_too_many_is_refused_in_every_benchmark_csv(tmp_path, seed):
    """A cell typed with a thousands separator (1,073,306) shifts the cells after it: generated
    rows with a comma put into one cell are refused by the reader of every CSV (ground truth,
    --scored), naming the line; cells beyond the header that are empty are only trailing commas."""
    rng = np.random.default_rng(seed)
    rows = [["1", ARCH, "91.5", "70.25"], ["2", OTHER, "84.0", "60.0"]]
    truth = benchmark.load_ground_truth(
        ground_truth(tmp_path, HEADER + "".join(",".join(row) + "\n" for row in rows), "ok.csv")
    )
    line, cell = int(rng.integers(0, 2)), int(rng.integers(0, 4))
    rows[line][cell] = rows[line][cell][:1] + "," + rows[line][cell][1:]
    text = HEADER + "".join(",".join(row) + "\n" for row in rows)
    path = ground_truth(tmp_path, text)
    message = rf"line {line + 2} has 5 cells, not 4; fix that row \(quote a cell that holds a comma\)"
    with pytest.raises(UserError, match=message):
        benchmark.load_ground_truth(path)
    with pytest.raises(UserError, match=message):
        benchmark.read_scores(path, truth, None)
    joined = ground_truth(tmp_path, HEADER * 2 + text.split("\n", 1)[1], "joined.csv")
    with pytest.raises(UserError, match=r"joined\.csv line 2 repeats the header of line 1; keep one header"):
        benchmark.load_ground_truth(joined)
    trailing = ground_truth(
        tmp_path, HEADER + f"1,{ARCH},91.5,70.25,,\n2,{OTHER},84.0,60.0,\n", "trailing.csv"
    )
    assert benchmark.load_ground_truth(trailing).acc.tolist() == [91.5, 84.0]


def test_the_documented_comma_row(tmp_path, monkeypatch):
    from test_bad_input import KINDS, matches

    monkeypatch.chdir(tmp_path)
    ground_truth(tmp_path, HEADER + f"1,{ARCH},91.5,70.25\n2,{OTHER},1,073,306,60.0\n", "gt.csv")
    with pytest.raises(UserError) as info:
        benchmark.load_ground_truth("gt.csv")
    assert matches(KINDS["a comma too many in a CSV row"].message, str(info.value)), str(info.value)


def test_a_missing_target_lists_the_files_columns(tmp_path):
    path = ground_truth(tmp_path, HEADER + f"1,{ARCH},90,1\n")
    with pytest.raises(UserError) as info:
        benchmark.load_ground_truth(path, target="accuracy")
    assert str(info.value) == (
        f"{path} lacks column(s) accuracy; it needs index,arch,accuracy and has: index, arch, "
        "cifar10_test_acc, cifar100_test_acc"
    )


def test_a_malformed_arch_string_names_its_line_before_any_scoring(tmp_path, monkeypatch):
    path = ground_truth(
        tmp_path, HEADER + f"1,{ARCH},90,1\n2,|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|,80,1\n"
    )
    monkeypatch.setattr(metrics, "compute", lambda *a, **k: pytest.fail("scored before the CSV was checked"))
    with pytest.raises(UserError) as info:
        benchmark.score_all(
            benchmark.load_ground_truth(path),
            search_spaces.get("nb201"),
            ["params"],
            data_source="synthetic",
            batch_size=4,
            bn="batch",
            repeats=1,
            seed=0,
            device="cpu",
        )
    assert str(info.value) == (
        f"{path} line 3: unknown op 'conv' on edge 0→1 of the nb201 arch string; "
        "ops: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"
    )


def test_a_failing_metric_keeps_the_others(monkeypatch):
    truth = benchmark.load_ground_truth(TINY)
    original = proxies.synflow
    calls = iter(range(100))

    def flaky(model, inputs):
        if next(calls) == 1:  # the second architecture
            raise RuntimeError("synflow broke\nsecond line")
        return original(model, inputs)

    monkeypatch.setattr(proxies, "synflow", flaky)
    failures = []
    names = ["params", "synflow", "ntk_score", "condition_number"]
    values, _ = benchmark.score_all(
        truth.subset(np.arange(3)),
        search_spaces.get("nb201"),
        names,
        data_source="cifar10-sample",
        batch_size=8,
        bn="batch",
        repeats=1,
        seed=0,
        device="cpu",
        failed=lambda row, metric, reason: failures.append((row, metric, reason)),
        reference=reference.lookup(search_spaces.get("nb201"), 32, 10).terms,
    )
    assert failures == [
        (1, "synflow", "RuntimeError: synflow broke"),
        (1, "ntk_score", "RuntimeError: synflow broke"),
    ]
    assert np.isnan(values["synflow"][1]) and np.isnan(values["ntk_score"][1])
    assert np.isfinite(values["params"]).all() and np.isfinite(values["condition_number"]).all()
    assert np.isfinite(values["synflow"][[0, 2]]).all() and np.isfinite(values["ntk_score"][[0, 2]]).all()


def test_a_metric_without_values_is_one_warning_naming_the_first_failure(monkeypatch, tmp_path):
    """A metric that failed on some architectures ranks them last and says so; one that failed on
    all of them says its τ and ρ are n/a. Infinities are values: saved and read back as such."""
    calls = iter(range(100))

    def flaky(model, inputs):
        if next(calls) in (0, 2):
            raise RuntimeError("synflow broke\nsecond line")
        return 1.0

    def broken(model, inputs, *, bn):
        raise ValueError("no codes")

    monkeypatch.setattr(proxies, "synflow", flaky)
    monkeypatch.setattr(proxies, "naswot", broken)
    save = tmp_path / "s.csv"
    result = run("--scores", "synflow,naswot,params", "--sample", 4, "--save", save)
    assert result.exit_code == 0, result.output
    first = benchmark.sample(benchmark.load_ground_truth(TINY), 4, 0)
    assert result.stderr.splitlines()[-2:] == [
        f"warning: synflow has no value for 2 of 4 architectures (first at {first.where(0)}: "
        "RuntimeError: synflow broke); they rank last",
        f"warning: naswot has no value for any of the 4 architectures (first at {first.where(0)}: "
        "ValueError: no codes); its τ and ρ are n/a",
    ]
    again = run("--scored", save, "--sample", 4)
    assert again.exit_code == 0, again.output
    assert "warning: synflow has no value for 2 of 4 architectures" in again.stderr
    assert "its cell is empty or NaN in the --scored file" in again.stderr


def test_an_infinite_score_is_saved_as_a_value(tmp_path):
    truth = benchmark.load_ground_truth(TINY).subset(np.arange(2))
    path = tmp_path / "s.csv"
    benchmark.write_scores(path, truth, {"condition_number": np.array([math.inf, 2.0])}, "by hand")
    values = benchmark.read_scores(path, truth, None)
    assert values["condition_number"].tolist() == [math.inf, 2.0]


def test_save_never_replaces_the_ground_truth(tmp_path):
    truth = tmp_path / "truth.csv"
    shutil.copy(TINY, truth)
    os.symlink(truth, tmp_path / "alias.csv")
    os.link(truth, tmp_path / "hard.csv")
    before = truth.read_bytes()
    for target in (truth, tmp_path / "alias.csv", tmp_path / "hard.csv"):
        result = runner.invoke(
            app,
            [
                "benchmark",
                "--ground-truth",
                str(truth),
                "--batch-size",
                "8",
                "--scores",
                "params",
                "--save",
                str(target),
            ],
        )
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines()[-1] == (
            f"error: --save {target} is the --ground-truth file {truth}; "
            "writing it would destroy that input: choose another path"
        )
        assert truth.read_bytes() == before and (tmp_path / "alias.csv").is_symlink()
    with pytest.raises(UserError, match="is the --ground-truth file"):
        benchmark.check_save(tmp_path / "hard.csv", truth)  # checked before scoring, once the CLI asks


def test_scored_ranks_saved_scores_against_another_target_without_scoring(tmp_path, monkeypatch):
    saved, params_only = tmp_path / "scores.csv", tmp_path / "params.csv"
    assert run("--scores", "condition_number,params", "--save", saved).exit_code == 0
    assert run("--scores", "params", "--save", params_only).exit_code == 0
    truth = tmp_path / "truth.csv"  # the tiny file with a second accuracy column, its reverse
    rows = rows_of(TINY)
    truth.write_text(
        "index,arch,cifar10_test_acc,cifar100_test_acc\n"
        + "".join(
            f"{r['index']},{r['arch']},{r['cifar10_test_acc']},{100 - float(r['cifar10_test_acc'])}\n"
            for r in rows
        )
    )
    monkeypatch.setattr(metrics, "compute", lambda *a, **k: pytest.fail("scored again"))
    first = runner.invoke(app, ["benchmark", "--ground-truth", truth, "--scored", saved, "--format", "json"])
    other = ["benchmark", "--ground-truth", truth, "--scored", saved, "--target", "cifar100_test_acc"]
    second = runner.invoke(app, [*other, "--format", "json"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    c10, c100 = json.loads(first.stdout), json.loads(second.stdout)
    assert c10["scored"] == str(saved) and set(c10["scores"]) == {"condition_number", "params"}
    for name in ("condition_number", "params"):  # the reversed accuracies reverse every correlation
        assert c100["scores"][name]["kendall_tau"] == pytest.approx(-c10["scores"][name]["kendall_tau"])
    table = runner.invoke(app, [*other, "--search", "3", "--max-params", "1M", "--scores", "params"])
    assert table.exit_code == 0 and "scores read from" in table.stdout, table.output
    assert "best of 3 random architectures within the budget --max-params 1,000,000" in table.stdout
    assert "by params, 10 runs" in table.stdout  # the score the searches ranked by
    first_held = runner.invoke(
        app, ["benchmark", "--ground-truth", truth, "--scored", params_only, "--search", "3"]
    )
    assert first_held.exit_code == 0 and "by params, 10 runs" in first_held.stdout, first_held.output
    assert first_held.stderr == ""  # no scoring option given: nothing to say
    ignored = runner.invoke(app, [*other, "--bn", "eval", "--image-size", "16", "--data", "synthetic"])
    assert ignored.exit_code == 0, ignored.output
    assert ignored.stderr.replace("\n", " ").strip() == (
        "warning: --bn, --data, --image-size have no effect with --scored: its scores were measured with "
        "the settings its scored_with column records"
    )


def test_scored_files_that_do_not_fit(tmp_path):
    saved = tmp_path / "scores.csv"
    assert run("--scores", "params", "--save", saved).exit_code == 0
    text = [line.rsplit(",", 1)[0] for line in saved.read_text().splitlines()]  # without scored_with
    short = tmp_path / "short.csv"
    short.write_text("\n".join(text[:-1]) + "\n")  # the last architecture is missing
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([text[0], text[1].rsplit(",", 1)[0] + ",lots", *text[2:]]) + "\n")
    missing_index = rows_of(TINY)[-1]["index"]
    first = text[1].split(",")  # index, arch, accuracy, params
    other_arch = tmp_path / "other.csv"
    swapped = text[2].split(",")[1]
    other_arch.write_text("\n".join([text[0], ",".join([first[0], swapped, *first[2:]]), *text[2:]]) + "\n")
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([*text, text[1]]) + "\n")
    column = tmp_path / "column.csv"
    column.write_text("\n".join(f"{line},{line.rsplit(',', 1)[1]}" for line in text) + "\n")
    negative = tmp_path / "negative.csv"
    negative.write_text("\n".join([text[0], ",".join([*first[:3], "-5"]), *text[2:]]) + "\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n".join([text[0], *(line.rsplit(",", 1)[0] + "," for line in text[1:])]) + "\n")
    cases = [
        (
            ["--scored", other_arch],
            f"--scored file {other_arch} line 2 scores another architecture for index",
        ),
        (
            ["--scored", twice],
            f"--scored file {twice} line {len(text) + 1} repeats index '{first[0]}' of line 2",
        ),
        (["--scored", column], f"--scored file {column} has column(s) params twice; keep one of each"),
        (["--scored", negative], f"--scored file {negative} line 2: params -5 is negative"),
        (["--scored", empty], f"--scored file {empty} holds no value of params; score with --save"),
        (["--scored", tmp_path / "nope.csv"], f"--scored file {tmp_path / 'nope.csv'} does not exist"),
        (["--scored", short], f"--scored file {short} has no row for index {missing_index} ({TINY} line 9)"),
        (["--scored", bad], f"--scored file {bad} line 2: params 'lots' is not a number"),
        (["--scored", saved, "--scores", "synflow"], f"--scored file {saved} lacks synflow"),
        (
            ["--scored", saved, "--save", tmp_path / "x.csv"],
            "--scored reads saved scores and --save writes new",
        ),
        (["--scored", saved, "--search", "3", "--max-flops", "1M"], f"--scored file {saved} lacks flops"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)


def test_an_interrupted_save_resumes_where_it_stopped(tmp_path):
    names = ["condition_number", "params"]
    whole, resumed = tmp_path / "whole.csv", tmp_path / "resumed.csv"
    assert run("--scores", ",".join(names), "--save", whole).exit_code == 0
    truth = benchmark.load_ground_truth(TINY)

    def stop_after_three(done: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    settings = {"data_source": "cifar10-sample", "batch_size": 8, "bn": "batch", "repeats": 1, "seed": 0}
    how = benchmark.scored_with("nb201", "cifar10-sample", 8, "batch", 0, 1, 32)  # as `run` scores
    with benchmark.SaveFile(resumed, truth, names, how) as saving, pytest.raises(KeyboardInterrupt):
        benchmark.score_all(
            truth, search_spaces.get("nb201"), names, device="cpu", progress=stop_after_three,
            scored=saving.append, **settings,
        )  # fmt: skip
    assert resumed.read_text().splitlines() == whole.read_text().splitlines()[:4]  # written as scored
    with resumed.open("a") as f:
        f.write(f"{truth.index[3]},{truth.arch[3]},1.5,2")  # a row cut short by the kill
    result = run("--scores", ",".join(names), "--save", resumed)
    assert result.exit_code == 0, result.output
    assert (
        f"resuming --save {resumed}: kept the 3 of 8 architectures an earlier run scored there"
        in result.stderr
    )
    assert resumed.read_text() == whole.read_text()


def test_save_never_writes_through_a_link(tmp_path):
    from ntknas.core.errors import UserError
    from ntknas.run import benchmark

    (tmp_path / "mine.txt").write_text("the user's own file\n")
    (tmp_path / "out.csv").symlink_to(tmp_path / "mine.txt")
    truth = benchmark.load_ground_truth(TINY)
    with pytest.raises(UserError, match=r"--save file .*out\.csv is a link; give the path of a new file"):
        benchmark.SaveFile(tmp_path / "out.csv", truth, ["params"], "by hand")
    assert (tmp_path / "mine.txt").read_text() == "the user's own file\n"
    assert (tmp_path / "out.csv").is_symlink()


def test_a_full_disk_under_save_names_the_file_and_keeps_what_was_written(tmp_path):
    import errno

    from ntknas.core.errors import UserError

    truth = benchmark.load_ground_truth(TINY)
    path = tmp_path / "s.csv"
    with benchmark.SaveFile(path, truth, ["params"], "by hand") as saving:
        saving.append(0, {"params": 1.0})
        real = saving._file

        class Full:
            def write(self, text):
                raise OSError(errno.ENOSPC, "No space left on device")

            def flush(self):
                real.flush()

            def close(self):
                real.close()

        saving._file, saving._writer = Full(), csv.writer(Full())
        with pytest.raises(UserError) as info:
            saving.append(1, {"params": 2.0})
    assert str(info.value) == (
        f"disk full writing --save file {path} (No space left on device): free space and run the same "
        "command to resume"
    )
    assert saving.appended == 1 and len(path.read_text().splitlines()) == 2  # the header and row 0


@pytest.mark.parametrize(
    "again",
    [
        "stem=cifar block=basic blocks=1-1-1 width=16 growth=2",  # fields in another order
        "block=basic  blocks=1-1-1 width=16 growth=2.0 stem=cifar",  # two spaces, 2.0 for 2
        "block=basic blocks=01-1-1 width=16 growth=2 stem=cifar",  # a leading zero
    ],
)
def test_one_network_written_two_ways_is_refused_naming_both_lines(tmp_path, again):
    import search_spaces
    from ntknas.core.errors import UserError

    first = "block=basic blocks=1-1-1 width=16 growth=2 stem=cifar"
    other = "block=basic blocks=1-1-1 width=32 growth=2 stem=cifar"
    text = f"index,arch,cifar10_test_acc\n1,{first},80\n2,{other},85\n3,{again},90\n"
    truth = benchmark.load_ground_truth(ground_truth(tmp_path, text))
    with pytest.raises(UserError) as info:
        benchmark.parse_all(truth, search_spaces.get("resnet"))
    assert str(info.value).endswith(
        f"truth.csv line 4 repeats the architecture of {tmp_path / 'truth.csv'} line 2: both read as "
        f"{first!r}; keep one row per architecture"
    )
    from test_bad_input import KINDS, matches

    row = KINDS["one network written two ways in a ground truth"]
    assert matches(row.message.replace("gt.csv", "…truth.csv"), str(info.value))


@pytest.mark.parametrize("edit", ["seed=0", "bn=batch", "image_size=32", "space=nb201"])
def test_scored_rows_of_other_settings_or_another_space_do_not_rank_together(tmp_path, edit):
    """A --scored file whose rows were scored with different settings (one row's seed, BatchNorm
    mode or image size changed), or in another space than --space, is refused, naming the lines."""
    from test_bad_input import KINDS, matches

    saved = tmp_path / "scores.csv"
    assert run("--scores", "params", "--data", "synthetic", "--save", saved).exit_code == 0
    other = {"seed=0": "seed=1", "bn=batch": "bn=eval", "image_size=32": "image_size=36"}.get(
        edit, "space=mine"
    )
    lines = saved.read_text().splitlines()
    if edit == "space=nb201":  # every row: the whole file was scored in another space
        lines = [lines[0], *(line.replace(edit, other) for line in lines[1:])]
    else:  # one row, the third line
        lines[2] = lines[2].replace(edit, other)
    saved.write_text("\n".join(lines) + "\n")
    before = saved.read_bytes()
    result = run("--scores", "params", "--scored", saved)
    assert result.exit_code == 2, result.output
    if edit == "space=nb201":
        assert result.stderr.strip().startswith(
            f"error: --scored file {saved} line 2 was scored with 'space=mine "
        )
        assert result.stderr.strip().endswith(
            "not in space nb201: give --space as it was scored, or score the "
            "ground truth in nb201 with --save"
        )
    else:
        row = KINDS["rows of a --scored file scored different ways"]
        documented = row.message.replace("scores.csv", str(saved)).replace("seed=0", edit)
        documented = documented.replace("seed=1", other)
        assert matches(f"error: {documented}", result.stderr.strip()), result.stderr
    assert saved.read_bytes() == before
