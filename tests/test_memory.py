"""ntknas.core.memory: what /proc and the cgroup say, and the bound that turns running out of
memory into an error of the command instead of a kill."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ntknas.core import memory

resource = pytest.importorskip("resource")


def test_memory_is_read_as_linux_writes_it(monkeypatch, tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal:  8000000 kB\nMemAvailable:  4000000 kB\nSwapFree:  5 kB\n")
    (tmp_path / "rollup").write_text(
        "5-7 ---p 0 0:0 0 [rollup]\nRss: 9 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n"
    )
    (tmp_path / "status").write_text("Name: python\nVmData:\t  807616 kB\nVmRSS: 9 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "OWN_MEMORY", tmp_path / "rollup")
    monkeypatch.setattr(memory, "STATUS", tmp_path / "status")
    monkeypatch.setattr(memory, "_cgroup_memory_files", lambda: [(tmp_path / "max", tmp_path / "current")])
    (tmp_path / "max").write_text("max\n")
    assert memory.own_memory() == 3 * 1024 and memory.available_memory() == 4_000_000 * 1024
    assert memory._data_size() == 807616 * 1024 and memory._free_swap() == 5 * 1024
    (tmp_path / "max").write_text("3000000000\n")  # a cgroup limit below the system's counts
    (tmp_path / "current").write_text("1000000000\n")
    assert memory.available_memory() == 2_000_000_000
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "absent")  # no /proc, as on macOS
    assert memory._free_swap() == 0
    assert memory.available_memory() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    monkeypatch.setattr(memory, "STATUS", tmp_path / "absent")
    assert memory._data_size() is None and memory.bound_to_available() is None  # unknown: no bound


def test_the_bound_is_what_the_process_maps_plus_what_is_available_and_is_restored(monkeypatch):
    before = resource.getrlimit(resource.RLIMIT_DATA)
    monkeypatch.setattr(memory, "_data_size", lambda: 3 * 2**30)
    monkeypatch.setattr(memory, "available_memory", lambda: 4 * 2**30)
    monkeypatch.setattr(memory, "_free_swap", lambda: 2**30)  # the kernel fills swap before it kills
    restore = memory.bound_to_available()
    try:
        assert restore is not None
        assert resource.getrlimit(resource.RLIMIT_DATA) == (8 * 2**30, before[1])
        monkeypatch.setattr(memory, "available_memory", lambda: 6 * 2**30)
        assert memory.bound_to_available() is None  # a lower limit is set already: kept
        assert resource.getrlimit(resource.RLIMIT_DATA)[0] == 8 * 2**30
    finally:
        if restore is not None:
            restore()
    assert resource.getrlimit(resource.RLIMIT_DATA) == before


def test_an_allocation_beyond_the_bound_is_an_error_of_one_line_not_a_kill():
    """In a process bounded to 1 GiB more than it maps, torch asked for 4 GiB raises its
    allocator's error (the kernel would otherwise let it touch pages until the machine's memory
    ran out and kill it), and the command line's reading of it is the memory line."""
    code = textwrap.dedent(
        """
        import torch
        from ntknas.core import errors, memory
        memory.available_memory = lambda: 2**30
        memory._free_swap = lambda: 0
        memory.bound_to_available()
        try:
            torch.ones(2**30)  # 4 GiB of float32
        except RuntimeError as e:
            print(errors.memory_problem(e))
        """
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    from test_bad_input import KINDS, matches

    assert matches(KINDS["memory the machine would kill the process for"].message, shown.stdout.strip())
    assert "4294967296 bytes" in shown.stdout


def test_the_command_line_bounds_its_memory_on_the_cpu_only_in_its_own_process(monkeypatch):
    from ntknas.cli import common

    bounded = []
    monkeypatch.setattr(memory, "bound_to_available", lambda: bounded.append(True))
    assert common.resolve_device("cpu") == "cpu" and bounded == []  # called as a library: no bound
    monkeypatch.setattr(common, "BOUND_MEMORY", True)  # as the console script sets it
    assert common.resolve_device("cpu") == "cpu" and bounded == [True]
