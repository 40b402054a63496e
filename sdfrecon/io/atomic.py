"""Write output files atomically: a crash or a failing writer never leaves half a file."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sdfrecon.errors import InputError

EXISTS_PROBLEM = "already exists (pass --overwrite to replace it)"


def check_writable(path: str | Path, overwrite: bool) -> None:
    """Refuse a folder, an existing file without ``overwrite``, or a place where no file can
    be made (see :func:`check_folder`), before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    if path.exists() and not overwrite:
        raise InputError(path, EXISTS_PROBLEM)
    check_folder(path.parent, path)


def existing_ancestor(folder: Path) -> Path:
    """``folder`` itself if it exists, else its nearest ancestor that does."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return folder


def reason(error: OSError) -> str:
    """'permission denied', 'no space left on device', ... for an OSError."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if error.errno == errno.ENOENT:  # /proc and the like
        return "files cannot be created there"
    text = error.strerror or (errno.errorcode.get(error.errno or 0) or str(error))
    return text[:1].lower() + text[1:]


def check_folder(folder: str | Path, what: str | Path | None = None) -> None:
    """InputError (naming ``what``, default the folder) unless files can be made in ``folder``.

    The folder need not exist yet: its nearest existing ancestor must be a folder in which a
    file can be created (a probe file is made and removed at once). Run as root, permission
    bits do not stop writes, so only read-only or special file systems fail the probe there.
    """
    folder = Path(folder)
    what = folder if what is None else what
    base = existing_ancestor(folder)
    if not base.is_dir():
        kind = "a file" if base.is_file() else "not a folder"
        raise InputError(what, f"cannot create folder {folder}: {base} is {kind}")
    probe = base / f".sdfrecon-probe-{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        raise InputError(what, f"cannot write to {base}: {reason(error)}") from None
    with suppress(OSError):
        probe.unlink()


def check_free_space(folder: str | Path, needed: int, what: str | Path | None = None,
                     contents: str = "the output") -> None:
    """InputError unless the file system of ``folder`` has ``needed`` bytes free."""
    folder = Path(folder)
    base = existing_ancestor(folder)
    try:
        free = shutil.disk_usage(base).free
    except OSError:  # no figure (some special file systems): let the writes tell
        return
    if free < needed:
        raise InputError(what or folder, f"not enough free space in {base}: {_size(free)} free, "
                                         f"about {_size(needed)} needed for {contents}")


def _size(count: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


@contextmanager
def atomic_write(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``.

    The temporary file keeps the suffix of ``path`` (writers such as trimesh pick the format
    from it) and is made with the usual permissions (0666 less the umask). Missing parent
    folders are created. If the body raises, the temporary file is removed and ``path`` is
    left as it was. Raises ``InputError`` if ``path`` exists and ``overwrite`` is false, and
    for an OSError while writing (a full disk, say): "could not be written: <reason>".
    """
    path = Path(path)
    check_writable(path, overwrite)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as error:
        raise InputError(path, f"could not be written: {reason(error)}") from None
    try:
        yield tmp
        _fsync(tmp)
        if not overwrite and path.exists():  # another process made it while we wrote
            raise InputError(path, EXISTS_PROBLEM)
        os.replace(tmp, path)
    except BaseException as error:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError):
            raise InputError(path, f"could not be written: {reason(error)}") from error
        raise
    _fsync_folder(path.parent)


def write_json(path: str | Path, data: dict, overwrite: bool = False, allow_nan: bool = True) -> None:
    """``data`` as indented JSON (and a final newline), atomically. ``allow_nan=False`` refuses
    NaN and infinities (not JSON) with a ValueError instead of writing them."""
    with atomic_write(path, overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=allow_nan) + "\n", encoding="utf-8")


def stale_temporaries(path: str | Path) -> list[Path]:
    """The temporary files that :func:`atomic_write` leaves beside ``path`` when its process
    is killed mid-write (``kill -9``, power loss): ``.<stem>.<hex>.tmp<suffix>``."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = f".{path.stem}.*.tmp{path.suffix}"
    return sorted(p for p in path.parent.glob(pattern) if p.is_file())


def _fsync(path: Path) -> None:
    """Flush a file's data to disk, so the rename never exposes an empty file after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    """Flush the folder entry of the rename (best effort: not possible on every platform)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
