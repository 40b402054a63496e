"""Grid evaluation and marching cubes: axis order, exact spacing, outward winding, and the
sparse, chunked extraction giving the dense grid's mesh (welded, watertight) in bounded memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from sdfrecon.config import ExtractConfig
from sdfrecon.sdf import extract as ex

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


def assert_same_mesh(dense, sparse, atol=1e-6):
    """Two (vertices, faces) meshes are the same: a one-to-one vertex match within atol and
    the same faces (same cyclic order, so the same winding) under that match."""
    from scipy.spatial import cKDTree

    (v1, f1), (v2, f2) = dense, sparse
    assert v1.shape == v2.shape and f1.shape == f2.shape
    distance, match = cKDTree(v1).query(v2)
    assert distance.max() <= atol
    assert len(np.unique(match)) == len(v1)
    np.testing.assert_allclose(np.sort(v1, axis=0), np.sort(v2, axis=0), atol=atol)

    def canonical(faces):  # rotate each face to start at its smallest index, then sort
        rolled = np.stack([np.roll(faces, -k, axis=1) for k in range(3)], axis=1)
        first = rolled[np.arange(len(faces)), faces.argmin(1)]
        return first[np.lexsort(first.T[::-1])]

    np.testing.assert_array_equal(canonical(f1), canonical(match[f2]))


def dense_mesh(fn, resolution):
    return ex.marching_cubes(ex.dense_grid(fn, resolution, CPU, 50_000))


@pytest.mark.parametrize(("resolution", "chunk_cells"), [(64, 64), (129, 32), (97, 16), (81, 8), (50, 8)])
def test_sparse_equals_dense_on_exact_sdf(resolution, chunk_cells):
    config = ExtractConfig(resolution=resolution, lipschitz_bound=1.0, chunk_cells=chunk_cells)
    vertices, faces, stats = ex.extract_mesh(two_spheres, config, CPU)
    assert_same_mesh(dense_mesh(two_spheres, resolution), (vertices, faces))
    assert stats.evaluated < 0.5 * resolution**3
    assert vertices.dtype == np.float64 and faces.dtype == np.int64


def test_chunked_mesh_is_watertight_across_seams():
    # chunks of 8 cells cut both spheres many times: every seam vertex must be welded
    config = ExtractConfig(resolution=81, lipschitz_bound=1.0, chunk_cells=8)
    vertices, faces, _ = ex.extract_mesh(two_spheres, config, CPU)
    assert len(np.unique(vertices, axis=0)) == len(vertices)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # outward winding
    edges = np.sort(mesh.edges, axis=1)
    assert (np.unique(edges, axis=0, return_counts=True)[1] == 2).all()
    assert trimesh.Trimesh(*dense_mesh(two_spheres, 81), process=False).is_watertight


@pytest.mark.parametrize("chunk_cells", [64, 16])
def test_sparse_equals_dense_on_a_trained_siren(trained_ellipsoid, chunk_cells):
    model = trained_ellipsoid.network
    config = ExtractConfig(resolution=96, chunk_cells=chunk_cells)
    dense = ex.extract_mesh(model, dataclasses.replace(config, coarse_to_fine=False), CPU)
    vertices, faces, stats = ex.extract_mesh(model, config, CPU)
    assert len(dense[1]) > 1000
    assert_same_mesh(dense[:2], (vertices, faces))
    assert stats.evaluated < 0.3 * stats.total
    assert trimesh.Trimesh(vertices, faces, process=False).is_watertight


def test_closure_repairs_an_underestimated_lipschitz_bound():
    """|grad f| reaches 2.5 on this ellipsoid; with L = 1 some far tests are wrong, and the
    repeated closure (sdf/sparse.py, step 3) still recovers the dense grid's mesh here."""
    fn = ellipsoid_field((0.3, -0.2, 0.1), (0.5, 0.3, 0.2))
    config = ExtractConfig(resolution=97, lipschitz_bound=1.0, chunk_cells=16)
    assert_same_mesh(dense_mesh(fn, 97), ex.extract_mesh(fn, config, CPU)[:2])


def _spike(x: torch.Tensor, centre: torch.Tensor, width: float) -> torch.Tensor:
    """A bump of height 1 at centre, 0 beyond width: (1 - r / width)^2."""
    return torch.clamp(1.0 - (x - centre).norm(dim=-1) / width, min=0.0) ** 2


def test_chunks_meshed_under_a_narrow_bound_are_done_again_when_a_neighbour_breaks_it():
    """Eight chunks meet at the box centre (as the default 256^3 grid's 128-cell chunks do,
    here 129^3 and 64). A sphere's surface opens all of them; a thin feature, a bubble one
    grid point wide at the meeting point's diagonal neighbour in chunk (0, 0, 0), is too steep
    for the bound L = 3 there, so that chunk, meshed first, proves its cells far and misses
    it; the last chunk finds the bound false (a spike at the box corner). The chunks already
    meshed are done again with the wider bound: the dense grid's mesh, bubble included."""
    resolution, cells = 129, 64
    h = 2.0 / (resolution - 1)
    bubble = torch.full((3,), (cells - 1) * h - 1.0)
    corner = torch.ones(3)

    def field(x: torch.Tensor) -> torch.Tensor:
        return x.norm(dim=-1) - 0.45 + _spike(x, bubble, 1.2 * h) - 10.0 * _spike(x, corner, 1.2 * h)

    dense = dense_mesh(field, resolution)
    near = lambda v: int((np.linalg.norm(v - bubble.numpy(), axis=1) < 2 * h).sum())  # noqa: E731
    assert near(dense[0]) == 6  # the bubble: an octahedron around its grid point
    config = ExtractConfig(resolution=resolution, chunk_cells=cells, lipschitz_bound=3.0)
    vertices, faces, _ = ex.extract_mesh(field, config, CPU)
    assert near(vertices) == 6
    assert_same_mesh(dense, (vertices, faces))


def test_lean_forward_equals_the_network(trained_ellipsoid):
    model = trained_ellipsoid.network
    x = torch.rand(5000, 3) * 2.4 - 1.2
    with torch.no_grad():
        expected = model(x)
    lean = ex.field_evaluator(model)
    assert lean is not model
    np.testing.assert_allclose(lean(x).numpy(), expected.numpy(), atol=2e-6)
    assert ex.field_evaluator(two_spheres) is two_spheres


def test_sparse_extraction_never_holds_the_grid():
    """At 1024^3 a float32 grid is 4 GiB; a small sphere's mesh needs a few MiB."""
    import tracemalloc

    fn = lambda x: (x - torch.tensor([0.1, -0.2, 0.3])).norm(dim=-1) - 0.04  # noqa: E731
    tracemalloc.start()
    vertices, faces, stats = ex.extract_mesh(fn, ExtractConfig(resolution=1024, lipschitz_bound=1.0), CPU)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 256 * 2**20  # the chunk arrays: ~100 MiB at the default 128 cells
    assert stats.evaluated < 1e-3 * stats.total
    r = np.linalg.norm(vertices - [0.1, -0.2, 0.3], axis=1)
    assert np.abs(r - 0.04).max() < 1e-4 and trimesh.Trimesh(vertices, faces).is_watertight


def test_drop_far_components_keeps_the_supported_one():
    vertices, faces = ex.marching_cubes(ex.dense_grid(two_spheres, 64, CPU, 50_000))
    from sdfrecon.evaluation.metrics import component_distances
    from sdfrecon.geometry import vertex_components

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
