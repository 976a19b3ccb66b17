"""Ranking quality against known accuracies: score architectures, correlate, simulate search."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ntknas.core import files
from ntknas.core.errors import UserError, first_line
from ntknas.inputs import data
from ntknas.inputs.image_size import DEFAULT as DEFAULT_IMAGE_SIZE
from ntknas.objectives.budget import Budget
from ntknas.objectives.candidates import seeded_model
from ntknas.scoring import metrics
from ntknas.scoring.ranking import kendall_tau, oriented, spearman_rho
from ntknas.scoring.registry import COSTS
from search_spaces import ConfigError, SearchSpace

TARGET = "cifar10_test_acc"
KEYS = ("index", "arch")
COLUMNS = (*KEYS, TARGET)


@dataclass(frozen=True)
class GroundTruth:
    """Architectures (``index``, ``arch`` strings) and their trained accuracy (%) in the
    ``target`` column; ``lines`` are the rows' line numbers in the ``source`` file."""

    index: tuple[str, ...]
    arch: tuple[str, ...]
    acc: np.ndarray
    lines: tuple[int, ...] = ()
    source: str = ""
    target: str = TARGET

    def subset(self, rows: np.ndarray) -> GroundTruth:
        return replace(
            self,
            index=tuple(self.index[i] for i in rows),
            arch=tuple(self.arch[i] for i in rows),
            acc=self.acc[rows],
            lines=tuple(self.lines[i] for i in rows) if self.lines else (),
        )

    def where(self, row: int) -> str:
        """Where row ``row`` comes from, for messages: ``FILE line N``."""
        return f"{self.source} line {self.lines[row]}" if self.lines else f"row {row + 1}"


def load_ground_truth(path: str | Path, target: str = TARGET) -> GroundTruth:
    """Read a CSV with columns ``index``, ``arch`` and ``target`` (an accuracy in %, by default
    ``cifar10_test_acc``; other columns are ignored). A UTF-8 byte-order mark is accepted. A
    missing column, an accuracy that is not a finite number from 0 to 100 and an empty or repeated
    index or arch are refused with the line they are on."""
    if not target.strip() or target in KEYS:
        raise UserError(f"--target {target!r} is not an accuracy column; name one, e.g. {TARGET}")
    path, columns = Path(path), ",".join((*KEYS, target))
    header, rows = _read_csv(path, "ground-truth file", f"give a CSV with columns {columns}")
    missing = [c for c in (*KEYS, target) if c not in header]
    if missing:
        other = next((s for s in ";\t|" if len(header) == 1 and s in header[0]), None)
        hint = f" (its cells are separated by {other!r}: save it with commas)" if other else ""
        raise UserError(
            f"{path} lacks column(s) {', '.join(missing)}; it needs {columns} "
            f"and has: {', '.join(header) or 'no header'}{hint}"
        )
    twice = sorted({c for c in header if c and header.count(c) > 1})
    if twice:
        raise UserError(f"{path} has column(s) {', '.join(twice)} twice; keep one of each")
    at = {name: header.index(name) for name in (*KEYS, target)}
    index, arch, acc, lines = [], [], [], []
    first: dict[tuple[str, str], int] = {}
    for line, row in rows:
        if len(row) < len(header):
            raise UserError(f"{path} line {line} has {len(row)} cells, not {len(header)}; fix that row")
        acc.append(_accuracy(row[at[target]], f"{path} line {line}", target))
        for key in KEYS:
            value = row[at[key]].strip()
            if not value:
                raise UserError(f"{path} line {line} has no {key}; give every row its {key}")
            if (key, value) in first:
                raise UserError(
                    f"{path} line {line} repeats {key} {value!r} of line {first[key, value]}; "
                    "keep one row per architecture"
                )
            first[key, value] = line
        index.append(row[at["index"]].strip())
        arch.append(row[at["arch"]].strip())
        lines.append(line)
    if len(rows) < 2:
        raise UserError(f"{path} has {len(rows)} row(s); ranking needs at least 2 architectures")
    return GroundTruth(tuple(index), tuple(arch), np.array(acc), tuple(lines), str(path), target)


def _accuracy(cell: str, where: str, target: str) -> float:
    """An accuracy cell as a float in [0, 100]; UserError naming ``where`` otherwise."""
    try:
        value = float(cell)
    except ValueError:
        raise UserError(f"{where}: {target} {cell!r} is not a number (accuracy in %)") from None
    if not math.isfinite(value):
        raise UserError(
            f"{where}: {target} {cell.strip()} is not a finite number (accuracy in %); fix that row"
        )
    if not 0 <= value <= 100:
        raise UserError(f"{where}: {target} {cell.strip()} is not an accuracy from 0 to 100 %; fix that row")
    return value


def sample(truth: GroundTruth, count: int | None, seed: int) -> GroundTruth:
    """``count`` rows drawn without replacement (seeded); all rows when ``count`` is None."""
    if count is None:
        return truth
    if not 2 <= count <= len(truth.acc):
        raise UserError(f"--sample must be between 2 and {len(truth.acc)} (the CSV's rows); got {count}")
    return truth.subset(np.sort(np.random.default_rng(seed).choice(len(truth.acc), count, replace=False)))


def parse_all(truth: GroundTruth, space: SearchSpace) -> list:
    """The configuration of each architecture; UserError naming the CSV line of a malformed one, and
    both lines when two arch strings describe one network (written another way: fields in another
    order, ``2.0`` for ``2``), which would enter the ranking twice with two accuracies."""
    configs = []
    first: dict[str, int] = {}
    for row, text in enumerate(truth.arch):
        try:
            configs.append(space.parse(text))
        except ConfigError as e:
            raise UserError(f"{truth.where(row)}: {first_line(e)}") from None
        canonical = space.describe(configs[-1])
        if canonical in first:
            raise UserError(
                f"{truth.where(row)} repeats the architecture of {truth.where(first[canonical])}: both "
                f"read as {canonical!r}; keep one row per architecture"
            )
        first[canonical] = row
    return configs


def score_all(
    truth: GroundTruth,
    space: SearchSpace,
    names: list[str],
    *,
    data_source: str,
    batch_size: int,
    bn: str,
    repeats: int,
    seed: int,
    device: str,
    image_size: int = DEFAULT_IMAGE_SIZE,
    progress: Callable[[int], None] | None = None,
    failed: Callable[[int, str, str], None] | None = None,
    reference: Mapping[str, tuple[float, float]] | None = None,
    kept: Mapping[int, Mapping[str, float]] | None = None,
    scored: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Every metric of every architecture, averaged over ``repeats`` (each with its own minibatch
    and initialisation), on images of ``image_size`` pixels, and the mean seconds per architecture
    scored now.

    ``kept``: rows scored earlier (row → metric → value), taken as they are; ``scored(row,
    values)`` hears of each row as soon as it is scored (see :class:`SaveFile`).

    A metric that fails on an architecture is NaN there, and only that metric: ``failed(row,
    metric, reason)`` hears of each failure (``metric`` is ``"model"`` when the network cannot be
    built, which NaNs all its metrics). A malformed arch string fails before any scoring, with the
    line of the CSV it is on. ``ntk_score`` needs the space's ``reference``
    (:mod:`ntknas.objectives.reference`).
    """
    configs = parse_all(truth, space)  # malformed strings fail before any scoring
    images = data.load(data_source, "train", size=image_size)
    batches = [data.minibatch(images, batch_size, seed + r) for r in range(repeats)]
    values = {n: np.full(len(configs), np.nan) for n in names}
    kept = kept or {}
    start = time.perf_counter()
    for i, config in enumerate(configs):
        if i in kept:
            for n in names:
                values[n][i] = kept[i][n]
            if progress:
                progress(i + 1)
            continue
        runs: dict[str, list[float]] = {n: [] for n in names}
        for r, (x, y) in enumerate(batches):
            errors: dict[str, BaseException] = {}
            try:
                model = seeded_model(space, config, len(images.classes), seed + r, tuple(x.shape[1:]))
            except Exception as e:  # a network that cannot be built has no metric at all
                errors = {"model": e}
                measured = dict.fromkeys(names, math.nan)
            else:
                measured = metrics.compute(
                    model, x, y, names, bn=bn, device=device, errors=errors, reference=reference
                )
            for n in names:
                runs[n].append(measured[n])
            if failed is not None:
                for name, error in errors.items():
                    failed(i, name, f"{type(error).__name__}: {first_line(error)}")
            if "model" in errors:
                break
        for n in names:
            values[n][i] = float(np.mean(runs[n]))
        if scored:
            scored(i, {n: float(values[n][i]) for n in names})
        if progress:
            progress(i + 1)
    return values, (time.perf_counter() - start) / max(1, len(configs) - len(kept))


def read_scores(
    path: str | Path, truth: GroundTruth, names: list[str] | None, space: str | None = None
) -> dict[str, np.ndarray]:
    """The metrics a ``--save`` CSV holds for the architectures of ``truth``, matched by ``index``
    and ``arch`` (all of its metric columns when ``names`` is None): NaN where a cell is empty.
    UserError, naming the line, for a missing or repeated row or column, an architecture other
    than the ground truth's, a cell that is not a number, a negative count, rows scored with
    different settings (their ``scored_with`` cells) or in a space other than ``space``, or a
    file without a single value of the metrics."""
    header, rows = _read_csv(Path(path), "--scored file")
    if not {"index", "arch"} <= set(header):
        raise UserError(f"--scored file {path} lacks index or arch; give a CSV written by benchmark --save")
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise UserError(f"--scored file {path} has column(s) {', '.join(repeated)} twice; keep one of each")
    wanted = names if names is not None else [c for c in header if c in metrics.METRICS]
    lacking = [n for n in wanted if n not in header]
    if not wanted or lacking:
        what = ", ".join(lacking) if lacking else "any metric"
        raise UserError(f"--scored file {path} lacks {what}; score with --save, or choose --scores it holds")
    column = {c: header.index(c) for c in header}
    by_index: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        cells = {c: row[i].strip() if i < len(row) else "" for c, i in column.items()}
        if cells["index"] in by_index:
            raise UserError(
                f"--scored file {path} line {line} repeats index {cells['index']!r} of line "
                f"{by_index[cells['index']][0]}; keep one row per architecture"
            )
        by_index[cells["index"]] = line, cells
    values = {n: np.full(len(truth.acc), np.nan) for n in wanted}
    for i, (index, arch) in enumerate(zip(truth.index, truth.arch, strict=True)):
        if index not in by_index:
            raise UserError(
                f"--scored file {path} has no row for index {index} ({truth.where(i)}); score it with --save"
            )
        line, cells = by_index[index]
        if cells["arch"] != arch.strip():
            raise UserError(
                f"--scored file {path} line {line} scores another architecture for index {index} than "
                f"{truth.where(i)}; score this ground truth with --save"
            )
        for n in wanted:
            values[n][i] = _score(cells[n], f"--scored file {path} line {line}: {n}", n in COSTS)
    _check_scored_with(path, [by_index[index] for index in truth.index], space)
    if not any(np.isfinite(v).any() for v in values.values()):
        raise UserError(f"--scored file {path} holds no value of {', '.join(wanted)}; score with --save")
    return values


def _check_scored_with(path: str | Path, used: list[tuple[int, dict[str, str]]], space: str | None) -> None:
    """UserError unless the rows ``used`` (line, cells) of a --scored file were scored one way, in
    ``space``: rows scored with other settings (seed, data, batch size, BatchNorm mode, image
    size) or in another space do not rank together. A file without the column says nothing."""
    said: dict[str, int] = {}  # each way of scoring → the first line that says it
    for line, cells in sorted(used, key=lambda u: u[0]):
        if SCORED_WITH in cells:
            said.setdefault(cells[SCORED_WITH], line)
    if len(said) > 1:
        (first, a), (second, b) = list(said.items())[:2]
        raise UserError(
            f"--scored file {path} lines {a} and {b} were scored with other settings ({first!r} and "
            f"{second!r}): their scores do not rank together; score the ground truth again with --save"
        )
    if space is not None and said and not next(iter(said)).startswith(f"space={space} "):
        line, text = next(iter(said.values())), next(iter(said))
        raise UserError(
            f"--scored file {path} line {line} was scored with {text!r}, not in space {space}: give "
            f"--space as it was scored, or score the ground truth in {space} with --save"
        )


def _score(cell: str, where: str, count: bool) -> float:
    """A saved score: NaN when the cell is empty; UserError for text, or a negative ``count``
    (parameters, FLOPs)."""
    try:
        value = float(cell) if cell else math.nan
    except ValueError:
        raise UserError(f"{where} {cell!r} is not a number") from None
    if count and value < 0:
        raise UserError(f"{where} {cell} is negative; a count is at least 0")
    return value


def _read_csv(
    path: Path, what: str, fix: str = "give a CSV written by benchmark --save"
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-blank rows (with the line each starts on) of UTF-8 CSV file
    ``path`` (a byte-order mark accepted); UserError naming ``what`` and ``fix`` when it cannot be
    read. No cell of these files holds a line break: a row that runs over lines (an unclosed quote)
    is refused with the line it starts on, and so is a row with more cells than the header (an
    unquoted comma in a cell), unless the cells beyond it are empty."""
    if not path.is_file():
        problem = files.missing(path) or "is not a regular file"
        raise UserError(f"{what} {path} {problem}; {fix}")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [c.strip() for c in next(reader, [])]
            rows, start = [], reader.line_num + 1
            for row in reader:
                if reader.line_num != start:
                    raise UserError(
                        f"{what} {path}: the row on line {start} runs on to line {reader.line_num}, "
                        "as a quote on it is not closed; check its quoting"
                    )
                if [cell.strip() for cell in row] == header and header:  # two files joined into one
                    raise UserError(
                        f"{what} {path} line {start} repeats the header of line 1; keep one header "
                        "(were two files joined?)"
                    )
                if any(cell.strip() for cell in row[len(header) :]):  # a comma too many shifts cells
                    raise UserError(
                        f"{what} {path} line {start} has {len(row)} cells, not {len(header)}; fix that "
                        "row (quote a cell that holds a comma)"
                    )
                if any(cell.strip() for cell in row):
                    rows.append((start, row))
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise UserError(
            f"{what} {path} is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8 CSV"
        ) from None
    except csv.Error as e:
        raise UserError(f"{what} {path} is not a readable CSV ({e}); check its quoting") from None
    return header, rows


def check_save(path: str | Path, ground_truth: str | Path | None = None) -> None:
    """UserError unless a CSV can be written at ``path`` (checked before any scoring) without
    replacing the ground-truth file it was scored from."""
    files.check_writable(path, "--save file")
    if ground_truth is not None:
        files.check_not_input(path, "--save", {"--ground-truth": ground_truth})


# The column of a --save file that says how its rows were scored: rows scored otherwise do not
# rank with them.
SCORED_WITH = "scored_with"


def scored_with(
    space: str, data_source: str, batch_size: int, bn: str, seed: int, repeats: int, image_size: int
) -> str:
    """How a benchmark run scores its architectures, as its --save file records it on every row."""
    from ntknas.inputs.sources import canonical

    return (
        f"space={space} data={canonical(data_source)} batch_size={batch_size} bn={bn} seed={seed} "
        f"repeats={repeats} image_size={image_size}"
    )


class SaveFile:
    """A ``--save`` CSV written row by row, appended and flushed as each architecture is scored,
    so that a killed run loses only the row it was scoring. A file already there with the same
    columns is resumed: its complete rows for architectures of ``truth`` (same index and arch) are
    ``kept`` and rewritten, the others dropped. Anything else at ``path`` (a file with other
    columns, a link) is the user's: UserError, nothing written. Use as a context manager;
    :func:`write_scores` then writes the finished file in the ground truth's order.
    """

    def __init__(self, path: str | Path, truth: GroundTruth, names: list[str], scored_with: str) -> None:
        self.path, self.truth, self.names, self.scored_with = Path(path), truth, names, scored_with
        self.kept = self._resumable()
        lines = io.StringIO()
        rows = [_row(truth, i, [v[n] for n in names], scored_with) for i, v in sorted(self.kept.items())]
        csv.writer(lines).writerows([self._header(), *rows])
        files.write_atomically(self.path, lines.getvalue(), "--save file")  # drops a half-written row
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self.appended = 0  # rows this run wrote

    def _header(self) -> list[str]:
        return [*KEYS, self.truth.target, *self.names, SCORED_WITH]

    def _resumable(self) -> dict[int, dict[str, float]]:
        """The rows of the file already at ``path`` that this run can keep: row → metric → value."""
        if self.path.is_symlink():
            raise UserError(
                f"--save file {self.path} is a link; give the path of a new file or of an earlier --save "
                "(ntknas never writes through a link)"
            )
        if not self.path.is_file():
            return {}
        header, rows = _read_csv(self.path, "--save file")
        if header != self._header():
            raise UserError(
                f"--save file {self.path} holds other columns than this run writes "
                f"({', '.join(self._header())}), so it is no earlier --save of it; choose another path, "
                "or delete the file"
            )
        row_of = {key: i for i, key in enumerate(zip(self.truth.index, self.truth.arch, strict=True))}
        kept = {}
        for line, cells in rows:
            i = row_of.get((cells[0].strip(), cells[1].strip()))
            if i is None or len(cells) != len(header):
                continue
            if cells[-1] != self.scored_with:  # scores of other settings do not rank with these
                raise UserError(
                    f"--save file {self.path} line {line} was scored with {cells[-1]!r}, not "
                    f"{self.scored_with!r}; give another --save path, or delete the file"
                )
            try:
                kept[i] = dict(zip(self.names, map(_number, cells[3:-1]), strict=True))
            except ValueError:
                continue
        return kept

    def append(self, i: int, values: Mapping[str, float]) -> None:
        """Write row ``i`` of the ground truth with its metric ``values``, flushed to the file."""
        try:
            self._writer.writerow(_row(self.truth, i, [values[n] for n in self.names], self.scored_with))
            self._file.flush()
        except OSError as e:  # a full disk: the rows written so far resume the next run
            raise UserError(files.write_failure(e, f"--save file {self.path}") + " to resume") from None
        self.appended += 1

    def __enter__(self) -> SaveFile:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):  # what a full disk kept back is a row the next run scores
            self._file.close()


def write_scores(
    path: str | Path, truth: GroundTruth, values: dict[str, np.ndarray], scored_with: str
) -> None:
    """Write one row per architecture atomically: ``index``, ``arch``, the accuracy column, each
    metric's value (empty when it failed) and ``scored_with`` (:func:`scored_with`). Refuses to
    replace the ground-truth file itself."""
    if truth.source:
        files.check_not_input(path, "--save", {"--ground-truth": truth.source})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*KEYS, truth.target, *values, SCORED_WITH])
    for i in range(len(truth.acc)):
        writer.writerow(_row(truth, i, [v[i] for v in values.values()], scored_with))
    files.write_atomically(path, buffer.getvalue(), "--save file")


def _row(truth: GroundTruth, i: int, values: list[float], scored_with: str) -> list[str]:
    """The CSV cells of row ``i`` of ``truth`` with its metric ``values`` (empty when NaN, the metric
    having failed; an infinity, such as a singular pNTK's condition number, is kept)."""
    cells = [repr(float(v)) if not math.isnan(v) else "" for v in values]
    return [truth.index[i], truth.arch[i], repr(float(truth.acc[i])), *cells, scored_with]


def _number(cell: str) -> float:
    """A saved metric cell as a float (NaN when empty); ValueError when it is not a number."""
    return float(cell) if cell.strip() else math.nan


def correlations(values: dict[str, np.ndarray], acc: np.ndarray) -> dict[str, dict[str, float]]:
    """Kendall τ and Spearman ρ of each metric with accuracy, oriented so that positive means
    "higher score → better architecture"; non-finite scores rank last."""
    table = {}
    for name, v in values.items():
        o = oriented(v, metrics.METRICS[name].higher_is_better)
        table[name] = {"kendall_tau": kendall_tau(o, acc), "spearman_rho": spearman_rho(o, acc)}
    return table


# Simulated searches at most (about 2 s on this project's machine; a hundred million ran for
# minutes without a word).
MAX_RUNS = 100_000


def check_search(k: int, runs: int, available: int) -> None:
    """UserError unless drawing ``k`` of ``available`` architectures ``runs`` times makes sense."""
    if not 1 <= k <= available:
        raise UserError(f"--search must be between 1 and {available} (the scored architectures); got {k}")
    if not 1 <= runs <= MAX_RUNS:
        raise UserError(f"--runs must be from 1 to {MAX_RUNS:,}; got {runs}")


def search_experiment(
    values: np.ndarray,
    higher_is_better: bool,
    acc: np.ndarray,
    k: int,
    runs: int,
    seed: int,
    within: np.ndarray | None = None,
) -> dict[str, float]:
    """``runs`` times, draw ``k`` architectures and keep the best by the score: the true accuracy
    of the pick (mean, std over runs), beside a random pick and the draw's optimum. With
    ``within`` (a boolean mask: the architectures within a budget), draws only among those, and
    reports the best accuracy within the budget in the whole set (``budget_optimum_acc``)."""
    allowed = np.flatnonzero(np.ones(len(acc), bool) if within is None else within)
    if within is not None and len(allowed) == 0:
        raise UserError("no architecture of the ground truth is within the budget; raise it")
    check_search(k, runs, len(allowed))
    rng = np.random.default_rng(seed)
    score = oriented(values, higher_is_better)
    picked, randomly, best = [], [], []
    for _ in range(runs):
        draw = rng.choice(allowed, k, replace=False)
        top = draw[score[draw] == score[draw].max()]
        picked.append(float(acc[top].mean()))  # ties: the expected accuracy of a tied pick
        randomly.append(float(acc[draw].mean()))
        best.append(float(acc[draw].max()))
    found = {
        "k": k,
        "runs": runs,
        "mean_acc": float(np.mean(picked)),
        "std_acc": float(np.std(picked)),
        "random_mean_acc": float(np.mean(randomly)),
        "optimum_mean_acc": float(np.mean(best)),
    }
    if within is not None:
        found |= {"within_budget": len(allowed), "budget_optimum_acc": float(acc[allowed].max())}
    return found


def within_budget(values: dict[str, np.ndarray], budget: Budget) -> np.ndarray:
    """Which architectures are within ``budget``, from their values of the sizes it bounds."""
    count = len(next(iter(values.values())))
    sizes = [{n: values[n][i] for n in budget.bounded()} for i in range(count)]
    return np.array([budget.overrun(size) is None for size in sizes], dtype=bool)


def report(
    values: dict[str, np.ndarray],
    truth: GroundTruth,
    *,
    seconds_per_architecture: float,
    batch_size: int,
    bn: str,
    repeats: int,
    image_size: int = DEFAULT_IMAGE_SIZE,
    search: dict[str, float] | None = None,
    scored: str | None = None,
) -> dict[str, object]:
    """The benchmark's result: Kendall τ and Spearman ρ of each metric with accuracy, the settings
    (or the ``scored`` file the scores were read from), and the simulated search when there is one
    (``null`` for undefined correlations in JSON)."""
    result: dict[str, object] = {
        "n": len(truth.acc),
        "default_score": metrics.DEFAULT,
        "scores": correlations(values, truth.acc),
    }
    if scored is not None:
        result["scored"] = scored
    else:
        result.update(
            seconds_per_architecture=seconds_per_architecture,
            batch_size=batch_size,
            image_size=image_size,
            bn=bn,
            repeats=repeats,
        )
    if search is not None:
        result["search"] = search
    return result
