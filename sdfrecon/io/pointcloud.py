"""Point cloud files: read (.xyz .txt .pts .ply .pcd .obj .off .npy .npz), check, write.

We parse the formats ourselves: Open3D reads only three columns of a six-column .xyz and
trimesh takes the last three as colours, and both reject or misread raw scan PLY files.
The readers live in one module per format family (:mod:`~sdfrecon.io.text`,
:mod:`~sdfrecon.io.ply`, :mod:`~sdfrecon.io.pcd`, :mod:`~sdfrecon.io.arrays`), the suffix
table in :mod:`~sdfrecon.io.formats`; every reader ends in ``validate_cloud`` here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io.atomic import atomic_write
from sdfrecon.io.formats import POINT_CLOUD_SUFFIXES, READERS, WRITERS, check_input_file
from sdfrecon.io.types import PointCloud

log = logging.getLogger(__name__)

__all__ = ["POINT_CLOUD_SUFFIXES", "PointCloud", "check_input_file", "load_point_cloud",
           "save_point_cloud", "validate_cloud"]


# --- checks --------------------------------------------------------------------------------


def validate_cloud(path: str | Path, points: np.ndarray, normals: np.ndarray | None,
                   min_points: int = 10, lines: np.ndarray | None = None) -> PointCloud:
    """Check freshly read arrays and return a ``PointCloud``; raise ``InputError`` if unusable.

    Rejects: no points, NaN/Inf coordinates, fewer than ``min_points`` distinct points, all
    points the same, coordinates beyond float32's range, all points on a line or a plane (no
    volume), and coordinates so far from the origin for their extent that float32 cannot
    tell them apart. Normals are made unit length; if any is NaN, infinite or zero-length,
    all normals are dropped (``None``) with a warning, because a cloud carries either a
    normal for every point or none. ``lines``: the file line of each point (text formats),
    so that a message can name it.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    if len(points) == 0:
        raise InputError(path, "contains no points")
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        line = None if lines is None else int(lines[first])
        raise InputError(path, f"contains NaN or infinite coordinates (first at point {first + 1})",
                         line=line)
    distinct = _count_distinct(points, min_points)
    if distinct == 1 and len(points) > 1:
        raise InputError(path, f"all {len(points)} points are the same point: "
                               "there is no volume to reconstruct")
    if distinct < min_points:
        raise InputError(path, f"has only {distinct} distinct point{'s' * (distinct != 1)}; "
                               f"at least {min_points} are needed")
    _check_range(path, points)
    _check_volume(path, points)
    _check_precision(path, points)
    return PointCloud(points, _unit_normals(path, normals))


def _count_distinct(points: np.ndarray, needed: int) -> int:
    """Distinct rows, looking at a prefix first: sorting a million rows is the slow part."""
    head = points[: max(10 * needed, 1000)] + 0.0  # + 0.0 makes -0.0 equal to 0.0
    found = len(np.unique(head, axis=0))
    if found >= needed or len(head) == len(points):
        return found
    return len(np.unique(points + 0.0, axis=0))


FLOAT32_MAX = float(np.finfo(np.float32).max)
SMALLEST_EXTENT = 1e-30  # float32 numbers stop at 1.2e-38 (normal) and a mesh needs ~1e-4 of it


def _check_range(path: str | Path, points: np.ndarray) -> None:
    """Meshes, checkpoints and most tools store float32: the cloud must fit its range."""
    largest = float(np.abs(points).max())
    if largest > FLOAT32_MAX / 16:  # some head room for the padded box around the cloud
        raise InputError(path, f"coordinates reach {largest:.3g}, beyond what float32 holds "
                               f"({FLOAT32_MAX:.3g}): scale the cloud down first")
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    if extent < SMALLEST_EXTENT:
        raise InputError(path, f"the cloud spans only {extent:.3g}, too small for float32: "
                               "scale the cloud up first")


def _check_volume(path: str | Path, points: np.ndarray) -> None:
    """Singular values of the centred points: a tiny one means a flat (plane or line) cloud.

    The points are divided by their largest centred coordinate first, so that neither huge
    nor tiny coordinates overflow or underflow in the 3 x 3 product.
    """
    centred = points - points.mean(axis=0)
    largest = float(np.abs(centred).max())
    if largest == 0.0:
        raise InputError(path, "all points are the same point: there is no volume to reconstruct")
    centred /= largest
    variances = np.linalg.eigvalsh(centred.T @ centred)[::-1]
    spread = np.sqrt(np.clip(variances, 0.0, None))
    if spread[1] / spread[0] < 1e-6:
        raise InputError(path, "all points lie on a line: there is no volume to reconstruct")
    if spread[2] / spread[0] < 1e-6:
        raise InputError(path, "all points lie on a plane: there is no volume to reconstruct")


def _check_precision(path: str | Path, points: np.ndarray) -> None:
    """float32 keeps 7 digits: the shape must not be lost in the offset from the origin."""
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max())
    offset = float(np.abs((low + high) / 2).max())
    if offset > 1e6 * extent:
        raise InputError(path, f"coordinates are centred {offset:.3g} from the origin but span only "
                               f"{extent:.3g}: float32 cannot resolve the shape; "
                               "move the cloud near the origin first")


def _unit_normals(path: str | Path, normals: np.ndarray | None) -> np.ndarray | None:
    """Unit-length float32 normals, or None (with a warning) if any normal is unusable."""
    if normals is None:
        return None
    normals = np.array(normals, dtype=np.float64)  # a copy: it is scaled in place below
    with np.errstate(invalid="ignore", over="ignore"):
        largest = np.abs(normals).max(axis=1)  # divide first: no overflow or underflow
        good = np.isfinite(largest) & (largest > 0.0)
        bad = len(normals) - int(np.count_nonzero(good))
        if bad:  # a cloud has a normal for every point or none: drop them all
            most = " (more than half)" if 2 * bad > len(normals) else ""
            log.warning("%s: %d of %d normals%s are NaN, infinite or zero-length; ignoring all "
                        "the normals in this file", path, bad, len(normals), most)
            return None
        normals /= largest[:, None]
        length = np.linalg.norm(normals, axis=1)
        normals /= length[:, None]
        raw_length = length * largest
    median = float(np.median(raw_length))
    if not 0.9 <= median <= 1.1:
        log.warning("%s: the normals are not unit length (median length %.3g): are the last "
                    "three columns colours? They are used as normals after normalising",
                    path, median)
    return normals.astype(np.float32)


# --- public --------------------------------------------------------------------------------


def load_point_cloud(path: str | Path, min_points: int = 10) -> PointCloud:
    """Read a point cloud in any of ``POINT_CLOUD_SUFFIXES`` and validate it.

    Points keep the file's own units (no normalisation here). Raises ``InputError`` with a
    one-sentence problem for anything unusable (see ``validate_cloud``).
    """
    path = Path(path)
    check_input_file(path, POINT_CLOUD_SUFFIXES, "point cloud")
    try:
        if path.stat().st_size == 0:
            raise InputError(path, "contains no points")
        with np.errstate(invalid="ignore", over="ignore"):  # signalling NaNs in binary data
            points, normals, lines = READERS[path.suffix.lower()](path)
    except OSError as error:
        raise InputError(path, f"could not be read ({error.strerror or error})") from None
    except MemoryError:
        raise InputError(path, "is too large to read into memory") from None
    return validate_cloud(path, points, normals, min_points, lines)


def save_point_cloud(path: str | Path, cloud: PointCloud, overwrite: bool = False) -> None:
    """Write ``cloud`` in the format named by the suffix, atomically (see ``atomic_write``)."""
    path = Path(path)
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise InputError(path, f"cannot write point clouds as '{path.suffix}' "
                               f"(supported: {', '.join(WRITERS)})")
    with atomic_write(path, overwrite) as tmp:  # refuses an existing file before writing
        writer(tmp, cloud)

