"""PNG output: images and derivative maps (Pillow), and the figures with axes, labels and
colour bars (matplotlib on its Agg canvas: no display needed). Every file is written
atomically and never replaces an existing one without ``overwrite``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from sdfrecon.viz.figures import save_png, to_uint8  # noqa: F401  (image commands' PNG writer)

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def magnitude_image(magnitude: np.ndarray, scale: float | None = None) -> np.ndarray:
    """A non-negative map (H, W) -> [0, 1], with ``scale`` (default: its 99th percentile) as white."""
    m = np.asarray(magnitude, dtype=np.float64)
    scale = scale if scale is not None else float(np.percentile(m, 99))
    return np.clip(m / max(scale, 1e-12), 0.0, 1.0)


def signed_image(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """A signed map (H, W) -> [0, 1], zero at mid grey and +-scale (default: the 99th
    percentile of |values|) at white and black."""
    v = np.asarray(values, dtype=np.float64)
    scale = scale if scale is not None else float(np.percentile(np.abs(v), 99))
    return np.clip(0.5 + v / (2 * max(scale, 1e-12)), 0.0, 1.0)


@dataclass
class Series:
    """One line of a plot: label, x values, y values (NaN breaks the line)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]


def figure_image(fig) -> Image.Image:
    """A matplotlib figure rasterised at its own pixel size -> RGB Pillow image."""
    fig.canvas.draw()
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")


def _plot_lines(ax, series: Sequence[Series], title: str, xlabel: str, ylabel: str, log_y: bool) -> None:
    drawn = 0
    for i, s in enumerate(series):
        y = np.asarray(s.y, dtype=np.float64)
        if log_y:
            y = np.where(y > 0, y, np.nan)
        if np.isfinite(y).any():
            drawn += 1
        ax.plot(np.asarray(s.x, dtype=np.float64), y, label=s.label, color=COLOURS[i % len(COLOURS)],
                linewidth=1.6, marker="o" if np.isfinite(y).sum() == 1 else None, markersize=3)
    if log_y and drawn:
        ax.set_yscale("log")
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="gray")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.25)
    if drawn:
        ax.legend(fontsize=9)


def line_plot(series: Sequence[Series], title: str, xlabel: str, ylabel: str, log_y: bool = False,
              size: tuple[int, int] = (560, 400)) -> Image.Image:
    """A line plot of ``series`` (axes, ticks, grid, labels, legend; log y optional) as an
    RGB image of ``size`` pixels."""
    from sdfrecon.viz.figures import new_figure

    fig = new_figure(size)
    _plot_lines(fig.add_subplot(), series, title, xlabel, ylabel, log_y)
    fig.tight_layout()
    return figure_image(fig)


def side_by_side(images: Sequence[Image.Image]) -> Image.Image:
    """Images pasted left to right on a white canvas."""
    width = sum(i.width for i in images)
    height = max(i.height for i in images)
    canvas = Image.new("RGB", (width, height), "white")
    x = 0
    for i in images:
        canvas.paste(i, (x, 0))
        x += i.width
    return canvas


def training_curves(history: Sequence[dict[str, float]], title: str, psnr_label: str) -> Image.Image:
    """Loss (log scale) and PSNR against step, side by side, from a training history: one
    1120 x 400 figure."""
    from sdfrecon.viz.figures import new_figure

    steps = [h["step"] for h in history]
    fig = new_figure((1120, 400))
    loss_ax, psnr_ax = fig.subplots(1, 2)
    _plot_lines(loss_ax, [Series("loss", steps, [h["total"] for h in history])],
                f"{title}: loss", "step", "loss", log_y=True)
    _plot_lines(psnr_ax, [Series(psnr_label, steps, [h.get("psnr", float("nan")) for h in history])],
                f"{title}: PSNR", "step", "PSNR (dB)", log_y=False)
    fig.tight_layout()
    return figure_image(fig)


def _panel(fig, ax, image: np.ndarray, title: str, cmap: str | None = None,
           limits: tuple[float, float] | None = None, label: str | None = None) -> None:
    """One image panel; a colour bar (labelled) when it is a map rather than a picture."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2 and cmap is None:
        cmap, limits = "gray", (0.0, 1.0)
    shown = ax.imshow(np.clip(a, 0, 1) if a.ndim == 3 else a, cmap=cmap,
                      vmin=None if limits is None else limits[0], vmax=None if limits is None else limits[1],
                      interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    if label is not None:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).set_label(label)


def fit_figure(original: np.ndarray, fitted: np.ndarray, gradient: np.ndarray, laplacian: np.ndarray,
               scales: tuple[float, float], title: str) -> Image.Image:
    """original (H, W, C), fit, |fit - original| (mean over channels), and the fit's gradient
    magnitude (H, W) and Laplacian (H, W) on the original's scales, with colour bars: a
    1500 x 360 figure."""
    from sdfrecon.viz.figures import new_figure

    fig = new_figure((1500, 360))
    axes = fig.subplots(1, 5)
    error = np.abs(np.clip(fitted, 0, 1) - original).mean(axis=2)
    _panel(fig, axes[0], original, "original")
    _panel(fig, axes[1], fitted, "fit")
    _panel(fig, axes[2], error, "|fit - original|", "magma", (0.0, max(float(np.percentile(error, 99)), 1e-6)),
           "absolute error")
    _panel(fig, axes[3], gradient, "fit: |gradient|", "viridis", (0.0, scales[0]), "per unit of x")
    _panel(fig, axes[4], laplacian, "fit: Laplacian", "RdBu_r", (-scales[1], scales[1]), "per unit of x^2")
    fig.suptitle(title)
    fig.subplots_adjust(left=0.01, right=0.97, bottom=0.03, top=0.82, wspace=0.35)
    return figure_image(fig)


def blend_figure(a: np.ndarray, b: np.ndarray, direct: np.ndarray, blended: np.ndarray,
                 mask: np.ndarray | None, title: str) -> Image.Image:
    """A, B, (the mask,) the direct mix of the pixels and the gradient-domain blend, in a row."""
    from sdfrecon.viz.figures import new_figure

    panels = [(a, "A"), (b, "B")] + ([(mask, "mask")] if mask is not None else []) + [
        (direct, "direct mix of the pixels"), (blended, "gradient-domain blend")]
    fig = new_figure((300 * len(panels), 360))
    for ax, (image, name) in zip(fig.subplots(1, len(panels)), panels, strict=True):
        _panel(fig, ax, image, name)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.03, top=0.82, wspace=0.08)
    return figure_image(fig)
