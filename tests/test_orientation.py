"""File normals: made consistent where neighbours disagree, and turned outward when they all
point inward, on real shapes from ../shared/data with their normals flipped in patches, all
at once and at random."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sdfrecon.cloud.normals import outward_votes
from sdfrecon.cloud.orientation import (
    _patch_signs,
    _subsample,
    check_orientation,
    orient_normals,
    repair_orientation,
)
from sdfrecon.io import load_point_cloud


@pytest.fixture
def bunny(shared_data):
    """bunny.xyz: 34,834 points with outward unit normals, (N, 3) each."""
    cloud = load_point_cloud(shared_data / "bunny.xyz")
    return cloud.points, cloud.normals


def _agree(normals: np.ndarray, truth: np.ndarray) -> float:
    """Share of normals with the sign of truth (N, 3)."""
    return float(np.mean(np.einsum("ij,ij->i", normals, truth) > 0))


def _patch(points: np.ndarray, share: float, centre: int = 0) -> np.ndarray:
    """Mask (N,) of the ``share`` of points nearest points[centre]: one connected patch."""
    dist = np.linalg.norm(points - points[centre], axis=1)
    return dist <= np.quantile(dist, share)


def test_inward_normals_are_flipped_with_one_line_saying_how_sure(bunny, caplog):
    points, normals = bunny
    with caplog.at_level(logging.WARNING):
        out = orient_normals("bunny.xyz", points, -normals)
    np.testing.assert_array_equal(out, normals)
    assert [r.getMessage() for r in caplog.records] == [
        "bunny.xyz: the normals point inward (256 of 256 extreme-point votes say so); flipped "
        f"all {len(points)} of them to point outward"]


def test_outward_normals_pass_unchanged_and_silently(bunny, caplog):
    points, normals = bunny
    with caplog.at_level(logging.INFO):
        assert orient_normals("bunny.xyz", points, normals) is normals
    assert caplog.records == []


def test_an_unclear_vote_keeps_the_files_consistent_normals_and_says_so(caplog):
    """A flat plate: consistent normals, but no way to tell its two sides apart. The file's
    normals stay (flipped all or none by the majority), not replaced by estimated ones that
    the same vote would orient."""
    rng = np.random.default_rng(1)
    points = np.column_stack([rng.random((3000, 2)), np.zeros(3000)])
    for sign in (1, -1):
        normals = np.tile(np.float32([0, 0, sign]), (3000, 1))
        share = outward_votes(points, normals)
        assert 0.25 < share < 0.75
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            out = orient_normals("plate.xyz", points, normals)
        flip = share < 0.5
        np.testing.assert_array_equal(out, -normals if flip else normals)
        done = ("flipped all 3000 of them to point outward, as most votes say" if flip
                else "kept them pointing outward, as most votes say")
        outward = round(256 * share)
        assert [r.getMessage() for r in caplog.records] == [
            f"plate.xyz: cannot tell clearly whether the normals point outward or inward ({outward} "
            f"of 256 extreme-point votes say outward, {256 - outward} inward); the normals agree "
            f"with each other, so {done} (--normals-orientation file|outward|inward decides)"]


def test_inward_orientation_for_a_cloud_scanned_from_inside(bunny, caplog):
    """--normals-orientation inward: normals into the shape (a room's walls seen from the room)
    are kept, outward ones flipped with one line; file: nothing flipped, nothing said."""
    points, normals = bunny
    with caplog.at_level(logging.INFO):
        np.testing.assert_array_equal(orient_normals("room.xyz", points, -normals, orientation="inward"), -normals)
        assert caplog.records == []
        np.testing.assert_array_equal(orient_normals("room.xyz", points, normals, orientation="inward"), -normals)
    assert [r.getMessage() for r in caplog.records] == [
        "room.xyz: the normals point outward (256 of 256 extreme-point votes say so); flipped "
        f"all {len(points)} of them to point inward"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert orient_normals("room.xyz", points, -normals, orientation="file") is not None
        np.testing.assert_array_equal(orient_normals("room.xyz", points, -normals, orientation="file"), -normals)
    assert caplog.records == []


def _room(n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """A room's six walls (the box [-1, 1] x [-0.6, 0.6] x [-0.4, 0.4]) as a scanner inside sees
    them: points (n, 3) and normals (n, 3) float32 pointing into the room."""
    rng = np.random.default_rng(0)
    half = np.array([1.0, 0.6, 0.4])
    points = (rng.random((n, 3)) * 2 - 1) * half
    axis = rng.integers(0, 3, n)
    side = rng.choice([-1.0, 1.0], n)
    points[np.arange(n), axis] = side * half[axis]
    normals = np.zeros((n, 3), dtype=np.float32)
    normals[np.arange(n), axis] = -side
    return points, normals


@pytest.mark.parametrize("from_file", [True, False])
def test_a_room_keeps_its_normals_into_the_room_with_inward(from_file, caplog):
    """The object vote would turn a room's walls inside out (normals away from the room); with
    --normals-orientation inward the file's normals stay, and estimated ones point into it."""
    from sdfrecon.cloud.prepare import prepare_cloud
    from sdfrecon.config import NormalsConfig, ReconstructConfig
    from sdfrecon.io import PointCloud

    points, normals = _room()
    cloud = PointCloud(points, normals if from_file else None)
    for orientation, expected in (("outward", -normals), ("inward", normals)):
        config = ReconstructConfig(normals=NormalsConfig(normals_orientation=orientation))
        out = prepare_cloud(cloud, config, "room.xyz")[0].normals
        assert _agree(out, expected) > (0.999 if from_file else 0.95), orientation


def test_a_single_view_scan_facing_its_scanner_is_kept(shared_data):
    """Normals towards the scanner (its viewing side) are outward enough: kept as they are,
    and the same normals turned away are flipped back."""
    import open3d as o3d

    points = load_point_cloud(shared_data / "raw_scans" / "bun000.xyz").points
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=20))
    pcd.orient_normals_towards_camera_location(np.array([0.0, 0.0, 10.0]))
    normals = np.asarray(pcd.normals, dtype=np.float32)
    assert orient_normals("bun000", points, normals) is normals
    np.testing.assert_array_equal(orient_normals("bun000", points, -normals), normals)


@pytest.mark.parametrize("share", [0.2, 0.4])
def test_a_flipped_patch_is_repaired_by_the_spanning_tree(bunny, share, caplog):
    """A patch flipped as a whole is invisible to neighbour votes (only its border
    disagrees); the spanning tree propagates one sign through it. At 40 % the patch has no
    clear majority, so the centroid (then the extreme-point votes) sets the sign."""
    points, normals = bunny
    flipped = normals.copy()
    flipped[_patch(points, share)] *= -1
    assert check_orientation(points, flipped).fraction > 0.01
    with caplog.at_level(logging.WARNING):
        out = orient_normals("bunny.xyz", points, flipped)
    assert _agree(out, normals) > 0.995
    assert "to agree with their neighbours" in caplog.text


def test_scattered_flips_are_outvoted(bunny):
    points, normals = bunny
    flipped = normals.copy()
    flipped[np.random.default_rng(3).random(len(points)) < 0.3] *= -1
    assert _agree(orient_normals("bunny.xyz", points, flipped), normals) > 0.995


def test_coin_toss_signs_are_made_consistent_and_outward(bunny):
    """Unoriented normals (each sign a coin toss): no majority anywhere, so every patch takes
    its sign from the centroid and the extreme-point votes turn the whole outward."""
    points, normals = bunny
    tossed = normals * np.where(np.random.default_rng(4).random(len(points)) < 0.5, -1, 1)[:, None]
    assert _agree(orient_normals("bunny.xyz", points, tossed.astype(np.float32)), normals) > 0.99


def test_centroid_fallback_on_patches_without_a_majority(bunny):
    """_patch_signs alone: patches whose signs are split evenly point away from the centroid,
    which for the bunny (nearly star-shaped about its centroid) is outward."""
    points, normals = bunny
    idx = _subsample(len(points), 5000, 0)
    p, q = points[idx].astype(np.float64), normals[idx].astype(np.float64)
    q = q * np.where(np.arange(len(q)) % 2 == 0, 1.0, -1.0)[:, None]
    from sdfrecon.cloud.orientation import _links

    i, j, dot, _ = _links(p, q, 8)
    fixed = q * _patch_signs(p, q, i, j, dot)[:, None]
    assert _agree(fixed, normals[idx]) > 0.99


def test_large_clouds_spread_the_subsample_signs(shared_data):
    """Over 50,000 points the repair runs on a subsample and _spread_signs gives every other
    point the sign of its nearest same-sheet subsample point."""
    import trimesh

    mesh = trimesh.load(shared_data / "meshes" / "fertility.off", process=False)
    points, faces = trimesh.sample.sample_surface(mesh, 80_000, seed=0)
    normals = mesh.face_normals[faces].astype(np.float32)
    assert outward_votes(points, normals) == 1.0
    flipped = normals.copy()
    flipped[_patch(points, 0.25)] *= -1
    flipped[np.random.default_rng(5).random(len(points)) < 0.05] *= -1
    repaired = repair_orientation(points, flipped)
    assert _agree(repaired, normals) > 0.995
    assert check_orientation(points, repaired).fraction <= 0.01


def test_normals_that_cannot_be_made_consistent_are_dropped(bunny, caplog):
    """Directions as well as signs scrambled: no choice of signs makes neighbours agree."""
    points, _ = bunny
    noise = np.random.default_rng(6).normal(size=points.shape)
    noise = (noise / np.linalg.norm(noise, axis=1, keepdims=True)).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        assert orient_normals("noise.xyz", points, noise) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("noise.xyz: the normals disagree in orientation (")
    assert "% of neighbouring points on one sheet have opposite normals" in line
    assert "tolerance 1 %) and could not be made consistent (" in line
    assert line.endswith("% still disagree after flipping signs); ignoring them and estimating new "
                         "ones (--normals-orientation file keeps the file's normals as they are)")


@pytest.mark.slow
def test_bunny_with_every_normal_negated_reconstructs_as_well(shared_data, tmp_path, capsys):
    """End to end: inward normals are turned outward and the bunny comes back within the
    reconstruction thresholds (Chamfer-L1 <= 0.3 % of the diagonal, F@1% >= 0.99, one
    component); before, it came back at 2.3 % and F@1% 0.61 without a word."""
    from sdfrecon.cli import main
    from sdfrecon.evaluation.metrics import compare_meshes, topology
    from sdfrecon.io import load_mesh

    cloud = load_point_cloud(shared_data / "bunny.xyz")
    inward = tmp_path / "inward.xyz"
    np.savetxt(inward, np.hstack([cloud.points, -cloud.normals]), fmt="%.7g")
    out = tmp_path / "bunny.obj"
    assert main(["reconstruct", str(inward), "-o", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{inward}: the normals point inward (256 of 256 extreme-point votes say so)" in err
    rec = load_mesh(out)
    m = compare_meshes(rec, load_mesh(shared_data / "meshes" / "bun_zipper.ply"), n=100_000, seed=0)
    topo = topology(rec)
    print(f"\nnegated bunny: Chamfer-L1 {m['chamfer_l1_rel']:.5f} diag, F@1% {m['fscore@1%']:.4f}, {topo}")
    assert m["chamfer_l1_rel"] <= 0.003 and m["fscore@1%"] >= 0.99
    assert topo["components"] == 1 and topo["watertight"]


def _blade(noise: float, n: int = 30_000):
    """A 1 x 0.2 x 0.01 blade sampled with its exact face normals and Gaussian noise of
    ``noise`` x the diagonal: at 0.005 the noise is half the thickness, the sides interleave."""
    import trimesh

    from sdfrecon.evaluation.clouds import sample_cloud

    cloud = sample_cloud(trimesh.creation.box(extents=[1.0, 0.2, 0.01]), n, seed=0, noise=noise)
    return cloud.points, cloud.normals


def test_a_noisy_thin_blade_keeps_its_exact_normals_and_says_why(caplog):
    """Across a thin part neighbours on its two sides point opposite ways: not a flip. Before,
    the blade at 0.5 % noise measured 4.8 % 'inconsistent' and its exact normals were dropped."""
    points, normals = _blade(0.005)
    report = check_orientation(points, normals)
    assert report.fraction <= 0.01 and report.thin_fraction > 0.1
    assert 0.005 < report.thickness < 0.015 and 0.003 < report.noise < 0.006  # truth 0.01, 0.0051
    with caplog.at_level(logging.INFO):
        out = orient_normals("blade.xyz", points, normals)
    assert out is not None and _agree(out, normals) == 1.0
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(
        "blade.xyz: 2") and "% of neighbouring points face opposite ways across thin parts" in lines[0]
    assert lines[0].endswith("disagree on one sheet: the file's normals are consistent and kept")


def test_random_flips_on_a_thin_blade_are_still_found_and_repaired():
    """A flip lies on its own side's sheet: on a clean thin blade, 1 % of the normals flipped
    at random still reads over the tolerance and is undone (not taken for two sides)."""
    points, normals = _blade(0.0)
    flipped = normals.copy()
    flipped[np.random.default_rng(8).random(len(points)) < 0.01] *= -1
    assert check_orientation(points, flipped).fraction > 0.01
    assert _agree(orient_normals("blade.xyz", points, flipped), normals) > 0.995


def test_random_flips_on_a_noisy_closed_shape_are_found(bunny):
    """The sides' offset is noise-aware both ways: at 0.5 % noise 1 % of random flips on the
    bunny measures over the tolerance (before: 0.8 %, unseen) and is repaired."""
    points, normals = bunny
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    noisy = points + np.random.default_rng(9).normal(scale=0.005 * diagonal, size=points.shape)
    flipped = normals.copy()
    flipped[np.random.default_rng(10).random(len(points)) < 0.01] *= -1
    assert check_orientation(noisy, normals).fraction < 0.001
    assert check_orientation(noisy, flipped).fraction > 0.012
    assert _agree(orient_normals("bunny.xyz", noisy, flipped), normals) > 0.99
