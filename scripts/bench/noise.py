"""Noisy clouds: `sdfrecon bench` on the four closed shared meshes at each --noise level and
--seeds value (30k points with their exact face normals, Gaussian position noise of a
fraction of the diagonal, scored against the clean mesh), screened Poisson (depth 9) on the
same clouds; then the same clouds without their normals (siren-estimated,
poisson-estimated) at the first seed. Docs: docs/benchmarks.md, "Noisy clouds".

    .venv/bin/python scripts/bench/noise.py --out out/bench_noise
    .venv/bin/python scripts/bench/noise.py --seeds 0 --noise 0.005 --no-estimated

Prints two Markdown tables: per shape and level, the exact Chamfer-L1 of both methods per
seed with the ratio, the noise sdfrecon estimated against the true one, and components /
genus; and the normal-free one. Each seed's bench goes to OUT/seedN (a re-run skips the
finished jobs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / "scripts" / "bench" / "closed.toml"


def _records(folder: Path) -> dict[tuple[str, str], dict]:
    path = folder / "results.jsonl"
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["shape"], r["method"]): r for r in rows if r.get("status") == "ok"}


def _bench(out: Path, seed: int, levels: str, methods: str, jobs: int) -> None:
    cmd = [sys.executable, "-m", "sdfrecon.cli", "bench", "--shapes", str(SPEC), "--noise", levels,
           "--methods", methods, "--seed", str(seed), "--jobs", str(jobs), "-o", str(out), "--quiet"]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=False, cwd=REPO)


def _cd(record: dict | None) -> float | None:
    return None if record is None else 100.0 * record["exact_chamfer_l1_rel"]


def _topology(record: dict | None) -> str:
    return "-" if record is None else f"{record['components']} / {record['genus']:g}"


def table(out: Path, seeds: list[int], levels: list[float], ours: str, theirs: str) -> str:
    """The Markdown table of ``ours`` against ``theirs`` over the seeds' results under ``out``."""
    names = [line.split('"')[1] for line in SPEC.read_text().splitlines() if line.startswith("name")]
    head = ("| shape | noise % diag | estimated % diag | " + " | ".join(f"seed {s}: {ours} / {theirs}" for s in seeds)
            + f" | ratio | {ours} components / genus | {theirs} components |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name in names:
        for level in levels:
            label = f"{name}-noise{level:g}"
            cells, ratios, estimates, topo, other = [], [], [], [], []
            for seed in seeds:
                records = _records(out / f"seed{seed}")
                a, b = records.get((label, ours)), records.get((label, theirs))
                if a is None or b is None:
                    cells.append("-")
                    continue
                cells.append(f"{_cd(a):.4f} / {_cd(b):.4f}")
                ratios.append(_cd(a) / _cd(b))
                noise = a.get("noise") or {}
                if noise.get("relative_to_diagonal") is not None:
                    estimates.append(100.0 * noise["relative_to_diagonal"])
                topo.append(_topology(a))
                other.append(str(b["components"]))
            ratio = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"
            estimated = ", ".join(f"{e:.3f}" for e in estimates) or "-"
            rows.append(f"| {name} | {100 * level:.2f} | {estimated} | " + " | ".join(cells)
                        + f" | {ratio} | {', '.join(dict.fromkeys(topo)) or '-'} | {', '.join(other) or '-'} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/bench_noise"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--noise", default="0.0025,0.005")
    parser.add_argument("--jobs", type=int, default=2, help="bench jobs at once (one torch thread each on 2 cores)")
    parser.add_argument("--estimated", action=argparse.BooleanOptionalAction, default=True,
                        help="also the clouds without normals, at the first seed")
    parser.add_argument("--table-only", action="store_true", help="print the tables from existing results")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    levels = [float(v) for v in args.noise.split(",")]
    if not args.table_only:
        for seed in seeds:
            _bench(args.out / f"seed{seed}", seed, args.noise, "siren,poisson", args.jobs)
        if args.estimated:
            _bench(args.out / f"seed{seeds[0]}", seeds[0], args.noise, "siren-estimated,poisson-estimated", args.jobs)
    print("With the file's normals (exact Chamfer-L1, % of the diagonal):\n")
    print(table(args.out, seeds, levels, "siren", "poisson"))
    if args.estimated:
        print("\nWithout normals (estimated and oriented by each method's reader):\n")
        print(table(args.out, seeds[:1], levels, "siren-estimated", "poisson-estimated"))


if __name__ == "__main__":
    main()
