"""Where `sdfrecon reconstruct`'s wall time goes, stage by stage, before and after a change,
with Open3D's screened Poisson (`sdfrecon poisson`, depth 9) timed in the same run.

For each cloud (the shared bunny, 35k points with normals, and a cloud of --big-points
points with normals that this script samples from a shared mesh and writes as binary PLY),
each checkout runs `reconstruct` --runs times, the checkouts and Poisson in turn (A B P A B
P ...), so that a change in the machine's load hits them alike. Each run is a fresh
process, timed from outside (wall), and its summary.json gives the stages (``stage_seconds``:
imports to previews, summing to the wall time; a checkout from before stage timings gives
only load / train / extract / previews). The table has medians and the after / before ratio.
Docs: docs/speed.md.

    .venv/bin/python scripts/bench/speed.py --before 6231acc --out out/bench_speed
    .venv/bin/python scripts/bench/speed.py --runs 1 --big-points 0        # this checkout, bunny only

Writes speed.md (the tables) and speed.json (every run) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
OLD_STAGES = ("load_seconds", "train_seconds", "extract_seconds")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", type=Path, default=SHARED / "bunny.xyz", help="the small cloud")
    parser.add_argument("--big-mesh", type=Path, default=SHARED / "meshes" / "fertility.off",
                        help="mesh the big cloud is sampled from")
    parser.add_argument("--big-points", type=int, default=2_000_000, help="0: no big cloud")
    parser.add_argument("--before", default=None,
                        help="git revision to compare with (checked out with `git worktree`)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (medians)")
    parser.add_argument("--args", default="", help="extra options of every `reconstruct` run")
    parser.add_argument("--out", type=Path, default=Path("out/bench_speed"), help="output folder")
    return parser.parse_args(argv)


def _run(cmd: list[str], checkout: Path) -> float:
    """Run cmd with checkout's sdfrecon first on the path; its wall seconds."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"speed: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return wall


def _checkout(rev: str, out: Path) -> Path:
    """A worktree of rev under out (made once, reused)."""
    path = (out / f"checkout-{rev}").resolve()
    if not path.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
                       check=True, capture_output=True)
    return path


def _big_cloud(args: argparse.Namespace) -> Path | None:
    if args.big_points <= 0:
        return None
    path = (args.out / "clouds" / f"{args.big_mesh.stem}_{args.big_points}.ply").resolve()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "sdfrecon.cli", "sample", str(args.big_mesh.resolve()),
              "-n", str(args.big_points), "-o", str(path), "--quiet"], REPO)
    return path


def _stages(summary: dict) -> dict[str, float]:
    """A run's seconds per stage: stage_seconds, or the coarse ones of an older summary."""
    if "stage_seconds" in summary:
        return {k: float(v) for k, v in summary["stage_seconds"].items() if k != "wall"}
    coarse = {k.removesuffix("_seconds"): float(summary[k]) for k in OLD_STAGES if k in summary}
    coarse["previews"] = float(sum(summary.get("preview_seconds", {}).values()))
    return coarse


def measure(args: argparse.Namespace) -> dict:
    clouds = [args.cloud.resolve(), *filter(None, [_big_cloud(args)])]
    checkouts = {"after": REPO}
    if args.before:
        checkouts = {"before": _checkout(args.before, args.out), **checkouts}
    runs: list[dict] = []
    for cloud in clouds:
        for i in range(args.runs):
            for name, checkout in checkouts.items():
                mesh = (args.out / "meshes" / f"{cloud.stem}_{name}.ply").resolve()
                cmd = [sys.executable, "-m", "sdfrecon.cli", "reconstruct", str(cloud), "-o", str(mesh),
                       "--overwrite", "--quiet", *args.args.split()]
                wall = _run(cmd, checkout)
                summary = json.loads((mesh.parent / f"{mesh.stem}.run" / "summary.json").read_text())
                runs.append({"cloud": cloud.name, "checkout": name, "run": i, "wall": wall,
                             "points": summary.get("points"), "faces": summary.get("faces"),
                             "stages": _stages(summary)})
                print(f"{cloud.name} {name} run {i}: {wall:.1f} s", file=sys.stderr)
            poisson = (args.out / "meshes" / f"{cloud.stem}_poisson.ply").resolve()
            wall = _run([sys.executable, "-m", "sdfrecon.cli", "poisson", str(cloud), "-o", str(poisson),
                         "--overwrite", "--quiet"], REPO)
            runs.append({"cloud": cloud.name, "checkout": "poisson", "run": i, "wall": wall, "stages": {}})
            print(f"{cloud.name} poisson run {i}: {wall:.1f} s", file=sys.stderr)
    return {"runs": runs, "before": args.before, "args": args.args,
            "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()}


def _median(runs: list[dict], key) -> float | None:
    values = [key(r) for r in runs]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(result: dict) -> str:
    """One markdown table per cloud: median seconds per stage of each checkout, the ratio."""
    out = []
    for cloud in dict.fromkeys(r["cloud"] for r in result["runs"]):
        runs = [r for r in result["runs"] if r["cloud"] == cloud]
        names = [n for n in ("before", "after") if any(r["checkout"] == n for r in runs)]
        stages = list(dict.fromkeys(k for n in names for r in runs if r["checkout"] == n for k in r["stages"]))
        points = _median([r for r in runs if r["checkout"] == "after"], lambda r: r.get("points"))
        out += [f"**{cloud}** ({points:,.0f} points; medians of {result['runs'][-1]['run'] + 1} runs, seconds)", "",
                "| stage | " + " | ".join(names) + (" | after / before |" if len(names) == 2 else " |"),
                "|---|" + "---:|" * (len(names) + (len(names) == 2))]
        rows = [*stages, "fixed cost (all but training)", "wall (from outside)", "Poisson depth 9 wall",
                "wall / Poisson"]
        poisson = _median([r for r in runs if r["checkout"] == "poisson"], lambda r: r["wall"])
        for row in rows:
            cells = []
            for name in names:
                mine = [r for r in runs if r["checkout"] == name]
                if row == "wall (from outside)":
                    value = _median(mine, lambda r: r["wall"])
                elif row == "fixed cost (all but training)":
                    value = _median(mine, lambda r: r["wall"] - r["stages"].get("training", r["stages"].get("train", 0.0)))
                elif row == "Poisson depth 9 wall":
                    value = poisson
                elif row == "wall / Poisson":
                    value = _median(mine, lambda r: r["wall"]) / poisson if poisson else None
                else:
                    value = _median(mine, lambda r, row=row: r["stages"].get(row))
                cells.append(value)
            ratio = (f" | {cells[1] / cells[0]:.2f}" if len(cells) == 2 and cells[0] and cells[1] is not None
                     else " | " if len(cells) == 2 else "")
            out.append(f"| {row} | " + " | ".join("" if c is None else f"{c:.2f}" for c in cells) + ratio + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not args.cloud.is_file():
        print(f"speed: {args.cloud}: no such file (see scripts/fetch_data.py)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    result = measure(args)
    text = table(result)
    print(text)
    (args.out / "speed.md").write_text(text + "\n")
    (args.out / "speed.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
