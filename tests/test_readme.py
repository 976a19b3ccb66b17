"""The README is a landing page: short, its Python examples run as written, its links lead to
files that exist, and CI finds its test command."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_CHARACTERS = 12_000  # the manual lives in docs/; the README points to it


def test_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_ci_runs_the_readme_test_command():
    text = README.read_text()
    command = re.search(r"<!-- test-command -->\n```bash\n(.+)\n```", text)
    assert command and "pytest" in command.group(1)
    assert text.index("<!-- test-command -->") < text.index("## What it is")


def test_the_readme_is_a_landing_page():
    size = len(README.read_text())
    assert size <= MAX_CHARACTERS, (
        f"README.md has {size:,} characters, more than {MAX_CHARACTERS:,}: move the detail into docs/"
    )


def test_the_readme_links_lead_somewhere():
    targets = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    local = [t.split("#", 1)[0] for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/index.md" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
