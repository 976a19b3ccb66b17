"""Usable CPUs from the affinity mask and cgroup quotas (fake cgroup folders), and threads per
worker."""

import os

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ntknas.core import threads


@pytest.fixture
def affinity(monkeypatch):
    """Set the CPUs the process may run on."""

    def set_cpus(count: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(count)), raising=False)

    return set_cpus


def cgroup(tmp_path, lines: str, files: dict[str, str]):
    """A fake cgroup mount under tmp_path/fs and membership file; returns (root, membership)."""
    root = tmp_path / "fs"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    root.mkdir(exist_ok=True)
    membership = tmp_path / "cgroup"
    membership.write_text(lines)
    return root, membership


def test_no_cgroup_quota_leaves_the_affinity_mask(tmp_path, affinity):
    affinity(6)
    root, membership = cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"})
    assert threads.cpu_quota(root, membership) is None
    assert threads.usable_cpus(root, membership) == 6


def test_cgroup_v2_quota_in_a_container_is_rounded_down(tmp_path, affinity):
    affinity(8)
    root, membership = cgroup(tmp_path, "0::/\n", {"cpu.max": "250000 100000\n"})
    assert threads.cpu_quota(root, membership) == 2.5
    assert threads.usable_cpus(root, membership) == 2


def test_cgroup_v2_tightest_quota_on_the_path_to_the_process(tmp_path, affinity):
    affinity(16)
    files = {
        "cpu.max": "max 100000\n",
        "batch.slice/cpu.max": "400000 100000\n",
        "batch.slice/job_7/cpu.max": "300000 100000\n",
        "batch.slice/job_7/step/cpu.max": "max 100000\n",
        "other/cpu.max": "100000 100000\n",  # not this process's cgroup
    }
    root, membership = cgroup(tmp_path, "0::/batch.slice/job_7/step\n", files)
    assert threads.cpu_quota(root, membership) == 3.0
    assert threads.usable_cpus(root, membership) == 3


def test_cgroup_v1_quota_under_the_cpu_hierarchy(tmp_path, affinity):
    affinity(4)
    lines = "12:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n"
    files = {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "150000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    }
    root, membership = cgroup(tmp_path, lines, files)
    assert threads.cpu_quota(root, membership) == 1.5
    assert threads.usable_cpus(root, membership) == 1


def test_cgroup_v1_unlimited_and_unreadable_files_mean_no_quota(tmp_path, affinity):
    affinity(3)
    files = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n", "cpu.max": "garbage\n"}
    root, membership = cgroup(tmp_path, "2:cpu:/\n0::/\n", files)
    assert threads.cpu_quota(root, membership) is None
    assert threads.usable_cpus(root, membership) == 3


def test_a_quota_below_one_cpu_still_gets_one_thread(tmp_path, affinity):
    affinity(4)
    root, membership = cgroup(tmp_path, "0::/\n", {"cpu.max": "50000 100000\n"})
    assert threads.usable_cpus(root, membership) == 1


def test_without_membership_file_the_root_quota_counts(tmp_path, affinity):
    affinity(8)
    root, _ = cgroup(tmp_path, "", {"cpu.max": "200000 100000\n"})
    assert threads.usable_cpus(root, tmp_path / "absent") == 2


def test_threads_per_worker_shares_the_usable_cpus(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    assert [threads.threads_per_worker(w) for w in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert threads.threads_per_worker(4, threads=3) == 3


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(threads.LIBRARY_SETTINGS)),
    value=st.one_of(
        st.text(max_size=12),
        st.from_regex(r"[0-9, ]{1,8}", fullmatch=True),
        st.sampled_from(["passive", "ACTIVE", " 4 ", "4,2", "0", "-1", "1.5"]),
    ),
)
@example(name="OMP_NUM_THREADS", value="abc")
@example(name="OMP_NUM_THREADS", value="4,2")
@example(name="MKL_NUM_THREADS", value="4,2")
def test_a_thread_setting_is_kept_only_when_its_library_accepts_it(name, value):
    """OpenMP takes a list of positive counts, MKL one count, and a wait policy of ACTIVE or PASSIVE
    (any case); any other value is dropped with one line naming it."""
    environ, shown = {name: value, "PATH": "/bin"}, []
    threads.drop_invalid_settings(environ, shown.append)
    blank = " \t\n\r\f\v"  # what C's isspace() skips
    if name == "OMP_WAIT_POLICY":
        accepted = value.strip(blank).lower() in ("active", "passive") and value.isascii()
    else:
        parts = value.split(",") if name == "OMP_NUM_THREADS" else [value]
        counts = [part.strip(blank) for part in parts]
        accepted = all(c.isascii() and c.isdigit() and c[0] != "0" for c in counts)
    assert (name in environ) == accepted
    assert environ["PATH"] == "/bin"
    assert accepted == (not shown)
    if not accepted:
        assert (
            len(shown) == 1 and "\n" not in shown[0] and shown[0].startswith(f"environment variable {name}=")
        )
        assert shown[0].endswith("; ignored: fix it or unset it")


def test_an_invalid_thread_setting_is_one_warning_and_openmp_says_nothing():
    import subprocess
    import sys

    code = (
        "import os; from ntknas.core import threads; threads.drop_invalid_settings(os.environ, print); "
        "import torch"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "abc", "OMP_WAIT_POLICY": "lazy"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    from test_bad_input import KINDS, matches

    assert matches(KINDS["a thread setting its library refuses"].message, done.stdout.splitlines()[0])
    assert done.stdout.splitlines() == [
        "environment variable OMP_NUM_THREADS='abc' is not a positive whole number such as 2; ignored: "
        "fix it or unset it",
        "environment variable OMP_WAIT_POLICY='lazy' is not ACTIVE or PASSIVE; ignored: fix it or unset it",
    ]
