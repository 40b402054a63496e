"""The ``poisson`` and ``bench`` subcommands (registered in :func:`sdfrecon.cli.commands`).

Same shape as :class:`sdfrecon.cli.reconstruct.Reconstruct`: a dataclass whose fields are the options
(their docstrings are the --help text) and a ``run`` method; heavy imports (torch, open3d,
ray) happen in ``run`` or deeper. Unusable input raises :class:`sdfrecon.errors.InputError`,
which the CLI prints as one line with exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro

from sdfrecon.bench.specs import BenchOptions
from sdfrecon.cli.common import Common, Output, passive_openmp
from sdfrecon.errors import InputError, TrainingError


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
        passive_openmp()
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
    and mean/median per method), and OUT/report.html (the table with each shape's best values
    highlighted, and thumbnails of every mesh linking to its file). A re-run skips the finished jobs and retries failed ones.
    Exit code 1 when a job failed (its error is in the results; the other jobs still ran).

    --suite srb --data DIR runs the Surface Reconstruction Benchmark in its published
    protocol: DIR/scans/NAME.ply (the input scans) and DIR/ground_truth/NAME.xyz (dense
    ground truth); meshes go to OUT/meshes/METHOD/NAME.ply in the scan's coordinates and
    are scored as DiGS's compute_metrics_srb.py scores them (d_C, d_H, d_C->, d_H->, 1,000,000
    samples, original units), beside the published numbers in results.md.
    """

    shapes: Path | None = None
    """Suite shapes: a folder of meshes (a cloud is sampled from each: --points, --noise,
    --seed; written to OUT/clouds/) or a TOML file of [[shape]] tables (name, reference, cloud,
    points, noise, outliers, seed, [shape.siren] and [shape.poisson] options; see
    sdfrecon/bench/specs.py)."""
    suite: Literal["shapes", "srb"] = "shapes"
    """shapes: --shapes as above; srb: the SRB release layout in --data, scored in the
    published protocol."""
    data: Path | None = None
    """Suite srb: the folder holding scans/NAME.ply and ground_truth/NAME.xyz (e.g. the
    deep_geometric_prior_data folder that `python scripts/fetch_data.py srb` unpacks)."""
    methods: str | None = None
    """Comma-separated methods: siren (file normals), siren-estimated (normals estimated and
    oriented, as for a cloud without them), siren-free (normal-free training), poisson (file
    normals), poisson-estimated (normals estimated and oriented); default: siren,poisson
    (suite shapes), siren,siren-free,poisson,poisson-estimated (suite srb). Where a file has
    no normals, siren and poisson estimate them too (the record's 'normals' says so)."""
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
    shared: Annotated[BenchOptions, tyro.conf.OmitArgPrefixes] = field(default_factory=BenchOptions)
    """Cloud sampling, evaluation and method settings shared by every job."""

    def run(self) -> None:
        passive_openmp()  # before the workers start: they inherit it
        from sdfrecon.bench import run_bench

        if self.suite == "srb":
            if self.data is None or self.shapes is not None:
                raise InputError("--suite srb", "takes the benchmark folder as --data DIR (and no --shapes)")
            source = self.data
        else:
            if self.shapes is None or self.data is not None:
                raise InputError("--suite shapes", "takes --shapes (a folder of meshes or a TOML file), "
                                                   "not --data")
            source = self.shapes
        summary = run_bench(source, self.methods, self.out, self.jobs, self.executor,
                            self.address, self.shared, self.ray_cpus, progress=not self.quiet,
                            suite=self.suite)
        failed = summary.failed
        print(f"{len(summary.ran)} job(s) run ({len(failed)} failed), {len(summary.skipped)} already "
              f"finished; results in {self.out / 'results.md'}")
        if failed:  # exit code 1; the results, failures included, are written
            names = ", ".join(f"{r['shape']}__{r['method']}" for r in failed[:5])
            raise TrainingError(f"{len(failed)} of {len(summary.ran)} job(s) failed ({names}"
                                f"{' ...' if len(failed) > 5 else ''}); see {self.out / 'results.md'}")
