"""Snapping the mesh onto the input points by the field's residual (sdf/snap.py)."""

from __future__ import annotations

import numpy as np
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
