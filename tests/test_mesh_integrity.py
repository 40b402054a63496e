"""What extraction returns can be trusted: no part of the surface skipped where the field is
steeper than the bound assumes, and one clean manifold (edge-manifold, no face of zero area,
no self-intersection, watertight by trimesh's and by Open3D's test) where the field is closed."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import trimesh

from sdfrecon.config import ExtractConfig
from sdfrecon.sdf import extract as ex

CPU = torch.device("cpu")
SMALL = torch.tensor([0.625, 0.625, 0.625])
BIG = torch.tensor([-0.5, -0.5, -0.5])


def hidden_sphere(x: torch.Tensor) -> torch.Tensor:
    """A sphere of radius 0.3 at BIG, and one of radius 0.05 at SMALL whose field has slope
    6 (twice the default bound): at resolution 65 with chunks of 8 cells, SMALL is the centre
    of a chunk whose corners all read 1.0 > 3 sqrt(3)/2 * 0.25, so the bound calls it far."""
    return torch.minimum((x - BIG).norm(dim=-1) - 0.3, 6.0 * ((x - SMALL).norm(dim=-1) - 0.05))


def components(vertices: np.ndarray, faces: np.ndarray) -> list[int]:
    """Face counts of the connected components, largest first."""
    parts = trimesh.Trimesh(vertices, faces, process=False).split(only_watertight=False)
    return sorted((len(p.faces) for p in parts), reverse=True)


def test_a_sphere_hidden_by_a_broken_bound_is_found(caplog):
    config = ExtractConfig(resolution=65, chunk_cells=8)
    dense = ex.extract_mesh(hidden_sphere, ExtractConfig(resolution=65, coarse_to_fine=False), CPU)
    with caplog.at_level(logging.WARNING):
        vertices, faces, stats = ex.extract_mesh(hidden_sphere, config, CPU)
    assert components(*dense[:2]) == components(vertices, faces) and len(components(vertices, faces)) == 2
    assert len(faces) == len(dense[1])
    assert stats.evaluated < 0.1 * stats.total  # wider where it must be, still sparse
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("the field is steeper than --lipschitz-bound 3 assumes (a slope of ")
    assert message.endswith("so that no part of the surface is skipped")


def test_a_field_within_the_bound_is_not_widened(caplog):
    def sphere(x):
        return x.norm(dim=-1) - 0.5

    with caplog.at_level(logging.WARNING):
        _, _, stats = ex.extract_mesh(sphere, ExtractConfig(resolution=49, chunk_cells=8), CPU)
    assert caplog.records == []
    assert stats.evaluated < 0.2 * stats.total


def cube(x: torch.Tensor) -> torch.Tensor:
    """Exact SDF of the cube [-0.5, 0.5]^3: at resolution 33 its faces lie on grid planes,
    where every grid value is exactly 0."""
    q = x.abs() - 0.5
    return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)


def tilted_ellipsoid(x: torch.Tensor) -> torch.Tensor:
    """An ellipsoid field (not a distance) whose level set passes within float32 rounding of
    some grid points: vertices there used to coincide."""
    c = torch.tensor([0.1, -0.05, 0.02])
    return ((x - c) / torch.tensor([0.7, 0.5, 0.4])).norm(dim=-1) - 1.0


def assert_clean(vertices: np.ndarray, faces: np.ndarray) -> None:
    """Edge-manifold, watertight (trimesh and Open3D, whose test includes vertex-manifold and
    no self-intersection), no face of zero area, outward winding."""
    import open3d as o3d

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert len(faces) > 0
    assert mesh.area_faces.min() > 0
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    o3d_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices),
                                         o3d.utility.Vector3iVector(faces))
    assert o3d_mesh.is_edge_manifold(allow_boundary_edges=False)
    assert o3d_mesh.is_vertex_manifold()
    assert not o3d_mesh.is_self_intersecting()
    assert o3d_mesh.is_watertight()


@pytest.mark.parametrize("coarse_to_fine", [False, True])
def test_a_surface_on_grid_points_is_one_clean_manifold(coarse_to_fine):
    """Sparse extraction returned nothing for the cube (every chunk saw values <= 0 or >= 0
    only), and exact zeros put several vertices on one point."""
    config = ExtractConfig(resolution=33, chunk_cells=8, coarse_to_fine=coarse_to_fine)
    vertices, faces, _ = ex.extract_mesh(cube, config, CPU)
    assert_clean(vertices, faces)
    # marching cubes rounds the cube's edges; the nudge moves a face by 0.01 voxel
    assert trimesh.Trimesh(vertices, faces, process=False).volume == pytest.approx(1.0, rel=0.05)
    assert np.abs(vertices).max() == pytest.approx(0.5, abs=0.02 * 2 / 32)


@pytest.mark.parametrize("coarse_to_fine", [False, True])
def test_near_zero_grid_values_leave_no_degenerate_face(coarse_to_fine):
    config = ExtractConfig(resolution=41, chunk_cells=8, coarse_to_fine=coarse_to_fine)
    assert_clean(*ex.extract_mesh(tilted_ellipsoid, config, CPU)[:2])


def test_nudged_values_keep_their_sign_and_move_off_zero():
    from sdfrecon.sdf.meshing import nudged

    volume = np.array([0.0, 1e-9, -1e-9, 0.5, -0.5], dtype=np.float32)
    np.testing.assert_array_equal(nudged(volume, 0.0, 0.01),
                                  np.float32([0.01, 0.01, -0.01, 0.5, -0.5]))
    far = np.float32([0.3, -0.2])
    assert nudged(far, 0.0, 0.01) is far


def test_the_trained_ellipsoid_is_one_clean_manifold(trained_ellipsoid):
    config = ExtractConfig(resolution=48, chunk_cells=16)
    vertices, faces, _ = ex.extract_mesh(trained_ellipsoid.network, config, CPU)
    assert_clean(vertices, faces)  # every component (this short fit has ghosts) is clean


@pytest.mark.slow
@pytest.mark.parametrize("cloud", ["sample_ellipsoid", "bun000"])
def test_reconstructions_at_the_defaults_are_clean(shared_data, tmp_path, cloud):
    """End to end at the defaults: one watertight, edge- and vertex-manifold component, no
    face of zero area, no self-intersecting pair (Open3D's test, block by block)."""
    from pathlib import Path

    from sdfrecon.cli import main
    from sdfrecon.sdf.meshing import mesh_integrity

    repo = Path(__file__).resolve().parents[1]
    source = (repo / "data" / "sample_ellipsoid.xyz" if cloud == "sample_ellipsoid"
              else shared_data / "raw_scans" / "bun000.xyz")
    out = tmp_path / f"{cloud}.ply"
    assert main(["reconstruct", str(source), "-o", str(out), "--no-progress"]) == 0
    mesh = trimesh.load(out, process=False)
    report = mesh_integrity(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    print(f"\n{report}")
    # one component per separate piece of the input: bun000 holds three (38.9k, 889 and 388
    # points, more than 8 point spacings apart), the ellipsoid one
    assert report["components"] == _pieces(source)
    assert report["zero_area_faces"] == 0
    assert report["trimesh_watertight"] and report["open3d_watertight"]


def _pieces(cloud) -> int:
    """Clusters of at least 100 points of a cloud file whose points link within 8 median
    spacings: the separate parts a reconstruction should have."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    from sdfrecon.io import load_point_cloud
    from sdfrecon.sdf.sampling import median_spacing

    points = load_point_cloud(cloud).points
    pairs = cKDTree(points).query_pairs(8 * median_spacing(points), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(points),) * 2)
    labels = connected_components(graph, directed=False)[1]
    return int((np.bincount(labels) >= 100).sum())


def _spheres(*parts: tuple[float, tuple[float, float, float], int]) -> tuple[np.ndarray, np.ndarray]:
    """Icospheres (radius, centre, subdivisions) in one mesh (V, 3), (F, 3)."""
    meshes = [trimesh.creation.icosphere(subdivisions=s, radius=r).apply_translation(c) for r, c, s in parts]
    mesh = trimesh.util.concatenate(meshes)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def test_block_self_intersection_test_finds_what_open3d_finds():
    import open3d as o3d

    from sdfrecon.sdf.meshing import self_intersecting_pairs

    vertices, faces = _spheres((0.5, (0, 0, 0), 2), (0.4, (0.6, 0.1, 0), 2))
    o3d_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces))
    whole = {tuple(sorted(p)) for p in np.asarray(o3d_mesh.get_self_intersecting_triangles()).tolist()}
    assert len(whole) > 10
    for blocks in (1, 7, 40):
        assert {tuple(p) for p in self_intersecting_pairs(vertices, faces, blocks).tolist()} == whole
    apart, apart_faces = _spheres((0.5, (0, 0, 0), 2), (0.4, (1.2, 0, 0), 2))
    assert len(self_intersecting_pairs(apart, apart_faces)) == 0


def test_untangle_puts_back_only_the_vertices_of_crossing_faces():
    """Two sheets 0.003 apart (as where the snap crossed them on the ant): a vertex pushed
    through the inner sheet is put back, the other moves stay."""
    from sdfrecon.sdf.meshing import self_intersecting_pairs
    from sdfrecon.sdf.snap import untangle

    before, faces = _spheres((0.5, (0, 0, 0), 3), (0.503, (0, 0, 0), 3))
    outer = np.arange(len(before) // 2, len(before))
    after = before.copy()
    unit = before / np.linalg.norm(before, axis=1, keepdims=True)
    after[outer] += 0.001 * unit[outer]  # outwards: crosses nothing
    through = outer[np.argmax(before[outer, 0])]
    after[through] = before[through] - 0.01 * unit[through]  # through the inner sphere
    assert len(self_intersecting_pairs(before, faces)) == 0 < len(self_intersecting_pairs(after, faces))
    fixed = untangle(before, after, faces)
    assert len(self_intersecting_pairs(fixed, faces)) == 0
    np.testing.assert_array_equal(fixed[through], before[through])
    kept = (fixed != before).any(axis=1)
    assert kept.sum() >= len(outer) - 10  # only the crossing faces' vertices went back


def test_unsupported_pockets_and_debris_are_dropped_real_parts_kept():
    """With the cloud's spacing: a closed pocket inside the solid (no input point within two
    spacings of it) and a speck smaller than 4 spacings^2 go, while a small real part (a
    twentieth of the area, not the largest: the rules apply to it) stays; without the
    spacing (the old rule: some vertex within max_distance) all stay."""
    from sdfrecon.sdf.meshing import drop_far_components
    from sdfrecon.sdf.sampling import median_spacing

    body = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    part = trimesh.creation.icosphere(subdivisions=3, radius=0.1).apply_translation([0.8, 0, 0])
    points = np.concatenate([trimesh.sample.sample_surface(body, 20_000, seed=0)[0],
                             trimesh.sample.sample_surface(part, 800, seed=1)[0]])
    spacing = median_spacing(points)
    pocket = trimesh.creation.icosphere(subdivisions=2, radius=0.05).apply_translation([0.38, 0, 0])
    pocket.invert()  # a cavity: its faces look into it
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.3 * spacing).apply_translation(points[0])
    mesh = trimesh.util.concatenate([body, part, pocket, speck])
    assert part.area < 0.1 * mesh.area
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    assert drop_far_components(vertices, faces, points, max_distance=0.1)[2] == 0
    v, f, dropped = drop_far_components(vertices, faces, points, max_distance=0.1, spacing=spacing)
    assert dropped == 2
    assert len(f) == len(body.faces) + len(part.faces)
    radius = np.minimum(np.abs(np.linalg.norm(v, axis=1) - 0.5),
                        np.abs(np.linalg.norm(v - [0.8, 0, 0], axis=1) - 0.1))
    assert radius.max() < 1e-6  # what is left: the body and the part, whole


def test_a_sparsely_sampled_real_object_is_kept():
    """Two objects sampled at densities 10x apart (a LiDAR scene: density falls with range):
    the sparse one (under a tenth of the area, its vertices mostly farther than two median
    spacings from a point) is kept, by the spacing of its own points; a pocket inside it
    (farther than two of its own spacings) and a speck by the dense one still go."""
    from sdfrecon.sdf.meshing import drop_far_components
    from sdfrecon.sdf.sampling import median_spacing

    near = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    far = trimesh.creation.icosphere(subdivisions=4, radius=0.15).apply_translation([1.2, 0, 0])
    density = 20_000 / near.area
    points = np.concatenate([trimesh.sample.sample_surface(near, 20_000, seed=0)[0],
                             trimesh.sample.sample_surface(far, round(0.1 * density * far.area), seed=1)[0]])
    spacing = median_spacing(points)
    pocket = trimesh.creation.icosphere(subdivisions=2, radius=0.03).apply_translation([1.2, 0, 0])
    pocket.invert()
    speck = trimesh.creation.icosphere(subdivisions=1, radius=0.3 * spacing).apply_translation(points[0])
    mesh = trimesh.util.concatenate([near, far, pocket, speck])
    assert far.area < 0.1 * mesh.area
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    labels = np.repeat([0, 1, 2, 3], [len(c.vertices) for c in (near, far, pocket, speck)])
    from sdfrecon.geometry import nearest

    distance = nearest(vertices, points)[0]
    assert np.mean(distance[labels == 1] <= 2 * spacing) < 0.25  # the median-spacing rule's victim
    v, f, dropped = drop_far_components(vertices, faces, points, max_distance=0.1, spacing=spacing)
    assert dropped == 2
    assert len(f) == len(near.faces) + len(far.faces)
    radius = np.minimum(np.abs(np.linalg.norm(v, axis=1) - 0.5),
                        np.abs(np.linalg.norm(v - [1.2, 0, 0], axis=1) - 0.15))
    assert radius.max() < 1e-6


def test_check_command_reports_each_mesh(tmp_path, capsys):
    """`sdfrecon check`: a clean sphere passes every test; two spheres that overlap are two
    components with crossing triangles, so Open3D calls them not watertight while trimesh's
    edge test still does; --json holds the same numbers."""
    import json

    from sdfrecon.cli import main

    trimesh.creation.icosphere(3).export(tmp_path / "sphere.ply")
    first, second = trimesh.creation.icosphere(3), trimesh.creation.icosphere(3)
    second.apply_translation([0.5, 0.0, 0.0])
    trimesh.util.concatenate([first, second]).export(tmp_path / "overlap.obj")
    paths = [str(tmp_path / "sphere.ply"), str(tmp_path / "overlap.obj")]
    assert main(["check", *paths, "--json", str(tmp_path / "c.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"{paths[0]}: 1,280 faces, 1 component(s) (smallest 1,280 faces), 0 of zero "
                        "area; watertight: trimesh yes, Open3D yes; edge-manifold yes, "
                        "vertex-manifold yes, 0 self-intersecting triangle pair(s)")
    assert lines[1].startswith(f"{paths[1]}: 2,560 faces, 2 component(s)")
    assert "watertight: trimesh yes, Open3D NO" in lines[1]
    sphere, overlap = json.loads((tmp_path / "c.json").read_text())["meshes"]
    assert sphere["mesh"] == paths[0] and sphere["open3d_watertight"] is True
    assert overlap["components"] == 2 and overlap["self_intersecting_pairs"] > 0


def test_check_command_refuses_a_bad_file_with_one_line(tmp_path, capsys):
    from sdfrecon.cli import main

    (tmp_path / "cloud.ply").write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
                                        "property float y\nproperty float z\nend_header\n0 0 0\n")
    trimesh.creation.icosphere(1).export(tmp_path / "good.ply")
    # the good mesh first: nothing is printed for it, since every file is read before any check
    assert main(["check", str(tmp_path / "good.ply"), str(tmp_path / "cloud.ply")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"sdfrecon: error: {tmp_path / 'cloud.ply'}: has no faces: it is empty "
                            "or a point cloud, not a mesh\n")
    assert main(["check", str(tmp_path / "missing.obj")]) == 2
    assert capsys.readouterr().err == f"sdfrecon: error: {tmp_path / 'missing.obj'}: no such file\n"
