"""Clouds without normals: estimated normals point outward, cleaning removes outliers, and
each normals mode reconstructs a small shape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sdfrecon.cli import main
from sdfrecon.cloud.clean import clean_cloud
from sdfrecon.cloud.normals import estimate_normals, outward_votes
from sdfrecon.config import CleanConfig, NormalsConfig

REPO = Path(__file__).resolve().parents[1]


def torus_cloud(n: int = 4000, seed: int = 0):
    """Points (n, 3) on a torus (R=1, r=0.35) off the origin, with exact outward normals."""
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35)
    points, faces = trimesh.sample.sample_surface(mesh, n, seed=seed)
    return points + [3.0, -1.0, 0.5], mesh.face_normals[faces]


def test_extreme_point_votes_tell_outward_from_inward():
    points, normals = torus_cloud()
    assert outward_votes(points, normals) == 1.0
    assert outward_votes(points, -normals) == 0.0


def test_estimated_normals_of_a_torus_point_outward():
    points, exact = torus_cloud()
    normals = estimate_normals(points, NormalsConfig())
    agree = np.einsum("ij,ij->i", normals, exact)
    assert (agree > 0.5).mean() > 0.99  # consistent, outward, and accurate


def test_estimated_normals_of_a_single_view_scan_face_the_viewer():
    """The front half of a sphere, as a scanner on +z sees it: normals point to +z."""
    rng = np.random.default_rng(1)
    d = rng.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    front = d[d[:, 2] > 0.1]
    normals = estimate_normals(front * 2.0, NormalsConfig())
    assert (np.einsum("ij,ij->i", normals, front) > 0.5).mean() > 0.99


def test_outlier_removal_and_voxel_downsampling():
    points, normals = torus_cloud(5000)
    rng = np.random.default_rng(0)
    outliers = rng.uniform(points.min(0) - 1, points.max(0) + 1, size=(50, 3))
    noisy = np.vstack([points, outliers])
    kept, kept_normals, report = clean_cloud(noisy, np.vstack([normals, normals[:50]]),
                                             CleanConfig(outlier_neighbours=20, outlier_std_ratio=2.0))
    # uniform outliers that happen to fall near the surface are not outliers
    assert report["outliers_removed"] >= 40 and len(kept) == len(kept_normals)
    assert len(kept) > 4900
    down, down_normals, report = clean_cloud(points, normals, CleanConfig(voxel_size=0.05))
    assert len(down) < len(points) / 3 and report["voxel_merged"] == len(points) - len(down)
    np.testing.assert_allclose(np.linalg.norm(down_normals, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("mode", ["estimate", "free"])
def test_each_normals_mode_reconstructs_the_ellipsoid(tmp_path, mode):
    from sdfrecon.evaluation import shapes

    out = tmp_path / "e.obj"
    args = ["reconstruct", str(REPO / "data" / "sample_ellipsoid.xyz"), "-o", str(out), "--normals-mode", mode,
            "--steps", "300", "--hidden-features", "64", "--hidden-layers", "2", "--surface-points", "1024",
            "--off-surface-points", "1024", "--resolution", "80", "--no-progress", "--no-previews"]
    assert main(args) == 0
    mesh = trimesh.load(out, process=False)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * np.prod(shapes.AXES), rel=0.12)
    summary = json.loads((tmp_path / "e.run" / "summary.json").read_text())
    assert summary["normals"] == {"estimate": "estimated", "free": "none (normal-free training)"}[mode]
    if mode == "free":  # the divergence term decays to zero over half the steps
        rows = list(csv.DictReader((tmp_path / "e.run" / "losses.csv").open()))
        assert float(rows[0]["div"]) > 0 and float(rows[-1]["div"]) == 0
        assert float(rows[-1]["normal"]) == 0
