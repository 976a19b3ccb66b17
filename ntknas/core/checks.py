"""Checks on the numbers a user gives (options, budgets): finite, in range and whole, or a one-line
UserError that names the option and what it got."""

from __future__ import annotations

import math
import re
import shlex
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, InvalidOperation

from ntknas.core.errors import UserError

# Seeds feed numpy's and Optuna's samplers, which take 32-bit unsigned seeds.
SEED_LIMIT = 2**32
# Suffixes of counts such as 300k or 1.5M (case-insensitive): thousand, million, billion.
SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9}
# The largest count: what a signed 64-bit integer holds (SQLite's and PostgreSQL's integers).
COUNT_LIMIT = 2**63 - 1
# A number whose underscores group its whole part's digits in thousands (1_000_000, 1_500.5).
GROUPED = re.compile(r"[+-]?[0-9]{1,3}(_[0-9]{3})+(\.[0-9]+)?", re.ASCII)


def check_at_least(option: str, value: int, minimum: int) -> int:
    """``value`` when it is a whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{option} must be a whole number; got {value!r}")
    if value < minimum:
        raise UserError(f"{option} must be at least {minimum}; got {value}")
    return value


def check_positive_int(option: str, value: int) -> int:
    """``value`` when it is a whole number of at least 1."""
    return check_at_least(option, value, 1)


def check_positive_finite(option: str, value: float) -> float:
    """``value`` when it is a finite number above 0 (NaN, infinities, 0 and negatives refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
        raise UserError(f"{option} must be a positive, finite number; got {value!r}")
    return float(value)


def check_range(option: str, value: float, low: float, high: float) -> float:
    """``value`` when it is a finite number with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not (low <= value <= high):
        raise UserError(f"{option} must be a number from {low:g} to {high:g}; got {value!r}")
    return float(value)


def check_seed(option: str, value: int) -> int:
    """``value`` when it is a whole number from 0 to 2**32 − 1, the seeds numpy and Optuna take."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise UserError(f"{option} must be a whole number from 0 to {SEED_LIMIT - 1}; got {value!r}")
    return value


def parse_count(option: str, text: str | int) -> int:
    """A count such as ``12000``, ``300k`` or ``1.5M`` (k, M, G or B: thousand, million, billion)
    as an int; UserError for garbage, NaN, infinities, negatives, fractions and counts above
    ``COUNT_LIMIT`` (such as 1e999999999, which would take minutes to write out as an int)."""
    raw = str(text).strip()
    scale = SUFFIXES.get(raw[-1:].lower(), 1)
    number = raw[:-1] if scale != 1 else raw
    if "_" in number and not GROUPED.fullmatch(number.strip()):  # Python reads 9_1.5 as 91.5
        raise UserError(
            f"{option} must be a count such as 12000, 300k or 1.5M; got {raw!r} (an underscore may only "
            "group thousands, as in 1_000_000)"
        )
    try:
        value = Decimal(number.strip())
    except InvalidOperation:
        raise UserError(f"{option} must be a count such as 12000, 300k or 1.5M; got {raw!r}") from None
    if not value.is_finite():
        raise UserError(f"{option} must be a finite count such as 12000, 300k or 1.5M; got {raw!r}")
    if value < 0:
        raise UserError(f"{option} must not be negative; got {raw!r}")
    if value > Decimal(COUNT_LIMIT) / scale:  # compared before scaling: no exponent overflows
        raise UserError(f"{option} must be at most {COUNT_LIMIT:,}; got {raw!r}")
    exact = Context(prec=len(value.as_tuple().digits) + 10, Emax=MAX_EMAX, Emin=MIN_EMIN)
    value = value.fma(scale, 0, exact)
    if value != value.to_integral_value():
        raise UserError(f"{option} must be a whole count; {raw!r} is {value.normalize(exact):g}")
    return int(value)


def parse_budget(option: str, text: str) -> int:
    """A size budget such as ``500k`` or ``1.5M``: a count of at least 1."""
    return check_positive_int(option, parse_count(option, text))


# Optuna stores a study's name in a column of this many characters.
NAME_LIMIT = 512


def check_study_name(name: str) -> str:
    """``name`` when a new study may take it: not blank, at most ``NAME_LIMIT`` characters, every
    character printable and not starting with ``-``, so that the commands printed for it can be
    copied back into a shell (a newline or a control character cannot, and ``-x`` reads as an
    option)."""
    if not name:
        raise UserError("--study must not be empty; give the study a name, e.g. --study nb201-small")
    if not name.isprintable():
        shown = next(ascii(ch)[1:-1] for ch in name if not ch.isprintable())
        raise UserError(
            f"study name {name!a} holds the character {shown}, which a shell command cannot carry; "
            "give a name of printable characters"
        )
    if not name.strip():
        raise UserError(
            f"study name {name!r} is blank, which no listing shows; give the study a name, "
            "e.g. --study nb201-small"
        )
    if name.startswith("-"):
        suggested = shlex.quote(name.lstrip("-").strip() or "nb201-small")
        raise UserError(
            f"study name {name!r} starts with '-', which a command line reads as an option "
            f"(ntknas results {name}); give a name that starts otherwise, e.g. --study {suggested}"
        )
    if len(name) > NAME_LIMIT:
        raise UserError(f"study name must be at most {NAME_LIMIT} characters; got {len(name)}")
    return name
