"""bench's report.html: the best value of each column per shape highlighted (whatever the
columns are), thumbnails of every mesh linking to it, and a page that a real headless
Chromium opens from disk without console errors or network requests."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from sdfrecon.bench.html import THUMB, best_cells, better, html_report, table_columns
from sdfrecon.viz.browser import load_page, missing_browser


def test_direction_of_columns():
    assert better("exact_chamfer_l1_rel") == "lower"
    assert better("unsupported_area_rel") == "lower"  # a column another change adds
    assert better("fscore@1%") == "higher" and better("normal_consistency") == "higher"
    assert better("peak_rss_mb") == "lower" and better("vertices") is None


def test_best_cells_per_shape_generic_columns():
    records = [
        {"shape": "a", "method": "siren", "status": "ok", "chamfer_l1_rel": 0.2, "fscore@1%": 0.9,
         "unsupported_area_rel": 0.05, "vertices": 10, "watertight": True},
        {"shape": "a", "method": "poisson", "status": "ok", "chamfer_l1_rel": 0.1, "fscore@1%": 0.9,
         "unsupported_area_rel": 0.01, "vertices": 20, "watertight": False},
        {"shape": "a", "method": "broken", "status": "failed", "chamfer_l1_rel": 0.0},
        {"shape": "b", "method": "siren", "status": "ok", "chamfer_l1_rel": 0.3},
        {"shape": "b", "method": "poisson", "status": "ok", "chamfer_l1_rel": 0.4},
    ]
    columns = table_columns(records)
    assert {"chamfer_l1_rel", "fscore@1%", "unsupported_area_rel", "vertices", "watertight"} <= set(columns)
    best = best_cells(records, columns)
    assert best == {(1, "chamfer_l1_rel"), (0, "fscore@1%"), (1, "fscore@1%"),  # a tie: both
                    (1, "unsupported_area_rel"), (3, "chamfer_l1_rel")}  # failed rows never win
    page = html_report(Path("."), records, {}, {})
    assert page.count('class="best"') == len(best)
    assert "unsupported_area_rel ↓" in page


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    """A benchmark folder as `bench` leaves it (references, meshes/, results records) for two
    shapes and two methods; the driver's own call of the report is tested in test_bench."""
    from sdfrecon.bench.html import write_html_report

    root = tmp_path_factory.mktemp("report")
    (root / "shapes").mkdir()
    out = root / "out"
    (out / "meshes").mkdir(parents=True)
    references = {"sphere": trimesh.creation.icosphere(3), "torus": trimesh.creation.torus(1.0, 0.35)}
    records = []
    for shape, mesh in references.items():
        reference = root / "shapes" / f"{shape}.ply"
        mesh.export(reference)
        for k, method in enumerate(("siren", "poisson")):
            made = mesh.copy()
            made.apply_scale(1.0 + 0.05 * k)
            made.export(out / "meshes" / f"{shape}__{method}.ply")
            records.append({"shape": shape, "method": method, "status": "ok", "seconds": 10.0 - k,
                            "chamfer_l1_rel": 0.001 + 0.002 * k, "fscore@1%": 0.99 - 0.1 * k,
                            "mesh": f"meshes/{shape}__{method}.ply", "reference": str(reference)})
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    write_html_report(out, records)
    return out


def test_report_files(bench_out):
    page = (bench_out / "report.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from a network
    for shape in ("sphere", "torus"):
        for name in ("reference", "siren", "poisson"):
            thumb = bench_out / "thumbnails" / f"{shape}__{name}.png"
            image = np.asarray(Image.open(thumb).convert("RGB")).astype(int)
            assert image.shape[:2] == (THUMB, THUMB)
            covered = ((image[..., 2] - image[..., 0]) > 12).mean()
            assert 0.1 < covered < 0.8, thumb
        assert f'href="meshes/{shape}__poisson.ply"' in page
        assert f'src="thumbnails/{shape}__poisson.png"' in page
    # reference links are relative paths that resolve to the reference files
    for href in re.findall(r'href="([^"]+\.(?:ply|obj))"', page):
        assert (bench_out / href).resolve().is_file(), href


def test_report_in_headless_chromium(bench_out):
    if missing_browser() is not None:
        pytest.skip(missing_browser())
    report = load_page(bench_out / "report.html", width=1280, height=900)
    assert report.errors == [], report.messages
    assert [m for m in report.messages if m[0] == "warning"] == []
    assert report.requests and all(u.startswith("file://") for u in report.requests), report.requests
    images = [u for u in report.requests if u.endswith(".png")]
    assert len(images) == 6  # every thumbnail was loaded
    shot = np.asarray(Image.open(io.BytesIO(report.screenshot)).convert("RGB")).astype(int)
    assert shot.shape[1] == 1280 and shot.shape[0] > 900
    # the table's highlight (#c7e9c0) and the meshes' steel blue are on the page
    highlight = (np.abs(shot - [199, 233, 192]).sum(axis=-1) < 6)
    r, g, b = shot[..., 0], shot[..., 1], shot[..., 2]
    mesh = (b - r > 25) & (g > r) & (r > 15)  # steel blue; not a link's pure blue or purple
    assert highlight.sum() > 200
    rows = np.flatnonzero(mesh.any(axis=1))
    assert mesh.sum() > 6 * 0.1 * THUMB * THUMB and rows.min() > np.flatnonzero(highlight.any(axis=1)).max()


def test_a_broken_page_is_reported(tmp_path):
    """The browser check can fail: a console error, a missing image and a request off the
    disk all show up in the report."""
    if missing_browser() is not None:
        pytest.skip(missing_browser())
    page = tmp_path / "broken.html"
    page.write_text('<html><body><script>console.error("boom"); console.warn("careful")</script>'
                    '<img src="missing.png"><div style="height:2000px"></div></body></html>')
    report = load_page(page, width=400, height=300)
    boom, missing = sorted(report.errors, key=lambda text: "missing.png" in text)  # any order
    assert boom.endswith('"boom"') and "missing.png" in missing and "ERR_FILE_NOT_FOUND" in missing
    assert [level for level, _ in report.messages].count("warning") == 1
    assert sorted(report.requests) == [page.as_uri(), (tmp_path / "missing.png").as_uri()]
    shot = Image.open(io.BytesIO(report.screenshot))
    assert shot.size[0] == 400 and shot.size[1] > 2000  # the whole page, not the window


def test_report_shows_missing_mesh(bench_out, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(bench_out, out)
    (out / "meshes" / "torus__poisson.ply").unlink()
    from sdfrecon.bench.html import write_html_report

    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    page = write_html_report(out, records).read_text()
    assert page.count("no mesh") == 1
    assert 'href="meshes/torus__poisson.ply"' not in page
