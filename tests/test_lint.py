"""The code base is clean and formatted by ruff, at the version the test extra pins (another
version's rules would give another verdict)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PINNED = re.search(r'"ruff==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def installed() -> str:
    result = ruff("--version")
    if result.returncode != 0:
        pytest.skip("ruff is not installed: pip install -e '.[test]'")
    return result.stdout.split()[1]


def test_ruff_is_the_pinned_version(installed):
    assert installed == PINNED, (
        f"ruff {installed} is installed, the test extra pins {PINNED}: pip install -e '.[test]'"
    )


def test_ruff_check_is_clean(installed):
    result = ruff("check", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean(installed):
    result = ruff("format", "--check", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr
