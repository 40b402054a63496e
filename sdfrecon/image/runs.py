"""The image pipeline behind fit-image, blend and render-image: image file(s) -> target ->
fitted network -> PNGs, losses.csv, metrics.json and model.pt in one folder.

Every output is checked before any work is done (an existing file is never replaced
without ``overwrite``) and written atomically. No marching cubes and no point clouds here:
images share only the network, its derivatives and the training loop with the SDF stage.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sdfrecon.errors import InputError
from sdfrecon.image.config import ImageConfig
from sdfrecon.io.atomic import write_json

log = logging.getLogger("sdfrecon")

FIT_FILES = ("fit.png", "fit_gradient.png", "fit_laplacian.png", "original.png",
             "original_gradient.png", "original_laplacian.png", "figure.png", "curves.png",
             "losses.csv", "metrics.json", "model.pt")
BLEND_FILES = ("blend.png", "a.png", "b.png", "mask.png", "direct.png", "figure.png", "curves.png",
               "losses.csv", "metrics.json", "model.pt")


def _check_outputs(folder: Path, names: tuple[str, ...], overwrite: bool) -> None:
    from sdfrecon.io.atomic import check_writable

    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is a file; the output must be a folder")
    for name in names:
        check_writable(folder / name, overwrite)


class _AtomicLog:
    """A loss-log path for the training loop: a hidden file in the folder while training,
    renamed onto the real name (atomically, respecting overwrite) when :meth:`commit` runs."""

    def __init__(self, path: Path):
        import secrets

        self.path = path
        self.tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")

    def commit(self, overwrite: bool) -> None:
        from sdfrecon.io import atomic_write

        if not self.tmp.exists():
            return
        with atomic_write(self.path, overwrite=overwrite) as tmp:
            tmp.write_bytes(self.tmp.read_bytes())
        self.tmp.unlink()

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


def _finite(value: float | None, digits: int = 4) -> float | None:
    import math

    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _derivative_pngs(folder: Path, prefix: str, grad, lap, scales: tuple[float, float],
                     overwrite: bool) -> None:
    from sdfrecon.image import plots
    from sdfrecon.image.data import gradient_magnitude

    plots.save_png(folder / f"{prefix}_gradient.png", plots.magnitude_image(gradient_magnitude(grad), scales[0]),
                   overwrite)
    plots.save_png(folder / f"{prefix}_laplacian.png", plots.signed_image(lap, scales[1]), overwrite)


def _train_and_save(target, config: ImageConfig, folder: Path, overwrite: bool, source: str | None,
                    title: str, result_name: str, started: float):
    """Fit, then write the result image first (its time is reported), the curves and the log;
    returns (model, state, seconds to the result image, rendered image)."""
    from sdfrecon.image import plots
    from sdfrecon.image.fit import fit_field, render
    from sdfrecon.sdf.train import resolve_device

    device = resolve_device(config.train.device)
    folder.mkdir(parents=True, exist_ok=True)
    losses = _AtomicLog(folder / "losses.csv")
    try:
        log.info("fitting a %s network (%d x %d) to the %s of a %dx%d image on %s", config.model.activation,
                 config.model.hidden_features, config.model.hidden_layers + 1, target.kind,
                 target.width, target.height, device)
        model, state = fit_field(target, config, device, losses.tmp, folder / "model.pt", source, title)
        fitted = render(model, target.width, target.height, device=device)
        plots.save_png(folder / result_name, fitted, overwrite)
        to_result = time.perf_counter() - started
        losses.commit(overwrite)
    finally:
        losses.discard()
    psnr_label = "PSNR (batch)" if target.kind == "pixels" else "PSNR (whole image, offset fitted)"
    plots.save_png(folder / "curves.png", plots.training_curves(state.history, title, psnr_label), overwrite)
    return model, state, to_result, fitted


def run_fit_image(source: str | None, folder: Path, config: ImageConfig, size: str | None,
                      grayscale: bool, overwrite: bool) -> dict:
    """``sdfrecon fit-image``: fit, then write the PNGs, metrics.json and model.pt into folder."""
    started = time.perf_counter()
    import numpy as np

    from sdfrecon.image import data, plots
    from sdfrecon.image.fit import image_target, render_derivatives
    from sdfrecon.image.metrics import OFFSET_NOTE, image_metrics, offset_field

    _check_outputs(folder, FIT_FILES, overwrite)
    image = data.load_image(source, data.parse_size(size) if size else None, grayscale)
    h, w, c = image.shape
    target = image_target(image, config.fit.target)
    model, state, to_fit_png, fitted = _train_and_save(
        target, config, folder, overwrite, source or data.DEFAULT_IMAGE,
        f"{config.model.activation} from {config.fit.target}", "fit.png", started)
    metrics = image_metrics(fitted, image)
    raw = image_metrics(fitted - offset_field(data.pixel_coordinates(h, w), model.offset).reshape(h, w, c), image)
    # Derivative maps: the original's by finite differences, the fit's by autograd, same scales.
    orig_grad = data.sobel_gradient(image).mean(axis=2)
    orig_lap = data.laplacian(image).mean(axis=2)
    scales = (float(np.percentile(data.gradient_magnitude(orig_grad), 99)) or 1.0,
              float(np.percentile(np.abs(orig_lap), 99)) or 1.0)
    plots.save_png(folder / "original.png", image, overwrite)
    _derivative_pngs(folder, "original", orig_grad, orig_lap, scales, overwrite)
    fit_grad, fit_lap = render_derivatives(model, w, h)
    _derivative_pngs(folder, "fit", fit_grad, fit_lap, scales, overwrite)
    plots.save_png(folder / "figure.png", plots.fit_figure(
        image, fitted, data.gradient_magnitude(fit_grad), fit_lap, scales,
        f"{config.model.activation} fitted to the {config.fit.target} of "
        f"{source or data.DEFAULT_IMAGE} ({w}x{h}): PSNR {metrics['psnr']:.2f} dB"), overwrite)
    summary = {
        "image": source or f"{data.DEFAULT_IMAGE} resampled to {w}x{h}",
        "size": [w, h], "channels": c, "target": config.fit.target,
        "activation": config.model.activation,
        "psnr": _finite(metrics["psnr"]), "ssim": _finite(metrics["ssim"]),
        "note": OFFSET_NOTE[config.fit.target] + "; PSNR (dB, peak 1) and SSIM of fit.png's values "
                "(clipped to [0, 1]) against the original at the fitted size",
        "offset": {"coefficients": model.offset.round(6).tolist(), "basis": ["1", "x", "y"]},
        "psnr_without_offset": _finite(raw["psnr"]) if config.fit.target != "pixels" else None,
        "steps": state.step, "train_seconds": round(state.elapsed, 2),
        "seconds_to_fit_png": round(to_fit_png, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "config": _config_dict(model.config),
    }
    write_json(folder / "metrics.json", summary, overwrite, allow_nan=False)
    return summary


def _config_dict(config: ImageConfig) -> dict:
    from sdfrecon.config import to_dict

    return to_dict(config)


def _load_mask(source: str, size: tuple[int, int]):
    from sdfrecon.image import data

    return data.load_image(source, size, grayscale=True)[..., 0]


def run_blend(a: str, b: str, folder: Path, weights: str, mask: str | None, size: str,
                  grayscale: bool, config: ImageConfig, overwrite: bool) -> dict:
    """``sdfrecon blend``: Poisson blending of a and b by fitting their mixed gradients."""
    started = time.perf_counter()
    import numpy as np

    from sdfrecon.image import data, plots
    from sdfrecon.image.fit import blend_target
    from sdfrecon.image.metrics import image_metrics

    _check_outputs(folder, BLEND_FILES, overwrite)
    w = data.parse_floats(weights, 2, "--weights")
    wh = data.parse_size(size)
    img_a = data.load_image(a, wh, grayscale)
    img_b = data.load_image(b, wh, grayscale)
    if img_a.shape[2] != img_b.shape[2]:  # one grey, one colour: blend in colour
        img_a, img_b = (np.repeat(i, 3, axis=2) if i.shape[2] == 1 else i for i in (img_a, img_b))
    m = _load_mask(mask, wh) if mask else None
    target = blend_target(img_a, img_b, w, m)
    model, state, to_png, fitted = _train_and_save(target, config, folder, overwrite, f"{a} + {b}",
                                                   "blend", "blend.png", started)
    plots.save_png(folder / "a.png", img_a, overwrite)
    plots.save_png(folder / "b.png", img_b, overwrite)
    plots.save_png(folder / "direct.png", target.reference, overwrite)
    if m is not None:
        plots.save_png(folder / "mask.png", m, overwrite)
    metrics = image_metrics(fitted, target.reference)
    plots.save_png(folder / "figure.png", plots.blend_figure(
        img_a, img_b, target.reference, fitted, m,
        f"{a} + {b}, weights {w[0]:g}, {w[1]:g}: PSNR against the direct mix {metrics['psnr']:.2f} dB"),
        overwrite)
    summary = {
        "a": a, "b": b, "mask": mask, "weights": list(w), "size": list(wh),
        "gradient": "m (w_a grad A + w_b grad B) + (1 - m) grad B (m = 1 without a mask)",
        "note": "blend.png is fitted to the mixed gradient; its constant (per channel) was fitted "
                "by least squares to direct.png, the same mix of the pixels; PSNR/SSIM compare the two",
        "psnr_vs_direct": _finite(metrics["psnr"]), "ssim_vs_direct": _finite(metrics["ssim"]),
        "offset": model.offset.round(6).tolist(), "steps": state.step,
        "train_seconds": round(state.elapsed, 2), "seconds_to_blend_png": round(to_png, 2),
        "total_seconds": round(time.perf_counter() - started, 2), "config": _config_dict(model.config),
    }
    write_json(folder / "metrics.json", summary, overwrite, allow_nan=False)
    return summary


def run_render_image(model_path: Path, output: Path, size: str | None, range_: str,
                         device: str, overwrite: bool) -> tuple[int, int]:
    """``sdfrecon render-image``: sample a fitted image on a WxH grid over a range -> PNG."""
    from sdfrecon.image import data, plots
    from sdfrecon.image.fit import ImageModel, render
    from sdfrecon.io.atomic import check_writable
    from sdfrecon.sdf.train import resolve_device

    if output.suffix.lower() != ".png":
        raise InputError(output, f"unknown image format '{output.suffix}' (render-image writes .png)")
    check_writable(output, overwrite)
    x0, x1, y0, y1 = data.parse_floats(range_, 4, "--range")
    if x0 == x1 or y0 == y1:
        raise InputError("--range", f"'{range_}' is empty (X0 = X1 or Y0 = Y1)")
    dev = resolve_device(device)
    model = ImageModel.load(model_path)
    model.network.to(dev)
    w, h = data.parse_size(size) if size else (model.width, model.height)
    plots.save_png(output, render(model, w, h, (x0, x1), (y0, y1), dev), overwrite)
    return w, h
