"""Text point clouds: .xyz/.txt/.pts rows, the ``v``/``vn`` lines of .obj, the vertex block
of .off; and the row parser that the ASCII variants of PLY and PCD share.

Text is parsed with whole-buffer numpy operations (no Python loop per line);
``scripts/bench/speed_io.py`` measures the load times. Line numbers in messages are the file's.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.io.arrays import Arrays, as_table

if TYPE_CHECKING:
    from sdfrecon.io.types import PointCloud

Table = tuple[np.ndarray, np.ndarray]  # (rows, columns) float64 and the file line of each row
XYZ_COLUMNS = "3 (x y z) or 6 (x y z nx ny nz)"

_TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r\f\v" + bytes(range(128, 256))


def text_bytes(path: Path, data: bytes) -> bytes:
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


def tokens_per_line(data: bytes) -> tuple[np.ndarray, np.ndarray]:
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
        space = a <= ord(" ")  # text_bytes let no other control character through
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


def line_text(data: bytes, starts: np.ndarray, row: int) -> bytes:
    """The text of line ``row`` (0-based) without its line break."""
    end = starts[row + 1] - 1 if row + 1 < len(starts) else len(data)
    return data[starts[row]:end]


def parse_table(path: Path, data: bytes, first_line: int = 1, allowed: tuple[int, ...] = (3, 6),
                describe: str = XYZ_COLUMNS, count_header: bool = False) -> Table:
    """Parse text rows of numbers (blank lines skipped) into a (rows, columns) float64 array.

    Every row must have the same number of columns, one of ``allowed``. ``first_line`` is the
    file line of ``data``'s first line. With ``count_header`` a first row holding one integer
    (the point count of some .pts files) or only column names (``x y z nx ny nz``,
    CloudCompare's ``//X,Y,Z``) is skipped. Returns the table and the file line of each row.
    """
    counts, starts = tokens_per_line(data)
    rows = np.flatnonzero(counts)
    if count_header and len(rows) and _is_header_row(line_text(data, starts, rows[0])):
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

    ``np.loadtxt`` is numpy's C parser (numpy >= 1.23), faster than ``np.fromstring`` or
    ``str.split`` + ``float`` (``scripts/bench/speed_io.py`` times the readers on large files).
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


def read_xyz(path: Path) -> Arrays:
    """``x y z [nx ny nz]`` rows separated by spaces, tabs or commas; ``#`` comments."""
    table, lines = parse_table(path, text_bytes(path, path.read_bytes()), count_header=True)
    return table[:, :3], (table[:, 3:6] if table.shape[1] == 6 else None), lines


def read_obj(path: Path) -> Arrays:
    """``v`` lines (colour columns ignored); ``vn`` lines only if there is one per ``v``."""
    data = text_bytes(path, path.read_bytes())
    v, lines = parse_table(path, _keep_lines(data, b"v"), allowed=(3, 4, 6, 7),
                           describe="3 (x y z), optionally followed by w or r g b")
    vn, _ = parse_table(path, _keep_lines(data, b"vn"), allowed=(3,), describe="3 (nx ny nz)")
    return v[:, :3], (vn if len(vn) == len(v) else None), lines


def _keep_lines(data: bytes, tag: bytes) -> bytes:
    """Blank every line that does not start with ``tag``, and drop the tag (lines kept)."""
    data = re.sub(rb"(?m)^(?!" + tag + rb"[ \t])[^\n]*", b"", data)
    return re.sub(rb"(?m)^" + tag + rb"[ \t]", b" ", data)


def read_off(path: Path) -> Arrays:
    """The vertex block of an OFF file (``[ST][C][N]OFF`` headers; ``N`` means normals)."""
    data = text_bytes(path, path.read_bytes())
    counts, starts = tokens_per_line(data)
    rows = np.flatnonzero(counts)

    def line(k: int) -> list[bytes]:  # the words of the k-th non-blank line
        return line_text(data, starts, rows[k]).split() if k < len(rows) else []

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
    table, lines = parse_table(path, data[starts[block[0]]:end], int(block[0]) + 1,
                               allowed=tuple(range(3, 11)), describe="3 (x y z) or more")
    normals = table[:, 3:6] if b"N" in keyword and table.shape[1] >= 6 else None
    return table[:, :3], normals, lines


def write_xyz(path: Path, cloud: PointCloud, header: str = "") -> None:
    """One ``x y z [nx ny nz]`` line per point, ``%.9g`` (float32 values round-trip exactly)."""
    table = as_table(cloud)
    row = " ".join(["%.9g"] * table.shape[1]) + "\n"
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(header)
        for start in range(0, len(table), 100_000):  # one format call per chunk: fast
            chunk = table[start: start + 100_000]
            f.write(row * len(chunk) % tuple(chunk.ravel().tolist()))


def write_obj_mesh(path: Path, vertices: np.ndarray, faces: np.ndarray,
                   normals: np.ndarray | None, decimals: int) -> None:
    """A triangle mesh as OBJ: ``v`` lines with ``decimals`` digits after the point, ``vn``
    lines (``%.6f``) where normals are given, then ``f a//a b//b c//c`` (1-based), as
    trimesh writes it, formatted a chunk at a time (~10x faster than trimesh's exporter)."""
    blocks = [("v " + " ".join([f"%.{decimals}f"] * 3) + "\n", np.asarray(vertices, dtype=np.float64))]
    if normals is not None:
        blocks.append(("vn %.6f %.6f %.6f\n", np.asarray(normals, dtype=np.float64)))
    one = np.asarray(faces, dtype=np.int64) + 1
    if normals is not None:
        blocks.append(("f %d//%d %d//%d %d//%d\n", np.repeat(one, 2, axis=1)))
    else:
        blocks.append(("f %d %d %d\n", one))
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("# written by sdfrecon\n")
        for row, table in blocks:
            for start in range(0, len(table), 100_000):
                chunk = table[start: start + 100_000]
                f.write(row * len(chunk) % tuple(chunk.ravel().tolist()))
