"""Tests for sdfrecon.io: real files, round trips, every validation message, atomic writes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfrecon.errors import InputError
from sdfrecon.io import (
    MESH_SUFFIXES,
    POINT_CLOUD_SUFFIXES,
    PointCloud,
    atomic_write,
    load_mesh,
    load_point_cloud,
    save_mesh,
    save_point_cloud,
)

WRITABLE = (".xyz", ".txt", ".pts", ".ply", ".npy", ".npz", ".pcd")


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def xyz_text(points: np.ndarray, sep: str = " ") -> str:
    return "".join(sep.join(f"{v:.9g}" for v in row) + "\n" for row in points)


def load_error(path: Path, **kwargs: object) -> InputError:
    """The InputError that loading ``path`` raises; its text always starts with the path."""
    with pytest.raises(InputError) as info:
        load_point_cloud(path, **kwargs)
    assert str(info.value).startswith(str(path))
    return info.value


# --- real files ----------------------------------------------------------------------------


def test_bunny_xyz(shared_data: Path) -> None:
    cloud = load_point_cloud(shared_data / "bunny.xyz")
    assert len(cloud) == 34_834
    assert cloud.points.dtype == np.float64 and cloud.normals.dtype == np.float32
    np.testing.assert_allclose(cloud.points.min(axis=0), [-0.09469, 0.03299, -0.06187], atol=1e-5)
    np.testing.assert_allclose(cloud.points.max(axis=0), [0.06101, 0.18732, 0.05880], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-6)


def test_raw_scan_ply_equals_its_xyz(shared_data: Path) -> None:
    """ASCII PLY with a range_grid list element after the vertices (trimesh-hostile)."""
    ply = load_point_cloud(shared_data / "raw_scans" / "bun000.ply")
    xyz = load_point_cloud(shared_data / "raw_scans" / "bun000.xyz")
    assert len(ply) == len(xyz) == 40_256
    assert ply.normals is None and xyz.normals is None
    np.testing.assert_allclose(ply.points, xyz.points, atol=1e-6)


def test_mesh_files_as_point_clouds(shared_data: Path) -> None:
    zipper = load_point_cloud(shared_data / "meshes" / "bun_zipper.ply")  # + confidence, intensity
    assert len(zipper) == 35_947 and zipper.normals is None
    np.testing.assert_array_equal(zipper.points[0], [-0.0378297, 0.12794, 0.00447467])
    fertility = load_point_cloud(shared_data / "meshes" / "fertility.off")
    assert len(fertility) == 4_494
    np.testing.assert_array_equal(fertility.points[0], [5.47789, 31.1822, 10.7274])
    assert len(load_point_cloud(shared_data / "meshes" / "spot.obj")) == 2_930  # v lines
    assert len(load_point_cloud(shared_data / "meshes" / "ant.ply")) == 486  # binary PLY


def test_chair_with_normals(shared_data: Path) -> None:
    cloud = load_point_cloud(shared_data / "pointclouds" / "chair36.xyz")
    assert len(cloud) == 3_568 and cloud.normals is not None
    np.testing.assert_allclose(cloud.normals[0], [-0.010962, 0.009786, 0.999892], atol=1e-6)


def test_load_mesh_merges_uv_seams(shared_data: Path) -> None:
    spot = load_mesh(shared_data / "meshes" / "spot.obj")
    assert (len(spot.vertices), len(spot.faces)) == (2_930, 5_856)
    assert spot.is_watertight
    fertility = load_mesh(shared_data / "meshes" / "fertility.off")
    assert fertility.is_watertight and fertility.euler_number == -6  # genus 4


def test_load_mesh_problems(tmp_path: Path, ellipsoid: tuple) -> None:
    save_point_cloud(tmp_path / "cloud.ply", PointCloud(ellipsoid[0]))
    write(tmp_path / "empty.obj", "")
    for name in ("cloud.ply", "empty.obj"):
        with pytest.raises(InputError) as info:
            load_mesh(tmp_path / name)
        assert str(info.value) == (f"{tmp_path / name}: has no faces: "
                                   "it is empty or a point cloud, not a mesh")
    with pytest.raises(InputError, match=r"glb: could not be read as a mesh \("):
        load_mesh(write(tmp_path / "bad.glb", b"glTF" + bytes(range(200))))
    with pytest.raises(InputError, match=r"missing\.stl: no such file$"):
        load_mesh(tmp_path / "missing.stl")


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", WRITABLE)
@pytest.mark.parametrize("with_normals", [True, False])
def test_point_cloud_round_trip(tmp_path: Path, ellipsoid: tuple, suffix: str,
                                with_normals: bool) -> None:
    points, normals = ellipsoid
    cloud = PointCloud(points, normals if with_normals else None)
    path = tmp_path / f"cloud{suffix}"
    save_point_cloud(path, cloud)
    back = load_point_cloud(path)
    if suffix in (".npy", ".npz"):
        np.testing.assert_array_equal(back.points, points)
    elif suffix == ".ply":  # float32 on disk
        np.testing.assert_array_equal(back.points, points.astype(np.float32))
    else:  # %.9g text
        np.testing.assert_allclose(back.points, points, rtol=1e-8, atol=0)
    assert (back.normals is None) == (not with_normals)
    if with_normals:
        np.testing.assert_allclose(back.normals, normals, atol=1e-7)


def test_round_trip_real_bunny(shared_data: Path, tmp_path: Path) -> None:
    bunny = load_point_cloud(shared_data / "bunny.xyz")
    sub = PointCloud(bunny.points[::10], bunny.normals[::10])
    for suffix in WRITABLE:
        save_point_cloud(tmp_path / f"b{suffix}", sub)
        back = load_point_cloud(tmp_path / f"b{suffix}")
        np.testing.assert_allclose(back.points, sub.points, atol=1e-8)
        np.testing.assert_allclose(back.normals, sub.normals, atol=1e-7)


def test_ply_far_from_origin_is_written_as_double(tmp_path: Path, ellipsoid: tuple) -> None:
    """float32 would move these points by ~5e-4 of the extent, so the writer uses double."""
    points = ellipsoid[0] + 1e4
    save_point_cloud(tmp_path / "far.ply", PointCloud(points))
    assert b"property double x" in (tmp_path / "far.ply").read_bytes()[:200]
    np.testing.assert_array_equal(load_point_cloud(tmp_path / "far.ply").points, points)


@pytest.mark.parametrize("suffix", MESH_SUFFIXES)
@pytest.mark.parametrize("with_normals", [True, False])
def test_mesh_round_trip(tmp_path: Path, suffix: str, with_normals: bool) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    normals = np.asarray(sphere.vertex_normals) if with_normals else None
    path = tmp_path / f"sphere{suffix}"
    save_mesh(path, sphere.vertices, sphere.faces, vertex_normals=normals)
    back = load_mesh(path)
    assert len(back.vertices) == len(sphere.vertices) and len(back.faces) == len(sphere.faces)
    assert back.is_watertight
    np.testing.assert_allclose(np.sort(back.vertices, axis=0), np.sort(sphere.vertices, axis=0),
                               atol=1e-6)
    data = path.read_bytes()
    marker = {".obj": b"\nvn ", ".ply": b"property float nx", ".glb": b"NORMAL"}.get(suffix)
    if marker is not None:
        assert (marker in data) == with_normals


def test_save_mesh_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"unknown mesh format '\.vtk' \(supported: \.obj, "):
        save_mesh(tmp_path / "m.vtk", np.eye(3), np.array([[0, 1, 2]]))
    assert not (tmp_path / "m.vtk").exists()


# --- readers: formats and their variants ----------------------------------------------------


def test_xyz_commas_comments_count_header(tmp_path: Path, ellipsoid: tuple) -> None:
    points, normals = ellipsoid
    table = np.hstack([points, normals])
    text = f"# exported by a scanner\n{len(points)}\n\n" + xyz_text(table, sep=", ")
    text = text.replace("\n", "  # trailing comment\n", 3)
    cloud = load_point_cloud(write(tmp_path / "c.pts", text))
    np.testing.assert_allclose(cloud.points, points, rtol=1e-8)
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-7)


def test_line_numbers_count_the_count_header(tmp_path: Path, ellipsoid: tuple) -> None:
    text = "# scan\n500\n" + xyz_text(ellipsoid[0][:9]) + "1 2\n"
    err = load_error(write(tmp_path / "c.pts", text))
    assert (err.line, err.problem) == (12, "row has 2 columns, expected 3 like the first row")


def test_xyz_tabs_crlf_and_no_final_newline(tmp_path: Path, ellipsoid: tuple) -> None:
    points = ellipsoid[0]
    text = xyz_text(points, sep="\t").replace("\n", "\r\n").rstrip()
    np.testing.assert_allclose(load_point_cloud(write(tmp_path / "c.txt", text)).points, points,
                               rtol=1e-8)


def test_ply_binary_big_endian_with_extras(tmp_path: Path, ellipsoid: tuple) -> None:
    """Doubles, extra properties before and after x y z, normals, and a face element after."""
    points, normals = ellipsoid
    dtype = [("confidence", ">f4"), ("x", ">f8"), ("y", ">f8"), ("z", ">f8"), ("red", "u1"),
             ("nx", ">f4"), ("ny", ">f4"), ("nz", ">f4")]
    record = np.zeros(len(points), dtype=dtype)
    for i, axis in enumerate("xyz"):
        record[axis], record["n" + axis] = points[:, i], normals[:, i]
    header = ("ply\nformat binary_big_endian 1.0\ncomment test\nelement vertex 500\n"
              "property float confidence\nproperty double x\nproperty double y\n"
              "property double z\nproperty uchar red\nproperty float nx\nproperty float ny\n"
              "property float nz\nelement face 1\nproperty list uchar int vertex_indices\n"
              "end_header\n")
    face = np.array([3], ">u1").tobytes() + np.array([0, 1, 2], ">i4").tobytes()
    path = write(tmp_path / "be.ply", header.encode() + record.tobytes() + face)
    cloud = load_point_cloud(path)
    np.testing.assert_array_equal(cloud.points, points)
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-7)


def test_ply_binary_with_an_element_before_the_vertices(tmp_path: Path, ellipsoid: tuple) -> None:
    points = ellipsoid[0]
    header = ("ply\nformat binary_little_endian 1.0\nelement camera 2\nproperty float view_px\n"
              "property int view_py\nelement vertex 500\nproperty double x\nproperty double y\n"
              "property double z\nend_header\n")
    camera = np.array([(9.0, 7), (8.0, 6)], dtype=[("px", "<f4"), ("py", "<i4")]).tobytes()
    cloud = load_point_cloud(write(tmp_path / "cam.ply", header.encode() + camera + points.tobytes()))
    np.testing.assert_array_equal(cloud.points, points)


def test_ply_ascii_with_list_element_after_vertices(tmp_path: Path, ellipsoid: tuple) -> None:
    points = ellipsoid[0]
    header = ("ply\nformat ascii 1.0\nobj_info num_cols 4\nelement vertex 500\n"
              "property float x\nproperty float y\nproperty float z\nproperty float intensity\n"
              "element range_grid 6\nproperty list uchar int vertex_indices\nend_header\n")
    rows = xyz_text(np.hstack([points, np.ones((500, 1))]))
    path = write(tmp_path / "scan.ply", header + rows + "1 0\n0\n0\n1 1\n0\n1 2\n")
    np.testing.assert_allclose(load_point_cloud(path).points, points, rtol=1e-8)


def test_pcd_binary_with_padding_and_colour(tmp_path: Path, ellipsoid: tuple) -> None:
    points, normals = ellipsoid
    names = ["x", "y", "z", "rgb", "normal_x", "normal_y", "normal_z", "curvature"]
    record = np.zeros(len(points), dtype=[(n, "<f4") for n in names])
    for i, axis in enumerate("xyz"):
        record[axis], record["normal_" + axis] = points[:, i], normals[:, i]
    header = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS {' '.join(names)}\nSIZE {'4 ' * 8}\n"
              f"TYPE {'F ' * 8}\nCOUNT {'1 ' * 8}\nWIDTH 500\nHEIGHT 1\n"
              "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 500\nDATA binary\n")
    cloud = load_point_cloud(write(tmp_path / "c.pcd", header.encode() + record.tobytes()))
    np.testing.assert_array_equal(cloud.points, points.astype(np.float32))
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-7)


def test_pcd_unknown_data_kind_is_refused(tmp_path: Path) -> None:
    header = ("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 10\n"
              "HEIGHT 1\nPOINTS 10\nDATA binary_zstd\n")
    err = load_error(write(tmp_path / "c.pcd", header.encode() + b"\x00" * 64))
    assert err.problem == ("uses 'DATA binary_zstd', which is not supported: convert it "
                           "to ascii, binary or binary_compressed")


def test_obj_colours_and_normals(tmp_path: Path, ellipsoid: tuple) -> None:
    points, normals = ellipsoid
    v = "".join(f"v {x:.9g} {y:.9g} {z:.9g} 0.5 0.5 0.5\n" for x, y, z in points)
    vn = "".join(f"vn {x:.9g} {y:.9g} {z:.9g}\n" for x, y, z in normals)
    cloud = load_point_cloud(write(tmp_path / "a.obj", "# obj\no shape\n" + v + vn + "f 1 2 3\n"))
    np.testing.assert_allclose(cloud.points, points, rtol=1e-8)
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-7)
    fewer = load_point_cloud(write(tmp_path / "b.obj", v + vn.split("\n", 1)[1]))
    assert fewer.normals is None  # 499 vn for 500 v: not one per vertex


def test_noff_normals(tmp_path: Path, ellipsoid: tuple) -> None:
    points, normals = ellipsoid
    text = "NOFF\n# comment\n500 0 0\n" + xyz_text(np.hstack([points, normals]))
    cloud = load_point_cloud(write(tmp_path / "n.off", text))
    np.testing.assert_allclose(cloud.points, points, rtol=1e-8)
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-7)


def test_npz_first_array_and_six_column_npy(tmp_path: Path, ellipsoid: tuple) -> None:
    points, normals = ellipsoid
    np.savez(tmp_path / "a.npz", cloud=points.astype(np.float32))
    np.testing.assert_array_equal(load_point_cloud(tmp_path / "a.npz").points,
                                  points.astype(np.float32))
    np.save(tmp_path / "b.npy", np.hstack([points, normals]))
    np.testing.assert_allclose(load_point_cloud(tmp_path / "b.npy").normals, normals, atol=1e-7)


# --- validation messages -------------------------------------------------------------------


def test_path_problems(tmp_path: Path) -> None:
    assert load_error(tmp_path / "none.xyz").problem == "no such file"
    (tmp_path / "dir.xyz").mkdir()
    assert load_error(tmp_path / "dir.xyz").problem == "is a directory, not a file"
    assert load_error(write(tmp_path / "c.foo", "1 2 3\n")).problem == (
        "unknown point cloud format '.foo' "
        "(supported: .xyz, .txt, .pts, .ply, .pcd, .obj, .off, .npy, .npz)")
    assert POINT_CLOUD_SUFFIXES == (".xyz", ".txt", ".pts", ".ply", ".pcd", ".obj", ".off",
                                    ".npy", ".npz")


@pytest.mark.parametrize("text", ["", "# only a comment\n\n", "  \n"])
def test_no_points(tmp_path: Path, text: str) -> None:
    assert load_error(write(tmp_path / "e.xyz", text)).problem == "contains no points"


def test_ragged_row_names_the_file_line(tmp_path: Path, ellipsoid: tuple) -> None:
    text = "# comment\n\n" + xyz_text(ellipsoid[0][:13]) + "1 2 3 4\n" + xyz_text(ellipsoid[0])
    err = load_error(write(tmp_path / "r.xyz", text))
    assert err.line == 16
    assert str(err) == f"{tmp_path / 'r.xyz'}:16: row has 4 columns, expected 3 like the first row"


def test_mixed_three_and_six_columns(tmp_path: Path, ellipsoid: tuple) -> None:
    text = xyz_text(np.hstack([ellipsoid[0], ellipsoid[1]])[:5]) + xyz_text(ellipsoid[0])
    err = load_error(write(tmp_path / "m.xyz", text))
    assert (err.line, err.problem) == (6, "row has 3 columns, expected 6 like the first row")


@pytest.mark.parametrize("columns", [1, 2, 4, 5])
def test_wrong_column_count(tmp_path: Path, columns: int) -> None:
    table = np.random.default_rng(0).normal(size=(20, columns))
    err = load_error(write(tmp_path / "w.xyz", xyz_text(table)))
    assert err.problem == (f"has {columns} column{'s' if columns != 1 else ''} per row: expected 3 (x y z) or "
                           "6 (x y z nx ny nz)")


def test_not_a_number(tmp_path: Path, ellipsoid: tuple) -> None:
    lines = xyz_text(ellipsoid[0]).splitlines(keepends=True)
    lines[4] = "0.1 abc 0.3\n"
    err = load_error(write(tmp_path / "n.xyz", "".join(lines)))
    assert str(err) == f"{tmp_path / 'n.xyz'}:5: could not parse 'abc' as a number"


def test_nan_coordinates(tmp_path: Path, ellipsoid: tuple) -> None:
    points = ellipsoid[0].copy()
    points[11, 2], points[40, 0] = np.nan, np.inf
    err = load_error(write(tmp_path / "nan.xyz", xyz_text(points)))
    assert err.problem == "contains NaN or infinite coordinates (first at point 12)"


def test_binary_data_in_text_file(tmp_path: Path) -> None:
    data = b"1 2 3\n" + bytes(range(256)) * 4
    assert load_error(write(tmp_path / "b.xyz", data)).problem == "is not a text file (binary data)"


def test_truncated_binary_ply(tmp_path: Path, ellipsoid: tuple) -> None:
    points = np.resize(ellipsoid[0], (1000, 3))
    save_point_cloud(tmp_path / "full.ply", PointCloud(points))
    data = (tmp_path / "full.ply").read_bytes()
    cut = write(tmp_path / "cut.ply", data[: len(data) - 188 * 12 - 5])  # 3 float32 a vertex
    assert load_error(cut).problem == "is truncated: header declares 1000 vertices, file holds 811"


def test_truncated_ascii_ply(tmp_path: Path, ellipsoid: tuple) -> None:
    header = "ply\nformat ascii 1.0\nelement vertex 600\nproperty float x\nproperty float y\n" \
             "property float z\nend_header\n"
    err = load_error(write(tmp_path / "t.ply", header + xyz_text(ellipsoid[0])))
    assert err.problem == "is truncated: header declares 600 vertices, file holds 500"


def test_ply_without_vertices(tmp_path: Path) -> None:
    text = "ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n"
    assert load_error(write(tmp_path / "f.ply", text)).problem == "has no vertex element"


def test_too_few_distinct_points(tmp_path: Path) -> None:
    points = np.tile([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]], (20, 1))
    err = load_error(write(tmp_path / "few.xyz", xyz_text(points)))
    assert err.problem == "has only 3 distinct points; at least 10 are needed"
    assert load_error(write(tmp_path / "few.npy", b""), min_points=3).problem == "contains no points"


@pytest.mark.parametrize("shape", ["plane", "line"])
def test_flat_clouds(tmp_path: Path, shape: str) -> None:
    uv = np.random.default_rng(3).uniform(-1, 1, size=(200, 2))
    if shape == "line":
        uv[:, 1] = 0.0
    # a tilted plane, so no coordinate is simply constant
    points = uv[:, :1] * [0.6, 0.8, 0.0] + uv[:, 1:] * [0.0, 0.6, 0.8] + [5.0, -2.0, 1.0]
    err = load_error(write(tmp_path / "flat.xyz", xyz_text(points)))
    assert err.problem == f"all points lie on a {shape}: there is no volume to reconstruct"


def test_far_from_origin(tmp_path: Path) -> None:
    """A 0.1 mm object 100 km from the origin: float32 (7 digits) keeps nothing of its shape."""
    unit = np.vstack([np.zeros(3), np.ones(3), np.random.default_rng(5).uniform(size=(50, 3))])
    np.save(tmp_path / "far.npy", unit * 1e-4 + 1e5)
    assert load_error(tmp_path / "far.npy").problem == (
        "coordinates are centred 1e+05 from the origin but span only 0.0001: "
        "float32 cannot resolve the shape; move the cloud near the origin first")


def test_npy_wrong_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.zeros((20, 4)))
    assert load_error(tmp_path / "w.npy").problem == (
        "holds a float64 array of shape (20, 4): expected numbers of shape (N, 3) or (N, 6)")


def test_bad_normals_are_dropped_with_a_warning(tmp_path: Path, ellipsoid: tuple,
                                                caplog: pytest.LogCaptureFixture) -> None:
    points, normals = ellipsoid
    normals = normals.astype(np.float64)
    normals[7] = 0.0
    with caplog.at_level(logging.WARNING, logger="sdfrecon.io.pointcloud"):
        cloud = load_point_cloud(write(tmp_path / "z.xyz", xyz_text(np.hstack([points, normals]))))
    assert cloud.normals is None
    assert "z.xyz: 1 of 500 normals are NaN, infinite or zero-length; ignoring all" in caplog.text
    normals[:300] = np.nan
    with caplog.at_level(logging.WARNING, logger="sdfrecon.io.pointcloud"):
        cloud = load_point_cloud(write(tmp_path / "n.xyz", xyz_text(np.hstack([points, normals]))))
    assert cloud.normals is None
    assert "n.xyz: 300 of 500 normals (more than half) are NaN" in caplog.text


def test_normals_are_normalised(tmp_path: Path, ellipsoid: tuple,
                                caplog: pytest.LogCaptureFixture) -> None:
    points, normals = ellipsoid
    scaled = normals * np.linspace(0.5, 3.0, len(normals))[:, None]
    with caplog.at_level(logging.WARNING, logger="sdfrecon.io.pointcloud"):
        cloud = load_point_cloud(write(tmp_path / "s.xyz", xyz_text(np.hstack([points, scaled]))))
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-6)
    assert "the normals are not unit length (median length 1.75)" in caplog.text


# --- atomic writes -------------------------------------------------------------------------


def test_existing_file_is_not_overwritten(tmp_path: Path, ellipsoid: tuple) -> None:
    path = write(tmp_path / "c.xyz", "keep me\n")
    with pytest.raises(InputError) as info:
        save_point_cloud(path, PointCloud(ellipsoid[0]))
    assert str(info.value) == f"{path}: already exists (pass --overwrite to replace it)"
    assert path.read_text() == "keep me\n"
    save_point_cloud(path, PointCloud(ellipsoid[0]), overwrite=True)
    assert len(load_point_cloud(path)) == 500
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.xyz"]


def test_failing_writer_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new" / "sub" / "out.ply"
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(target) as tmp:
            assert tmp.parent == target.parent and tmp.suffix == ".ply"
            tmp.write_bytes(b"half a file")
            raise RuntimeError("disk on fire")
    assert list(target.parent.iterdir()) == []


def test_failing_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = write(tmp_path / "out.txt", "old\n")
    with pytest.raises(ValueError):
        with atomic_write(target, overwrite=True) as tmp:
            tmp.write_text("new, but unfinished")
            raise ValueError
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_checks_before_writing(tmp_path: Path) -> None:
    target = write(tmp_path / "out.obj", "old\n")
    ran = []
    with pytest.raises(InputError, match="already exists"):
        with atomic_write(target):
            ran.append(True)
    assert ran == [] and target.read_text() == "old\n"


def test_atomic_write_permissions_and_content(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "deep" / "f.txt") as tmp:
        tmp.write_text("done\n")
    final = tmp_path / "deep" / "f.txt"
    assert final.read_text() == "done\n"
    assert final.stat().st_mode & 0o644 == 0o644  # not mkstemp's 0600
