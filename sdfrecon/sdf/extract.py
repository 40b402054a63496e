"""Zero level set of a field on [-1, 1]^3: grid evaluation near the surface only (or dense,
as the reference), marching cubes chunk by chunk, and removal of components that no input
point supports.

Grid convention: R points per axis at x_i = -1 + i * h, h = 2 / (R - 1), volume[i, j, k] =
f(x_i, y_j, z_k) (``indexing='ij'``), so marching-cubes vertex (i, j, k) * h - 1 is exact.

Sparse extraction (:func:`extract_mesh`). The grid's cells are cut into chunks of W cells
(W = ``chunk_cells``, a power of two); chunks are processed one at a time, each with its
own (W + 1)^3 points, so no (R, R, R) array ever exists. Safety rests on |grad f| <= L
(``lipschitz_bound``): then |f(p)| >= |f(c)| - L |p - c| with the sign of f(c) whenever that
is > 0. Every point carries such a proven lower bound on |f| and its true sign (for an
evaluated point, |f| itself). Within a chunk (whose 8 corners come from one call for the
whole grid; a chunk they prove far, as below, is skipped):

1. Blocks of s cells (s = W, W/2, ..., 2) with grid-point corners. A block is *far* when its
   8 corners have one sign and bounds > L sqrt(3)/2 s h: every point x of the closed block
   lies within sqrt(3)/2 s h of a corner c, so |f(x)| >= bound(c) - L |x - c| > 0 with c's
   sign. Far blocks are filled with a corner's value (right sign, never read as a
   magnitude). Each other block bounds its 19 other points at spacing s/2 from its corners,
   evaluates those whose bound could not make a child block far, and is split in 8.
2. At spacing 1 (blocks of 2 cells) a point is evaluated only when no corner proves its
   sign. Now every grid point has its true sign (evaluated, proven, or in a far block), so
   the cells with a sign change are known exactly: those of the dense grid.
3. Closure: every corner of every cell with a sign change (not all > 0, not all < 0) is
   evaluated. Marching cubes reads magnitudes only in such cells (edge interpolation, and
   Lewiner's face/interior tests use the cell's 8 corners), so it emits exactly the dense
   grid's triangles. Under the bound this is one pass; where |grad f| exceeds L a new value
   may flip a filled sign, so the pass repeats until no cell with a sign change has a
   corner left unevaluated (a surface that the bound hid entirely is still missed: L
   must hold, and a larger L is safer).

A point on a face shared by two chunks is evaluated once: a chunk first takes the values its
earlier neighbours evaluated on their boundaries, so both sides see the same numbers, compute
bit-identical vertices on the shared face (integer offset + the same local coordinate,
rounded to float32 as the dense grid's are) and :func:`weld` merges them exactly.
Evaluations outside the grid (corners of blocks that straddle the last index) serve only
as anchors.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sdfrecon.config import ExtractConfig

FieldFn = Callable[[torch.Tensor], torch.Tensor]
CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=np.int64)
"""The 8 corners of a unit cube, (8, 3)."""


@dataclass
class GridStats:
    """How much of the grid was evaluated: ``evaluated`` network calls of ``total`` points,
    and where the time went (seconds)."""

    resolution: int
    evaluated: int
    total: int
    grid_seconds: float = 0.0
    marching_cubes_seconds: float = 0.0


def grid_coordinates(indices: np.ndarray, resolution: int) -> np.ndarray:
    """Integer grid indices (..., 3) -> coordinates in [-1, 1] (..., 3), float32."""
    return (indices * (2.0 / (resolution - 1)) - 1.0).astype(np.float32)


def field_evaluator(fn: FieldFn) -> FieldFn:
    """fn, or for an :class:`~sdfrecon.sdf.siren.SdfSiren` a lean inference forward of it:
    omega_0 folded into the weights, addmm and in-place sin. Same values to ~1e-6, about
    3x faster on a CPU at 4k-16k points a call. x (B, 3) -> f (B,)."""
    from sdfrecon.sdf.siren import SdfSiren

    if type(fn) is not SdfSiren:
        return fn
    layers = [((layer.linear.weight.detach() * layer.omega_0).t().contiguous(),
               layer.linear.bias.detach() * layer.omega_0) for layer in fn.net]
    w_out, b_out = fn.out.weight.detach().t().contiguous(), fn.out.bias.detach()
    prior = fn.sphere_prior

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x
        for w, b in layers:
            h = torch.addmm(b, h, w).sin_()
        f = torch.addmm(b_out, h, w_out).squeeze(-1)
        if prior is not None:  # as SdfSiren: f + |x| - r, |x| = sqrt(|x|^2 + 1e-12)
            f = f + torch.sqrt((x * x).sum(-1) + 1e-12) - prior
        return f

    return forward


def evaluate(fn: FieldFn, points: np.ndarray, device: torch.device, chunk_size: int) -> np.ndarray:
    """fn at points (M, 3) in chunks; returns (M,) float32 on the CPU."""
    out = np.empty(len(points), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(points), chunk_size):
            x = torch.from_numpy(points[start : start + chunk_size]).to(device)
            out[start : start + chunk_size] = fn(x).float().cpu().numpy()
    return out


def dense_grid(fn: FieldFn, resolution: int, device: torch.device, chunk_size: int,
               progress: bool = False) -> np.ndarray:
    """fn on every grid point: (R, R, R) float32. R^3 network calls (the reference)."""
    from tqdm.auto import tqdm

    field = field_evaluator(fn)
    axis = np.arange(resolution)
    plane = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    volume = np.empty((resolution,) * 3, dtype=np.float32)
    for i in tqdm(range(resolution), desc="grid", unit="slice", disable=None if progress else True,
                  leave=False, dynamic_ncols=True):
        idx = np.concatenate([np.full((len(plane), 1), i), plane], axis=1)
        volume[i] = evaluate(field, grid_coordinates(idx, resolution), device, chunk_size).reshape(
            resolution, resolution)
    return volume


def marching_cubes(volume: np.ndarray, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of a grid over [-1, 1]^3: vertices (V, 3) float64 in [-1, 1]^3 and
    faces (F, 3) int64, wound so that normals point to increasing f (outward for an SDF
    that is negative inside). Empty arrays when the grid has no sign change."""
    vertices, faces = marching_cubes_cells(volume, level)
    return vertices * (2.0 / (volume.shape[0] - 1)) - 1.0, faces


def marching_cubes_cells(volume: np.ndarray, level: float = 0.0, mask: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`marching_cubes` with vertices (V, 3) float64 in index units (0 .. n - 1).
    mask (same shape, bool): visit only the cells whose last corner (i+1, j+1, k+1) is True
    (skimage 0.2x); marking every cell with a sign change gives the same mesh, faster."""
    from skimage import measure

    finite = volume[np.isfinite(volume)]
    if finite.size == 0 or finite.min() >= level or finite.max() <= level:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    # skimage's "descent" winding is the one whose normals point to increasing values
    # (checked by the signed volume of a sphere's SDF in tests/test_extract.py).
    try:
        verts, faces, _, _ = measure.marching_cubes(
            volume, level=level, gradient_direction="descent", allow_degenerate=False, mask=mask
        )
    except RuntimeError:  # "No surface found": the level is touched but never crossed
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    return verts.astype(np.float64), faces.astype(np.int64)


@dataclass
class _Chunk:
    """One chunk: points at local index (0 .. W per axis) + origin = grid index, held as flat
    (W+1)^3 arrays. ``val``: exact values (NaN: not evaluated). ``lower`` and ``sign``: a
    proven lower bound on |f| and the true sign (lower 0: nothing proven). ``fill``: a value of
    the right sign on the points of far blocks."""

    origin: np.ndarray
    width: int
    val: np.ndarray
    lower: np.ndarray
    sign: np.ndarray
    fill: np.ndarray
    scratch: np.ndarray
    evaluated: int = 0

    @classmethod
    def empty(cls, origin: np.ndarray, width: int) -> _Chunk:
        size = (width + 1) ** 3
        return cls(origin, width, np.full(size, np.nan, dtype=np.float32),
                   np.zeros(size, dtype=np.float32), np.zeros(size, dtype=np.float32),
                   np.full(size, np.nan, dtype=np.float32), np.empty(size, dtype=np.int32))

    @property
    def strides(self) -> np.ndarray:
        """Flat-index strides of the local (i, j, k), (3,) int64."""
        n = self.width + 1
        return np.array([n * n, n, 1], dtype=np.int64)

    def set_exact(self, flat: np.ndarray, values: np.ndarray) -> None:
        """Record evaluated values (M,) at flat indices (M,)."""
        self.val[flat] = values
        self.lower[flat] = np.abs(values)
        self.sign[flat] = np.sign(values)

    def evaluate(self, field: FieldFn, flat: np.ndarray, resolution: int, device: torch.device,
                 chunk_size: int) -> None:
        """Evaluate fn at the flat indices (any shape, repeats allowed) not yet evaluated."""
        flat = flat.reshape(-1)
        flat = flat[np.isnan(self.val[flat])]
        if len(flat) == 0:
            return
        order = np.arange(len(flat), dtype=np.int32)
        self.scratch[flat] = order  # one survivor per repeated index, without sorting
        flat = flat[self.scratch[flat] == order]
        n = self.width + 1
        local = np.stack([flat // (n * n), flat // n % n, flat % n], axis=-1)
        coordinates = grid_coordinates(local + self.origin, resolution)
        self.set_exact(flat, evaluate(field, coordinates, device, chunk_size))
        self.evaluated += len(flat)


def _fill_blocks(volume: np.ndarray, origins: np.ndarray, block: int, values: np.ndarray) -> None:
    """Set the points of the half-open blocks [o, o + block)^3 at origins (M, 3) to values
    (M,); volume is (W + 1)^3 with W a multiple of block."""
    if len(origins) == 0:
        return
    n = (volume.shape[0] - 1) // block
    view = volume[:-1, :-1, :-1].reshape(n, block, n, block, n, block)
    b = origins // block
    view[b[:, 0], :, b[:, 1], :, b[:, 2], :] = values[:, None, None, None]


def chunk_volume(field: FieldFn, chunk: _Chunk, resolution: int, lipschitz: float,
                 device: torch.device, chunk_size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Evaluate what marching cubes needs in one chunk (module docstring, steps 1-3) and
    return its in-grid volume (<= W+1 per axis, float32, exact wherever marching cubes reads
    a magnitude) and the mask of its cells with a sign change (same shape, bool, as
    :func:`marching_cubes_cells` takes it), or None when no cell of the chunk has a sign change."""
    width, strides = chunk.width, chunk.strides
    h = 2.0 / (resolution - 1)
    last = resolution - 1 - chunk.origin  # local index of the grid's last point, per axis
    offsets = np.array(list(itertools.product((0, 1, 2), repeat=3)), dtype=np.int64)
    offsets = offsets[(offsets == 1).any(1)]  # (19, 3): all but the block's corners
    dist = np.linalg.norm(offsets[:, None, :] - 2.0 * CORNERS[None], axis=-1).astype(np.float32)
    clip = bool((last < width).any())  # the chunk reaches past the grid's last point
    far_blocks = []  # (origins (M, 3), size, values (M,)) of the far blocks, filled at the end
    blocks, block = np.zeros((1, 3), dtype=np.int64), width
    chunk.evaluate(field, (block * CORNERS) @ strides, resolution, device, chunk_size)
    while True:
        corners = (blocks @ strides)[:, None] + (block * CORNERS) @ strides  # (M, 8)
        lower, sign = chunk.lower[corners], chunk.sign[corners]
        far = (np.abs(sign.sum(1)) == 8) & (lower.min(1) > lipschitz * math.sqrt(3.0) / 2.0 * block * h)
        far_blocks.append((blocks[far], block, (sign * lower)[far, 0]))
        blocks, lower, sign = blocks[~far], lower[~far], sign[~far]
        if len(blocks) == 0:
            return None
        # the other 19 points of each block at spacing `half`: bounds from its corners (step 2),
        # evaluated where too weak to prove a sign (half 1) or a child block far (half > 1)
        half = block // 2
        points = (blocks @ strides)[:, None] + (half * offsets) @ strides  # (M, 19)
        score = lower[:, None, :] - np.float32(lipschitz * half * h) * dist  # (M, 19, 8)
        best = score.argmax(-1)
        bound = np.take_along_axis(score, best[..., None], -1)[..., 0]
        proof = (bound > 0) & np.isnan(chunk.val[points])  # an evaluated value stays authoritative
        np.maximum.at(chunk.lower, points[proof], bound[proof])
        chunk.sign[points[proof]] = np.take_along_axis(sign, best, 1)[proof]
        weak = lipschitz * math.sqrt(3.0) / 2.0 * half * h if half > 1 else 0.0
        points = points.reshape(-1)
        chunk.evaluate(field, points[chunk.lower[points] <= weak], resolution, device, chunk_size)
        if half == 1:
            break
        blocks = (blocks[:, None, :] + half * CORNERS).reshape(-1, 3)
        if clip:
            blocks = blocks[(blocks < last).all(1)]  # blocks with at least one in-grid cell
        block = half
    # step 3: closure, repeated until every cell with a sign change has exact corners
    fill = chunk.fill.reshape((width + 1,) * 3)
    for origins, size, values in far_blocks:
        _fill_blocks(fill, origins, size, values)
    m = np.minimum(last, width) + 1
    proven = np.where(chunk.lower > 0, chunk.sign * chunk.lower, chunk.fill)
    volume = np.where(np.isnan(chunk.val), proven, chunk.val).reshape((width + 1,) * 3)
    volume = volume[: m[0], : m[1], : m[2]]
    # points on the last plane of a far block that no half-open fill reached: the point
    # before them is in the same far block, so it has their sign
    for axis in range(3):
        end = [slice(None)] * 3
        end[axis] = -1
        before = list(end)
        before[axis] = -2
        gap = np.isnan(volume[tuple(end)])
        volume[tuple(end)][gap] = volume[tuple(before)][gap]
    if np.isnan(volume).any():
        raise AssertionError("sparse grid left a point without a sign (extract.py bug)")
    exact = chunk.val.reshape((width + 1,) * 3)[: m[0], : m[1], : m[2]]
    while True:
        mixed = _sign_change_cells(volume)
        todo = np.zeros(volume.shape, dtype=bool)
        for c in CORNERS:
            todo[c[0] : c[0] + m[0] - 1, c[1] : c[1] + m[1] - 1, c[2] : c[2] + m[2] - 1] |= mixed
        todo &= np.isnan(exact)
        if not todo.any():
            break
        chunk.evaluate(field, np.argwhere(todo) @ strides, resolution, device, chunk_size)
        volume[todo] = exact[todo]
    if not mixed.any():
        return None
    mask = np.zeros(volume.shape, dtype=bool)
    mask[1:, 1:, 1:] = mixed  # skimage reads a cell's mask at its last corner
    return volume, mask


def _sign_change_cells(volume: np.ndarray) -> np.ndarray:
    """Cells of volume (a, b, c) whose 8 corners are not all > 0 nor all < 0: (a-1, b-1, c-1)."""
    positive, negative = volume > 0, volume < 0
    a, b, c = (n - 1 for n in volume.shape)
    all_positive = np.ones((a, b, c), dtype=bool)
    all_negative = np.ones((a, b, c), dtype=bool)
    for i, j, k in CORNERS:
        all_positive &= positive[i : i + a, j : j + b, k : k + c]
        all_negative &= negative[i : i + a, j : j + b, k : k + c]
    return ~(all_positive | all_negative)


def weld(vertices: np.ndarray, faces: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices (V, 3) (index units, float32 values as the dense grid's
    marching cubes gives them) and remap faces (F, 3); returns (vertices, faces).

    Two kinds coincide: a vertex on a face shared by chunks of ``width`` cells, which both
    chunks computed bit-identically (one coordinate a multiple of width), and vertices of
    different edges that meet at a grid point where f is 0 to float32 precision. skimage
    merges the latter within one grid and drops the faces that become degenerate; so does
    this, for both kinds, and then drops the vertices no face uses.
    """
    candidate = (np.mod(vertices, width) == 0).any(axis=1) | (np.mod(vertices, 1) == 0).all(axis=1)
    unique, inverse = np.unique(vertices[candidate], axis=0, return_inverse=True)
    rest = ~candidate
    index = np.empty(len(vertices), dtype=np.int64)
    index[rest] = np.arange(rest.sum())
    index[candidate] = rest.sum() + inverse.reshape(-1)
    vertices, faces = np.concatenate([vertices[rest], unique]), index[faces]
    degenerate = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    if degenerate.any():
        faces = faces[~degenerate]
        used = np.zeros(len(vertices), dtype=bool)
        used[faces.ravel()] = True
        vertices, faces = vertices[used], (np.cumsum(used) - 1)[faces]
    return vertices, faces


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
    vertices, faces, n_vertices, mc_seconds = [], [], [], 0.0
    # disable=None: drawn only on a terminal
    bar = tqdm(itertools.product(range(count), repeat=3), total=count**3, desc="grid", unit="chunk",
               disable=None if progress else True, leave=False, dynamic_ncols=True)
    for key in bar:
        corner_values = top_values[tuple((np.array(key) + CORNERS).T)]
        if ((corner_values > 0).all() or (corner_values < 0).all()) and np.abs(
                corner_values).min() > config.lipschitz_bound * math.sqrt(3.0) / 2.0 * width * h:
            continue
        origin = np.array(key, dtype=np.int64) * width
        chunk = _Chunk.empty(origin, width)
        chunk.set_exact(corner_flat, corner_values)
        for step in itertools.product((-1, 0, 1), repeat=3):  # values earlier chunks evaluated
            shared = boundary.get(tuple(k + d for k, d in zip(key, step, strict=True)))
            if shared is not None:
                local = shared[0] - origin
                inside = ((local >= 0) & (local <= width)).all(1)
                chunk.set_exact(local[inside] @ chunk.strides, shared[1][inside])
        grid = chunk_volume(field, chunk, r, config.lipschitz_bound, device, config.chunk_size)
        evaluated += chunk.evaluated
        if chunk.evaluated:
            done = face[~np.isnan(chunk.val[face])]
            boundary[key] = (np.stack([done // (n * n), done // n % n, done % n], -1) + origin,
                             chunk.val[done])
        if grid is None:
            continue
        t = time.perf_counter()
        v, f = marching_cubes_cells(grid[0], mask=grid[1])
        mc_seconds += time.perf_counter() - t
        # float32 at grid scale, as marching cubes on the whole grid would round them
        vertices.append((v + origin).astype(np.float32))
        faces.append(f.astype(np.int32))
        n_vertices.append(len(v))
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
    from sdfrecon.sdf.derivatives import value_and_gradient

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
    from sdfrecon.evaluation.metrics import nearest, vertex_components

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
