"""Mesh files through trimesh: atomic writes, and reads that fail with one clear sentence."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io import ply, text
from sdfrecon.io.atomic import atomic_write, check_writable
from sdfrecon.io.formats import MESH_SUFFIXES, check_input_file, check_mesh_suffix

if TYPE_CHECKING:
    import trimesh

# The trimesh exporter option that writes vertex normals; STL and OFF cannot carry them.
_NORMALS_OPTION = {".obj": "include_normals", ".glb": "include_normals"}
FLOAT32_ONLY = (".stl", ".glb")  # formats that store coordinates as float32, whatever they are
FLOAT32_TOLERANCE = 1e-4  # of the extent: a tenth of a voxel even at resolution 1000


def check_mesh_precision(path: str | Path, low: np.ndarray, high: np.ndarray) -> None:
    """InputError if ``path``'s format (STL, GLB: float32 only) would move the vertices of a
    mesh in the box [low, high] by more than 1e-4 of its size (far from the origin).

    OBJ and OFF get enough decimals and PLY switches to double, so they never lose it.
    """
    path = Path(path)
    if path.suffix.lower() not in FLOAT32_ONLY:
        return
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    extent = float((high - low).max())
    error = float(np.abs(np.concatenate([low, high])).max()) * 2.0**-24  # half a float32 step
    if extent > 0 and error > FLOAT32_TOLERANCE * extent:
        raise InputError(path, f"{path.suffix.lower()[1:].upper()} stores float32 coordinates, which "
                               f"would move the vertices by up to {error:.3g} ({100 * error / extent:.2g} % "
                               "of the shape's size) this far from the origin: write .obj or .ply "
                               "instead, or move the cloud near the origin")


def _decimals(vertices: np.ndarray) -> int:
    """Decimals for text formats: 9 significant digits of the extent (trimesh's default 8
    decimals would flatten a shape 1e-6 in size)."""
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 1.0
    if not extent > 0:
        return 8
    return int(np.clip(np.ceil(9 - np.log10(extent)), 8, 60))


def save_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray,
              vertex_normals: np.ndarray | None = None, overwrite: bool = False) -> None:
    """Write a triangle mesh in the format named by the suffix, atomically.

    vertices (V, 3) float, faces (F, 3) int indices into vertices, vertex_normals (V, 3) or
    None. Normals are written only where the format carries them (obj, ply, glb), and only
    when given: no normals are invented. Binary PLY (double coordinates where float32 would
    lose them), binary STL; OBJ and OFF with 9 significant digits of the extent. STL and GLB
    (float32 only) are refused far from the origin (see :func:`check_mesh_precision`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    check_mesh_suffix(path)
    check_writable(path, overwrite)
    vertices, faces = _checked_arrays(vertices, faces, vertex_normals)
    if len(faces) == 0:
        raise InputError(path, "not written: the mesh is empty (the surface was not found in the "
                               "grid; did training diverge?)")
    check_mesh_precision(path, vertices.min(axis=0), vertices.max(axis=0))
    if suffix == ".ply":  # our writer: double coordinates when float32 would lose them
        with atomic_write(path, overwrite) as tmp:
            normals = None if vertex_normals is None else np.asarray(vertex_normals, np.float32)
            ply.write_ply(tmp, vertices, normals, faces)
        return
    if suffix == ".obj":  # our writer: trimesh's formats each number in Python
        with atomic_write(path, overwrite) as tmp:
            text.write_obj_mesh(tmp, vertices, faces, vertex_normals, _decimals(vertices))
        return
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, vertex_normals=vertex_normals, process=False)
    options: dict = {}
    if suffix in _NORMALS_OPTION:
        options[_NORMALS_OPTION[suffix]] = vertex_normals is not None
    if suffix in (".obj", ".off"):
        options["digits"] = _decimals(vertices)
    with atomic_write(path, overwrite) as tmp:
        mesh.export(tmp, file_type=suffix[1:], **options)


def _checked_arrays(vertices: np.ndarray, faces: np.ndarray,
                    normals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Shapes and index ranges: a caller's mistake here is a bug, so ValueError."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be integers of shape (F, 3), got {faces.dtype} {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(f"face indices must lie in [0, {len(vertices)})")
    if normals is not None and np.shape(normals) != vertices.shape:
        raise ValueError(f"vertex_normals must have shape {vertices.shape}, got {np.shape(normals)}")
    return vertices, faces.astype(np.int64, copy=False)


def load_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a triangle mesh (scenes are concatenated) and merge duplicate vertices.

    ``process=False`` keeps trimesh from changing the mesh behind our back; then
    ``merge_vertices`` joins the copies that OBJ texture seams and flat-shaded exports make,
    so that watertightness and topology are those of the surface. Raises ``InputError`` for
    a missing, unreadable or face-less file.
    """
    import trimesh

    path = Path(path)
    check_input_file(path, MESH_SUFFIXES, "mesh")
    try:
        with warnings.catch_warnings():  # numpy warnings on malformed files: the error says it
            warnings.simplefilter("ignore")
            mesh = trimesh.load(str(path), process=False, force="mesh")
    except Exception as error:  # trimesh raises many types for malformed files
        problem = (str(error).splitlines() or [""])[0][:200]
        raise InputError(path, f"could not be read as a mesh ({type(error).__name__}: {problem})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError(path, "has no faces: it is empty or a point cloud, not a mesh")
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(path, f"has faces that refer to missing vertices (it holds {len(vertices)})")
    if not np.isfinite(vertices).all():
        first = int(np.argmin(np.isfinite(vertices).all(axis=1))) + 1
        raise InputError(path, f"contains NaN or infinite vertex coordinates (first at vertex {first})")
    if np.abs(vertices).max() > np.finfo(np.float32).max / 16:
        raise InputError(path, f"vertex coordinates reach {np.abs(vertices).max():.3g}, beyond what "
                               "float32 holds: scale the mesh down first")
    mesh.merge_vertices(merge_tex=True, merge_norm=True, digits_vertex=_merge_digits(vertices))
    return mesh


def _merge_digits(vertices: np.ndarray) -> int:
    """Decimals at which trimesh merges vertices: its default 8 (1e-8), finer for a tiny
    mesh (so that distinct vertices stay apart), coarser where coordinates x 10^digits would
    overflow trimesh's int64 keys (beyond about 1e10)."""
    largest = float(np.abs(vertices).max()) if len(vertices) else 0.0
    extent = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    digits = 8 if not extent > 0 else max(8, int(np.ceil(12 - np.log10(extent))))
    if largest > 0:
        digits = min(digits, int(np.floor(np.log10(4e18 / largest))))
    return digits
