"""Thin and open test shapes, made here so that nobody tuned to them: an L bracket with two
holes, a plate with nine holes, a bowl, and a simulated single-view range scan of a mesh.

Each returns ``(points, normals)``: (N, 3) float64 samples in the shape's own units and
(N, 3) unit outward normals. Seeded (numpy ``default_rng``), so a shape is the same cloud
on every machine. These are the clouds on which a reconstruction most easily puts surface
where no point is (a closed field must close an open sheet somewhere).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import trimesh

Cloud = tuple[np.ndarray, np.ndarray]


def _box_surface(lo: list[float], hi: list[float], n: int, rng: np.random.Generator) -> Cloud:
    box = trimesh.creation.box(bounds=np.array([lo, hi], dtype=np.float64))
    points, faces = trimesh.sample.sample_surface(box, n, seed=int(rng.integers(1 << 30)))
    return np.asarray(points, dtype=np.float64), np.asarray(box.face_normals[faces], dtype=np.float64)


def _inside(points: np.ndarray, lo: list[float], hi: list[float]) -> np.ndarray:
    return np.all((points > np.asarray(lo) + 1e-9) & (points < np.asarray(hi) - 1e-9), axis=1)


def _drill(points: np.ndarray, normals: np.ndarray, centres: list[tuple[float, float]],
           radius: float, thickness: float, per_hole: int, rng: np.random.Generator) -> Cloud:
    """Vertical round holes through a plate lying on z in [0, thickness]: drop the plate's
    samples inside each circle and add the hole's wall (normals pointing into the hole)."""
    keep = np.ones(len(points), dtype=bool)
    for centre in centres:
        keep &= np.linalg.norm(points[:, :2] - centre, axis=1) > radius
    parts, nparts = [points[keep]], [normals[keep]]
    for cx, cy in centres:
        t = rng.uniform(0.0, 2.0 * np.pi, per_hole)
        z = rng.uniform(0.0, thickness, per_hole)
        direction = np.c_[np.cos(t), np.sin(t), np.zeros_like(t)]
        parts.append(np.c_[cx + radius * np.cos(t), cy + radius * np.sin(t), z])
        nparts.append(-direction)
    return np.vstack(parts), np.vstack(nparts)


def bracket(n: int = 20_000, seed: int = 0) -> Cloud:
    """An L bracket of 0.03-thick plates: a 1.0 x 0.6 base, a 0.6-tall wall, two holes of
    radius 0.08 in the base."""
    rng = np.random.default_rng(seed)
    base, wall = ([0.0, 0.0, 0.0], [1.0, 0.6, 0.03]), ([0.0, 0.0, 0.0], [0.03, 0.6, 0.6])
    pa, na = _box_surface(*base, n, rng)
    pb, nb = _box_surface(*wall, n // 2, rng)
    keep_a, keep_b = ~_inside(pa, *wall), ~_inside(pb, *base)
    points, normals = np.vstack([pa[keep_a], pb[keep_b]]), np.vstack([na[keep_a], nb[keep_b]])
    return _drill(points, normals, [(0.45, 0.3), (0.8, 0.3)], 0.08, 0.03, 600, rng)


def plate(n: int = 20_000, seed: int = 1) -> Cloud:
    """A 1 x 1 plate, 0.02 thick, with a 3 x 3 grid of round holes of radius 0.09."""
    rng = np.random.default_rng(seed)
    points, normals = _box_surface([0.0, 0.0, 0.0], [1.0, 1.0, 0.02], n, rng)
    centres = [(x, y) for x in (0.2, 0.5, 0.8) for y in (0.2, 0.5, 0.8)]
    return _drill(points, normals, centres, 0.09, 0.02, 300, rng)


def bowl(n: int = 20_000, seed: int = 2, radius: float = 1.0, wall: float = 0.04) -> Cloud:
    """A hemispherical bowl, open at the top: outer radius ``radius``, wall ``wall`` thick, the
    rim an annulus at z = 0."""
    rng = np.random.default_rng(seed)
    inner = radius - wall
    n_out = int(n * radius**2 / (radius**2 + inner**2))

    def lower_hemisphere(count: int) -> np.ndarray:
        v = rng.normal(size=(count, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v[:, 2] = -np.abs(v[:, 2])
        return v

    v_out, v_in = lower_hemisphere(n_out), lower_hemisphere(n - n_out)
    n_rim = max(1, n // 25)
    t = rng.uniform(0.0, 2.0 * np.pi, n_rim)
    r = np.sqrt(rng.uniform(inner**2, radius**2, n_rim))
    rim = np.c_[r * np.cos(t), r * np.sin(t), np.zeros(n_rim)]
    points = np.vstack([radius * v_out, inner * v_in, rim])
    normals = np.vstack([v_out, -v_in, np.tile([0.0, 0.0, 1.0], (n_rim, 1))])
    return points, normals


def single_view_scan(mesh: trimesh.Trimesh, view: tuple[float, float, float] = (0.3, -1.0, 0.4),
                     resolution: int = 200) -> Cloud:
    """An orthographic range scan of ``mesh`` from one direction: the first hit of each ray of
    a ``resolution`` x ``resolution`` grid (Open3D ray casting), normals facing the scanner.
    The back of the object is missing, as in one range image."""
    import open3d as o3d

    d = np.asarray(view, dtype=np.float64)
    d /= np.linalg.norm(d)
    u = np.cross(d, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    w = np.cross(d, u)
    centre = np.asarray(mesh.bounds, dtype=np.float64).mean(axis=0)
    half = float(np.linalg.norm(mesh.extents)) / 2.0
    grid = np.linspace(-half, half, resolution)
    gu, gw = (a.reshape(-1, 1) for a in np.meshgrid(grid, grid))
    origins = centre - 3.0 * half * d + gu * u + gw * w
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(mesh.vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.asarray(mesh.faces, dtype=np.uint32)))
    rays = np.c_[origins, np.tile(d, (len(origins), 1))].astype(np.float32)
    hit = scene.cast_rays(o3d.core.Tensor(rays))
    t = hit["t_hit"].numpy().astype(np.float64)
    ok = np.isfinite(t)
    points = origins[ok] + t[ok, None] * d
    normals = np.asarray(mesh.face_normals, dtype=np.float64)[hit["primitive_ids"].numpy()[ok]]
    normals = np.where((normals @ d < 0.0)[:, None], normals, -normals)
    return points, normals


THIN_SHAPES: dict[str, Callable[[], Cloud]] = {"bracket": bracket, "plate": plate, "bowl": bowl}
"""The synthetic thin and open shapes by name (the single-view scan needs a mesh)."""
