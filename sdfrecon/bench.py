"""Benchmarks: many shapes, several methods, in parallel locally or on a Ray cluster
(``sdfrecon bench``).

A *job* is one (shape, method) pair. The driver (this process) reads the shape list, makes
each job's input (a cloud sampled from the reference mesh with a fixed seed, or the cloud
file the spec names), and hands the job to a worker as plain bytes: the worker writes them
to a temporary folder, reconstructs, scores the mesh against the reference with
:func:`sdfrecon.evaluate.evaluate_mesh`, and sends back the mesh file's bytes and a flat
record. The driver alone writes under ``--out``, so workers need no shared filesystem:

    OUT/clouds/<shape>.ply            the sampled clouds (folder specs, TOML shapes without cloud)
    OUT/meshes/<shape>__<method>.ply  the reconstructions
    OUT/results.jsonl                 one record per job (the latest attempt), the source of truth
    OUT/results.csv, OUT/results.md   the same records as a table, and per-method mean/median

Every result file is rewritten atomically after each finished job, from all records
(earlier runs' included), so a crash or Ctrl-C loses at most the jobs in flight. A job is
*finished* when results.jsonl holds an 'ok' record for it and its mesh exists; a re-run
skips finished jobs and retries the others (failed, missing, or new).

Measurements, per job, in the worker (see :func:`run_job`):

* ``seconds``: wall time of the method itself, from reading the cloud file to the mesh file
  written (normal estimation included; process start-up, library imports, transfers and
  scoring excluded; ``job_seconds`` is the whole job in the worker, imports and scoring included);
* ``peak_rss_mb``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the worker process right
  after the method returned (before scoring), in MiB. Every job runs in a fresh process (a
  pool with ``max_tasks_per_child=1``; Ray tasks with ``max_calls=1``), so this is the job's
  own peak, including the interpreter and the libraries it imported; ``start_rss_mb`` is the
  same measure when the job started.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import socket
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sdfrecon.errors import InputError

log = logging.getLogger("sdfrecon")

METHODS: tuple[str, ...] = ("siren", "poisson")
RAY_MISSING = "needs Ray, which is not installed: pip install 'sdfrecon[ray]'"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHAPE_KEYS = {"name", "cloud", "reference", "points", "noise", "outliers", "seed", "siren", "poisson"}
_POISSON_KEYS = {"depth", "trim"}

# Leading columns of results.csv, in this order; the other keys follow alphabetically.
_COLUMNS = (
    "shape", "method", "status", "error", "seconds", "peak_rss_mb", "start_rss_mb", "eval_seconds",
    "job_seconds", "chamfer_l1_rel", "exact_chamfer_l1_rel", "fscore@1%", "exact_fscore@1%",
    "normal_consistency", "components", "genus", "watertight", "vertices", "faces",
    "cloud_points", "normals", "threads", "host", "finished", "mesh", "cloud", "reference",
)


# --- options and shapes ------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """Settings shared by every job; a TOML spec may override them per shape."""

    points: int = 30_000
    """Points sampled on each reference mesh (shapes without a cloud file)."""
    noise: float = 0.0
    """Gaussian noise of the sampled clouds, sigma as a fraction of the bbox diagonal."""
    outliers: float = 0.0
    """Fraction of the sampled points replaced by uniform outliers."""
    seed: int = 0
    """Seed of the cloud sampling and of the evaluation's surface samples."""
    samples: int = 100_000
    """Evaluation: area-weighted samples on each mesh."""
    exact: bool = True
    """Evaluation: also the exact point-to-triangle metrics (mesh references)."""
    siren: dict[str, Any] = field(default_factory=dict)
    """Overrides of ReconstructConfig fields by name (e.g. {'steps': 200, 'resolution': 64})."""
    poisson_depth: int = 9
    """Octree depth of screened Poisson."""
    poisson_trim: float | None = None
    """Density quantile below which Poisson vertices are trimmed (None: no trimming)."""


@dataclass(frozen=True)
class Shape:
    """One benchmark shape: where its cloud comes from and what it is scored against."""

    name: str
    reference: Path | None
    """Reference mesh (or cloud) for the metrics; None: no metrics."""
    cloud: Path | None
    """Cloud file to reconstruct; None: sampled from ``reference``."""
    points: int
    noise: float
    outliers: float
    seed: int
    siren: dict[str, Any]
    poisson: dict[str, Any]


@dataclass
class BenchSummary:
    """What :func:`run_bench` did: ``ran`` the records of the jobs run now (failed ones
    included), ``skipped`` the (shape, method) keys already finished, ``records`` every record
    in results.jsonl afterwards."""

    out: Path
    ran: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.ran if r.get("status") != "ok"]


def parse_methods(text: str | Sequence[str]) -> tuple[str, ...]:
    """'siren,poisson' (or a list) -> ('siren', 'poisson'); InputError for unknown names."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names = tuple(dict.fromkeys(m.strip() for m in items if m.strip()))
    unknown = [m for m in names if m not in METHODS]
    if not names or unknown:
        raise InputError("--methods", f"unknown or no methods {unknown or list(items)} "
                                      f"(available: {', '.join(METHODS)})")
    return names


def load_shapes(spec: Path, options: BenchOptions) -> list[Shape]:
    """The shapes of a spec: a folder of meshes (every .obj .ply .stl .glb .off in it, not
    recursive; a cloud is sampled from each) or a TOML file (see :func:`_toml_shapes`)."""
    from sdfrecon.io import MESH_SUFFIXES

    spec = Path(spec)
    if not spec.exists():
        raise InputError(spec, "no such file or folder")
    if spec.is_file():
        return _toml_shapes(spec, options)
    files = sorted(p for p in spec.iterdir()
                   if p.is_file() and p.suffix.lower() in MESH_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InputError(spec, f"holds no mesh files ({', '.join(MESH_SUFFIXES)})")
    stems = [p.stem for p in files]
    shapes = []
    for path in files:
        name = path.stem if stems.count(path.stem) == 1 else path.name.replace(".", "_")
        _check_name(spec, name)
        shapes.append(Shape(name, path, None, options.points, options.noise, options.outliers,
                            options.seed, {}, {}))
    return shapes


def _check_name(spec: Path, name: str) -> None:
    if not _NAME.match(name):
        raise InputError(spec, f"shape name {name!r} must be letters, digits, '.', '_' or '-' "
                               "(it names the output files)")


def _toml_shapes(spec: Path, options: BenchOptions) -> list[Shape]:
    """Shapes from a TOML file; relative paths are relative to the file's folder::

        [defaults]                  # optional: for every shape (same keys as a shape, no paths)
        points = 20000
        siren = { steps = 1000 }

        [[shape]]
        name = "bunny"              # names the outputs: letters, digits, . _ -
        reference = "meshes/bun_zipper.ply"   # mesh (or cloud) to score against
        cloud = "bunny.xyz"         # optional: reconstruct this file instead of sampling
        points = 30000              # sampling: count, noise (x diag), outliers (fraction), seed
        noise = 0.001
        [shape.siren]               # ReconstructConfig fields by name, as on the command line
        steps = 500
        [shape.poisson]             # depth, trim
        depth = 8

    A shape needs a reference or a cloud (no reference: no metrics). Per-shape values beat
    [defaults], which beat the command-line options.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise InputError(spec, "TOML specs need Python >= 3.11 (or the tomli package)") from None
    try:
        data = tomllib.loads(spec.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(spec, f"is not valid TOML ({err})") from None
    unknown = set(data) - {"shape", "defaults"}
    if unknown:
        raise InputError(spec, f"unknown top-level keys {sorted(unknown)} (expected [[shape]] and [defaults])")
    defaults = data.get("defaults", {})
    rows = data.get("shape", [])
    if not isinstance(defaults, dict) or not isinstance(rows, list) or not rows:
        raise InputError(spec, "needs at least one [[shape]] table (and [defaults] must be a table)")
    bad = set(defaults) - (_SHAPE_KEYS - {"name", "cloud", "reference"})
    if bad:
        raise InputError(spec, f"[defaults]: unknown keys {sorted(bad)}")
    shapes: list[Shape] = []
    for index, row in enumerate(rows):
        where = f"shape {index + 1}" + (f" ({row.get('name')})" if isinstance(row, dict) and "name" in row else "")
        if not isinstance(row, dict):
            raise InputError(spec, f"{where}: must be a table")
        bad = set(row) - _SHAPE_KEYS
        if bad:
            raise InputError(spec, f"{where}: unknown keys {sorted(bad)} (known: {', '.join(sorted(_SHAPE_KEYS))})")
        merged = {**defaults, **row}
        name = merged.get("name")
        if not isinstance(name, str):
            raise InputError(spec, f"{where}: needs a name")
        _check_name(spec, name)
        if name in {s.name for s in shapes}:
            raise InputError(spec, f"{where}: the name {name!r} is used twice")
        paths = {}
        for key in ("reference", "cloud"):
            value = merged.get(key)
            if value is not None and not isinstance(value, str):
                raise InputError(spec, f"{where}: {key} must be a path string")
            paths[key] = None if value is None else (spec.parent / value)
        if paths["reference"] is None and paths["cloud"] is None:
            raise InputError(spec, f"{where}: needs a reference mesh or a cloud (or both)")
        try:
            points = _typed(merged.get("points", options.points), int, "points", minimum=1)
            noise = _typed(merged.get("noise", options.noise), float, "noise", minimum=0.0)
            outliers = _typed(merged.get("outliers", options.outliers), float, "outliers", minimum=0.0)
            seed = _typed(merged.get("seed", options.seed), int, "seed", minimum=0)
            siren = {**_table(defaults.get("siren", {}), "siren"), **_table(row.get("siren", {}), "siren")}
            siren_config(siren)  # unknown or mistyped options fail now, not in a worker
            poisson = {**_table(defaults.get("poisson", {}), "poisson"), **_table(row.get("poisson", {}), "poisson")}
            bad = set(poisson) - _POISSON_KEYS
            if bad:
                raise ValueError(f"poisson: unknown keys {sorted(bad)} (known: depth, trim)")
        except (TypeError, ValueError) as err:
            raise InputError(spec, f"{where}: {err}") from None
        shapes.append(Shape(name, paths["reference"], paths["cloud"], points, noise, outliers,
                            seed, siren, poisson))
    return shapes


def _typed(value: Any, kind: type, name: str, minimum: float | None = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise TypeError(f"{name} must be {'a number' if kind is float else 'an integer'}, got {value!r}")
    value = kind(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _table(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a table of options")
    return dict(value)


def siren_config(overrides: dict[str, Any]):
    """``ReconstructConfig()`` with fields replaced by name (``steps``, ``resolution``,
    ``hidden_features``, ...; dashes or underscores), and ``progress=False``.

    The names are those of the command line (field names are unique across the sub-configs).
    Values are type-checked against the annotations; ValueError/TypeError otherwise.
    """
    import typing

    from sdfrecon.config import ReconstructConfig

    config = ReconstructConfig()
    sections = {f.name: getattr(config, f.name) for f in fields(config) if is_dataclass(getattr(config, f.name))}
    where = {}
    for section, sub in sections.items():
        hints = typing.get_type_hints(type(sub))
        for f in fields(sub):
            where[f.name] = (section, hints[f.name])
    changes: dict[str, dict[str, Any]] = {}
    for raw_key, value in {**overrides, "progress": False}.items():
        key = raw_key.replace("-", "_")
        if key not in where:
            raise ValueError(f"siren: unknown option {raw_key!r}")
        section, hint = where[key]
        changes.setdefault(section, {})[key] = _coerce(value, hint, raw_key)
    for section, values in changes.items():
        config = replace(config, **{section: replace(getattr(config, section), **values)})
    return config


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """value checked against a simple annotation (bool, int, float, str, Literal, X | None)."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
    elif origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(value, option, name)
            except (TypeError, ValueError):
                continue
    elif hint is type(None):
        if value is None:
            return None
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise TypeError(f"siren: option {name!r} must be {hint}, got {value!r}")


# --- the job, in the worker ---------------------------------------------------------------------


def _maxrss_mb() -> float | None:
    """Peak resident memory of this process so far, MiB (None where resource is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def _run_siren(cloud: Path, mesh: Path, settings: dict, threads: int) -> dict:
    import torch

    from sdfrecon.config import to_dict
    from sdfrecon.pipeline import reconstruct

    torch.set_num_threads(max(1, threads))
    config = siren_config(settings["siren"])
    result = reconstruct(cloud, mesh, config, run_dir=mesh.parent / "run")
    info = result.info
    keep = ("steps", "device", "train_seconds", "extract_seconds", "load_seconds",
            "grid_evaluations", "components_dropped", "outliers_removed", "voxel_merged")
    out = {key: info[key] for key in keep if key in info}
    out["cloud_points"] = info.get("points")
    normals = info.get("normals", info.get("normals_estimated"))
    out["normals"] = {True: "estimated", False: "file"}.get(normals, normals)
    out["siren_config"] = to_dict(config)  # the whole resolved config, defaults included
    return out


def _run_poisson(cloud: Path, mesh: Path, settings: dict, threads: int) -> dict:
    from sdfrecon.baselines import poisson_file

    options = settings["poisson"]
    info = poisson_file(cloud, mesh, depth=options["depth"], trim=options["trim"])
    return {"cloud_points": info["points"], "normals": info["normals"], "load_seconds": info["load_seconds"],
            "poisson_seconds": info["poisson_seconds"]}


def _import_method(method: str) -> None:
    import importlib

    for module in {"siren": ("torch", "sdfrecon.pipeline", "sdfrecon.fit", "sdfrecon.extract"),
                   "poisson": ("open3d", "sdfrecon.baselines", "sdfrecon.pipeline")}[method]:
        importlib.import_module(module)


_RUNNERS: dict[str, Callable[[Path, Path, dict, int], dict]] = {"siren": _run_siren, "poisson": _run_poisson}


def _error_text(err: BaseException) -> str:
    """One line naming the exception (InputError: its own message)."""
    text = str(err) if isinstance(err, InputError) else f"{type(err).__name__}: {err}"
    text = " ".join(text.split())
    return text[:500] + (" ..." if len(text) > 500 else "")


def run_job(job: dict) -> dict:
    """Run one job where it lands (a pool process or a Ray worker); never raises.

    job: shape, method, settings, threads, cloud_name + cloud (bytes), reference_name +
    reference (bytes or None). Returns {'record': flat JSON-ready dict, 'mesh': PLY bytes or
    None, 'traceback': str or None}.
    """
    t_job = time.perf_counter()
    record: dict[str, Any] = {"shape": job["shape"], "method": job["method"], "status": "failed",
                              "error": None, "start_rss_mb": _maxrss_mb(), "threads": job["threads"],
                              "host": socket.gethostname(), "pid": os.getpid()}
    if "ray" in sys.modules:  # a Ray task: which node ran it
        try:
            record["ray_node"] = sys.modules["ray"].get_runtime_context().get_node_id()
        except Exception:  # not inside a Ray worker after all
            pass
    mesh_bytes, trace = None, None
    try:
        with tempfile.TemporaryDirectory(prefix="sdfrecon-bench-") as folder:
            tmp = Path(folder)
            cloud = tmp / "input" / job["cloud_name"]
            cloud.parent.mkdir()
            cloud.write_bytes(job["cloud"])
            mesh_path = tmp / f"{job['shape']}__{job['method']}.ply"
            _import_method(job["method"])  # library imports are not part of the method's time
            t0 = time.perf_counter()
            record.update(_RUNNERS[job["method"]](cloud, mesh_path, job["settings"], job["threads"]))
            record["seconds"] = time.perf_counter() - t0
            record["peak_rss_mb"] = _maxrss_mb()
            mesh_bytes = mesh_path.read_bytes()
            if job.get("reference") is not None:
                t1 = time.perf_counter()
                record.update(_score(mesh_path, tmp / "reference" / job["reference_name"], job))
                record["eval_seconds"] = time.perf_counter() - t1
            else:
                from sdfrecon.io import load_mesh
                from sdfrecon.metrics import topology

                topo = topology(load_mesh(mesh_path))
                record.update({k: topo[k] for k in ("vertices", "faces", "components", "genus", "watertight")})
        record["status"] = "ok"
    except Exception as err:  # recorded, so that one bad job does not stop the others
        record["error"] = _error_text(err)
        trace = traceback.format_exc()
    record["job_seconds"] = time.perf_counter() - t_job
    return {"record": record, "mesh": mesh_bytes, "traceback": trace}


def _score(mesh_path: Path, reference_path: Path, job: dict) -> dict:
    from sdfrecon.evaluate import evaluate_mesh, load_reference
    from sdfrecon.io import load_mesh

    reference_path.parent.mkdir()
    reference_path.write_bytes(job["reference"])
    reference = load_reference(reference_path)
    metrics = evaluate_mesh(load_mesh(mesh_path), reference, samples=job["samples"],
                            seed=job["seed"], exact=job["exact"])
    metrics.pop("seed", None)  # the job's settings hold it
    return metrics


# --- the driver ---------------------------------------------------------------------------------


@dataclass
class _Job:
    shape: Shape
    method: str
    settings: dict

    @property
    def key(self) -> tuple[str, str]:
        return (self.shape.name, self.method)

    @property
    def stem(self) -> str:
        return f"{self.shape.name}__{self.method}"


def _settings(shape: Shape, method: str, options: BenchOptions) -> dict:
    """What decides a job's result (kept in its record; a re-run warns when it changed)."""
    cloud = ({"cloud": str(shape.cloud)} if shape.cloud is not None else
             {"points": shape.points, "noise": shape.noise, "outliers": shape.outliers, "seed": shape.seed})
    settings: dict[str, Any] = {**cloud, "samples": options.samples, "eval_seed": options.seed,
                                "exact": options.exact}
    if method == "siren":
        settings["siren"] = {**options.siren, **shape.siren}
    else:
        settings["poisson"] = {"depth": options.poisson_depth, "trim": options.poisson_trim, **shape.poisson}
    return settings


class _Results:
    """results.jsonl/.csv/.md under out, rewritten atomically from all records."""

    def __init__(self, out: Path):
        self.out = out
        self.path = out / "results.jsonl"
        self.records: dict[tuple[str, str], dict] = {}
        if self.path.exists():
            for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    self.records[(record["shape"], record["method"])] = record
                except (ValueError, KeyError, TypeError):
                    raise InputError(self.path, f"line {number} is not a benchmark record; "
                                                "fix or move the file (it is never overwritten blindly)") from None

    def finished(self, job: _Job) -> bool:
        record = self.records.get(job.key)
        return (record is not None and record.get("status") == "ok"
                and (self.out / "meshes" / f"{job.stem}.ply").is_file())

    def add(self, record: dict) -> None:
        self.records[(record["shape"], record["method"])] = record
        self.write()

    def sorted(self) -> list[dict]:
        return [self.records[k] for k in sorted(self.records)]

    def write(self) -> None:
        from sdfrecon.io import atomic_write

        records = self.sorted()
        text = {
            "results.jsonl": "".join(json.dumps(r, sort_keys=False) + "\n" for r in records),
            "results.csv": _csv(records),
            "results.md": markdown_report(records),
        }
        for name, content in text.items():
            with atomic_write(self.out / name, overwrite=True) as tmp:
                tmp.write_text(content, encoding="utf-8")


def _csv(records: list[dict]) -> str:
    keys = {k for r in records for k in r}
    columns = [c for c in _COLUMNS if c in keys] + sorted(keys - set(_COLUMNS))
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
    return f"{record['components']} / {record.get('genus', '?')}"


# (header, key, scale, digits) of the numeric columns of results.md.
_MD_COLUMNS = (
    ("Chamfer-L1 % diag (samples)", "chamfer_l1_rel", 100.0, 3),
    ("Chamfer-L1 % diag (exact)", "exact_chamfer_l1_rel", 100.0, 3),
    ("F-score@1%", "fscore@1%", 1.0, 3),
    ("F-score@1% (exact)", "exact_fscore@1%", 1.0, 3),
    ("normal consistency", "normal_consistency", 1.0, 3),
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
        "'exact' measures from the samples to the other mesh's triangles (sdfrecon.evaluate). "
        "time: wall time of the method in its worker (cloud file to mesh file); peak: the worker "
        "process's maximum resident memory (ru_maxrss) after the method, one fresh process per job.",
        "", "## Per shape", "",
        "| shape | method | " + " | ".join(h for h, *_ in _MD_COLUMNS[:5]) + " | components / genus | watertight | "
        + " | ".join(h for h, *_ in _MD_COLUMNS[5:]) + " |",
        "|---|---|" + "---:|" * 5 + "---|---|" + "---:|" * 2,
    ]
    for r in ok:
        cells = [_number(r.get(k), s, d) for _, k, s, d in _MD_COLUMNS]
        watertight = {True: "yes", False: "no"}.get(r.get("watertight"), "–")
        lines.append(f"| {r['shape']} | {r['method']} | " + " | ".join(cells[:5])
                     + f" | {_topo(r)} | {watertight} | " + " | ".join(cells[5:]) + " |")
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
    return "\n".join(lines) + "\n"


class _Preparer:
    """Makes a job's payload in the driver: the cloud (sampled once per shape and run, and
    written to OUT/clouds/) and the reference, as bytes."""

    def __init__(self, out: Path, threads: int, options: BenchOptions):
        self.out, self.threads, self.options = out, threads, options
        self.sampled: set[str] = set()

    def __call__(self, job: _Job) -> dict:
        shape = job.shape
        if shape.cloud is not None:
            from sdfrecon.io.pointcloud import POINT_CLOUD_SUFFIXES, check_input_file

            check_input_file(shape.cloud, POINT_CLOUD_SUFFIXES, "point cloud")
            cloud = shape.cloud
        else:
            cloud = self._sampled_cloud(shape)
        reference = None
        if shape.reference is not None:
            if not shape.reference.is_file():
                raise InputError(shape.reference, "no such file")
            reference = shape.reference.read_bytes()
        return {"shape": shape.name, "method": job.method, "settings": job.settings,
                "threads": self.threads, "cloud_name": cloud.name, "cloud": cloud.read_bytes(),
                "reference_name": None if shape.reference is None else shape.reference.name,
                "reference": reference, "samples": self.options.samples, "seed": self.options.seed,
                "exact": self.options.exact}

    def _sampled_cloud(self, shape: Shape) -> Path:
        path = self.out / "clouds" / f"{shape.name}.ply"
        if shape.name not in self.sampled:
            from sdfrecon.evaluate import require_surface
            from sdfrecon.io import load_mesh, save_point_cloud
            from sdfrecon.sample import sample_cloud

            mesh = load_mesh(shape.reference)
            require_surface(mesh, shape.reference, "the mesh")
            try:
                cloud = sample_cloud(mesh, shape.points, shape.seed, shape.noise, shape.outliers)
            except ValueError as err:
                raise InputError(shape.reference, f"cannot be sampled: {err}") from None
            save_point_cloud(path, cloud, overwrite=True)
            self.sampled.add(shape.name)
        return path


def _failure(job: _Job, error: str) -> dict:
    return {"record": {"shape": job.shape.name, "method": job.method, "status": "failed",
                       "error": error}, "mesh": None, "traceback": None}


def _prepared(jobs: list[_Job], prepare: Callable[[_Job], dict]) -> Iterator[tuple[_Job, dict | None, dict | None]]:
    """(job, payload, None), or (job, None, failure result) when the input cannot be made."""
    for job in jobs:
        try:
            yield job, prepare(job), None
        except Exception as err:  # a broken mesh file, say: recorded, the others go on
            yield job, None, _failure(job, _error_text(err))


def _run_local(items: Iterator, jobs: int, finish: Callable[[_Job, dict], None],
               fn: Callable[[dict], dict] = run_job) -> None:
    """A process pool ('spawn', one fresh process per job). If a worker dies (killed, out of
    memory) the pool breaks; the jobs then in flight are re-run one by one, each alone in a
    new pool, so that only the one that kills its worker is recorded as failed."""
    from concurrent.futures.process import BrokenProcessPool

    suspects: list[tuple[_Job, dict]] = []
    while True:
        broken = _pool_round(items, jobs, finish, fn)
        suspects.extend(broken)
        if not broken:
            break
    for job, payload in suspects:
        if _pool_round(iter([(job, payload, None)]), 1, finish, fn):
            finish(job, _failure(job, f"{BrokenProcessPool.__name__}: the worker process died "
                                      "(killed, or out of memory?)"))


def _pool_round(items: Iterator, jobs: int, finish: Callable[[_Job, dict], None],
                fn: Callable[[dict], dict]) -> list[tuple[_Job, dict]]:
    """Run items in one pool until they run out ([]) or the pool breaks (the jobs in flight)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    extra = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), **extra)
    in_flight: dict = {}
    broken: list[tuple[_Job, dict]] = []
    try:
        exhausted = False
        while True:
            while not exhausted and not broken and len(in_flight) < jobs:
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                job, payload, failure = item
                if failure is not None:
                    finish(job, failure)
                    continue
                in_flight[pool.submit(fn, payload)] = (job, payload)
            if not in_flight:
                return broken
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                job, payload = in_flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken.append((job, payload))
                    continue
                except Exception as err:  # e.g. a payload that cannot be pickled
                    result = _failure(job, _error_text(err))
                finish(job, result)
    except BaseException:  # Ctrl-C, or the driver failed: do not wait minutes for the workers
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()  # our own worker processes
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=not broken, cancel_futures=True)


def _run_ray(items: Iterator, address: str | None, in_flight_max: int | None, cpus: int,
             finish: Callable[[_Job, dict], None]) -> None:
    """The same job function as Ray tasks (num_cpus=cpus, a fresh worker process per task).
    Payloads and results travel through Ray's object store; the driver writes the files."""
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray", RAY_MISSING) from None
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InputError(f"--address {address}", f"could not connect to the Ray cluster ({_error_text(err)})") from None
    try:
        if in_flight_max is None:
            in_flight_max = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        task = ray.remote(num_cpus=cpus, max_calls=1, max_retries=1)(run_job)
        in_flight: dict = {}
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < in_flight_max:
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                job, payload, failure = item
                if failure is not None:
                    finish(job, failure)
                    continue
                in_flight[task.remote(payload)] = job
            if not in_flight:
                return
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                job = in_flight.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:  # the worker died, or the task could not run there
                    result = _failure(job, _error_text(err))
                finish(job, result)
    finally:
        ray.shutdown()


def _lock(out: Path):
    """An exclusive lock on OUT/.bench.lock for this run (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:
        return None
    handle = open(out / ".bench.lock", "w")  # noqa: SIM115 - held until run_bench returns
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise InputError(out, "is in use by another 'sdfrecon bench' run") from None
    return handle


def run_bench(
    shapes: Path,
    methods: str | Sequence[str] = METHODS,
    out: Path = Path("out/bench"),
    jobs: int | None = None,
    executor: str = "local",
    address: str | None = None,
    options: BenchOptions | None = None,
    ray_cpus: int = 1,
    progress: bool = False,
) -> BenchSummary:
    """Run every (shape, method) job of ``shapes`` (a folder of meshes or a TOML file, see
    :func:`load_shapes`) that is not finished under ``out``; see the module docstring.

    jobs: local: worker processes (default 1), each with ``torch.set_num_threads(max(1,
    os.cpu_count() // jobs))``; ray: tasks in flight (default: the cluster's CPUs / ray_cpus),
    each with ray_cpus CPUs and as many torch threads. executor: 'local' or 'ray'; address:
    the Ray cluster (host:port, or 'auto'; None starts a local Ray instance). Raises
    InputError for an unusable spec or option; failing jobs are recorded, not raised.
    """
    options = options or BenchOptions()
    methods = parse_methods(methods)
    if executor not in ("local", "ray"):
        raise InputError("--executor", f"must be local or ray, got {executor!r}")
    if address is not None and executor != "ray":
        raise InputError("--address", "is for --executor ray")
    if jobs is not None and jobs < 1:
        raise InputError("--jobs", f"must be >= 1, got {jobs}")
    if ray_cpus < 1:
        raise InputError("--ray-cpus", f"must be >= 1, got {ray_cpus}")
    for name, value in (("points", options.points), ("samples", options.samples)):
        if value < 1:
            raise InputError(f"--{name}", f"must be >= 1, got {value}")
    if options.seed < 0:
        raise InputError("--seed", f"must be >= 0, got {options.seed}")
    if options.poisson_trim is not None and not 0.0 <= options.poisson_trim < 1.0:
        raise InputError("--trim", f"must be a quantile in [0, 1), got {options.poisson_trim}")
    try:
        siren_config(options.siren)
    except (TypeError, ValueError) as err:
        raise InputError("--siren", str(err)) from None
    if executor == "ray":
        try:
            import ray  # noqa: F401 - fail before any work when Ray is missing
        except ImportError:
            raise InputError("--executor ray", RAY_MISSING) from None
    shape_list = load_shapes(shapes, options)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    lock = _lock(out)
    try:
        return _run(shape_list, methods, out, jobs, executor, address, options, ray_cpus, progress)
    finally:
        if lock is not None:
            lock.close()


def _run(shape_list: list[Shape], methods: tuple[str, ...], out: Path, jobs: int | None,
         executor: str, address: str | None, options: BenchOptions, ray_cpus: int,
         progress: bool) -> BenchSummary:
    results = _Results(out)
    summary = BenchSummary(out)
    # Method-major: the slow method's jobs start first, so the fast ones fill in at the end.
    all_jobs = [_Job(shape, method, _settings(shape, method, options))
                for method in methods for shape in shape_list]
    pending, changed = [], []
    for job in all_jobs:
        if results.finished(job):
            summary.skipped.append(job.key)
            if results.records[job.key].get("settings") != job.settings:
                changed.append(job.stem)
        else:
            pending.append(job)
    if changed:
        log.warning("kept %d finished job(s) made with other settings (%s); use another --out "
                    "to run them again", len(changed), ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else ""))
    log.info("%d job(s): %d finished before, %d to run (%s executor)", len(all_jobs),
             len(summary.skipped), len(pending), executor)
    if not pending:
        results.write()
        summary.records = results.sorted()
        return summary

    from tqdm.auto import tqdm

    local_jobs = jobs or 1
    threads = max(1, (os.cpu_count() or 1) // local_jobs) if executor == "local" else ray_cpus
    # disable=None: drawn only on a terminal
    bar = tqdm(total=len(pending), desc="bench", unit="job", disable=None if progress else True)

    def finish(job: _Job, result: dict) -> None:
        record = dict(result["record"])
        record["settings"] = job.settings
        record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        cloud = job.shape.cloud or out / "clouds" / f"{job.shape.name}.ply"
        record["cloud"] = str(cloud) if cloud.is_file() else None
        record["reference"] = None if job.shape.reference is None else str(job.shape.reference)
        mesh_path = out / "meshes" / f"{job.stem}.ply"
        if result.get("mesh") is not None:
            from sdfrecon.io import atomic_write

            with atomic_write(mesh_path, overwrite=True) as tmp:
                tmp.write_bytes(result["mesh"])
            record["mesh"] = str(mesh_path.relative_to(out))
        if record.get("status") != "ok":
            log.warning("%s failed: %s", job.stem, record.get("error"))
            if result.get("traceback"):
                log.debug("%s", result["traceback"])
        results.add(record)
        summary.ran.append(record)
        bar.update(1)
        bar.set_postfix_str(f"{job.stem} {record.get('status')}")

    items = _prepared(pending, _Preparer(out, threads, options))
    try:
        if executor == "local":
            _run_local(items, local_jobs, finish)
        else:
            _run_ray(items, address, jobs, ray_cpus, finish)
    finally:
        bar.close()
    summary.records = results.sorted()
    return summary
