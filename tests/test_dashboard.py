"""`ntknas dashboard`: optuna-dashboard on a study, each trial annotated with a note and its pNTK
spectrum, checked through the storage, over HTTP and in a real headless browser."""

import io
import os
import re
import shutil
import socket
import sqlite3
import sys
import threading
import time
import urllib.request

import optuna
import pytest
from full_disk import fail_writes
from PIL import Image
from tiny_study import CONFIGS, bundled_slice, make_study
from typer.testing import CliRunner

from ntknas import cli
from ntknas.core import extras
from ntknas.core.errors import UserError
from ntknas.outputs import dashboard
from ntknas.run import verify
from ntknas.scoring import spectra
from ntknas.study import rebuild
from ntknas.study.settings import Settings

optuna_dashboard = pytest.importorskip(
    "optuna_dashboard", reason="optuna-dashboard not installed (pip install -e '.[dashboard]')"
)
PNG = b"\x89PNG\r\n\x1a\n"
WAIT_SECONDS = 120  # generous: the machine may be busy; the tests poll, never sleep a fixed time


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The tiny study's SQLite file, made once and copied into each test's working directory."""
    folder = tmp_path_factory.mktemp("template")
    make_study(url=f"sqlite:///{folder / 'ntknas.db'}", eigenvalues=False)  # an older study's
    with sqlite3.connect(folder / "ntknas.db") as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder / "ntknas.db"


@pytest.fixture
def study(template, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    shutil.copy(template, tmp_path / "results" / "ntknas.db")
    return optuna.load_study(study_name="tiny", storage="sqlite:///results/ntknas.db")


def sync(annotator):
    return annotator.sync(data_root=None, device="cpu")


def note_of(annotator, number):
    trial_id = annotator.storage.get_trial_id_from_study_id_trial_number(annotator.study_id, number)
    return optuna_dashboard.get_note(optuna.Trial(annotator.study, trial_id))


def spectrum_images(study):
    return sorted(
        m.filename for m in optuna.artifacts.get_all_artifact_meta(study) if m.filename.endswith(".png")
    )


def test_note_has_the_architecture_objective_scores_and_size(study):
    annotator = dashboard.Annotator.open(None, "tiny")
    assert sync(annotator) == 4
    trial = study.trials[2]
    text = note_of(annotator, 2)
    assert text.startswith("#### ntknas · trial 2\n")
    assert f"**Architecture** (nb201) `{CONFIGS[2]}`" in text
    kappa = trial.user_attrs["condition_number"]
    assert f"**Objective** condition_number = **{kappa:.4g}** (lower is better)" in text
    for name in ("lambda_max", "lambda_min", "trace", "effective_rank"):
        assert f"| {name} | {trial.user_attrs[name]:.4g} |" in text
    assert f"| parameters | {trial.user_attrs['params'] / 1e6:.3g} M |" in text
    assert f"| FLOPs per image | {trial.user_attrs['flops'] / 1e6:.3g} M |" in text
    assert "Measured on 8 images of cifar10-sample (BatchNorm batch, seed 0)" in text
    assert "Verified" not in text and "Same architecture" not in text


def test_spectrum_is_a_png_artifact_shown_in_the_note(study):
    annotator = dashboard.Annotator.open(None, "tiny")
    sync(annotator)
    assert spectrum_images(study) == [f"trial-{n}-pntk-spectrum.png" for n in range(4)]
    store = dashboard.open_store(dashboard.default_artifact_dir(None))
    for meta in optuna.artifacts.get_all_artifact_meta(study):
        number = int(meta.filename.split("-")[1])
        assert meta.mimetype == "image/png"
        path = optuna_dashboard.artifact.get_artifact_path(study, meta.artifact_id)
        assert f"\n![pNTK eigenspectrum of trial {number}]({path})\n" in note_of(annotator, number)
        with store.open_reader(meta.artifact_id) as f:
            data = f.read()
        assert data[:8] == PNG
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            assert image.size == (550, 330)


def test_annotating_again_writes_nothing(study):
    annotator = dashboard.Annotator.open(None, "tiny")
    sync(annotator)
    notes = [note_of(annotator, n) for n in range(4)]
    assert sync(annotator) == 0
    fresh = dashboard.Annotator.open(None, "tiny")  # a new process: nothing remembered but the storage
    assert sync(fresh) == 0
    assert not any(fresh.annotate(n) for n in range(4))
    assert [note_of(fresh, n) for n in range(4)] == notes
    assert len(spectrum_images(study)) == 4


def test_verification_updates_the_note_and_keeps_the_image(study):
    annotator = dashboard.Annotator.open(None, "tiny")
    sync(annotator)
    before = note_of(annotator, 0)
    [outcome] = verify.verify(
        study, None, verify.top_picks(study, 1), bundled_slice(), verify.Recipe(1, 32), device="cpu"
    )
    assert annotator.annotate(outcome.trial)
    text = note_of(annotator, outcome.trial)
    accuracy = f"**{outcome.test_acc:.4g} %** test accuracy"
    assert f"**Verified**: {accuracy}" in text
    assert "after 1 epoch(s) on sample-slice, batch 32, lr 0.1" in text
    lines = text.splitlines(keepends=True)
    assert lines.pop(5).startswith("**Verified**") and "".join(lines) == before  # one line more
    assert len(spectrum_images(study)) == 4
    assert sync(annotator) == 0  # the change is written already


def test_stored_eigenvalues_are_drawn_without_rebuilding_the_network(study, monkeypatch):
    [values] = rebuild.eigenvalues(
        Settings.load(study), [CONFIGS[1]], study="tiny", data_root=None, device="cpu"
    )
    attrs = {**study.trials[1].user_attrs, spectra.ATTR: spectra.to_attr(values), "reused_from": 1}
    study.add_trial(optuna.trial.create_trial(value=attrs["condition_number"], user_attrs=attrs))
    annotator = dashboard.Annotator.open(None, "tiny")
    monkeypatch.setattr(rebuild, "eigenvalues", lambda *a, **k: pytest.fail("rebuilt a stored spectrum"))
    assert annotator.annotate(4)
    assert "trial-4-pntk-spectrum.png" in spectrum_images(study)
    text = note_of(annotator, 4)
    assert "Same architecture as trial 1: its measurements are reused." in text
    assert "![pNTK eigenspectrum of trial 4](/artifacts/1/" in text


def test_a_note_the_user_wrote_is_left_alone(study):
    annotator = dashboard.Annotator.open(None, "tiny")
    trial_id = annotator.storage.get_trial_id_from_study_id_trial_number(annotator.study_id, 1)
    optuna_dashboard.save_note(optuna.Trial(annotator.study, trial_id), "my own remarks")
    assert sync(annotator) == 4  # trial 1 gets its image, not a new note
    assert note_of(annotator, 1) == "my own remarks"
    assert "trial-1-pntk-spectrum.png" in spectrum_images(study)


def test_artifacts_live_beside_an_sqlite_file_else_under_results():
    assert dashboard.default_artifact_dir(None).as_posix() == "results/ntknas.db.artifacts"
    assert dashboard.default_artifact_dir("sqlite:////data/s.db").as_posix() == "/data/s.db.artifacts"
    assert dashboard.default_artifact_dir("sqlite:///:memory:").as_posix() == "results/artifacts"
    assert dashboard.default_artifact_dir("postgresql://u:p@db/nas").as_posix() == "results/artifacts"
    assert (
        dashboard.default_artifact_dir("sqlite:///file:/data/s.db?mode=rwc&uri=true").as_posix()
        == "/data/s.db.artifacts"
    )


def test_missing_optuna_dashboard_is_a_one_line_hint(study, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)
    with pytest.raises(UserError) as caught:
        dashboard.open_dashboard(None, "tiny", port=0)
    hint = f'pip install -e ".[dashboard]" (in {extras.CHECKOUT})'  # the tests run from a checkout
    assert str(caught.value) == f"optuna-dashboard is not installed: {hint}"


def test_unknown_study_is_a_one_line_error(study):
    with pytest.raises(
        UserError, match=r"^no study named 'nope' in sqlite:///results/ntknas.db; it holds: tiny$"
    ):
        dashboard.open_dashboard(None, "nope", port=0)


def test_a_mistyped_storage_is_an_error_and_no_new_database(study, tmp_path):
    with pytest.raises(UserError, match=r"^storage file results/ntknsa.db does not exist; check the path"):
        dashboard.open_dashboard("sqlite:///results/ntknsa.db", port=0)
    assert not (tmp_path / "results" / "ntknsa.db").exists()


def test_port_in_use_is_a_one_line_error(study):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError) as caught:
            dashboard.open_dashboard(None, "tiny", port=port)
    assert str(caught.value) == f"port {port} on 127.0.0.1 is in use: pass --port with a free one"


def test_serve_listens_on_loopback_by_default_and_prints_the_study_url(study, monkeypatch):
    bound = []

    def serve_once(board):
        bound.append(board.server.socket.getsockname())
        board.server.server_close()

    monkeypatch.setattr(dashboard.Dashboard, "serve_forever", serve_once)
    lines = []
    dashboard.serve(None, "tiny", port=0, echo=lines.append)
    [(host, port)] = bound
    assert host == "127.0.0.1"
    assert lines == [
        "recomputing the pNTK spectra of 3 architecture(s) of study 'tiny'",
        "annotated 4 trial(s) of study 'tiny'",
        f"optuna-dashboard: http://127.0.0.1:{port}/dashboard/studies/1 (Ctrl-C to stop)",
    ]


def test_a_full_disk_under_the_images_is_one_line_and_leaves_no_empty_file(study, monkeypatch, tmp_path):
    images, write = tmp_path / "results" / "ntknas.db.artifacts", os.write
    fail_writes(monkeypatch, str(images))
    result = CliRunner().invoke(cli.app, ["dashboard", "tiny", "--port", "0", "--device", "cpu"])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        r"error: disk full writing artifact results/ntknas\.db\.artifacts/[\w-]+ "
        r"\(No space left on device\): free space and run the same command",
        line,
    ), line
    assert (
        list(images.iterdir()) == [] and spectrum_images(study) == []
    )  # no empty, partial or dangling image
    monkeypatch.setattr(os, "write", write)  # room again: the same command annotates every trial
    assert sync(dashboard.Annotator.open(None, "tiny")) == 4 and len(list(images.iterdir())) == 4


@pytest.fixture
def served(study):
    """The dashboard of the tiny study on a free port of 127.0.0.1, serving in a thread."""
    board = dashboard.open_dashboard(None, "tiny", port=0, refresh_seconds=0.2)
    thread = threading.Thread(target=board.serve_forever, daemon=True)
    thread.start()
    yield board
    board.stop()
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive()


def fetch(url):
    with urllib.request.urlopen(url, timeout=WAIT_SECONDS) as response:
        return response.status, response.headers.get_content_type(), response.read()


def test_serves_the_study_page_and_its_images(served, study):
    port = served.server.socket.getsockname()[1]
    assert served.url == f"http://127.0.0.1:{port}/dashboard/studies/1"
    status, kind, body = fetch(served.url)
    assert (status, kind) == (200, "text/html") and b"bundle.js" in body
    for meta in optuna.artifacts.get_all_artifact_meta(study):
        path = optuna_dashboard.artifact.get_artifact_path(study, meta.artifact_id)
        status, kind, body = fetch(f"http://127.0.0.1:{port}{path}")
        assert (status, kind) == (200, "image/png") and body[:8] == PNG


def test_a_trial_that_finishes_while_serving_is_annotated(served, study):
    attrs = study.trials[2].user_attrs
    study.add_trial(optuna.trial.create_trial(value=attrs["condition_number"], user_attrs=attrs))
    annotator = dashboard.Annotator.open(None, "tiny")
    deadline = time.monotonic() + WAIT_SECONDS
    while not note_of(annotator, 4) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert note_of(annotator, 4).startswith("#### ntknas · trial 4\n")
    assert "trial-4-pntk-spectrum.png" in spectrum_images(study)


def browser():
    """Headless chromium driven by selenium, or a reason to skip."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium not installed (pip install selenium)"
    )
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("chromium and chromedriver not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


@pytest.mark.slow
def test_the_trial_page_shows_the_trials_the_note_and_the_spectrum_in_a_browser(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    try:
        driver.get(f"{served.url}/trials?numbers=0")
        wait = WebDriverWait(driver, WAIT_SECONDS)
        wait.until(lambda d: "ntknas · trial 0" in d.find_element(By.TAG_NAME, "body").text)
        page = driver.find_element(By.TAG_NAME, "body").text
        assert all(f"Trial {n}" in page for n in range(4)), page
        assert CONFIGS[0] in page and "condition_number" in page
        image = driver.find_element(By.CSS_SELECTOR, "img[alt='pNTK eigenspectrum of trial 0']")
        wait.until(lambda d: d.execute_script("return arguments[0].complete", image))
        assert driver.execute_script("return arguments[0].naturalWidth", image) == 550
        driver.execute_script("arguments[0].scrollIntoView()", image)
        assert driver.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        driver.quit()
    with Image.open(tmp_path / "dashboard.png") as shot:
        assert shot.format == "PNG" and shot.width == 1280


@pytest.mark.slow
def test_sigterm_stops_the_dashboard_with_code_143(study, tmp_path):
    import os
    import signal
    import subprocess

    command = [sys.executable, "-m", "ntknas", "dashboard", "tiny", "--port", "0", "--device", "cpu"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # ends when the process does, so a failure to start cannot hang
            if line.startswith("optuna-dashboard: http://"):
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT_SECONDS) == 143
    finally:
        proc.kill()


def test_malformed_requests_are_mended_at_the_door_and_an_apps_stack_is_one_warning():
    """Without an Accept-Encoding header optuna-dashboard fails to serve its script (a KeyError);
    a non-integer ?after= raises in it. At the door: the header defaults, ?after= is checked (400),
    and a stack the app writes to wsgi.errors becomes one InputWarning line."""
    import warnings

    from ntknas.core.errors import InputWarning

    seen = []

    def app(environ, start_response):
        seen.append(environ["HTTP_ACCEPT_ENCODING"])
        errors = environ["wsgi.errors"]
        errors.write("Traceback (most recent call last):\n  File 'x', line 1\nKeyError: 'boom'\n")
        errors.flush()
        start_response("500 Internal Server Error", [])
        return [b"{}"]

    served = dashboard._hardened(app)
    statuses = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for query in ("after=abc", "after=%FF", "after=", "after=3", ""):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/studies/1", "QUERY_STRING": query}
            served(environ, lambda status, headers: statuses.append(status.split()[0]))
    assert statuses == ["400", "400", "400", "500", "500"]
    assert seen == ["identity", "identity"]
    assert [(w.category, str(w.message)) for w in caught] == [
        (InputWarning, "dashboard: GET /api/studies/1 failed: KeyError: 'boom'"),
    ] * 2
