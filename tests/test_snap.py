"""Snapping the mesh onto the input points by the field's residual (sdf/snap.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from sdfrecon.sdf.snap import snap_to_points


def _offset_sphere(radius: float):
    """The exact SDF of a sphere of ``radius``: its zero set misses points on another sphere
    by a known, constant distance (the residual a fit would leave)."""
    return lambda x: x.norm(dim=-1) - radius


def test_snap_moves_the_zero_set_onto_the_points():
    points, _ = trimesh.sample.sample_surface(trimesh.creation.icosphere(5, radius=0.5), 20_000, seed=0)
    field = _offset_sphere(0.502)  # zero set 0.002 outside the points: f(p) = -0.002
    mesh = trimesh.creation.icosphere(4, radius=0.502)
    moved = snap_to_points(field, np.asarray(mesh.vertices), points, torch.device("cpu"), 4096)
    radius = np.linalg.norm(moved, axis=1)
    assert np.abs(radius - 0.5).max() < 2e-4  # from 2e-3 before
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 0.5).min() > 1.9e-3


def test_snap_leaves_vertices_far_from_points_and_caps_the_step():
    """A hole's cap (no point near) stays put; no vertex moves farther than max_step."""
    cap = np.array([[0.0, 0.0, 0.502]])
    points, _ = trimesh.sample.sample_surface(trimesh.creation.icosphere(5, radius=0.5), 20_000, seed=0)
    points = points[points[:, 2] < 0.2]  # no point within 0.3 of the cap vertex
    moved = snap_to_points(_offset_sphere(0.502), cap, points, torch.device("cpu"), 4096)
    np.testing.assert_allclose(moved, cap, atol=1e-12)
    far = _offset_sphere(0.6)  # residual 0.1 at every point: capped
    ring = np.array([[0.5, 0.0, 0.0]])  # among the points, residual -0.1 each
    stepped = snap_to_points(far, ring, points, torch.device("cpu"), 4096, max_step=0.004)
    assert abs(np.linalg.norm(stepped - ring) - 0.004) < 1e-9


class _Sphere(torch.nn.Module):
    """The exact SDF of a sphere of ``radius`` as a network (what mesh_from_model meshes)."""

    def __init__(self, radius: float):
        super().__init__()
        self.radius = radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=-1) - self.radius


def test_the_snap_cap_follows_the_voxel():
    """0.004 at the default 256^3 (as before), 0.51 voxel at any grid: on a 64^3 grid a residual
    of 0.01 is followed whole, and one of 0.03 is cut at 0.51 voxel (0.0162), not at 0.004."""
    from sdfrecon.cloud.normalize import Normalization
    from sdfrecon.config import ExtractConfig, ReconstructConfig
    from sdfrecon.reconstruction import mesh_from_model
    from sdfrecon.sdf.fit import SdfModel

    cap = 0.51 * 2 / 63
    # sparse enough (spacing ~0.013) that 0.03 off lies within the snap's reach (3 spacings)
    points, _ = trimesh.sample.sample_surface(trimesh.creation.icosphere(5, radius=0.5), 5_000, seed=0)
    config = ExtractConfig(resolution=64, keep_components="all")  # the 0.03 sphere is "far"
    for offset, expected in ((0.01, 0.0), (0.03, 0.03 - cap)):
        model = SdfModel(_Sphere(0.5 + offset), Normalization((0.0, 0.0, 0.0), 1.0), ReconstructConfig())
        mesh = mesh_from_model(model, config, torch.device("cpu"), support=points)
        radius = np.linalg.norm(mesh.vertices, axis=1)
        # marching cubes cuts the chords of a 64^3 grid: ~1e-4 inside the sphere
        assert np.abs(np.median(radius) - 0.5 - expected) < 5e-4, (offset, np.median(radius))
    from sdfrecon.sdf.snap import snap_cap

    assert snap_cap(256) == 0.004 and snap_cap(64) == pytest.approx(cap)


def test_untangle_says_when_it_drops_the_snap(caplog):
    """Rounds run out: the mesh stays unsnapped, and a warning says how many pairs crossed."""
    import logging

    from sdfrecon.sdf.meshing import self_intersecting_pairs
    from sdfrecon.sdf.snap import untangle

    inner, outer = trimesh.creation.icosphere(2, radius=0.5), trimesh.creation.icosphere(2, radius=0.503)
    mesh = trimesh.util.concatenate([inner, outer])
    before, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    after = before.copy()
    through = len(inner.vertices)  # a vertex of the outer sheet pushed through the inner one
    after[through] *= 0.97
    pairs = len(self_intersecting_pairs(after, faces))
    assert pairs > 0
    with caplog.at_level(logging.WARNING):
        kept = untangle(before, after, faces, rounds=0)
    np.testing.assert_array_equal(kept, before)
    assert [r.getMessage() for r in caplog.records] == [
        f"the snap to the input points still made {pairs} pair(s) of faces intersect after 0 "
        "rounds of putting vertices back: kept the mesh unsnapped"]
