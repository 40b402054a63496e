"""PCL's .pcd point clouds: the header, ``DATA ascii``, ``binary`` and ``binary_compressed``
(LZF, as Open3D and PCL write it) bodies, and the ASCII writer (fields x y z, then normal_x
normal_y normal_z when the cloud has normals)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io import ply
from sdfrecon.io.arrays import Arrays, xyz_normals
from sdfrecon.io.text import parse_table, text_bytes, write_xyz

if TYPE_CHECKING:
    from sdfrecon.io.types import PointCloud

log = logging.getLogger(__name__)


def read_pcd(path: Path) -> Arrays:
    """PCL's .pcd, ``DATA ascii``, ``binary`` or ``binary_compressed``; fields x y z, optional
    normal_x/_y/_z. Points with a NaN or infinite coordinate are PCL's missing points (an
    organised cloud, WIDTH x HEIGHT pixels of a depth camera, keeps one per pixel without a
    return): they are dropped with one warning, as Open3D's reader drops them; a cloud with
    no finite point left is refused."""
    data = path.read_bytes()
    fields, dtype, count, body_start, header_lines = _pcd_header(path, data)
    kind = fields.pop("DATA")
    if kind == "ascii":
        widths = [int(np.prod(dtype[name].shape)) for name in dtype.names]  # COUNT per field
        table, lines = parse_table(path, text_bytes(path, data[body_start:]), header_lines + 1,
                                   allowed=(sum(widths),),
                                   describe=f"{sum(widths)} (one per value in the header's COUNT)")
        held = len(table)
        offsets = np.cumsum([0] + widths)
        columns = {name: table[:, offsets[i]] for i, name in enumerate(dtype.names)}
    elif kind == "binary":
        lines = None
        held = max(len(data) - body_start, 0) // dtype.itemsize
        array = np.frombuffer(data, dtype=dtype, count=min(held, count), offset=body_start)
        columns = {n: array[n] if array[n].ndim == 1 else array[n][:, 0] for n in dtype.names}
    elif kind == "binary_compressed":
        lines, held = None, count
        columns = _compressed_columns(path, data, body_start, dtype, count)
    else:
        raise InputError(path, f"uses 'DATA {kind}', which is not supported: "
                               "convert it to ascii, binary or binary_compressed")
    if held < count:
        raise InputError(path, f"is truncated: header declares {count} points, file holds {held}")
    if held > count:
        raise InputError(path, f"holds {held} points but its header declares {count}")
    return _drop_missing(path, *xyz_normals(path, columns, "fields"), lines)


def _drop_missing(path: Path, points: np.ndarray, normals: np.ndarray | None,
                  lines: np.ndarray | None) -> Arrays:
    """points (N, 3), normals (N, 3) or None and lines (N,) or None without the points that
    have a non-finite coordinate (PCL's missing points), with one warning giving the count."""
    finite = np.isfinite(points).all(axis=1)
    if finite.all():
        return points, normals, lines
    if not finite.any():
        raise InputError(path, f"has no finite point: all {len(points)} points have NaN or "
                               "infinite coordinates (missing points)")
    log.warning("%s: dropped %d of %d points with NaN or infinite coordinates (missing points "
                "of an organised cloud)", path, len(points) - int(finite.sum()), len(points))
    return (points[finite], None if normals is None else normals[finite],
            None if lines is None else lines[finite])


def _compressed_columns(path: Path, data: bytes, start: int, dtype: np.dtype, count: int) -> dict:
    """The fields of a ``DATA binary_compressed`` body: two little-endian uint32 (compressed
    and uncompressed size), then LZF-compressed bytes that hold each field for all points in
    turn (x of every point, then y, ...), not point records."""
    from sdfrecon.io.lzf import LzfError, decompress

    if len(data) - start < 8:
        raise InputError(path, "is truncated: the binary_compressed body lacks its two sizes")
    packed, size = (int(v) for v in np.frombuffer(data, "<u4", 2, start))
    if size != count * dtype.itemsize:
        raise InputError(path, f"declares {size} uncompressed bytes, but {count} points of "
                               f"{dtype.itemsize} bytes are {count * dtype.itemsize}")
    body = memoryview(data)[start + 8:]
    if len(body) < packed:
        raise InputError(path, f"is truncated: {packed} compressed bytes declared, file holds {len(body)}")
    try:
        raw = decompress(body[:packed], size)
    except LzfError as err:
        raise InputError(path, f"has damaged compressed data ({err})") from None
    columns, offset = {}, 0
    for name in dtype.names:
        field = dtype.fields[name][0]
        column = np.frombuffer(raw, field.base, count * max(1, int(np.prod(field.shape))), offset)
        columns[name] = column.reshape(count, -1)[:, 0]
        offset += count * field.itemsize
    return columns


def _pcd_header(path: Path, data: bytes) -> tuple[dict, np.dtype, int, int, int]:
    """Parse the header up to ``DATA``: (entries, record dtype, points, body offset, lines)."""
    entries: dict[str, str | list[str]] = {}
    pos = lines = 0
    while "DATA" not in entries and pos <= len(data) and lines < 64:  # header lines only
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        words = data[pos:end].decode("latin-1").split()
        pos, lines = end + 1, lines + 1
        if words and words[0].upper() == "DATA" and len(words) == 2:
            entries["DATA"] = words[1].lower()
        elif words and not words[0].startswith("#"):
            entries[words[0].upper()] = words[1:]
    if "DATA" not in entries or "FIELDS" not in entries:
        raise InputError(path, "is not a PCD file (no FIELDS and DATA lines in its header)")
    names = entries["FIELDS"]
    sizes, types = entries.get("SIZE", []), entries.get("TYPE", [])
    counts = entries.get("COUNT", ["1"] * len(names))
    try:
        formats = [(f"_{i}" if n == "_" else n, f"<{'fiu'['FIU'.index(t)]}{s}", (int(c),))
                   for i, (n, s, t, c) in enumerate(zip(names, sizes, types, counts, strict=True))]
        dtype = np.dtype([(n, f) if c == (1,) else (n, f, c) for n, f, c in formats])
        points = entries.get("POINTS") or [int(entries["WIDTH"][0]) * int(entries["HEIGHT"][0])]
        count = int(points[0])
    except (ValueError, TypeError, KeyError, IndexError):
        raise InputError(path, "has a malformed PCD header (FIELDS, SIZE, TYPE, COUNT, POINTS)") from None
    return entries, dtype, count, pos, lines


def write_pcd(path: Path, cloud: PointCloud) -> None:
    """ASCII PCD v0.7 with fields x y z [normal_x normal_y normal_z]."""
    names = ["x", "y", "z"] + ([] if cloud.normals is None else ["normal_x", "normal_y", "normal_z"])
    size = "8" if ply.needs_double(cloud.points) else "4"
    sizes = [size] * 3 + ["4"] * (len(names) - 3)
    header = (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
              f"FIELDS {' '.join(names)}\nSIZE {' '.join(sizes)}\nTYPE {' '.join('F' * len(names))}\n"
              f"COUNT {' '.join('1' * len(names))}\nWIDTH {len(cloud)}\nHEIGHT 1\n"
              f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(cloud)}\nDATA ascii\n")
    write_xyz(path, cloud, header)
