"""``sdfrecon hyper complete`` as a library call: read the model folder, the image (centre-
cropped and resized to the model's size) and the mask (or draw one), complete, and write
completed.png, completed_4x.png, observed.png and metrics.json atomically. Every input is
checked before any work is done."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from sdfrecon.errors import InputError

COMPLETE_FILES = ("completed.png", "completed_4x.png", "observed.png", "metrics.json")
UPSAMPLE = 4
"""completed_4x.png: the generated SIREN sampled at this many times the model's size."""
OBSERVED_BACKGROUND = 0.5
"""Grey level of the unobserved pixels in observed.png."""


def parse_keep(text: str, total: int) -> int:
    """--keep as a number of observed pixels of ``total``: a count ('100'), a share ('0.1',
    any number with a point or below 1) or a percentage ('10%'); InputError when it is none
    of these or out of range (a share or percentage must be above 0 and at most all pixels)."""
    t = str(text).strip()
    percent = t.endswith("%")
    try:
        value = float(t[:-1] if percent else t)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError("--keep", f"'{text}' is not a count, a share or a percentage "
                                   "(e.g. 6554, 0.1 or 10%)")
    if percent or "." in t or "e" in t.lower() or value < 1:
        share = value / 100 if percent else value
        if not 0 < share <= 1:
            what = "a percentage must be above 0% and at most 100%" if percent else \
                "a share must be above 0 and at most 1"
            raise InputError("--keep", f"'{text}' is out of range: {what}")
        return max(1, int(round(share * total)))
    if value != int(value) or value > total:
        raise InputError("--keep", f"'{text}' is out of range: the image has {total} pixels, "
                                   f"so a count must be 1 to {total}")
    return int(value)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def complete_files(model_dir: Path, source: str, out: Path, keep: str | None = None,
                   mask_source: str | None = None, seed: int = 0, overwrite: bool = False) -> dict:
    """Complete ``source`` from ``keep`` random pixels (or those of ``mask_source``, an image
    of the model's size) with the hypernetwork in ``model_dir``; writes the four files into
    ``out`` and returns metrics.json's dict."""
    started = time.perf_counter()
    from sdfrecon.image.hyper import baselines
    from sdfrecon.image.hyper import data as hyper_data
    from sdfrecon.image.hyper.complete import complete
    from sdfrecon.image.hyper.train import HyperModel
    from sdfrecon.image.metrics import image_metrics
    from sdfrecon.io import atomic_write
    from sdfrecon.io.atomic import check_writable
    from sdfrecon.viz.figures import save_png

    if (keep is None) == (mask_source is None):
        raise InputError("--keep", "give either --keep K or --mask MASK.png (exactly one of them)")
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; the output must be a folder")
    for name in COMPLETE_FILES:
        check_writable(out / name, overwrite)
    model = HyperModel.load(model_dir)
    size = model.config.data.size
    image = hyper_data.load_square(source, size)
    if mask_source is not None:
        mask = hyper_data.load_mask(mask_source, (size, size))
    else:
        mask = hyper_data.random_mask(size, size, parse_keep(keep, size * size), np.random.default_rng(seed))
    loaded = time.perf_counter()
    result = complete(model.network, image, mask, UPSAMPLE)
    seconds = time.perf_counter() - loaded
    metrics = image_metrics(result.completed[..., None], image[..., None])
    linear = image_metrics(np.where(mask, image, baselines.interpolation(image, mask, "linear"))[..., None],
                           image[..., None])
    save_png(out / "completed.png", result.completed, overwrite)
    save_png(out / "completed_4x.png", result.upsampled, overwrite)
    save_png(out / "observed.png", np.where(mask, image, OBSERVED_BACKGROUND), overwrite)
    summary = {
        "image": str(source), "size": size, "model": str(model_dir),
        "observed": int(mask.sum()), "observed_share": round(float(mask.mean()), 6),
        "mask": mask_source or f"{int(mask.sum())} pixels drawn at random (seed {seed})",
        "psnr": _round(metrics["psnr"]), "ssim": _round(metrics["ssim"]),
        "linear_psnr": _round(linear["psnr"]), "linear_ssim": _round(linear["ssim"]),
        "note": f"the image centre-cropped to a square, resized to {size}x{size} and made grey; PSNR (dB, "
                "peak 1) and SSIM of completed.png (observed pixels kept as they are) against it; linear_*: "
                "scipy griddata linear of the same pixels",
        "complete_seconds": round(seconds, 3), "total_seconds": round(time.perf_counter() - started, 2),
    }
    with atomic_write(out / "metrics.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
