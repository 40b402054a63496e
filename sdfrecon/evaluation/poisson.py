"""Baselines to compare the SIREN reconstruction with: screened Poisson (Kazhdan & Hoppe 2013)
through Open3D (``sdfrecon poisson``).

Poisson runs with one thread (``n_threads=1``): the octree solver's result then depends only
on its input, so two runs give the same mesh bit for bit (tested). The mesh is in the
input's coordinates; Open3D works in them directly (its octree box is the points' bounding
cube scaled by ``scale``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sdfrecon.errors import InputError

log = logging.getLogger("sdfrecon")


def poisson_reconstruct(
    points: np.ndarray,
    normals: np.ndarray,
    depth: int = 9,
    trim_quantile: float | None = None,
    scale: float = 1.1,
    linear_fit: bool = False,
    point_weight: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Screened Poisson surface of an oriented point cloud.

    points (N, 3) and normals (N, 3) (any length; normalised here, oriented outward) in the
    input's units. depth: octree depth (the finest grid is at most 2^depth per side).
    trim_quantile: when given (0 <= q < 1), drop the vertices whose Poisson density (how many
    input points support them) is below that quantile of all densities, and the faces that
    use them: this cuts away the closing surfaces Poisson invents far from the data, at the
    price of holes (the mesh is then open). scale, linear_fit, point_weight: Open3D's
    options of the same names (point_weight is the screening weight, 2 by default).

    Returns (vertices (V, 3) float64, faces (F, 3) int64), outward-wound, with no
    unreferenced vertices. Deterministic: one solver thread.
    """
    import open3d as o3d

    points = np.asarray(points, dtype=np.float64)
    normals = np.asarray(normals, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4:
        raise ValueError(f"points must have shape (N, 3) with N >= 4, got {points.shape}")
    if normals.shape != points.shape:
        raise ValueError(f"normals must have shape {points.shape}, got {normals.shape}")
    if not (np.isfinite(points).all() and np.isfinite(normals).all()):
        raise ValueError("points and normals must be finite")
    if not 1 <= int(depth) <= 16:
        raise ValueError(f"depth must lie in [1, 16], got {depth}")
    if trim_quantile is not None and not 0.0 <= trim_quantile < 1.0:
        raise ValueError(f"trim_quantile must lie in [0, 1), got {trim_quantile}")
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    if np.any(length < 1e-12):
        raise ValueError("every normal must be non-zero")

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.normals = o3d.utility.Vector3dVector(normals / length)
    mesh, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(
        cloud, depth=int(depth), scale=float(scale), linear_fit=bool(linear_fit),
        point_weight=float(point_weight), n_threads=1,
    )
    vertices = np.asarray(mesh.vertices, dtype=np.float64).copy()
    faces = np.asarray(mesh.triangles, dtype=np.int64).copy()
    if trim_quantile is not None and len(vertices):
        density = np.asarray(density, dtype=np.float64)
        keep = density >= np.quantile(density, trim_quantile)
        faces = faces[keep[faces].all(axis=1)]
    return _compact(vertices, faces)


def _compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the vertices no face uses and renumber the faces (order otherwise kept)."""
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.reshape(-1)] = True
    new_index = np.cumsum(used) - 1
    return vertices[used], new_index[faces].astype(np.int64)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit per-vertex normals (V, 3) float32: area-weighted sums of the adjacent face normals
    (zero for a vertex whose faces are all degenerate)."""
    tri = vertices[faces]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
    sums = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(sums, faces[:, corner], cross)
    length = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, length, out=np.zeros_like(sums), where=length > 0).astype(np.float32)


def poisson_file(
    input: Path,
    output: Path,
    depth: int = 9,
    trim: float | None = None,
    overwrite: bool = False,
    normals_mode: str = "auto",
) -> dict:
    """Poisson-reconstruct the cloud file ``input`` into the mesh file ``output``.

    The cloud is read, and its normals estimated when it has none, exactly as
    ``sdfrecon reconstruct`` does with its defaults (:func:`sdfrecon.cloud.prepare.load_cloud` with
    ``ReconstructConfig()``: no cleaning or denoising, the file's normals or estimated ones), so both
    methods see the same oriented points. ``normals_mode`` 'estimate' ignores the file's
    normals and estimates and orients them as reconstruct does (``--normals-mode estimate``).
    The mesh is written atomically with per-vertex normals where the format carries them;
    an existing ``output`` is refused (before any work) unless ``overwrite``.

    Returns a JSON-ready dict: input, output, points, normals ('file' or 'estimated'),
    normals_estimated, depth, trim, vertices, faces, load_seconds, poisson_seconds,
    total_seconds.
    """
    from sdfrecon.cloud.prepare import load_cloud
    from sdfrecon.config import ReconstructConfig
    from sdfrecon.io import save_mesh
    from sdfrecon.io.atomic import check_writable
    from sdfrecon.io.formats import check_mesh_suffix

    t_start = time.perf_counter()
    input, output = Path(input), Path(output)
    check_mesh_suffix(output)
    check_writable(output, overwrite)
    if trim is not None and not 0.0 <= trim < 1.0:
        raise InputError("--trim", f"must be a quantile in [0, 1), got {trim}")
    if not 1 <= depth <= 16:
        raise InputError("--depth", f"must lie in [1, 16], got {depth}")
    if normals_mode not in ("auto", "estimate"):
        raise InputError("--normals-mode", f"must be auto or estimate for Poisson, got {normals_mode!r}")
    config = ReconstructConfig()
    # the points as the file gives them: the baseline is Poisson as its users run it
    config = replace(config, normals=replace(config.normals, normals_mode=normals_mode),
                     clean=replace(config.clean, denoise="off"))
    cloud, cloud_info = load_cloud(input, config)
    estimated = cloud_info["normals"] == "estimated"
    t_loaded = time.perf_counter()
    log.info("%s: %d points%s; screened Poisson at depth %d", input, len(cloud),
             " (normals estimated)" if estimated else " with normals", depth)
    vertices, faces = poisson_reconstruct(cloud.points, cloud.normals, depth=depth, trim_quantile=trim)
    t_solved = time.perf_counter()
    if len(faces) == 0:
        raise InputError(input, "screened Poisson produced no surface")
    save_mesh(output, vertices, faces, vertex_normals(vertices, faces), overwrite=overwrite)
    t_done = time.perf_counter()
    return {
        "input": str(input), "output": str(output), "points": len(cloud),
        "normals": cloud_info["normals"], "normals_estimated": estimated, "depth": depth, "trim": trim,
        "vertices": len(vertices), "faces": len(faces),
        "load_seconds": t_loaded - t_start, "poisson_seconds": t_solved - t_loaded,
        "total_seconds": t_done - t_start,
    }
