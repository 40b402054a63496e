"""Normals for clouds that come without them: k-NN PCA estimate and consistent orientation
(Open3D), then a global sign fix so that they point outward."""

from __future__ import annotations

import logging

import numpy as np

from sdfrecon.config import NormalsConfig

log = logging.getLogger(__name__)


def estimate_normals(points: np.ndarray, config: NormalsConfig) -> np.ndarray:
    """Unit normals (N, 3) float32 for points (N, 3), oriented consistently and outward.

    Orientation propagates along a k-NN tangent-plane graph (Hoppe et al. 1992), which is
    consistent but of arbitrary global sign; the sign is then chosen so that, on average,
    normals point away from the cloud's centroid (right for closed, roughly star-shaped
    surfaces; the no-normals issue improves on this).
    """
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=config.normal_neighbours))
    pcd.orient_normals_consistent_tangent_plane(config.orient_neighbours)
    normals = np.asarray(pcd.normals, dtype=np.float64)
    outward = np.einsum("ij,ij->i", normals, points - points.mean(axis=0))
    if outward.sum() < 0:
        normals = -normals
    normals /= np.linalg.norm(normals, axis=1, keepdims=True).clip(min=1e-12)
    return normals.astype(np.float32)
