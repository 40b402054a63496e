"""Clouds as numeric arrays: .npy and .npz files, and the column conventions every reader
ends in (points x y z, normals nx ny nz or normal_x normal_y normal_z)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError

if TYPE_CHECKING:
    from sdfrecon.io.types import PointCloud

# (points (N, 3) float64, normals (N, 3) or None, file line of each point (N,) or None)
Arrays = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]


def xyz_normals(path: Path, columns: dict[str, np.ndarray],
                what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Points from columns x y z; normals from nx ny nz or normal_x normal_y normal_z."""
    if not all(axis in columns for axis in "xyz"):
        raise InputError(path, f"has no x, y and z {what}")
    points = np.column_stack([columns[axis] for axis in "xyz"]).astype(np.float64)
    for names in (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z")):
        if all(name in columns for name in names):
            return points, np.column_stack([columns[name] for name in names]).astype(np.float64)
    return points, None


def read_npy(path: Path) -> Arrays:
    """A (N, 3) or (N, 6) numeric array (x y z [nx ny nz])."""
    return (*split_columns(path, _numpy_load(path, lambda f: f)), None)


def read_npz(path: Path) -> Arrays:
    """Array ``points`` (else the first array) and optional ``normals``."""
    def take(archive: np.lib.npyio.NpzFile | np.ndarray) -> tuple:
        if isinstance(archive, np.ndarray):  # an .npy file named .npz
            return archive, None
        if not archive.files:
            raise InputError(path, "contains no arrays")
        key = "points" if "points" in archive.files else archive.files[0]
        return archive[key], archive["normals"] if "normals" in archive.files else None

    array, normals = _numpy_load(path, take)
    points, from_columns = split_columns(path, array)
    if normals is None:
        return points, from_columns, None
    numeric = np.issubdtype(normals.dtype, np.integer) or np.issubdtype(normals.dtype, np.floating)
    if normals.shape != points.shape or not numeric:
        raise InputError(path, f"has a 'normals' array of {normals.dtype} and shape "
                               f"{normals.shape}: expected numbers of shape {points.shape} like its points")
    return points, normals.astype(np.float64), None


def _numpy_load(path: Path, use: Callable) -> object:
    """``np.load`` without pickles; ``use`` runs while an .npz archive is still open."""
    try:
        with open(path, "rb") as f:  # closed here even when numpy fails half-way
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    return use(loaded)
            return use(loaded)
    except InputError:
        raise
    except MemoryError:
        raise InputError(path, "is too large to read into memory") from None
    except Exception as error:  # numpy's parser raises many types for damaged headers
        text = (str(error).splitlines() or [""])[0][:200] or type(error).__name__
        raise InputError(path, f"could not be read as a numpy file ({text})") from None


def split_columns(path: Path, array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Points and normals from a (N, 3) or (N, 6) array."""
    if not isinstance(array, np.ndarray):
        raise InputError(path, "holds several arrays (.npz), not one .npy array")
    numeric = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.ndim != 2 or array.shape[1] not in (3, 6) or not numeric:
        raise InputError(path, f"holds a {array.dtype} array of shape {array.shape}: "
                               "expected numbers of shape (N, 3) or (N, 6)")
    array = array.astype(np.float64, copy=False)
    return array[:, :3], (array[:, 3:] if array.shape[1] == 6 else None)


def as_table(cloud: PointCloud) -> np.ndarray:
    """(N, 3) or (N, 6) float64: points, then normals if any."""
    if cloud.normals is None:
        return cloud.points
    return np.hstack([cloud.points, cloud.normals.astype(np.float64)])


def write_npy(path: Path, cloud: PointCloud) -> None:
    """(N, 3) or (N, 6) float64; points exact."""
    with open(path, "wb") as f:
        np.save(f, as_table(cloud))


def write_npz(path: Path, cloud: PointCloud) -> None:
    """``points`` float64 and, if present, ``normals`` float32."""
    arrays = {"points": cloud.points}
    if cloud.normals is not None:
        arrays["normals"] = cloud.normals
    with open(path, "wb") as f:
        np.savez(f, **arrays)
