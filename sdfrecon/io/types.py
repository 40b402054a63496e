"""The point cloud as every reader returns it (a module of its own, so that the readers and
:mod:`~sdfrecon.io.pointcloud`, which dispatches to them, both import it without a circle)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PointCloud:
    """Points (N, 3) float64 in the file's own units; unit normals (N, 3) float32 or None."""

    points: np.ndarray
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64)
        if self.points.ndim != 2 or self.points.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {self.points.shape}")
        if self.normals is not None:
            self.normals = np.asarray(self.normals, dtype=np.float32)
            if self.normals.shape != self.points.shape:
                raise ValueError(f"normals must have shape {self.points.shape}, "
                                 f"got {self.normals.shape}")

    def __len__(self) -> int:
        return int(self.points.shape[0])
