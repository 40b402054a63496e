"""End-to-end quality with the default settings on real shapes (slow: minutes each).

Run with ``make test-slow``. Thresholds are those of the reconstruction issue: the bunny
within 0.3% of the diagonal in Chamfer-L1 and F-score@1% >= 0.99 against the Stanford
mesh, one component; clouds sampled from genus-1 and genus-4 meshes keep their genus.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdfrecon.cli import main
from sdfrecon.evaluation.metrics import compare_meshes, sample_surface, topology
from sdfrecon.io import PointCloud, load_mesh, save_point_cloud

pytestmark = pytest.mark.slow


def test_bunny_with_defaults(shared_data, tmp_path):
    out = tmp_path / "bunny.obj"
    assert main(["reconstruct", str(shared_data / "bunny.xyz"), "-o", str(out), "--no-progress"]) == 0
    rec, ref = load_mesh(out), load_mesh(shared_data / "meshes" / "bun_zipper.ply")
    m = compare_meshes(rec, ref, n=100_000, seed=0)
    topo = topology(rec)
    summary = json.loads((tmp_path / "bunny.run" / "summary.json").read_text())
    print(f"\nbunny: {summary['total_seconds']:.0f} s, Chamfer-L1 {m['chamfer_l1_rel']:.5f} diag, "
          f"F@1% {m['fscore@1%']:.4f}, {topo}")
    assert m["chamfer_l1_rel"] <= 0.003
    assert m["fscore@1%"] >= 0.99
    assert topo["components"] == 1 and topo["watertight"]
    assert summary["components_dropped"] == 0  # no ghost surface even before the cleanup


@pytest.mark.parametrize(("mesh_name", "genus"), [("rocker-arm.obj", 1), ("fertility.off", 4)])
def test_genus_is_kept(shared_data, tmp_path, mesh_name, genus):
    ref = load_mesh(shared_data / "meshes" / mesh_name)
    points, normals = sample_surface(ref, 30_000, seed=0)
    cloud = tmp_path / "cloud.npz"
    save_point_cloud(cloud, PointCloud(points, normals.astype(np.float32)))
    out = tmp_path / "mesh.ply"
    assert main(["reconstruct", str(cloud), "-o", str(out), "--no-progress"]) == 0
    rec = load_mesh(out)
    topo = topology(rec)
    m = compare_meshes(rec, ref, n=100_000, seed=0)
    print(f"\n{mesh_name}: Chamfer-L1 {m['chamfer_l1_rel']:.5f} diag, F@1% {m['fscore@1%']:.4f}, {topo}")
    assert topo["genus"] == genus and topo["components"] == 1 and topo["watertight"]
    assert m["fscore@1%"] >= 0.99
    # no stray surface: with the sphere prior's cone the rocker arm kept a closed bubble at the
    # box centre, 3.4 % of the diagonal from the true surface
    assert m["hausdorff_rel"] < 0.01


def test_chair_has_no_ghost(shared_data, tmp_path):
    """The thin chair: surface only where the points are (the sphere prior's blob on the seat
    covered 15-23 % of the mesh before the free-space term)."""
    from sdfrecon.evaluation.metrics import unsupported_area
    from sdfrecon.io import load_point_cloud

    cloud = shared_data / "pointclouds" / "chair36.xyz"
    out = tmp_path / "chair.ply"
    assert main(["reconstruct", str(cloud), "-o", str(out), "--no-progress"]) == 0
    rec = load_mesh(out)
    support = unsupported_area(rec, load_point_cloud(cloud).points)
    topo = topology(rec)
    print(f"\nchair: {support}, {topo}")
    assert support["unsupported@5%"] <= 0.005
    assert topo["components"] == 1 and topo["watertight"]


@pytest.mark.parametrize("shape", ["bracket", "plate", "bowl"])
def test_thin_shapes_have_no_ghost(tmp_path, shape):
    from sdfrecon.evaluation.metrics import unsupported_area
    from sdfrecon.evaluation.thin_shapes import THIN_SHAPES

    points, normals = THIN_SHAPES[shape]()
    cloud = tmp_path / "cloud.npz"
    save_point_cloud(cloud, PointCloud(points, normals.astype(np.float32)))
    out = tmp_path / "mesh.ply"
    assert main(["reconstruct", str(cloud), "-o", str(out), "--no-progress"]) == 0
    rec = load_mesh(out)
    support = unsupported_area(rec, points)
    print(f"\n{shape}: {support}, {topology(rec)}")
    assert support["unsupported@5%"] <= 0.005
    assert topology(rec)["watertight"]


@pytest.mark.parametrize(("mesh_name", "genus"), [("fertility.off", 4)])
def test_noisy_cloud_beats_poisson(shared_data, tmp_path, mesh_name, genus):
    """30k points with 0.5 % Gaussian noise (of the diagonal) and their exact normals, as the
    scans issue sets it: the defaults estimate the noise, denoise, and land at <= 0.9x screened
    Poisson's exact Chamfer-L1 against the clean mesh, one watertight component, genus kept."""
    from sdfrecon.evaluation.clouds import sample_cloud
    from sdfrecon.evaluation.scoring import evaluate_mesh

    ref = load_mesh(shared_data / "meshes" / mesh_name)
    cloud = tmp_path / "noisy.npz"
    save_point_cloud(cloud, sample_cloud(ref, 30_000, seed=0, noise=0.005))
    out, baseline = tmp_path / "mesh.ply", tmp_path / "poisson.ply"
    assert main(["reconstruct", str(cloud), "-o", str(out), "--no-progress", "--no-previews"]) == 0
    assert main(["poisson", str(cloud), "-o", str(baseline), "--quiet"]) == 0
    summary = json.loads((tmp_path / "mesh.run" / "summary.json").read_text())
    assert summary["denoised"] is True
    assert summary["noise"]["relative_to_diagonal"] == pytest.approx(0.005, rel=0.2)
    ours, theirs = (evaluate_mesh(load_mesh(p), ref, samples=50_000) for p in (out, baseline))
    print(f"\n{mesh_name} at 0.5 % noise: exact Chamfer-L1 {ours['exact_chamfer_l1_rel']:.5f} "
          f"against Poisson's {theirs['exact_chamfer_l1_rel']:.5f}")
    assert ours["exact_chamfer_l1_rel"] <= 0.9 * theirs["exact_chamfer_l1_rel"]
    assert ours["genus"] == genus and ours["components"] == 1 and ours["watertight"]
