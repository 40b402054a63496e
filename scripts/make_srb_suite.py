#!/usr/bin/env python3
"""Build a small folder in the SRB release layout from the shared test data, for
``sdfrecon bench --suite srb --data OUT`` where the real benchmark cannot be downloaded.

Writes, atomically, into ``--out``:

* ``scans/bun000.ply`` and ``ground_truth/bun000.xyz``: a REAL case. The scan is the raw
  Stanford range image ``raw_scans/bun000.ply`` copied byte for byte (one view, 40,256
  points, no normals: methods that need normals estimate and orient them); the ground truth
  is ``--truth-points`` area-weighted samples (seeded) of ``meshes/bun_zipper.ply``, which
  is in the same frame (bun.conf gives bun000 the identity transform).
* ``scans/NAME.ply`` and ``ground_truth/NAME.xyz`` for each ``--simulated`` mesh of
  ``meshes/`` (default: fandisk, rocker-arm): a SIMULATED range scan with normals
  (:func:`sdfrecon.bench.scans.simulate_range_scan`: 5 views from above, range noise 0.1 %
  of the diagonal, 2 holes), and samples of the mesh as ground truth.

Usage::

    python scripts/make_srb_suite.py --shared ../shared/data --out out/srb-local
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdfrecon.bench.scans import simulate_range_scan
from sdfrecon.evaluation.metrics import sample_surface
from sdfrecon.io import PointCloud, atomic_write, load_mesh, save_point_cloud


def build(shared: Path, out: Path, simulated: list[str], truth_points: int, seed: int) -> list[str]:
    """Write the suite; returns one line per shape saying what it is."""
    meshes = shared / "meshes"
    (out / "scans").mkdir(parents=True, exist_ok=True)
    (out / "ground_truth").mkdir(parents=True, exist_ok=True)
    lines = []
    raw = shared / "raw_scans" / "bun000.ply"
    with atomic_write(out / "scans" / "bun000.ply", overwrite=True) as tmp:
        tmp.write_bytes(raw.read_bytes())
    bunny = load_mesh(meshes / "bun_zipper.ply")
    truth, _ = sample_surface(bunny, truth_points, seed)
    save_point_cloud(out / "ground_truth" / "bun000.xyz", PointCloud(truth), overwrite=True)
    lines.append(f"bun000: real raw scan {raw} (no normals); ground truth {truth_points} samples of bun_zipper.ply")
    for name in simulated:
        path = next((p for p in meshes.iterdir() if p.stem == name), None)
        if path is None:
            raise SystemExit(f"make_srb_suite: error: no mesh named {name} in {meshes}")
        mesh = load_mesh(path)
        scan = simulate_range_scan(mesh, views=5, resolution=128, noise=0.001, holes=2, seed=seed)
        save_point_cloud(out / "scans" / f"{name}.ply", scan, overwrite=True)
        truth, _ = sample_surface(mesh, truth_points, seed)
        save_point_cloud(out / "ground_truth" / f"{name}.xyz", PointCloud(truth), overwrite=True)
        lines.append(f"{name}: simulated scan of {path.name} ({len(scan)} points with normals); "
                     f"ground truth {truth_points} samples")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make_srb_suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data",
                        help="the shared test data folder (holds meshes/ and raw_scans/)")
    parser.add_argument("--out", type=Path, default=Path("out/srb-local"), help="folder to write")
    parser.add_argument("--simulated", default="fandisk,rocker-arm",
                        help="comma-separated mesh names of meshes/ to scan (empty: none)")
    parser.add_argument("--truth-points", type=int, default=500_000, help="ground-truth samples per shape")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.simulated.split(",") if n.strip()]
    for line in build(args.shared, args.out, names, args.truth_points, args.seed):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
