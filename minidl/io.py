"""Files: written without ever leaving a half-written one behind, and ``.npz`` archives
read without ever unpickling anything."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import tempfile
import time
import warnings
import zipfile
import zlib

import numpy as np

from .errors import MinidlError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks; an open file cannot be deleted there
    fcntl = None

# A temporary file of the same target that no live writer holds locked and that is older than
# this (seconds) was left by a killed writer. The age covers the instant between mkstemp and the
# lock (and writers of older minidl versions, which took no lock); without locks, a day.
STALE_AFTER = 60.0 if fcntl is not None else 86_400.0
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
_HINTS = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space (the disk quota is full)",
          errno.EFBIG: "the file is too large for this file system", errno.EROFS: "choose a folder you can write to",
          errno.EACCES: "choose a folder you can write to", errno.EPERM: "choose a folder you can write to"}


class WriteError(MinidlError, OSError):
    """A file that could not be written (a read-only folder, a full disk, a folder in the way);
    the previous file, if any, is intact and no temporary file is left."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The rename is atomic, so a reader (or a crash) sees either the old file or the
    complete new one. On failure the temporary file is removed and ``path`` is untouched.

    A writer killed with -9 cannot remove its temporary file, so each write first removes
    the temporary files of the same target left that way (see ``_remove_stale``); the writer
    holds its own locked until the rename, so no live writer loses its file. Failures of the
    writing itself (a read-only folder, a full disk, ``path`` a folder) are raised as one
    ``WriteError`` naming ``path``; other errors of the body (a broken download) pass unchanged.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise WriteError(f"cannot write {path}: it is a directory; give the path of a file (inside it, or elsewhere)")
    folder = os.path.dirname(os.path.abspath(path))
    base, ext = os.path.splitext(os.path.basename(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=f".tmp{ext}")
    except OSError as e:
        raise _write_error(path, e) from e
    fd = _hold(fd)
    try:
        _remove_stale(folder, base, ext, tmp)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)  # renamed while still locked: no cleaner can take it for a leftover first
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if _is_write_failure(e, tmp):
            raise _write_error(path, e) from e
        raise
    finally:
        if fd is not None:
            os.close(fd)


def write_text(path, text):
    """Write ``text`` to ``path`` in UTF-8, atomically (``atomic_path``): whole or not at all."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def drop_truncated_tail(path, again):
    """Cut off a last line without its newline that is not valid JSON (left by an interrupted write of a
    JSONL file), warning that it is gone and what follows (``again``: "that job runs again"), so the next
    appended line starts on a line of its own. A complete last line missing only its newline gets one."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
            f.write(b"\n")
        except ValueError:
            warnings.warn(f"{path}: removing a truncated last line ({len(data) - start} bytes) left by an "
                          f"interrupted write; {again}", stacklevel=3)   # (the CLI shows it once)
            f.truncate(start)
        f.flush()
        os.fsync(f.fileno())


def check_writable(path, what="--out", folder=False):
    """Refuse, before any work, a path that cannot be written: one naming a folder where a file
    goes (or a file where a folder goes), one below a file, or one in a folder this user cannot
    write. Raises one ``WriteError`` naming ``what`` (the option) and what to do."""
    path = os.fspath(path)
    if not folder and os.path.isdir(path):
        raise WriteError(f"{what} {path} is a folder; give the path of a file (inside it, or elsewhere)")
    if not folder and path.endswith(("/", os.sep)):   # abspath drops the slash: "new/" passed, failed after the work
        raise WriteError(f"{what} {path} names a folder; give the path of a file (inside it, or elsewhere)")
    if folder and os.path.exists(path) and not os.path.isdir(path):
        raise WriteError(f"{what} {path} is a file; give a folder")
    nearest = os.path.abspath(path) if folder else os.path.dirname(os.path.abspath(path))
    while not os.path.exists(nearest):          # the nearest existing folder: where the new ones will go
        nearest = os.path.dirname(nearest)
    if not os.path.isdir(nearest):
        raise WriteError(f"{what} {path}: {nearest} is a file, so no folder can be made there; choose another path")
    try:
        with tempfile.TemporaryFile(dir=nearest):
            pass
    except OSError as error:
        raise WriteError(f"{what} {path}: cannot write in {nearest} ({error.strerror}); "
                         f"choose another folder") from None


def check_replaceable(path, is_own, writer, what="--out", beside=()):
    """Refuse, before any work, to replace a file that is there but is not ``writer``'s own
    output (``is_own(path)`` is False, or fails to read it): nothing a user wrote is overwritten.
    ``beside``: the files written with ``path`` (figures, tables), which are ``writer``'s when
    ``path`` is, and anyone's while ``path`` is not there."""
    path = os.fspath(path)
    if os.path.isfile(path):
        foreign = path
        with contextlib.suppress(OSError, ValueError, KeyError, zipfile.BadZipFile):
            foreign = None if is_own(path) else path
    else:
        foreign = next((os.fspath(other) for other in beside if os.path.exists(other)), None)
    if foreign:   # (a .npz cut short may have been anyone's: it is named, not replaced)
        why = CUT_SHORT if cut_short(foreign) else f"is there and was not written by {writer}"
        raise WriteError(f"{what} {foreign} {why}; give another path, or move the file away first")


def json_keys(path):
    """The keys of the JSON object in the file ``path`` (none for another JSON value)."""
    with open(path, encoding="utf-8") as f:
        value = json.load(f)
    return set(value) if isinstance(value, dict) else set()


def json_array(value):
    """``value`` as one JSON text in a 0-d array of bytes (dtype S: a byte a character), the way
    minidl stores metadata in an .npz. A str array (dtype U, as files before 2026-12 hold) takes four
    bytes a character: the vocabulary in a masked-LM checkpoint's metadata was ~40 % of an int8 model."""
    return np.array(json.dumps(value).encode("ascii"))   # json.dumps escapes every non-ASCII character


def from_json_array(array):
    """The value a ``json_array`` holds (also from a str array, as older files store it); ValueError if
    it is no JSON."""
    array = np.asarray(array)
    text = array.item() if array.size == 1 else ""
    return json.loads(text if isinstance(text, bytes) else str(text))


def npz_meta(path):
    """The metadata of a minidl .npz (its "meta" member, a ``json_array``), read without its arrays."""
    with zipfile.ZipFile(path) as archive, archive.open("meta.npy") as member:
        return from_json_array(np.lib.format.read_array(member, allow_pickle=False))


# what the commands say of a file ``cut_short`` finds
CUT_SHORT = "is corrupted (not a complete .npz archive: truncated by an interrupted copy or download)"


def cut_short(path):
    """Whether the file ``path`` began as a zip archive (an .npz), or is empty, and is not a whole one: a write, copy
    or download cut short (a 0-byte or 3-byte file too)."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        return b"PK\x03\x04".startswith(f.read(4)) and not zipfile.is_zipfile(path)
    return False


def is_npz(path):
    """Whether the file ``path`` is an .npz archive, .npy arrays only (model.save's checkpoints, minidl train's)."""
    with zipfile.ZipFile(path) as archive:
        return all(name.endswith(".npy") for name in archive.namelist())


def _hold(fd):
    """Lock the new temporary file (``fd``) for as long as it is written, and return the fd to
    close at the end; without ``fcntl`` close it now (None), as Windows cannot rename an open file."""
    if fcntl is not None:
        with contextlib.suppress(OSError):  # a file system without locks: then no cleaner can lock it either
            fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    os.close(fd)
    return None


def _remove_stale(folder, base, ext, own):
    """Remove the temporary files that writes of the same target (``.BASE.<random>.tmpEXT``, as
    ``atomic_path`` names them) left behind when killed: those older than ``STALE_AFTER`` seconds
    that no process holds locked. Files of other targets, fresh ones and locked ones are kept."""
    name = re.compile(re.escape(f".{base}.") + r"[A-Za-z0-9_]+" + re.escape(f".tmp{ext}"))
    try:
        with os.scandir(folder) as scan:
            candidates = [e.path for e in scan if name.fullmatch(e.name) and e.path != own]
    except OSError:
        return
    now = time.time()
    for candidate in candidates:
        with contextlib.suppress(OSError):  # gone meanwhile, locked, or not ours to remove
            if now - os.lstat(candidate).st_mtime > STALE_AFTER:
                _remove_unlocked(candidate)


def _remove_unlocked(path):
    """Remove ``path`` if no process holds it locked (BlockingIOError otherwise)."""
    if fcntl is None:
        os.remove(path)  # fails while a writer has it open
        return
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.remove(path)
    finally:
        os.close(fd)


def _is_write_failure(error, tmp):
    """Whether ``error`` (raised by the body of ``atomic_path``) is a failure to write the file:
    an OSError about the temporary file or one that only writing raises (disk full, read-only)."""
    if not isinstance(error, OSError) or isinstance(error, MinidlError):
        return False
    return error.errno in _WRITE_ERRNOS or (error.filename is not None and os.fspath(error.filename) == tmp)


def _write_error(path, error):
    """A one-line WriteError naming ``path`` for the OSError ``error``, with what to do about it."""
    reason = " ".join(str(error.strerror or error).split())
    hint = _HINTS.get(error.errno, "check the path")
    if isinstance(error, IsADirectoryError) or (error.errno is None and os.path.isdir(path)):
        hint = "it is a directory; give the path of a file"
    new = WriteError(f"cannot write {path}: {reason}; {hint}. The previous file, if any, is unchanged")
    new.errno = error.errno
    return new


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


class CheckpointError(MinidlError, ValueError):
    """A checkpoint file that cannot be read: corrupted, truncated, or holding pickled objects."""


def write_npz(path, arrays, compress=False):
    """Write {name: array} as an .npz (what ``np.savez`` writes; ``np.savez_compressed``'s
    deflated archive with ``compress=True``) to a temporary file in the destination folder,
    renamed over ``path`` once complete. Writing the
    archive by hand keeps names like "file" legal, which ``np.savez(file, **arrays)``
    would reject, and refuses object arrays (``allow_pickle=False``).

    Any OSError on the way (a full disk, a read-only folder, ``path`` a folder) is raised as a
    one-line ``WriteError`` naming ``path``; the previous file is intact, no temporary file is left."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise WriteError(f"cannot write the checkpoint {path}: it is a directory; give a file path such as "
                         f"{os.path.join(path, 'best.npz')}")
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            with zipfile.ZipFile(f, "w", compression=method, allowZip64=True) as archive:
                for name, array in arrays.items():
                    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it the checkpoint
    except OSError as e:
        if isinstance(e, MinidlError):
            raise
        raise _write_error(path, e) from e


def file_sha256(path):
    """The SHA-256 of a file's bytes, as hex, read a megabyte at a time (OSError as open raises it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_file(path):
    """``path`` as a string, after a one-line error if no checkpoint file can be there: none at all, or a folder."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}: check the path (minidl train --out DIR writes "
                                f"DIR/best.npz)")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path!r} is a directory, not a .npz file; pass the checkpoint file inside "
                              f"it, {_checkpoints_in(path)}")
    return path


def read_npz(path):
    """{name: NumPy array} from an .npz file, never unpickling anything."""
    path = checkpoint_file(path)
    corrupted = (f"checkpoint {path!r} is corrupted (not a complete .npz archive: truncated by an "
                 f"interrupted copy or download, or not a minidl checkpoint at all); copy it again or "
                 f"re-save it with model.save(path)")
    if not zipfile.is_zipfile(path):   # not a zip at all (a run's results.json) is no copy cut short
        best = os.path.join(os.path.dirname(path), "best.npz")
        beside = (f"; give the one beside it, {best}" if os.path.isfile(best) and not os.path.samefile(best, path)
                  and zipfile.is_zipfile(best) else "")
        raise CheckpointError(corrupted if cut_short(path) else f"{path!r} is not a checkpoint (an .npz written by "
                                                                f"minidl or model.save){beside}")
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


def _checkpoints_in(folder, shown=5):
    """"one of best.npz, last.npz" (the .npz files in ``folder``), or "e.g. best.npz" when there are none."""
    with contextlib.suppress(OSError):
        names = sorted(name for name in os.listdir(folder) if name.endswith(".npz"))
        if names:
            return "one of " + ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")
    return "e.g. best.npz"


def legend_columns(labels, width_inches, font_points=10.0):
    """How many legend entries fit side by side across the figure (at most 6): each takes about
    0.6 em a character plus 3.5 em for its marker and the gap, and all columns are as wide as the
    widest entry, so long labels (e.g. several differing settings) wrap onto more rows instead of
    running off both edges."""
    entry = font_points * (0.6 * max(map(len, labels), default=0) + 3.5)
    return max(1, min(len(labels), 6, int(width_inches * 72 // entry)))


def write_figure(fig, path, dpi=120):
    """Write a matplotlib ``fig`` at ``path`` (atomically) in the format its extension names, PNG
    without one, tagged as minidl's (``is_minidl_figure``); an SVG without a date, so an
    unchanged plot gives an unchanged file. -> ``path``."""
    ext = os.path.splitext(path)[1].lower().lstrip(".") or "png"
    metadata = {"Creator": "minidl", **({"Date": None} if ext == "svg" else {})} if ext in _TAGGED else None
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=ext, dpi=dpi, metadata=metadata)
    return path


def save_figure(fig, out_prefix, formats=("png", "svg"), dpi=120):
    """``write_figure`` as ``out_prefix.png`` and ``.svg``; -> the paths."""
    return [write_figure(fig, f"{os.fspath(out_prefix)}.{ext}", dpi) for ext in formats]


_TAGGED = ("png", "svg", "pdf")   # the formats that keep write_figure's tag


def is_minidl_figure(path):
    """Whether ``path`` is a figure ``write_figure`` wrote: a PNG, SVG or PDF whose creator is minidl."""
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
        tail = f.read()
    if head.startswith(b"\x89PNG"):
        from PIL import Image

        with Image.open(path) as image:
            return image.info.get("Creator") == "minidl"
    return (re.search(rb"<dc:creator>\s*<cc:Agent>\s*<dc:title>minidl</dc:title>", head) is not None
            or head.startswith(b"%PDF") and b"/Creator (minidl)" in tail)


def finite(value):
    """``value`` with every NaN or infinite float as None, dicts (their keys as strings), lists and
    tuples walked: valid JSON, where an undefined metric (AUC on one class) reads null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
