"""--trim: the watertight mesh without its faces far from every input point (sdfrecon/trim.py),
written beside it by ``reconstruct``, and the same faces counted by ``evaluate --input``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfrecon.cli import main
from sdfrecon.geometry import exact_tree, median_spacing, vertex_components
from sdfrecon.trim import TRIM_SPACINGS, face_distances, trim_mesh, unsupported_faces

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample_ellipsoid.xyz"
TINY = ["--hidden-features", "32", "--hidden-layers", "1", "--surface-points", "512",
        "--off-surface-points", "512", "--steps", "20", "--resolution", "24", "--no-progress",
        "--no-previews"]
CLOSED = ["bun_zipper.ply", "spot.obj", "fandisk.obj", "rocker-arm.obj", "fertility.off", "ant.ply"]


def _parts(points: np.ndarray, gap: float) -> np.ndarray:
    """(N,) the separate part of the cloud each point is in: points linked when closer than
    ``gap`` (single linkage)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = exact_tree(points).query_pairs(gap, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points),) * 2)
    return connected_components(graph, directed=False)[1]


@pytest.mark.parametrize("value", ["-1", "abc", "0", "nan", "inf", "-0.5"])
def test_bad_trim_values_exit_2_with_one_line(tmp_path, capsys, value):
    out = tmp_path / "e.obj"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--trim", value, *TINY]) == 2
    err = capsys.readouterr().err
    assert err == (f"sdfrecon: error: --trim: must be a distance > 0 in the input's units, or auto; "
                   f"got {value!r}\n")
    assert not out.exists() and not (tmp_path / "e.run").exists()
    assert main(["evaluate", str(SAMPLE), "--reference", str(SAMPLE), "--input", str(SAMPLE),
                 "--trim", value]) == 2
    assert capsys.readouterr().err.startswith("sdfrecon: error: --trim: must be a distance > 0")


def test_an_existing_trimmed_mesh_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "e.trimmed.obj").write_text("keep me\n")
    assert main(["reconstruct", str(SAMPLE), "-o", str(tmp_path / "e.obj"), "--trim", "auto", *TINY]) == 2
    assert "e.trimmed.obj" in capsys.readouterr().err
    assert (tmp_path / "e.trimmed.obj").read_text() == "keep me\n"
    assert not (tmp_path / "e.obj").exists()


def test_trim_removes_a_cap_where_no_point_is_and_islands_that_stray_points_hold():
    """A sphere mesh, points on its upper half and one stray point below: the lower half goes
    (about half the area), the island the stray point would hold too, and no kept face has a
    vertex or centroid farther than the distance."""
    sphere = trimesh.creation.icosphere(subdivisions=5)
    rng = np.random.default_rng(0)
    points = rng.normal(size=(20_000, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points = np.vstack([points[points[:, 2] > 0.0], [[0.0, 0.0, -1.0]]])
    tree = exact_tree(points)
    distance = TRIM_SPACINGS * median_spacing(points, tree)
    cut = trim_mesh(sphere.vertices, sphere.faces, tree, distance)
    assert 0.45 < cut.area_share < 0.5
    assert cut.vertices[:, 2].min() > -2 * distance  # the island at the south pole went too
    assert face_distances(cut.vertices, cut.faces, tree).max() <= distance
    labels = vertex_components(cut.faces, len(cut.vertices))
    assert len(np.unique(labels)) == 1
    np.testing.assert_array_equal(cut.vertices, sphere.vertices[cut.used])
    share = unsupported_faces(sphere.vertices, sphere.faces, points)
    assert share["unsupported_area_share"] == pytest.approx(cut.area_share)
    assert share["trim_distance"] == pytest.approx(distance)


@pytest.mark.parametrize("name", CLOSED)
def test_auto_trim_of_a_closed_shape_removes_nothing(shared_data, name):
    """The true surface of each closed shared mesh against 30,000 and 3,000 samples of it,
    clean and at 0.5 % noise: a faithful mesh loses no face at --trim auto."""
    from sdfrecon.evaluation.clouds import sample_cloud

    mesh = trimesh.load(shared_data / "meshes" / name, process=False, force="mesh")
    fine = mesh.subdivide_to_size(max_edge=mesh.scale / 200.0, max_iter=6)
    for n in (30_000, 3_000):
        for noise in (0.0, 0.005):
            points = sample_cloud(mesh, n, seed=1, noise=noise).points
            result = unsupported_faces(fine.vertices, fine.faces, points)
            assert result["unsupported_area"] == 0.0, (n, noise, result)


def test_reconstruct_trim_on_a_closed_cloud_writes_both_and_removes_nothing(tmp_path):
    out = tmp_path / "e.obj"
    assert main(["reconstruct", str(SAMPLE), "-o", str(out), "--trim", "auto", "--preset", "fast",
                 "--steps", "300", "--resolution", "96", "--no-progress", "--no-previews"]) == 0
    trimmed = tmp_path / "e.trimmed.obj"
    summary = json.loads((tmp_path / "e.run" / "summary.json").read_text())["trim"]
    assert summary["output"] == str(trimmed) and summary["auto"] and summary["spacings"] == TRIM_SPACINGS
    assert summary["faces_removed"] == 0 and summary["area_removed"] == 0.0
    whole, cut = trimesh.load(out, process=False), trimesh.load(trimmed, process=False)
    assert whole.is_watertight and len(cut.faces) == len(whole.faces) == summary["faces"]


@pytest.mark.slow
def test_trim_auto_on_the_raw_single_view_scan(shared_data, tmp_path, capsys):
    """bun000, one range image (no back): the watertight mesh closes the back; --trim auto
    returns what the scanner saw, one piece for each separate part of the scan, no face
    farther than the trim distance; evaluate --input counts the removed area on the watertight
    mesh and nothing on the trimmed one. Measured (fast preset): 45 % of the area removed,
    4 pieces for the scan's 3 parts of 100 points or more and one of 11 points."""
    from sdfrecon.io import load_point_cloud

    scan = shared_data / "raw_scans" / "bun000.xyz"
    out = tmp_path / "bun000.ply"
    assert main(["reconstruct", str(scan), "-o", str(out), "--trim", "auto", "--preset", "fast",
                 "--no-progress", "--no-previews"]) == 0
    summary = json.loads((tmp_path / "bun000.run" / "summary.json").read_text())["trim"]
    points = load_point_cloud(scan).points
    tree = exact_tree(points)
    distance = summary["distance"]
    assert distance == pytest.approx(TRIM_SPACINGS * median_spacing(points, tree), rel=1e-6)
    whole = trimesh.load(out, process=False)
    cut = trimesh.load(tmp_path / "bun000.trimmed.ply", process=False)
    assert whole.is_watertight and 0.2 < summary["area_removed_share"] < 0.7
    # Nothing far: every vertex and centroid within the distance, every point of every face
    # within it plus half the longest edge.
    assert face_distances(cut.vertices, cut.faces, tree).max() <= distance
    samples, _ = trimesh.sample.sample_surface(cut, 200_000, seed=0)
    assert tree.query(samples)[0].max() <= distance + cut.edges_unique_length.max() / 2
    # One piece per part of the scan. A kept face lies within the distance of a point, so
    # the mesh can bridge gaps up to twice the distance: parts are the scan's points linked
    # within that. Each piece is held by the points of one part, no two pieces by the same
    # part, and every part of 100 points or more has its piece (a 11-point fragment has one).
    part = _parts(points, 2 * distance)
    components = vertex_components(np.asarray(cut.faces), len(cut.vertices))
    held = []
    for k in np.unique(components):
        near = exact_tree(cut.vertices[components == k]).query(points)[0] <= distance
        held.append(set(part[near].tolist()))
    assert all(len(h) == 1 for h in held), held
    held = [h.pop() for h in held]
    assert len(set(held)) == len(held) == summary["components"]
    assert set(np.flatnonzero(np.bincount(part) >= 100)) <= set(held)
    capsys.readouterr()
    for mesh, expected in ((out, summary["area_removed_share"]), (tmp_path / "bun000.trimmed.ply", 0.0)):
        report = tmp_path / f"{mesh.stem}.json"
        assert main(["evaluate", str(mesh), "--reference", str(scan), "--input", str(scan),
                     "--samples", "20000", "--json", str(report)]) == 0
        metrics = json.loads(report.read_text())["metrics"]
        assert metrics["trim_distance"] == pytest.approx(distance, rel=1e-6)
        assert metrics["unsupported_area_share"] == pytest.approx(expected, abs=1e-9)
