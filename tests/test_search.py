"""The search loop with small spaces: reuse of scored configurations, failures, interrupts, resume."""

import dataclasses
import os
import signal

import optuna
import pytest
import torch
from torch import nn

from ntknas.core import seeds
from ntknas.core.errors import CandidateFailed, UserError
from ntknas.objectives.candidates import evaluate
from ntknas.run.search import objective_of, search
from ntknas.scoring.registry import DEFAULT, METRICS
from ntknas.study.settings import Settings
from ntknas.study.studies import completed_trials, load_study, open_study, scored_trials
from search_spaces import SearchSpace


class Widths(SearchSpace):
    """A tiny MLP space: one hidden width out of ``choices``; ``bad`` widths misbehave."""

    name = "widths"
    summary = "test space"

    def __init__(self, choices, bad=(), interrupt_at=None):
        self.choices, self.bad, self.interrupt_at, self.built = tuple(choices), set(bad), interrupt_at, 0
        self.size = len(self.choices)

    def sample(self, trial):
        return trial.suggest_categorical("width", self.choices)

    def build(self, config, num_classes=10, channels=3, image_size=32):
        self.built += 1
        if self.built == self.interrupt_at:
            raise KeyboardInterrupt
        if config in self.bad:
            raise RuntimeError(f"width {config} cannot be built\nsecond line")
        return nn.Sequential(nn.Flatten(), nn.Linear(12, config), nn.Tanh(), nn.Linear(config, num_classes))

    def describe(self, config):
        return f"width={config}"

    def parse(self, text):
        return int(text.removeprefix("width="))


X = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(0))
BATCH = (X, torch.arange(6) % 3)


def settings(**kw):
    return Settings(
        **{
            "space": "widths",
            "data": "synthetic",
            "batch_size": 6,
            "bn": "batch",
            "seed": 0,
            "objective": "condition_number",
            **kw,
        }
    )


def new_study(tmp_path, s, sampler="random", name="s"):
    return open_study(name, f"sqlite:///{tmp_path / 'db.sqlite'}", s, sampler)


def test_search_stores_every_attribute(tmp_path):
    s = settings()
    study = new_study(tmp_path, s)
    search(study, objective_of(Widths([4, 8, 16, 32, 64]), s, BATCH, 3, "cpu"), s, 4)
    done = scored_trials(study)
    assert len(done) == 4 and len({t.user_attrs["config"] for t in done}) == 4
    for t in done:
        a = t.user_attrs
        assert a["config"].startswith("width=") and a["bn"] == "batch"
        assert t.values[0] == a["condition_number"] >= 1
        assert a["params"] == 12 * int(a["config"][6:]) + int(a["config"][6:]) + int(a["config"][6:]) * 3 + 3
        assert a["flops"] == 2 * (12 * int(a["config"][6:]) + int(a["config"][6:]) * 3)
        assert a["seconds"] > 0 and a["effective_rank"] > 0


def test_reused_configurations_do_not_count_toward_the_trials(tmp_path):
    s = settings()
    space = Widths([8, 16])
    study = new_study(tmp_path, s)
    search(study, objective_of(space, s, BATCH, 3, "cpu"), s, 2)
    assert space.built == 2  # each configuration scored once
    scored = {t.user_attrs["config"]: t for t in scored_trials(study)}
    reused = [t for t in completed_trials(study) if "reused_from" in t.user_attrs]
    assert sorted(scored) == ["width=16", "width=8"] and reused  # seed 0 proposes a repeat
    for t in reused:
        source = study.trials[t.user_attrs["reused_from"]]
        assert (
            source is scored[t.user_attrs["config"]] or source.number == scored[t.user_attrs["config"]].number
        )
        assert t.values == source.values


def test_trials_beyond_the_space_stop_at_the_whole_space(tmp_path):
    s = settings()
    space = Widths([4, 8, 16])
    study = new_study(tmp_path, s)
    search(study, objective_of(space, s, BATCH, 3, "cpu"), s, 10)
    scored = scored_trials(study)
    assert sorted(t.user_attrs["config"] for t in scored) == ["width=16", "width=4", "width=8"]


def test_failed_candidates_are_recorded_and_the_search_goes_on(tmp_path):
    s = settings()
    study = new_study(tmp_path, s)
    search(study, objective_of(Widths([4, 5, 6, 7], bad={5}), s, BATCH, 3, "cpu"), s, 3)
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert failed and all(
        t.user_attrs["fail_reason"] == "RuntimeError: width 5 cannot be built" for t in failed
    )
    assert len(scored_trials(study)) == 3


def test_non_finite_outputs_fail_the_trial_with_the_reason():
    class Exploding(Widths):
        def build(self, config, num_classes=10, channels=3, image_size=32):
            net = super().build(config, num_classes)
            nn.init.constant_(net[1].weight, float("inf"))
            return net

    with pytest.raises(CandidateFailed, match=r"ValueError: model output has .* non-finite values"):
        evaluate(Exploding([4]), 4, BATCH, 3, objective="condition_number", bn="batch", seed=0, device="cpu")


def test_all_failing_stops_with_a_message(tmp_path):
    s = settings()
    with pytest.raises(UserError, match="10 candidates in a row failed; the last: RuntimeError: width 5"):
        search(new_study(tmp_path, s), objective_of(Widths([5], bad={5}), s, BATCH, 3), s, 3)


def test_interrupt_keeps_completed_trials(tmp_path):
    s = settings()
    study = new_study(tmp_path, s, sampler="tpe")
    with pytest.raises(KeyboardInterrupt):
        search(study, objective_of(Widths(range(4, 100), interrupt_at=4), s, BATCH, 3, "cpu"), s, 50)
    assert len(scored_trials(study)) == 3
    states = [t.state for t in study.get_trials()]
    interrupted = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert [t.user_attrs["fail_reason"] for t in interrupted] == ["interrupted"]
    assert optuna.trial.TrialState.RUNNING not in states


@pytest.mark.parametrize("at", [1, 3])
def test_ctrl_c_while_the_storage_creates_a_trial_fails_that_trial(tmp_path, monkeypatch, at):
    """A Ctrl-C landing inside study.ask(), after the storage created the trial and before the loop
    holds it, waits until the loop holds it: the trial is failed as interrupted, never RUNNING."""
    s = settings()
    study = new_study(tmp_path, s)
    ask, asks = study.ask, []

    def ask_then_ctrl_c(*args, **kwargs):
        trial = ask(*args, **kwargs)
        asks.append(trial.number)
        if len(asks) == at:
            os.kill(os.getpid(), signal.SIGINT)  # Python's own handler: a KeyboardInterrupt here
            sum(range(1000))  # bytecode for it to land on
        return trial

    monkeypatch.setattr(study, "ask", ask_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        search(study, objective_of(Widths(range(4, 100)), s, BATCH, 3, "cpu"), s, 50)
    trials = study.get_trials()
    assert len(trials) == at and trials[-1].state == optuna.trial.TrialState.FAIL
    assert trials[-1].user_attrs["fail_reason"] == "interrupted"
    assert len(scored_trials(study)) == at - 1


def test_resume_adds_trials_and_keeps_old_ones(tmp_path):
    s = settings()
    study = new_study(tmp_path, s)
    search(study, objective_of(Widths(range(4, 40)), s, BATCH, 3, "cpu"), s, 3)
    before = [(t.number, t.values) for t in study.get_trials()]
    again = new_study(tmp_path, s)
    search(again, objective_of(Widths(range(4, 40)), s, BATCH, 3, "cpu"), s, 5)
    after = scored_trials(again)
    assert len(after) == 5 and [(t.number, t.values) for t in after[:3]] == before


def test_resume_with_other_settings_is_refused(tmp_path):
    new_study(tmp_path, settings())
    with pytest.raises(
        UserError, match=r"study .s. was created with batch_size=6, bn=batch, not batch_size=8, bn=eval"
    ):
        new_study(tmp_path, settings(bn="eval", batch_size=8))


def test_a_study_whose_creation_was_interrupted_is_finished_on_resume(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM between the study's creation and its last setting leaves a study with
    none or some of them; the same command then finishes it (nothing was lost: it has no
    trial), while other settings, other directions or trials still make it someone else's."""
    from ntknas.study import studies

    monkeypatch.setattr(studies, "SETTLE_SECONDS", 0.0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    s = settings()
    for name, stored in (("none", {}), ("some", {"space": "widths", "data": "synthetic"})):
        half = optuna.create_study(study_name=name, storage=url, directions=s.directions())
        for key, value in stored.items():
            half.set_user_attr(key, value)
        assert Settings.load(open_study(name, url, s, "random")) == s
    clash = optuna.create_study(study_name="clash", storage=url, directions=s.directions())
    clash.set_user_attr("bn", "eval")
    with pytest.raises(UserError, match=r"was created with space=\(not recorded\), .*bn=eval"):
        open_study("clash", url, s, "random")
    optuna.create_study(study_name="other", storage=url, direction="maximize")
    with pytest.raises(UserError, match=r"study 'other' records no search settings: it was not made by"):
        open_study("other", url, s, "random")  # condition_number is minimised
    used = optuna.create_study(study_name="used", storage=url, directions=s.directions())
    used.add_trial(optuna.trial.create_trial(value=1.0))
    with pytest.raises(UserError, match=r"study 'used' records no search settings: it was not made by"):
        open_study("used", url, s, "random")


def test_seeds_are_stable():
    # pinned values: stored studies are reproducible only while these never change (a salted hash()
    # would give other values in every process)
    assert seeds.derive_seed(0, "width=4") == 1204683826
    assert seeds.derive_seed(1, "width=4") == 2428799515


def test_stop_request_ends_between_candidates(tmp_path):
    s = settings()
    study = new_study(tmp_path, s)
    with pytest.raises(KeyboardInterrupt):
        search(
            study,
            objective_of(Widths(range(4, 100)), s, BATCH, 3),
            s,
            trials=50,
            stop=lambda: len(scored_trials(study)) >= 2,
        )
    assert len(scored_trials(study)) == 2
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in study.get_trials())


def test_a_study_scored_by_an_earlier_ntk_score_is_not_resumed_with_todays(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    s = Settings("nb201", "cifar10-sample", 8, "batch", 0, "ntk_score")
    old = optuna.create_study(study_name="old", storage=url, directions=s.directions())
    for key, value in dataclasses.asdict(s).items():  # as ntknas ≤ 0.x stored it: no version
        old.set_user_attr(key, value)
    with pytest.raises(
        UserError,
        match=rf"holds ntk_score version 1, of an earlier ntknas; today's ntk_score "
        rf"\(version {METRICS[DEFAULT].version}\)",
    ):
        open_study("old", url, s, "random")
    assert load_study("old", url).user_attrs == old.user_attrs  # still readable, untouched
    other = Settings("nb201", "cifar10-sample", 8, "batch", 0, "params")
    unversioned = optuna.create_study(study_name="p", storage=url, directions=other.directions())
    for key, value in dataclasses.asdict(other).items():
        unversioned.set_user_attr(key, value)
    open_study("p", url, other, "random")  # a metric that never changed resumes as before
    made = open_study("new", url, s, "random")
    assert made.user_attrs["objective_version"] == METRICS[DEFAULT].version == 3
    open_study("new", url, s, "random")  # and today's resumes today's


def test_a_resume_refusal_shows_an_unset_option_as_what_it_means():
    from dataclasses import asdict

    stored = asdict(settings(cost="flops", direction="maximize"))
    own = "maximize" if METRICS[settings().objective].higher_is_better else "minimize"
    with pytest.raises(UserError) as refused:
        settings().check_against("s", stored)
    assert (
        "created with cost=flops, direction=maximize, not cost=none (one objective), "
        f"direction={own} (the objective's own):"
    ) in str(refused.value)


def test_trials_another_program_added_do_not_count_toward_the_target(tmp_path):
    """A trial added with plain Optuna stores no configuration ntknas scored: the search goes on
    until it holds --trials configurations of its own."""
    s = settings()
    study = new_study(tmp_path, s)
    search(study, objective_of(Widths(range(4, 40)), s, BATCH, 3, "cpu"), s, 2)
    first = scored_trials(study)[0]
    study.add_trial(
        optuna.trial.create_trial(params=first.params, distributions=first.distributions, value=3.0)
    )
    search(study, objective_of(Widths(range(4, 40)), s, BATCH, 3, "cpu"), s, 4)
    assert len([t for t in scored_trials(study) if "config" in t.user_attrs]) == 4
