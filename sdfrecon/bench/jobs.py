"""One benchmark job: what it is in the driver (:class:`_Job`, its settings, a failure
result) and how it runs in a worker (:func:`run_job`, a pool process or a Ray task).

:func:`run_job` is the worker-side entry point: process pools and Ray pickle it by its
qualified name, ``sdfrecon.bench.jobs.run_job``, so it must stay importable from here.
Measurements (see the package docstring): ``seconds`` and ``peak_rss_mb`` around the method
alone, ``job_seconds`` and ``start_rss_mb`` for the whole job in its fresh process.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdfrecon.bench.specs import METHOD_NORMALS, SUITES, BenchOptions, Shape, siren_config
from sdfrecon.errors import InputError

# --- in the driver ------------------------------------------------------------------------------


@dataclass
class _Job:
    """One (shape, method) pair; ``settings`` is what decides its result (:func:`_settings`)."""

    shape: Shape
    method: str
    settings: dict

    @property
    def key(self) -> tuple[str, str]:
        return (self.shape.name, self.method)

    @property
    def stem(self) -> str:
        return f"{self.shape.name}__{self.method}"

    @property
    def mesh(self) -> str:
        """The mesh's path relative to OUT, as the shape's suite lays meshes out."""
        return SUITES[self.shape.suite].mesh_path(self.shape.name, self.method)


def _settings(shape: Shape, method: str, options: BenchOptions) -> dict:
    """What decides a job's result (kept in its record; a re-run warns when it changed)."""
    cloud = ({"cloud": str(shape.cloud)} if shape.cloud is not None else
             {"points": shape.points, "noise": shape.noise, "outliers": shape.outliers, "seed": shape.seed})
    settings: dict[str, Any] = {**cloud, "samples": options.samples, "eval_seed": options.seed,
                                "exact": options.exact}
    if shape.suite != "shapes":
        settings["suite"] = shape.suite
        settings["reference"] = str(shape.reference)
    if SUITES[shape.suite].protocol == "srb":
        settings["srb_samples"] = options.srb_samples
    mode = METHOD_NORMALS[method]
    if method.startswith("siren"):
        settings["siren"] = {**options.siren, **shape.siren, "normals_mode": mode}
    else:
        settings["poisson"] = {"depth": options.poisson_depth, "trim": options.poisson_trim, **shape.poisson}
        settings["poisson"]["normals_mode"] = mode
        if mode == "estimate":
            from sdfrecon.config import NormalsConfig

            normals = NormalsConfig()
            settings["poisson"].update(normal_neighbours=normals.normal_neighbours,
                                       orient_neighbours=normals.orient_neighbours)
    return settings


def _failure(job: _Job, error: str) -> dict:
    """A result, shaped as :func:`run_job`'s, for a job that could not run or whose worker failed."""
    return {"record": {"shape": job.shape.name, "method": job.method, "status": "failed",
                       "error": error}, "mesh": None, "traceback": None}


# --- in the worker ------------------------------------------------------------------------------


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
    from sdfrecon.reconstruction import reconstruct

    torch.set_num_threads(max(1, threads))
    config = siren_config(settings["siren"])
    result = reconstruct(cloud, mesh, config, run_dir=mesh.parent / "run")
    info = result.info
    keep = ("steps", "device", "train_seconds", "extract_seconds", "load_seconds",
            "grid_evaluations", "components_dropped", "outliers_removed", "voxel_merged",
            "noise", "denoised")
    out = {key: info[key] for key in keep if key in info}
    out["cloud_points"] = info.get("points")
    normals = info.get("normals", info.get("normals_estimated"))
    out["normals"] = {True: "estimated", False: "file"}.get(normals, normals)
    out["siren_config"] = to_dict(config)  # the whole resolved config, defaults included
    return out


def _run_poisson(cloud: Path, mesh: Path, settings: dict, threads: int) -> dict:
    from sdfrecon.evaluation.poisson import poisson_file

    options = settings["poisson"]
    info = poisson_file(cloud, mesh, depth=options["depth"], trim=options["trim"],
                        normals_mode=options.get("normals_mode", "auto"))
    return {"cloud_points": info["points"], "normals": info["normals"], "load_seconds": info["load_seconds"],
            "poisson_seconds": info["poisson_seconds"]}


def _import_method(method: str) -> None:
    import importlib

    siren = ("torch", "sdfrecon.reconstruction", "sdfrecon.sdf.fit", "sdfrecon.sdf.extract")
    poisson = ("open3d", "sdfrecon.evaluation.poisson", "sdfrecon.reconstruction")
    for module in siren if method.startswith("siren") else poisson:
        importlib.import_module(module)


_RUNNERS: dict[str, Callable[[Path, Path, dict, int], dict]] = {
    "siren": _run_siren, "siren-estimated": _run_siren, "siren-free": _run_siren,
    "poisson": _run_poisson, "poisson-estimated": _run_poisson}


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
            record.update(_support(mesh_path, cloud, job))
            if job.get("protocol") == "srb":
                from sdfrecon.bench.srb import score_srb

                t1 = time.perf_counter()
                record.update(score_srb(mesh_path, cloud, _written(tmp, job), job))
                record["eval_seconds"] = time.perf_counter() - t1
            elif job.get("reference") is not None:
                t1 = time.perf_counter()
                record.update(_score(mesh_path, _written(tmp, job), job))
                record["eval_seconds"] = time.perf_counter() - t1
            else:
                from sdfrecon.evaluation.metrics import topology
                from sdfrecon.io import load_mesh

                topo = topology(load_mesh(mesh_path))
                record.update({k: topo[k] for k in ("vertices", "faces", "components", "genus", "watertight")})
        record["status"] = "ok"
    except Exception as err:  # recorded, so that one bad job does not stop the others
        record["error"] = _error_text(err)
        trace = traceback.format_exc()
    record["job_seconds"] = time.perf_counter() - t_job
    return {"record": record, "mesh": mesh_bytes, "traceback": trace}


def _support(mesh_path: Path, cloud_path: Path, job: dict) -> dict:
    """The share of the mesh's area that no input point supports (ghost surface), against the
    cloud the method was given."""
    from sdfrecon.evaluation.metrics import unsupported_area
    from sdfrecon.io import load_mesh, load_point_cloud

    return unsupported_area(load_mesh(mesh_path), load_point_cloud(cloud_path).points,
                            samples=job["samples"], seed=job["seed"])


def _written(tmp: Path, job: dict) -> Path:
    """The job's reference bytes written to a file under tmp; its path."""
    path = tmp / "reference" / job["reference_name"]
    path.parent.mkdir()
    path.write_bytes(job["reference"])
    return path


def _score(mesh_path: Path, reference_path: Path, job: dict) -> dict:
    from sdfrecon.evaluation.scoring import evaluate_mesh, load_reference
    from sdfrecon.io import load_mesh

    reference = load_reference(reference_path)
    metrics = evaluate_mesh(load_mesh(mesh_path), reference, samples=job["samples"],
                            seed=job["seed"], exact=job["exact"])
    metrics.pop("seed", None)  # the job's settings hold it
    return metrics
