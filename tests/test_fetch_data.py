"""Tests for scripts/fetch_data.py, run as a subprocess against local tarballs."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_data.py"
MEMBER = "bunny/reconstruction/bun_zipper.ply"
CENTER = np.array([1.0, 2.0, 3.0])
RADIUS = 0.5


def octahedron_ply() -> bytes:
    """ASCII PLY of an outward-wound octahedron around CENTER, plus one unused vertex."""
    axes = np.vstack([np.eye(3), -np.eye(3)])  # +x +y +z -x -y -z
    vertices = np.vstack([CENTER + RADIUS * axes, CENTER])  # last one: no face uses it
    faces = []
    for sx in (0, 3):
        for sy in (1, 4):
            for sz in (2, 5):
                flip = (sx == 3) + (sy == 4) + (sz == 5)
                faces.append((sx, sy, sz) if flip % 2 == 0 else (sx, sz, sy))
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    body = "".join(f"{x:g} {y:g} {z:g}\n" for x, y, z in vertices)
    body += "".join(f"3 {a} {b} {c}\n" for a, b, c in faces)
    return (header + body).encode("ascii")


def make_tarball(path: Path, members: dict[str, bytes]) -> str:
    """Write a .tar.gz with ``members`` (inner path -> bytes); return its file:// URL."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.resolve().as_uri()


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def bunny_url(tmp_path: Path) -> str:
    members = {"bunny/README": b"test archive\n", MEMBER: octahedron_ply()}
    return make_tarball(tmp_path / "bunny.tar.gz", members)


def test_writes_oriented_points_and_ply(tmp_path: Path, bunny_url: str) -> None:
    result = run_script("--source", bunny_url, "--out", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "data"
    assert (out / "bun_zipper.ply").read_bytes() == octahedron_ply()
    assert sorted(p.name for p in out.iterdir()) == ["bun_zipper.ply", "bunny.xyz"]
    lines = (out / "bunny.xyz").read_text().splitlines()
    assert len(lines) == 6  # the unreferenced centre vertex is dropped
    assert all(len(line.split()) == 6 for line in lines)
    table = np.loadtxt(out / "bunny.xyz")
    points, normals = table[:, :3], table[:, 3:]
    offsets = points - CENTER
    np.testing.assert_allclose(np.linalg.norm(offsets, axis=1), RADIUS)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(normals, offsets / RADIUS, atol=1e-5)  # outward


def test_existing_output_kept_unless_force(tmp_path: Path, bunny_url: str) -> None:
    assert run_script("--source", bunny_url, "--out", "d", cwd=tmp_path).returncode == 0
    xyz = tmp_path / "d" / "bunny.xyz"
    original = xyz.read_text()
    xyz.write_text("edited\n")
    again = run_script("--source", bunny_url, "--out", "d", cwd=tmp_path)
    assert again.returncode == 0 and "--force" in again.stdout
    assert xyz.read_text() == "edited\n"
    forced = run_script("--source", bunny_url, "--out", "d", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert xyz.read_text() == original


def assert_clean_failure(result: subprocess.CompletedProcess[str], out: Path) -> list[str]:
    """Exit 1, exactly one stderr line, no traceback, and no output folder created."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    return lines


def test_unreachable_source_fails_cleanly(tmp_path: Path) -> None:
    result = run_script("--source", "http://127.0.0.1:9/x.tar.gz", "--out", "data", cwd=tmp_path)
    (line,) = assert_clean_failure(result, tmp_path / "data")
    assert "could not reach 127.0.0.1" in line and "../shared/data" in line


def test_archive_without_member_fails_cleanly(tmp_path: Path) -> None:
    url = make_tarball(tmp_path / "other.tar.gz", {"bunny/README": b"no mesh here\n"})
    result = run_script("--source", url, "--out", "data", cwd=tmp_path)
    (line,) = assert_clean_failure(result, tmp_path / "data")
    assert MEMBER in line


def test_not_a_tarball_fails_cleanly(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(octahedron_ply())
    result = run_script("--source", bogus.as_uri(), "--out", "data", cwd=tmp_path)
    assert_clean_failure(result, tmp_path / "data")


# --- srb ---------------------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_srb_unreachable_source_fails_cleanly(tmp_path: Path) -> None:
    """No network here: an unreachable URL fails with one line, no folder, no partial file."""
    result = run_script("srb", "--source", "http://127.0.0.1:9/deep_geometric_prior_data.zip",
                        "--out", "data/srb", cwd=tmp_path)
    (line,) = assert_clean_failure(result, tmp_path / "data")
    assert line.startswith("fetch_data: error: could not reach 127.0.0.1 (")
    assert "drive.google.com/file/d/17Elfc1TTRzIQJhaNu5m7SckBH_mdjYSe" in line and "--source PATH" in line
    assert list(tmp_path.iterdir()) == []  # the streamed .zip.part is gone too


def test_srb_unpacks_the_release_layout(tmp_path: Path) -> None:
    root = "deep_geometric_prior_data/"
    members = {root + "scans/anchor.ply": b"ply scan bytes", root + "ground_truth/anchor.xyz": b"1 2 3\n",
               root + "scans/dc.ply": b"no ground truth for me",
               root + "our_reconstructions/anchor.ply": b"not unpacked", root + "README": b"x"}
    archive = make_zip(tmp_path / "srb.zip", members)
    for source in (archive.as_uri(), str(archive)):
        result = run_script("srb", "--source", source, "--out", "bench", "--force", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "wrote 1 scans and ground truths into bench/scans and bench/ground_truth (anchor)"
    assert (tmp_path / "bench/scans/anchor.ply").read_bytes() == b"ply scan bytes"
    assert (tmp_path / "bench/ground_truth/anchor.xyz").read_bytes() == b"1 2 3\n"
    assert sorted(p.name for p in (tmp_path / "bench").rglob("*")) == ["anchor.ply", "anchor.xyz",
                                                                       "ground_truth", "scans"]
    again = run_script("srb", "--source", str(archive), "--out", "bench", cwd=tmp_path)
    assert again.returncode == 0 and "already exist (use --force" in again.stdout


@pytest.mark.parametrize(("content", "problem"), [
    (b"<!DOCTYPE html><html>Google Drive can't scan this file for viruses</html>", "is not a zip archive"),
    ("zip", "holds no scans/NAME.ply with a ground_truth/NAME.xyz"),
])
def test_srb_bad_downloads_fail_cleanly(tmp_path: Path, content, problem) -> None:
    path = tmp_path / "download.zip"
    if content == "zip":
        make_zip(path, {"deep_geometric_prior_data/scans/anchor.ply": b"scan only"})
    else:
        path.write_bytes(content)
    result = run_script("srb", "--source", path.as_uri(), "--out", "out/srb", cwd=tmp_path)
    (line,) = assert_clean_failure(result, tmp_path / "out")
    assert problem in line
