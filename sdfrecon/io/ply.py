"""PLY vertex reading and point cloud reading and writing, with numpy only.

Only the vertex element is decoded; other elements (a raw Stanford scan's ``range_grid`` of
list properties, a mesh's faces) are skipped, so extra per-vertex properties, big-endian
files and lists after the vertices all load. Why not plyfile (scripts/studies/ply_readers.py,
docs/bad-input.md): it reads the same points, but parses every element of an ASCII file row
by row in Python (4.6 s against 0.08 s for the raw scan bun000.ply, 1.8 s against 0.08 s
for bun_zipper.ply; 0.016 s against 0.027 s for a 1M-point binary cloud), and it reports a
damaged file by element and row ("element 'vertex': row 811: early end-of-file") where the
errors here say what the header declared and what the file holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io.arrays import Arrays, xyz_normals
from sdfrecon.io.text import parse_table, text_bytes

if TYPE_CHECKING:
    from sdfrecon.io.types import PointCloud

FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


@dataclass
class PlyElement:
    """One ``element`` of the header: its properties as (name, numpy type, is_list)."""

    name: str
    count: int
    properties: list[tuple[str, str, bool]] = field(default_factory=list)
    count_types: list[str] = field(default_factory=list)  # of the list properties, in order

    @property
    def has_lists(self) -> bool:
        return any(is_list for _, _, is_list in self.properties)

    def dtype(self, endian: str) -> np.dtype:
        """Record dtype of one item (fixed-size elements only); duplicate names get a suffix."""
        names: list[str] = []
        for name, _, _ in self.properties:
            names.append(name if name not in names else f"{name}_{len(names)}")
        types = [endian + kind for _, kind, _ in self.properties]
        return np.dtype({"names": names, "formats": types})


@dataclass
class PlyHeader:
    """The parsed header: ``body_start`` is the byte offset of the data after ``end_header``."""

    encoding: str
    elements: list[PlyElement]
    body_start: int
    header_lines: int

    @property
    def vertex(self) -> PlyElement:
        return next(e for e in self.elements if e.name == "vertex")


def read_header(path: Path, data: bytes) -> PlyHeader:
    """Parse the text header of a PLY file; raise ``InputError`` for anything malformed."""
    if data[: data.find(b"\n")].strip() != b"ply":
        raise InputError(path, "is not a PLY file (it does not start with 'ply')")
    end = data.find(b"end_header")
    if end < 0 or data.find(b"\n", end) < 0:
        raise InputError(path, "has no 'end_header' line: the PLY header is incomplete")
    body_start = data.find(b"\n", end) + 1
    lines = data[:body_start].decode("latin-1").splitlines()
    encoding, elements = None, []
    for number, line in enumerate(lines[1:-1], start=2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format" and len(words) >= 2 and words[1] in FORMATS:
            encoding = words[1]
        elif words[0] == "element" and len(words) == 3 and words[2].isdigit():
            elements.append(PlyElement(words[1], int(words[2])))
        elif words[0] == "property" and elements and _add_property(elements[-1], words):
            continue
        else:
            raise InputError(path, f"unexpected PLY header line '{line.strip()}'", line=number)
    if encoding is None:
        raise InputError(path, "has no valid 'format' line in its PLY header")
    if not any(e.name == "vertex" for e in elements):
        raise InputError(path, "has no vertex element")
    return PlyHeader(encoding, elements, body_start, len(lines))


def _add_property(element: PlyElement, words: list[str]) -> bool:
    """Add a ``property [list count_type] type name`` line; False if it is malformed."""
    if len(words) == 3 and words[1] in TYPES:
        element.properties.append((words[2], TYPES[words[1]], False))
        return True
    if len(words) == 5 and words[1] == "list" and words[2] in TYPES and words[3] in TYPES:
        element.properties.append((words[4], TYPES[words[3]], True))
        element.count_types.append(TYPES[words[2]])
        return True
    return False


def _elements_before_vertex(path: Path, header: PlyHeader) -> list[PlyElement]:
    """The elements stored before the vertices; vertices themselves must be fixed-size."""
    before = header.elements[: header.elements.index(header.vertex)]
    if header.vertex.has_lists or (header.encoding != "ascii" and any(e.has_lists for e in before)):
        raise InputError(path, "has list properties in or before its vertex element, "
                               "which this reader does not support")
    return before


def binary_vertices(path: Path, header: PlyHeader, data: bytes) -> np.ndarray:
    """The vertex block of a binary PLY as a structured array, one field per property.

    Also checks that the file is long enough for the elements after the vertices (faces, say):
    a list property holds at least its count, so their size has a lower bound.
    """
    endian = FORMATS[header.encoding]
    start = header.body_start
    for element in _elements_before_vertex(path, header):
        start += element.count * element.dtype(endian).itemsize
    dtype = header.vertex.dtype(endian)
    count = header.vertex.count
    held = max(len(data) - start, 0) // dtype.itemsize
    if held < count:
        raise InputError(path, f"is truncated: header declares {count} vertices, file holds {held}")
    end = start + count * dtype.itemsize
    for element in _elements_after_vertex(header):
        end = _element_end(element, endian, data, end)
        if end > len(data):
            raise InputError(path, f"is truncated: the file ends before the {element.count} "
                                   f"'{element.name}' items its header declares after the vertices")
    return np.frombuffer(data, dtype=dtype, count=count, offset=start)


def _element_end(element: PlyElement, endian: str, data: bytes, offset: int) -> int:
    """Where a binary element starting at ``offset`` ends (past len(data) if cut short).

    Fixed-size elements: exact. Elements with lists: exact when every item has the first
    item's list lengths (all triangles, say; checked at each item's predicted place), else a
    lower bound (a list holds at least its count).
    """
    if element.count == 0:
        return offset
    layout = []  # (fixed size, or count type size and item size)
    counts = iter(element.count_types)
    for _, kind, is_list in element.properties:
        size = np.dtype(endian + kind).itemsize
        layout.append((np.dtype(endian + next(counts)), size) if is_list else (None, size))
    least = sum(size if ctype is None else ctype.itemsize for ctype, size in layout)
    where, positions = offset, []
    for ctype, size in layout:  # the first item's size
        if ctype is None:
            where += size
            continue
        if where + ctype.itemsize > len(data):
            return offset + element.count * least
        positions.append((where - offset, ctype))
        n = int(np.frombuffer(data, dtype=ctype, count=1, offset=where)[0])
        where += ctype.itemsize + max(n, 0) * size
    first = where - offset
    if first <= 0:  # an element without properties takes no bytes
        return offset
    fits = min(element.count, max(len(data) - offset, 0) // first)
    raw = np.frombuffer(data, dtype=np.uint8)
    for relative, ctype in positions:  # the count of every item that fits, at its predicted place
        at = offset + relative + first * np.arange(fits)
        grabbed = np.stack([raw[at + b] for b in range(ctype.itemsize)], axis=1)
        values = grabbed.view(ctype).ravel()
        if fits and not (values == values[0]).all():
            return offset + element.count * least
    return offset + element.count * first


def _elements_after_vertex(header: PlyHeader) -> list[PlyElement]:
    return header.elements[header.elements.index(header.vertex) + 1:]


def ascii_vertex_lines(path: Path, header: PlyHeader, data: bytes) -> tuple[bytes, int]:
    """The vertex lines of an ASCII PLY (one line per item) and the 1-based line of the first."""
    skip = sum(e.count for e in _elements_before_vertex(path, header))
    count = header.vertex.count
    body = np.frombuffer(data, dtype=np.uint8, offset=header.body_start)
    ends = np.flatnonzero(body == ord("\n"))
    if len(body) and body[-1] != ord("\n"):  # last line without a newline
        ends = np.append(ends, len(body))
    starts = np.concatenate(([0], ends + 1))
    held = max(len(ends) - skip, 0)
    if held < count:
        raise InputError(path, f"is truncated: header declares {count} vertices, file holds {held}")
    later = sum(e.count for e in _elements_after_vertex(header))  # one line per item
    if len(ends) - skip - count < later:
        raise InputError(path, f"is truncated: header declares {later} items after the vertices "
                               f"(faces, say), file holds {len(ends) - skip - count}")
    first = header.body_start + int(starts[skip])
    last = header.body_start + int(ends[skip + count - 1]) if count else first
    return data[first:last], header.header_lines + skip + 1


def write_ply(path: Path, points: np.ndarray, normals: np.ndarray | None,
              faces: np.ndarray | None = None) -> None:
    """Binary little-endian PLY: x y z as float (double if float32 would lose them), then nx ny
    nz, then (for a mesh) the faces as ``list uchar int vertex_indices``.

    float32 is what most viewers expect; double is used only when rounding to float32 would
    move a point by more than 1e-6 of the cloud's extent (coordinates far from the origin).
    """
    kind = "double" if needs_double(points) else "float"
    fields = [(axis, kind) for axis in ("x", "y", "z")]
    if normals is not None:
        fields += [(name, "float") for name in ("nx", "ny", "nz")]
    record = np.empty(len(points), dtype=[(name, "<" + TYPES[t]) for name, t in fields])
    for i, axis in enumerate("xyz"):
        record[axis] = points[:, i]
        if normals is not None:
            record["n" + axis] = normals[:, i]
    lines = ["ply", "format binary_little_endian 1.0", "comment written by sdfrecon",
             f"element vertex {len(points)}"]
    lines += [f"property {t} {name}" for name, t in fields]
    if faces is not None:
        lines += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    lines.append("end_header\n")
    with open(path, "wb") as f:
        f.write("\n".join(lines).encode("ascii"))
        f.write(record.tobytes())
        if faces is not None:
            packed = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
            packed["n"], packed["v"] = 3, faces
            f.write(packed.tobytes())


def needs_double(points: np.ndarray) -> bool:
    """True if storing (N, 3) points as float32 would move one by over 1e-6 of the extent."""
    if len(points) == 0:
        return False
    extent = float(np.ptp(points, axis=0).max())
    error = float(np.abs(points - points.astype(np.float32)).max())
    return error > 1e-6 * extent


def read_cloud(path: Path) -> Arrays:
    """PLY vertices: ASCII or binary of either endianness; other elements are skipped."""
    data = path.read_bytes()
    header = read_header(path, data)
    names = [name for name, _, _ in header.vertex.properties]
    if not all(axis in names for axis in "xyz"):
        raise InputError(path, "has no x, y and z vertex properties")
    if header.encoding == "ascii":
        block, first_line = ascii_vertex_lines(path, header, data)
        table, lines = parse_table(path, text_bytes(path, block), first_line,
                                   allowed=(len(names),),
                                   describe=f"{len(names)} (one per vertex property in the header)")
        columns = dict(zip(names, table.T, strict=True))
    else:
        array, lines = binary_vertices(path, header, data), None
        columns = {name: array[name] for name in array.dtype.names}
    return (*xyz_normals(path, columns, "vertex properties"), lines)


def write_cloud(path: Path, cloud: PointCloud) -> None:
    """A cloud as binary PLY (see :func:`write_ply`)."""
    write_ply(path, cloud.points, cloud.normals)
