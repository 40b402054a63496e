"""Generate the small clouds committed in data/ (the default of `make reconstruct`).

sample_ellipsoid.xyz: 4,000 points with exact outward normals on the off-centre, tilted,
lopsided ellipsoid of :mod:`sdfrecon.evaluation.shapes`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sdfrecon.evaluation.shapes import ellipsoid_cloud


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
