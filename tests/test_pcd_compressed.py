"""PCD ``DATA binary_compressed`` (LZF), as Open3D writes it: read like its ASCII twin, and
damaged or truncated data refused with one line naming the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sdfrecon.errors import InputError
from sdfrecon.io import load_point_cloud
from sdfrecon.io.lzf import LzfError, decompress
from sdfrecon.io.pcd import read_pcd

HEADER = (b"VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 2\nHEIGHT 1\n"
          b"POINTS 2\nDATA binary_compressed\n")


@pytest.fixture
def twins(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """bunny.xyz written by Open3D as binary_compressed and as ASCII PCD."""
    import open3d as o3d

    cloud = load_point_cloud(shared_data / "bunny.xyz")
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.points))
    pcd.normals = o3d.utility.Vector3dVector(cloud.normals.astype(np.float64))
    packed, text = tmp_path / "bunny_c.pcd", tmp_path / "bunny_a.pcd"
    assert o3d.io.write_point_cloud(str(packed), pcd, write_ascii=False, compressed=True)
    assert o3d.io.write_point_cloud(str(text), pcd, write_ascii=True)
    assert b"DATA binary_compressed\n" in packed.read_bytes()[:400]
    return packed, text


def test_open3d_binary_compressed_reads_like_its_ascii_twin(twins):
    packed, text = twins
    (p1, n1, _), (p2, n2, _) = read_pcd(packed), read_pcd(text)
    assert p1.shape == (34834, 3) and n1.shape == (34834, 3)
    # the file's float32 values, exactly (the ASCII twin prints them with enough digits)
    np.testing.assert_array_equal(np.float32(p1), np.float32(p2))
    np.testing.assert_array_equal(np.float32(n1), np.float32(n2))
    a, b = load_point_cloud(packed), load_point_cloud(text)
    np.testing.assert_array_equal(np.float32(a.points), np.float32(b.points))
    np.testing.assert_allclose(a.normals, b.normals, atol=6e-8)  # unit-normalised: 1 ulp


def test_lzf_literals_and_overlapping_back_references():
    # 'abc' as a literal run, then a back reference of length 7 at distance 3 ('abcabca'),
    # then one of length 2 + 7 + 3 = 12 at distance 1 (a run of the last byte)
    stream = bytes([2]) + b"abc" + bytes([(5 << 5) | 0, 2]) + bytes([(7 << 5) | 0, 3, 0])
    assert decompress(stream, 22) == b"abcabcabca" + b"a" * 12


@pytest.mark.parametrize(("stream", "size", "problem"), [
    (bytes([5]) + b"abc", 6, "a literal run of 6 bytes is cut off at byte 4"),
    (bytes([0]) + b"a" + bytes([32]), 3, "a back reference is cut off at byte 3"),
    (bytes([0]) + b"a" + bytes([32, 4]), 3,
     "a back reference at byte 2 points 5 bytes back, before the start of the data (1 bytes so far)"),
    (bytes([1]) + b"ab", 3, "decompresses to 2 bytes, not the 3 declared"),
    (bytes([3]) + b"abcd", 3, "decompresses to more than the 3 bytes declared"),
])
def test_lzf_refuses_damaged_streams(stream, size, problem):
    with pytest.raises(LzfError) as err:
        decompress(stream, size)
    assert str(err.value) == problem


def _problem(path: Path) -> str:
    with pytest.raises(InputError) as err:
        read_pcd(path)
    return err.value.problem


def test_damaged_and_truncated_bodies_get_one_line(tmp_path, twins):
    packed = twins[0].read_bytes()
    cut = tmp_path / "cut.pcd"
    cut.write_bytes(packed[:-1000])
    assert _problem(cut).startswith("is truncated: ")
    assert _problem(cut).endswith("compressed bytes declared, file holds "
                                  f"{len(packed) - 1000 - packed.index(b'DATA binary_compressed') - 31}")
    bad = tmp_path / "bad.pcd"
    bad.write_bytes(HEADER + np.uint32([3, 24]).tobytes() + bytes([0x20, 0xFF, 0]))
    assert _problem(bad) == ("has damaged compressed data (a back reference at byte 0 points 256 "
                             "bytes back, before the start of the data (0 bytes so far))")
    sizes = tmp_path / "sizes.pcd"
    sizes.write_bytes(HEADER + np.uint32([3, 20]).tobytes() + bytes(3))
    assert _problem(sizes) == "declares 20 uncompressed bytes, but 2 points of 12 bytes are 24"
    empty = tmp_path / "empty.pcd"
    empty.write_bytes(HEADER + b"\x01")
    assert _problem(empty) == "is truncated: the binary_compressed body lacks its two sizes"


def test_fields_are_stored_one_after_another(tmp_path):
    """The decompressed body holds all x, then all y, then all z (not point records)."""
    xyz = np.float32([[1, 2, 3], [4, 5, 6]])
    raw = xyz.T.tobytes()  # 24 bytes: x0 x1 y0 y1 z0 z1
    stream = bytes([len(raw) - 1]) + raw  # one literal run
    path = tmp_path / "c.pcd"
    path.write_bytes(HEADER + np.uint32([len(stream), len(raw)]).tobytes() + stream)
    np.testing.assert_array_equal(read_pcd(path)[0], xyz)
