"""How the reconstruction defaults were chosen: time-to-quality of training recipes on one
shape, each run as `sdfrecon reconstruct` from file to mesh, beside Open3D screened Poisson.

Each row changes one thing against the defaults (network size, points per step, steps,
learning rate, near-surface samples, the sphere prior), so the table shows what each costs
and buys. One run, one table; ratios against the first row, since shared machines are noisy.
Writes bench_recipe.md and bench_recipe.json into --out.

    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/bench/speed_recipe.py --out out/bench_recipe
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import SHARED, timed_mesh_run  # noqa: E402

VARIANTS: dict[str, str] = {
    "defaults": "",
    "800 steps": "--steps 800",
    "1000 steps": "--steps 1000",
    "2500 steps": "--steps 2500",
    "lr 1e-3": "--lr 1e-3",
    "1024+1024 points, 3000 steps": "--surface-points 1024 --off-surface-points 1024 --steps 3000",
    "4096+4096 points, 750 steps": "--surface-points 4096 --off-surface-points 4096 --steps 750",
    "64 wide": "--hidden-features 64",
    "2 hidden layers": "--hidden-layers 2",
    "+1024 near-surface points": "--near-surface-points 1024",
    "no sphere prior": "--sphere-prior None",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", type=Path, default=SHARED / "bunny.xyz", help="input cloud")
    parser.add_argument("--reference", type=Path, default=SHARED / "meshes" / "bun_zipper.ply",
                        help="ground-truth mesh for Chamfer and F-score")
    parser.add_argument("--out", type=Path, default=Path("out/bench_recipe"), help="output folder")
    parser.add_argument("--only", default="", help="comma-separated variant names to run (default: all)")
    args = parser.parse_args(argv)
    for path in (args.cloud, args.reference):
        if not path.is_file():
            print(f"bench_recipe: {path}: no such file (see scripts/fetch_data.py)", file=sys.stderr)
            return 2
    from sdfrecon.evaluation.scoring import load_reference

    args.out.mkdir(parents=True, exist_ok=True)
    reference = load_reference(args.reference)
    exe = [sys.executable, "-m", "sdfrecon.cli"]
    chosen = [v for v in args.only.split(",") if v] or list(VARIANTS)
    rows = {}
    for i, name in enumerate(chosen):
        mesh = args.out / f"variant{i}.obj"
        cmd = [*exe, "reconstruct", str(args.cloud), "-o", str(mesh), "--overwrite", "--no-progress", "--no-previews",
               *VARIANTS[name].split()]
        row = timed_mesh_run(cmd, mesh, reference)
        summary = json.loads((args.out / f"variant{i}.run" / "summary.json").read_text())
        row.update(train_seconds=summary["train_seconds"], dropped=summary["components_dropped"],
                   options=VARIANTS[name])
        rows[name] = row
        print(f"{name}: {row['wall_seconds']:.1f} s, Chamfer-L1 {100 * row['chamfer_l1_rel']:.4f} %",
              flush=True)
    mesh = args.out / "poisson.ply"
    rows["poisson depth 9"] = timed_mesh_run(
        [*exe, "poisson", str(args.cloud), "-o", str(mesh), "--depth", "9", "--overwrite"], mesh, reference)
    base = rows[chosen[0]]
    lines = ["| recipe | options | train s | wall s | vs first | Chamfer-L1 % | exact % | F@1% | components "
             "| ghosts dropped |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        exact = r["exact_chamfer_l1_rel"]
        train = f"{r['train_seconds']:.1f}" if "train_seconds" in r else ""
        lines.append(f"| {name} | `{r.get('options', '')}` | {train} | {r['wall_seconds']:.1f} | "
                     f"{r['wall_seconds'] / base['wall_seconds']:.2f} | {100 * r['chamfer_l1_rel']:.4f} | "
                     f"{'' if exact is None else f'{100 * exact:.4f}'} | {r['fscore@1%']:.4f} | "
                     f"{r['components']} | {r.get('dropped', '')} |")
    table = "\n".join(lines) + "\n"
    print(table)
    (args.out / "bench_recipe.md").write_text(table)
    (args.out / "bench_recipe.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
