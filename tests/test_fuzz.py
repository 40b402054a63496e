"""Property tests of sdfrecon.io: every writer/reader pair gives back what it was given, and
the readers, fed random bytes or damaged valid files, fail only with InputError.

The examples are kept few (the whole file runs in about 20 s); raise them locally with
``--hypothesis-seed`` and the HYPOTHESIS_PROFILE below to search longer.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sdfrecon.errors import InputError
from sdfrecon.io import (
    MESH_SUFFIXES,
    PointCloud,
    load_mesh,
    load_point_cloud,
    save_mesh,
    save_point_cloud,
    validate_cloud,
)
from sdfrecon.sdf.checkpoint import Checkpoint, load_checkpoint, save_checkpoint

settings.register_profile("default", max_examples=30, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.register_profile("long", max_examples=400, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                 HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

CLOUD_SUFFIXES = (".xyz", ".txt", ".pts", ".ply", ".npy", ".npz", ".pcd")
TEXT_SUFFIXES = (".xyz", ".txt", ".pts", ".ply", ".pcd", ".obj", ".off")
ALL_SUFFIXES = TEXT_SUFFIXES + (".npy", ".npz")


# --- strategies -----------------------------------------------------------------------------

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@st.composite
def clouds(draw) -> PointCloud:
    """Valid clouds: arbitrary float64 values (negative zeros, subnormals, far from the
    origin, mixed magnitudes) that ``validate_cloud`` accepts, with or without normals."""
    n = draw(st.integers(10, 40))
    if draw(st.booleans()):  # adversarial values straight from hypothesis
        points = draw(hnp.arrays(np.float64, (n, 3), elements=finite))
    else:  # a random blob, scaled and moved by drawn amounts
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        scale = draw(st.floats(1e-6, 1e6))
        offset = draw(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3))
        points = rng.normal(size=(n, 3)) * scale + offset
    normals = None
    if draw(st.booleans()):
        normals = draw(hnp.arrays(np.float64, (n, 3), elements=st.floats(-1.0, 1.0)))
        assume(bool((np.abs(normals).max(axis=1) > 1e-3).all()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "not unit length" is a log line, not a failure
            return validate_cloud("drawn", points, normals)
    except InputError:
        assume(False)
        raise


@st.composite
def meshes(draw) -> tuple[np.ndarray, np.ndarray]:
    """Triangle soups: V vertices (float32-exact values, so every format can hold them)
    and F faces of three distinct vertices each."""
    v = draw(st.integers(3, 30))
    # distinct values, so no two vertices are equal (readers merge equal vertices)
    vertices = draw(hnp.arrays(np.float64, (v, 3), unique=True,
                               elements=st.floats(-1e4, 1e4, width=32, allow_subnormal=False)))
    f = draw(st.integers(1, 20))
    faces = np.array([draw(st.permutations(range(v)))[:3] for _ in range(f)], dtype=np.int64)
    return vertices, faces


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", CLOUD_SUFFIXES)
@given(cloud=clouds())
def test_point_cloud_round_trip(tmp_path_factory, suffix: str, cloud: PointCloud) -> None:
    path = tmp_path_factory.mktemp("rt") / f"cloud{suffix}"
    save_point_cloud(path, cloud)
    if suffix == ".ply" and b"property double x" not in path.read_bytes()[:300]:
        try:  # float32 on disk can merge points (1e-65 and 0): then both refuse alike
            validate_cloud(path, cloud.points.astype(np.float32), cloud.normals)
        except InputError as error:
            with pytest.raises(InputError, match=error.problem.replace("(", r"\(").replace(")", r"\)")):
                load_point_cloud(path)
            return
    back = load_point_cloud(path)
    assert len(back) == len(cloud) and back.points.dtype == np.float64
    if suffix in (".npy", ".npz"):
        np.testing.assert_array_equal(back.points, cloud.points)
    elif suffix == ".ply" and b"property double x" not in path.read_bytes()[:300]:
        np.testing.assert_array_equal(back.points, cloud.points.astype(np.float32))
    elif suffix == ".ply":
        np.testing.assert_array_equal(back.points, cloud.points)
    else:  # %.9g text: 9 significant digits of every value
        np.testing.assert_allclose(back.points, cloud.points, rtol=1e-8, atol=0)
    assert (back.normals is None) == (cloud.normals is None)
    if cloud.normals is not None:
        np.testing.assert_allclose(back.normals, cloud.normals, atol=1e-6)


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
@given(mesh=meshes())
def test_mesh_round_trip(tmp_path_factory, suffix: str, mesh: tuple) -> None:
    vertices, faces = mesh
    path = tmp_path_factory.mktemp("mesh") / f"m{suffix}"
    save_mesh(path, vertices, faces)
    back = load_mesh(path)
    # Compare the triangles (formats may reorder or drop unused vertices, STL has none).
    got = np.asarray(back.vertices)[np.asarray(back.faces)]
    want = vertices[faces]
    assert got.shape == want.shape
    got, want = np.sort(got.reshape(len(got), -1), axis=0), np.sort(want.reshape(len(want), -1), axis=0)
    if suffix in (".obj", ".off"):  # text: 9 significant digits of the extent
        extent = float(np.ptp(vertices, axis=0).max())
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * extent)
    else:  # binary: the float32 values come back exactly
        np.testing.assert_array_equal(got, want)


# --- fuzz -----------------------------------------------------------------------------------


def _valid_files(tmp: Path) -> dict[str, bytes]:
    """One valid file of each text format (and the numpy ones), 12 points with normals."""
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 3))
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    cloud = PointCloud(points, normals)
    files = {}
    for suffix in (".xyz", ".pcd", ".npy", ".npz"):
        save_point_cloud(tmp / f"v{suffix}", cloud)
        files[suffix] = (tmp / f"v{suffix}").read_bytes()
    rows = "".join(" ".join(f"{v:.6g}" for v in row) + "\n" for row in np.hstack([points, normals]))
    files[".ply"] = ("ply\nformat ascii 1.0\nelement vertex 12\n" + "".join(
        f"property float {n}\n" for n in ("x", "y", "z", "nx", "ny", "nz"))
        + "element face 1\nproperty list uchar int vertex_indices\nend_header\n" + rows
        + "3 0 1 2\n").encode()
    save_point_cloud(tmp / "b.ply", cloud)
    files[".binary.ply"] = (tmp / "b.ply").read_bytes()
    files[".off"] = ("NOFF\n12 1 0\n" + rows + "3 0 1 2\n").encode()
    files[".obj"] = ("".join(f"v {x:.6g} {y:.6g} {z:.6g}\n" for x, y, z in points)
                     + "".join(f"vn {x:.6g} {y:.6g} {z:.6g}\n" for x, y, z in normals)
                     + "f 1 2 3\n").encode()
    return files


@st.composite
def mutations(draw, data: bytes) -> bytes:
    """A few edits of ``data``: bytes replaced, inserted or deleted, a cut, a repeated span."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "cut", "repeat", "token"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at: at + draw(st.integers(1, 16))]
        elif kind == "cut":
            del data[at:]
        elif kind == "repeat":
            span = data[at: at + draw(st.integers(1, 64))]
            data[at:at] = span
        else:  # a plausible but wrong token
            token = draw(st.sampled_from([b"nan", b"-inf", b"1e999", b"1e-999", b"-0", b"0x1p3",
                                          b"1_0", b"\r", b"\x0b", b"\x0c", b",", b"#", b"  ",
                                          b"99999999999999999999", b"-1", b"list", b"\xef\xbb\xbf"]))
            data[at:at] = token
    return bytes(data)


def _load_only_input_errors(path: Path) -> None:
    """Loading ``path`` gives a valid cloud or InputError; nothing else, no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stray numpy warning would be a second stderr line
        try:
            cloud = load_point_cloud(path)
        except InputError as error:
            assert str(error).startswith(str(path))
            assert "\n" not in str(error)
            return
    assert len(cloud) >= 10 and np.isfinite(cloud.points).all()
    if cloud.normals is not None:
        np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory) -> dict[str, bytes]:
    return _valid_files(tmp_path_factory.mktemp("valid"))


@pytest.mark.parametrize("kind", [".xyz", ".pcd", ".ply", ".binary.ply", ".off", ".obj", ".npy",
                                  ".npz"])
@given(data=st.data())
def test_mutated_valid_files_fail_cleanly(tmp_path_factory, valid_files, kind: str, data) -> None:
    original = valid_files[kind]
    path = tmp_path_factory.mktemp("mut") / f"m{kind}"
    path.write_bytes(data.draw(mutations(original)))
    _load_only_input_errors(path)


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
@given(blob=st.one_of(st.binary(max_size=300),
                      st.text(alphabet="0123456789 .-+eE,\n\t#naif", max_size=300).map(str.encode)))
def test_random_bytes_fail_cleanly(tmp_path_factory, suffix: str, blob: bytes) -> None:
    path = tmp_path_factory.mktemp("rnd") / f"r{suffix}"
    path.write_bytes(blob)
    _load_only_input_errors(path)


@given(header=st.text(alphabet="plyformatbinary_little_endianasci1.0 \nelementvertexfacepropertylistucharintfloatdoublexyzend_header",
                      max_size=200), body=st.binary(max_size=200))
def test_random_ply_headers_fail_cleanly(tmp_path_factory, header: str, body: bytes) -> None:
    path = tmp_path_factory.mktemp("plyh") / "h.ply"
    path.write_bytes(b"ply\n" + header.encode() + b"\nend_header\n" + body)
    _load_only_input_errors(path)


@given(data=st.data())
def test_mutated_checkpoints_fail_cleanly(tmp_path_factory, data) -> None:
    tmp = tmp_path_factory.mktemp("ckpt")
    good = tmp / "good.pt"
    if not good.exists():
        save_checkpoint(good, Checkpoint(
            kind="sdf", config={"a": 1}, model={"w": torch.arange(4.0)},
            optimizer={"state": {}, "param_groups": []}, step=3, elapsed=0.5,
            generator=torch.Generator().manual_seed(1).get_state(), extra={}))
    path = tmp / "bad.pt"
    path.write_bytes(data.draw(mutations(good.read_bytes())))
    try:
        ckpt = load_checkpoint(path, "sdf")
    except InputError as error:
        assert str(error).startswith(str(path))
        return
    assert ckpt.kind == "sdf" and isinstance(ckpt.model, dict)


def test_mesh_readers_refuse_damaged_files(tmp_path: Path) -> None:
    """A few damaged meshes of each format: InputError with one line, never another error."""
    sphere = trimesh.creation.icosphere(subdivisions=1)
    rng = np.random.default_rng(0)
    for suffix in MESH_SUFFIXES:
        good = tmp_path / f"good{suffix}"
        save_mesh(good, sphere.vertices, sphere.faces)
        data = good.read_bytes()
        for k in range(6):
            bad = bytearray(data[: rng.integers(0, len(data))] if k < 3 else data)
            if k >= 3:
                for at in rng.integers(0, len(bad), size=8):
                    bad[at] = rng.integers(0, 256)
            path = tmp_path / f"bad{k}{suffix}"
            path.write_bytes(bytes(bad))
            try:
                load_mesh(path)
            except InputError as error:
                assert "\n" not in str(error)
