"""Benchmark of the image hypernetwork on the held-out images: PSNR and SSIM against the
observed share of pixels for the hypernetwork (with and without test-time fitting), a SIREN
fitted to the observed pixels alone, and scipy griddata linear, cubic and nearest.

    PYTHONPATH=. python scripts/bench/hyper.py --model out/hyper --plot docs/hyper_bench.png

prints a markdown table (mean over the images, and per image at 10 %) and writes the plot
and a JSON file of every number beside it. Each image and share gets one random mask
(seeded by the image's place in the list and the share's place in --shares), shared by
every method. To use several cores, run one process per image (--images X --plot
out/X.png, each with the image's --index) and then --merge their JSON files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def run(model_dir: Path, shares: list[float], sources: list[str], fit_steps: list[int],
        ensembles: list[int], siren_steps: int, seed: int, first_index: int = 0,
        methods: tuple[str, ...] = ("linear", "cubic", "nearest", "siren")) -> list[dict]:
    import dataclasses

    from sdfrecon.image.hyper import baselines as hyper_baselines
    from sdfrecon.image.hyper import data as hyper_data
    from sdfrecon.image.hyper.complete import CompleteConfig, complete
    from sdfrecon.image.hyper.train import HyperModel
    from sdfrecon.image.metrics import image_metrics

    model = HyperModel.load(model_dir) if model_dir is not None else None
    siren_train = dataclasses.replace(hyper_baselines.SIREN_TRAIN, steps=siren_steps)
    rows = []
    for i, source in enumerate(sources, start=first_index):
        image = hyper_data.load_grey(source)
        name = Path(source).stem if not source.startswith("skimage:") else source
        for j, share in enumerate(shares):
            mask = hyper_data.random_mask(*image.shape, hyper_data.observed_count(share, image.size),
                                          np.random.default_rng([seed, i, j]))
            results: dict[str, tuple[np.ndarray, float]] = {}
            variants = [(steps, 1) for steps in fit_steps] + [(0, e) for e in ensembles if e > 1]
            variants = variants if model is not None else []
            for steps, ensemble in variants:
                t = time.perf_counter()
                out = complete(model.network, image, mask,
                               CompleteConfig(fit_steps=steps, ensemble=ensemble, render_2x=False))
                label = "hypernetwork" + (f" + {steps} fit steps" if steps else "") + (
                    f" x{ensemble} symmetries" if ensemble > 1 else "")
                results[label] = (out.completed, time.perf_counter() - t)
            for method in (m for m in methods if m != "siren"):
                t = time.perf_counter()
                results[f"griddata {method}"] = (hyper_baselines.interpolation(image, mask, method),
                                                 time.perf_counter() - t)
            if siren_steps > 0 and "siren" in methods:
                t = time.perf_counter()
                results["SIREN on the observed pixels"] = (
                    hyper_baselines.siren_on_observed(image, mask, config=siren_train), time.perf_counter() - t)
            for method, (completed, seconds) in results.items():
                m = image_metrics(completed[..., None], image[..., None])
                rows.append({"image": name, "share": share, "method": method, "psnr": m["psnr"],
                             "ssim": m["ssim"], "seconds": seconds})
            print(f"{name} {share:.0%}: " + ", ".join(
                f"{r['method']} {r['psnr']:.2f}" for r in rows if r["image"] == name and r["share"] == share),
                flush=True)
    return rows


def table(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    shares = sorted({r["share"] for r in rows})
    lines = ["| observed | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for share in shares:
        cells = []
        for method in methods:
            sel = [r for r in rows if r["share"] == share and r["method"] == method]
            cells.append(f"{np.mean([r['psnr'] for r in sel]):.2f} / {np.mean([r['ssim'] for r in sel]):.3f}")
        lines.append(f"| {share:.0%} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Mean seconds per image: " + ", ".join(
        f"{m} {np.mean([r['seconds'] for r in rows if r['method'] == m]):.2f}" for m in methods))
    if 0.1 in shares:
        images = list(dict.fromkeys(r["image"] for r in rows))
        lines += ["", "PSNR (dB) per image at 10 % observed:", "",
                  "| image | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
        for image in images:
            cells = [f"{r['psnr']:.2f}" for m in methods for r in rows
                     if r["image"] == image and r["share"] == 0.1 and r["method"] == m]
            lines.append(f"| {image} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(dict.fromkeys(r["method"] for r in rows))
    shares = sorted({r["share"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in methods:
        for ax, key in zip(axes, ("psnr", "ssim"), strict=True):
            ys = [np.mean([r[key] for r in rows if r["share"] == s and r["method"] == method]) for s in shares]
            ax.plot([100 * s for s in shares], ys, marker="o", label=method)
    for ax, label in zip(axes, ("PSNR (dB)", "SSIM"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("observed pixels (%)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Held-out 256x256 grey images: completion from a random share of the pixels")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", default="linear,cubic,nearest,siren",
                        help="baselines to run (griddata methods and siren; '' for none)")
    parser.add_argument("--model", type=Path, help="model folder of `sdfrecon hyper train`")
    parser.add_argument("--shares", default="0.01,0.05,0.1,0.25,0.5")
    parser.add_argument("--images", default=None, help="comma-separated sources (default: the validation split)")
    parser.add_argument("--fit-steps", default="0,20", help="test-time fitting steps to compare (0: none)")
    parser.add_argument("--ensembles", default="8", help="symmetry ensembles to compare (1: none)")
    parser.add_argument("--siren-steps", type=int, default=200, help="steps of the per-image SIREN (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index", type=int, default=0, help="place of the first image in the full list (masks)")
    parser.add_argument("--plot", type=Path, default=Path("docs/hyper_bench.png"))
    parser.add_argument("--merge", default=None,
                        help="comma-separated JSON files of earlier runs (one per image, say, run in "
                             "parallel): table and plot of their rows together, nothing run")
    args = parser.parse_args()
    if args.merge:
        rows = [r for f in args.merge.split(",") for r in json.loads(Path(f).read_text())]
        print(table(rows))
        plot(rows, args.plot)
        args.plot.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
        return
    import torch

    from sdfrecon.image.hyper import data as hyper_data

    torch.set_num_threads(1)
    sources = args.images.split(",") if args.images else hyper_data.validation_sources()
    rows = run(args.model, [float(s) for s in args.shares.split(",")], sources,
               [int(s) for s in args.fit_steps.split(",")], [int(s) for s in args.ensembles.split(",")],
               args.siren_steps, args.seed, args.index,
               tuple(m for m in args.baselines.split(",") if m))
    print()
    print(table(rows))
    plot(rows, args.plot)
    args.plot.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
