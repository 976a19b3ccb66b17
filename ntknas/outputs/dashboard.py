"""The live web dashboard: optuna-dashboard on a study's storage, each trial annotated for NAS.

Every completed trial of a study made by ``ntknas search`` gets a **note** (optuna-dashboard's
markdown notes): its architecture, the objective and which way is better, the pNTK spectrum
scores, parameters and FLOPs and, once ``ntknas verify`` has trained it, the verified accuracy;
and its **pNTK eigenspectrum**, a PNG artifact shown in the note.

Optuna treats finished trials as read-only, artifacts included (``UpdateFinishedTrialError``), and
trials are annotated once finished. So the PNG is an artifact of the *study*, named
``trial-<n>-pntk-spectrum.png``, which the trial's note shows. Notes live in the study's system
attributes, which stay writable; so do ``ntknas:spectrum:<n>``, the id of trial n's PNG, and
``ntknas:note:<n>``, a digest of the note last written, which spares reading every note again
(optuna-dashboard reads all the study's system attributes to read one note: 80 ms at 1,000 trials).

Artifacts are files in a folder (Optuna's ``FileSystemArtifactStore``): ``<db file>.artifacts/``
beside an SQLite file (``results/ntknas.db.artifacts/`` by default), ``results/artifacts/`` for
a database server. A note whose first line is not the one ntknas writes is the user's: it is left
alone. optuna-dashboard and matplotlib are an optional extra (the ``dashboard`` extra),
imported only when used.
"""

from __future__ import annotations

import errno
import hashlib
import importlib
import json
import math
import re
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
import optuna
from numpy.typing import ArrayLike
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from ntknas.core import defaults, files
from ntknas.core.errors import InputWarning, UserError, first_line
from ntknas.core.extras import install_hint
from ntknas.scoring import spectra
from ntknas.scoring.registry import SPECTRUM, direction_words
from ntknas.study.records import REUSED_FROM, config_of
from ntknas.study.settings import Settings
from ntknas.study.storage import default_url, mask, open_storage, sqlite_file
from ntknas.study.verified import stored_results

HOST, PORT = "127.0.0.1", 8080
SERVER_ARTIFACTS = defaults.ARTIFACTS
# How often a serving dashboard annotates trials that finished or changed since it last looked.
REFRESH_SECONDS = 5.0
IMAGE_KEY, NOTE_KEY = "ntknas:spectrum:", "ntknas:note:"
IMAGE_NAME = "trial-{}-pntk-spectrum.png"
IMAGE_SIZE = (5.0, 3.0)  # inches, at ntknas.outputs.plots.DPI: 550 × 330 pixels
SIZES = {"params": "parameters", "flops": "FLOPs per image"}


def require() -> None:
    """Raise UserError, saying how to install it, when optuna-dashboard or matplotlib is missing."""
    for module, name in (("optuna_dashboard", "optuna-dashboard"), ("matplotlib", "matplotlib")):
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(f"{name} is not installed: {install_hint('dashboard')}") from None


def default_artifact_dir(storage_url: str | None) -> Path:
    """Where the artifacts of a storage live by default: ``<file>.artifacts`` beside an SQLite
    file, ``results/artifacts`` (in the working directory) for any other storage."""
    path = sqlite_file(storage_url)
    return SERVER_ARTIFACTS if path is None else path.with_name(path.name + ".artifacts")


class ArtifactFolder(FileSystemArtifactStore):
    """Optuna's artifact store in a folder, whose files are written whole or not at all (see
    :func:`ntknas.core.files.write_atomically`): a full disk leaves no empty or partial image, and is
    one line naming the artifact and the fix."""

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        path = self._get_filepath(artifact_id)
        files.write_atomically(path, content_body.read(), "artifact", follow=False)


def open_store(folder: Path) -> ArtifactFolder:
    """The artifact store in ``folder``, created if missing."""
    try:
        files.make_folders(folder)
    except OSError as e:
        raise UserError(
            f"cannot use {folder} for artifacts: {e.strerror or e}; pass another --artifacts folder"
        ) from None
    return ArtifactFolder(str(folder))


def header(number: int) -> str:
    """The first line of the note ntknas writes on trial ``number``."""
    return f"#### ntknas · trial {number}"


def note(settings: Settings, trial: FrozenTrial, image_url: str | None, verified: dict | None = None) -> str:
    """The markdown note of a completed ``trial`` of a study searched with ``settings``: what it
    is, how it scored, its ``verified`` result (``ntknas.study.verified``) and, when ``image_url`` is
    given, its spectrum image."""
    attrs = {**trial.user_attrs, **(verified or {})}
    lines = [
        header(trial.number),
        "",
        f"**Architecture** ({settings.space}) `{attrs.get('config', '?')}`",
        "",
    ]
    if REUSED_FROM in attrs:
        lines += [f"Same architecture as trial {attrs[REUSED_FROM]}: its measurements are reused.", ""]
    goals = [("Objective", settings.objective, settings.higher_is_better)]
    goals += [("Cost", settings.cost, False)] if settings.cost else []
    for role, name, higher in goals:
        lines.append(f"**{role}** {name} = **{_number(attrs.get(name))}** ({direction_words(higher)})  ")
    if "verified_status" in attrs:
        lines.append(_verified(attrs))
    if image_url is not None:
        lines += ["", f"![pNTK eigenspectrum of trial {trial.number}]({image_url})"]
    lines += ["", "| pNTK spectrum and size | |", "|---|---:|"]
    lines += [f"| {name} | {_number(attrs.get(name))} |" for name in SPECTRUM]
    lines += [f"| {label} | {_millions(attrs.get(key))} |" for key, label in SIZES.items()]
    lines += [
        "",
        f"Measured on {settings.batch_size} images of {settings.data} (BatchNorm {settings.bn}, "
        f"seed {settings.seed}) in {_number(attrs.get('seconds'), 2)} s.",
    ]
    return "\n".join(lines) + "\n"


def _verified(attrs: dict) -> str:
    recipe = (
        f"{attrs.get('verified_epochs')} epoch(s) on {attrs.get('verified_data')}, batch "
        f"{attrs.get('verified_batch_size')}, lr {attrs.get('verified_lr')}, "
        f"{_number(attrs.get('verified_seconds'), 3)} s"
    )
    status = str(attrs["verified_status"])
    if status != "trained":
        return f"**Verified**: {status} ({recipe})."
    return (
        f"**Verified**: **{_number(attrs.get('verified_test_acc'))} %** test accuracy "
        f"({_number(attrs.get('verified_train_acc'))} % on the training images) after {recipe}."
    )


def _millions(value: object) -> str:
    return f"{value / 1e6:.3g} M" if isinstance(value, int | float) else _number(value)


def _number(value: object, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits; ∞ for infinity, – when missing."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–" if value is None else str(value)
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}"


class Annotator:
    """Writes the note and uploads the spectrum image of a study's completed trials.

    ``storage`` holds study ``study_name``, made by ``ntknas search``; ``store`` keeps the images.
    Writing is idempotent: what has not changed is not written again.
    """

    def __init__(self, storage: optuna.storages.BaseStorage, study_name: str, store: ArtifactFolder) -> None:
        require()
        self.storage, self.store = storage, store
        # A sampler without state: building a trial handle (for its note) calls its before_trial.
        self.study = optuna.load_study(
            study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
        )
        self.study_id = storage.get_study_id_from_name(study_name)
        self.settings = Settings.load(self.study)
        self._seen: dict[int, str] = {}

    @classmethod
    def open(cls, storage_url: str | None, study_name: str, artifact_dir: Path | None = None) -> Annotator:
        """The annotator of study ``study_name`` in ``storage_url``, with its artifacts in
        ``artifact_dir`` (default: :func:`default_artifact_dir`)."""
        return cls(
            open_storage(storage_url),
            study_name,
            open_store(artifact_dir or default_artifact_dir(storage_url)),
        )

    def annotate(self, number: int, eigenvalues: ArrayLike | None = None) -> bool:
        """Write the note of trial ``number`` and, the first time, upload its spectrum image,
        drawn from the eigenvalues stored on it, else from ``eigenvalues`` (no image without
        either). Returns whether anything was written; nothing is for a trial not complete."""
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        trial = self.storage.get_trial(trial_id)
        if trial.state != TrialState.COMPLETE:
            return False
        verified = stored_results(self.study, [trial]).get(number)
        return self._annotate(trial, self._records(), eigenvalues, verified)

    def sync(self, *, data_root: str | None, device: str, report: Callable[[str], None] | None = None) -> int:
        """Annotate the completed trials that are new or changed since the last sync (all of
        them the first time). A trial without an image nor stored eigenvalues (a study searched
        before they were stored) has them recomputed, once per architecture, on the study's own
        data (``data_root`` for cifar10) and ``device``. Returns how many trials were written."""
        trials = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        verified = stored_results(self.study, trials)
        changed = [
            (t, f)
            for t in trials
            if self._seen.get(t.number) != (f := _fingerprint(t, verified.get(t.number)))
        ]
        if not changed:
            return 0
        records = self._records()
        lacking = [t for t, _ in changed if t.number not in records.images and spectra.stored(t) is None]
        recomputed = self._recompute(lacking, data_root, device, report)
        written = 0
        for trial, fingerprint in changed:
            written += self._annotate(
                trial, records, recomputed.get(_config(trial)), verified.get(trial.number)
            )
            self._seen[trial.number] = fingerprint
        return written

    def _recompute(
        self,
        trials: list[FrozenTrial],
        data_root: str | None,
        device: str,
        report: Callable[[str], None] | None,
    ) -> dict[str, np.ndarray]:
        """Architecture → pNTK eigenvalues, recomputed for the architectures of ``trials``."""
        from ntknas.study import rebuild

        # the architectures of candidates ntknas scored: a trial without a configuration is none
        configs = sorted({c for t in trials if (c := config_of(t)) is not None})
        if configs and report:
            name = self.study.study_name
            report(f"recomputing the pNTK spectra of {len(configs)} architecture(s) of study '{name}'")
        values = rebuild.eigenvalues(
            self.settings, configs, study=self.study.study_name, data_root=data_root, device=device
        )
        return dict(zip(configs, values, strict=True))

    def _annotate(
        self, trial: FrozenTrial, records: Records, eigenvalues: ArrayLike | None, verified: dict | None
    ) -> bool:
        from optuna_dashboard import get_note, save_note
        from optuna_dashboard.artifact import get_artifact_path

        wrote = False
        stored = spectra.stored(trial)
        values = stored if stored is not None else eigenvalues
        if trial.number not in records.images and values is not None:
            records.images[trial.number] = self._upload(trial.number, values)
            wrote = True
        image = records.images.get(trial.number)
        body = note(
            self.settings, trial, None if image is None else get_artifact_path(self.study, image), verified
        )
        digest = hashlib.sha256(body.encode()).hexdigest()
        if records.notes.get(trial.number) == digest:
            return wrote
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
        handle = optuna.Trial(self.study, trial_id)
        existing = get_note(handle)
        if existing != body:
            if existing and not existing.startswith(header(trial.number) + "\n"):
                return wrote  # the user's own note
            save_note(handle, body)
            wrote = True
        self.storage.set_study_system_attr(self.study_id, NOTE_KEY + str(trial.number), digest)
        records.notes[trial.number] = digest
        return wrote

    def _records(self) -> Records:
        """What this study's system attributes say ntknas wrote: images still in the store."""
        attrs = self.storage.get_study_system_attrs(self.study_id)
        images = {n: a for n, a in _numbered(attrs, IMAGE_KEY).items() if self._stored(a)}
        return Records(images, _numbered(attrs, NOTE_KEY))

    def _stored(self, artifact_id: str) -> bool:
        try:
            self.store.open_reader(artifact_id).close()
        except ArtifactNotFound:
            return False
        return True

    def _upload(self, number: int, eigenvalues: ArrayLike) -> str:
        """Draw trial ``number``'s spectrum, upload it as a study artifact and remember its id."""
        from ntknas.outputs.plots import spectrum_figure

        title = f"pNTK eigenspectrum of trial {number}"
        figure = spectrum_figure({number: np.asarray(eigenvalues)}, title, IMAGE_SIZE)
        try:  # a temporary file: what upload_artifact reads from
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / IMAGE_NAME.format(number)
                figure.savefig(path)
                artifact = optuna.artifacts.upload_artifact(
                    artifact_store=self.store, file_path=str(path), study_or_trial=self.study
                )
        except OSError as e:  # the store's own write says where (ArtifactFolder)
            raise UserError(files.write_failure(e, f"the spectrum image of trial {number}")) from None
        self.storage.set_study_system_attr(self.study_id, IMAGE_KEY + str(number), artifact)
        return artifact


@dataclass
class Records:
    """Per trial number: the artifact id of its spectrum image, the digest of its note."""

    images: dict[int, str]
    notes: dict[int, str]


def _numbered(attrs: dict, prefix: str) -> dict[int, str]:
    return {int(k.removeprefix(prefix)): v for k, v in attrs.items() if k.startswith(prefix)}


def _config(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("config"))


def _fingerprint(trial: FrozenTrial, verified: dict | None) -> str:
    return json.dumps([trial.values, trial.user_attrs, verified], sort_keys=True, default=str)


def _hardened(app: Callable) -> Callable:
    """optuna-dashboard's WSGI ``app`` with its faults on malformed requests mended at the door: a
    request without an Accept-Encoding header (curl, a script, some proxies) gets the page's files
    too, a query value that must be a whole number and is not (``?after=abc``) is answered 400,
    and whatever else a request makes it raise is one warning line (InputWarning) in place of the
    stack it would write to the log."""

    def serve(environ: dict, start_response: Callable):
        environ.setdefault("HTTP_ACCEPT_ENCODING", "identity")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if any(not re.fullmatch(r"-?[0-9]+", v) for v in query.get("after", [])):
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"reason": "after must be a whole number"}']
        request = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"
        environ["wsgi.errors"] = _OneLine(request)
        return app(environ, start_response)

    return serve


class _OneLine:
    """A WSGI error stream that turns what an app writes to it (a stack) into one warning line."""

    def __init__(self, request: str) -> None:
        self.request, self.text = request, ""

    def write(self, text: str) -> None:
        self.text += text

    def writelines(self, lines: list[str]) -> None:
        self.text += "".join(lines)

    def flush(self) -> None:
        lines = [line for line in self.text.strip().splitlines() if line.strip()]
        if lines:
            message = f"dashboard: {self.request} failed: {lines[-1].strip()}"
            warnings.warn(message, InputWarning, stacklevel=2)
        self.text = ""


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # one line per request is noise here
        pass


@dataclass
class Dashboard:
    """optuna-dashboard bound to its port; :meth:`serve_forever` serves it and keeps the notes
    of trials that finish or change up to date, every ``refresh_seconds`` (never when 0)."""

    url: str
    server: WSGIServer
    annotators: list[Annotator]
    refresh_seconds: float
    data_root: str | None
    device: str
    report: Callable[[str], None] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` (from another thread) or Ctrl-C; the port is then closed."""
        refresher = threading.Thread(target=self._refresh, name="ntknas-dashboard-refresh", daemon=True)
        if self.refresh_seconds > 0:
            refresher.start()
        try:
            self.server.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            if refresher.is_alive():
                refresher.join()
            self.server.server_close()

    def stop(self) -> None:
        """Make :meth:`serve_forever`, running in another thread, return."""
        self._stop.set()
        self.server.shutdown()

    def _refresh(self) -> None:
        told: set[str] = set()
        while not self._stop.wait(self.refresh_seconds):
            for annotator in self.annotators:
                try:
                    annotator.sync(data_root=self.data_root, device=self.device)
                except Exception as e:  # a refresh that fails leaves the dashboard serving
                    message = f"cannot annotate study '{annotator.study.study_name}': {first_line(e)}"
                    if self.report and message not in told:
                        self.report(message)
                    told.add(message)


def open_dashboard(
    storage_url: str | None,
    study_name: str | None = None,
    *,
    host: str = HOST,
    port: int = PORT,
    artifact_dir: Path | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    refresh_seconds: float = REFRESH_SECONDS,
    report: Callable[[str], None] | None = None,
) -> Dashboard:
    """optuna-dashboard on ``storage_url`` bound to ``host:port`` (0: any free port), with the
    trials of study ``study_name`` (of every study when None) annotated first, if ``ntknas
    search`` made it. Its ``url`` is the study's page, or the list of studies. UserError when a
    package is missing, the study does not exist or the port is taken."""
    require()
    import optuna_dashboard

    open_storage(storage_url, read_only=True).engine.dispose()  # a mistyped path: an error, no new file
    storage = open_storage(storage_url)
    names = optuna.get_all_study_names(storage)
    if study_name is not None and study_name not in names:
        raise UserError(
            f"no study named '{study_name}' in {mask(storage_url or default_url())}; "
            f"it holds: {', '.join(names) or 'no study'}"
        )
    store = open_store(artifact_dir or default_artifact_dir(storage_url))
    server = _bind(host, port, _hardened(optuna_dashboard.wsgi(storage, artifact_store=store)))
    try:
        shown = [study_name] if study_name else names
        annotators = [Annotator(storage, name, store) for name in shown if _searched(storage, name)]
        for annotator in annotators:
            written = annotator.sync(data_root=data_root, device=device, report=report)
            if report and written:
                report(f"annotated {written} trial(s) of study '{annotator.study.study_name}'")
    except BaseException:
        server.server_close()
        raise
    page = f"/studies/{storage.get_study_id_from_name(study_name)}" if study_name else ""
    url = f"http://{host}:{server.server_port}/dashboard{page}"
    return Dashboard(url, server, annotators, refresh_seconds, data_root, device, report)


def serve(
    storage_url: str | None,
    study_name: str | None = None,
    *,
    echo: Callable[[str], None] = print,
    serving: Callable[[], None] | None = None,
    **options,
) -> None:
    """Serve the dashboard (see :func:`open_dashboard` for the ``options``) until Ctrl-C,
    printing its URL through ``echo``; ``serving()`` is called once it listens, before that."""
    dashboard = open_dashboard(storage_url, study_name, report=echo, **options)
    if serving is not None:
        serving()
    echo(f"optuna-dashboard: {dashboard.url} (Ctrl-C to stop)")
    try:
        dashboard.serve_forever()
    except KeyboardInterrupt:
        pass


def _searched(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Whether study ``name`` was made by ``ntknas search`` (it remembers its settings)."""
    try:
        Settings.from_attrs(name, storage.get_study_user_attrs(storage.get_study_id_from_name(name)))
    except UserError:
        return False
    return True


def _bind(host: str, port: int, app) -> WSGIServer:
    try:
        return make_server(host, port, app, handler_class=_Quiet)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: pass --port with a free one") from None
        raise UserError(
            f"cannot serve on {host}:{port}: {e.strerror or e}; pass another --host or --port"
        ) from None
