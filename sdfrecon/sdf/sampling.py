"""Training batches: on-surface points with normals, off-surface points in the box, and
optional near-surface points, with explicit masks (no -1 sentinels in the targets).

Off-surface points are drawn from a pool computed once, before training, so that a step
costs no neighbour search: each comes with its distance to the nearest input point and the
side of the surface it lies on where that is known (the free-space term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from sdfrecon.config import SamplingConfig
from sdfrecon.geometry import median_spacing  # noqa: F401  (where callers found it first)

if TYPE_CHECKING:
    from sdfrecon.geometry import CloudIndex


@dataclass
class SdfBatch:
    """One step's points, all in normalised coordinates.

    points: (B, 3); normals: (B, 3), zero where not on the surface;
    on_surface: (B,) bool, the point lies on the surface with a known normal;
    off_surface: (B,) bool, the point is assumed away from the surface (exp(-alpha|f|) term);
    distance: (B,) distance to the nearest input point of the off-surface points (0 elsewhere),
    None without a free-space pool; side: (B,) +1 / -1 where an off-surface point is known to
    lie outside / inside, 0 where unknown (and elsewhere).
    Points that are neither on nor off the surface (near-surface samples) take part in the
    eikonal term only.
    """

    points: torch.Tensor
    normals: torch.Tensor
    on_surface: torch.Tensor
    off_surface: torch.Tensor
    distance: torch.Tensor | None = None
    side: torch.Tensor | None = None


class SdfSampler:
    """Draws :class:`SdfBatch` es from a normalised cloud, reproducibly from one generator."""

    def __init__(
        self,
        points: torch.Tensor,
        normals: torch.Tensor | None,
        config: SamplingConfig,
        generator: torch.Generator,
        margin: float = 0.05,
        pool_seed: int = 0,
        index: CloudIndex | None = None,
    ):
        """points: (N, 3) float32 on the training device, normalised coordinates; normals: (N, 3)
        unit normals there, or None for normal-free training (zeros are then drawn on the
        surface, and only visibility decides the side of free space).

        margin: the free-space term's distance (normalised units) within which the pool says
        nothing of the side. The pool comes from its own generator (``pool_seed``), so that a
        resumed run, whose step generator continues from a checkpoint, draws the same pool; a
        CPU one, so that the pool is the same on every device.
        index: the points' k-d tree and spacing, when the caller has built them."""
        self.points = points
        self.normals = normals if normals is not None else torch.zeros_like(points)
        self.config = config
        self.generator = generator
        self.pool = self.pool_distance = self.pool_side = None
        if config.free_space_pool > 0:
            pools = torch.Generator()  # on the CPU: the same pool on every device
            pools.manual_seed(pool_seed)
            self.pool, self.pool_distance, self.pool_side = free_space_pool(
                points, normals, config.free_space_pool, margin, pools,
                tree=None if index is None else index.tree,
                spacing=None if index is None else index.spacing)

    def sample(self) -> SdfBatch:
        c, g, dev = self.config, self.generator, self.points.device
        n = self.points.shape[0]
        idx = torch.randint(0, n, (c.surface_points,), generator=g, device=dev)
        surface, normals = self.points[idx], self.normals[idx]
        distance = side = None
        if self.pool is not None:
            pick = torch.randint(0, self.pool.shape[0], (c.off_surface_points,), generator=g, device=dev)
            box = self.pool[pick]
            # surface, off-surface, near-surface: only the off-surface rows carry values
            pad = (c.surface_points, c.near_surface_points)
            distance = torch.nn.functional.pad(self.pool_distance[pick], pad)
            side = torch.nn.functional.pad(self.pool_side[pick], pad)
        else:
            box = torch.rand((c.off_surface_points, 3), generator=g, device=dev) * 2.0 - 1.0
        parts, nparts = [surface, box], [normals, torch.zeros_like(box)]
        if c.near_surface_points > 0:
            idx = torch.randint(0, n, (c.near_surface_points,), generator=g, device=dev)
            noise = torch.randn((c.near_surface_points, 3), generator=g, device=dev)
            near = (self.points[idx] + c.near_surface_sigma * noise).clamp(-1.0, 1.0)
            parts.append(near)
            nparts.append(torch.zeros_like(near))
        points = torch.cat(parts)
        on = torch.zeros(points.shape[0], dtype=torch.bool, device=dev)
        on[: c.surface_points] = True
        off = torch.zeros_like(on)
        off[c.surface_points : c.surface_points + c.off_surface_points] = True
        return SdfBatch(points=points, normals=torch.cat(nparts), on_surface=on, off_surface=off,
                        distance=distance, side=side)


def free_space_margin(points: np.ndarray, floor: float, spacing: float | None = None) -> float:
    """The free-space term's margin for a cloud (N, 3) in normalised units: ``floor``, or twice
    the median distance between neighbouring points where the cloud is sparser (the surface
    passes up to about a spacing from its nearest point: no free-space claim may reach it).
    ``spacing``: the cloud's median spacing, when the caller has it."""
    return max(floor, 2.0 * (median_spacing(points) if spacing is None else spacing))


def free_space_pool(points: torch.Tensor, normals: torch.Tensor | None, size: int,
                    margin: float, generator: torch.Generator, neighbours: int = 8,
                    carve_resolution: int = 128, tree=None, spacing: float | None = None,
                    exact_within: float = 0.2, vote_points: int = 200_000
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``size`` points uniform in [-1, 1]^3 (drawn from ``generator``), the distance of each to
    the nearest of ``points`` (N, 3), and the side of the surface it lies on where that is
    known: +1 outside, -1 inside, 0 unknown. All on the points' device; computed once.

    The side comes from two witnesses, used only farther than ``margin`` from every point:
    * visibility: on a ``carve_resolution``^3 grid whose cells within twice the point spacing
      (plus a cell's half-diagonal) of a point are occupied, so that the cell any sampled
      surface crosses is, a cell that sees the box's boundary along at least two of the six axis
      directions without crossing an occupied cell is outside (space carving; two, so that
      one hole in a scan does not open the inside);
    * the oriented normals (when given): a point whose ``neighbours`` nearest input points all
      put it on the same side of their tangent planes (sign of n_j . (x - p_j), Hoppe et al.
      1992) lies on that side.
    Inside needs both: the normals say so and no axis direction sees out (the back of a
    single-view scan is outside, though the normals of the scanned side say inside; the
    inside of a shape seen through one hole is left unknown). Unknown points stay 0.

    The distance is exact within ``exact_within`` (normalised units) of the points; beyond
    it, where visibility already says outside, it is the carving grid's lower bound (cell
    distance minus a cell's diagonal, at most ~2 cells short): the free-space term asks
    s f >= d - margin, which a lower bound only weakens, far from where a surface could be.
    So the k-d tree answers the near points and the normals' vote (the far queries were
    most of this function's time), not the whole pool; the vote asks at most ``vote_points``
    of the points. ``tree``, ``spacing``: a k-d tree of
    ``points`` (sliding midpoint, as :func:`~sdfrecon.geometry.exact_tree`) and their median
    spacing, when the caller has them.
    """
    from scipy.spatial import cKDTree

    dev = points.device
    pool = (torch.rand((size, 3), generator=generator, device=generator.device) * 2.0 - 1.0).to(dev)
    p = points.detach().cpu().numpy().astype(np.float64)
    x = pool.cpu().numpy().astype(np.float64)
    tree = cKDTree(p, balanced_tree=False, compact_nodes=False) if tree is None else tree
    spacing = median_spacing(p, tree) if spacing is None else spacing
    reach = np.sqrt(3.0) / carve_resolution + 2.0 * spacing  # the cell a surface crosses is occupied
    seen_grid, cells = _carved(p, carve_resolution, reach)
    where = _cell(x, carve_resolution)
    seen = seen_grid[where]
    bound = np.maximum(cells[where] - np.sqrt(3.0), 0.0) * (2.0 / carve_resolution)
    distance = bound.copy()
    side = np.zeros(size)
    # the normals' vote: every point visibility did not call outside, against at most
    # vote_points of the points (a far point's nearest neighbours in a dense cloud are many
    # and slow to find, and any few of them on the nearest surface vote alike)
    vote = np.flatnonzero(seen < 2) if normals is not None else np.zeros(0, dtype=np.int64)
    exact = max(exact_within, 2.0 * margin)
    voted = np.zeros(size, dtype=bool)
    if len(vote):
        voters, voter_tree = np.arange(len(p)), tree
        if len(p) > vote_points:
            voters = np.sort(np.random.default_rng(0).choice(len(p), vote_points, replace=False))
            voter_tree = cKDTree(p[voters], balanced_tree=False, compact_nodes=False)
        d, nearest = voter_tree.query(x[vote], k=neighbours, workers=-1)
        d, nearest = d.reshape(len(vote), -1), voters[nearest.reshape(len(vote), -1)]
        if len(voters) == len(p):  # the whole cloud: these are the exact distances
            distance[vote] = d[:, 0]
            voted[vote] = True
        n = normals.detach().cpu().numpy().astype(np.float64)
        votes = np.sign(np.einsum("mkc,mkc->mk", n[nearest], x[vote, None, :] - p[nearest]))
        side[vote[np.all(votes > 0, axis=1)]] = 1.0
        side[vote[np.all(votes < 0, axis=1) & (seen[vote] == 0)]] = -1.0
    # exact distances near the points (those the vote did not already give)
    near = ~voted
    near &= bound < exact
    near = np.flatnonzero(near)
    d = tree.query(x[near], k=1, distance_upper_bound=exact, workers=-1)[0]
    distance[near] = np.where(np.isfinite(d), d, np.maximum(bound[near], exact))
    side[seen >= 2] = 1.0
    side[distance <= margin] = 0.0
    as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=dev)  # noqa: E731
    return pool, as_tensor(distance), as_tensor(side)


def _cell(x: np.ndarray, resolution: int) -> tuple[np.ndarray, ...]:
    """Index tuple of the grid cell of each point (M, 3) in [-1, 1]^3."""
    ijk = np.clip(((x + 1.0) * 0.5 * resolution).astype(np.int64), 0, resolution - 1)
    return ijk[:, 0], ijk[:, 1], ijk[:, 2]


def _carved(points: np.ndarray, resolution: int, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """(R, R, R) count of the axis directions (0-6) along which each cell of the grid over
    [-1, 1]^3 sees the boundary without crossing an occupied cell: one whose centre may lie
    within ``reach`` of an input point (each point's cell dilated by a ball of that radius
    plus the cell's half-diagonal), and (R, R, R) the distance, in cells, from each cell's
    centre to the nearest centre of a cell that holds a point. One Euclidean distance
    transform gives both (the dilation is that distance's threshold): no neighbour search."""
    from scipy import ndimage

    cell = 2.0 / resolution
    holds = np.zeros((resolution,) * 3, dtype=bool)
    holds[_cell(points, resolution)] = True
    cells = ndimage.distance_transform_edt(~holds)
    rho = reach / cell + np.sqrt(3.0) / 2.0
    occupied = cells**2 <= rho**2 + 1e-9  # the ball of offsets with |o|^2 <= rho^2 around each
    count = np.zeros(occupied.shape, dtype=np.int64)
    for axis in range(3):
        before = np.cumsum(occupied, axis=axis)  # occupied cells up to and including this one
        after = np.flip(np.cumsum(np.flip(occupied, axis=axis), axis=axis), axis=axis)
        count += (before == 0) + (after == 0)
    return count, cells
