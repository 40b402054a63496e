"""Cleaning a cloud before training: statistical outlier removal and voxel down-sampling
(Open3D), each optional and reported in the log."""

from __future__ import annotations

import logging

import numpy as np

from sdfrecon.config import CleanConfig

log = logging.getLogger("sdfrecon")


def clean_cloud(points: np.ndarray, normals: np.ndarray | None, config: CleanConfig):
    """Apply config's steps to points (N, 3) and normals (N, 3) or None, in input units.

    Returns (points, normals, report) with report a dict of what each step removed.
    voxel_size is a fraction of the bounding-box diagonal, so one setting fits any units.
    """
    report: dict[str, int] = {}
    if config.outlier_neighbours > 0:
        keep = statistical_inliers(points, config.outlier_neighbours, config.outlier_std_ratio)
        report["outliers_removed"] = int((~keep).sum())
        points, normals = points[keep], None if normals is None else normals[keep]
        log.info("removed %d outlier(s) of %d points (k=%d, %.1f std)", report["outliers_removed"],
                 len(keep), config.outlier_neighbours, config.outlier_std_ratio)
    if config.voxel_size > 0:
        before = len(points)
        diag = float(np.linalg.norm(points.max(0) - points.min(0)))
        points, normals = voxel_downsample(points, normals, config.voxel_size * diag)
        report["voxel_merged"] = before - len(points)
        log.info("voxel down-sampling (%.3g of the diagonal): %d -> %d points",
                 config.voxel_size, before, len(points))
    return points, normals, report


def statistical_inliers(points: np.ndarray, neighbours: int, std_ratio: float) -> np.ndarray:
    """Mask (N,) of points whose mean distance to their k neighbours is within std_ratio
    standard deviations of the cloud's mean (Open3D's statistical outlier removal)."""
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    _, index = pcd.remove_statistical_outlier(nb_neighbors=neighbours, std_ratio=std_ratio)
    keep = np.zeros(len(points), dtype=bool)
    keep[np.asarray(index, dtype=np.int64)] = True
    return keep


def voxel_downsample(points: np.ndarray, normals: np.ndarray | None, voxel: float):
    """Average the points (and renormalised normals) that share a voxel of edge ``voxel``."""
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    if normals is not None:
        pcd.normals = o3d.utility.Vector3dVector(np.asarray(normals, np.float64))
    down = pcd.voxel_down_sample(voxel)
    out_normals = None
    if normals is not None:
        n = np.asarray(down.normals)
        out_normals = (n / np.linalg.norm(n, axis=1, keepdims=True).clip(min=1e-12)).astype(np.float32)
    return np.asarray(down.points), out_normals
