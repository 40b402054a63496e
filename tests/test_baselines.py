"""Screened Poisson baseline: a closed surface in the input's coordinates, deterministic,
density trimming, and the file-to-file command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdfrecon.evaluation.poisson import poisson_file, poisson_reconstruct

CENTRE = np.array([10.0, -3.0, 5.0])
RADIUS = 2.0


@pytest.fixture(scope="module")
def sphere_cloud() -> tuple[np.ndarray, np.ndarray]:
    """4000 points on an off-centre sphere (radius 2 at (10, -3, 5)) with outward normals."""
    rng = np.random.default_rng(3)
    direction = rng.normal(size=(4000, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return CENTRE + RADIUS * direction, direction


@pytest.fixture(scope="module")
def sphere_mesh(sphere_cloud):
    return poisson_reconstruct(*sphere_cloud, depth=6)


def test_closed_sphere_in_input_coordinates(sphere_mesh):
    import trimesh

    from sdfrecon.evaluation.metrics import topology

    vertices, faces = sphere_mesh
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    assert vertices.shape[1] == 3 and faces.shape[1] == 3
    radius = np.linalg.norm(vertices - CENTRE, axis=1)
    assert np.abs(radius - RADIUS).max() < 0.02 * RADIUS
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    topo = topology(mesh)
    assert topo["watertight"] and topo["components"] == 1 and topo["genus"] == 0
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.02)  # positive: outward
    np.testing.assert_allclose(mesh.center_mass, CENTRE, atol=0.01)


def test_deterministic(sphere_cloud, sphere_mesh):
    vertices, faces = poisson_reconstruct(*sphere_cloud, depth=6)
    np.testing.assert_array_equal(vertices, sphere_mesh[0])
    np.testing.assert_array_equal(faces, sphere_mesh[1])


def test_trimming_removes_low_density_vertices():
    """A hemisphere cloud: Poisson closes it with a low-density cap far from the data;
    trimming at a quantile removes about that share of vertices, and the cap first."""
    rng = np.random.default_rng(5)
    direction = rng.normal(size=(4000, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    direction[:, 2] = np.abs(direction[:, 2])
    points, normals = CENTRE + RADIUS * direction, direction
    full_v, full_f = poisson_reconstruct(points, normals, depth=6)
    trim_v, trim_f = poisson_reconstruct(points, normals, depth=6, trim_quantile=0.1)
    assert 0.85 * len(full_v) < len(trim_v) < 0.95 * len(full_v)
    assert len(np.unique(trim_f)) == len(trim_v)  # no unreferenced vertices left
    # The vertices kept are a subset of the untrimmed ones; the ones dropped lie below the
    # data (z < centre), where Poisson had to invent the surface.
    kept = {tuple(v) for v in trim_v}
    assert kept <= {tuple(v) for v in full_v}
    dropped = np.array([v for v in full_v if tuple(v) not in kept])
    below = CENTRE[2] - 0.025 * RADIUS
    assert np.mean(dropped[:, 2] < below) > 0.95
    assert np.mean(full_v[:, 2] < below) > 0.08 > 0.03 > np.mean(trim_v[:, 2] < below)
    assert poisson_reconstruct(points, normals, depth=6, trim_quantile=0.0)[0].shape == full_v.shape


def test_bad_arguments(sphere_cloud):
    points, normals = sphere_cloud
    with pytest.raises(ValueError, match="normals"):
        poisson_reconstruct(points, normals[:10])
    with pytest.raises(ValueError, match="trim_quantile"):
        poisson_reconstruct(points, normals, trim_quantile=1.0)
    with pytest.raises(ValueError, match="non-zero"):
        poisson_reconstruct(points, np.zeros_like(normals))


def test_poisson_file_and_command(tmp_path: Path, sphere_cloud):
    import trimesh

    from sdfrecon.cli.bench import Poisson
    from sdfrecon.errors import InputError
    from sdfrecon.io import PointCloud, save_point_cloud

    cloud = tmp_path / "sphere.xyz"
    save_point_cloud(cloud, PointCloud(*sphere_cloud))
    out = tmp_path / "sphere.ply"
    info = poisson_file(cloud, out, depth=6)
    assert info["normals"] == "file" and info["points"] == 4000 and info["faces"] > 0
    mesh = trimesh.load(out, process=False)
    assert len(mesh.faces) == info["faces"]
    np.testing.assert_allclose(mesh.center_mass, CENTRE, atol=0.01)
    with pytest.raises(InputError, match="already exists"):
        poisson_file(cloud, out, depth=6)
    # Same mesh again through the command, with --overwrite: byte-identical file.
    before = out.read_bytes()
    Poisson(input=cloud, output=out, depth=6, overwrite=True).run()
    assert out.read_bytes() == before
    # Without normals: estimated as `reconstruct` does, still the sphere.
    bare = tmp_path / "bare.xyz"
    save_point_cloud(bare, PointCloud(sphere_cloud[0]))
    info = poisson_file(bare, tmp_path / "bare.obj", depth=6)
    assert info["normals"] == "estimated"
    mesh = trimesh.load(tmp_path / "bare.obj", process=False)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * RADIUS**3, rel=0.03)
