"""Search under a budget: candidates over it are never scored, stored as pruned with the reason,
not counted; samplers learn the constraint; the budget is part of the study's settings."""

import optuna
import pytest
import torch
from test_search import BATCH, Widths, settings
from typer.testing import CliRunner

import search_spaces
from ntknas.cli import app
from ntknas.core.checks import parse_budget
from ntknas.core.errors import UserError
from ntknas.run.search import SearchExhausted, objective_of, search
from ntknas.scoring.measure import count_flops, count_params
from ntknas.study.studies import open_study, scored_trials
from search_spaces import SearchSpace

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


@pytest.mark.parametrize("name", ["nb201", "resnet", "nbmacro"])
@pytest.mark.parametrize(("classes", "channels", "side"), [(10, 3, 32), (100, 48, 8)])
def test_a_space_names_networks_as_small_as_any_of_its_own(name, classes, channels, side):
    space = search_spaces.get(name)
    image = torch.zeros(1, channels, side, side)

    def sizes(config) -> tuple[int, int]:
        model = space.build(config, classes, channels, side)
        return count_params(model), count_flops(model, image)

    least = [min(column) for column in zip(*map(sizes, space.smallest()), strict=True)]
    for config in around_the_first_choices(space):
        params, flops = sizes(config)
        assert params >= least[0] and flops >= least[1], space.describe(config)


def around_the_first_choices(space, draws: int = 30):
    """The configuration of every parameter's first choice (in the built-in spaces, the smallest
    choice of each), each one choice away from it, and a few drawn at random."""
    proposer = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    choices, drawn = {}, []
    for _ in range(draws):
        trial = proposer.ask()
        drawn.append(space.sample(trial))
        choices |= {k: d.choices for k, d in trial.distributions.items()}
    first = {k: c[0] for k, c in choices.items()}
    yield space.sample(optuna.trial.FixedTrial(first))
    for key, values in choices.items():
        for value in values[1:]:
            yield space.sample(optuna.trial.FixedTrial({**first, key: value}))
    yield from drawn[:4]


@pytest.mark.parametrize("name", ["nb201", "resnet", "nbmacro"])
def test_a_budget_no_network_meets_is_refused_before_any_study(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    space = search_spaces.get(name)
    fewest = min(count_params(space.build(c)) for c in space.smallest())
    built = []
    monkeypatch.setattr(type(space), "build", counted(type(space).build, built))
    monkeypatch.setattr(
        "ntknas.scoring.metrics.compute", lambda *a, **k: pytest.fail("a kernel was computed")
    )
    args = ["--space", name, "--data", "synthetic", "--batch-size", "4", "--objective", "condition_number"]
    result = runner.invoke(app, ["search", *args, "--max-params", str(fewest - 1)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: no network of space {name} is within the budget: the fewest are {fewest:,} params; "
        f"raise --max-params to at least {fewest:,}\n"
    )
    assert len(built) <= 1 + len(space.smallest())  # the image-size probe's, and the smallest
    assert not (tmp_path / "results").exists()  # no study made, nor locked to that budget
    both = runner.invoke(app, ["search", *args, "--max-params", str(fewest), "--max-flops", "1"])
    assert both.exit_code == 2 and both.stderr.startswith(f"error: no network of space {name} is within")
    assert " flops; raise --max-flops to at least " in both.stderr and "--max-params" not in both.stderr


def counted(build, calls: list):
    def build_counted(self, *args, **kwargs):
        calls.append(args)
        return build(self, *args, **kwargs)

    return build_counted


class Tiny(SearchSpace):
    """A plugin space of tiny MLPs that cannot tell its smallest networks."""

    name, summary, size = "tiny", "tiny MLPs", 3

    def sample(self, trial):
        return trial.suggest_categorical("w", (2, 3, 4))

    def build(self, config, num_classes=10, channels=3, image_size=32):
        from torch import nn

        return nn.Sequential(
            nn.Flatten(), nn.Linear(channels * image_size**2, config), nn.Linear(config, num_classes)
        )

    def describe(self, config):
        return f"w={config}"

    def parse(self, text):
        return int(text[2:])


class Knowing(Tiny):
    def smallest(self):
        return [2]


def test_a_plugin_space_without_its_smallest_searches_as_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("ntknas.run.search.MAX_IDLE_IN_A_ROW", 5)
    args = ["search", "--data", "synthetic", "--batch-size", "4", "--objective", "condition_number"]
    result = runner.invoke(app, [*args, "--space", f"{__name__}:Tiny", "--max-params", "10"])
    assert result.exit_code == 2 and "stopped after 5 proposals in a row" in result.stderr, result.output
    known = runner.invoke(
        app, [*args, "--space", f"{__name__}:Knowing", "--max-params", "10", "--study", "k"]
    )
    fewest = 3 * 32 * 32 * 2 + 2 + 2 * 10 + 10
    assert known.exit_code == 2 and known.stderr == (
        f"error: no network of space tiny is within the budget: the fewest are {fewest:,} params; "
        f"raise --max-params to at least {fewest:,}\n"
    )
    assert optuna.get_all_study_names("sqlite:///results/ntknas.db") == [f"{__name__}:Tiny"]
