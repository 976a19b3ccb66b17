"""``ntknas studies``: the studies in a storage."""

from __future__ import annotations

from ntknas.cli.common import StorageOpt, out, storage_label, user_errors
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.inputs.sources import shown
from ntknas.outputs import tables


def command(storage: StorageOpt = None) -> None:
    """List the studies in a storage, with their search settings."""
    import optuna

    from ntknas.study.storage import open_storage

    with user_errors(storage):
        backend = open_storage(storage, read_only=True)
        summaries = optuna.get_all_study_summaries(backend, include_best_trial=False)
    rows = []
    for s in summaries:
        a = s.user_attrs
        started = s.datetime_start.strftime("%Y-%m-%d %H:%M") if s.datetime_start else ""
        budget = ", ".join(f"{k}={_count(a[k])}" for k in ("max_params", "max_flops") if a.get(k) is not None)
        rows.append(
            (
                s.study_name,
                a.get("space", ""),
                a.get("objective", ""),
                a.get("bn", ""),
                shown(a["data"]) if isinstance(a.get("data"), str) else "",
                a.get("image_size", DEFAULT_IMAGE_SIZE) if "space" in a else "",
                a.get("batch_size", ""),
                budget,
                f"{s.n_trials:,}",
                started,
            )
        )
    columns = ("study", "space", "objective", "bn", "data", "pixels", "batch", "budget", "trials", "started")
    out.print(tables.listing(f"Studies in {storage_label(storage)}", columns, rows))


def _count(value: object) -> str:
    """A stored count as ``12,000``; anything else (a study edited by hand) as it is."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else repr(value)
