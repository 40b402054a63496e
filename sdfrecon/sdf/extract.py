"""Zero level set of a field on [-1, 1]^3: the grid evaluated near the surface only
(:mod:`sdfrecon.sdf.sparse`) or densely (the reference), marching cubes chunk by chunk and a
clean mesh (:mod:`sdfrecon.sdf.meshing`)."""

from __future__ import annotations

import itertools
import logging
import math
import time

import numpy as np
import torch

from sdfrecon.config import ExtractConfig
from sdfrecon.sdf.grid import (
    CORNERS,
    FieldFn,
    GridStats,
    dense_grid,
    evaluate,
    field_evaluator,
    gradient_evaluator,
    grid_coordinates,
)
from sdfrecon.sdf.meshing import (
    NUDGE,
    drop_far_components,
    marching_cubes,
    marching_cubes_cells,
    weld,
)
from sdfrecon.sdf.sparse import SLACK, _Chunk, chunk_volume, steep_chunks

__all__ = ["GridStats", "dense_grid", "drop_far_components", "extract_mesh", "field_evaluator",
           "field_normals", "marching_cubes"]
log = logging.getLogger(__name__)
WIDEN = 2.0
"""Where the bound L proves false, a chunk is done again with WIDEN times the steepest slope
seen (after three rounds, with no bound: densely)."""


def extract_mesh(fn: FieldFn, config: ExtractConfig, device: torch.device, progress: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, GridStats]:
    """The zero level set on the R^3 grid of config: vertices (V, 3) float64 in [-1, 1]^3,
    faces (F, 3) int64 (normals toward increasing f) and stats. Coarse-to-fine (the
    default) gives the dense grid's mesh while evaluating and storing only near the surface;
    ``coarse_to_fine=False`` evaluates the dense (R, R, R) grid. progress: a bar over the
    chunks (or the dense grid's slices), drawn on a terminal only."""
    from tqdm.auto import tqdm

    r = config.resolution
    t0 = time.perf_counter()
    if not config.coarse_to_fine:
        volume = dense_grid(fn, r, device, config.chunk_size, progress)
        t1 = time.perf_counter()
        vertices, faces = marching_cubes(volume)
        return vertices, faces, GridStats(r, r**3, r**3, t1 - t0, time.perf_counter() - t1)
    width = config.chunk_cells
    if width < 2 or width & (width - 1):
        raise ValueError(f"chunk_cells must be a power of two >= 2, not {width}")
    field = field_evaluator(fn)
    count = math.ceil((r - 1) / width)
    h = 2.0 / (r - 1)
    # chunk corners in one call; a chunk whose corners prove it far is never opened
    top = np.stack(np.meshgrid(*[np.arange(count + 1) * width] * 3, indexing="ij"), -1)
    top_values = evaluate(field, grid_coordinates(top.reshape(-1, 3), r), device,
                          config.chunk_size).reshape((count + 1,) * 3)
    evaluated = top_values.size
    n = width + 1
    face = np.ones((n, n, n), dtype=bool)
    face[1:-1, 1:-1, 1:-1] = False
    face = np.flatnonzero(face)  # flat indices of a chunk's boundary points
    corner_flat = (width * CORNERS) @ np.array([n * n, n, 1])
    boundary: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    meshes: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray] | None] = {}  # in order
    kept: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}  # (flat, values) evaluated
    mc_seconds = 0.0
    lipschitz = config.lipschitz_bound
    # The bound is checked wherever two neighbouring values are known (sparse.py): a chunk on
    # a steeper edge of the top lattice, or inside which a steeper slope shows, is done with
    # a bound WIDEN times that slope (then without one), and so are its neighbours: those that
    # the narrower bound had let go unopened, and those already meshed under it (cells it
    # proved far there may hold surface: they are meshed again, and may widen theirs).
    top_slope, steep = steep_chunks(top_values, width * h, lipschitz)
    bounds = dict.fromkeys(steep, WIDEN * top_slope)
    slope, widest, skipped, opened, widened = top_slope, lipschitz, set(), set(), set()
    queue = list(itertools.product(range(count), repeat=3))
    # disable=None: drawn only on a terminal
    bar = tqdm(total=len(queue), desc="grid", unit="chunk", disable=None if progress else True,
               leave=False, dynamic_ncols=True)
    for key in queue:  # grows while it is walked: chunks done again with a wider bound
        bar.total = len(queue)
        bar.update(1)
        if key in opened:
            continue
        bound = bounds.get(key, lipschitz)
        corner_values = top_values[tuple((np.array(key) + CORNERS).T)]
        if ((corner_values > 0).all() or (corner_values < 0).all()) and np.abs(
                corner_values).min() > bound * math.sqrt(3.0) / 2.0 * width * h:
            skipped.add(key)
            continue
        opened.add(key)
        origin = np.array(key, dtype=np.int64) * width
        chunk = _Chunk.empty(origin, width)
        chunk.set_exact(corner_flat, corner_values)
        for step in itertools.product((-1, 0, 1), repeat=3):  # values neighbours evaluated
            shared = boundary.get(tuple(k + d for k, d in zip(key, step, strict=True)))
            if shared is not None:
                local = shared[0] - origin
                inside = ((local >= 0) & (local <= width)).all(1)
                chunk.set_exact(local[inside] @ chunk.strides, shared[1][inside])
        if key in kept:  # done again: what it evaluated before stands
            chunk.set_exact(*kept[key])
        grid = chunk_volume(field, chunk, r, bound, device, config.chunk_size)
        for rounds in itertools.count():
            if chunk.slope <= bound * SLACK:
                break
            slope = max(slope, chunk.slope)  # again, wider, keeping what was evaluated
            bound = WIDEN * chunk.slope if rounds < 3 else math.inf
            chunk.forget_bounds()
            grid = chunk_volume(field, chunk, r, bound, device, config.chunk_size)
        bounds[key] = bound  # as done: a neighbour asks for it again only with a wider one
        if bound > lipschitz:
            widened.add(key)
        widest = max(widest, bound)
        if key in steep or chunk.slope > lipschitz * SLACK:  # seen here: widen the neighbours
            for step in itertools.product((-1, 0, 1), repeat=3):
                near = tuple(k + d for k, d in zip(key, step, strict=True))
                if near == key or min(near) < 0 or max(near) >= count or bounds.get(near, lipschitz) >= bound:
                    continue
                bounds[near] = bound
                if near in skipped or near in opened:  # done under a narrower bound: again
                    skipped.discard(near)
                    opened.discard(near)
                    if near in meshes:  # its place kept: the same vertex order when nothing changes
                        meshes[near] = None
                    queue.append(near)
        evaluated += chunk.evaluated
        if chunk.evaluated:
            flat = np.flatnonzero(~np.isnan(chunk.val)).astype(np.int32)
            kept[key] = (flat, chunk.val[flat])
            done = face[~np.isnan(chunk.val[face])]
            boundary[key] = (np.stack([done // (n * n), done // n % n, done % n], -1) + origin,
                             chunk.val[done])
        if grid is None:
            continue
        t = time.perf_counter()
        v, f = marching_cubes_cells(grid[0], mask=grid[1], nudge=NUDGE * h)
        mc_seconds += time.perf_counter() - t
        # float32 at grid scale, as marching cubes on the whole grid would round them
        meshes[key] = ((v + origin).astype(np.float32), f.astype(np.int32))
    bar.close()
    done = [m for m in meshes.values() if m is not None]
    vertices, faces = [m[0] for m in done], [m[1] for m in done]
    n_vertices = [len(v) for v in vertices]
    del meshes, done
    widened = len(widened)
    if widened:
        log.warning("the field is steeper than --lipschitz-bound %g assumes (a slope of %.3g "
                    "between neighbouring grid values): evaluated %d of %d chunks again with a "
                    "bound of up to %.3g, so that no part of the surface is skipped", lipschitz,
                    slope, widened, count**3, widest)
    t = time.perf_counter()
    if vertices:
        start = np.repeat(np.cumsum([0, *n_vertices[:-1]]), [len(f) for f in faces])
        v = np.concatenate(vertices).astype(np.float64)
        del vertices
        f = np.concatenate(faces) + start[:, None]
        del faces, start
        v, f = weld(v, f, width)
        v = v * (2.0 / (r - 1)) - 1.0
    else:
        v, f = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    mc_seconds += time.perf_counter() - t
    stats = GridStats(r, evaluated, r**3, time.perf_counter() - t0 - mc_seconds, mc_seconds)
    return v, f, stats


def field_normals(fn: FieldFn, vertices: np.ndarray, device: torch.device, chunk_size: int) -> np.ndarray:
    """Unit grad f at vertices (V, 3): exact normals of the level set, (V, 3) float32."""
    gradient = gradient_evaluator(fn)
    out = np.empty((len(vertices), 3), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(vertices), chunk_size):
            x = torch.from_numpy(vertices[start : start + chunk_size].astype(np.float32)).to(device)
            out[start : start + chunk_size] = torch.nn.functional.normalize(gradient(x), dim=-1).cpu().numpy()
    return out
