"""Files: written without ever leaving a half-written one behind, and ``.npz`` archives
read without ever unpickling anything."""
from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
import zlib

import numpy as np

from .autograd.function import MinidlError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The rename is atomic, so a reader (or a crash) sees either the old file or the
    complete new one. On failure the temporary file is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=f".tmp{ext}")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class CheckpointError(MinidlError, ValueError):
    """A checkpoint file that cannot be read: corrupted, truncated, or holding pickled objects."""


def write_npz(path, arrays):
    """Write {name: array} as an uncompressed .npz (what ``np.savez`` writes) to a temporary
    file in the destination folder, renamed over ``path`` once complete. Writing the
    archive by hand keeps names like "file" legal, which ``np.savez(file, **arrays)``
    would reject, and refuses object arrays (``allow_pickle=False``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint


def read_npz(path):
    """{name: NumPy array} from an .npz file, never unpickling anything."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}: check the path, or write one with model.save(path)")
    corrupted = (f"checkpoint {path!r} is corrupted (not a complete .npz archive: truncated by an "
                 f"interrupted copy or download, or not a minidl checkpoint at all); copy it again or "
                 f"re-save it with model.save(path)")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(corrupted)
    try:
        with np.load(path, allow_pickle=False) as archive:
            state = {name: archive[name] for name in archive.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(
                f"checkpoint {path!r} holds Python objects (pickled arrays); minidl never unpickles "
                f"files, because unpickling can run arbitrary code. Save numeric arrays only "
                f"(model.save(path) does).") from e
        raise CheckpointError(corrupted) from e
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise CheckpointError(corrupted) from e
    # an .npz holds only .npy members; any other zip returns raw bytes for its members
    if not all(isinstance(value, np.ndarray) for value in state.values()):
        raise CheckpointError(corrupted)
    return state
