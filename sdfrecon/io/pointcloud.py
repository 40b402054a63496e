"""Point cloud files: read (.xyz .txt .pts .ply .pcd .obj .off .npy .npz), check, write.

We parse the formats ourselves: Open3D reads only three columns of a six-column .xyz and
trimesh takes the last three as colours, and both reject or misread raw scan PLY files.
Text is parsed with whole-buffer numpy operations (no Python loop per line), so a
million-point six-column file loads in about two seconds. Every reader ends in ``validate_cloud``.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io import ply
from sdfrecon.io.atomic import atomic_write

log = logging.getLogger(__name__)

# (points (N, 3) float64, normals (N, 3) or None, file line of each point (N,) or None)
Arrays = tuple[np.ndarray, "np.ndarray | None", "np.ndarray | None"]
Table = tuple[np.ndarray, np.ndarray]  # (rows, columns) float64 and the file line of each row
XYZ_COLUMNS = "3 (x y z) or 6 (x y z nx ny nz)"


@dataclass
class PointCloud:
    """Points (N, 3) float64 in the file's own units; unit normals (N, 3) float32 or None."""

    points: np.ndarray
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64)
        if self.points.ndim != 2 or self.points.shape[1] != 3:
            raise ValueError(f"points must have shape (N, 3), got {self.points.shape}")
        if self.normals is not None:
            self.normals = np.asarray(self.normals, dtype=np.float32)
            if self.normals.shape != self.points.shape:
                raise ValueError(f"normals must have shape {self.points.shape}, "
                                 f"got {self.normals.shape}")

    def __len__(self) -> int:
        return int(self.points.shape[0])


# --- text ----------------------------------------------------------------------------------

_TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r\f\v" + bytes(range(128, 256))


def _text_bytes(path: Path, data: bytes) -> bytes:
    """Check that ``data`` is text; drop ``#`` comments and turn commas into spaces.

    Line breaks are kept, so line numbers in later messages are those of the file.
    """
    if data.translate(None, _TEXT_BYTES):
        raise InputError(path, "is not a text file (binary data)")
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark (Windows editors)
        data = b"   " + data[3:]
    if b"\r" in data:  # old Mac line ends, else Windows ones (numpy's parser splits on \r)
        data = data.replace(b"\r", b"\n" if b"\n" not in data else b" ")
    if b"#" in data:
        data = re.sub(rb"#[^\n]*", b"", data)
    return data.replace(b",", b" ") if b"," in data else data


_CHUNK = 1 << 25  # bytes per block of the token count: 32 MB, a few times that in temporaries


def _tokens_per_line(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Number of whitespace-separated tokens on each line, and each line's start offset.

    Blocks of whole lines, so that the boolean temporaries stay small for a big file.
    """
    everything = np.frombuffer(data, dtype=np.uint8)
    counts, starts = [], []
    begin = 0
    while True:
        end = len(data) if begin + _CHUNK >= len(data) else data.find(b"\n", begin + _CHUNK) + 1
        last = end <= 0 or end >= len(data)
        end = len(data) if last else end
        a = everything[begin:end]
        space = a <= ord(" ")  # _text_bytes let no other control character through
        token_starts = np.flatnonzero(space[:-1] & ~space[1:]) + 1
        if len(a) and not space[0]:
            token_starts = np.concatenate(([0], token_starts))
        ends = np.append(np.flatnonzero(a == ord("\n")), len(a))
        block_counts = np.diff(np.searchsorted(token_starts, ends), prepend=0)
        block_starts = np.concatenate(([0], ends[:-1] + 1)) + begin
        if not last:  # the block ends with a line break: no line after it in this block
            block_counts, block_starts = block_counts[:-1], block_starts[:-1]
        counts.append(block_counts)
        starts.append(block_starts)
        if last:
            break
        begin = end
    return np.concatenate(counts), np.concatenate(starts)


def _line(data: bytes, starts: np.ndarray, row: int) -> bytes:
    """The text of line ``row`` (0-based) without its line break."""
    end = starts[row + 1] - 1 if row + 1 < len(starts) else len(data)
    return data[starts[row]:end]


def _parse_table(path: Path, data: bytes, first_line: int = 1, allowed: tuple[int, ...] = (3, 6),
                 describe: str = XYZ_COLUMNS, count_header: bool = False) -> Table:
    """Parse text rows of numbers (blank lines skipped) into a (rows, columns) float64 array.

    Every row must have the same number of columns, one of ``allowed``. ``first_line`` is the
    file line of ``data``'s first line. With ``count_header`` a first row holding one integer
    (the point count of some .pts files) or only column names (``x y z nx ny nz``,
    CloudCompare's ``//X,Y,Z``) is skipped. Returns the table and the file line of each row.
    """
    counts, starts = _tokens_per_line(data)
    rows = np.flatnonzero(counts)
    if count_header and len(rows) and _is_header_row(_line(data, starts, rows[0])):
        rows = rows[1:]
        if len(rows) == 0:
            raise InputError(path, "contains no points (only a header line)",
                             line=first_line + int(np.flatnonzero(counts)[0]))
        data = data[starts[rows[0]]:]  # the lines before the first data row are blank now
        counts, first_line, rows = counts[rows[0]:], first_line + int(rows[0]), rows - rows[0]
    if len(rows) == 0:
        return np.empty((0, allowed[0])), np.empty(0, dtype=np.int64)
    ncol = int(counts[rows[0]])
    ragged = rows[counts[rows] != ncol]
    if ncol not in allowed and len(ragged) == 0:
        raise InputError(path, f"has {ncol} column{'s' if ncol != 1 else ''} per row: expected {describe}",
                         line=first_line + int(rows[0]))
    if ncol not in allowed or len(ragged):
        bad = rows[0] if ncol not in allowed else ragged[0]
        expected = f"{ncol} like the first row" if ncol in allowed else describe
        found = int(counts[bad])
        raise InputError(path, f"row has {found} column{'s' * (found != 1)}, expected {expected}",
                         line=first_line + int(bad))
    table = _numbers(path, data, first_line)
    if table.shape != (len(rows), ncol):  # e.g. a stray carriage return that numpy splits on
        raise InputError(path, "could not parse its numbers")
    rows += first_line
    return table, rows


def _is_header_row(line: bytes) -> bool:
    """A point count (``12345``) or column names (``x y z``, ``//X,Y,Z``) on the first row."""
    words = line.split()
    if len(words) == 1 and words[0].isdigit():
        return True
    for word in words:
        if not re.match(rb"[A-Za-z_/\"']", word):
            return False
        try:
            float(word)
            return False  # nan, inf: data, not a name
        except ValueError:
            pass
    return bool(words)


def _numbers(path: Path, data: bytes, first_line: int) -> np.ndarray:
    """The numbers of checked rows as a (rows, columns) float64 array.

    ``np.loadtxt`` is numpy's C parser (numpy >= 1.23): 1.5 s for 6 M numbers on a slow
    core, against 2 s for ``np.fromstring`` and 2.7 s for ``str.split`` + ``float``.
    """
    try:
        return np.loadtxt(io.BytesIO(data), dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        pass
    for number, line in enumerate(data.split(b"\n"), start=first_line):  # error path only
        for token in line.split():
            try:
                if b"_" in token:  # Python's float takes 1_000; numpy's parser does not
                    raise ValueError
                float(token)
            except ValueError:
                text = token.decode("utf-8", "replace")
                raise InputError(path, f"could not parse '{text}' as a number", line=number) from None
    raise InputError(path, "could not parse its numbers")


def _read_xyz(path: Path) -> Arrays:
    """``x y z [nx ny nz]`` rows separated by spaces, tabs or commas; ``#`` comments."""
    table, lines = _parse_table(path, _text_bytes(path, path.read_bytes()), count_header=True)
    return table[:, :3], (table[:, 3:6] if table.shape[1] == 6 else None), lines


def _read_obj(path: Path) -> Arrays:
    """``v`` lines (colour columns ignored); ``vn`` lines only if there is one per ``v``."""
    data = _text_bytes(path, path.read_bytes())
    v, lines = _parse_table(path, _keep_lines(data, b"v"), allowed=(3, 4, 6, 7),
                            describe="3 (x y z), optionally followed by w or r g b")
    vn, _ = _parse_table(path, _keep_lines(data, b"vn"), allowed=(3,), describe="3 (nx ny nz)")
    return v[:, :3], (vn if len(vn) == len(v) else None), lines


def _keep_lines(data: bytes, tag: bytes) -> bytes:
    """Blank every line that does not start with ``tag``, and drop the tag (lines kept)."""
    data = re.sub(rb"(?m)^(?!" + tag + rb"[ \t])[^\n]*", b"", data)
    return re.sub(rb"(?m)^" + tag + rb"[ \t]", b" ", data)


def _read_off(path: Path) -> Arrays:
    """The vertex block of an OFF file (``[ST][C][N]OFF`` headers; ``N`` means normals)."""
    data = _text_bytes(path, path.read_bytes())
    counts, starts = _tokens_per_line(data)
    rows = np.flatnonzero(counts)

    def line(k: int) -> list[bytes]:  # the words of the k-th non-blank line
        return _line(data, starts, rows[k]).split() if k < len(rows) else []

    head = line(0)
    keyword = head[0] if head else b""
    if keyword.lstrip(b"STCN") != b"OFF":
        raise InputError(path, "is not an OFF file (it does not start with 'OFF')")
    sizes, block_from = (head[1:], 1) if len(head) > 1 else (line(1), 2)
    if not sizes or not sizes[0].isdigit():
        raise InputError(path, "has no vertex count after 'OFF'")
    count = int(sizes[0])
    block = rows[block_from: block_from + count]
    if len(block) < count:
        raise InputError(path, f"is truncated: header declares {count} vertices, "
                               f"file holds {len(block)}")
    if count == 0:
        return np.empty((0, 3)), None, None
    end = starts[block[-1] + 1] if block[-1] + 1 < len(starts) else len(data)
    table, lines = _parse_table(path, data[starts[block[0]]:end], int(block[0]) + 1,
                                allowed=tuple(range(3, 11)), describe="3 (x y z) or more")
    normals = table[:, 3:6] if b"N" in keyword and table.shape[1] >= 6 else None
    return table[:, :3], normals, lines


def _read_pcd(path: Path) -> Arrays:
    """PCL's .pcd, ``DATA ascii`` or ``binary``; fields x y z, optional normal_x/_y/_z."""
    data = path.read_bytes()
    fields, dtype, count, body_start, header_lines = _pcd_header(path, data)
    kind = fields.pop("DATA")
    if kind == "ascii":
        widths = [int(np.prod(dtype[name].shape)) for name in dtype.names]  # COUNT per field
        table, lines = _parse_table(path, _text_bytes(path, data[body_start:]), header_lines + 1,
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
    else:
        raise InputError(path, f"uses 'DATA {kind}', which is not supported: "
                               "convert it to ascii or binary (e.g. with pcl_convert_pcd_ascii_binary)")
    if held < count:
        raise InputError(path, f"is truncated: header declares {count} points, file holds {held}")
    if held > count:
        raise InputError(path, f"holds {held} points but its header declares {count}")
    return (*_xyz_normals(path, columns, "fields"), lines)


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


def _read_ply(path: Path) -> Arrays:
    """PLY vertices: ASCII or binary of either endianness; other elements are skipped."""
    data = path.read_bytes()
    header = ply.read_header(path, data)
    names = [name for name, _, _ in header.vertex.properties]
    if not all(axis in names for axis in "xyz"):
        raise InputError(path, "has no x, y and z vertex properties")
    if header.encoding == "ascii":
        block, first_line = ply.ascii_vertex_lines(path, header, data)
        table, lines = _parse_table(path, _text_bytes(path, block), first_line,
                                    allowed=(len(names),),
                                    describe=f"{len(names)} (one per vertex property in the header)")
        columns = dict(zip(names, table.T, strict=True))
    else:
        array, lines = ply.binary_vertices(path, header, data), None
        columns = {name: array[name] for name in array.dtype.names}
    return (*_xyz_normals(path, columns, "vertex properties"), lines)


def _xyz_normals(path: Path, columns: dict[str, np.ndarray],
                 what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Points from columns x y z; normals from nx ny nz or normal_x normal_y normal_z."""
    if not all(axis in columns for axis in "xyz"):
        raise InputError(path, f"has no x, y and z {what}")
    points = np.column_stack([columns[axis] for axis in "xyz"]).astype(np.float64)
    for names in (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z")):
        if all(name in columns for name in names):
            return points, np.column_stack([columns[name] for name in names]).astype(np.float64)
    return points, None


def _read_npy(path: Path) -> Arrays:
    """A (N, 3) or (N, 6) numeric array (x y z [nx ny nz])."""
    return (*_split_columns(path, _numpy_load(path, lambda f: f)), None)


def _read_npz(path: Path) -> Arrays:
    """Array ``points`` (else the first array) and optional ``normals``."""
    def take(archive: np.lib.npyio.NpzFile | np.ndarray) -> tuple:
        if isinstance(archive, np.ndarray):  # an .npy file named .npz
            return archive, None
        if not archive.files:
            raise InputError(path, "contains no arrays")
        key = "points" if "points" in archive.files else archive.files[0]
        return archive[key], archive["normals"] if "normals" in archive.files else None

    array, normals = _numpy_load(path, take)
    points, from_columns = _split_columns(path, array)
    if normals is None:
        return points, from_columns, None
    numeric = np.issubdtype(normals.dtype, np.integer) or np.issubdtype(normals.dtype, np.floating)
    if normals.shape != points.shape or not numeric:
        raise InputError(path, f"has a 'normals' array of {normals.dtype} and shape "
                               f"{normals.shape}: expected numbers of shape {points.shape} like its points")
    return points, normals.astype(np.float64), None


def _numpy_load(path: Path, use: Callable) -> object:
    """``np.load`` without pickles; ``use`` runs while an .npz archive is still open."""
    try:
        with open(path, "rb") as f:  # closed here even when numpy fails half-way
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded:
                    return use(loaded)
            return use(loaded)
    except InputError:
        raise
    except MemoryError:
        raise InputError(path, "is too large to read into memory") from None
    except Exception as error:  # numpy's parser raises many types for damaged headers
        text = (str(error).splitlines() or [""])[0][:200] or type(error).__name__
        raise InputError(path, f"could not be read as a numpy file ({text})") from None


def _split_columns(path: Path, array: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Points and normals from a (N, 3) or (N, 6) array."""
    if not isinstance(array, np.ndarray):
        raise InputError(path, "holds several arrays (.npz), not one .npy array")
    numeric = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    if array.ndim != 2 or array.shape[1] not in (3, 6) or not numeric:
        raise InputError(path, f"holds a {array.dtype} array of shape {array.shape}: "
                               "expected numbers of shape (N, 3) or (N, 6)")
    array = array.astype(np.float64, copy=False)
    return array[:, :3], (array[:, 3:] if array.shape[1] == 6 else None)


# --- checks --------------------------------------------------------------------------------


def validate_cloud(path: str | Path, points: np.ndarray, normals: np.ndarray | None,
                   min_points: int = 10, lines: np.ndarray | None = None) -> PointCloud:
    """Check freshly read arrays and return a ``PointCloud``; raise ``InputError`` if unusable.

    Rejects: no points, NaN/Inf coordinates, fewer than ``min_points`` distinct points, all
    points the same, coordinates beyond float32's range, all points on a line or a plane (no
    volume), and coordinates so far from the origin for their extent that float32 cannot
    tell them apart. Normals are made unit length; if any is NaN, infinite or zero-length,
    all normals are dropped (``None``) with a warning, because a cloud carries either a
    normal for every point or none. ``lines``: the file line of each point (text formats),
    so that a message can name it.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    if len(points) == 0:
        raise InputError(path, "contains no points")
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        first = int(np.argmin(finite))
        line = None if lines is None else int(lines[first])
        raise InputError(path, f"contains NaN or infinite coordinates (first at point {first + 1})",
                         line=line)
    distinct = _count_distinct(points, min_points)
    if distinct == 1 and len(points) > 1:
        raise InputError(path, f"all {len(points)} points are the same point: "
                               "there is no volume to reconstruct")
    if distinct < min_points:
        raise InputError(path, f"has only {distinct} distinct point{'s' * (distinct != 1)}; "
                               f"at least {min_points} are needed")
    _check_range(path, points)
    _check_volume(path, points)
    _check_precision(path, points)
    return PointCloud(points, _unit_normals(path, normals))


def _count_distinct(points: np.ndarray, needed: int) -> int:
    """Distinct rows, looking at a prefix first: sorting a million rows is the slow part."""
    head = points[: max(10 * needed, 1000)] + 0.0  # + 0.0 makes -0.0 equal to 0.0
    found = len(np.unique(head, axis=0))
    if found >= needed or len(head) == len(points):
        return found
    return len(np.unique(points + 0.0, axis=0))


FLOAT32_MAX = float(np.finfo(np.float32).max)
SMALLEST_EXTENT = 1e-30  # float32 numbers stop at 1.2e-38 (normal) and a mesh needs ~1e-4 of it


def _check_range(path: str | Path, points: np.ndarray) -> None:
    """Meshes, checkpoints and most tools store float32: the cloud must fit its range."""
    largest = float(np.abs(points).max())
    if largest > FLOAT32_MAX / 16:  # some head room for the padded box around the cloud
        raise InputError(path, f"coordinates reach {largest:.3g}, beyond what float32 holds "
                               f"({FLOAT32_MAX:.3g}): scale the cloud down first")
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    if extent < SMALLEST_EXTENT:
        raise InputError(path, f"the cloud spans only {extent:.3g}, too small for float32: "
                               "scale the cloud up first")


def _check_volume(path: str | Path, points: np.ndarray) -> None:
    """Singular values of the centred points: a tiny one means a flat (plane or line) cloud.

    The points are divided by their largest centred coordinate first, so that neither huge
    nor tiny coordinates overflow or underflow in the 3 x 3 product.
    """
    centred = points - points.mean(axis=0)
    largest = float(np.abs(centred).max())
    if largest == 0.0:
        raise InputError(path, "all points are the same point: there is no volume to reconstruct")
    centred /= largest
    variances = np.linalg.eigvalsh(centred.T @ centred)[::-1]
    spread = np.sqrt(np.clip(variances, 0.0, None))
    if spread[1] / spread[0] < 1e-6:
        raise InputError(path, "all points lie on a line: there is no volume to reconstruct")
    if spread[2] / spread[0] < 1e-6:
        raise InputError(path, "all points lie on a plane: there is no volume to reconstruct")


def _check_precision(path: str | Path, points: np.ndarray) -> None:
    """float32 keeps 7 digits: the shape must not be lost in the offset from the origin."""
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max())
    offset = float(np.abs((low + high) / 2).max())
    if offset > 1e6 * extent:
        raise InputError(path, f"coordinates are centred {offset:.3g} from the origin but span only "
                               f"{extent:.3g}: float32 cannot resolve the shape; "
                               "move the cloud near the origin first")


def _unit_normals(path: str | Path, normals: np.ndarray | None) -> np.ndarray | None:
    """Unit-length float32 normals, or None (with a warning) if any normal is unusable."""
    if normals is None:
        return None
    normals = np.array(normals, dtype=np.float64)  # a copy: it is scaled in place below
    with np.errstate(invalid="ignore", over="ignore"):
        largest = np.abs(normals).max(axis=1)  # divide first: no overflow or underflow
        good = np.isfinite(largest) & (largest > 0.0)
        bad = len(normals) - int(np.count_nonzero(good))
        if bad:  # a cloud has a normal for every point or none: drop them all
            most = " (more than half)" if 2 * bad > len(normals) else ""
            log.warning("%s: %d of %d normals%s are NaN, infinite or zero-length; ignoring all "
                        "the normals in this file", path, bad, len(normals), most)
            return None
        normals /= largest[:, None]
        length = np.linalg.norm(normals, axis=1)
        normals /= length[:, None]
        raw_length = length * largest
    median = float(np.median(raw_length))
    if not 0.9 <= median <= 1.1:
        log.warning("%s: the normals are not unit length (median length %.3g): are the last "
                    "three columns colours? They are used as normals after normalising",
                    path, median)
    return normals.astype(np.float32)


# --- writers -------------------------------------------------------------------------------


def _table(cloud: PointCloud) -> np.ndarray:
    """(N, 3) or (N, 6) float64: points, then normals if any."""
    if cloud.normals is None:
        return cloud.points
    return np.hstack([cloud.points, cloud.normals.astype(np.float64)])


def _write_xyz(path: Path, cloud: PointCloud, header: str = "") -> None:
    """One ``x y z [nx ny nz]`` line per point, ``%.9g`` (float32 values round-trip exactly)."""
    table = _table(cloud)
    row = " ".join(["%.9g"] * table.shape[1]) + "\n"
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(header)
        for start in range(0, len(table), 100_000):  # one format call per chunk: fast
            chunk = table[start: start + 100_000]
            f.write(row * len(chunk) % tuple(chunk.ravel().tolist()))


def _write_pcd(path: Path, cloud: PointCloud) -> None:
    """ASCII PCD v0.7 with fields x y z [normal_x normal_y normal_z]."""
    names = ["x", "y", "z"] + ([] if cloud.normals is None else ["normal_x", "normal_y", "normal_z"])
    size = "8" if ply.needs_double(cloud.points) else "4"
    sizes = [size] * 3 + ["4"] * (len(names) - 3)
    header = (f"# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\n"
              f"FIELDS {' '.join(names)}\nSIZE {' '.join(sizes)}\nTYPE {' '.join('F' * len(names))}\n"
              f"COUNT {' '.join('1' * len(names))}\nWIDTH {len(cloud)}\nHEIGHT 1\n"
              f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {len(cloud)}\nDATA ascii\n")
    _write_xyz(path, cloud, header)


def _write_ply(path: Path, cloud: PointCloud) -> None:
    ply.write_ply(path, cloud.points, cloud.normals)


def _write_npy(path: Path, cloud: PointCloud) -> None:
    """(N, 3) or (N, 6) float64; points exact."""
    with open(path, "wb") as f:
        np.save(f, _table(cloud))


def _write_npz(path: Path, cloud: PointCloud) -> None:
    """``points`` float64 and, if present, ``normals`` float32."""
    arrays = {"points": cloud.points}
    if cloud.normals is not None:
        arrays["normals"] = cloud.normals
    with open(path, "wb") as f:
        np.savez(f, **arrays)


# --- public --------------------------------------------------------------------------------


def check_input_file(path: Path, suffixes: tuple[str, ...], kind: str) -> None:
    """The common first checks on an input path: it exists, is a file, has a known suffix."""
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    if path.suffix.lower() not in suffixes:
        raise InputError(path, f"unknown {kind} format '{path.suffix}' "
                               f"(supported: {', '.join(suffixes)})")


def load_point_cloud(path: str | Path, min_points: int = 10) -> PointCloud:
    """Read a point cloud in any of ``POINT_CLOUD_SUFFIXES`` and validate it.

    Points keep the file's own units (no normalisation here). Raises ``InputError`` with a
    one-sentence problem for anything unusable (see ``validate_cloud``).
    """
    path = Path(path)
    check_input_file(path, POINT_CLOUD_SUFFIXES, "point cloud")
    try:
        if path.stat().st_size == 0:
            raise InputError(path, "contains no points")
        with np.errstate(invalid="ignore", over="ignore"):  # signalling NaNs in binary data
            points, normals, lines = _READERS[path.suffix.lower()](path)
    except OSError as error:
        raise InputError(path, f"could not be read ({error.strerror or error})") from None
    except MemoryError:
        raise InputError(path, "is too large to read into memory") from None
    return validate_cloud(path, points, normals, min_points, lines)


def save_point_cloud(path: str | Path, cloud: PointCloud, overwrite: bool = False) -> None:
    """Write ``cloud`` in the format named by the suffix, atomically (see ``atomic_write``)."""
    path = Path(path)
    writer = _WRITERS.get(path.suffix.lower())
    if writer is None:
        raise InputError(path, f"cannot write point clouds as '{path.suffix}' "
                               f"(supported: {', '.join(_WRITERS)})")
    with atomic_write(path, overwrite) as tmp:  # refuses an existing file before writing
        writer(tmp, cloud)


_READERS: dict[str, Callable[[Path], Arrays]] = {
    ".xyz": _read_xyz, ".txt": _read_xyz, ".pts": _read_xyz, ".ply": _read_ply,
    ".pcd": _read_pcd, ".obj": _read_obj, ".off": _read_off, ".npy": _read_npy, ".npz": _read_npz,
}
_WRITERS: dict[str, Callable[[Path, PointCloud], None]] = {
    ".xyz": _write_xyz, ".txt": _write_xyz, ".pts": _write_xyz, ".ply": _write_ply,
    ".npy": _write_npy, ".npz": _write_npz, ".pcd": _write_pcd,
}
POINT_CLOUD_SUFFIXES: tuple[str, ...] = tuple(_READERS)
