"""The shared checks on numbers a user gives, and strict JSON output."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ntknas.core import checks, jsonout
from ntknas.core.errors import UserError

COUNTS = [
    ("12000", 12000),
    ("300k", 300_000),
    ("1.5M", 1_500_000),
    ("2m", 2_000_000),
    (" 1.25G ", 1_250_000_000),
    ("3B", 3_000_000_000),
    ("1e3", 1000),
    ("0", 0),
    ("12_000", 12000),
    ("1_000_000", 1_000_000),
    ("1_500.5k", 1_500_500),
    ("9223372036854775807", 2**63 - 1),
    ("9223372036.854775807G", 2**63 - 1),
    (42, 42),
]


@pytest.mark.parametrize("text,count", COUNTS)
def test_parse_count(text, count):
    assert checks.parse_count("--max-params", text) == count


@pytest.mark.parametrize(
    "text,message",
    [
        ("lots", "--max-params must be a count such as 12000, 300k or 1.5M; got 'lots'"),
        ("", "--max-params must be a count such as 12000, 300k or 1.5M; got ''"),
        ("M", "--max-params must be a count such as 12000, 300k or 1.5M; got 'M'"),
        ("1.5X", "--max-params must be a count such as 12000, 300k or 1.5M; got '1.5X'"),
        ("nan", "--max-params must be a finite count such as 12000, 300k or 1.5M; got 'nan'"),
        ("inf", "--max-params must be a finite count such as 12000, 300k or 1.5M; got 'inf'"),
        ("-infk", "--max-params must be a finite count such as 12000, 300k or 1.5M; got '-infk'"),
        ("-3", "--max-params must not be negative; got '-3'"),
        ("-0.5M", "--max-params must not be negative; got '-0.5M'"),
        ("1.2345k", "--max-params must be a whole count; '1.2345k' is 1234.5"),
        (
            "9_1.5",
            "--max-params must be a count such as 12000, 300k or 1.5M; got '9_1.5' (an underscore may only "
            "group thousands, as in 1_000_000)",
        ),
        ("0.5", "--max-params must be a whole count; '0.5' is 0.5"),
        ("1e999999999", "--max-params must be at most 9,223,372,036,854,775,807; got '1e999999999'"),
        ("1e10000000", "--max-params must be at most 9,223,372,036,854,775,807; got '1e10000000'"),
        ("1e-999999999", "--max-params must be a whole count; '1e-999999999' is 1e-999999999"),
        (
            "9223372036854775.808k",
            "--max-params must be at most 9,223,372,036,854,775,807; got '9223372036854775.808k'",
        ),
    ],
)
def test_parse_count_refuses(text, message):
    with pytest.raises(UserError) as info:
        checks.parse_count("--max-params", text)
    assert str(info.value) == message


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**15), st.lists(st.integers(1, 15), max_size=3))
def test_underscores_in_a_count_are_read_only_as_thousands_groups(n, places):
    """Python reads an underscore between any two digits (9_1.5 is 91.5): a count takes them only
    where they group thousands, as format(n, "_") writes them."""
    digits = str(n)
    text = digits
    for place in sorted({p for p in places if p < len(digits)}, reverse=True):
        text = text[:place] + "_" + text[place:]
    if "_" not in text:
        text = format(n, "_")
    if text == format(n, "_"):
        assert checks.parse_count("--max-params", text) == n
    else:
        with pytest.raises(UserError, match="an underscore may only group thousands"):
            checks.parse_count("--max-params", text)


def test_number_checks():
    assert checks.check_positive_int("--trials", 3) == 3
    assert checks.check_at_least("--batch-size", 2, 2) == 2
    assert checks.check_positive_finite("--lr", 0.1) == 0.1 and checks.check_positive_finite("--lr", 2) == 2.0
    assert checks.check_seed("--seed", 0) == 0 and checks.check_seed("--seed", 2**32 - 1) == 2**32 - 1
    assert checks.check_range("--keep", 0.5, 0, 1) == 0.5 and checks.check_range("--keep", 1, 0, 1) == 1.0
    refused = [
        (lambda: checks.check_positive_int("--trials", 0), "--trials must be at least 1; got 0"),
        (lambda: checks.check_positive_int("--trials", -3), "--trials must be at least 1; got -3"),
        (lambda: checks.check_positive_int("--trials", 2.5), "--trials must be a whole number; got 2.5"),
        (lambda: checks.check_positive_int("--trials", True), "--trials must be a whole number; got True"),
        (lambda: checks.check_at_least("--batch-size", 1, 2), "--batch-size must be at least 2; got 1"),
        (
            lambda: checks.check_positive_finite("--lr", 0.0),
            "--lr must be a positive, finite number; got 0.0",
        ),
        (lambda: checks.check_positive_finite("--lr", -1), "--lr must be a positive, finite number; got -1"),
        (
            lambda: checks.check_positive_finite("--lr", math.nan),
            "--lr must be a positive, finite number; got nan",
        ),
        (
            lambda: checks.check_positive_finite("--lr", math.inf),
            "--lr must be a positive, finite number; got inf",
        ),
        (
            lambda: checks.check_seed("--seed", -1),
            "--seed must be a whole number from 0 to 4294967295; got -1",
        ),
        (
            lambda: checks.check_seed("--seed", 2**32),
            "--seed must be a whole number from 0 to 4294967295; got 4294967296",
        ),
        (lambda: checks.check_range("--keep", 1.5, 0, 1), "--keep must be a number from 0 to 1; got 1.5"),
        (
            lambda: checks.check_range("--keep", math.nan, 0, 1),
            "--keep must be a number from 0 to 1; got nan",
        ),
    ]
    for call, message in refused:
        with pytest.raises(UserError) as info:
            call()
        assert str(info.value) == message


def test_seeds_in_range_are_ones_numpy_and_optuna_accept():
    import optuna

    for seed in (0, checks.SEED_LIMIT - 1):
        np.random.default_rng(checks.check_seed("--seed", seed))
        optuna.samplers.TPESampler(seed=seed)
    with pytest.raises(ValueError):
        optuna.samplers.TPESampler(seed=checks.SEED_LIMIT)  # the limit is the samplers' own


def test_json_is_strict_whatever_the_numbers():
    report = {
        "tau": math.nan,
        "kappa": math.inf,
        "scores": {"a": [1.0, -math.inf, np.float64("nan"), np.float32(2.5)], 3: (np.int64(7), None)},
        "array": np.array([1.0, np.inf]),
        "name": "x",
    }
    text = jsonout.dumps(report, indent=2)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard token {c}")) == {
        "tau": None,
        "kappa": None,
        "scores": {"a": [1.0, None, None, 2.5], "3": [7, None]},
        "array": [1.0, None],
        "name": "x",
    }
    assert "NaN" not in text and "Infinity" not in text
    with pytest.raises(TypeError):
        jsonout.dumps({"set": {1, 2}})  # what JSON cannot hold is refused, not silently changed


@pytest.mark.parametrize(
    ("name", "suggested"), [("--help", "help"), ("-x y", "'x y'"), ("--", "nb201-small")]
)
def test_a_study_name_read_as_an_option_is_refused_with_a_name_from_it(name, suggested):
    from ntknas.core.checks import check_study_name

    with pytest.raises(UserError) as refused:
        check_study_name(name)
    assert str(refused.value) == (
        f"study name {name!r} starts with '-', which a command line reads as an option (ntknas results "
        f"{name}); give a name that starts otherwise, e.g. --study {suggested}"
    )
