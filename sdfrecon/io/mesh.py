"""Mesh files through trimesh: atomic writes, and reads that fail with one clear sentence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io.atomic import atomic_write, check_writable
from sdfrecon.io.pointcloud import check_input_file

if TYPE_CHECKING:
    import trimesh

MESH_SUFFIXES: tuple[str, ...] = (".obj", ".ply", ".stl", ".glb", ".off")
# The trimesh exporter option that writes vertex normals; STL and OFF cannot carry them.
_NORMALS_OPTION = {".obj": "include_normals", ".ply": "vertex_normal", ".glb": "include_normals"}


def save_mesh(path: str | Path, vertices: np.ndarray, faces: np.ndarray,
              vertex_normals: np.ndarray | None = None, overwrite: bool = False) -> None:
    """Write a triangle mesh in the format named by the suffix, atomically.

    vertices (V, 3) float, faces (F, 3) int indices into vertices, vertex_normals (V, 3) or
    None. Normals are written only where the format carries them (obj, ply, glb), and only
    when given: no normals are invented. Binary PLY, binary STL.
    """
    import trimesh

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputError(path, f"unknown mesh format '{path.suffix}' "
                               f"(supported: {', '.join(MESH_SUFFIXES)})")
    check_writable(path, overwrite)
    vertices, faces = _checked_arrays(vertices, faces, vertex_normals)
    mesh = trimesh.Trimesh(vertices, faces, vertex_normals=vertex_normals, process=False)
    options = {}
    if suffix in _NORMALS_OPTION:
        options[_NORMALS_OPTION[suffix]] = vertex_normals is not None
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
        mesh = trimesh.load(str(path), process=False, force="mesh")
    except Exception as error:  # trimesh raises many types for malformed files
        raise InputError(path, f"could not be read as a mesh ({type(error).__name__}: {error})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError(path, "has no faces: it is empty or a point cloud, not a mesh")
    mesh.merge_vertices(merge_tex=True, merge_norm=True)
    return mesh
