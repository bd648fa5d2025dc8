"""Atomic whole-file writes: the replaced file keeps its mode (and owner), and the write is durable."""

import os
import stat
from pathlib import Path

import pytest

import edge.atomic_file as af
from edge.atomic_file import write_atomically


@pytest.fixture
def umask():
    """Set a umask for one test and put the previous one back."""
    saved = []

    def set_(mask: int) -> None:
        saved.append(os.umask(mask))

    yield set_
    if saved:
        os.umask(saved[0])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_gets_the_umasks_mode_not_0600(tmp_path, umask):
    umask(0o027)
    path = tmp_path / "out" / "result.json"
    write_atomically(path, b"{}\n")
    assert path.read_bytes() == b"{}\n"
    assert mode(path) == 0o640  # 0666 less the umask, as for any new file


def test_a_rewrite_keeps_the_replaced_files_mode(tmp_path, umask):
    """The appliance reads as its own user: a rewrite by someone else must not make it 0600."""
    path = tmp_path / "cell-a.json"
    path.write_bytes(b"old\n")
    path.chmod(0o644)
    umask(0o077)  # the writer's own umask does not matter for a file that already exists
    write_atomically(path, b"new\n")
    assert path.read_bytes() == b"new\n" and mode(path) == 0o644
    path.chmod(0o600)  # nor is a stricter mode someone chose widened
    umask(0o022)
    write_atomically(path, b"newer\n")
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["cell-a.json"]  # no temporary left behind


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_a_rewrite_by_root_keeps_the_owner(tmp_path):
    path = tmp_path / "cell-a.json"
    path.write_bytes(b"old\n")
    os.chown(path, 4321, 4322)
    write_atomically(path, b"new\n")
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322)


def test_the_file_and_its_folder_are_fsynced(tmp_path, monkeypatch):
    """Without both, a power cut after the rename can leave an empty file or the old name."""
    synced = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(af.os, "fsync", fsync)
    write_atomically(tmp_path / "result.json", b"{}\n")
    assert synced == ["file", "folder"]
