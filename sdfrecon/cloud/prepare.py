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
    training); info says what cleaning removed and whether normals were estimated. ``name``
    (the file, or what the points are) appears in messages; ``stages`` times clean and normals.
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
    return PointCloud(points, normals), info
