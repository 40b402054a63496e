"""Generate the small clouds committed in data/ (the default of `make reconstruct`).

sample_ellipsoid.xyz: 4,000 points with exact outward normals on an off-centre, tilted,
lopsided ellipsoid (semi-axes 0.6, 0.35, 0.2, centre (1.5, -0.5, 2.0)), in arbitrary units,
so a reconstruction that is shifted, transposed or mis-scaled is visible at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

AXES = np.array([0.6, 0.35, 0.2])
CENTRE = np.array([1.5, -0.5, 2.0])


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
    rot = rotation((0.3, -0.4, 0.8))
    return local @ rot.T + CENTRE, normals @ rot.T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data"))
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    points, normals = ellipsoid_cloud(args.n, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "sample_ellipsoid.xyz"
    header = "# sdfrecon sample: off-centre tilted ellipsoid, x y z nx ny nz (scripts/make_samples.py)"
    np.savetxt(path, np.hstack([points, normals]), fmt="%.7g", header=header[2:], comments="# ")
    print(f"wrote {path} ({len(points)} points)")


if __name__ == "__main__":
    main()
