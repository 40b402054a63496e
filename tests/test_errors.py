"""Every class of bad input through the real command line: exit code 2, one line on stderr
that names the file (and the line, for text files) and the problem, no traceback, and no
output file or run folder left behind. The same for ``evaluate``'s reference. Normals that
can be repaired (zero-length, disagreeing in orientation) give a warning and exit code 0.

A few cases run ``python -m sdfrecon.cli`` as a subprocess; the rest call ``main`` in
process, which takes the same path through ``main`` (the subprocess ones show that the
process's real stderr and exit status match)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfrecon.cli import main
from sdfrecon.io import PointCloud, save_point_cloud

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"
SUPPORTED = ".xyz, .txt, .pts, .ply, .pcd, .obj, .off, .npy, .npz"
COLUMNS = "expected 3 (x y z) or 6 (x y z nx ny nz)"
TINY = ["--hidden-features", "32", "--hidden-layers", "1", "--surface-points", "512",
        "--off-surface-points", "512", "--steps", "20", "--resolution", "24", "--no-progress",
        "--no-previews"]


def _rows(table: np.ndarray) -> str:
    return "".join(" ".join(f"{v:.9g}" for v in row) + "\n" for row in table)


def _points(n: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def _binary_ply(tmp: Path) -> bytes:
    save_point_cloud(tmp / "full.ply", PointCloud(np.resize(_points(), (1000, 3))))
    data = (tmp / "full.ply").read_bytes()
    (tmp / "full.ply").unlink()
    return data


def _ply_mesh(tmp: Path) -> bytes:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    sphere.export(tmp / "mesh.ply")
    data = (tmp / "mesh.ply").read_bytes()
    (tmp / "mesh.ply").unlink()
    return data


# name -> (file content, or a function of the folder giving it; the expected "[:line]: problem")
P = _points()
CASES: dict[str, tuple] = {
    "empty.xyz": ("", ": contains no points"),
    "blank.txt": ("\n  \n# only a comment\n", ": contains no points"),
    "header_only.xyz": ("x y z nx ny nz\n", ":1: contains no points (only a header line)"),
    "count_only.pts": ("# scan\n500\n", ":2: contains no points (only a header line)"),
    "header_only.ply": ("ply\nformat binary_little_endian 1.0\nelement vertex 100\n"
                        "property float x\nproperty float y\nproperty float z\nend_header\n",
                        ": is truncated: header declares 100 vertices, file holds 0"),
    "header_only.pcd": ("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 20\n"
                        "HEIGHT 1\nPOINTS 20\nDATA ascii\n",
                        ": is truncated: header declares 20 points, file holds 0"),
    "ragged.xyz": ("# scanner export\n" + _rows(P[:4]) + "1 2\n" + _rows(P),
                   ":6: row has 2 columns, expected 3 like the first row"),
    "mixed.xyz": (_rows(np.hstack([P, P])[:3]) + _rows(P), ":4: row has 3 columns, expected 6 like the first row"),
    "one_column.xyz": (_rows(P[:, :1]), f":1: has 1 column per row: {COLUMNS}"),
    "two_columns.csv.txt": (_rows(P[:, :2]).replace(" ", ","), f":1: has 2 columns per row: {COLUMNS}"),
    "four_columns.xyz": ("# x y z intensity\n" + _rows(np.hstack([P, P[:, :1]])),
                         f":2: has 4 columns per row: {COLUMNS}"),
    "five_columns.xyz": (_rows(np.hstack([P, P[:, :2]])), f":1: has 5 columns per row: {COLUMNS}"),
    "text.xyz": (_rows(P[:9]) + "0.5 abc 0.25\n" + _rows(P), ":10: could not parse 'abc' as a number"),
    "nan.xyz": (_rows(P[:11]) + "0.5 nan 0.25\n" + _rows(P),
                ":12: contains NaN or infinite coordinates (first at point 12)"),
    "inf.xyz": (_rows(P[:3]) + "-inf 1 2\n" + _rows(P),
                ":4: contains NaN or infinite coordinates (first at point 4)"),
    "binary.xyz": (b"1 2 3\n" + bytes(range(256)) * 4, ": is not a text file (binary data)"),
    "truncated.ply": (lambda tmp: _binary_ply(tmp)[:-188 * 12 - 5],
                      ": is truncated: header declares 1000 vertices, file holds 811"),
    "truncated_faces.ply": (lambda tmp: _ply_mesh(tmp)[:-1000],
                            ": is truncated: the file ends before the 320 'face' items its header "
                            "declares after the vertices"),
    "no_vertices.ply": ("ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\n"
                        "end_header\n", ": has no vertex element"),
    "cloud.las": (_rows(P), f": unknown point cloud format '.las' (supported: {SUPPORTED})"),
    "missing.xyz": (None, ": no such file"),
    "folder.xyz": ("dir", ": is a directory, not a file"),
    "few.xyz": (_rows(np.tile(P[:3], (10, 1))), ": has only 3 distinct points; at least 10 are needed"),
    "same.xyz": (_rows(np.tile([[1.5, -2.0, 3.25]], (40, 1))),
                 ": all 40 points are the same point: there is no volume to reconstruct"),
    "line.xyz": (_rows(np.outer(np.linspace(-1, 1, 40), [0.3, -0.5, 0.8]) + [1, 2, 3]),
                 ": all points lie on a line: there is no volume to reconstruct"),
    "plane.xyz": (_rows(P[:, :1] * [0.6, 0.8, 0.0] + P[:, 1:2] * [0.0, 0.6, 0.8] + [5, -2, 1]),
                  ": all points lie on a plane: there is no volume to reconstruct"),
    "huge.xyz": (_rows(P * 1e39), ": coordinates reach 2.37e+39, beyond what float32 holds "
                                  "(3.4e+38): scale the cloud down first"),
    "far.npy": (lambda tmp: _npy(tmp, P * 1e-4 + 1e5),
                ": coordinates are centred 1e+05 from the origin but span only 0.000417: float32 "
                "cannot resolve the shape; move the cloud near the origin first"),
    "minute.xyz": (_rows(P * 1e-35), ": the cloud spans only 4.17e-35, too small for float32: "
                                     "scale the cloud up first"),
    "wrong_shape.npy": (lambda tmp: _npy(tmp, np.zeros((20, 4))),
                        ": holds a float64 array of shape (20, 4): expected numbers of shape (N, 3) or (N, 6)"),
}


def _npy(tmp: Path, array: np.ndarray) -> bytes:
    np.save(tmp / "a.npy", array)
    data = (tmp / "a.npy").read_bytes()
    (tmp / "a.npy").unlink()
    return data


def _make(tmp: Path, name: str) -> Path:
    content = CASES[name][0]
    path = tmp / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        content = content(tmp) if callable(content) else content
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _only_error_line(err: str, expected: str) -> None:
    assert "Traceback" not in err
    assert err.splitlines() == [expected], err


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_the_numbers_in_the_messages_are_right() -> None:
    """The expected texts above quote a few figures of the random table: check them."""
    assert f"{np.abs(P * 1e39).max():.3g}" == "2.37e+39"
    assert f"{np.ptp(P * 1e-4, axis=0).max():.3g}" == "0.000417"
    assert f"{np.ptp(P * 1e-35, axis=0).max():.3g}" == "4.17e-35"


@pytest.mark.parametrize("name", list(CASES))
def test_reconstruct_refuses_bad_input(tmp_path: Path, capsys, name: str) -> None:
    cloud = _make(tmp_path, name)
    before = _listing(tmp_path)
    out = tmp_path / "out" / "mesh.obj"
    assert main(["reconstruct", str(cloud), "-o", str(out), *TINY]) == 2
    captured = capsys.readouterr()
    _only_error_line(captured.err, f"sdfrecon: error: {cloud}{CASES[name][1]}")
    assert captured.out == ""
    assert _listing(tmp_path) == before  # no mesh, no run folder, no temporary file


@pytest.mark.parametrize("name", list(CASES))
def test_evaluate_refuses_a_bad_reference(tmp_path: Path, capsys, name: str) -> None:
    mesh = tmp_path / "mesh.obj"
    trimesh.creation.icosphere(subdivisions=2).export(mesh)
    reference = _make(tmp_path, name)
    before = _listing(tmp_path)
    report = tmp_path / "metrics.json"
    assert main(["evaluate", str(mesh), "--reference", str(reference), "--json", str(report),
                 "--samples", "1000"]) == 2
    expected = CASES[name][1]
    if name == "cloud.las":  # a reference may also be a mesh
        expected = (": unknown reference format '.las' (supported: .glb, .npy, .npz, .obj, .off, "
                    ".pcd, .ply, .pts, .stl, .txt, .xyz)")
    _only_error_line(capsys.readouterr().err, f"sdfrecon: error: {reference}{expected}")
    assert _listing(tmp_path) == before


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("nan.obj", "v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n",
         ":3: contains NaN or infinite coordinates (first at point 3)"),
        ("dangling.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
         ": has only 3 distinct points; at least 10 are needed"),
        ("flat.stl", None, ": the mesh has no surface area (all faces degenerate, or NaN vertices)"),
        ("garbage.glb", b"glTF" + bytes(range(60)), None),
    ],
)
def test_evaluate_refuses_bad_mesh_references(tmp_path: Path, capsys, name, content, problem) -> None:
    mesh = tmp_path / "mesh.obj"
    trimesh.creation.icosphere(subdivisions=2).export(mesh)
    reference = tmp_path / name
    if content is None:  # one degenerate triangle
        trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]]).export(reference)
    else:
        reference.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main(["evaluate", str(mesh), "--reference", str(reference), "--samples", "1000"]) == 2
    err = capsys.readouterr().err
    if problem is None:
        assert len(err.splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"sdfrecon: error: {reference}: could not be read as a mesh (")
    else:
        _only_error_line(err, f"sdfrecon: error: {reference}{problem}")


@pytest.mark.parametrize(
    ("argv", "name", "problem"),
    [
        (["reconstruct", "{cloud}", "-o", "{tmp}/out.obj"], "empty.xyz", ": contains no points"),
        (["reconstruct", "{cloud}", "-o", "{tmp}/out.obj"], "ragged.xyz",
         ":6: row has 2 columns, expected 3 like the first row"),
        (["evaluate", "{tmp}/mesh.obj", "--reference", "{cloud}"], "truncated.ply",
         ": is truncated: header declares 1000 vertices, file holds 811"),
    ],
)
def test_real_process_exit_code_and_stderr(tmp_path: Path, argv, name, problem) -> None:
    cloud = _make(tmp_path, name)
    trimesh.creation.icosphere(subdivisions=2).export(tmp_path / "mesh.obj")
    before = _listing(tmp_path)
    args = [a.format(cloud=cloud, tmp=tmp_path) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "sdfrecon.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    _only_error_line(proc.stderr, f"sdfrecon: error: {cloud}{problem}")
    assert _listing(tmp_path) == before


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    cloud = _make(tmp_path, "ragged.xyz")
    with pytest.raises(Exception) as info:
        main(["reconstruct", str(cloud), "-o", str(tmp_path / "o.obj"), "--debug"])
    assert type(info.value).__name__ == "InputError" and info.value.line == 6


# --- repairable normals: a warning, then the run goes on ----------------------------------


def _ellipsoid_cloud(n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    from sdfrecon.evaluation import shapes

    return shapes.ellipsoid_cloud(n, seed=5)


def test_zero_length_normals_are_dropped_and_estimated(tmp_path: Path, capsys) -> None:
    points, normals = _ellipsoid_cloud()
    normals[[3, 70, 900]] = 0.0
    cloud = tmp_path / "zero.xyz"
    cloud.write_text(_rows(np.hstack([points, normals])))
    out = tmp_path / "zero.obj"
    assert main(["reconstruct", str(cloud), "-o", str(out), *TINY]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"sdfrecon: {cloud}: 3 of 2000 normals are NaN, infinite or zero-length; "
                      "ignoring all the normals in this file")
    assert f"sdfrecon: {cloud} has no normals: estimating and orienting them (k=30)" in err
    assert out.is_file()


def test_normals_that_disagree_are_flipped_back(tmp_path: Path, capsys) -> None:
    points, normals = _ellipsoid_cloud()
    flipped = np.random.default_rng(0).random(len(points)) < 0.1
    normals[flipped] *= -1
    cloud = tmp_path / "flipped.npy"
    np.save(cloud, np.hstack([points, normals]))
    out = tmp_path / "flipped.obj"
    assert main(["reconstruct", str(cloud), "-o", str(out), *TINY]) == 0
    err = capsys.readouterr().err.splitlines()
    warning = [line for line in err if "the normals disagree" in line]
    assert len(warning) == 1 and warning[0].startswith(
        f"sdfrecon: {cloud}: the normals disagree in orientation (")
    assert warning[0].endswith(f" % of neighbouring points on one sheet have opposite normals); flipped "
                               f"{flipped.sum()} of 2000 normals to agree with their neighbours")


def test_consistent_normals_get_no_warning(tmp_path: Path, caplog) -> None:
    from sdfrecon.cloud.orientation import orient_normals

    points, normals = _ellipsoid_cloud()
    assert orient_normals("c.xyz", points, normals.astype(np.float32)) is not None
    assert "disagree" not in caplog.text


# --- outputs --------------------------------------------------------------------------------


def test_output_below_a_file_is_refused_before_reading(tmp_path: Path, capsys) -> None:
    """A path whose 'folder' is a regular file: NotADirectory, for root as for anyone."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder\n")
    out = blocker / "meshes" / "mesh.obj"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), *TINY]) == 2
    _only_error_line(capsys.readouterr().err,
                     f"sdfrecon: error: {out}: cannot create folder {out.parent}: {blocker} is a file")


def test_unwritable_output_folder_is_refused(tmp_path: Path, capsys) -> None:
    """A folder where no file can be made. Run as root (as these tests are), permission bits
    do not stop writes, so this uses sysfs, which refuses new files even to root; as another
    user a read-only folder is used as well."""
    targets = []
    if Path("/sys/kernel").is_dir():
        targets.append((Path("/sys/kernel/sdfrecon-test/mesh.obj"), Path("/sys/kernel")))
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        targets.append((locked / "mesh.obj", locked))
    if not targets:
        pytest.skip("no folder here refuses writes to root")
    for out, folder in targets:
        assert main(["reconstruct", str(SAMPLE), "-o", str(out), *TINY]) == 2
        _only_error_line(capsys.readouterr().err,
                         f"sdfrecon: error: {out}: cannot write to {folder}: permission denied")


def test_full_disk_is_refused_before_training(tmp_path: Path, capsys, monkeypatch) -> None:
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=5_000))
    out = tmp_path / "mesh.obj"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sdfrecon: error: {out}: not enough free space in {tmp_path}: 5.0 kB "
                          "free, about ")
    assert err.rstrip().endswith(" kB needed for the mesh and run folder")  # at resolution 24
    assert len(err.splitlines()) == 1 and _listing(tmp_path) == []


def test_disk_full_while_writing_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """ENOSPC in the middle of a write: the partial file goes, the message is one line."""
    import errno

    import sdfrecon.io.formats as formats

    def full(path, cloud, header=""):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setitem(formats.WRITERS, ".xyz", full)
    out = tmp_path / "c.xyz"
    assert main(["sample", str(REPO / "data" / "sample_ellipsoid.xyz"), "-o", str(out), "-n", "10"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_leftover_checkpoint_is_not_replaced_silently(tmp_path: Path, capsys) -> None:
    out = tmp_path / "e.obj"
    run = tmp_path / "e.run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"from a killed run")
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), *TINY]) == 2
    _only_error_line(capsys.readouterr().err,
                     f"sdfrecon: error: {run / 'checkpoint.pt'}: is left from an earlier run (pass "
                     "--resume to continue it or --overwrite to start again)")
    assert (run / "checkpoint.pt").read_bytes() == b"from a killed run"
    # --resume with it: a file that is not a checkpoint is named as such
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), *TINY, "--resume"]) == 2
    _only_error_line(capsys.readouterr().err,
                     f"sdfrecon: error: {run / 'checkpoint.pt'}: is not a readable checkpoint "
                     "(not a file written by torch.save)")


def test_output_that_is_the_input_is_refused(tmp_path: Path, capsys) -> None:
    mesh = tmp_path / "m.obj"
    trimesh.creation.icosphere(subdivisions=2).export(mesh)
    assert main(["reconstruct", str(mesh), "-o", str(mesh), "--overwrite", *TINY]) == 2
    _only_error_line(capsys.readouterr().err,
                     f"sdfrecon: error: {mesh}: is the input file: choose another output")


def test_stl_far_from_the_origin_is_refused_before_training(tmp_path: Path, capsys) -> None:
    points, normals = _ellipsoid_cloud()
    cloud = tmp_path / "far.npy"
    np.save(cloud, np.hstack([points + [2e4, 0, 0], normals]))
    out = tmp_path / "far.stl"
    assert main(["reconstruct", str(cloud), "-o", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sdfrecon: error: {out}: STL stores float32 coordinates, which would "
                          "move the vertices by up to 0.00")
    assert err.rstrip().endswith("of the shape's size) this far from the origin: write .obj or "
                                 ".ply instead, or move the cloud near the origin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["far.npy"]
