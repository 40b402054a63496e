"""Sparse evaluation of the extraction grid, one chunk at a time, near the surface only.

(:func:`~sdfrecon.sdf.extract.extract_mesh` drives it.) The grid's cells are cut into chunks of W cells
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

The bound is checked as the grid is evaluated: two evaluated neighbours whose values differ
by more than L times their distance prove it false there, and the chunk is done again with
a wider bound (see :func:`~sdfrecon.sdf.extract.extract_mesh`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

from sdfrecon.sdf.grid import CORNERS, FieldFn, evaluate, grid_coordinates

LATTICE = np.array(list(itertools.product((0, 1, 2), repeat=3)), dtype=np.int64)
"""The 27 points of a block of two cells per axis, (27, 3), in (i, j, k) order."""
SLACK = 1.0 + 1e-4
"""A slope above lipschitz * SLACK breaks the bound (float32 rounding stays below)."""


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
    slope: float = 0.0  # the steepest |f(a) - f(b)| / |a - b| seen between evaluated points


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

    def observe(self, values: np.ndarray, spacing: float) -> None:
        """Record the steepest slope along the axes of lattices of values (M, a, b, c),
        ``spacing`` apart (normalised units), between points evaluated on both ends (NaN: not
        evaluated)."""
        for axis in (1, 2, 3):
            step = np.abs(np.diff(values, axis=axis))
            if step.size and not np.isnan(step).all():
                self.slope = max(self.slope, float(np.nanmax(step)) / spacing)

    def forget_bounds(self) -> None:
        """Drop every proven bound and fill, keeping the evaluated values (before redoing the
        chunk without the bound)."""
        exact = ~np.isnan(self.val)
        self.lower = np.where(exact, np.abs(self.val), 0.0).astype(np.float32)
        self.sign = np.where(exact, np.sign(self.val), 0.0).astype(np.float32)
        self.fill[:] = np.nan
        self.slope = 0.0


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
        flat = points.reshape(-1)
        chunk.evaluate(field, flat[chunk.lower[flat] <= weak], resolution, device, chunk_size)
        lattice = (blocks @ strides)[:, None] + (half * LATTICE) @ strides  # (M, 27)
        chunk.observe(chunk.val[lattice].reshape(-1, 3, 3, 3), half * h)
        if chunk.slope > lipschitz * SLACK:  # the bound is false here: the caller redoes the chunk
            return None
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
        raise AssertionError("sparse grid left a point without a sign (sparse.py bug)")
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
    chunk.observe(exact[None], h)  # neighbours 1 apart, closure values included
    if not mixed.any() or chunk.slope > lipschitz * SLACK:
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


def steep_chunks(top: np.ndarray, spacing: float, lipschitz: float) -> tuple[float, set]:
    """The steepest slope between neighbouring chunk corners top (C+1, C+1, C+1), ``spacing``
    apart, and the chunks (i, j, k) that hold an edge steeper than lipschitz."""
    count = top.shape[0] - 1
    steep = np.zeros((count,) * 3, dtype=bool)
    slope = 0.0
    for axis in range(3):
        step = np.abs(np.diff(top, axis=axis)) / spacing  # (C, C+1, C+1) with axis first
        slope = max(slope, float(step.max()) if step.size else 0.0)
        edge = np.moveaxis(step > lipschitz * SLACK, axis, 0)
        hit = edge[:, :-1, :-1] | edge[:, 1:, :-1] | edge[:, :-1, 1:] | edge[:, 1:, 1:]
        steep |= np.moveaxis(hit, 0, axis)
    return slope, {tuple(int(c) for c in key) for key in np.argwhere(steep)}
