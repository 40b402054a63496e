"""The ``evaluate``, ``check`` and ``sample`` subcommands (registered in :func:`sdfrecon.cli.commands`).

Same shape as :class:`sdfrecon.cli.reconstruct.Reconstruct`: a dataclass whose fields are the options
(their docstrings are the --help text) and a ``run`` method; heavy imports happen in ``run``.
Unusable input raises :class:`sdfrecon.errors.InputError`, which the CLI prints as one line
with exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from sdfrecon.cli.common import Common, Output
from sdfrecon.errors import InputError

JsonOutput = Annotated[Path | None, tyro.conf.arg(aliases=("-o",), metavar="PATH")]


def _check_options(seed: int, **positive: int) -> None:
    """InputError naming the option for a negative seed or a count below 1."""
    if seed < 0:
        raise InputError("--seed", f"must be >= 0, got {seed}")
    for name, value in positive.items():
        if value < 1:
            raise InputError(f"--{name}", f"must be >= 1, got {value}")


def _load_mesh_with_area(path: Path):
    """``load_mesh`` plus a check that there is surface to sample."""
    from sdfrecon.evaluation.scoring import require_surface
    from sdfrecon.io import load_mesh

    mesh = load_mesh(path)
    require_surface(mesh, path, "the mesh")
    return mesh


@dataclass
class Evaluate(Common):
    """Score a mesh against a reference mesh or point cloud.

    Chamfer-L1/L2, Hausdorff, F-score (precision, recall) at fractions of the reference's
    bounding-box diagonal, normal consistency, exact point-to-triangle versions (mesh
    reference), the SRB one-sided scan-to-reconstruction distances (cloud reference), and the
    mesh's topology. Prints a table with each convention; --json writes the same numbers.
    """

    input: tyro.conf.Positional[Path]
    """Mesh to score (.obj .ply .stl .glb .off)."""
    reference: Path
    """Ground truth: a mesh, or a point cloud such as the input scan (any format sdfrecon reads;
    a .ply/.obj/.off without faces is a cloud)."""
    samples: int = 100_000
    """Area-weighted samples drawn on each mesh (a point-cloud reference is used whole)."""
    seed: int = 0
    """Seed of the surface sampling."""
    tau_fractions: tuple[float, ...] = (0.005, 0.01, 0.02)
    """F-score thresholds as fractions of the reference's bounding-box diagonal."""
    exact: bool = True
    """Also compute the exact point-to-triangle metrics against a mesh reference."""
    input_cloud: Annotated[Path | None, tyro.conf.arg(name="input", metavar="CLOUD")] = None
    """The cloud the mesh was made from: adds the share of the mesh's area farther than 1%, 2%
    and 5% of the cloud's diagonal from every input point (surface that no point supports),
    and the area (and share) of the faces that --trim would remove (unsupported_area)."""
    trim: Annotated[str, tyro.conf.arg(metavar="DIST|auto")] = "auto"
    """With --input: the distance (the cloud's units) beyond which a face is unsupported, as
    `reconstruct --trim` removes them; auto: 5 median point spacings of the cloud."""
    json: JsonOutput = None
    """Write the metrics and conventions to this JSON file."""
    overwrite: bool = False
    """Replace an existing --json file."""

    def run(self) -> None:
        from sdfrecon.evaluation.metrics import unsupported_area
        from sdfrecon.evaluation.scoring import (
            CONVENTIONS,
            evaluate_mesh,
            format_table,
            load_reference,
        )
        from sdfrecon.io import load_point_cloud
        from sdfrecon.io.atomic import check_writable, write_json
        from sdfrecon.trim import parse_trim, unsupported_faces

        _check_options(self.seed, samples=self.samples)
        trim = parse_trim(self.trim)
        if not self.tau_fractions or not all(math.isfinite(f) and f > 0 for f in self.tau_fractions):
            raise InputError("--tau-fractions", f"must be numbers > 0, got {list(self.tau_fractions)}")
        if self.json is not None:
            check_writable(self.json, self.overwrite)  # before the work, not after
        mesh = _load_mesh_with_area(self.input)
        reference = load_reference(self.reference)
        cloud = None if self.input_cloud is None else load_point_cloud(self.input_cloud)
        metrics = evaluate_mesh(mesh, reference, self.samples, self.seed, self.tau_fractions, self.exact)
        if cloud is not None:
            metrics.update(unsupported_area(mesh, cloud.points, samples=self.samples, seed=self.seed))
            metrics.update(unsupported_faces(mesh.vertices, mesh.faces, cloud.points, trim))
        kind = metrics["reference_kind"]
        what = "mesh" if kind == "mesh" else f"point cloud of {metrics['reference_points']} points"
        print(f"{self.input} against {self.reference} ({what}); {self.samples} samples per mesh, "
              f"seed {self.seed}; diag {metrics['diag']:.6g}")
        print(format_table(metrics))
        if self.json is not None:
            document = {"mesh": str(self.input), "reference": str(self.reference),
                        "metrics": metrics, "conventions": CONVENTIONS}
            write_json(self.json, document, self.overwrite)
            print(f"wrote {self.json}")


def integrity_line(report: dict) -> str:
    """One line of :func:`~sdfrecon.sdf.meshing.mesh_integrity`'s report, for a reader."""
    def yes(key: str) -> str:
        return "yes" if report[key] else "NO"

    return (f"{report['faces']:,} faces, {report['components']} component(s) (smallest "
            f"{report['smallest_component_faces']:,} faces), {report['zero_area_faces']} of zero "
            f"area; watertight: trimesh {yes('trimesh_watertight')}, Open3D "
            f"{yes('open3d_watertight')}; edge-manifold {yes('edge_manifold')}, vertex-manifold "
            f"{yes('vertex_manifold')}, {report['self_intersecting_pairs']} self-intersecting "
            "triangle pair(s)")


@dataclass
class Check(Common):
    """Check meshes the way a printer, simulator or boolean library would.

    Per mesh: components, faces of zero area, edge- and vertex-manifold, watertight by
    trimesh's test (every edge in two faces) and by Open3D's (edge- and vertex-manifold and no
    self-intersecting triangle pair: Open3D's pair test, run block by block so that 300k faces
    take seconds, not minutes). Duplicate vertices are merged first, as every command reads a
    mesh. Prints one line per mesh; --json writes the numbers.
    """

    meshes: tyro.conf.Positional[tuple[Path, ...]]
    """Mesh files: .obj .ply .stl .glb .off."""
    json: JsonOutput = None
    """Write {"meshes": [one report per mesh]} to this JSON file."""
    overwrite: bool = False
    """Replace an existing --json file."""

    def run(self) -> None:
        import numpy as np

        from sdfrecon.io.atomic import check_writable, write_json
        from sdfrecon.sdf.meshing import mesh_integrity

        if not self.meshes:
            raise InputError("check", "give at least one mesh file")
        if self.json is not None:
            check_writable(self.json, self.overwrite)
        loaded = [(path, _load_mesh_with_area(path)) for path in self.meshes]  # every file first
        reports = []
        for path, mesh in loaded:
            report = mesh_integrity(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces))
            reports.append({"mesh": str(path), **report})
            print(f"{path}: {integrity_line(report)}")
        if self.json is not None:
            write_json(self.json, {"meshes": reports}, self.overwrite)
            print(f"wrote {self.json}")


@dataclass
class Sample(Common):
    """Sample a benchmark point cloud (with normals) from a mesh.

    Area-weighted points with their face normals; optional Gaussian noise and uniform
    outliers, all seeded. Written atomically in the format named by the suffix.
    """

    input: tyro.conf.Positional[Path]
    """Mesh to sample (.obj .ply .stl .glb .off)."""
    output: Output
    """Point cloud to write: .xyz .txt .pts .ply .pcd .npy .npz (by suffix)."""
    points: Annotated[int, tyro.conf.arg(aliases=("-n",))]
    """Number of points."""
    noise: float = 0.0
    """Gaussian noise: standard deviation per axis as a fraction of the mesh's bounding-box
    diagonal (normals are left clean)."""
    outliers: float = 0.0
    """Fraction of the points replaced by points uniform in the bounding box enlarged by 10 %
    (with random unit normals)."""
    seed: int = 0
    """Seed of the sampling, the noise and the outliers."""
    normals: bool = True
    """Write the normals (--no-normals: positions only)."""
    overwrite: bool = False
    """Replace an existing output file."""

    def run(self) -> None:
        from sdfrecon.evaluation.clouds import sample_cloud
        from sdfrecon.io import PointCloud, save_point_cloud
        from sdfrecon.io.atomic import check_writable

        _check_options(self.seed, points=self.points)
        if not (math.isfinite(self.noise) and self.noise >= 0.0):
            raise InputError("--noise", f"must be a number >= 0, got {self.noise}")
        if not 0.0 <= self.outliers <= 1.0:
            raise InputError("--outliers", f"must be a fraction in [0, 1], got {self.outliers}")
        check_writable(self.output, self.overwrite)  # before the work, not after
        mesh = _load_mesh_with_area(self.input)
        cloud = sample_cloud(mesh, self.points, self.seed, self.noise, self.outliers)
        if not self.normals:
            cloud = PointCloud(cloud.points)
        save_point_cloud(self.output, cloud, self.overwrite)
        print(f"wrote {self.output} ({len(cloud)} points{' with normals' if self.normals else ''}; "
              f"noise {self.noise:g} x diag, outliers {self.outliers:g})")
