"""Accuracy against time: exact Chamfer-L1 of sdfrecon at several --time-budget values, with
screened Poisson (depth 9) in the same run, on clouds sampled from shared meshes as `sdfrecon
bench` samples them (30k points with normals, seed 0). Each reconstruction is a whole
`sdfrecon reconstruct` process, timed from outside, so the times are what a user waits.

    .venv/bin/python scripts/bench/accuracy.py --out out/bench_budget
    .venv/bin/python scripts/bench/accuracy.py --shapes bun_zipper.ply --budgets 15,30

Prints a markdown table and writes budget.png (Chamfer against seconds, one line a shape,
Poisson's points marked) and results.json under --out. A re-run into the same --out keeps the
points it has and adds the missing ones (more --budgets, more --shapes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "meshes"


def run(cmd: list[str]) -> float:
    """Wall seconds of a whole command (its output kept out of the table)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def score(mesh: Path, reference: Path) -> dict:
    from sdfrecon.evaluation.scoring import evaluate_mesh, load_reference
    from sdfrecon.io import load_mesh

    m = evaluate_mesh(load_mesh(mesh), load_reference(reference), samples=100_000)
    return {k: m[k] for k in ("exact_chamfer_l1_rel", "exact_fscore@0.5%", "components")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="bun_zipper.ply,fandisk.obj,rocker-arm.obj")
    parser.add_argument("--budgets", default="15,30,60,120", help="--time-budget values, seconds")
    parser.add_argument("--out", type=Path, default=Path("out/bench_budget"))
    args = parser.parse_args()
    from sdfrecon.evaluation.clouds import sample_cloud
    from sdfrecon.io import load_mesh, save_point_cloud

    args.out.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "sdfrecon.cli"]
    env_note = f"OMP threads: {os.environ.get('OMP_NUM_THREADS', 'default')}"
    saved = args.out / "results.json"
    done = json.loads(saved.read_text()) if saved.is_file() else []  # a re-run adds what is missing
    have = {(r["shape"], r["method"], r["budget"]) for r in done}
    rows = list(done)
    for name in args.shapes.split(","):
        reference = SHARED / name
        cloud = args.out / f"{reference.stem}.npz"
        if not cloud.is_file():
            save_point_cloud(cloud, sample_cloud(load_mesh(reference), 30_000, 0))
        mesh = args.out / f"{reference.stem}_poisson.ply"
        if (reference.stem, "poisson", None) not in have:
            seconds = run(exe + ["poisson", str(cloud), "-o", str(mesh), "--overwrite"])
            rows.append({"shape": reference.stem, "method": "poisson", "budget": None, "seconds": seconds,
                         **score(mesh, reference)})
            print(rows[-1], flush=True)
        for budget in (float(b) for b in args.budgets.split(",")):
            if (reference.stem, "siren", budget) in have:
                continue
            mesh = args.out / f"{reference.stem}_siren_{budget:g}.ply"
            seconds = run(exe + ["reconstruct", str(cloud), "-o", str(mesh), "--overwrite", "--no-progress",
                                 "--time-budget", f"{budget:g}", "--steps", "100000"])
            rows.append({"shape": reference.stem, "method": "siren", "budget": budget, "seconds": seconds,
                         **score(mesh, reference)})
            print(rows[-1], flush=True)
    rows.sort(key=lambda r: (r["shape"], r["method"], r["budget"] or 0.0))
    saved.write_text(json.dumps(rows, indent=2))
    print(f"\n{env_note}\n")
    print("| shape | method | --time-budget s | wall s | exact Chamfer-L1 % diag | exact F@0.5% | components |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        budget = "" if r["budget"] is None else f"{r['budget']:g}"
        print(f"| {r['shape']} | {r['method']} | {budget} | {r['seconds']:.1f} | "
              f"{100 * r['exact_chamfer_l1_rel']:.4f} | {r['exact_fscore@0.5%']:.4f} | {r['components']} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, shape in enumerate(dict.fromkeys(r["shape"] for r in rows)):
        siren = [r for r in rows if r["shape"] == shape and r["method"] == "siren"]
        poisson = [r for r in rows if r["shape"] == shape and r["method"] == "poisson"]
        colour = f"C{i}"
        ax.plot([r["seconds"] for r in siren], [100 * r["exact_chamfer_l1_rel"] for r in siren],
                "o-", color=colour, label=f"{shape}: sdfrecon")
        ax.plot([r["seconds"] for r in poisson], [100 * r["exact_chamfer_l1_rel"] for r in poisson],
                "*", markersize=12, color=colour, label=f"{shape}: Poisson depth 9")
        for r in poisson:  # Poisson's accuracy across the plot: where a line crosses it, sdfrecon is as close
            ax.axhline(100 * r["exact_chamfer_l1_rel"], color=colour, linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("wall time of the whole command, s")
    ax.set_ylabel("exact Chamfer-L1, % of the diagonal")
    ax.set_title("Accuracy against time (lower left is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "budget.png", dpi=110)
    print(f"\nwrote {args.out / 'budget.png'}")


if __name__ == "__main__":
    main()
