"""Search under a budget: candidates over it are never scored, stored as pruned with the reason,
not counted; samplers learn the constraint; the budget is part of the study's settings."""

import optuna
import pytest
from test_search import BATCH, Widths, settings
from typer.testing import CliRunner

from ntknas.cli import app
from ntknas.core.checks import parse_budget
from ntknas.core.errors import UserError
from ntknas.run.search import SearchExhausted, objective_of, search
from ntknas.study.studies import open_study, scored_trials

PRUNED = optuna.trial.TrialState.PRUNED
runner = CliRunner()


def params_of(width: int, classes: int = 3) -> int:
    """Parameters of a Widths network: Linear(12, w) and Linear(w, classes)."""
    return 12 * width + width + width * classes + classes


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2"])
def test_over_budget_candidates_are_pruned_unscored_and_do_not_count(tmp_path, sampler):
    limit = params_of(16)
    s = settings(max_params=limit, cost="params" if sampler == "nsga2" else None)
    study = open_study("s", f"sqlite:///{tmp_path / 'db.sqlite'}", s, sampler)
    space = Widths([4, 8, 16, 32, 64, 128])
    search(study, objective_of(space, s, BATCH, 3, "cpu"), s, 3)
    scored = scored_trials(study)
    assert sorted(t.user_attrs["config"] for t in scored) == ["width=16", "width=4", "width=8"]
    assert all(t.user_attrs["params"] <= limit for t in scored)
    pruned = study.get_trials(states=(PRUNED,))
    assert pruned, "the sampler proposed no oversized candidate: the test proves nothing"
    for t in pruned:
        width = int(t.user_attrs["config"].removeprefix("width="))
        assert width > 16 and t.user_attrs["params"] == params_of(width)
        assert (
            t.user_attrs["prune_reason"]
            == f"over budget: {params_of(width):,} params > --max-params {limit:,}"
        )
        assert "condition_number" not in t.user_attrs  # never scored
    # every sampler is handed the constraint (Optuna's set_constraint); TPE and NSGA-II learn it
    for t in [*scored, *pruned]:
        assert t.constraints == {"params": pytest.approx(t.user_attrs["params"] / limit - 1)}


def test_a_budget_no_configuration_meets_is_an_error_after_a_bounded_number_of_draws(tmp_path):
    s = settings(max_params=10)
    study = open_study("s", f"sqlite:///{tmp_path / 'db.sqlite'}", s, "random")
    with pytest.raises(SearchExhausted, match=r"stopped after 200 proposals in a row .* over budget"):
        search(study, objective_of(Widths([4, 8]), s, BATCH, 3, "cpu"), s, 2)
    assert len(study.trials) == 200 and not scored_trials(study)


def test_resuming_with_another_budget_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    open_study("s", url, settings(max_params=1000), "random")
    with pytest.raises(UserError, match="was created with max_params=1000, not max_params=2000"):
        open_study("s", url, settings(max_params=2000), "random")


def test_budgets_are_parsed_with_their_units():
    assert parse_budget("--max-params", "1.5M") == 1_500_000
    assert parse_budget("--max-params", "300k") == 300_000
    assert parse_budget("--max-flops", "250000") == 250_000
    for bad in ("0", "-1", "nan", "inf", "1.5X", "", "0.5"):
        with pytest.raises(UserError, match="--max-params"):
            parse_budget("--max-params", bad)


def test_the_cli_searches_under_a_budget_and_shows_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["--space", "nb201", "--trials", "3", "--batch-size", "8", "--data", "synthetic"]
    result = runner.invoke(app, ["search", *args, "--max-params", "200k", "--sampler", "random"])
    assert result.exit_code == 0, result.output
    assert "within the budget --max-params 200,000" in result.stdout
    study = optuna.load_study(study_name="nb201", storage="sqlite:///results/ntknas.db")
    assert len(scored_trials(study)) == 3 and all(
        t.user_attrs["params"] <= 200_000 for t in scored_trials(study)
    )
    listed = runner.invoke(app, ["results"])
    assert listed.exit_code == 0 and "budget --max-params 200,000" in listed.stdout
    studies = runner.invoke(app, ["studies"])
    assert "max_params=200,000" in studies.stdout
    refused = runner.invoke(app, ["search", *args, "--max-params", "300k", "--sampler", "random"])
    assert (
        refused.exit_code == 2
        and "was created with max_params=200000, not max_params=300000" in refused.stderr
    )
