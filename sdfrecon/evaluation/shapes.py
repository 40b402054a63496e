"""Shapes with an exact surface, for samples and tests: the off-centre, tilted, lopsided
ellipsoid of ``data/sample_ellipsoid.xyz`` (``scripts/make_samples.py`` writes that file).

Its semi-axes (0.6, 0.35, 0.2) and centre (1.5, -0.5, 2.0) are in arbitrary units, so a
reconstruction that is shifted, transposed or mis-scaled is visible at once.
"""

from __future__ import annotations

import numpy as np

AXES = np.array([0.6, 0.35, 0.2])
CENTRE = np.array([1.5, -0.5, 2.0])
ANGLES = (0.3, -0.4, 0.8)  # of the ellipsoid's rotation, radians (see rotation)


def rotation(angles: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix (3, 3) from x, y, z angles in radians (applied x, then y, then z)."""
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def ellipsoid_cloud(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 3) and unit outward normals (n, 3) on the sample ellipsoid."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    local = d * AXES
    normals = local / AXES**2  # gradient of sum((x/a)^2)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    rot = rotation(ANGLES)
    return local @ rot.T + CENTRE, normals @ rot.T
