"""How much of a reference mesh lies inside its own other shells, and what that costs a
watertight reconstruction in exact Chamfer-L1.

A mesh made of overlapping closed shells (the shared ant: 15 shells, legs pushed into the
body) has surface inside the solid. A cloud sampled from it has points there too, but a
signed distance field has no surface inside a solid: its zero set can follow the union's
boundary, not the inner sheets. This script samples the reference, marks the samples that lie
inside another of its shells (Open3D occupancy, one shell at a time), and splits each mesh's
exact Chamfer-L1 into its two halves, the reference -> mesh half over the outer and the inner
samples apart.

    .venv/bin/python scripts/studies/inner_surfaces.py ../shared/data/meshes/ant.ply \
        out/bench/meshes/ant__siren.ply out/bench/meshes/ant__poisson.ply

Figures are percentages of the reference's bounding-box diagonal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import trimesh

from sdfrecon.evaluation.metrics import sample_surface
from sdfrecon.evaluation.scoring import TriangleSurface
from sdfrecon.io import load_mesh


def inner_samples(reference: trimesh.Trimesh, points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,) bool: the samples ``points`` (on the faces ``faces`` of ``reference``) that lie
    inside a closed shell of the reference other than their own."""
    import open3d as o3d

    labels = trimesh.graph.connected_component_labels(reference.face_adjacency, node_count=len(reference.faces))
    inside = np.zeros(len(points), dtype=bool)
    query = o3d.core.Tensor(points.astype(np.float32))
    for shell in np.unique(labels):
        part = reference.submesh([np.flatnonzero(labels == shell)], append=True)
        if not part.is_watertight:
            continue  # an open shell has no inside
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(part.vertices.astype(np.float32)),
                            o3d.core.Tensor(part.faces.astype(np.uint32)))
        occupied = scene.compute_occupancy(query).numpy() > 0
        inside |= occupied & (labels[faces] != shell)
    return inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path)
    parser.add_argument("meshes", type=Path, nargs="+")
    parser.add_argument("--samples", type=int, default=200_000)
    args = parser.parse_args()
    reference = load_mesh(args.reference)
    diag = float(np.linalg.norm(reference.bounds[1] - reference.bounds[0]))
    points, faces = trimesh.sample.sample_surface(reference, args.samples, seed=0)
    inner = inner_samples(reference, points, faces)
    shells = len(reference.split(only_watertight=False))
    print(f"{args.reference.name}: {shells} shells; {100 * inner.mean():.2f} % of its area lies inside another shell\n")
    print("| mesh | reference -> mesh, outer surface | inner surface | mesh -> reference | "
          "exact Chamfer-L1 | without the inner surface |")
    print("|---|---:|---:|---:|---:|---:|")
    to_reference = TriangleSurface(reference)
    for path in args.meshes:
        mesh = load_mesh(path)
        recall = TriangleSurface(mesh, to_reference.centre).distance(points) / diag * 100
        precision = to_reference.distance(sample_surface(mesh, args.samples, 1)[0]) / diag * 100
        outer = recall[~inner].mean()
        print(f"| {path.name} | {outer:.4f} | {recall[inner].mean() if inner.any() else 0:.4f} | "
              f"{precision.mean():.4f} | {(recall.mean() + precision.mean()) / 2:.4f} | "
              f"{(outer + precision.mean()) / 2:.4f} |")


if __name__ == "__main__":
    main()
