"""The one coordinate contract: the cloud is centred and scaled into a padded box inside
[-1, 1]^3 for training and extraction, and meshes are mapped back before they are written.

Only a uniform scale and a translation are used, so distances scale by one factor, the SDF
stays an SDF, and normals keep their direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdfrecon.config import NormalizationConfig


@dataclass(frozen=True)
class Normalization:
    """unit = (world - center) * scale; world = unit / scale + center.

    center: (3,) float64 in input units; scale: normalised units per input unit.
    """

    center: tuple[float, float, float]
    scale: float

    @classmethod
    def fit(cls, points: np.ndarray, config: NormalizationConfig) -> Normalization:
        """Centre the bounding box of points (N, 3) at the origin and scale its longest
        half-extent to 1 - padding."""
        lo, hi = points.min(axis=0), points.max(axis=0)
        half = float((hi - lo).max()) / 2.0
        if not half > 0.0:
            raise ValueError("the points have zero extent")
        center = (lo + hi) / 2.0
        return cls(center=tuple(float(c) for c in center), scale=(1.0 - config.padding) / half)

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """Input coordinates (N, 3) -> normalised coordinates (N, 3), float64."""
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.center)) * self.scale

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Normalised coordinates (N, 3) -> input coordinates (N, 3), float64."""
        return np.asarray(points, dtype=np.float64) / self.scale + np.asarray(self.center)

    def length_to_world(self, length: float) -> float:
        """A length in normalised units, in input units."""
        return length / self.scale

    def to_dict(self) -> dict:
        return {"center": list(self.center), "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> Normalization:
        center = tuple(float(c) for c in data["center"])
        if len(center) != 3:
            raise ValueError("normalization center must have 3 values")
        return cls(center=center, scale=float(data["scale"]))  # type: ignore[arg-type]
