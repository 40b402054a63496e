"""Where a reconstruction's error comes from: the field at the input points, the field on the
true surface between them, and the mesh (marching cubes), for a trained checkpoint and the
reference mesh its cloud was sampled from. Then the mesh extracted with and without the snap
onto the points (sdf/snap.py), scored by exact Chamfer-L1 against the reference.

    .venv/bin/sdfrecon sample ../shared/data/meshes/bun_zipper.ply -o out/bunny30k.npz --points 30000
    .venv/bin/sdfrecon reconstruct out/bunny30k.npz -o out/bunny30k.ply
    .venv/bin/python scripts/studies/error_split.py out/bunny30k.run/checkpoint.pt out/bunny30k.npz \
        ../shared/data/meshes/bun_zipper.ply

All figures are percentages of the reference's bounding-box diagonal.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import trimesh

from sdfrecon.evaluation.metrics import sample_surface
from sdfrecon.evaluation.scoring import evaluate_mesh
from sdfrecon.io import load_mesh, load_point_cloud
from sdfrecon.reconstruction import load_model, mesh_from_model
from sdfrecon.sdf.extract import evaluate, field_evaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("cloud", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model = load_model(args.checkpoint)
    net = model.network.eval()
    norm = model.normalization
    reference = load_mesh(args.reference)
    diag = float(np.linalg.norm(reference.bounds[1] - reference.bounds[0]))
    field = field_evaluator(net)

    def f_world(points: np.ndarray) -> np.ndarray:
        unit = norm.to_unit(points).astype(np.float32)
        return evaluate(field, unit, device, 16384).astype(np.float64) / norm.scale

    cloud = load_point_cloud(args.cloud).points
    truth, _ = sample_surface(reference, 100_000, 1)
    rows = [("field at the input points", f_world(cloud)), ("field on the true surface", f_world(truth))]
    meshes = {}
    for snap in (False, True):
        extract = dataclasses.replace(model.config.extract, snap_to_points=snap)
        result = mesh_from_model(model, extract, device, support=norm.to_unit(cloud))
        meshes[snap] = trimesh.Trimesh(result.vertices, result.faces, process=False)
    rows.append(("field at the mesh's vertices (marching cubes)", f_world(np.asarray(meshes[False].vertices))))
    print("| where | mean abs f | mean f | std f |")
    print("|---|---:|---:|---:|")
    for name, values in rows:
        v = 100.0 * values / diag
        print(f"| {name} | {np.abs(v).mean():.4f} | {v.mean():+.4f} | {v.std():.4f} |")
    print("\n| mesh | exact Chamfer-L1 | Chamfer-L1 (samples) | exact F@0.5% | F@1% |")
    print("|---|---:|---:|---:|---:|")
    for snap, mesh in meshes.items():
        m = evaluate_mesh(mesh, reference, samples=100_000)
        print(f"| zero level set{' snapped to the points' if snap else ''} | "
              f"{100 * m['exact_chamfer_l1_rel']:.4f} | {100 * m['chamfer_l1_rel']:.4f} | "
              f"{m['exact_fscore@0.5%']:.4f} | {m['fscore@1%']:.4f} |")


if __name__ == "__main__":
    main()
