"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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
