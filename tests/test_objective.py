"""The objective as one object (ntknas.objective): a plain Optuna study gets exactly the values
`ntknas search` stores; and a study's direction, from the metric registry or --direction, picks
the same network in every command."""

import json

import optuna
import pytest
from tiny_study import make_study
from typer.testing import CliRunner

import ntknas
import search_spaces
from ntknas.cli import app
from ntknas.outputs import export
from ntknas.run import verify
from ntknas.study import records
from ntknas.study.settings import Settings
from ntknas.study.storage import default_url
from ntknas.study.verified import stored_results

SEARCH = ["search", "--space", "nb201", "--sampler", "random", "--data", "synthetic"]


def invoke(*args: str) -> str:
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 0, done.output
    return done.stdout


def test_a_plain_optuna_study_scores_configurations_as_ntknas_search_does(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    invoke(*SEARCH, "--trials", "2", "--study", "cli")
    stored = optuna.load_study(study_name="cli", storage=default_url())
    score = ntknas.objective("nb201", data="synthetic")  # the search's defaults: ntk_score, N = 64
    assert score.direction == "maximize"
    space = search_spaces.get("nb201")
    for t in stored.trials:
        again = score.evaluate(space.parse(t.user_attrs["config"]))
        assert again["ntk_score"] == t.value  # bit for bit: same seed, batch, reference
        assert again["condition_number"] == t.user_attrs["condition_number"]
    mine = optuna.create_study(direction=score.direction, sampler=optuna.samplers.RandomSampler(seed=1))
    mine.optimize(score, n_trials=2)
    assert [t.state for t in mine.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for t in mine.trials:
        assert t.value == score.evaluate(space.parse(t.user_attrs["config"]))["ntk_score"]
        assert t.user_attrs["params"] > 0


def test_an_objective_over_its_budget_prunes_the_trial_before_scoring():
    score = ntknas.objective("nb201", data="synthetic", metric="params", batch_size=8)
    score.budget = ntknas.Budget(max_params=1)
    study = optuna.create_study(direction=score.direction)
    study.optimize(score, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["params"] > 1 and "condition_number" not in trial.user_attrs


@pytest.mark.parametrize("direction", [None, "maximize", "minimize"])
def test_objective_params_picks_the_same_network_in_every_command(tmp_path, monkeypatch, direction):
    monkeypatch.chdir(tmp_path)
    given = [] if direction is None else ["--direction", direction]
    summary = invoke(*SEARCH, "--objective", "params", "--trials", "6", "--batch-size", "8", *given)
    largest_first = direction != "minimize"  # params rank as zero-cost proxies do: larger first
    study = optuna.load_study(study_name="nb201", storage=default_url())
    sizes = {t.number: t.user_attrs["params"] for t in study.trials}
    best = min(sizes, key=lambda n: (-sizes[n] if largest_first else sizes[n], n))
    assert study.direction == (
        optuna.study.StudyDirection.MAXIMIZE if largest_first else optuna.study.StudyDirection.MINIMIZE
    )
    assert study.best_trial.user_attrs["params"] == sizes[best]
    assert f"Best: trial {best}, params {sizes[best]:,}" in summary
    rows = json.loads(invoke("results", "--format", "json"))
    assert rows[0]["params"] == sizes[best]
    assert [r["params"] for r in rows] == sorted((r["params"] for r in rows), reverse=largest_first)
    settings = Settings.load(study)
    assert verify.top_picks(study, 1)[0].user_attrs["params"] == sizes[best]
    assert export.pick(study, None, settings).user_attrs["params"] == sizes[best]
    assert records.picks(study, settings)[0].number == best


def test_a_direction_that_is_the_metrics_own_is_stored_as_none_and_resumes_a_study():
    own = Settings("nb201", "synthetic", 8, "batch", 0, "params", direction="maximize")
    assert own.direction is None and own.higher_is_better
    flipped = Settings("nb201", "synthetic", 8, "batch", 0, "params", direction="minimize")
    assert flipped.directions() == ["minimize"] and not flipped.higher_is_better


def test_the_library_verify_trains_the_top_pick_and_stores_its_result(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = make_study()
    (outcome,) = ntknas.verify(study, top=1, epochs=1, storage=default_url())
    best = records.picks(study, Settings.load(study))[0]
    assert outcome.trial == best.number and outcome.status == verify.TRAINED
    stored = stored_results(study)[best.number]
    assert stored["verified_epochs"] == 1 and 0 <= stored["verified_test_acc"] <= 100


def test_a_study_keeps_the_reference_its_first_run_placed_candidates_in(tmp_path, monkeypatch):
    from ntknas.api import pin_reference
    from ntknas.scoring.metrics import WEIGHTS

    monkeypatch.chdir(tmp_path)
    invoke(*SEARCH, "--trials", "1", "--study", "cli", "--batch-size", "8")
    stored = optuna.load_study(study_name="cli", storage=default_url())
    measured = ntknas.objective("nb201", data="synthetic", batch_size=8).reference()
    assert stored.user_attrs[records.REFERENCE] == {n: list(v) for n, v in measured.items()}

    study = optuna.create_study()
    first = {n: (1.0 + i, 0.5 * (i + 1)) for i, n in enumerate(WEIGHTS)}
    score = ntknas.objective("nb201", data="synthetic", batch_size=8)
    monkeypatch.setattr(score, "reference", lambda: first)
    pin_reference(study, score)
    assert score.reference_terms == first
    again = ntknas.objective("nb201", data="synthetic", batch_size=8)
    monkeypatch.setattr(again, "reference", lambda: pytest.fail("prepared again"))
    pin_reference(study, again)  # a resumed run reads it
    assert again.reference_terms == first
    study.set_user_attr(records.REFERENCE, {**study.user_attrs[records.REFERENCE], "naswot": ["nan", 1.0]})
    monkeypatch.setattr(again, "reference", lambda: measured)
    pin_reference(study, again)  # a damaged one is prepared and stored anew
    assert again.reference_terms == measured
    assert study.user_attrs[records.REFERENCE] == {n: list(v) for n, v in measured.items()}
    sized = ntknas.objective("nb201", data="synthetic", metric="params", batch_size=8)
    monkeypatch.setattr(sized, "reference", lambda: pytest.fail("params needs no reference"))
    pin_reference(fresh := optuna.create_study(), sized)
    assert records.REFERENCE not in fresh.user_attrs


def test_library_settings_budgets_and_objectives_check_their_fields():
    """What the command line refuses in one line, the library refuses too, naming the field: a
    study's Settings (the rule table every stored study is checked by), a Budget, an objective's
    seed, budget and BatchNorm mode."""
    from ntknas.objectives.budget import Budget
    from ntknas.study.settings import Settings

    good = ("nb201", "synthetic", 8, "batch", 0, "ntk_score")
    for at, wrong, kind in (
        (2, "8", TypeError), (2, 1, ValueError), (3, "Batch", ValueError), (4, -1, ValueError),
        (4, "0", TypeError), (5, "accuracy", ValueError), (0, "", ValueError),
    ):  # fmt: skip
        fields = list(good)
        fields[at] = wrong
        with pytest.raises(kind, match=r"^Settings\.\w+ must be "):
            Settings(*fields)
    with pytest.raises(ValueError, match=r"Settings\.cost 'params' is the objective itself"):
        Settings("nb201", "synthetic", 8, "batch", 0, "params", cost="params")
    for limit, kind in (("1.5M", TypeError), (float("nan"), TypeError), (-1, ValueError), (0, ValueError)):
        with pytest.raises(kind, match=r"^Budget\.max_params must be"):
            Budget(max_params=limit)
    for keywords, kind, message in (
        ({"budget": {"max_params": 10}}, TypeError, "budget must be an ntknas.Budget or None; got dict"),
        ({"seed": "0"}, TypeError, "seed must be a whole number"),
        ({"seed": -1}, ValueError, "seed must be a whole number"),
        ({"bn": "Batch"}, ValueError, "Batch"),
    ):
        with pytest.raises(kind, match=message):
            ntknas.objective("nb201", data="synthetic", batch_size=8, **keywords)


def test_evaluate_names_a_described_string_given_for_a_configuration():
    score = ntknas.objective("nb201", data="synthetic", batch_size=4)
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    with pytest.raises(TypeError, match=r"read an arch string with space\.parse\(text\) first"):
        score.evaluate(text)
    assert score.evaluate(score.space.parse(text))["config"] == text


def test_a_candidate_too_large_for_memory_fails_with_the_fix_as_its_reason(monkeypatch):
    """The reason stored on the trial is the command line's memory line, not the allocator's."""
    from ntknas.core.errors import CandidateFailed
    from ntknas.objectives import candidates

    def out_of_memory(*args, **kwargs):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
            "you tried to allocate 536870912 bytes. Error code 12 (Cannot allocate memory)"
        )

    score = ntknas.objective("nb201", data="synthetic", batch_size=4, metric="naswot")
    monkeypatch.setattr(candidates.metrics, "compute", out_of_memory)
    with pytest.raises(CandidateFailed) as failed:
        score.evaluate(score.space.parse(score.space.describe(score.space.smallest()[0])))
    assert str(failed.value) == (
        "not enough memory (it tried to allocate 536870912 bytes); use a smaller --batch-size or "
        "--image-size, a smaller model, or fewer --workers"
    )
