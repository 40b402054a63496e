"""Tests for sdfrecon.evaluation.metrics: brute-force cross-checks, analytic cases, real meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfrecon.evaluation.metrics import (
    chamfer_fscore,
    compare_meshes,
    nearest,
    sample_surface,
    topology,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not (SHARED_DATA / "meshes").is_dir(),
    reason=f"shared test data not found at {SHARED_DATA} (needs the ../shared checkout)",
)


@pytest.fixture
def clouds() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Small random point sets and normals: rec (200, 3), ref (300, 3)."""
    rng = np.random.default_rng(1234)
    rec, ref = rng.normal(size=(200, 3)), rng.normal(size=(300, 3)) * 1.1 + 0.05
    return rec, ref, rng.normal(size=(200, 3)), rng.normal(size=(300, 3))


def brute_nearest(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O(n*m) nearest neighbours: distances (n,) and indices (n,)."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    idx = d.argmin(axis=1)
    return d[np.arange(len(a)), idx], idx


def sphere_points(n: int, radius: float, seed: int) -> np.ndarray:
    """``n`` points uniform on a sphere of ``radius`` (normalised Gaussians)."""
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * v / np.linalg.norm(v, axis=1, keepdims=True)


def test_nearest_matches_brute_force(clouds) -> None:
    rec, ref, _, _ = clouds
    dist, idx = nearest(rec, ref)
    d_bf, i_bf = brute_nearest(rec, ref)
    assert dist.shape == (200,) and idx.shape == (200,)
    np.testing.assert_array_equal(idx, i_bf)
    np.testing.assert_allclose(dist, d_bf, rtol=1e-9, atol=0)


def test_chamfer_fscore_matches_brute_force(clouds) -> None:
    rec, ref, n_rec, n_ref = clouds
    taus = (0.1, 0.25, 0.5)
    got = chamfer_fscore(rec, ref, n_rec, n_ref, taus=taus)
    d_rr, i_rr = brute_nearest(rec, ref)
    d_fr, i_fr = brute_nearest(ref, rec)
    u_rec = n_rec / np.linalg.norm(n_rec, axis=1, keepdims=True)
    u_ref = n_ref / np.linalg.norm(n_ref, axis=1, keepdims=True)
    want = {
        "chamfer_l1": (d_rr.mean() + d_fr.mean()) / 2,
        "chamfer_l2": ((d_rr**2).mean() + (d_fr**2).mean()) / 2,
        "hausdorff": max(d_rr.max(), d_fr.max()),
        "normal_consistency": (
            np.abs((u_rec * u_ref[i_rr]).sum(1)).mean()
            + np.abs((u_ref * u_rec[i_fr]).sum(1)).mean()
        )
        / 2,
    }
    for tau in taus:
        p, r = (d_rr < tau).mean(), (d_fr < tau).mean()
        want[f"precision@{tau:g}"] = p
        want[f"recall@{tau:g}"] = r
        want[f"fscore@{tau:g}"] = 2 * p * r / (p + r)
        assert 0 < p < 1 and 0 < r < 1  # the thresholds actually discriminate
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=0), key


def test_chamfer_fscore_without_normals_and_zero_fscore(clouds) -> None:
    rec, ref, _, _ = clouds
    got = chamfer_fscore(rec, ref + 100.0, taus=(1.0,))
    assert "normal_consistency" not in got
    assert got["fscore@1"] == 0.0 and got["precision@1"] == 0.0


def test_concentric_spheres_hand_computed() -> None:
    """Radius 1 vs 1.1: every distance is ~0.1, so Chamfer-L1 ~ 0.1, L2 ~ 0.01."""
    inner, outer = sphere_points(100_000, 1.0, 1), sphere_points(100_000, 1.1, 2)
    got = chamfer_fscore(inner, outer, inner, outer, taus=(0.05, 0.2))
    assert got["chamfer_l1"] == pytest.approx(0.1, rel=0.01)
    assert got["chamfer_l2"] == pytest.approx(0.01, rel=0.03)
    assert got["hausdorff"] >= 0.1
    assert got["fscore@0.05"] == 0.0
    assert got["fscore@0.2"] == 1.0
    assert got["normal_consistency"] == pytest.approx(1.0, abs=1e-3)


def test_sample_surface_reproducible_and_on_surface() -> None:
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    pts, nrm = sample_surface(box, 5000, seed=7)
    again, _ = sample_surface(box, 5000, seed=7)
    other, _ = sample_surface(box, 5000, seed=8)
    assert pts.shape == nrm.shape == (5000, 3) and pts.dtype == np.float64
    np.testing.assert_array_equal(pts, again)
    assert not np.array_equal(pts, other)
    np.testing.assert_allclose(np.linalg.norm(nrm, axis=1), 1.0, rtol=1e-12)
    half = np.array([0.5, 1.0, 1.5])
    # Each point lies on the face plane its (outward, axis-aligned) normal names.
    np.testing.assert_allclose(np.abs(nrm) @ half, (pts * nrm).sum(1), atol=1e-12)
    assert np.all(np.abs(pts) <= half + 1e-12)
    # Area weighting: the two 2x3 faces (normal along x) hold 12 of the 22 area units.
    frac = np.mean(np.abs(nrm[:, 0]) > 0.5)
    assert frac == pytest.approx(12 / 22, abs=0.02)


def test_sample_surface_uniform_inside_triangle() -> None:
    tri = trimesh.Trimesh([[0, 0, 0], [3, 0, 0], [0, 3, 0]], [[0, 1, 2]], process=False)
    pts, _ = sample_surface(tri, 40_000, seed=0)
    assert np.all(pts[:, :2] >= 0) and np.all(pts[:, :2].sum(1) <= 3 + 1e-12)
    np.testing.assert_allclose(pts.mean(0), [1.0, 1.0, 0.0], atol=0.02)
    # Uniform density: the sub-triangle x + y < 1.5 holds a quarter of the area.
    assert np.mean(pts[:, :2].sum(1) < 1.5) == pytest.approx(0.25, abs=0.01)


def test_compare_meshes_keys_and_relative_values() -> None:
    ref = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    rec = trimesh.creation.icosphere(subdivisions=4, radius=1.02)
    got = compare_meshes(rec, ref, n=20_000, seed=3)
    assert got["diag"] == pytest.approx(2 * np.sqrt(3), rel=1e-6)
    assert got["chamfer_l1_rel"] == pytest.approx(got["chamfer_l1"] / got["diag"])
    assert got["chamfer_l2_rel"] == pytest.approx(got["chamfer_l2"] / got["diag"] ** 2)
    assert got["hausdorff_rel"] == pytest.approx(got["hausdorff"] / got["diag"])
    for label in ("0.5%", "1%", "2%"):
        assert {f"{k}@{label}" for k in ("tau", "precision", "recall", "fscore")} <= set(got)
    assert got["tau@1%"] == pytest.approx(0.01 * got["diag"])
    # The 0.02 radial gap is 0.58% of diag: below the 0.5% threshold, above 1%.
    assert got["fscore@0.5%"] < 0.1 and got["fscore@1%"] > 0.9
    assert compare_meshes(rec, ref, n=20_000, seed=3) == got


def test_topology_icosphere() -> None:
    topo = topology(trimesh.creation.icosphere(subdivisions=2))
    assert topo["genus"] == 0 and topo["components"] == 1 and topo["euler"] == 2
    assert topo["boundary_loops"] == 0 and topo["watertight"] is True


def test_topology_merges_duplicate_vertices() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    soup = trimesh.Trimesh(
        sphere.vertices[sphere.faces].reshape(-1, 3),
        np.arange(3 * len(sphere.faces)).reshape(-1, 3),
        process=False,
    )
    assert topology(soup) == topology(sphere)


def test_topology_torus() -> None:
    topo = topology(trimesh.creation.torus(major_radius=1.0, minor_radius=0.3))
    assert topo["genus"] == 1 and topo["euler"] == 0 and topo["watertight"] is True


def test_topology_two_spheres() -> None:
    a = trimesh.creation.icosphere(subdivisions=1)
    b = trimesh.creation.icosphere(subdivisions=1)
    b.apply_translation([5.0, 0.0, 0.0])
    topo = topology(trimesh.util.concatenate([a, b]))
    assert topo["components"] == 2 and topo["genus"] == 0 and topo["euler"] == 4


def test_topology_open_mesh() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=2)
    # Two faces far apart (most negative and most positive z) make two separate holes.
    z = sphere.triangles_center[:, 2]
    keep = np.ones(len(sphere.faces), dtype=bool)
    keep[[z.argmin(), z.argmax()]] = False
    holed = trimesh.Trimesh(sphere.vertices, sphere.faces[keep], process=False)
    topo = topology(holed)
    assert topo["boundary_loops"] == 2 and topo["genus"] == 0
    assert topo["watertight"] is False and topo["components"] == 1


def _load_shared(name: str) -> trimesh.Trimesh:
    return trimesh.load(SHARED_DATA / "meshes" / name, process=False, force="mesh")


@needs_shared
@pytest.mark.parametrize(("name", "genus"), [("rocker-arm.obj", 1), ("fertility.off", 4)])
def test_topology_shared_meshes(name: str, genus: int) -> None:
    topo = topology(_load_shared(name))
    assert topo["genus"] == genus and topo["components"] == 1 and topo["watertight"] is True


@needs_shared
def test_bunny_self_comparison_sampling_floor() -> None:
    bunny = _load_shared("bun_zipper.ply")
    topo = topology(bunny)
    assert topo["boundary_loops"] == 5 and topo["genus"] == 0
    got = compare_meshes(bunny, bunny, n=100_000, seed=0)
    assert 0.0 < got["chamfer_l1_rel"] < 0.003
    assert got["fscore@1%"] > 0.99
