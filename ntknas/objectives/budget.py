"""A search's budget: upper bounds on a candidate's size, known before its kernel is computed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Upper bounds on a candidate's size: trainable parameters and forward FLOPs per image."""

    max_params: int | None = None
    max_flops: int | None = None

    def __post_init__(self) -> None:
        for name, limit in (("max_params", self.max_params), ("max_flops", self.max_flops)):
            if limit is None:
                continue
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError(f"Budget.{name} must be a whole count or None; got {limit!r}")
            if limit < 1:
                raise ValueError(f"Budget.{name} must be at least 1 (None: no bound); got {limit}")

    def __bool__(self) -> bool:
        return self.max_params is not None or self.max_flops is not None

    def bounded(self) -> tuple[str, ...]:
        """The sizes this budget bounds: ``params``, ``flops`` or both."""
        return tuple(self.limits())

    def limits(self) -> dict[str, int]:
        """Each bound, by the size it bounds (``params``, ``flops``)."""
        bounds = (("params", self.max_params), ("flops", self.max_flops))
        return {name: limit for name, limit in bounds if limit is not None}

    def describe(self) -> str:
        """The bounds as options, e.g. ``--max-params 500,000``."""
        return ", ".join(f"--max-{name} {limit:,}" for name, limit in self.limits().items())

    def excess(self, size: dict[str, int]) -> dict[str, float]:
        """Optuna constraint values, by bound (``params``, ``flops``): the relative excess of
        ``size`` over it, ≤ 0 within the budget."""
        return {name: size[name] / limit - 1 for name, limit in self.limits().items()}

    def overrun(self, size: dict[str, int]) -> str | None:
        """Why a candidate of ``size`` is over budget, or None when it is within."""
        over = [
            f"{size[name]:,} {name} > --max-{name} {limit:,}"
            for name, limit in self.limits().items()
            if size[name] > limit
        ]
        return f"over budget: {', '.join(over)}" if over else None
