"""The ``poisson`` and ``bench`` subcommands (registered in :func:`sdfrecon.cli.commands`).

Same shape as :class:`sdfrecon.cli.Reconstruct`: a dataclass whose fields are the options
(their docstrings are the --help text) and a ``run`` method; heavy imports (torch, open3d,
ray) happen in ``run`` or deeper. Unusable input raises :class:`sdfrecon.errors.InputError`,
which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from sdfrecon.cli.common import Common, Output
from sdfrecon.errors import InputError, TrainingError


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict:
    """['steps=100', 'sphere_prior=None', 'device=cpu'] -> {'steps': 100, 'sphere_prior': None,
    'device': 'cpu'}: values are JSON (numbers, true/false, null; None too), else strings."""
    import json

    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise InputError("--siren", f"expected NAME=VALUE, got {item!r}")
        text = text.strip()
        if text in ("None", "none"):
            value = None
        elif text in ("True", "False"):
            value = text == "True"
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        out[name.strip().replace("-", "_")] = value
    return out


@dataclass
class Poisson(Common):
    """Screened Poisson reconstruction (Open3D, one thread, deterministic): the baseline.

    Reads the cloud and estimates missing normals exactly as `sdfrecon reconstruct` does;
    writes the mesh in the input's coordinates, atomically.
    """

    input: tyro.conf.Positional[Path]
    """Point cloud: .xyz .txt .pts .ply .pcd .obj .off .npy .npz, with or without normals."""
    output: Output
    """Mesh to write: .obj .ply .stl .glb .off (by suffix)."""
    depth: int = 9
    """Octree depth: the finest grid has at most 2^depth cells per side."""
    trim: float | None = None
    """Remove the vertices whose Poisson density is below this quantile (e.g. 0.05): cuts the
    surfaces Poisson invents where there is no data, and opens the mesh there."""
    overwrite: bool = False
    """Replace an existing output mesh."""

    def run(self) -> None:
        from sdfrecon.evaluation.poisson import poisson_file

        info = poisson_file(self.input, self.output, self.depth, self.trim, self.overwrite)
        print(f"wrote {self.output} ({info['vertices']} vertices, {info['faces']} faces) in "
              f"{info['total_seconds']:.1f} s (Poisson {info['poisson_seconds']:.1f} s, depth {self.depth}"
              f"{'' if self.trim is None else f', trimmed below the {self.trim:g} density quantile'})")


@dataclass
class Bench(Common):
    """Benchmark methods on many shapes, in parallel, locally or on a Ray cluster.

    For each shape and method: the mesh (OUT/meshes/<shape>__<method>.ply), the metrics
    against the shape's reference (as `sdfrecon evaluate`), the wall time and peak memory
    of the worker; collected in OUT/results.jsonl, results.csv and results.md (per shape,
    and mean/median per method). A re-run skips the finished jobs and retries failed ones.
    Exit code 1 when a job failed (its error is in the results; the other jobs still ran).
    """

    shapes: Path
    """A folder of meshes (a cloud is sampled from each: --points, --noise, --seed; written to
    OUT/clouds/) or a TOML file of [[shape]] tables (name, reference, cloud, points, noise,
    outliers, seed, [shape.siren] and [shape.poisson] options; see sdfrecon/bench/specs.py)."""
    methods: str = "siren,poisson"
    """Comma-separated methods: siren, poisson."""
    out: Annotated[Path, tyro.conf.arg(aliases=("-o",))] = Path("out/bench")
    """Output folder (created; results accumulate there across runs)."""
    jobs: int | None = None
    """Jobs at once. local: worker processes (default 1), each with cpu_count / jobs torch
    threads; ray: tasks in flight (default: the cluster's CPUs / --ray-cpus)."""
    executor: Literal["local", "ray"] = "local"
    """local: a process pool on this machine; ray: Ray tasks (needs `pip install 'sdfrecon[ray]'`,
    and sdfrecon installed on every node)."""
    address: str | None = None
    """Ray cluster to join (host:port of the head, or auto); default: start a local Ray."""
    ray_cpus: int = 1
    """CPUs each Ray task asks for (and its torch threads)."""
    points: int = 30_000
    """Points sampled on each reference mesh."""
    noise: float = 0.0
    """Gaussian noise of the sampled clouds: sigma as a fraction of the bbox diagonal."""
    seed: int = 0
    """Seed of the cloud sampling and of the evaluation's surface samples."""
    samples: int = 100_000
    """Evaluation: area-weighted samples drawn on each mesh."""
    exact: bool = True
    """Evaluation: also the exact point-to-triangle metrics."""
    siren_steps: int | None = None
    """SIREN training steps (default: reconstruct's default)."""
    resolution: int | None = None
    """SIREN marching-cubes resolution (default: reconstruct's default)."""
    siren: tuple[str, ...] = ()
    """More options of the SIREN jobs, as NAME=VALUE (reconstruct's option names, e.g.
    hidden_features=64 time_budget=300 sphere_prior=None); a TOML spec's per-shape options win."""
    depth: int = 9
    """Poisson octree depth."""
    trim: float | None = None
    """Poisson density-trimming quantile (default: no trimming)."""

    def run(self) -> None:
        from sdfrecon.bench import BenchOptions, run_bench

        siren = parse_assignments(self.siren)
        if self.siren_steps is not None:
            siren["steps"] = self.siren_steps
        if self.resolution is not None:
            siren["resolution"] = self.resolution
        options = BenchOptions(points=self.points, noise=self.noise, seed=self.seed,
                               samples=self.samples, exact=self.exact, siren=siren,
                               poisson_depth=self.depth, poisson_trim=self.trim)
        summary = run_bench(self.shapes, self.methods, self.out, self.jobs, self.executor,
                            self.address, options, self.ray_cpus, progress=not self.quiet)
        failed = summary.failed
        print(f"{len(summary.ran)} job(s) run ({len(failed)} failed), {len(summary.skipped)} already "
              f"finished; results in {self.out / 'results.md'}")
        if failed:  # exit code 1; the results, failures included, are written
            names = ", ".join(f"{r['shape']}__{r['method']}" for r in failed[:5])
            raise TrainingError(f"{len(failed)} of {len(summary.ran)} job(s) failed ({names}"
                                f"{' ...' if len(failed) > 5 else ''}); see {self.out / 'results.md'}")
