"""Benchmark of the image hypernetwork on the held-out subjects of its image family: PSNR and
SSIM at 10, 100 and 1000 observed pixels for the hypernetwork, griddata nearest and linear
interpolation, the training set's mean image and the linear-Gaussian prior, and the SIREN
paper's figure (a few held-out faces: the observed pixels and each method's completion, one
row per context size).

    PYTHONPATH=. python scripts/bench/hyper.py --model out/hyper --figure docs/figures/hyper.png

Without --model it first trains one with the defaults into out/hyper (about 20 minutes on a
2-core CPU). Every method gets the same masks (one per image and count, seeded by the
image's place and the count) and keeps the observed pixels as they are. The held-out images
are those the model's own split held out (its model.pt lists them). Prints a markdown table
and writes every number to --json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

METHODS = ("hypernetwork", "linear-Gaussian prior", "mean face", "griddata linear", "griddata nearest")


def completions(model, images: np.ndarray, masks: np.ndarray, train: np.ndarray, prior) -> dict[str, np.ndarray]:
    """Each method's completions (N, S, S) of images (N, S, S) from masks (N, S, S)."""
    from sdfrecon.image.hyper import baselines
    from sdfrecon.image.hyper.complete import complete_batch

    out = {"hypernetwork": complete_batch(model.network, images, masks)}
    out["linear-Gaussian prior"] = np.stack([prior.complete(x, m) for x, m in zip(images, masks, strict=True)])
    out["mean face"] = np.broadcast_to(train.mean(0), images.shape)
    for method in ("linear", "nearest"):
        out[f"griddata {method}"] = np.stack([baselines.interpolation(x, m, method)
                                              for x, m in zip(images, masks, strict=True)])
    return {k: np.where(masks, images, v).astype(np.float32) for k, v in out.items()}


def figure(path: Path, images: np.ndarray, rows: list[tuple[int, np.ndarray, dict[str, np.ndarray]]],
           faces: list[int]) -> None:
    """One row per count; per face: the observed pixels, each method's completion, the truth."""
    from sdfrecon.viz.figures import new_figure, save_figure

    columns = ["observed", *METHODS, "truth"]
    labels = {"linear-Gaussian prior": "Gaussian prior", "griddata linear": "linear",
              "griddata nearest": "nearest"}
    n_cols = len(faces) * len(columns)
    fig = new_figure((n_cols * 62 + 40, len(rows) * 72 + 40))
    for r, (count, masks, done) in enumerate(rows):
        for f, i in enumerate(faces):
            panels = [np.where(masks[i], images[i], 0.5)] + [done[m][i] for m in METHODS] + [images[i]]
            for c, (panel, name) in enumerate(zip(panels, columns, strict=True)):
                ax = fig.add_subplot(len(rows), n_cols, r * n_cols + f * len(columns) + c + 1)
                ax.imshow(panel, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(labels.get(name, name), fontsize=6)
                if f == 0 and c == 0:
                    ax.set_ylabel(f"{count} pixels", fontsize=7)
    fig.subplots_adjust(left=0.02, right=0.995, top=0.92, bottom=0.01, wspace=0.05, hspace=0.05)
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder of 'sdfrecon hyper train' (default: train one)")
    parser.add_argument("--train-into", type=Path, default=Path("out/hyper"),
                        help="where to train the model when --model is not given")
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/hyper.png"))
    parser.add_argument("--faces", type=int, nargs="+", default=[0, 25, 50],
                        help="indices of the held-out images drawn in the figure")
    parser.add_argument("--json", type=Path, default=Path("out/bench_hyper.json"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sdfrecon.image.hyper import baselines
    from sdfrecon.image.hyper import data as hyper_data
    from sdfrecon.image.hyper.config import HyperConfig
    from sdfrecon.image.hyper.train import HyperModel, train_hyper
    from sdfrecon.image.metrics import image_metrics

    if args.model is None:
        train_hyper(HyperConfig(), args.train_into, overwrite=True)
        args.model = args.train_into
    model = HyperModel.load(args.model)
    size = model.config.data.size
    family = hyper_data.load_family(model.config.data.images, size)
    index = {f: i for i, f in enumerate(family.files)}
    train = np.array([index[f] for f in model.train_files])
    held = np.array([index[f] for f in model.validation_files])
    assert not {family.subjects[i] for i in train} & {family.subjects[i] for i in held}
    images = family.images[held]
    started = time.perf_counter()
    prior = baselines.fit_gaussian(family.images[train], [family.subjects[i] for i in train],
                                   tuple(args.counts))
    print(f"linear-Gaussian prior: noise {prior.noises} (fitted in {time.perf_counter() - started:.0f} s)")
    results, rows = {}, []
    for count in args.counts:
        masks = np.stack([hyper_data.random_mask(size, size, count, np.random.default_rng([args.seed, i, count]))
                          for i in range(len(images))])
        done = completions(model, images, masks, family.images[train], prior)
        rows.append((count, masks, done))
        for method, out in done.items():
            scores = [image_metrics(o[..., None], x[..., None]) for o, x in zip(out, images, strict=True)]
            results.setdefault(method, {})[count] = {
                "psnr": float(np.mean([s["psnr"] for s in scores])),
                "ssim": float(np.mean([s["ssim"] for s in scores]))}
    head = " | ".join(f"PSNR {c} | SSIM {c}" for c in args.counts)
    print(f"\n{len(images)} held-out images ({len(set(family.subjects[i] for i in held))} subjects), "
          f"{size}x{size}, {model.step} training steps\n")
    print(f"| method | {head} |")
    print("|---|" + "---:|" * (2 * len(args.counts)))
    for method in METHODS:
        cells = " | ".join(f"{results[method][c]['psnr']:.2f} | {results[method][c]['ssim']:.3f}" for c in args.counts)
        print(f"| {method} | {cells} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": str(args.model), "steps": model.step, "images": len(images),
                                     "results": results}, indent=2) + "\n")
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    figure(args.figure, images, rows, [i for i in args.faces if i < len(images)])
    print(f"\nwrote {args.figure} and {args.json}")


if __name__ == "__main__":
    main()
