"""Write output files atomically: a crash or a failing writer never leaves half a file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sdfrecon.errors import InputError

EXISTS_PROBLEM = "already exists (pass --overwrite to replace it)"


def check_writable(path: Path, overwrite: bool) -> None:
    """Refuse a folder, or an existing file without ``overwrite``, before any work is done."""
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    if path.exists() and not overwrite:
        raise InputError(path, EXISTS_PROBLEM)


@contextmanager
def atomic_write(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it onto ``path``.

    The temporary file keeps the suffix of ``path`` (writers such as trimesh pick the format
    from it) and is made with the usual permissions (0666 less the umask). Missing parent
    folders are created. If the body raises, the temporary file is removed and ``path`` is
    left as it was. Raises ``InputError`` if ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        _fsync(tmp)
        if not overwrite and path.exists():  # another process made it while we wrote
            raise InputError(path, EXISTS_PROBLEM)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)


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
