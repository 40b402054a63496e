"""Grid evaluation and marching cubes: axis order, exact spacing, outward winding, and the
coarse-to-fine grid equal to the dense one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from sdfrecon import extract as ex
from sdfrecon.config import ExtractConfig

CPU = torch.device("cpu")


def ellipsoid_field(centre, axes):
    """An approximate SDF of an axis-aligned ellipsoid (|x/a| - 1) * min(a): exact zero set,
    gradient bounded by max(a)/min(a) (< 3 here)."""
    c, a = torch.tensor(centre), torch.tensor(axes)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return (((x - c) / a).norm(dim=-1) - 1.0) * a.min()

    return fn


def two_spheres(x: torch.Tensor) -> torch.Tensor:
    """Union of two spheres: an exact, 1-Lipschitz SDF with two components."""
    a = (x - torch.tensor([-0.4, 0.1, 0.0])).norm(dim=-1) - 0.3
    b = (x - torch.tensor([0.45, -0.2, 0.3])).norm(dim=-1) - 0.2
    return torch.minimum(a, b)


def test_grid_axes_spacing_and_winding_on_an_off_centre_ellipsoid():
    centre, axes = (0.3, -0.2, 0.1), (0.5, 0.3, 0.2)
    volume = ex.dense_grid(ellipsoid_field(centre, axes), 97, CPU, 100_000)
    vertices, faces = ex.marching_cubes(volume)
    # a transposed grid swaps the extents, a half-voxel shift moves the centre by h/2 = 0.0104
    lo, hi = vertices.min(0), vertices.max(0)
    np.testing.assert_allclose((hi - lo) / 2, axes, atol=2e-3)
    np.testing.assert_allclose((hi + lo) / 2, centre, atol=2e-3)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight
    assert mesh.volume > 0  # outward winding
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * np.prod(axes), rel=0.01)


def test_vertices_lie_on_the_sphere():
    fn = lambda x: (x - torch.tensor([0.1, 0.2, -0.3])).norm(dim=-1) - 0.45  # noqa: E731
    vertices, _ = ex.marching_cubes(ex.dense_grid(fn, 81, CPU, 100_000))
    r = np.linalg.norm(vertices - [0.1, 0.2, -0.3], axis=1)
    assert np.abs(r - 0.45).max() < 2e-3  # linear interpolation error ~ h^2 / r


@pytest.mark.parametrize("resolution", [64, 129])
def test_coarse_to_fine_equals_dense_on_exact_sdf(resolution):
    dense = ex.dense_grid(two_spheres, resolution, CPU, 50_000)
    sparse, calls = ex.coarse_to_fine_grid(two_spheres, resolution, CPU, 50_000, lipschitz=1.0)
    assert calls < 0.5 * resolution**3
    v1, f1 = ex.marching_cubes(dense)
    v2, f2 = ex.marching_cubes(sparse)
    assert np.array_equal(f1, f2)
    np.testing.assert_allclose(v1, v2, atol=1e-6)
    assert not np.isnan(sparse).any()
    assert np.array_equal(np.sign(sparse), np.sign(dense))


def test_coarse_to_fine_equals_dense_on_a_trained_siren(trained_ellipsoid):
    model = trained_ellipsoid.network
    config = ExtractConfig(resolution=96)
    dense, _ = ex.sample_grid(model, dataclasses.replace(config, coarse_to_fine=False), CPU)
    sparse, stats = ex.sample_grid(model, config, CPU)
    v1, f1 = ex.marching_cubes(dense)
    v2, f2 = ex.marching_cubes(sparse)
    assert len(f1) > 1000
    assert np.array_equal(f1, f2)
    np.testing.assert_allclose(v1, v2, atol=1e-6)
    assert stats.evaluated < 0.6 * stats.total


def test_drop_far_components_keeps_the_supported_one():
    vertices, faces = ex.marching_cubes(ex.dense_grid(two_spheres, 64, CPU, 50_000))
    from sdfrecon.metrics import component_distances, vertex_components

    assert vertex_components(faces, len(vertices)).max() == 1
    np.testing.assert_allclose(np.sort(component_distances(vertices, faces, [[-0.4, 0.1, 0.3]])),
                               [0.0, np.linalg.norm([0.85, -0.3, 0.0]) - 0.2], atol=0.02)
    support = np.array([[-0.4, 0.1, 0.3]])  # on the first sphere only
    v, f, dropped = ex.drop_far_components(vertices, faces, support, max_distance=0.05)
    assert dropped == 1
    assert np.linalg.norm(v - [-0.4, 0.1, 0.0], axis=1).max() < 0.31
    assert f.max() == len(v) - 1
    assert ex.drop_far_components(vertices, faces, support, max_distance=2.0)[2] == 0


def test_empty_level_set_gives_empty_mesh():
    vertices, faces = ex.marching_cubes(np.ones((16, 16, 16), dtype=np.float32))
    assert vertices.shape == (0, 3) and faces.shape == (0, 3)
