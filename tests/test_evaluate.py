"""Tests for sdfrecon.evaluation.scoring and the `evaluate` command: brute-force cross-checks of every
metric on small samples, closed forms (two concentric spheres, a scan at a known distance),
self-comparison (exact ~0, sample-based at the sampling floor), and the CLI's output."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from sdfrecon import cli
from sdfrecon.cli.evaluate import Evaluate
from sdfrecon.errors import InputError
from sdfrecon.evaluation.metrics import compare_meshes, sample_surface
from sdfrecon.evaluation.scoring import (
    CONVENTIONS,
    evaluate_mesh,
    load_reference,
    surface_distance,
)
from sdfrecon.io import PointCloud, load_mesh, save_mesh, save_point_cloud

FRACTIONS = (0.005, 0.01, 0.02)


@pytest.fixture
def commands():
    """`sdfrecon.cli.main`, which registers every subcommand."""
    return cli.main


# --- brute-force references ------------------------------------------------------------------


def brute_nearest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(n*m) nearest neighbours of a's points in b: distances (n,), indices (n,)."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    idx = d.argmin(axis=1)
    return d[np.arange(len(a)), idx], idx


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points p (P, 1, 3) to segments [a, b] (F, 3): (P, F)."""
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / (ab * ab).sum(-1), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def brute_point_triangle(points: np.ndarray, mesh: trimesh.Trimesh) -> np.ndarray:
    """Distance from each point to the nearest triangle, O(P*F): the closest point of a
    triangle is the point's projection on its plane when that falls inside the triangle, else
    the closest point of one of its three edges."""
    tri = np.asarray(mesh.vertices, dtype=np.float64)[np.asarray(mesh.faces)]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    normal = np.cross(b - a, c - a)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    out = []
    for chunk in np.array_split(points, max(1, len(points) // 100)):
        p = chunk[:, None, :]
        height = ((p - a) * normal).sum(-1)
        foot = p - height[..., None] * normal
        inside = np.ones(height.shape, dtype=bool)
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= (np.cross(v - u, foot - u) * normal).sum(-1) >= 0.0
        best = np.where(inside, np.abs(height), np.inf)
        for u, v in ((a, b), (b, c), (c, a)):
            best = np.minimum(best, _segment_distance(p, u, v))
        out.append(best.min(axis=1))
    return np.concatenate(out)


def brute_metrics(d_rr, d_fr, diag, prefix=""):
    """Chamfer/Hausdorff/F-score from distance arrays, written out independently."""
    out = {
        f"{prefix}chamfer_l1": (np.mean(d_rr) + np.mean(d_fr)) / 2,
        f"{prefix}chamfer_l2": (np.mean(d_rr**2) + np.mean(d_fr**2)) / 2,
        f"{prefix}hausdorff": max(d_rr.max(), d_fr.max()),
    }
    out[f"{prefix}chamfer_l1_rel"] = out[f"{prefix}chamfer_l1"] / diag
    out[f"{prefix}chamfer_l2_rel"] = out[f"{prefix}chamfer_l2"] / diag**2
    out[f"{prefix}hausdorff_rel"] = out[f"{prefix}hausdorff"] / diag
    for fraction, label in zip(FRACTIONS, ("0.5%", "1%", "2%"), strict=True):
        p = np.count_nonzero(d_rr < fraction * diag) / len(d_rr)
        r = np.count_nonzero(d_fr < fraction * diag) / len(d_fr)
        out[f"{prefix}precision@{label}"] = p
        out[f"{prefix}recall@{label}"] = r
        out[f"{prefix}fscore@{label}"] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return out


def _seeds(seed: int) -> tuple[int, int]:
    """The documented seed derivation (that of sdfrecon.evaluation.metrics.compare_meshes)."""
    rec_seed, ref_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(rec_seed), int(ref_seed)


def _lumpy_sphere() -> trimesh.Trimesh:
    """An irregular closed mesh: an icosphere with random radial bumps."""
    mesh = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    rng = np.random.default_rng(3)
    vertices = mesh.vertices * (1.0 + 0.08 * rng.random((len(mesh.vertices), 1)))
    return trimesh.Trimesh(vertices + [0.05, -0.02, 0.1], mesh.faces, process=False)


def _capsule() -> trimesh.Trimesh:
    mesh = trimesh.creation.capsule(height=1.0, radius=0.7, count=(12, 12))
    return trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)


# --- brute-force agreement -------------------------------------------------------------------


def test_brute_point_triangle_itself() -> None:
    """The reference implementation on hand-made cases: above the face, past an edge, past a corner."""
    mesh = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    points = np.array([[0.2, 0.2, 0.5], [0.5, -1.0, 0.0], [-3.0, -4.0, 0.0], [1.0, 1.0, 0.0]])
    expected = [0.5, 1.0, 5.0, np.sqrt(0.5)]
    np.testing.assert_allclose(brute_point_triangle(points, mesh), expected, rtol=1e-12)


def test_surface_distance_matches_brute_force() -> None:
    mesh = _capsule()
    points = np.random.default_rng(0).uniform(-1.5, 1.5, size=(400, 3))
    exact = brute_point_triangle(points, mesh)
    assert exact.min() > 1e-3  # keep the relative comparison meaningful
    np.testing.assert_allclose(surface_distance(points, mesh), exact, rtol=1e-5)


def test_surface_distance_keeps_precision_far_from_the_origin() -> None:
    """float32 at 1e5 has a step of 0.008: without centring, on-surface points would be
    that far off. Centred on the mesh, they stay within float32 of the shape's size."""
    mesh = _lumpy_sphere()
    mesh.vertices += 1e5
    points, _ = sample_surface(mesh, 2000, seed=1)
    assert surface_distance(points, mesh).max() < 1e-6


def test_sample_metrics_match_brute_force_mesh_reference() -> None:
    rec, ref = _lumpy_sphere(), _capsule()
    m = evaluate_mesh(rec, ref, samples=300, seed=5)
    rec_seed, ref_seed = _seeds(5)
    rec_pts, rec_nrm = sample_surface(rec, 300, rec_seed)
    ref_pts, ref_nrm = sample_surface(ref, 300, ref_seed)
    used = ref.vertices[np.unique(ref.faces)]
    diag = np.linalg.norm(used.max(0) - used.min(0))
    d_rr, i_rr = brute_nearest(rec_pts, ref_pts)
    d_fr, i_fr = brute_nearest(ref_pts, rec_pts)
    expected = brute_metrics(d_rr, d_fr, diag)
    cos_rr = np.abs((rec_nrm * ref_nrm[i_rr]).sum(1))
    cos_fr = np.abs((ref_nrm * rec_nrm[i_fr]).sum(1))
    expected["normal_consistency"] = (cos_rr.mean() + cos_fr.mean()) / 2
    expected["diag"] = diag
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=1e-6, abs=0), key
    for label, fraction in (("0.5%", 0.005), ("1%", 0.01), ("2%", 0.02)):
        assert m[f"tau@{label}"] == pytest.approx(fraction * diag, rel=1e-12)
    # Same numbers as sdfrecon.evaluation.metrics.compare_meshes for every key it has.
    reference = compare_meshes(rec, ref, n=300, seed=5)
    assert {k: m[k] for k in reference} == reference
    assert m["reference_kind"] == "mesh" and m["reference_points"] == 300


def test_exact_metrics_match_brute_force_triangles() -> None:
    rec, ref = _lumpy_sphere(), _capsule()
    m = evaluate_mesh(rec, ref, samples=300, seed=2)
    rec_seed, ref_seed = _seeds(2)
    rec_pts, _ = sample_surface(rec, 300, rec_seed)
    ref_pts, _ = sample_surface(ref, 300, ref_seed)
    diag = m["diag"]
    expected = brute_metrics(brute_point_triangle(rec_pts, ref), brute_point_triangle(ref_pts, rec),
                             diag, prefix="exact_")
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=1e-5, abs=0), key
    assert 0.0 < m["exact_fscore@2%"] < 1.0  # the thresholds do separate the samples
    # Exact distances are never larger than distances to the nearest sample.
    assert m["exact_chamfer_l1"] < m["chamfer_l1"]
    assert "scan_to_rec_mean" not in m


def test_cloud_reference_matches_brute_force() -> None:
    rec = _lumpy_sphere()
    rng = np.random.default_rng(11)
    scan_pts = rng.normal(size=(250, 3))
    scan_pts = 1.05 * scan_pts / np.linalg.norm(scan_pts, axis=1, keepdims=True)
    scan_nrm = scan_pts / np.linalg.norm(scan_pts, axis=1, keepdims=True)
    scan = PointCloud(scan_pts, scan_nrm)
    m = evaluate_mesh(rec, scan, samples=300, seed=4)
    rec_pts, rec_nrm = sample_surface(rec, 300, _seeds(4)[0])
    diag = np.linalg.norm(scan_pts.max(0) - scan_pts.min(0))
    d_rr, i_rr = brute_nearest(rec_pts, scan_pts)
    d_fr, i_fr = brute_nearest(scan_pts, rec_pts)
    expected = brute_metrics(d_rr, d_fr, diag)
    nrm = scan.normals.astype(np.float64)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    expected["normal_consistency"] = (np.abs((rec_nrm * nrm[i_rr]).sum(1)).mean()
                                      + np.abs((nrm * rec_nrm[i_fr]).sum(1)).mean()) / 2
    d_scan = brute_point_triangle(scan_pts, rec)
    expected.update(scan_to_rec_mean=d_scan.mean(), scan_to_rec_max=d_scan.max(),
                    scan_to_rec_mean_rel=d_scan.mean() / diag, scan_to_rec_max_rel=d_scan.max() / diag)
    for key, value in expected.items():
        tol = 1e-5 if key.startswith("scan_to_rec") else 1e-6
        assert m[key] == pytest.approx(value, rel=tol, abs=0), key
    assert m["reference_kind"] == "cloud" and m["reference_points"] == 250
    assert not any(key.startswith("exact_") for key in m)
    # A cloud without normals: no normal consistency.
    assert "normal_consistency" not in evaluate_mesh(rec, PointCloud(scan_pts), samples=300)


# --- closed forms ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spheres() -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    return (trimesh.creation.icosphere(subdivisions=5, radius=1.0),
            trimesh.creation.icosphere(subdivisions=5, radius=1.1))


def test_two_concentric_spheres(spheres) -> None:
    """R = 1 against R = 1.1: every distance is 0.1, up to the polygons' sagitta (~2e-4)."""
    inner, outer = spheres
    diag = 2.2 * np.sqrt(3)
    below, above = 0.099 / diag, 0.101 / diag
    m = evaluate_mesh(inner, outer, samples=20_000, seed=0, tau_fractions=(below, above))
    assert m["diag"] == pytest.approx(diag, rel=1e-9)
    assert m["exact_chamfer_l1"] == pytest.approx(0.1, rel=0.01)
    assert m["exact_hausdorff"] == pytest.approx(0.1, rel=0.01)
    assert m["exact_chamfer_l2"] == pytest.approx(0.01, rel=0.02)
    assert m["exact_chamfer_l1_rel"] == pytest.approx(0.1 / diag, rel=0.01)
    keys = [k for k in m if k.startswith("exact_fscore@")]
    assert [m[k] for k in keys] == [0.0, 1.0]
    # Sample-based: at least the true distance, more by the sample spacing.
    assert 0.1 < m["chamfer_l1"] < 0.103 and m["hausdorff"] > 0.1


def test_mesh_against_itself_is_zero_exactly(spheres) -> None:
    sphere = spheres[0]
    m = evaluate_mesh(sphere, sphere, samples=5000, seed=1)
    assert m["exact_chamfer_l1_rel"] < 1e-6 and m["exact_hausdorff_rel"] < 1e-6
    assert m["exact_fscore@0.5%"] == 1.0
    assert m["chamfer_l1_rel"] > 1e-3  # the sampling floor of 5000 samples
    assert (m["components"], m["genus"], m["watertight"]) == (1, 0, True)


def test_bunny_against_itself(shared_data) -> None:
    """Two 100k samplings of one bunny differ by ~0.15 % of the diagonal; exact ~0."""
    bunny = load_mesh(shared_data / "meshes" / "bun_zipper.ply")
    m = evaluate_mesh(bunny, bunny, samples=100_000, seed=0)
    assert 0.0012 < m["chamfer_l1_rel"] < 0.0018
    assert m["exact_chamfer_l1_rel"] < 1e-6
    assert m["exact_hausdorff_rel"] < 1e-6
    assert m["exact_fscore@0.5%"] == 1.0
    assert m["components"] == 1 and m["watertight"] is False  # the scan's holes


def test_srb_scan_at_known_distance(spheres) -> None:
    """Scan points at radius 1.05 around a unit sphere mesh: one-sided distance 0.05."""
    sphere = spheres[0]
    v = np.random.default_rng(0).normal(size=(5000, 3))
    scan = PointCloud(1.05 * v / np.linalg.norm(v, axis=1, keepdims=True))
    m = evaluate_mesh(sphere, scan, samples=5000)
    assert m["scan_to_rec_mean"] == pytest.approx(0.05, rel=0.01)
    assert m["scan_to_rec_max"] == pytest.approx(0.05, rel=0.01)
    assert m["scan_to_rec_mean_rel"] == pytest.approx(m["scan_to_rec_mean"] / m["diag"], rel=1e-12)


# --- loading ---------------------------------------------------------------------------------


def test_load_reference_kinds(tmp_path) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=1)
    save_mesh(tmp_path / "mesh.ply", sphere.vertices, sphere.faces)
    save_mesh(tmp_path / "mesh.obj", sphere.vertices, sphere.faces)
    cloud = PointCloud(sphere.vertices, sphere.vertex_normals)
    save_point_cloud(tmp_path / "cloud.ply", cloud)
    save_point_cloud(tmp_path / "cloud.xyz", cloud)
    assert isinstance(load_reference(tmp_path / "mesh.ply"), trimesh.Trimesh)
    assert isinstance(load_reference(tmp_path / "mesh.obj"), trimesh.Trimesh)
    for name in ("cloud.ply", "cloud.xyz"):
        loaded = load_reference(tmp_path / name)
        assert isinstance(loaded, PointCloud) and loaded.normals is not None
        np.testing.assert_allclose(loaded.points, sphere.vertices, rtol=1e-6)


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("missing.ply", None, "no such file"),
    ("ref.abc", b"1 2 3\n", "unknown reference format"),
    ("broken.stl", b"not an stl", "mesh"),
    ("flat.obj", b"v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n", "no surface area"),
    ("empty.xyz", b"", "contains no points"),
])
def test_load_reference_errors(tmp_path, name, content, problem) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as info:
        load_reference(path)
    assert str(path) in str(info.value)


def test_evaluate_rejects_a_mesh_without_area() -> None:
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False)
    with pytest.raises(InputError, match="no surface area"):
        evaluate_mesh(flat, _capsule(), samples=10)


# --- the command -----------------------------------------------------------------------------


def test_cli_prints_conventions_and_writes_the_same_json(tmp_path, commands, capsys) -> None:
    rec, ref = _lumpy_sphere(), _capsule()
    save_mesh(tmp_path / "rec.obj", rec.vertices, rec.faces)
    save_mesh(tmp_path / "ref.ply", ref.vertices, ref.faces)
    out = tmp_path / "scores" / "m.json"
    args = ["evaluate", str(tmp_path / "rec.obj"), "--reference", str(tmp_path / "ref.ply"),
            "--samples", "500", "--seed", "3", "--json", str(out)]
    assert commands(args) == 0
    printed = capsys.readouterr().out
    for line in CONVENTIONS.values():
        assert line in printed
    assert "exact_chamfer_l1" in printed and "fscore@1%" in printed
    document = json.loads(out.read_text())
    assert document["conventions"] == CONVENTIONS
    expected = evaluate_mesh(load_mesh(tmp_path / "rec.obj"), load_reference(tmp_path / "ref.ply"),
                             samples=500, seed=3)
    assert document["metrics"] == expected
    assert f"{expected['chamfer_l1']:.6g}" in printed

    # An existing JSON is not replaced without --overwrite.
    before = out.read_bytes()
    assert commands(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert commands([*args[:-2], "-o", str(out), "--overwrite", "--samples", "400"]) == 0
    assert json.loads(out.read_text())["metrics"]["samples"] == 400


def test_cli_errors_are_one_line(tmp_path, commands, capsys) -> None:
    rec = _lumpy_sphere()
    save_mesh(tmp_path / "rec.obj", rec.vertices, rec.faces)
    save_point_cloud(tmp_path / "cloud.xyz", PointCloud(rec.vertices))
    cases = [
        (["--reference", str(tmp_path / "nope.ply")], "nope.ply: no such file"),
        (["--reference", str(tmp_path / "rec.obj"), "--samples", "0"], "--samples: must be >= 1"),
    ]
    for extra, message in cases:
        assert commands(["evaluate", str(tmp_path / "rec.obj"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err and err.startswith("sdfrecon: error: ")
    # A point cloud given where the mesh to score is needed.
    assert commands(["evaluate", str(tmp_path / "cloud.xyz"), "--reference",
                     str(tmp_path / "rec.obj")]) == 2
    assert "unknown mesh format" in capsys.readouterr().err
    save_point_cloud(tmp_path / "cloud.ply", PointCloud(rec.vertices))
    assert commands(["evaluate", str(tmp_path / "cloud.ply"), "--reference",
                     str(tmp_path / "rec.obj")]) == 2
    assert "cloud.ply: has no faces" in capsys.readouterr().err
    save_mesh(tmp_path / "flat.off", [[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]])
    with pytest.raises(InputError, match="no surface area"):
        Evaluate(tmp_path / "flat.off", reference=tmp_path / "rec.obj").run()


def test_far_components_counts_ghosts_against_a_scan() -> None:
    body = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    ghost = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    ghost.apply_translation([3.0, 0.0, 0.0])
    rec = trimesh.util.concatenate([body, ghost])
    scan = PointCloud(np.asarray(body.vertices, dtype=np.float64) * 1.001, None)
    metrics = evaluate_mesh(rec, scan, samples=2000)
    assert metrics["far_components@2%"] == 1
    assert evaluate_mesh(body, scan, samples=2000)["far_components@2%"] == 0
