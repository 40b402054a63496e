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
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from sdfrecon.sdf.extract import FieldFn, evaluate, field_evaluator, field_normals

if TYPE_CHECKING:
    from sdfrecon.geometry import CloudIndex

log = logging.getLogger(__name__)
CAP_VOXELS = 0.51
"""A vertex moves at most this many voxels (2 / (resolution - 1)): 0.004 in the unit box at
the default 256^3, the cap the snap was measured with, and the same fraction at any grid."""


def snap_cap(resolution: int) -> float:
    """The largest move of :func:`snap_offsets` on a resolution^3 grid over [-1, 1]^3."""
    return CAP_VOXELS * 2.0 / (resolution - 1)


def snap_offsets(vertices: np.ndarray, index: CloudIndex,
                 field_at: Callable[[np.ndarray], np.ndarray], neighbours: int = 8,
                 max_step: float = 0.004) -> np.ndarray:
    """How far each vertex (V, 3) moves along its unit normal: (V,) float64, the
    Gaussian-weighted residual f at its ``neighbours`` nearest points of ``index``
    (normalised units), faded far from every point and capped at ``max_step``.
    field_at: points (M, 3) float32 -> f (M,); asked only at the points some vertex uses (on
    a cloud much denser than the mesh, a fraction of them)."""
    spacing = index.spacing
    k = min(neighbours, len(index.points))
    dist, nearest = index.tree.query(vertices, k=k, workers=-1)
    dist, nearest = dist.reshape(len(vertices), k), nearest.reshape(len(vertices), k)
    used, slot = np.unique(nearest, return_inverse=True)
    residual = np.asarray(field_at(index.points[used].astype(np.float32)), dtype=np.float64)
    residual = residual[slot.reshape(nearest.shape)]
    h = np.maximum(spacing, dist[:, :1])
    weight = np.exp(-((dist / h) ** 2))
    fade = np.exp(-((np.maximum(dist[:, 0] - 3.0 * spacing, 0.0) / spacing) ** 2))
    offset = fade * (weight * residual).sum(axis=1) / weight.sum(axis=1)
    return np.clip(offset, -max_step, max_step)


def snap_to_points(fn: FieldFn, vertices: np.ndarray, points: np.ndarray | CloudIndex,
                   device: torch.device, chunk_size: int, neighbours: int = 8,
                   max_step: float = 0.004, faces: np.ndarray | None = None,
                   normals: np.ndarray | None = None) -> np.ndarray:
    """Vertices (V, 3) moved along the field's normals by the interpolated residual f at
    ``points`` (N, 3, or their :class:`~sdfrecon.geometry.CloudIndex`), both in normalised
    units; returns (V, 3) float64. A move is capped at ``max_step`` (about half a voxel:
    :func:`snap_cap` of the grid; the default is the default 256^3 grid's), so no face can
    fold over. With the mesh's ``faces`` (F, 3), faces
    that the moves make intersect (two sheets closer than a voxel moving towards each
    other, a tight fold: the ant's head had six such pairs) get their vertices back
    (:func:`untangle`). normals: the field's unit normals at the vertices, when the caller
    has them (they are the mesh's normals too: computed once)."""
    from sdfrecon.geometry import CloudIndex

    index = points if isinstance(points, CloudIndex) else CloudIndex.of(points)
    field = field_evaluator(fn)
    offset = snap_offsets(vertices, index, lambda x: evaluate(field, x, device, chunk_size),
                          neighbours, max_step)
    if normals is None:
        normals = field_normals(fn, vertices, device, chunk_size)
    vertices = np.asarray(vertices, dtype=np.float64)
    moved = vertices + offset[:, None] * np.asarray(normals, dtype=np.float64)
    return moved if faces is None else untangle(vertices, moved, faces)


def crowded_faces(vertices: np.ndarray, normals: np.ndarray, faces: np.ndarray, reach: float,
                  neighbours: int = 24, crease: float = 0.3) -> np.ndarray:
    """(F,) bool: the faces (F, 3) with a vertex (V, 3) that has, among its ``neighbours``
    nearest vertices within ``reach``, one whose unit normal (V, 3) turns by more than
    arccos(``crease``) (~73 degrees) from its own: two sheets facing each other (a thin part,
    a tight fold) or a sharp crease. Elsewhere the surface within ``reach`` is one smooth
    sheet, which moves along its normals by less than ``reach`` / 2 cannot fold onto itself:
    there the snap needs no intersection test."""
    from scipy.spatial import cKDTree

    k = min(neighbours + 1, len(vertices))
    dist, nearest = cKDTree(vertices).query(vertices, k=k, distance_upper_bound=reach, workers=-1)
    found = np.isfinite(dist)
    nearest = np.where(found, nearest, np.arange(len(vertices))[:, None])  # missing: itself
    turn = np.einsum("vkc,vc->vk", normals[nearest], normals) < crease
    flagged = (turn & found).any(axis=1)
    return flagged[faces].any(axis=1)


def untangle(before: np.ndarray, after: np.ndarray, faces: np.ndarray, rounds: int = 4,
             candidates: np.ndarray | None = None) -> np.ndarray:
    """``after`` (V, 3), a move of the vertices ``before`` (V, 3) of a mesh without
    self-intersections, with the vertices of every pair of faces (F, 3) that now intersect put
    back where they were, round after round (a vertex put back can meet a moved neighbour);
    ``before`` whole if the rounds do not suffice (with a warning giving the count).
    candidates: (F,) bool, the only faces that can take part in an intersection (:func:`crowded_faces`); the others are not tested."""
    from sdfrecon.sdf.meshing import self_intersecting_pairs

    tested = np.arange(len(faces)) if candidates is None else np.flatnonzero(candidates)
    if len(tested) < 2:
        return after.copy()
    after = after.copy()
    for _ in range(rounds):
        pairs = tested[self_intersecting_pairs(after, faces[tested])]
        if len(pairs) == 0:
            return after
        back = np.unique(faces[pairs.ravel()])
        after[back] = before[back]
    left = len(self_intersecting_pairs(after, faces[tested]))
    if left == 0:
        return after
    log.warning("the snap to the input points still made %d pair(s) of faces intersect after "
                "%d rounds of putting vertices back: kept the mesh unsnapped", left, rounds)
    return before.copy()
