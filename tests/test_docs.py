"""The docs site: it builds with ``mkdocs build --strict`` (as CI builds it), a broken link fails
that build, the command-line reference covers every command, and the library page's examples run.
The build tests skip, saying why, where the docs extra is not installed."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


MISSING = [
    m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python") if not installed(m)
]
needs_mkdocs = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not installed: pip install -e '.[docs]'"
)


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` of the site whose mkdocs.yml is in ``root``, into ``site``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(root / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = build(ROOT, site)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


@needs_mkdocs
def test_the_site_builds_strictly_with_every_page(site):
    nav = re.findall(r":\s*([\w-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(nav) == pages, "every page of docs/ is in the nav, and every nav entry is a page"
    for page in pages:
        folder = site if page == "index.md" else site / page.removesuffix(".md")
        assert (folder / "index.html").is_file(), page


@needs_mkdocs
def test_the_cli_reference_has_every_command_and_option(site):
    import typer.main

    from ntknas.cli import app

    html = (site / "cli" / "index.html").read_text()
    root = typer.main.get_command(app)
    for name, command in root.commands.items():
        assert f'id="{name}"' in html, name
        for param in command.params:
            for option in param.opts:
                if option.startswith("--") and option != "--help":
                    assert f"<code>{option} " in html or f"<code>{option}</code>" in html, (name, option)


@needs_mkdocs
def test_the_api_reference_is_generated(site):
    html = (site / "library" / "index.html").read_text()
    for identifier in (
        "scores.pntk",
        "scores.Spectrum",
        "search_spaces.SearchSpace",
        "ntknas.scoring.metrics.compute",
        "ntknas.objectives.objective.objective",
        "ntknas.api.search",
        "ntknas.scoring.registry.metric",
    ):
        assert f'id="{identifier}"' in html, identifier
    assert ":func:" not in html and ":class:" not in html  # docstrings' roles shown as code


@needs_mkdocs
def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy)
    shutil.copytree(DOCS, copy / "docs")
    for package in ("scores", "search_spaces", "ntknas"):
        (copy / package).symlink_to(ROOT / package)
    page = copy / "docs" / "speed.md"
    page.write_text(page.read_text() + "\nSee [the old manual](manual.md).\n")
    result = build(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "manual.md" in result.stdout + result.stderr


def cli_hook():
    spec = importlib.util.spec_from_file_location("cli_reference", DOCS / "hooks" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_mkdocs
@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda text: text.replace("<!-- cli: score -->\n", ""), "without a marker ['score']"),
        (lambda text: text + "\n<!-- cli: train -->\n", "unknown commands ['train']"),
        (lambda text: text + "\n<!-- cli: plot -->\n", "repeated markers ['plot']"),
    ],
)
def test_the_cli_reference_refuses_a_page_that_misses_a_command(change, complaint):
    from mkdocs.exceptions import PluginError

    hook = cli_hook()
    page = (DOCS / "cli.md").read_text()
    hook.render(page)  # the page as it is renders
    with pytest.raises(PluginError, match=re.escape(complaint)):
        hook.render(change(page))


def test_the_library_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the search example stores its study under results/
    text = (DOCS / "library.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 3, "docs/library.md lost its examples"
    for block in blocks:
        exec(compile(block, "docs/library.md", "exec"), {})
