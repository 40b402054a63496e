"""report.html of a benchmark folder: the results table with each shape's best value of
every column highlighted, and per shape a row of thumbnails (the reference and each
method's mesh, from one camera) linking to the mesh files.

Generic over the records' columns: every numeric or yes/no key of the records is a column
(new metrics appear without a change here); which way is better is read from the column's
name (:func:`better`), and a column with no known direction is shown but not highlighted.
Self-contained: inline CSS, no scripts, the thumbnails as PNG files in OUT/thumbnails/
beside it, relative links; it opens from disk and makes no network request.
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("sdfrecon")

THUMB = 220  # thumbnail pixels (square)
BEST = ' class="best"'
# Bookkeeping numbers that are not results.
_SKIP = {"threads", "start_rss_mb", "seed"}
_LOWER = ("chamfer", "hausdorff", "distance", "error", "seconds", "rss", "_mb", "unsupported",
          "time", "memory")
_HIGHER = ("fscore", "f-score", "consistency", "iou", "psnr", "ssim", "precision", "recall")


def better(column: str) -> str | None:
    """'lower', 'higher' or None (no known direction) for a column name."""
    name = column.lower()
    if any(k in name for k in _HIGHER):
        return "higher"
    if any(k in name for k in _LOWER):
        return "lower"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def table_columns(records: list[dict]) -> list[str]:
    """The numeric and yes/no columns of the records, in results.csv's order."""
    from sdfrecon.bench.report import COLUMNS

    keys = {k for r in records for k, v in r.items()
            if k not in _SKIP and (isinstance(v, bool) or _is_number(v))}
    ordered = [c for c in COLUMNS if c in keys] + sorted(keys - set(COLUMNS))
    costs = ("seconds", "rss", "_mb", "time", "memory")

    def group(column: str) -> int:  # quality first, then the rest, then time and memory
        if any(k in column.lower() for k in costs):
            return 2
        return 0 if better(column) else 1

    return sorted(ordered, key=group)  # stable: keeps results.csv's order within a group


def best_cells(records: list[dict], columns: list[str]) -> set[tuple[int, str]]:
    """(record index, column) of each shape's best value per column among its 'ok' records
    (ties all count; nothing is highlighted where fewer than two records have a value)."""
    best: set[tuple[int, str]] = set()
    shapes = dict.fromkeys(r.get("shape") for r in records)
    for shape in shapes:
        rows = [i for i, r in enumerate(records) if r.get("shape") == shape and r.get("status") == "ok"]
        for column in columns:
            way = better(column)
            valued = [(i, records[i][column]) for i in rows if _is_number(records[i].get(column))]
            if way is None or len(valued) < 2:
                continue
            target = (min if way == "lower" else max)(v for _, v in valued)
            best |= {(i, column) for i, v in valued if v == target}
    return best


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if _is_number(value):
        magnitude = abs(value)
        return f"{value:.3g}" if magnitude and (magnitude < 1e-2 or magnitude >= 1e4) else f"{value:.4g}"
    return "–"


def _signature(paths: list[Path | None]) -> str:
    """Changes when any mesh of a shape changes (path, size, modification time)."""
    parts = []
    for p in paths:
        st = p.stat() if p is not None and p.is_file() else None
        parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}" if st else f"{p}:missing")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _load(path: Path | None):
    """(vertices, faces) of a mesh file, or None where it is missing or unreadable."""
    from sdfrecon.errors import InputError
    from sdfrecon.io import load_mesh

    if path is None or not path.is_file():
        return None
    try:
        mesh = load_mesh(path)
    except (InputError, OSError, ValueError) as err:
        log.warning("no thumbnail of %s: %s", path, err)
        return None
    if len(mesh.faces) == 0:
        return None
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


def shape_thumbnails(out: Path, shape: str, meshes: dict[str, Path | None]) -> dict[str, str | None]:
    """PNG thumbnails (OUT/thumbnails/<shape>__<name>.png) of one shape's meshes, all from one
    camera framing them together; redrawn only when a mesh changed. Returns name -> the
    thumbnail's path relative to out (None: no mesh to draw)."""
    from sdfrecon.viz.figures import save_png
    from sdfrecon.viz.render import Camera, render_mesh

    folder = out / "thumbnails"
    names = {name: f"thumbnails/{shape}__{name}.png" for name in meshes}
    key_file = folder / f"{shape}.key"
    signature = _signature(list(meshes.values()))
    if key_file.is_file() and key_file.read_text().strip() == signature:
        return {n: (rel if (out / rel).is_file() else None) for n, rel in names.items()}
    loaded = {name: _load(path) for name, path in meshes.items()}
    drawn = [m for m in loaded.values() if m is not None]
    if not drawn:
        return dict.fromkeys(meshes)
    camera = Camera.framing([v for v, _ in drawn])
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, str | None] = {}
    for name, mesh in loaded.items():
        if mesh is None:
            result[name] = None
            continue
        save_png(out / names[name], render_mesh(mesh[0], mesh[1], camera, THUMB)[0], overwrite=True)
        result[name] = names[name]
    key_file.write_text(signature + "\n")
    return result


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.78em; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.text { text-align: left; }
td.best { background: #c7e9c0; font-weight: bold; }
tr.failed td { color: #b00; }
tr.first td { border-top: 2px solid #888; }
.row { display: flex; flex-wrap: wrap; gap: 0.5em; margin-bottom: 1em; }
figure { margin: 0; text-align: center; font-size: 0.85em; }
figure img { border: 1px solid #ddd; display: block; }
.missing { width: 220px; height: 220px; border: 1px dashed #bbb; display: flex;
           align-items: center; justify-content: center; color: #999; }
"""


def _rel(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()


def html_report(out: Path, records: list[dict], thumbs: dict[str, dict[str, str | None]],
                meshes: dict[str, dict[str, Path | None]]) -> str:
    """The page: the table of every record, then the thumbnail row of each shape."""
    columns = table_columns(records)
    best = best_cells(records, columns)
    esc = html.escape
    head = "".join(f"<th>{esc(c)}{' ↓' if better(c) == 'lower' else ' ↑' if better(c) == 'higher' else ''}</th>"
                   for c in columns)
    rows, previous = [], None
    for i, r in enumerate(records):
        classes = (["failed"] if r.get("status") != "ok" else []) + (["first"] if r.get("shape") != previous else [])
        previous = r.get("shape")
        cells = "".join(f"<td{BEST if (i, c) in best else ''}>{_cell(r.get(c))}</td>" for c in columns)
        status = esc(str(r.get("status", "")))
        if r.get("status") != "ok" and r.get("error"):
            status += f": {esc(str(r['error'])[:200])}"
        rows.append(f"<tr class=\"{' '.join(classes)}\"><td class=\"text\">{esc(str(r.get('shape')))}</td>"
                    f"<td class=\"text\">{esc(str(r.get('method')))}</td><td class=\"text\">{status}</td>{cells}</tr>")
    figures = []
    for shape, row in thumbs.items():
        items = []
        for name, thumb in row.items():
            mesh = meshes[shape].get(name)
            img = (f"<img src=\"{esc(thumb)}\" width=\"{THUMB}\" height=\"{THUMB}\" alt=\"{esc(name)}\">"
                   if thumb else "<div class=\"missing\">no mesh</div>")
            if thumb and mesh is not None:
                img = f"<a href=\"{esc(_rel(mesh, out))}\">{img}</a>"
            items.append(f"<figure>{img}<figcaption>{esc(name)}</figcaption></figure>")
        figures.append(f"<h3>{esc(shape)}</h3>\n<div class=\"row\">{''.join(items)}</div>")
    ok = sum(r.get("status") == "ok" for r in records)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Benchmark report</title>
<link rel="icon" href="data:,"><style>{_CSS}</style></head><body>
<h1>Benchmark report</h1>
<p>{len(records)} jobs: {ok} ok, {len(records) - ok} failed. Green: the best value of the column among a
shape's methods (↓ lower is better, ↑ higher is better; columns without an arrow are not ranked).
Units and definitions as in <a href="results.md">results.md</a>; all values in
<a href="results.csv">results.csv</a>.</p>
<table><thead><tr><th>shape</th><th>method</th><th>status</th>{head}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<h2>Meshes</h2>
<p>Each row: one shape, the reference and every method's mesh from the same camera; click a picture
for its mesh file.</p>
{chr(10).join(figures)}
</body></html>
"""


def write_html_report(out: Path, records: list[dict], progress: bool = False) -> Path:
    """Draw the thumbnails (where a mesh changed) and write OUT/report.html atomically."""
    from tqdm.auto import tqdm

    from sdfrecon.io import atomic_write

    out = Path(out)
    meshes: dict[str, dict[str, Path | None]] = {}
    for r in records:
        shape = str(r.get("shape"))
        row = meshes.setdefault(shape, {})
        if "reference" not in row:
            row["reference"] = Path(r["reference"]) if r.get("reference") else None
        row[str(r.get("method"))] = out / r["mesh"] if r.get("mesh") else None
    thumbs = {}
    for shape in tqdm(meshes, desc="thumbnails", unit="shape", disable=None if progress else True,
                      leave=False):
        thumbs[shape] = shape_thumbnails(out, shape, meshes[shape])
    path = out / "report.html"
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(html_report(out, records, thumbs, meshes), encoding="utf-8")
    return path

