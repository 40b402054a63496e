"""Benchmark orchestration, in the driver: which jobs are finished under OUT, the input of
each job (:class:`_Preparer`), the executor that runs them, and the result files rewritten
after every finished job (:class:`_Results`); :func:`run_bench` is the entry point.

Stages: :mod:`~sdfrecon.bench.specs` (shapes, options) -> :mod:`~sdfrecon.bench.jobs` (one
job) -> :mod:`~sdfrecon.bench.executors` (where jobs run) -> here, which writes the records
through :mod:`~sdfrecon.bench.report`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sdfrecon.bench.executors import RAY_MISSING, Prepared, _run_local, _run_ray
from sdfrecon.bench.jobs import _error_text, _failure, _Job, _settings
from sdfrecon.bench.report import _csv, markdown_report
from sdfrecon.bench.specs import SUITES, BenchOptions, Shape, get_suite, load_suite, parse_methods
from sdfrecon.errors import InputError

log = logging.getLogger("sdfrecon")


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
                and (self.out / job.mesh).is_file())

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


class _Preparer:
    """Makes a job's payload in the driver: the cloud (sampled once per shape and run, and
    written to OUT/clouds/) and the reference, as bytes."""

    def __init__(self, out: Path, threads: int, options: BenchOptions):
        self.out, self.threads, self.options = out, threads, options
        self.sampled: set[str] = set()

    def __call__(self, job: _Job) -> dict:
        shape = job.shape
        if shape.cloud is not None:
            from sdfrecon.io.formats import POINT_CLOUD_SUFFIXES, check_input_file

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
                "exact": self.options.exact, "protocol": SUITES[shape.suite].protocol,
                "srb_samples": self.options.srb_samples}

    def _sampled_cloud(self, shape: Shape) -> Path:
        path = self.out / "clouds" / f"{shape.name}.ply"
        if shape.name not in self.sampled:
            from sdfrecon.evaluation.clouds import sample_cloud
            from sdfrecon.evaluation.scoring import require_surface
            from sdfrecon.io import load_mesh, save_point_cloud

            mesh = load_mesh(shape.reference)
            require_surface(mesh, shape.reference, "the mesh")
            try:
                cloud = sample_cloud(mesh, shape.points, shape.seed, shape.noise, shape.outliers)
            except ValueError as err:
                raise InputError(shape.reference, f"cannot be sampled: {err}") from None
            save_point_cloud(path, cloud, overwrite=True)
            self.sampled.add(shape.name)
        return path


def _prepared(jobs: list[_Job], prepare: Callable[[_Job], dict]) -> Iterator[Prepared]:
    """(job, payload, None), or (job, None, failure result) when the input cannot be made."""
    for job in jobs:
        try:
            yield job, prepare(job), None
        except Exception as err:  # a broken mesh file, say: recorded, the others go on
            yield job, None, _failure(job, _error_text(err))


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
    methods: str | Sequence[str] | None = None,
    out: Path = Path("out/bench"),
    jobs: int | None = None,
    executor: str = "local",
    address: str | None = None,
    options: BenchOptions | None = None,
    ray_cpus: int = 1,
    progress: bool = False,
    suite: str = "shapes",
) -> BenchSummary:
    """Run every (shape, method) job of ``shapes`` that is not finished under ``out``; see
    :mod:`sdfrecon.bench`. ``suite`` says what ``shapes`` is: 'shapes', a folder of meshes or
    a TOML file (:func:`load_shapes`); 'srb', a folder in the SRB release layout, scored in the
    published protocol (:mod:`sdfrecon.bench.srb`). methods: None -> the suite's default.

    jobs: local: worker processes (default 1), each with ``torch.set_num_threads(max(1,
    os.cpu_count() // jobs))``; ray: tasks in flight (default: the cluster's CPUs / ray_cpus),
    each with ray_cpus CPUs and as many torch threads. executor: 'local' or 'ray'; address:
    the Ray cluster (host:port, or 'auto'; None starts a local Ray instance). Raises
    InputError for an unusable spec or option; failing jobs are recorded, not raised.
    """
    options = options or BenchOptions()
    methods = parse_methods(get_suite(suite).default_methods if methods is None else methods)
    if executor not in ("local", "ray"):
        raise InputError("--executor", f"must be local or ray, got {executor!r}")
    if address is not None and executor != "ray":
        raise InputError("--address", "is for --executor ray")
    if jobs is not None and jobs < 1:
        raise InputError("--jobs", f"must be >= 1, got {jobs}")
    if ray_cpus < 1:
        raise InputError("--ray-cpus", f"must be >= 1, got {ray_cpus}")
    options.check()
    if executor == "ray":
        try:
            import ray  # noqa: F401 - fail before any work when Ray is missing
        except ImportError:
            raise InputError("--executor ray", RAY_MISSING) from None
    shape_list = load_suite(suite, shapes, options)
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
        _html(out, summary.records, progress)
        return summary

    from tqdm.auto import tqdm

    local_jobs = jobs or 1
    threads = max(1, (os.cpu_count() or 1) // local_jobs) if executor == "local" else ray_cpus
    # disable=None: drawn only on a terminal
    bar = tqdm(total=len(pending), desc="bench", unit="job", disable=None if progress else True)

    def finish(job: _Job, result: dict) -> None:
        record = dict(result["record"])
        record["settings"] = job.settings
        record["suite"] = job.shape.suite
        record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        cloud = job.shape.cloud or out / "clouds" / f"{job.shape.name}.ply"
        record["cloud"] = str(cloud) if cloud.is_file() else None
        record["reference"] = None if job.shape.reference is None else str(job.shape.reference)
        mesh_path = out / job.mesh
        if result.get("mesh") is not None:
            from sdfrecon.io import atomic_write

            with atomic_write(mesh_path, overwrite=True) as tmp:
                tmp.write_bytes(result["mesh"])
            record["mesh"] = job.mesh
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
    _html(out, summary.records, progress)
    return summary


def _html(out: Path, records: list[dict], progress: bool) -> None:
    """report.html with thumbnails (:mod:`sdfrecon.bench.html`), after the tables."""
    from sdfrecon.bench.html import write_html_report

    path = write_html_report(out, records, progress)
    log.info("wrote %s", path)
