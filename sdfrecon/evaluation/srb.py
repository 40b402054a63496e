"""Scores in the published protocol of the Surface Reconstruction Benchmark (SRB; Berger et
al.'s scans as released with Deep Geometric Prior), as DiGS's evaluation script
``surface_reconstruction/compute_metrics_srb.py`` (Chumbyte/DiGS) computes them.

The protocol, which every later paper in this family (IGR, SIREN, SAL, PHASE, DiGS, StEik,
...) quotes: draw ``SRB_SAMPLES`` = 1,000,000 points uniformly by area on the reconstructed
mesh; with d(x, Y) the unsquared Euclidean distance from x to the nearest of the points Y,
in the data's original units (no normalisation),

* ``d_C`` = (mean over GT points g of d(g, rec) + mean over samples r of d(r, GT)) / 2,
* ``d_H`` = max(max_g d(g, rec), max_r d(r, GT)),
* ``d_C_scan`` = mean over scan points s of d(s, rec)  (one-sided, "d_C->" in the papers),
* ``d_H_scan`` = max over scan points s of d(s, rec)   (one-sided, "d_H->").

GT is the dense ground-truth point set (``ground_truth/NAME.xyz``), used whole; the scan is
the input (``scans/NAME.ply``), used whole. Every d(., rec) is to the *samples*, not to the
triangles: that is the published convention, and why the count of samples is part of it.
:func:`scan_exact` gives the triangle distances as well, for the tool's own columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.evaluation.metrics import component_distances, sample_surface
from sdfrecon.geometry import exact_tree

if TYPE_CHECKING:
    import trimesh

SRB_SAMPLES = 1_000_000
"""Points sampled on each reconstruction in the published protocol."""
FAR_FRACTION = 0.02
"""A component is *far* when its nearest vertex is farther than this fraction of the scan's
bounding-box diagonal from every scan point (a ghost surface no data supports)."""
ZERO_AREA = 1e-12
"""A face is a *zero-area sliver* when its area is below this fraction of diag^2."""


def srb_distances(rec_points: np.ndarray, gt_points: np.ndarray, scan_points: np.ndarray) -> dict[str, float]:
    """The four published numbers from fixed point sets (all (N, 3), original units).

    rec_points: samples on the reconstruction; gt_points: the dense ground truth;
    scan_points: the input scan. Returns d_C, d_H, d_C_scan, d_H_scan and the directed parts
    of d_C and d_H (``gt_to_rec_mean`` / ``_max``, ``rec_to_gt_mean`` / ``_max``), floats.
    """
    rec_points, gt_points, scan_points = (np.asarray(a, dtype=np.float64)
                                          for a in (rec_points, gt_points, scan_points))
    for name, array in (("rec_points", rec_points), ("gt_points", gt_points), ("scan_points", scan_points)):
        if array.ndim != 2 or array.shape[1] != 3 or len(array) == 0:
            raise ValueError(f"{name} must have shape (N, 3) with N >= 1, got {array.shape}")
    rec_tree = exact_tree(rec_points)  # see exact_tree: fast for samples far from the truth
    gt_to_rec, _ = rec_tree.query(gt_points, k=1, workers=-1)
    rec_to_gt, _ = exact_tree(gt_points).query(rec_points, k=1, workers=-1)
    scan_to_rec, _ = rec_tree.query(scan_points, k=1, workers=-1)
    out = {
        "gt_to_rec_mean": float(np.mean(gt_to_rec)), "rec_to_gt_mean": float(np.mean(rec_to_gt)),
        "gt_to_rec_max": float(np.max(gt_to_rec)), "rec_to_gt_max": float(np.max(rec_to_gt)),
        "d_C_scan": float(np.mean(scan_to_rec)), "d_H_scan": float(np.max(scan_to_rec)),
    }
    out["d_C"] = (out["gt_to_rec_mean"] + out["rec_to_gt_mean"]) / 2.0
    out["d_H"] = max(out["gt_to_rec_max"], out["rec_to_gt_max"])
    return out


def srb_metrics(rec: trimesh.Trimesh, gt_points: np.ndarray, scan_points: np.ndarray,
                samples: int = SRB_SAMPLES, seed: int = 0) -> dict[str, float | int]:
    """:func:`srb_distances` with ``samples`` points drawn on ``rec`` by
    ``sdfrecon.evaluation.metrics.sample_surface(rec, samples, seed)`` (so a test can draw the very same
    points); adds ``srb_samples``, ``srb_seed``, ``gt_points`` and ``scan_points``."""
    rec_points, _ = sample_surface(rec, samples, seed)
    out: dict[str, float | int] = dict(srb_distances(rec_points, gt_points, scan_points))
    out.update({"srb_samples": int(samples), "srb_seed": int(seed), "gt_points": len(gt_points),
                "scan_points": len(scan_points)})
    return out


def scan_exact(rec: trimesh.Trimesh, scan_points: np.ndarray) -> dict[str, float | int]:
    """The tool's own checks of a reconstruction against its input scan (original units).

    * ``d_C_scan_exact`` / ``d_H_scan_exact``: mean / max distance from each scan point to the
      reconstruction's *triangles* (no sampling floor; compare with d_C_scan / d_H_scan);
    * ``far_components``: components whose nearest vertex lies farther than
      :data:`FAR_FRACTION` of the scan's diagonal from every scan point;
    * ``zero_area_faces``: faces with area below :data:`ZERO_AREA` x diag^2 (slivers).
    """
    from sdfrecon.evaluation.scoring import TriangleSurface

    scan_points = np.asarray(scan_points, dtype=np.float64)
    low, high = scan_points.min(axis=0), scan_points.max(axis=0)
    diag = float(np.linalg.norm(high - low))
    distance = TriangleSurface(rec, (low + high) / 2.0).distance(scan_points)
    vertices = np.asarray(rec.vertices, dtype=np.float64)
    faces = np.asarray(rec.faces, dtype=np.int64)
    tri = vertices[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    far = component_distances(vertices, faces, scan_points)
    return {"d_C_scan_exact": float(distance.mean()), "d_H_scan_exact": float(distance.max()),
            "far_components": int(np.count_nonzero(far > FAR_FRACTION * diag)),
            "zero_area_faces": int(np.count_nonzero(area < ZERO_AREA * diag**2)),
            "scan_diag": diag}
