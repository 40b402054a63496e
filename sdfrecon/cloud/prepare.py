"""The cloud as training takes it: read, cleaned, with unit oriented normals (estimated where
the file has none), as ``reconstruct``, ``poisson`` and the API all prepare it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.timing import NoStages, Stages

if TYPE_CHECKING:
    from sdfrecon.config import ReconstructConfig

log = logging.getLogger("sdfrecon")


def load_cloud(path: Path, config: ReconstructConfig, stages: Stages | None = None):
    """Read, clean and equip the cloud with normals as config asks (see :func:`prepare_cloud`)."""
    from sdfrecon.io import load_point_cloud

    stages = stages or NoStages()
    with stages("read"):
        cloud = load_point_cloud(path)
    return prepare_cloud(cloud, config, path, stages)


def prepare_cloud(cloud, config: ReconstructConfig, name: str | Path, stages: Stages | None = None):
    """Clean a checked :class:`~sdfrecon.io.PointCloud` and equip it with normals as config asks.

    Returns (PointCloud, info): normals are unit (N, 3) float32 (zeros for normal-free
    training); info says what cleaning removed, whether normals were estimated, the noise
    estimated from the points and whether they were denoised (``config.clean.denoise``).
    ``name`` (the file, or what the points are) appears in messages; ``stages`` times clean,
    normals and noise.
    """
    from sdfrecon.cloud.clean import clean_cloud
    from sdfrecon.cloud.orientation import orient_normals
    from sdfrecon.io import PointCloud

    stages = stages or NoStages()
    file_normals = cloud.normals
    if file_normals is not None and config.normals.normals_mode == "auto":
        # before cleaning, which averages normals: warns when it flips (or drops) any
        with stages("normals"):
            file_normals = orient_normals(name, cloud.points, file_normals,
                                          orientation=config.normals.normals_orientation)
    with stages("clean"):
        points, normals, info = clean_cloud(cloud.points, file_normals, config.clean)
    mode = config.normals.normals_mode
    info["normals"] = "file"
    if mode == "free":
        info["normals"] = "none (normal-free training)"
        normals = np.zeros_like(points, dtype=np.float32)
    elif mode == "estimate" or normals is None:
        from sdfrecon.cloud.normals import estimate_normals

        why = ("has no normals" if cloud.normals is None else "normals ignored (--normals-mode estimate)"
               if mode == "estimate" else "has no usable normals")
        log.info("%s %s: estimating and orienting them (k=%d)", name, why, config.normals.normal_neighbours)
        with stages("normals"):
            normals, info["normals"] = estimate_normals(points, config.normals), "estimated"
    with stages("noise"):
        points, normals = _denoised(points, normals, mode != "free", config, name, info)
    return PointCloud(points, normals), info


def _denoised(points: np.ndarray, normals: np.ndarray, oriented: bool, config: ReconstructConfig,
              name: str | Path, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """The points (N, 3) and normals (N, 3), denoised as config.clean.denoise asks; the noise
    estimate, and whether the points moved, go into ``info`` and the log.

    Each point is fitted with the neighbours its normal agrees with when the normals mean
    something (``oriented``: not normal-free training), so the two sides of a thin part stay
    apart. A cloud of more than ``denoise_max_points`` is measured on a random subset of
    that many points, and denoised as that subset (one training draws ~2M surface samples in
    all; fitting 96 neighbours around each of 2M points would cost minutes); clean, it stays
    whole."""
    from scipy.spatial import cKDTree

    from sdfrecon.cloud.noise import denoise, estimate_noise

    clean = config.clean
    if clean.denoise == "off" or len(points) < 8:
        return points, normals
    subset = points
    if len(points) > clean.denoise_max_points:
        rows = np.sort(np.random.default_rng(0).choice(len(points), clean.denoise_max_points, replace=False))
        subset = points[rows]
    tree = cKDTree(subset)
    estimate = estimate_noise(subset, tree, check_above=clean.denoise_threshold)
    info["noise"] = estimate.as_dict()
    above = estimate.per_spacing > clean.denoise_threshold
    run = clean.denoise == "on" or (above and estimate.is_noise)
    info["denoised"] = bool(run)
    k = clean.denoise_neighbours or 2 * estimate.neighbours
    if run:
        why = f": denoising (quadric fits over {k} neighbours, {clean.denoise_rounds} round(s))"
    elif above:
        why = (f", but it grows {estimate.growth:.2f}x when the neighbourhood doubles: the "
               "shape's curvature or sparse sampling, not noise; the points are used as they are "
               "(--denoise on forces it)")
    else:
        why = f"; under {clean.denoise_threshold:g} spacings, the points are used as they are"
    # a clean cloud's estimate is in summary.json and --verbose; a noisy one's always shows
    log.log(logging.INFO if above or run else logging.DEBUG,
            "%s: estimated noise %.3g (%.2f %% of the diagonal, %.2f point spacings)%s", name,
            estimate.sigma, 100 * estimate.relative, estimate.per_spacing, why)
    if not run:
        return points, normals
    if subset is not points:
        log.info("%s: denoising a random %d of its %d points", name, len(subset), len(points))
        normals = normals[rows]
    moved = denoise(subset, tree, k, clean.denoise_rounds, normals if oriented else None)
    return moved, normals
