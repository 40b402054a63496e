"""PSNR against steps for sine (SIREN), relu, relu-pe and tanh networks fitted to the
cameraman at 256x256 from its pixels, one run each with the same recipe and budget.

Every network gets the default recipe of `sdfrecon fit-image` (width, depth, batch,
learning rate and schedule, step and time budget) with only the activation changed;
``--preset paper`` runs the SIREN paper's recipe instead. Writes into --out a Markdown
table (bench_image.md), the numbers (bench_image.json) and a plot of PSNR against steps
and against seconds (bench_image.png). The PSNR of the curves is the logged batch PSNR
(every pixel for the paper recipe); the table's last columns are of the whole rendered
image, clipped to [0, 1].

    flock /tmp/sdfrecon-heavy.lock .venv/bin/python scripts/bench/images.py --out out/bench_image
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ACTIVATIONS = ("sine", "relu", "relu-pe", "tanh")
FILES = ("bench_image.md", "bench_image.json", "bench_image.png")
MARKS = (50, 100, 250, 500, 1000, 2000, 4000)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/bench_image"), help="output folder")
    parser.add_argument("--image", default=None, help="image file or skimage:NAME (default: the cameraman)")
    parser.add_argument("--size", default="256x256", help="WxH the image is resampled to")
    parser.add_argument("--activations", default=",".join(ACTIVATIONS),
                        help="comma-separated subset of " + ", ".join(ACTIVATIONS))
    parser.add_argument("--preset", choices=("fast", "paper"), default="fast", help="recipe of every run")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the preset's)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="training seconds per run (default: the preset's)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results in --out")
    return parser.parse_args(argv)


def _psnr_at(history: list[dict], step: int) -> float | None:
    rows = [h for h in history if h["step"] <= step]
    return rows[-1]["psnr"] if rows and rows[-1]["step"] == step else None


def run(args: argparse.Namespace) -> list[dict]:
    from sdfrecon.image import data, plots
    from sdfrecon.image.config import PRESETS
    from sdfrecon.image.fit import fit_image, render
    from sdfrecon.image.metrics import image_metrics
    from sdfrecon.io.atomic import atomic_write, check_writable
    from sdfrecon.sdf.train import resolve_device

    for name in FILES:
        check_writable(args.out / name, args.overwrite)
    activations = [a.strip() for a in args.activations.split(",") if a.strip()]
    unknown = set(activations) - set(ACTIVATIONS)
    if unknown:
        raise SystemExit(f"bench_image: unknown activations {sorted(unknown)}")
    image = data.load_image(args.image, data.parse_size(args.size))
    h, w, _ = image.shape
    device = resolve_device(args.device)
    base = PRESETS[args.preset]
    train = dataclasses.replace(base.train, progress=False, device=args.device)
    if args.steps is not None:
        train = dataclasses.replace(train, steps=args.steps)
    if args.time_budget is not None:
        train = dataclasses.replace(train, time_budget=args.time_budget)
    results = []
    args.out.mkdir(parents=True, exist_ok=True)
    for act in activations:
        config = dataclasses.replace(base, model=dataclasses.replace(base.model, activation=act), train=train)
        log_path = args.out / f".{act}.losses.csv"
        t0 = time.perf_counter()
        model, state = fit_image(image, config, device, log_path=log_path)
        seconds = time.perf_counter() - t0
        with log_path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        log_path.unlink()
        metrics = image_metrics(render(model, w, h, device=device), image)
        result = {
            "activation": act, "steps": state.step, "train_seconds": round(state.elapsed, 1),
            "seconds_per_step": round(state.elapsed / max(state.step, 1), 4),
            "psnr": metrics["psnr"], "ssim": metrics["ssim"],
            "curve": {"step": [int(r["step"]) for r in rows], "seconds": [float(r["seconds"]) for r in rows],
                      "psnr": [float(r["psnr"]) for r in rows]},
            "psnr_at": {str(m): _psnr_at(state.history, m) for m in MARKS if m <= state.step},
            "config": dataclasses.asdict(model.config),
        }
        results.append(result)
        print(f"{act:8s} {state.step:5d} steps {seconds:6.1f} s  PSNR {metrics['psnr']:.2f} dB  "
              f"SSIM {metrics['ssim']:.4f}", flush=True)

    marks = [m for m in MARKS if any(str(m) in r["psnr_at"] for r in results)]
    head = ["activation", "steps", "train s", "s/step", *[f"@{m}" for m in marks], "PSNR dB", "SSIM"]
    lines = [f"Cameraman {w}x{h} from pixels, preset '{args.preset}' "
             f"(batch PSNR in dB at the given steps; last two columns: the whole image)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        at = [f"{r['psnr_at'][str(m)]:.2f}" if r["psnr_at"].get(str(m)) is not None else "" for m in marks]
        lines.append("| " + " | ".join([r["activation"], str(r["steps"]), f"{r['train_seconds']:.0f}",
                                         f"{r['seconds_per_step']:.3f}", *at, f"{r['psnr']:.2f}",
                                         f"{r['ssim']:.4f}"]) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    by_step = [plots.Series(r["activation"], r["curve"]["step"], r["curve"]["psnr"]) for r in results]
    by_time = [plots.Series(r["activation"], r["curve"]["seconds"], r["curve"]["psnr"]) for r in results]
    figure = plots.side_by_side([
        plots.line_plot(by_step, f"cameraman {w}x{h}: PSNR against steps", "step", "PSNR (dB)"),
        plots.line_plot(by_time, "PSNR against training time", "seconds", "PSNR (dB)"),
    ])
    plots.save_png(args.out / "bench_image.png", figure, args.overwrite)
    with atomic_write(args.out / "bench_image.md", overwrite=args.overwrite) as tmp:
        tmp.write_text(table)
    with atomic_write(args.out / "bench_image.json", overwrite=args.overwrite) as tmp:
        info = {"image": args.image or "skimage:camera", "size": [w, h], "preset": args.preset,
                "device": str(device), "results": results}
        tmp.write_text(json.dumps(info, indent=1, default=float) + "\n")
    return results


def main(argv: list[str] | None = None) -> int:
    from sdfrecon.errors import InputError

    args = _parse(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see sdfrecon.cli.image.passive_openmp
    try:
        run(args)
    except InputError as err:
        print(f"bench_image: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
