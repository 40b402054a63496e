"""The free-space pool (distance to the cloud, the side of the surface where it is known),
the free-space loss term, and the unsupported-area metric that sees ghost surfaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from sdfrecon.config import LossConfig
from sdfrecon.evaluation.metrics import unsupported_area
from sdfrecon.evaluation.thin_shapes import bowl, bracket, single_view_scan
from sdfrecon.sdf.losses import sdf_losses
from sdfrecon.sdf.sampling import SdfBatch, free_space_pool


def _unit(points: np.ndarray) -> np.ndarray:
    lo, hi = points.min(axis=0), points.max(axis=0)
    return (points - (lo + hi) / 2) * 1.8 / (hi - lo).max()


def _pool(points, normals, size=20_000, margin=0.05):
    generator = torch.Generator().manual_seed(0)
    normals_t = None if normals is None else torch.as_tensor(normals, dtype=torch.float32)
    pool, distance, side = free_space_pool(torch.as_tensor(points, dtype=torch.float32), normals_t,
                                           size, margin, generator)
    return pool.numpy(), distance.numpy(), side.numpy()


def _sphere_cloud(n=4000, radius=0.6):
    v = np.random.default_rng(0).normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return radius * v, v


def test_pool_distance_is_exact_near_the_points_and_a_close_lower_bound_beyond():
    points, normals = _sphere_cloud()
    for with_normals in (normals, None):  # the vote's queries and the plain ones alike
        pool, distance, _ = _pool(points, with_normals)
        brute = np.sqrt(((pool[:2000, None, :] - points[None]) ** 2).sum(-1)).min(axis=1)
        near, d = brute < 0.2, distance[:2000]
        assert near.sum() > 100 and (~near).sum() > 100
        np.testing.assert_allclose(d[near], brute[near], rtol=1e-5, atol=1e-6)
        # beyond: never above the distance (the free-space term may only be weakened), and at
        # most two cell diagonals of the 128^3 carving grid below it
        assert np.all(d[~near] <= brute[~near] + 1e-6)
        assert np.all(d[~near] >= brute[~near] - 2 * np.sqrt(3) * 2 / 128 - 1e-6)
        assert np.all(d[~near] >= 0.2 - 2 * np.sqrt(3) * 2 / 128)


def test_closed_shape_inside_and_outside_from_the_normals():
    points, normals = _sphere_cloud()
    pool, distance, side = _pool(points, normals)
    r = np.linalg.norm(pool, axis=1)
    deep_inside, far_outside = r < 0.6 - 0.1, r > 0.6 + 0.1
    assert (side[deep_inside] == -1).mean() > 0.99
    assert (side[far_outside] == 1).mean() > 0.99
    assert np.all(side[distance <= 0.05] == 0)  # no claim within the margin


def test_without_normals_only_visibility_speaks():
    points, _ = _sphere_cloud()
    pool, _, side = _pool(points, None)
    r = np.linalg.norm(pool, axis=1)
    assert np.all(side[r < 0.5] == 0)  # the inside of a closed sphere is seen from nowhere
    corners = np.all(np.abs(pool) > 0.8, axis=1)
    assert (side[corners] == 1).all()


def test_thin_and_open_shapes_have_no_inside_far_from_the_points():
    """Above the bracket's base and behind a single-view scan is outside: the normals of the
    scanned side would call the back inside, visibility overrules them."""
    for points, normals in (bracket(4000), bowl(4000),
                            single_view_scan(trimesh.creation.icosphere(3), resolution=60)):
        unit = _unit(points)
        _, distance, side = _pool(unit, normals)
        far = distance > 0.15
        assert far.sum() > 1000
        assert (side[far] == -1).mean() < 0.01, (side[far] == -1).mean()


def _batch(distance, side):
    n = len(distance)
    return SdfBatch(points=torch.zeros(n, 3), normals=torch.zeros(n, 3),
                    on_surface=torch.zeros(n, dtype=torch.bool), off_surface=torch.ones(n, dtype=torch.bool),
                    distance=torch.tensor(distance), side=torch.tensor(side))


def test_free_space_term_values():
    config = LossConfig(free_space_weight=2.0, free_space_margin=0.1)
    batch = _batch([0.5, 0.5, 0.5, 0.05], [1.0, -1.0, 0.0, 0.0])
    sdf = torch.tensor([0.1, 0.1, -0.3, -1.0])
    grad = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    terms = sdf_losses(batch, sdf, grad, config)
    # outside: 0.5-0.1-0.1 = 0.3; inside with f = +0.1: 0.5-0.1+0.1 = 0.5; unknown: 0.4-0.3 = 0.1;
    # within the margin (where the pool gives no side): 0, whatever f is
    assert terms["free"].item() == pytest.approx(2.0 * (0.3 + 0.5 + 0.1 + 0.0) / 4)
    assert "free" not in sdf_losses(batch, sdf, grad, LossConfig(free_space_weight=0.0))


def test_off_surface_term_never_holds_f_on_the_wrong_side():
    """Where the side is known, exp(-alpha |f|) would push a wrong-signed f further from zero
    (a pocket of the wrong sign held against the free-space term: the rocker arm's bubble);
    exp(-alpha max(s f, 0)) has no gradient there and pushes a right-signed f as before."""
    config = LossConfig(off_surface_weight=1.0, off_surface_alpha=100.0, free_space_weight=0.0)
    batch = _batch([0.5, 0.5, 0.5], [1.0, -1.0, 0.0])
    sdf = torch.tensor([-0.01, -0.01, -0.01], requires_grad=True)
    grad = torch.tensor([[1.0, 0.0, 0.0]] * 3)
    (d_sdf,) = torch.autograd.grad(sdf_losses(batch, sdf, grad, config)["off"], sdf)
    assert d_sdf[0].item() == 0.0  # outside but f < 0: no push either way
    assert d_sdf[1].item() > 0.0  # inside and f < 0: descent makes f more negative, as |f| did
    assert d_sdf[2].item() == pytest.approx(d_sdf[1].item())  # side unknown: |f| as before


def test_unsupported_area_sees_a_synthetic_ghost():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    cloud, _ = trimesh.sample.sample_surface(sphere, 20_000, seed=1)
    clean = unsupported_area(sphere, cloud)
    assert clean["unsupported@1%"] < 0.01 and clean["unsupported@2%"] == 0.0  # gaps of a random sample
    ghost = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    ghost.apply_translation([3.0, 0.0, 0.0])  # far from every input point
    both = trimesh.util.concatenate([sphere, ghost])
    share = ghost.area / both.area  # 0.2
    metrics = unsupported_area(both, cloud)
    for key in ("unsupported@2%", "unsupported@5%"):
        assert metrics[key] == pytest.approx(share, abs=0.01)
    assert metrics["support_mean_rel"] > share * 2.0 / np.linalg.norm(cloud.max(0) - cloud.min(0))


def test_evaluate_input_reports_unsupported_area(tmp_path):
    """`sdfrecon evaluate MESH --reference REF --input CLOUD`: the ghost's share, in the JSON."""
    import json

    from sdfrecon.cli import main
    from sdfrecon.io import PointCloud, save_mesh, save_point_cloud

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    ghost = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    ghost.apply_translation([3.0, 0.0, 0.0])
    both = trimesh.util.concatenate([sphere, ghost])
    points, _ = trimesh.sample.sample_surface(sphere, 20_000, seed=1)
    mesh, cloud, report = tmp_path / "ghost.ply", tmp_path / "cloud.xyz", tmp_path / "m.json"
    save_mesh(mesh, np.asarray(both.vertices), np.asarray(both.faces))
    save_point_cloud(cloud, PointCloud(points, None))
    assert main(["evaluate", str(mesh), "--reference", str(cloud), "--input", str(cloud),
                 "--samples", "20000", "--json", str(report)]) == 0
    metrics = json.loads(report.read_text())["metrics"]
    assert metrics["unsupported@5%"] == pytest.approx(ghost.area / both.area, abs=0.01)
    assert "unsupported" in json.loads(report.read_text())["conventions"]
