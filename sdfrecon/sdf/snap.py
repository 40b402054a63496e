"""Move the extracted mesh onto the input points: the fit's own residual, interpolated.

A trained field does not pass exactly through its training points: f(p_i) is small but not
zero (on the shared bunny, a mean |f| of ~0.025 % of the diagonal, as large as the error of
the whole mesh: docs/accuracy.md). Since f is a signed distance near the surface, f(p_i) > 0
says the zero set lies f(p_i) inside p_i. Each vertex v moves along its unit normal n(v) by
the Gaussian-weighted mean of the residuals of its nearest input points:

    v' = v + n(v) * fade(v) * sum_i w_i f(p_i) / sum_i w_i,  w_i = exp(-|v - p_i|^2 / h(v)^2)

h(v) the cloud's median point spacing s, or the distance to v's nearest point where that is
larger (a gap in a random sample), so only the points around a vertex speak; fade(v) = 1 up
to 3 s from the nearest point and falls off beyond it, so a vertex far from every point (a
hole's cap, the back of a single-view scan) stays where it is. One Gauss-Newton step of the
point-to-surface distance with a local kernel, at the cost of one forward pass over the
cloud and one k-d tree query.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from sdfrecon.sdf.extract import FieldFn, evaluate, field_evaluator, field_normals
from sdfrecon.sdf.sampling import median_spacing

log = logging.getLogger(__name__)
CAP_VOXELS = 0.51
"""A vertex moves at most this many voxels (2 / (resolution - 1)): 0.004 in the unit box at
the default 256^3, the cap the snap was measured with, and the same fraction at any grid."""


def snap_cap(resolution: int) -> float:
    """The largest move of :func:`snap_to_points` on a resolution^3 grid over [-1, 1]^3."""
    return CAP_VOXELS * 2.0 / (resolution - 1)


def snap_to_points(fn: FieldFn, vertices: np.ndarray, points: np.ndarray, device: torch.device,
                   chunk_size: int, neighbours: int = 8, max_step: float = 0.004,
                   faces: np.ndarray | None = None) -> np.ndarray:
    """Vertices (V, 3) moved along the field's normals by the interpolated residual f at
    ``points`` (N, 3), both in normalised units; returns (V, 3) float64. A move is capped at
    ``max_step`` (about half a voxel: :func:`snap_cap` of the grid; the default is the
    default 256^3 grid's), so no face can fold over. With the
    mesh's ``faces`` (F, 3), faces that the moves make intersect (two sheets closer than a
    voxel moving towards each other, a tight fold: the ant's head had six such pairs) get
    their vertices back (:func:`untangle`)."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    residual = evaluate(field_evaluator(fn), points.astype(np.float32), device, chunk_size)
    tree = cKDTree(points)
    spacing = median_spacing(points, tree)
    k = min(neighbours, len(points))
    dist, index = tree.query(vertices, k=k, workers=-1)
    dist, index = dist.reshape(len(vertices), k), index.reshape(len(vertices), k)
    spacing = max(spacing, 1e-9)
    h = np.maximum(spacing, dist[:, :1])
    weight = np.exp(-((dist / h) ** 2))
    fade = np.exp(-((np.maximum(dist[:, 0] - 3.0 * spacing, 0.0) / spacing) ** 2))
    offset = fade * (weight * residual[index]).sum(axis=1) / weight.sum(axis=1)
    offset = np.clip(offset, -max_step, max_step)
    normals = field_normals(fn, vertices, device, chunk_size).astype(np.float64)
    vertices = np.asarray(vertices, dtype=np.float64)
    moved = vertices + offset[:, None] * normals
    return moved if faces is None else untangle(vertices, moved, faces)


def untangle(before: np.ndarray, after: np.ndarray, faces: np.ndarray, rounds: int = 4) -> np.ndarray:
    """``after`` (V, 3), a move of the vertices ``before`` (V, 3) of a mesh without
    self-intersections, with the vertices of every pair of faces (F, 3) that now intersect put
    back where they were, round after round (a vertex put back can meet a moved neighbour);
    ``before`` whole if the rounds do not suffice (with a warning giving the count)."""
    from sdfrecon.sdf.meshing import self_intersecting_pairs

    after = after.copy()
    for _ in range(rounds):
        pairs = self_intersecting_pairs(after, faces)
        if len(pairs) == 0:
            return after
        back = np.unique(faces[pairs.ravel()])
        after[back] = before[back]
    left = len(self_intersecting_pairs(after, faces))
    if left == 0:
        return after
    log.warning("the snap to the input points still made %d pair(s) of faces intersect after "
                "%d rounds of putting vertices back: kept the mesh unsnapped", left, rounds)
    return before.copy()

