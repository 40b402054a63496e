#!/usr/bin/env python3
"""Download public test data: the Stanford bunny (default) or the Surface Reconstruction
Benchmark (``srb``).

bunny: fetches ``bunny.tar.gz`` from the Stanford 3D Scanning Repository, reads
``bunny/reconstruction/bun_zipper.ply`` from it in memory, and writes into ``--out``:

* ``bun_zipper.ply``: the mesh, byte for byte as in the archive;
* ``bunny.xyz``: one line ``x y z nx ny nz`` per vertex that a face uses (vertices no
  face references have no normal and are dropped). Coordinates are in the mesh's own
  units written with ``%.7g`` (an exact round trip of the 6-digit originals); normals are
  trimesh ``vertex_normals`` (unit, outward for this mesh) written with ``%.6f``.

srb: downloads the Surface Reconstruction Benchmark data as released with Deep Geometric
Prior (Williams et al., CVPR 2019; the scans come from Berger et al.'s benchmark): the zip
``deep_geometric_prior_data.zip`` on Google Drive (file id ``17Elfc1TTRzIQJhaNu5m7SckBH_mdjYSe``,
about 1.1 GB), streamed to a temporary file beside ``--out``, and unpacks its
``scans/NAME.ply`` (range scans with normals) and ``ground_truth/NAME.xyz`` (dense points) for
the five shapes (anchor, daratech, dc, gargoyle, lord_quas) into ``--out/scans`` and
``--out/ground_truth``, the layout ``sdfrecon bench --suite srb --data OUT`` reads. Its
``our_reconstructions/`` folder is not unpacked. ``--source`` takes another URL or a local
copy of the zip (a path or file:// URL), e.g. one downloaded in a browser.

Each file is written to a temporary name and renamed, so a failure never leaves a
half-written file. Without network access the script prints one line on stderr and
exits with code 1. Usage::

    python scripts/fetch_data.py [--out data] [--force] [--source URL]
    python scripts/fetch_data.py srb [--out data/srb] [--force] [--source URL-or-zip]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = "http://graphics.stanford.edu/pub/3Dscanrep/bunny.tar.gz"
MEMBER = "bunny/reconstruction/bun_zipper.ply"
PROG = "fetch_data"
SHARED_HINT = "the shapes are also in ../shared/data if you have that checkout"
SRB_ID = "17Elfc1TTRzIQJhaNu5m7SckBH_mdjYSe"
SRB_SOURCE = f"https://drive.usercontent.google.com/download?id={SRB_ID}&export=download&confirm=t"
SRB_PAGE = f"https://drive.google.com/file/d/{SRB_ID}/view"
SRB_HINT = f"download deep_geometric_prior_data.zip (about 1.1 GB) from {SRB_PAGE} and pass it with --source PATH"
SRB_MEMBER = re.compile(r"(?:^|/)(scans|ground_truth)/([A-Za-z0-9][A-Za-z0-9._-]*)\.(ply|xyz)$")


class FetchError(Exception):
    """A failure reported as one line on stderr with exit code 1."""


def download(url: str, timeout: float = 60.0, hint: str = SHARED_HINT) -> bytes:
    """The bytes at ``url`` (http, https or file); FetchError if it cannot be read."""
    buffer = io.BytesIO()
    download_to(url, buffer, timeout, hint)
    return buffer.getvalue()


def download_to(url: str, sink: io.RawIOBase | io.BufferedIOBase, timeout: float = 60.0,
                hint: str = SHARED_HINT) -> int:
    """Stream the bytes at ``url`` into ``sink`` in 1 MiB blocks; their count. FetchError,
    one line ending with ``hint``, if the URL cannot be read."""
    host = urllib.parse.urlparse(url).hostname or url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = 0
            while block := response.read(1 << 20):
                sink.write(block)
                total += len(block)
            return total
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"could not reach {host} ({reason}); {hint}") from None


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


def srb_members(archive: zipfile.ZipFile) -> dict[str, tuple[zipfile.ZipInfo, zipfile.ZipInfo]]:
    """name -> (scan, ground truth) entries of an SRB release zip: every ``scans/NAME.ply``
    that has a ``ground_truth/NAME.xyz`` (at any depth, e.g. under deep_geometric_prior_data/)."""
    found: dict[str, dict[str, zipfile.ZipInfo]] = {"scans": {}, "ground_truth": {}}
    for info in archive.infolist():
        match = SRB_MEMBER.search(info.filename)
        if match and not info.is_dir() and (match[1] == "scans") == (match[3] == "ply"):
            found[match[1]][match[2]] = info
    return {name: (scan, found["ground_truth"][name]) for name, scan in sorted(found["scans"].items())
            if name in found["ground_truth"]}


def _local_zip(source: str) -> Path | None:
    """The local file a --source names (a path or a file:// URL), else None."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path))
    if parsed.scheme in ("", "c", "d") or len(parsed.scheme) == 1:  # a path (or a Windows drive)
        return Path(source)
    return None


def fetch_srb(source: str, out: Path, force: bool) -> str:
    """Download (or open) the SRB zip and unpack scans/ and ground_truth/ into ``out``;
    returns the message for stdout. Raises FetchError on failure, before writing into out."""
    scans, truth = out / "scans", out / "ground_truth"
    if not force and scans.is_dir() and truth.is_dir() and any(scans.glob("*.ply")):
        return f"{scans} and {truth} already exist (use --force to download again)"
    local = _local_zip(source)
    part = None
    try:
        if local is not None:
            if not local.is_file():
                raise FetchError(f"{local}: no such file")
            path = local
        else:
            where = next(p for p in out.resolve().parents if p.is_dir())  # beside out: same disk
            with tempfile.NamedTemporaryFile(dir=where, prefix=".srb-", suffix=".zip.part",
                                             delete=False) as handle:
                part = Path(handle.name)
                download_to(source, handle, hint=SRB_HINT)
            path = part
        if not zipfile.is_zipfile(path):
            raise FetchError(f"the download is not a zip archive (Google Drive answers with a web page "
                             f"when it will not serve the file); {SRB_HINT}")
        return _unpack_srb(path, out)
    finally:
        if part is not None:
            part.unlink(missing_ok=True)


def _unpack_srb(path: Path, out: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            members = srb_members(archive)
            if not members:
                raise FetchError(f"{path.name} holds no scans/NAME.ply with a ground_truth/NAME.xyz; {SRB_HINT}")
            try:
                for folder in ("scans", "ground_truth"):
                    (out / folder).mkdir(parents=True, exist_ok=True)
                for name, (scan, truth) in members.items():
                    for info, target in ((scan, out / "scans" / f"{name}.ply"),
                                         (truth, out / "ground_truth" / f"{name}.xyz")):
                        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                        try:
                            with archive.open(info) as source, open(tmp, "xb") as sink:
                                shutil.copyfileobj(source, sink, 1 << 20)
                            os.replace(tmp, target)
                        finally:
                            tmp.unlink(missing_ok=True)
            except OSError as exc:
                raise FetchError(f"could not write into {out} ({exc})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise FetchError(f"{path.name} is not a readable zip archive ({exc})") from None
    names = ", ".join(members)
    return f"wrote {len(members)} scans and ground truths into {out}/scans and {out}/ground_truth ({names})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", choices=("bunny", "srb"), default="bunny",
                        help="bunny (default) or srb (the Surface Reconstruction Benchmark, ~1.1 GB)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: data, data/srb)")
    parser.add_argument("--force", action="store_true", help="download even if present")
    parser.add_argument("--source", default=None,
                        help="URL of bunny.tar.gz, or of the SRB zip (srb: also a local path to it)")
    args = parser.parse_args(argv)
    try:
        if args.dataset == "srb":
            print(fetch_srb(args.source or SRB_SOURCE, args.out or Path("data/srb"), args.force))
        else:
            print(fetch(args.source or DEFAULT_SOURCE, args.out or Path("data"), args.force))
    except FetchError as exc:
        message = " ".join(str(exc).split())  # always exactly one line
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
