"""Where ghost surfaces come from: the sign of the learned field in empty space during
training, and the share of the final mesh's area that no input point supports.

For each shape (the shared chair cloud when ../shared/data exists, and the thin and open
shapes of sdfrecon.evaluation.thin_shapes), trains at the defaults (plus any --set overrides) and
every --every steps measures, over 100k points uniform in the box whose nearest input point
is farther than 5% of the cloud's diagonal ("empty space"), the share where f < 0 (inside).
On a thin or open shape all of empty space is outside, so that share is ghost volume.

    .venv/bin/python scripts/studies/ghost_study.py --out out/ghost_study
    .venv/bin/python scripts/studies/ghost_study.py --set siren.sphere_prior=None loss.free_space_weight=0
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial import cKDTree

from sdfrecon.cloud.normalize import Normalization
from sdfrecon.config import ReconstructConfig
from sdfrecon.evaluation import thin_shapes as shapes
from sdfrecon.evaluation.metrics import unsupported_area
from sdfrecon.reconstruction import mesh_from_model
from sdfrecon.sdf.fit import fit_sdf

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def with_overrides(config: ReconstructConfig, overrides: list[str]) -> ReconstructConfig:
    """'section.field=value' (a Python literal) applied with dataclasses.replace."""
    for item in overrides:
        key, text = item.split("=", 1)
        section, name = key.split(".")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        part = dataclasses.replace(getattr(config, section), **{name: value})
        config = dataclasses.replace(config, **{section: part})
    return config


def clouds(names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for name in names:
        if name == "chair":
            if (SHARED / "pointclouds" / "chair36.xyz").exists():
                data = np.loadtxt(SHARED / "pointclouds" / "chair36.xyz")
                out[name] = (data[:, :3], data[:, 3:6])
        elif name == "single-view":
            mesh_path = SHARED / "meshes" / "spot.obj"
            mesh = (trimesh.load(mesh_path, force="mesh") if mesh_path.exists()
                    else trimesh.creation.capsule(height=1.0, radius=0.4))
            out[name] = shapes.single_view_scan(mesh)
        else:
            out[name] = shapes.THIN_SHAPES[name]()
    return out


def study(name: str, points: np.ndarray, normals: np.ndarray, config: ReconstructConfig,
          every: int) -> dict:
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, checkpoint_every=every, progress=False, device="cpu"))
    normalization = Normalization.fit(points, config.normalization)
    unit = normalization.to_unit(points)
    diag = float(np.linalg.norm(unit.max(axis=0) - unit.min(axis=0)))
    probe = np.random.default_rng(0).uniform(-1.0, 1.0, (100_000, 3))
    far = probe[cKDTree(unit).query(probe)[0] > 0.05 * diag]
    probe_t = torch.as_tensor(far, dtype=torch.float32)
    inside: dict[int, float] = {}

    def record(model, state) -> None:
        with torch.no_grad():
            f = model.network(probe_t)
        inside[state.step] = float((f < 0).float().mean())
        model.network.train()

    with torch.no_grad():
        from sdfrecon.sdf.siren import SdfSiren
        torch.manual_seed(config.train.seed)
        inside[0] = float((SdfSiren(config.siren)(probe_t) < 0).float().mean())
    t0 = time.perf_counter()
    model, _ = fit_sdf(unit, normals.astype(np.float32), normalization, config,
                       torch.device("cpu"), on_checkpoint=record)
    seconds = time.perf_counter() - t0
    result = mesh_from_model(model, config.extract, torch.device("cpu"), support=unit)
    mesh = trimesh.Trimesh(result.vertices, result.faces, process=False)
    return {"shape": name, "points": len(points), "inside": inside, "seconds": seconds,
            "components": len(mesh.split(only_watertight=False)),
            "dropped": result.info["components_dropped"], **unsupported_area(mesh, points)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="chair,bracket,plate,bowl,single-view")
    parser.add_argument("--set", nargs="*", default=[], help="config overrides, section.field=value")
    parser.add_argument("--every", type=int, default=250, help="steps between measurements")
    parser.add_argument("--out", type=Path, default=Path("out/ghost_study"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = with_overrides(ReconstructConfig(), args.set)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [study(name, p, n, config, args.every) for name, (p, n) in clouds(args.shapes.split(",")).items()]
    (args.out / "results.json").write_text(json.dumps({"set": args.set, "rows": rows}, indent=2))
    steps = sorted(rows[0]["inside"]) if rows else []
    print(f"overrides: {args.set or 'none (defaults)'}\n")
    print("| shape | " + " | ".join(f"inside @ {s}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for r in rows:
        print(f"| {r['shape']} | " + " | ".join(f"{100 * r['inside'][s]:.1f} %" for s in steps) + " |")
    print("\n| shape | points | unsupported @1% | @2% | @5% | mean dist / diag | components | dropped | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['points']} | {100 * r['unsupported@1%']:.2f} % | "
              f"{100 * r['unsupported@2%']:.2f} % | {100 * r['unsupported@5%']:.2f} % | "
              f"{100 * r['support_mean_rel']:.3f} % | {r['components']} | {r['dropped']} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
