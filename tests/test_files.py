"""Outputs: checked before any work, written atomically, never over an input."""

import contextlib
import errno
import os
import stat
from pathlib import Path

import pytest
import unprivileged
from full_disk import fail_writes

from ntknas.core import files
from ntknas.core.errors import UserError
from ntknas.core.staging import check_new_folder, staged


def test_check_writable(tmp_path):
    assert files.check_writable(tmp_path / "new" / "deeper" / "out.csv", "--save file").name == "out.csv"
    (tmp_path / "old.csv").write_text("x")
    assert files.check_writable(tmp_path / "old.csv", "--save file") == tmp_path / "old.csv"
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "plain").write_text("a file, not a folder")
    cases = {
        tmp_path: f"cannot write --save file {tmp_path}: it is a folder; give a file path",
        tmp_path / "pipe.csv": f"cannot write --save file {tmp_path / 'pipe.csv'}: it is not a regular file; "
        "give a file path",
        tmp_path / "plain" / "out.csv": f"cannot write --save file {tmp_path / 'plain' / 'out.csv'}: "
        f"{tmp_path / 'plain'} is not a folder; choose another path",
    }
    for path, message in cases.items():
        with pytest.raises(UserError) as info:
            files.check_writable(path, "--save file")
        assert str(info.value) == message
    with pytest.raises(UserError, match="is not a folder"):
        files.check_writable_folder(tmp_path / "plain", "--out folder")
    assert (
        files.check_writable_folder(tmp_path / "plots" / "new", "--out folder") == tmp_path / "plots" / "new"
    )
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    for link in ("loop", "dangling"):
        for path in (tmp_path / link, tmp_path / link / "sub"):
            with pytest.raises(UserError) as info:
                files.check_writable_folder(path, "--out folder")
            assert str(info.value) == (
                f"cannot write --out folder {path}: {tmp_path / link} is a link that leads nowhere "
                "(dangling, or a loop); choose another path"
            )


def test_read_only_outputs_are_refused_where_permissions_bind(tmp_path):
    if unprivileged.unavailable():
        pytest.skip(unprivileged.unavailable())
    (tmp_path / "locked.csv").write_text("keep me")
    (tmp_path / "locked.csv").chmod(0o444)
    (tmp_path / "shut").mkdir(mode=0o555)
    out = unprivileged.run(
        "from ntknas.core import files\n"
        "for path in ('locked.csv', 'shut/out.csv', 'shut/new/out.csv'):\n"
        "    try:\n"
        "        files.check_writable(path, '--save file')\n"
        "    except Exception as e:\n"
        "        print(e)\n"
        "try:\n"
        "    files.write_atomically('shut/out.csv', 'x', '--save file')\n"
        "except Exception as e:\n"
        "    print(e)\n",
        tmp_path,
    )
    assert out.splitlines() == [
        "cannot write --save file locked.csv: the file is read-only; choose another path",
        "cannot write --save file shut/out.csv: the folder shut is not writable; choose another path",
        "cannot write --save file shut/new/out.csv: the folder shut is not writable; choose another path",
        "cannot write --save file shut/out.csv: Permission denied; choose a writable path",
    ]
    assert (tmp_path / "locked.csv").read_text() == "keep me" and os.listdir(tmp_path / "shut") == []


def test_an_output_is_never_an_input(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("index,arch,cifar10_test_acc\n")
    os.symlink(truth, tmp_path / "alias.csv")
    os.link(truth, tmp_path / "hard.csv")
    for same in (truth, tmp_path / "alias.csv", tmp_path / "hard.csv", tmp_path / "." / "truth.csv"):
        with pytest.raises(UserError) as info:
            files.check_not_input(same, "--save", {"--ground-truth": truth})
        assert str(info.value) == (
            f"--save {same} is the --ground-truth file {truth}; writing it would destroy that input: "
            "choose another path"
        )
    files.check_not_input(tmp_path / "other.csv", "--save", {"--ground-truth": truth})
    (tmp_path / "other.csv").write_text("")
    files.check_not_input(tmp_path / "other.csv", "--save", {"--ground-truth": truth})


def test_write_atomically(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "out.csv"
    files.write_atomically(target, "one\n", "--save file")
    assert target.read_text() == "one\n"
    target.chmod(0o640)
    files.write_atomically(target, b"two\n", "--save file")
    assert target.read_bytes() == b"two\n" and stat.S_IMODE(target.stat().st_mode) == 0o640
    os.symlink(target, tmp_path / "link.csv")
    files.write_atomically(tmp_path / "link.csv", "three\n", "--save file")  # the link stays a link
    assert (tmp_path / "link.csv").is_symlink() and target.read_text() == "three\n"

    def crash(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(UserError) as info:
        files.write_atomically(target, "four\n", "--save file")
    assert str(info.value) == (
        f"disk full writing --save file {target} (No space left on device): "
        "free space and run the same command"
    )
    assert target.read_text() == "three\n"  # the old file is whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]  # no temporary left behind


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            errno.ENOSPC,
            "disk full writing plot x.png (No space left on device): free space and run the same command",
        ),
        (
            errno.EDQUOT,
            "disk full writing plot x.png (Disk quota exceeded): free space and run the same command",
        ),
        (errno.EFBIG, "disk full writing plot x.png (File too large): free space and run the same command"),
        (
            errno.EIO,
            "the disk failed writing plot x.png (Input/output error): "
            "check the disk, then run the same command",
        ),
        (errno.EROFS, "cannot write plot x.png: Read-only file system; choose a writable path"),
        (errno.EACCES, "cannot write plot x.png: Permission denied; choose a writable path"),
    ],
)
def test_a_failed_write_is_one_line_naming_the_file_and_the_fix(tmp_path, monkeypatch, code, message):
    assert files.write_failure(OSError(code, os.strerror(code)), "plot x.png") == message
    target = tmp_path / "x.png"
    target.write_bytes(b"the old picture")
    fail_writes(monkeypatch, ".x.png.", code=code)  # half of the new file written, then the fault
    with pytest.raises(UserError) as info:
        files.write_atomically(target, b"a new picture" * 1000, "plot", follow=False)
    assert str(info.value) == message.replace("x.png", str(target))
    assert target.read_bytes() == b"the old picture" and os.listdir(tmp_path) == ["x.png"]


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_a_staged_folder_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, skip):
    written = fail_writes(monkeypatch, ".pick.", skip=skip)
    with pytest.raises(UserError) as info, staged(tmp_path / "new" / "pick") as folder:
        for name in ("a", "b", "c"):
            files.write_new(folder / name, name.encode() * 100)
    assert str(info.value) == (
        f"disk full writing --out {tmp_path / 'new' / 'pick'} (No space left on device): free space and run "
        "the same command"
    )
    assert len(written) == skip + 1 and os.listdir(tmp_path) == []  # no folder, staged or made for it


def test_folder_name_is_one_safe_folder_and_never_shared():
    names = [
        "nb201",
        "a_b",
        "a/b",
        "a\\b",
        "..",
        ".",
        "...",
        "",
        "a\nb",
        "é" * 90,
        "é" * 101,
        "x" * 300,
        "-rf",
    ]
    folders = [files.folder_name(n) for n in names]
    assert folders[:2] == ["nb201", "a_b"] and files.folder_name(".hidden") == ".hidden"
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert "/" not in folder and "\\" not in folder and "\n" not in folder
        assert folder.strip(".") and len(folder.encode()) <= 255


def test_missing_says_why_a_path_names_nothing_and_every_reader_says_it(tmp_path):
    from typer.testing import CliRunner

    from ntknas.cli import app

    os.symlink(tmp_path / "loop-b", tmp_path / "loop-a")
    os.symlink(tmp_path / "loop-a", tmp_path / "loop-b")
    os.symlink(tmp_path / "gone", tmp_path / "broken")
    (tmp_path / "file").write_text("x")
    expected = {
        "loop-a": "is a loop of symbolic links",
        "broken": f"is a broken symbolic link to {tmp_path / 'gone'}",
        "nothing": "does not exist",
        "file/below": "does not exist",
        "file": None,
        ".": None,
    }
    assert {name: files.missing(tmp_path / name) for name in expected} == expected
    assert files.missing("a\0b") == "is not a valid path (it holds a NUL character)"
    loop = str(tmp_path / "loop-a")
    for args in (
        [
            "score",
            "--space",
            "nb201",
            "--arch",
            "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "--data",
            loop,
        ],
        ["benchmark", "--space", "nb201", "--ground-truth", loop],
        ["results", "--storage", f"sqlite:///{loop}"],
    ):
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 2, (args, done.output)
        assert f"{loop} is a loop of symbolic links" in done.stderr and len(done.stderr.splitlines()) == 1, (
            args
        )


def test_folders_thousands_of_levels_deep_are_made_or_refused_by_the_system_never_recursion(tmp_path):
    """Path.mkdir(parents=True) recurses once per missing level: 1,500 levels (3,001 characters,
    within PATH_MAX) ended export, plot and benchmark --save in a RecursionError traceback."""
    try:
        deep = tmp_path / Path(*["d"] * 1500) / "x"
        files.make_folders(deep)
        assert deep.is_dir()
        files.make_folders(deep)  # there already: nothing to do
        files.write_atomically(tmp_path / Path(*["e"] * 1500) / "kept.csv", "a,b\n", "--save file")
        assert (tmp_path / Path(*["e"] * 1500) / "kept.csv").read_text() == "a,b\n"
        with pytest.raises(OSError) as too_long:  # beyond PATH_MAX: the system's refusal
            files.make_folders(tmp_path / Path(*["f"] * 2500))
        assert too_long.value.errno == errno.ENAMETOOLONG and not (tmp_path / "f").exists()  # none left
        from test_bad_input import KINDS, matches

        out = "/".join(["e"] * 2500) + "/x"
        with pytest.raises(UserError) as refused:
            check_new_folder(tmp_path / out)
        shown = str(refused.value).replace(str(tmp_path) + "/", "")
        assert matches(KINDS["an output path thousands of folders deep"].message, shown), shown
        assert not (tmp_path / "e").exists() or (tmp_path / "e" / "e").exists()  # only the 1,500 made above
    finally:  # emptied level by level: rmtree, as pytest's clean-up, would recurse
        _remove_chain(tmp_path, "d", 1500, "x")
        _remove_chain(tmp_path, "e", 1500, "kept.csv")


def _remove_chain(root: Path, name: str, depth: int, leaf: str) -> None:
    """Remove ``root/name/…/name`` (``depth`` levels) and the one entry ``leaf`` at its bottom (a file
    or an empty folder), deepest first."""
    end = root / Path(*[name] * depth) / leaf
    with contextlib.suppress(FileNotFoundError):
        if end.is_dir():
            end.rmdir()
        else:
            end.unlink()
    for level in range(depth, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(root / Path(*[name] * level))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
