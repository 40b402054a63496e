"""Accuracy against time: `sdfrecon reconstruct` at each --preset and at several whole-command
--time-budget values, with Open3D screened Poisson (`sdfrecon poisson`, depth 9) in the same
run, on clouds sampled from shared meshes as `sdfrecon bench` samples them (30k points with
face normals, one cloud per --seeds value). Every reconstruction is a whole process timed
from outside: the times are what a user waits, imports included. Docs: docs/speed.md.

    .venv/bin/python scripts/bench/speed_presets.py --out out/speed_presets
    .venv/bin/python scripts/bench/speed_presets.py --shapes spot.obj --presets fast --budgets ""

Prints the table (wall seconds and exact Chamfer-L1, each with its ratio to Poisson's on the
same cloud) and writes results.json and budget.png (Chamfer against wall time, a line a
shape through its budget points, the presets and Poisson marked) under --out. A re-run into
the same --out adds missing rows, and refuses rows of another commit (--fresh starts over).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data" / "meshes"
CLOSED = "fandisk.obj,fertility.off,rocker-arm.obj,spot.obj"


def _commit() -> str:
    """The checkout's commit, with '+' when the working tree differs from it."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return head + ("+" if dirty else "")


def _run(cmd: list[str]) -> float:
    """Wall seconds of a whole command."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"speed_presets: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def _score(mesh: Path, reference: Path) -> dict:
    from sdfrecon.evaluation.scoring import evaluate_mesh, load_reference
    from sdfrecon.io import load_mesh

    m = evaluate_mesh(load_mesh(mesh), load_reference(reference), samples=100_000)
    return {k: m[k] for k in ("exact_chamfer_l1_rel", "exact_fscore@0.5%", "components", "genus")}


def _jobs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """(method label, extra arguments of reconstruct) in run order; poisson is its own."""
    jobs = [("poisson", [])]
    jobs += [(f"preset {p}", ["--preset", p]) for p in filter(None, args.presets.split(","))]
    jobs += [(f"budget {float(b):g} s", ["--time-budget", f"{float(b):g}", "--steps", "100000"])
             for b in filter(None, args.budgets.split(","))]
    for variant in filter(None, args.variants.split(";")):  # label=options of reconstruct
        label, _, options = variant.partition("=")
        jobs.append((label.strip(), options.split()))
    return jobs


def measure(args: argparse.Namespace) -> list[dict]:
    from sdfrecon.evaluation.clouds import sample_cloud
    from sdfrecon.io import load_mesh, save_point_cloud

    commit = _commit()
    saved = args.out / "results.json"
    rows = [] if args.fresh or not saved.is_file() else json.loads(saved.read_text())
    other = {r["commit"] for r in rows} - {commit}
    if other:
        raise SystemExit(f"speed_presets: {saved} holds rows of commit(s) {sorted(other)}, this is "
                         f"{commit}: pass --fresh (or another --out) rather than mix them")
    have = {(r["shape"], r["seed"], r["method"]) for r in rows}
    exe = [sys.executable, "-m", "sdfrecon.cli"]
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in args.shapes.split(","):
            reference = SHARED / name
            cloud = args.out / "clouds" / f"{reference.stem}_{seed}.npz"
            if not cloud.is_file():
                cloud.parent.mkdir(parents=True, exist_ok=True)
                save_point_cloud(cloud, sample_cloud(load_mesh(reference), 30_000, seed))
            for label, extra in _jobs(args):
                if (reference.stem, seed, label) in have:
                    continue
                mesh = args.out / "meshes" / f"{reference.stem}_{seed}_{label.replace(' ', '_')}.ply"
                mesh.parent.mkdir(parents=True, exist_ok=True)
                what = ["poisson", str(cloud), "-o", str(mesh)] if label == "poisson" else \
                    ["reconstruct", str(cloud), "-o", str(mesh), "--no-previews", *extra]
                seconds = _run(exe + what + ["--overwrite", "--quiet"])
                rows.append({"shape": reference.stem, "seed": seed, "method": label, "seconds": seconds,
                             "commit": commit, **_score(mesh, reference)})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                saved.write_text(json.dumps(rows, indent=1))
    return rows


def table(rows: list[dict]) -> str:
    """Medians over the seeds, with each row's ratio to Poisson's on the same clouds."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["| shape | method | wall s | / Poisson | exact Chamfer-L1 % diag | / Poisson | exact F@0.5% | components / genus |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for shape in dict.fromkeys(r["shape"] for r in rows):
        base = {r["seed"]: r for r in rows if r["shape"] == shape and r["method"] == "poisson"}
        for method in methods:
            mine = [r for r in rows if r["shape"] == shape and r["method"] == method]
            if not mine:
                continue
            med = lambda key, rs=mine: statistics.median(r[key] for r in rs)  # noqa: E731
            time_ratio = statistics.median(r["seconds"] / base[r["seed"]]["seconds"] for r in mine if r["seed"] in base)
            cd_ratio = statistics.median(r["exact_chamfer_l1_rel"] / base[r["seed"]]["exact_chamfer_l1_rel"]
                                         for r in mine if r["seed"] in base)
            spread = (f" ({100 * min(r['exact_chamfer_l1_rel'] for r in mine):.4f}-"
                      f"{100 * max(r['exact_chamfer_l1_rel'] for r in mine):.4f})" if len(mine) > 1 else "")
            lines.append(f"| {shape} | {method} | {med('seconds'):.1f} | {time_ratio:.2f} | "
                         f"{100 * med('exact_chamfer_l1_rel'):.4f}{spread} | {cd_ratio:.2f} | "
                         f"{med('exact_fscore@0.5%'):.4f} | {mine[0]['components']} / {mine[0]['genus']} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    markers = {"preset fast": "^", "preset default": "s", "preset best": "D"}
    for i, shape in enumerate(dict.fromkeys(r["shape"] for r in rows)):
        colour = f"C{i}"
        mine = [r for r in rows if r["shape"] == shape and r["seed"] == rows[0]["seed"]]
        budget = sorted((r for r in mine if r["method"].startswith("budget")), key=lambda r: r["seconds"])
        ax.plot([r["seconds"] for r in budget], [100 * r["exact_chamfer_l1_rel"] for r in budget],
                "o-", color=colour, markersize=4, label=f"{shape}: --time-budget")
        for r in mine:
            if r["method"] in markers:
                ax.plot(r["seconds"], 100 * r["exact_chamfer_l1_rel"], markers[r["method"]], color=colour,
                        markersize=8, markeredgecolor="black")
            if r["method"] == "poisson":
                ax.plot(r["seconds"], 100 * r["exact_chamfer_l1_rel"], "*", color=colour, markersize=13,
                        markeredgecolor="black")
                ax.axhline(100 * r["exact_chamfer_l1_rel"], color=colour, linestyle=":", linewidth=1)
    for label, marker in {**markers, "Poisson depth 9": "*"}.items():
        ax.plot([], [], marker, color="grey", markeredgecolor="black", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")  # a short budget's mesh is tens of times worse: keep the good end readable
    ax.set_xlabel("wall time of the whole command, s")
    ax.set_ylabel("exact Chamfer-L1, % of the diagonal")
    ax.set_title(f"Accuracy against time (lower left is better), commit {rows[0]['commit']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default=CLOSED, help="meshes in ../shared/data/meshes")
    parser.add_argument("--seeds", default="0", help="cloud seeds, e.g. 0,1,2 (medians and spread)")
    parser.add_argument("--presets", default="fast,default,best")
    parser.add_argument("--budgets", default="6,10,20,40", help="whole-command --time-budget values, s")
    parser.add_argument("--variants", default="",
                        help="more rows: 'LABEL=OPTIONS;...', e.g. 'old default=--surface-points 2048'")
    parser.add_argument("--out", type=Path, default=Path("out/speed_presets"))
    parser.add_argument("--fresh", action="store_true", help="drop the rows already in --out")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = measure(args)
    text = table(rows)
    print(f"commit {rows[0]['commit']}\n\n{text}")
    (args.out / "table.md").write_text(text + "\n")
    plot(rows, args.out / "budget.png")
    print(f"\nwrote {args.out / 'budget.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
