#!/usr/bin/env python3
"""Download the Stanford bunny and write it as an oriented point cloud.

Fetches ``bunny.tar.gz`` from the Stanford 3D Scanning Repository, reads
``bunny/reconstruction/bun_zipper.ply`` from it in memory, and writes into ``--out``:

* ``bun_zipper.ply``: the mesh, byte for byte as in the archive;
* ``bunny.xyz``: one line ``x y z nx ny nz`` per vertex that a face uses (vertices no
  face references have no normal and are dropped). Coordinates are in the mesh's own
  units written with ``%.7g`` (an exact round trip of the 6-digit originals); normals are
  trimesh ``vertex_normals`` (unit, outward for this mesh) written with ``%.6f``.

Each file is written to a temporary name and renamed, so a failure never leaves a
half-written file. Without network access the script prints one line on stderr and
exits with code 1. Usage::

    python scripts/fetch_data.py [--out data] [--force] [--source URL]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = "http://graphics.stanford.edu/pub/3Dscanrep/bunny.tar.gz"
MEMBER = "bunny/reconstruction/bun_zipper.ply"
PROG = "fetch_data"
SHARED_HINT = "the shapes are also in ../shared/data if you have that checkout"


class FetchError(Exception):
    """A failure reported as one line on stderr with exit code 1."""


def download(url: str, timeout: float = 60.0) -> bytes:
    """The bytes at ``url`` (http, https or file); FetchError if it cannot be read."""
    host = urllib.parse.urlparse(url).hostname or url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"could not reach {host} ({reason}); {SHARED_HINT}") from None


def extract_member(archive: bytes, member: str = MEMBER) -> bytes:
    """The bytes of ``member`` inside a (possibly compressed) tar archive held in memory."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise FetchError(f"{member} in the archive is not a regular file")
            return handle.read()
    except KeyError:
        raise FetchError(f"the archive has no {member}; {SHARED_HINT}") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise FetchError(f"the download is not a readable tar archive ({exc})") from None


def oriented_points(ply: bytes) -> np.ndarray:
    """(N, 6) float64 ``x y z nx ny nz`` for every vertex that a face references."""
    import trimesh  # imported here: it takes ~1 s, and the early exits do not need it

    try:
        mesh = trimesh.load(io.BytesIO(ply), file_type="ply", process=False, force="mesh")
    except Exception as exc:  # trimesh raises many types for a malformed file
        raise FetchError(f"could not parse {MEMBER} ({exc})") from None
    if len(mesh.faces) == 0:
        raise FetchError(f"{MEMBER} has no faces, so its vertices have no normals")
    used = np.unique(np.asarray(mesh.faces))
    vertices = np.asarray(mesh.vertices, dtype=np.float64)[used]
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64)[used]
    return np.hstack([vertices, normals])


def xyz_text(points: np.ndarray) -> bytes:
    """The ``x y z nx ny nz`` lines: ``%.7g`` coordinates, ``%.6f`` normals."""
    buffer = io.StringIO()
    np.savetxt(buffer, points, fmt=["%.7g"] * 3 + ["%.6f"] * 3, delimiter=" ")
    return buffer.getvalue().encode("ascii")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    The temporary file is opened with ``open(..., "xb")`` so it gets the usual
    permissions (umask), unlike ``tempfile.mkstemp``'s 0600.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch(source: str, out: Path, force: bool) -> str:
    """Do the work; returns the message for stdout. Raises FetchError on failure."""
    ply_path, xyz_path = out / "bun_zipper.ply", out / "bunny.xyz"
    if not force and ply_path.exists() and xyz_path.exists():
        return f"{xyz_path} and {ply_path} already exist (use --force to download again)"
    ply = extract_member(download(source))
    text = xyz_text(oriented_points(ply))
    try:  # Only touch the disk once everything is in memory.
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(ply_path, ply)
        write_atomic(xyz_path, text)
    except OSError as exc:
        raise FetchError(f"could not write into {out} ({exc})") from None
    n_points = text.count(b"\n")
    return f"wrote {xyz_path} ({n_points} points) and {ply_path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data"), help="output folder")
    parser.add_argument("--force", action="store_true", help="download even if present")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="URL of bunny.tar.gz")
    args = parser.parse_args(argv)
    try:
        print(fetch(args.source, args.out, args.force))
    except FetchError as exc:
        message = " ".join(str(exc).split())  # always exactly one line
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
