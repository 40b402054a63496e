"""Organised PCDs (WIDTH x HEIGHT pixels of a depth camera, NaN where a pixel has no return):
the missing points are dropped with one warning giving the count, as Open3D's reader drops
them; a cloud with nothing finite left is refused with one line."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from sdfrecon.errors import InputError
from sdfrecon.io import load_point_cloud

WIDTH, HEIGHT = 16, 12


def _depth_image(missing: float = 0.25, seed: int = 0) -> np.ndarray:
    """(HEIGHT * WIDTH, 3) float32: a hemisphere seen by a pinhole camera, row by row, with
    about ``missing`` of the pixels NaN (no return)."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    x, y = (u - WIDTH / 2) / WIDTH, (v - HEIGHT / 2) / HEIGHT
    z = 2.0 - np.sqrt(np.clip(1.0 - x**2 - y**2, 0.0, None))
    points = np.stack([x, y, z], -1).reshape(-1, 3).astype(np.float32)
    points[np.random.default_rng(seed).random(len(points)) < missing] = np.nan
    return points


def _write(path: Path, points: np.ndarray, kind: str) -> None:
    header = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
              f"WIDTH {WIDTH}\nHEIGHT {HEIGHT}\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(points)}\n"
              f"DATA {kind}\n").encode()
    if kind == "ascii":
        body = "".join(f"{a} {b} {c}\n" for a, b, c in points.tolist()).encode()
    else:
        body = points.astype("<f4").tobytes()
    path.write_bytes(header + body)


@pytest.mark.parametrize("kind", ["ascii", "binary"])
def test_organised_pcd_drops_missing_points_with_one_warning(tmp_path, caplog, kind):
    import open3d as o3d

    points = _depth_image()
    finite = np.isfinite(points).all(axis=1)
    assert 0 < (~finite).sum() < len(points)
    path = tmp_path / f"depth_{kind}.pcd"
    _write(path, points, kind)
    with caplog.at_level(logging.WARNING):
        cloud = load_point_cloud(path)
    np.testing.assert_array_equal(np.float32(cloud.points), points[finite])
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"{path}: dropped {(~finite).sum()} of {len(points)} points with NaN or "
                        "infinite coordinates (missing points of an organised cloud)"]
    # Open3D's reader keeps the same points
    theirs = np.asarray(o3d.io.read_point_cloud(str(path), remove_nan_points=True).points)
    np.testing.assert_array_equal(np.float32(theirs), np.float32(cloud.points))


@pytest.mark.parametrize("kind", ["ascii", "binary"])
def test_organised_pcd_with_nothing_finite_is_refused(tmp_path, kind):
    path = tmp_path / "blind.pcd"
    _write(path, np.full((WIDTH * HEIGHT, 3), np.nan, dtype=np.float32), kind)
    with pytest.raises(InputError) as err:
        load_point_cloud(path)
    assert str(err.value) == (f"{path}: has no finite point: all {WIDTH * HEIGHT} points have NaN "
                              "or infinite coordinates (missing points)")
