"""Simulated range scans of a mesh, for SRB-layout suites built without the real data
(tests, ``scripts/make_srb_suite.py``).

A scan is what a few range images see: orthographic depth images from ``views`` directions
spread over the upper part of a sphere (so the underside is never seen: a large hole, as in
the SRB scans), each ray cast onto the mesh with Open3D; occluded parts, grazing regions
and ``holes`` random spherical patches (removed afterwards) stay empty. Range noise moves
each point along its ray; the normal of a point is its face's normal, turned towards the
sensor. Everything is seeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.io import PointCloud

if TYPE_CHECKING:
    import trimesh


def view_directions(views: int, lowest: float = -0.2) -> np.ndarray:
    """``views`` unit viewing directions (sensor -> object), (views, 3): a Fibonacci spiral
    over the part of the sphere whose sensors sit at height z >= ``lowest`` (z up)."""
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    k = np.arange(views) + 0.5
    height = 1.0 - k / views * (1.0 - lowest)  # sensor heights from near the top down to `lowest`
    radius = np.sqrt(np.clip(1.0 - height**2, 0.0, None))
    angle = k * np.pi * (3.0 - np.sqrt(5.0))
    sensor = np.stack([radius * np.cos(angle), radius * np.sin(angle), height], axis=1)
    return -sensor / np.linalg.norm(sensor, axis=1, keepdims=True)


def simulate_range_scan(mesh: trimesh.Trimesh, views: int = 5, resolution: int = 96,
                        noise: float = 0.0, holes: int = 0, hole_radius: float = 0.05,
                        seed: int = 0) -> PointCloud:
    """Points (N, 3) float64 with unit normals of a simulated multi-view range scan.

    views: range images; resolution: rays per side of each image (its square covers the
    mesh's bounding sphere); noise: standard deviation of the range error as a fraction of
    the bounding-box diagonal; holes / hole_radius: spherical patches (radius a fraction of
    the diagonal, centred on random scan points) removed after scanning. Units: the mesh's.
    """
    import open3d as o3d

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre, diag = (low + high) / 2.0, float(np.linalg.norm(high - low))
    rng = np.random.default_rng(seed)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor((vertices - centre).astype(np.float32)),
                        o3d.core.Tensor(faces.astype(np.uint32)))
    tri = vertices[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    face_normals /= np.maximum(np.linalg.norm(face_normals, axis=1, keepdims=True), 1e-300)
    grid = (np.arange(resolution) + 0.5) / resolution * diag - diag / 2.0
    u, v = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    points, normals = [], []
    for direction in view_directions(views):
        side = np.cross(direction, [0.0, 0.0, 1.0] if abs(direction[2]) < 0.9 else [1.0, 0.0, 0.0])
        side /= np.linalg.norm(side)
        up = np.cross(side, direction)
        origins = -direction * diag + u[:, None] * side + v[:, None] * up
        rays = np.hstack([origins, np.broadcast_to(direction, origins.shape)]).astype(np.float32)
        hit = scene.cast_rays(o3d.core.Tensor(rays))
        t = hit["t_hit"].numpy().astype(np.float64)
        ok = np.isfinite(t)
        face = hit["primitive_ids"].numpy()[ok].astype(np.int64)
        n = face_normals[face]
        n *= np.where(n @ direction > 0.0, -1.0, 1.0)[:, None]  # towards the sensor
        grazing = -(n @ direction) > 0.15  # rays nearly along the surface return nothing
        t = t[ok] + rng.normal(0.0, noise * diag, size=int(ok.sum()))
        points.append((origins[ok] + t[:, None] * direction)[grazing] + centre)
        normals.append(n[grazing])
    points, normals = np.concatenate(points), np.concatenate(normals)
    if holes > 0 and len(points):
        keep = np.ones(len(points), dtype=bool)
        for centre_index in rng.choice(len(points), size=holes, replace=False):
            keep &= np.linalg.norm(points - points[centre_index], axis=1) > hole_radius * diag
        points, normals = points[keep], normals[keep]
    if len(points) < 10:
        raise ValueError(f"the simulated scan hit the mesh only {len(points)} times")
    return PointCloud(points, normals.astype(np.float32))
