"""Zero level set of a field on [-1, 1]^3: grid evaluation (dense, or coarse-to-fine near
the surface only), marching cubes, and removal of components that no input point supports.

Grid convention: R points per axis at x_i = -1 + i * h, h = 2 / (R - 1), volume[i, j, k] =
f(x_i, y_j, z_k) (``indexing='ij'``), so marching-cubes vertex (i, j, k) * h - 1 is exact.

Coarse-to-fine: the grid is cut into blocks; a block whose centre value satisfies
|f(c)| > L * (r + sqrt(3) h) (r the block's half-diagonal, L a bound on |grad f|) cannot
contain the surface, and neither can any grid edge that leaves it, so its points are
filled with f(c) (right sign, never interpolated) instead of being evaluated. Other blocks
are split in 8 down to ``MIN_BLOCK`` points wide and then evaluated point by point. Every
edge with a sign change has both ends evaluated, so the mesh equals the dense grid's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sdfrecon.config import ExtractConfig

FieldFn = Callable[[torch.Tensor], torch.Tensor]
MIN_BLOCK = 2
MAX_BLOCK = 32


@dataclass
class GridStats:
    """How much of the grid was evaluated: ``evaluated`` network calls of ``total`` points."""

    resolution: int
    evaluated: int
    total: int


def grid_coordinates(indices: np.ndarray, resolution: int) -> np.ndarray:
    """Integer grid indices (..., 3) -> coordinates in [-1, 1] (..., 3), float32."""
    return (indices * (2.0 / (resolution - 1)) - 1.0).astype(np.float32)


@torch.no_grad()
def evaluate(fn: FieldFn, points: np.ndarray, device: torch.device, chunk_size: int) -> np.ndarray:
    """fn at points (M, 3) in chunks; returns (M,) float32 on the CPU."""
    out = np.empty(len(points), dtype=np.float32)
    for start in range(0, len(points), chunk_size):
        x = torch.from_numpy(points[start : start + chunk_size]).to(device)
        out[start : start + chunk_size] = fn(x).float().cpu().numpy()
    return out


def dense_grid(fn: FieldFn, resolution: int, device: torch.device, chunk_size: int) -> np.ndarray:
    """fn on every grid point: (R, R, R) float32. R^3 network calls."""
    axis = np.arange(resolution)
    idx = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    values = evaluate(fn, grid_coordinates(idx, resolution), device, chunk_size)
    return values.reshape(resolution, resolution, resolution)


def coarse_to_fine_grid(
    fn: FieldFn, resolution: int, device: torch.device, chunk_size: int, lipschitz: float
) -> tuple[np.ndarray, int]:
    """The grid of :func:`dense_grid` with far-from-surface blocks filled; (volume, calls)."""
    h = 2.0 / (resolution - 1)
    block = MAX_BLOCK
    padded = block * math.ceil(resolution / block)
    volume = np.full((padded,) * 3, np.nan, dtype=np.float32)
    n = padded // block
    origins = np.stack(np.meshgrid(*[np.arange(n) * block] * 3, indexing="ij"), -1).reshape(-1, 3)
    calls = 0
    while block > MIN_BLOCK:
        centres = grid_coordinates(origins + (block - 1) / 2.0, resolution)
        values = evaluate(fn, centres, device, chunk_size)
        calls += len(values)
        reach = lipschitz * (math.sqrt(3.0) * (block - 1) / 2.0 * h + math.sqrt(3.0) * h)
        far = np.abs(values) > reach
        _fill_blocks(volume, origins[far], block, values[far])
        half = block // 2
        children = np.array([[a, b, c] for a in (0, half) for b in (0, half) for c in (0, half)])
        origins = (origins[~far][:, None, :] + children[None]).reshape(-1, 3)
        block = half
    offsets = np.stack(np.meshgrid(*[np.arange(block)] * 3, indexing="ij"), -1).reshape(-1, 3)
    idx = (origins[:, None, :] + offsets[None]).reshape(-1, 3)
    idx = idx[(idx < resolution).all(axis=1)]
    volume[idx[:, 0], idx[:, 1], idx[:, 2]] = evaluate(
        fn, grid_coordinates(idx, resolution), device, chunk_size
    )
    calls += len(idx)
    return volume[:resolution, :resolution, :resolution], calls


def _fill_blocks(volume: np.ndarray, origins: np.ndarray, block: int, values: np.ndarray) -> None:
    """Set every point of the blocks at origins (M, 3) of width ``block`` to values (M,)."""
    if len(origins) == 0:
        return
    n = volume.shape[0] // block
    view = volume.reshape(n, block, n, block, n, block)
    b = origins // block
    view[b[:, 0], :, b[:, 1], :, b[:, 2], :] = values[:, None, None, None]


def sample_grid(
    fn: FieldFn, config: ExtractConfig, device: torch.device
) -> tuple[np.ndarray, GridStats]:
    """The (R, R, R) volume for marching cubes, by the method config asks for."""
    r = config.resolution
    if config.coarse_to_fine:
        volume, calls = coarse_to_fine_grid(fn, r, device, config.chunk_size, config.lipschitz_bound)
    else:
        volume, calls = dense_grid(fn, r, device, config.chunk_size), r**3
    return volume, GridStats(resolution=r, evaluated=calls, total=r**3)


def marching_cubes(volume: np.ndarray, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of a grid over [-1, 1]^3: vertices (V, 3) float64 in [-1, 1]^3 and
    faces (F, 3) int64, wound so that normals point to increasing f (outward for an SDF
    that is negative inside). Empty arrays when the grid has no sign change."""
    from skimage import measure

    finite = volume[np.isfinite(volume)]
    if finite.size == 0 or finite.min() >= level or finite.max() <= level:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    h = 2.0 / (volume.shape[0] - 1)
    # skimage's "descent" winding is the one whose normals point to increasing values
    # (checked by the signed volume of a sphere's SDF in tests/test_extract.py).
    verts, faces, _, _ = measure.marching_cubes(
        volume, level=level, spacing=(h, h, h), gradient_direction="descent", allow_degenerate=False
    )
    return verts.astype(np.float64) - 1.0, faces.astype(np.int64)


def field_normals(fn: FieldFn, vertices: np.ndarray, device: torch.device, chunk_size: int) -> np.ndarray:
    """Unit grad f at vertices (V, 3): exact normals of the level set, (V, 3) float32."""
    from sdfrecon.diff import value_and_gradient

    out = np.empty((len(vertices), 3), dtype=np.float32)
    for start in range(0, len(vertices), chunk_size):
        x = torch.from_numpy(vertices[start : start + chunk_size].astype(np.float32)).to(device)
        _, g = value_and_gradient(fn, x, create_graph=False)
        out[start : start + chunk_size] = torch.nn.functional.normalize(g, dim=-1).cpu().numpy()
    return out


def drop_far_components(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray, max_distance: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Remove the connected components none of whose vertices comes within max_distance of
    an input point (ghost surfaces the data does not support). vertices (V, 3) and points
    (N, 3) in the same units. Returns (vertices, faces, number of components dropped)."""
    from sdfrecon.metrics import nearest, vertex_components

    if len(faces) == 0:
        return vertices, faces, 0
    labels = vertex_components(faces, len(vertices))
    closest = np.full(labels.max() + 1, np.inf)
    np.minimum.at(closest, labels, nearest(vertices, points)[0])
    keep_label = closest <= max_distance
    dropped = int((~keep_label[np.unique(labels[faces.ravel()])]).sum())
    if dropped == 0:
        return vertices, faces, 0
    face_keep = keep_label[labels[faces[:, 0]]]
    faces = faces[face_keep]
    kept = np.unique(faces.ravel())
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[kept] = np.arange(len(kept))
    return vertices[kept], remap[faces], dropped
