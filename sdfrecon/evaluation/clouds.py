"""Benchmark point clouds from meshes: area-weighted samples with normals, optional noise
and outliers, all seeded (``sdfrecon sample``).

Random streams: the clean samples are exactly ``sdfrecon.evaluation.metrics.sample_surface(mesh, n,
seed)``; noise and outliers draw from two further streams spawned from the same seed, so
``sample_cloud(mesh, n, s, noise=x).points - sample_cloud(mesh, n, s).points`` is the noise
itself, and adding outliers changes only the replaced rows.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.evaluation.metrics import bbox_diagonal, sample_surface, used_vertices
from sdfrecon.io import PointCloud

if TYPE_CHECKING:
    import trimesh

OUTLIER_BOX_SCALE = 1.1
"""Outliers are uniform in the mesh's bounding box scaled by this factor about its centre
(each side 10 % longer)."""


def outlier_box(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) corners of the box outliers are drawn in: the bounding box of the vertices
    that faces use, scaled by :data:`OUTLIER_BOX_SCALE` about its centre."""
    used = used_vertices(mesh)
    low, high = used.min(axis=0), used.max(axis=0)
    centre, half = (low + high) / 2.0, (high - low) / 2.0 * OUTLIER_BOX_SCALE
    return centre - half, centre + half


def sample_cloud(mesh: trimesh.Trimesh, n: int, seed: int = 0, noise: float = 0.0,
                 outliers: float = 0.0) -> PointCloud:
    """``n`` area-weighted points on ``mesh`` with the unit normals of their faces.

    * ``noise``: isotropic Gaussian offsets of standard deviation ``noise * diag`` per axis
      (diag = bounding-box diagonal of the mesh), i.e. along uniformly random directions;
      the normals stay those of the clean surface. The mean offset length is
      ``noise * diag * sqrt(8 / pi)``, the mean distance to a locally flat surface
      ``noise * diag * sqrt(2 / pi)``.
    * ``outliers``: the fraction of the ``n`` points (rounded to the nearest count) replaced,
      at random rows, by points uniform in :func:`outlier_box`, with random unit normals.
      Outliers get no noise.

    Deterministic for a given mesh and seed (numpy ``default_rng`` streams only). Raises
    ``ValueError`` for n < 1, a negative or non-finite noise, an outlier fraction outside
    [0, 1], a negative seed, or a mesh without surface area.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not (math.isfinite(noise) and noise >= 0.0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if not 0.0 <= outliers <= 1.0:
        raise ValueError(f"outliers must be a fraction in [0, 1], got {outliers}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    points, normals = sample_surface(mesh, n, seed)
    noise_seq, outlier_seq = np.random.SeedSequence(seed).spawn(2)
    if noise > 0.0:
        sigma = noise * bbox_diagonal(mesh)
        points = points + np.random.default_rng(noise_seq).normal(scale=sigma, size=points.shape)
    count = int(round(outliers * n))
    if count:
        rng = np.random.default_rng(outlier_seq)
        rows = rng.choice(n, size=count, replace=False)
        low, high = outlier_box(mesh)
        points[rows] = rng.uniform(low, high, size=(count, 3))
        normals[rows] = _random_directions(rng, count)
    return PointCloud(points, normals.astype(np.float32))


def _random_directions(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` unit vectors uniform on the sphere (normalised Gaussians)."""
    v = rng.normal(size=(count, 3))
    length = np.linalg.norm(v, axis=1)
    while np.any(length < 1e-12):  # probability ~0; keep every vector unit length anyway
        bad = length < 1e-12
        v[bad] = rng.normal(size=(int(bad.sum()), 3))
        length = np.linalg.norm(v, axis=1)
    return v / length[:, None]
