"""Benchmarks: many shapes, several methods, in parallel locally or on a Ray cluster
(``sdfrecon bench``).

A *job* is one (shape, method) pair. The driver (this process) reads the shape list, makes
each job's input (a cloud sampled from the reference mesh with a fixed seed, or the cloud
file the spec names), and hands the job to a worker as plain bytes: the worker writes them
to a temporary folder, reconstructs, scores the mesh against the reference with
:func:`sdfrecon.evaluation.scoring.evaluate_mesh`, and sends back the mesh file's bytes and a flat
record. The driver alone writes under ``--out``, so workers need no shared filesystem:

    OUT/clouds/<shape>.ply            the sampled clouds (folder specs, TOML shapes without cloud)
    OUT/meshes/<shape>__<method>.ply  the reconstructions (suite 'shapes')
    OUT/meshes/<method>/<shape>.ply   the reconstructions (suite 'srb'), in the scan's coordinates
    OUT/results.jsonl                 one record per job (the latest attempt), the source of truth
    OUT/results.csv, OUT/results.md   the same records as a table, and per-method mean/median

A *suite* says what the input is (:data:`~sdfrecon.bench.specs.SUITES`): 'shapes', a folder
of meshes or a TOML spec, scored against each shape's reference; 'srb', a folder in the
Surface Reconstruction Benchmark's release layout (scans/NAME.ply, ground_truth/NAME.xyz),
scored in the published protocol (:mod:`sdfrecon.evaluation.srb`) plus the tool's own metrics
(:mod:`sdfrecon.bench.srb`).

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

The stages, one module each, importing only from the ones before them:
:mod:`~sdfrecon.bench.specs` (options, shapes, methods) -> :mod:`~sdfrecon.bench.jobs` (one
job: its settings, and :func:`run_job` in the worker) -> :mod:`~sdfrecon.bench.executors`
(a process pool or Ray behind one refill loop) -> :mod:`~sdfrecon.bench.driver` (the driver:
:func:`run_bench`), which writes the tables of :mod:`~sdfrecon.bench.report`.
"""

from __future__ import annotations

from sdfrecon.bench.driver import BenchSummary, run_bench
from sdfrecon.bench.executors import RAY_MISSING, Executor
from sdfrecon.bench.jobs import run_job
from sdfrecon.bench.report import markdown_report
from sdfrecon.bench.specs import (
    METHODS,
    SUITES,
    BenchOptions,
    Shape,
    Suite,
    get_suite,
    load_shapes,
    load_suite,
    parse_methods,
    siren_config,
)

__all__ = [
    "METHODS",
    "RAY_MISSING",
    "SUITES",
    "BenchOptions",
    "BenchSummary",
    "Executor",
    "Shape",
    "Suite",
    "_Job",
    "_lock",
    "_run_local",
    "_run_ray",
    "get_suite",
    "load_shapes",
    "load_suite",
    "markdown_report",
    "parse_methods",
    "run_bench",
    "run_job",
    "siren_config",
]
