"""How noisy a cloud is, measured from the cloud itself, and the points moved onto a smooth
local fit when it is noisy.

Around a point, a smooth surface is a height field over its tangent plane: within a few
spacings, z = a x^2 + b x y + c y^2 + d x + e y + g fits it to third order. Position noise
does not fit: the residual of that least-squares fit over k neighbours is the noise along
the normal, with k - 6 degrees of freedom. The median over points of the residual's root
mean square is the noise's standard deviation (robust to the few neighbourhoods that
straddle a sharp edge or two sheets); a clean sample of a smooth surface gives a few
thousandths of its spacing.

Denoising moves each point along its neighbourhood's normal onto that neighbourhood's
fitted quadric (moving least squares, Gaussian-weighted, twice): the offset along the
normal is averaged over the neighbours, so the noise falls to a fraction of itself, while
the surface's own curvature, which the quadric follows, stays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CHUNK = 65536
"""Neighbourhoods fitted at once (memory ~ CHUNK * k * 80 bytes)."""
GROWTH = 1.3
"""A residual that grows by less than this when the neighbourhood doubles is noise."""


@dataclass(frozen=True)
class NoiseEstimate:
    """sigma: the estimated standard deviation of the noise along the surface normal, in the
    cloud's units; spacing: the cloud's median nearest-neighbour spacing, same units;
    diagonal: its bounding-box diagonal; points: how many neighbourhoods were fitted;
    neighbours: the neighbourhood size the estimate settled on; growth: the residual over
    twice the first neighbourhood divided by that over the first (nan when not measured):
    about 1 for noise, which does not depend on the neighbourhood, 1.4-2.7 where curvature
    or sparse sampling makes the residual (clean 3,000-point clouds, the shared chair)."""

    sigma: float
    spacing: float
    diagonal: float
    points: int
    neighbours: int
    growth: float = float("nan")

    @property
    def is_noise(self) -> bool:
        """The residual stayed within 1.3x when the neighbourhood doubled: noise, not shape."""
        return self.growth < GROWTH

    @property
    def relative(self) -> float:
        """sigma as a fraction of the bounding-box diagonal (how benchmarks state noise)."""
        return self.sigma / self.diagonal if self.diagonal > 0 else 0.0

    @property
    def per_spacing(self) -> float:
        """sigma in point spacings: what decides whether the fit must average points."""
        return self.sigma / self.spacing if self.spacing > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"sigma": self.sigma, "relative_to_diagonal": self.relative,
                "per_spacing": self.per_spacing, "spacing": self.spacing,
                "neighbourhoods": self.points, "neighbours": self.neighbours,
                "growth": None if math.isnan(self.growth) else self.growth}


def _frames(neigh: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted centroids (M, 3) and PCA frames (M, 3, 3) of neighbourhoods (M, k, 3) with
    weights (M, k): the frame's last column is the normal (least variance)."""
    total = weight.sum(axis=1)
    centre = (weight[:, None, :] @ neigh)[:, 0, :] / total[:, None]
    d = neigh - centre[:, None, :]
    cov = (d * weight[:, :, None]).transpose(0, 2, 1) @ d
    _, vec = np.linalg.eigh(cov)  # ascending eigenvalues: column 0 is the normal
    return centre, vec[:, :, ::-1]


def quadric_fits(neigh: np.ndarray, at: np.ndarray, weight: np.ndarray | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares quadric height fits of neighbourhoods (M, k, 3), k >= 7.

    weight: (M, k) >= 0, each neighbour's weight in the fit (default all 1; a
    neighbourhood needs 7 over 0.01). Returns (rms, offset, normal): rms (M,) the root mean
    square residual with (neighbours - 6) degrees of freedom; offset (M,) the fitted height
    minus the height of ``at`` (M, 3) (the signed move along ``normal`` that puts ``at`` on
    the fit; 0 where fewer than 7 neighbours count); normal (M, 3) the frame's unit normal
    (sign arbitrary)."""
    neigh = np.asarray(neigh, dtype=np.float64)
    m, k, _ = neigh.shape
    weight = np.ones((m, k)) if weight is None else np.asarray(weight, dtype=np.float64)
    usable = (weight > 0.01).sum(axis=1) >= 7
    weight = np.where(usable[:, None], weight, 1.0)  # a fit anyway; its offset is dropped
    centre, frame = _frames(neigh, weight)
    local = (neigh - centre[:, None, :]) @ frame
    scale = np.sqrt((weight * (local[:, :, :2] ** 2).sum(axis=2)).sum(axis=1) / weight.sum(axis=1)) + 1e-300
    x, y, z = local[:, :, 0] / scale[:, None], local[:, :, 1] / scale[:, None], local[:, :, 2]
    design = np.empty((m, k, 6))  # (M, k, 6): x^2, xy, y^2, x, y, 1
    design[:, :, 0], design[:, :, 1], design[:, :, 2] = x * x, x * y, y * y
    design[:, :, 3], design[:, :, 4], design[:, :, 5] = x, y, 1.0
    weighted = (design * weight[:, :, None]).transpose(0, 2, 1)  # (M, 6, k)
    gram = weighted @ design + 1e-9 * np.eye(6)
    coef = np.linalg.solve(gram, weighted @ z[:, :, None])[:, :, 0]
    residual = z - (design @ coef[:, :, None])[:, :, 0]
    rms = np.sqrt((weight * residual ** 2).sum(axis=1) / np.maximum(weight.sum(axis=1) - 6, 1))
    q = ((at - centre)[:, None, :] @ frame)[:, 0, :]
    qx, qy = q[:, 0] / scale, q[:, 1] / scale
    fitted = (coef[:, 0] * qx * qx + coef[:, 1] * qx * qy + coef[:, 2] * qy * qy
              + coef[:, 3] * qx + coef[:, 4] * qy + coef[:, 5])
    return rms, np.where(usable, fitted - q[:, 2], 0.0), frame[:, :, 2]


def _median_rms(points: np.ndarray, tree, rows: np.ndarray, k: int) -> float:
    """Median over ``rows`` of the quadric fit's RMS residual over k neighbours."""
    _, nearest = tree.query(points[rows], k=k, workers=-1)
    rms = np.concatenate([quadric_fits(points[nearest[s:s + CHUNK]], points[rows[s:s + CHUNK]])[0]
                          for s in range(0, len(rows), CHUNK)])
    return float(np.median(rms))


def estimate_noise(points: np.ndarray, tree=None, neighbours: int = 24, max_points: int = 4000,
                   seed: int = 0, spacing: float | None = None, check_above: float = 0.5) -> NoiseEstimate:
    """The noise along the normal of a cloud (N, 3): the median over up to ``max_points``
    random neighbourhoods of the quadric fit's RMS residual.

    A fit over a neighbourhood not much wider than the noise follows the noise and
    under-reports it (30k points at 0.5 % of the diagonal: 0.42 % at k = 24, 0.47 % at 48);
    a wider one on a sparse or curved cloud reports curvature as noise (3,000 points at
    0.5 %: 0.61 % at 24, 0.87 % at 48). So when the estimate over ``neighbours`` points
    exceeds ``check_above`` spacings it is redone over twice as many, and that one is kept
    when it is within :data:`GROWTH` of the first (noise, which does not grow with the
    neighbourhood), not when it grows faster (curvature): ``growth`` records which.
    tree: a scipy cKDTree of ``points`` (built when None); spacing: the median
    nearest-neighbour distance when the caller knows it."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) if n else 0.0
    if min(neighbours, n) < 7:
        return NoiseEstimate(0.0, 0.0, diagonal, 0, 0)
    tree = cKDTree(points) if tree is None else tree
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=max_points, replace=False) if n > max_points else np.arange(n)
    if spacing is None:
        d2, _ = tree.query(points[rows], k=2, workers=-1)
        spacing = float(np.median(d2[:, 1]))
    k = min(neighbours, n)
    sigma = _median_rms(points, tree, rows, k)
    growth = float("nan")
    if sigma > check_above * spacing and 2 * k <= n:
        wider = _median_rms(points, tree, rows, 2 * k)
        growth = wider / sigma
        if growth < GROWTH:
            sigma, k = max(sigma, wider), 2 * k
    return NoiseEstimate(sigma, float(spacing), diagonal, len(rows), k, growth)


def denoise(points: np.ndarray, tree=None, neighbours: int = 96, rounds: int = 2,
            normals: np.ndarray | None = None, agree: float = 0.5) -> np.ndarray:
    """The points (N, 3) moved along their neighbourhood's normal onto its quadric fit,
    ``rounds`` times (each round refits on the moved points); (N, 3) float64.

    Each fit weighs a neighbour at distance d by exp(-(d / h)^2), h the distance of the
    point's (neighbours / 2)-th neighbour: the near ones decide (less curvature bias), the far
    ones still average the noise. Measured at 0.5 % noise, 30k points, mean distance of the
    points to the true surface (% of the diagonal), from 0.39 before: rocker-arm 0.112
    unweighted over 96 (one round), 0.107 weighted, 0.098 weighted twice; fertility 0.110,
    0.104, 0.090. tree: a cKDTree of ``points`` for the neighbourhoods (kept for the later
    rounds: the moves are along the normal, about the noise). normals: (N, 3) unit normals,
    when known: only neighbours whose normal is within arccos(``agree``) of the point's own
    enter its fit, so the two sides of a thin part (opposite normals, closer than the
    neighbourhood) are fitted apart and not pulled onto their middle."""
    from scipy.spatial import cKDTree

    moved = np.asarray(points, dtype=np.float64).copy()
    k = min(neighbours, len(moved))
    if k < 7:
        return moved
    tree = cKDTree(moved) if tree is None else tree
    dist, nearest = tree.query(moved, k=k, workers=-1)
    h = np.maximum(dist[:, max(k // 2, 1) - 1:max(k // 2, 1)], 1e-300)
    kernel = np.exp(-((dist / h) ** 2))  # (N, k)
    if normals is not None:
        unit = np.asarray(normals, dtype=np.float64)
        for s in range(0, len(moved), CHUNK):
            rows = nearest[s:s + CHUNK]
            kernel[s:s + CHUNK] *= (unit[rows] @ unit[s:s + CHUNK][:, :, None])[:, :, 0] > agree
    for _ in range(rounds):
        source = moved.copy()
        for s in range(0, len(moved), CHUNK):
            _, offset, normal = quadric_fits(source[nearest[s:s + CHUNK]], source[s:s + CHUNK],
                                             kernel[s:s + CHUNK])
            moved[s:s + CHUNK] = source[s:s + CHUNK] + offset[:, None] * normal
    return moved
