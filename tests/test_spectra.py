"""The pNTK eigenvalues a trial stores: what the search measured, compact enough for JSON."""

import json

import optuna
import pytest
import torch

from ntknas.scoring import metrics, spectra


def test_compute_brings_the_eigenvalues_its_scores_were_read_from():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x, y = torch.randn(10, 6), torch.randint(0, 3, (10,))
    values = metrics.compute(net, x, y, ["condition_number", "trace"], eigenvalues=True)
    stored = values[spectra.ATTR]
    assert len(stored) == 10 and stored == sorted(stored)
    assert stored[-1] / stored[0] == pytest.approx(values["condition_number"], rel=1e-6)
    assert sum(stored) == pytest.approx(values["trace"], rel=1e-6)
    assert spectra.ATTR not in metrics.compute(net, x, y, ["condition_number"])
    assert spectra.ATTR not in metrics.compute(net, x, y, ["params"], eigenvalues=True)  # no kernel


def test_stored_values_have_seven_significant_digits_and_read_back():
    attr = spectra.to_attr(torch.tensor([3.14159265358979, 1e-9 / 3, 2.718281828459045e5]))
    assert attr == [3.333333e-10, 3.141593, 271828.2]
    trial = optuna.trial.create_trial(value=1.0, user_attrs={spectra.ATTR: json.loads(json.dumps(attr))})
    assert spectra.stored(trial).tolist() == attr
    assert spectra.stored(optuna.trial.create_trial(value=1.0)) is None
