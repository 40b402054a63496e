"""Tests for sdfrecon.evaluation.clouds and the `sample` command: counts, seeds, the noise level
(against exact point-to-surface distances), the outlier fraction, and the written file."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from sdfrecon import cli
from sdfrecon.evaluation.clouds import outlier_box, sample_cloud
from sdfrecon.evaluation.metrics import bbox_diagonal, sample_surface
from sdfrecon.evaluation.scoring import surface_distance
from sdfrecon.io import load_point_cloud, save_mesh


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    return trimesh.Trimesh(mesh.vertices * [1.0, 0.8, 0.6] + [3.0, -1.0, 2.0], mesh.faces,
                           process=False)


@pytest.fixture
def commands():
    """`sdfrecon.cli.main`, which registers every subcommand."""
    return cli.main


def test_clean_samples(sphere) -> None:
    cloud = sample_cloud(sphere, 1000, seed=3)
    assert cloud.points.shape == (1000, 3) and cloud.normals.shape == (1000, 3)
    assert cloud.normals.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, rtol=1e-6)
    points, normals = sample_surface(sphere, 1000, seed=3)
    np.testing.assert_array_equal(cloud.points, points)
    np.testing.assert_array_equal(cloud.normals, normals.astype(np.float32))
    assert surface_distance(cloud.points, sphere).max() < 1e-6
    # Outward normals on this convex, outward-wound mesh.
    assert np.all(((cloud.points - sphere.vertices.mean(0)) * cloud.normals).sum(1) > 0)


def test_deterministic_per_seed(sphere) -> None:
    a = sample_cloud(sphere, 500, seed=7, noise=0.01, outliers=0.1)
    b = sample_cloud(sphere, 500, seed=7, noise=0.01, outliers=0.1)
    c = sample_cloud(sphere, 500, seed=8, noise=0.01, outliers=0.1)
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.normals, b.normals)
    assert not np.allclose(a.points, c.points)


def test_noise_level(sphere) -> None:
    """Gaussian sigma per axis = noise x diag: mean offset sigma sqrt(8/pi), mean distance to
    the (locally flat) surface sigma sqrt(2/pi); normals untouched."""
    n, noise = 20_000, 0.002
    sigma = noise * bbox_diagonal(sphere)
    clean = sample_cloud(sphere, n, seed=1)
    noisy = sample_cloud(sphere, n, seed=1, noise=noise)
    offsets = noisy.points - clean.points
    np.testing.assert_allclose(offsets.std(axis=0), sigma, rtol=0.03)
    assert np.linalg.norm(offsets, axis=1).mean() == pytest.approx(sigma * np.sqrt(8 / np.pi), rel=0.02)
    distance = surface_distance(noisy.points, sphere)
    assert distance.mean() == pytest.approx(sigma * np.sqrt(2 / np.pi), rel=0.03)
    np.testing.assert_array_equal(noisy.normals, clean.normals)


def test_outlier_fraction(sphere) -> None:
    n = 2000
    clean = sample_cloud(sphere, n, seed=2)
    dirty = sample_cloud(sphere, n, seed=2, outliers=0.1)
    changed = np.any(dirty.points != clean.points, axis=1)
    assert changed.sum() == 200
    low, high = outlier_box(sphere)
    extent = sphere.vertices.max(0) - sphere.vertices.min(0)
    np.testing.assert_allclose(high - low, 1.1 * extent, rtol=1e-12)
    outliers = dirty.points[changed]
    assert np.all((outliers >= low) & (outliers <= high))
    np.testing.assert_allclose(np.linalg.norm(dirty.normals[changed], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(dirty.normals[~changed], clean.normals[~changed])
    # Uniform in the box: mostly well off the surface.
    far = surface_distance(outliers, sphere) > 0.01 * bbox_diagonal(sphere)
    assert far.mean() > 0.8
    assert len(sample_cloud(sphere, 10, seed=0, outliers=1.0)) == 10


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"noise": -0.1}, {"noise": float("nan")},
                                    {"outliers": 1.5}, {"seed": -1}])
def test_bad_arguments(sphere, kwargs) -> None:
    args = {"n": 10, "seed": 0, "noise": 0.0, "outliers": 0.0} | kwargs
    with pytest.raises(ValueError):
        sample_cloud(sphere, **args)


def test_command_writes_a_cloud_with_normals(tmp_path, sphere, commands, capsys) -> None:
    mesh_path, out = tmp_path / "sphere.obj", tmp_path / "clouds" / "sphere.ply"
    save_mesh(mesh_path, sphere.vertices, sphere.faces)
    args = ["sample", str(mesh_path), "-n", "3000", "-o", str(out), "--noise", "0.001",
            "--outliers", "0.05", "--seed", "4"]
    assert commands(args) == 0
    cloud = load_point_cloud(out)
    expected = sample_cloud(sphere, 3000, seed=4, noise=0.001, outliers=0.05)
    np.testing.assert_allclose(cloud.points, expected.points, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(cloud.normals, expected.normals, atol=1e-6)
    assert "wrote" in capsys.readouterr().out

    # No silent overwrite; --overwrite replaces.
    before = out.read_bytes()
    assert commands([*args[:-1], "5"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert commands([*args[:-1], "5", "--overwrite"]) == 0
    assert out.read_bytes() != before

    bare = tmp_path / "bare.xyz"
    assert commands(["sample", str(mesh_path), "-n", "100", "-o", str(bare), "--no-normals"]) == 0
    assert load_point_cloud(bare).normals is None


@pytest.mark.parametrize(("extra", "message"), [
    (["--noise", "-1"], "--noise: must be a number >= 0"),
    (["--outliers", "2"], "--outliers: must be a fraction in [0, 1]"),
    (["--seed", "-3"], "--seed: must be >= 0"),
])
def test_command_rejects_bad_options(tmp_path, sphere, commands, capsys, extra, message) -> None:
    mesh_path = tmp_path / "sphere.obj"
    save_mesh(mesh_path, sphere.vertices, sphere.faces)
    out = tmp_path / "c.xyz"
    assert commands(["sample", str(mesh_path), "-n", "10", "-o", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_command_needs_a_mesh(tmp_path, commands, capsys) -> None:
    out = tmp_path / "c.xyz"
    assert commands(["sample", str(tmp_path / "missing.obj"), "-n", "10", "-o", str(out)]) == 2
    assert "missing.obj: no such file" in capsys.readouterr().err
    cloud_ply = tmp_path / "cloud.ply"
    cloud_ply.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                         "property float y\nproperty float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n")
    assert commands(["sample", str(cloud_ply), "-n", "10", "-o", str(out)]) == 2
    assert "has no faces" in capsys.readouterr().err
    assert not out.exists()
