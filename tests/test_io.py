"""minidl.io: atomic writes that clean up after writers killed mid-way, and one clear line for a
checkpoint path that is a folder, a read-only folder or a full disk."""
import errno
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from minidl import MinidlError
from minidl.io import CheckpointError, WriteError, atomic_path, read_npz, write_npz

HOLD = """
import sys, time
from minidl.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"half a checkpoint" * 1000)
    print(tmp, flush=True)
    time.sleep(120)
"""


def start_writer(target):
    """A process in the middle of an atomic write of ``target``; returns (process, its temporary file)."""
    writer = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True)
    tmp = writer.stdout.readline().strip()
    assert tmp and os.path.exists(tmp), "the writer did not start"
    return writer, tmp


def backdate(path, seconds=3600):
    then = time.time() - seconds
    os.utime(path, (then, then))


def temporary_files(folder):
    return sorted(name for name in os.listdir(folder) if ".tmp" in name)


def test_the_next_write_removes_the_temporary_files_of_killed_writers(tmp_path):
    target = tmp_path / "model.npz"
    write_npz(target, {"w": np.zeros(3)})
    leftovers = []
    for _ in range(3):  # three writes killed with -9 half-way: nothing could clean up after them
        writer, tmp = start_writer(target)
        writer.kill()
        writer.wait()
        leftovers.append(os.path.basename(tmp))
    assert temporary_files(tmp_path) == sorted(leftovers)  # each was too fresh for the next writer to remove
    for name in leftovers:
        backdate(tmp_path / name)
    write_npz(target, {"w": np.ones(3)})
    assert temporary_files(tmp_path) == [] and read_npz(target)["w"].tolist() == [1, 1, 1]


def test_a_live_writer_and_other_targets_keep_their_temporary_files(tmp_path):
    target = tmp_path / "model.npz"
    writer, live = start_writer(target)
    try:
        backdate(live)  # old, but its writer is still at work (it holds the file locked)
        fresh = tmp_path / ".model.abc123xy.tmp.npz"     # a writer that has only just created its file
        fresh.write_bytes(b"x")
        other = tmp_path / ".model.b.abc123xy.tmp.npz"   # a temporary file of model.b.npz, not of model.npz
        other.write_bytes(b"x")
        backdate(other)
        dead = tmp_path / ".model.zz9_dead.tmp.npz"      # old and held by no one: left by a killed writer
        dead.write_bytes(b"x")
        backdate(dead)
        write_npz(target, {"w": np.zeros(2)})
        assert temporary_files(tmp_path) == sorted([os.path.basename(live), fresh.name, other.name])
    finally:
        writer.kill()
        writer.wait()


def one_line_write_error(call, path):
    with pytest.raises(WriteError) as err:
        call()
    message = str(err.value)
    assert isinstance(err.value, MinidlError) and isinstance(err.value, OSError)
    assert str(path) in message and "\n" not in message
    return message


def test_a_directory_is_not_a_checkpoint(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(CheckpointError) as err:
        read_npz(folder)
    message = str(err.value)
    assert "is a directory" in message and "best.npz" in message and "corrupted" not in message
    write_npz(folder / "best.npz", {"w": np.zeros(1)})
    with pytest.raises(CheckpointError, match=r"is a directory.*best\.npz"):
        read_npz(folder)
    message = one_line_write_error(lambda: write_npz(folder, {"w": np.zeros(1)}), folder)
    assert "is a directory" in message and "best.npz" in message
    assert sorted(os.listdir(folder)) == ["best.npz"] and temporary_files(tmp_path) == []
    with pytest.raises(WriteError, match="is a directory"):
        with atomic_path(folder) as tmp:
            open(tmp, "w").close()


def test_a_read_only_folder_is_one_clear_line(tmp_path, monkeypatch):
    target = tmp_path / "model.npz"
    write_npz(target, {"w": np.zeros(3)})
    good = target.read_bytes()
    if os.geteuid() != 0:  # root writes anywhere: there, the refusal is simulated
        os.chmod(tmp_path, 0o555)
    else:
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        message = one_line_write_error(lambda: write_npz(target, {"w": np.ones(3)}), target)
    finally:
        os.chmod(tmp_path, 0o755)
    assert "Permission denied" in message and "folder you can write to" in message
    assert target.read_bytes() == good and temporary_files(tmp_path) == []


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
def test_a_full_disk_is_one_clear_line_and_leaves_the_old_file(tmp_path, monkeypatch, where):
    target = tmp_path / "model.npz"
    write_npz(target, {"w": np.zeros(3)})
    good = target.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr({"write": np.lib.format, "fsync": os, "rename": os}[where],
                        {"write": "write_array", "fsync": "fsync", "rename": "replace"}[where], disk_full)
    message = one_line_write_error(lambda: write_npz(target, {"w": np.ones(3)}), target)
    assert "No space left on device" in message and "free" in message
    monkeypatch.undo()
    assert target.read_bytes() == good and temporary_files(tmp_path) == []


def test_atomic_path_names_its_target_for_write_errors_only(tmp_path):
    target = tmp_path / "vocab.txt"
    with pytest.raises(WriteError, match=f"{target}.*No space left"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(ConnectionResetError):  # not a write error (e.g. a download that broke): unchanged
        with atomic_path(target):
            raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    assert os.listdir(tmp_path) == []
