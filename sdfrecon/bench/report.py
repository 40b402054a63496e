"""Benchmark reports: the records of results.jsonl as results.csv and results.md.

Pure functions of a list of flat records (dicts, as :func:`sdfrecon.bench.jobs.run_job`
makes them and the driver completes them); they read and write no files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from typing import Any

from sdfrecon.bench.srb import srb_section

# Leading columns of results.csv, in this order; the other keys follow alphabetically.
COLUMNS = (
    "shape", "method", "status", "error", "seconds", "peak_rss_mb", "start_rss_mb", "eval_seconds",
    "job_seconds", "chamfer_l1_rel", "exact_chamfer_l1_rel", "fscore@1%", "exact_fscore@1%",
    "exact_fscore@0.5%", "normal_consistency", "unsupported@5%", "components", "reference_components", "genus", "watertight", "vertices", "faces",
    "cloud_points", "normals", "threads", "host", "finished", "mesh", "cloud", "reference",
)


def _csv(records: list[dict]) -> str:
    """results.csv: a row per record, COLUMNS first, then the other keys alphabetically;
    dict and list values as JSON."""
    keys = {k for r in records for k in r}
    columns = [c for c in COLUMNS if c in keys] + sorted(keys - set(COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
                         for k, v in record.items()})
    return buffer.getvalue()


def _number(value: Any, scale: float = 1.0, digits: int = 3) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return f"{value * scale:.{digits}f}"


def _topo(record: dict) -> str:
    if "components" not in record:
        return "–"
    reference = f" ({record['reference_components']})" if "reference_components" in record else ""
    return f"{record['components']} / {record.get('genus', '?')}{reference}"


# (header, key, scale, digits) of the numeric columns of results.md.
_MD_COLUMNS = (
    ("Chamfer-L1 % diag (samples)", "chamfer_l1_rel", 100.0, 3),
    ("Chamfer-L1 % diag (exact)", "exact_chamfer_l1_rel", 100.0, 3),
    ("F-score@1%", "fscore@1%", 1.0, 3),
    ("F-score@1% (exact)", "exact_fscore@1%", 1.0, 3),
    ("F-score@0.5% (exact)", "exact_fscore@0.5%", 1.0, 4),
    ("normal consistency", "normal_consistency", 1.0, 3),
    ("unsupported area @5% %", "unsupported@5%", 100.0, 2),
    ("time s", "seconds", 1.0, 1),
    ("peak MiB", "peak_rss_mb", 1.0, 0),
)


def markdown_report(records: list[dict]) -> str:
    """results.md: every job (per shape), then mean and median per method over its 'ok' jobs,
    then the failures with their errors."""
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r for r in records if r.get("status") != "ok"]
    lines = [
        "# Benchmark results", "",
        f"{len(records)} jobs: {len(ok)} ok, {len(failed)} failed. Distances are percentages of the "
        "reference's bounding-box diagonal; 'samples' compares area-weighted samples of both meshes, "
        "'exact' measures from the samples to the other mesh's triangles (sdfrecon.evaluation.scoring). "
        "time: wall time of the method in its worker (cloud file to mesh file); peak: the worker "
        "process's maximum resident memory (ru_maxrss) after the method, one fresh process per job.",
        "", "## Per shape", "",
        "| shape | method | " + " | ".join(h for h, *_ in _MD_COLUMNS[:6])
        + " | components / genus (reference's components) | watertight | "
        + " | ".join(h for h, *_ in _MD_COLUMNS[6:]) + " |",
        "|---|---|" + "---:|" * 6 + "---|---|" + "---:|" * (len(_MD_COLUMNS) - 6),
    ]
    for r in ok:
        cells = [_number(r.get(k), s, d) for _, k, s, d in _MD_COLUMNS]
        watertight = {True: "yes", False: "no"}.get(r.get("watertight"), "–")
        lines.append(f"| {r['shape']} | {r['method']} | " + " | ".join(cells[:6])
                     + f" | {_topo(r)} | {watertight} | " + " | ".join(cells[6:]) + " |")
    lines += ["", "## Per method (over its ok jobs)", "",
              "| method | statistic | jobs | " + " | ".join(h for h, *_ in _MD_COLUMNS) + " |",
              "|---|---|---:|" + "---:|" * len(_MD_COLUMNS)]
    methods = list(dict.fromkeys(r["method"] for r in records))
    for method in methods:
        rows = [r for r in ok if r["method"] == method]
        for name, stat in (("mean", statistics.fmean), ("median", statistics.median)):
            cells = []
            for _, key, scale, digits in _MD_COLUMNS:
                values = [r[key] for r in rows if isinstance(r.get(key), (int, float))
                          and not isinstance(r.get(key), bool) and math.isfinite(r[key])]
                cells.append(_number(stat(values), scale, digits) if values else "–")
            lines.append(f"| {method} | {name} | {len(rows)} | " + " | ".join(cells) + " |")
    shape_sets = {m: {r["shape"] for r in ok if r["method"] == m} for m in methods}
    if len({frozenset(s) for s in shape_sets.values()}) > 1:
        lines += ["", "Note: the methods finished different sets of shapes, so their means are "
                      "not over the same shapes."]
    if failed:
        lines += ["", "## Failed", "", "| shape | method | error |", "|---|---|---|"]
        for r in failed:
            error = str(r.get("error") or "").replace("|", "\\|")
            lines.append(f"| {r['shape']} | {r['method']} | {error} |")
    lines += srb_section(records)  # the SRB suite's protocol and the published rows, if any
    return "\n".join(lines) + "\n"
