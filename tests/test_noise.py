"""The noise estimate and the denoising step (sdfrecon/cloud/noise.py) on clouds whose true
surface and noise are known, and how reconstruct's cloud preparation uses them."""

from __future__ import annotations

import numpy as np
import pytest

from sdfrecon.cloud.noise import denoise, estimate_noise
from sdfrecon.cloud.prepare import prepare_cloud
from sdfrecon.config import ReconstructConfig, with_options
from sdfrecon.io import PointCloud

RADIUS = 0.7


def _sphere(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform on a sphere of RADIUS centred at (3, -1, 2), plus isotropic Gaussian
    noise of ``noise`` x the bounding-box diagonal per axis; and the exact normals."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    diagonal = 2 * RADIUS * np.sqrt(3)
    points = RADIUS * direction + [3.0, -1.0, 2.0] + rng.normal(scale=noise * diagonal, size=(n, 3))
    return points, direction.astype(np.float32)


def _off_sphere(points: np.ndarray) -> np.ndarray:
    return np.abs(np.linalg.norm(points - [3.0, -1.0, 2.0], axis=1) - RADIUS)


@pytest.mark.parametrize("noise", [0.0025, 0.005])
def test_estimate_recovers_the_noise_of_a_sphere(noise):
    points, _ = _sphere(30000, noise)
    estimate = estimate_noise(points)
    assert estimate.relative == pytest.approx(noise, rel=0.15)
    assert estimate.per_spacing > 0.5  # what auto denoising acts on


def test_a_clean_cloud_measures_next_to_no_noise():
    points, _ = _sphere(30000, 0.0)
    estimate = estimate_noise(points)
    assert estimate.per_spacing < 0.05
    assert estimate.as_dict()["relative_to_diagonal"] < 1e-4


def test_denoising_moves_points_towards_the_surface():
    points, _ = _sphere(30000, 0.005)
    before = _off_sphere(points).mean()
    after = _off_sphere(denoise(points, neighbours=48)).mean()
    assert after < 0.45 * before  # averaging over 48 neighbours: ~sqrt(6 / 48) ~ 0.35 of it
    clean, _ = _sphere(30000, 0.0)
    assert _off_sphere(denoise(clean, neighbours=24)).max() < 1e-4  # the quadric follows curvature


def _prepared(points: np.ndarray, normals: np.ndarray, **options) -> tuple[PointCloud, dict]:
    config = with_options(ReconstructConfig(), options, "test") if options else ReconstructConfig()
    return prepare_cloud(PointCloud(points, normals), config, "sphere.xyz")


def test_reconstruct_denoises_a_noisy_cloud_and_reports_the_estimate(caplog):
    points, normals = _sphere(20000, 0.005, seed=1)
    with caplog.at_level("INFO", logger="sdfrecon"):
        cloud, info = _prepared(points, normals)
    assert info["denoised"] is True
    assert info["noise"]["relative_to_diagonal"] == pytest.approx(0.005, rel=0.2)
    assert "sphere.xyz: estimated noise" in caplog.text and "denoising" in caplog.text
    assert _off_sphere(cloud.points).mean() < 0.5 * _off_sphere(points).mean()
    np.testing.assert_array_equal(cloud.normals, normals)  # the file's normals stay


def test_a_clean_cloud_is_left_as_it_is_and_off_means_off():
    points, normals = _sphere(20000, 0.0, seed=2)
    cloud, info = _prepared(points, normals)
    assert info["denoised"] is False and info["noise"]["per_spacing"] < 0.05
    np.testing.assert_array_equal(cloud.points, points)
    noisy, _ = _sphere(20000, 0.005, seed=2)
    cloud, info = _prepared(noisy, normals, denoise="off")
    assert "noise" not in info
    np.testing.assert_array_equal(cloud.points, noisy)


def test_the_two_sides_of_a_thin_part_are_denoised_apart():
    """Two noisy parallel sheets 1.5 spacings apart (a thin plate): fitted together they
    collapse onto their middle; with their opposite normals each side keeps its place."""
    rng = np.random.default_rng(3)
    side = 120
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    spacing = 1.0 / (side - 1)
    gap = 1.5 * spacing
    flat = np.column_stack([u.ravel(), v.ravel()])
    points = np.vstack([np.column_stack([flat, np.zeros(len(flat))]),
                        np.column_stack([flat, np.full(len(flat), gap)])])
    points += rng.normal(scale=0.3 * spacing, size=points.shape)
    normals = np.repeat([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]], len(flat), axis=0)
    lower = np.arange(len(points)) < len(flat)
    apart = denoise(points, neighbours=48, normals=normals)
    assert abs(apart[lower, 2].mean()) < 0.1 * gap and abs(apart[~lower, 2].mean() - gap) < 0.1 * gap
    assert apart[lower, 2].std() < 0.5 * points[lower, 2].std()
    merged = denoise(points, neighbours=48)
    assert merged[~lower, 2].mean() - merged[lower, 2].mean() < 0.5 * gap


def test_no_snap_onto_a_denoised_cloud():
    from sdfrecon.config import ExtractConfig
    from sdfrecon.reconstruction import extraction

    snapping = ExtractConfig()
    assert snapping.snap_to_points
    assert extraction(snapping, {"denoised": True}).snap_to_points is False
    assert extraction(snapping, {"denoised": False}) is snapping
    assert extraction(snapping, {}) is snapping  # denoising off: no estimate, the snap stays


def test_a_cloud_over_the_cap_is_measured_and_denoised_as_a_subset():
    points, normals = _sphere(40000, 0.005, seed=4)
    cloud, info = _prepared(points, normals, denoise_max_points=10000)
    assert info["denoised"] is True and len(cloud.points) == len(cloud.normals) == 10000
    radial = (cloud.points - [3.0, -1.0, 2.0]) / np.linalg.norm(cloud.points - [3.0, -1.0, 2.0], axis=1)[:, None]
    assert np.median(np.einsum("ij,ij->i", radial, cloud.normals)) > 0.99  # each keeps its own normal
    clean, clean_normals = _sphere(40000, 0.0, seed=4)
    cloud, info = _prepared(clean, clean_normals, denoise_max_points=10000)
    assert info["denoised"] is False and len(cloud.points) == 40000


def test_a_sparse_curved_cloud_is_not_mistaken_for_noise(caplog):
    """400 clean points on a small sphere: the quadric residual over 24 neighbours is large
    against the spacing, but it grows with the neighbourhood: shape, not noise."""
    points, normals = _sphere(400, 0.0, seed=5)
    points = (points - [3.0, -1.0, 2.0]) * 0.3  # spacing ~ radius / 10: strongly curved patches
    estimate = estimate_noise(points, check_above=0.0)
    assert estimate.growth > 1.3 and not estimate.is_noise
    noisy, _ = _sphere(30000, 0.005, seed=5)
    assert estimate_noise(noisy).is_noise
    with caplog.at_level("INFO", logger="sdfrecon"):
        cloud, info = _prepared(points, normals, denoise_threshold=0.0)
    assert info["denoised"] is False and "not noise" in caplog.text
    np.testing.assert_array_equal(cloud.points, points)
