"""PNG output: images, derivative maps and line plots, drawn with Pillow (which
scikit-image already depends on), so no plotting library is needed. Every file is written
atomically and never replaces an existing one without ``overwrite``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sdfrecon.io.atomic import atomic_write

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float (H, W), (H, W, 1) or (H, W, 3) in [0, 1] (clipped) -> uint8 (H, W) or (H, W, 3)."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    a = np.nan_to_num(a, nan=0.0)
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def save_png(path: Path, image: np.ndarray | Image.Image, overwrite: bool = False) -> None:
    """Write a float image in [0, 1] (or a Pillow image) as an 8-bit PNG, atomically."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image))
    with atomic_write(path, overwrite=overwrite) as tmp:
        pil.save(tmp, format="PNG")


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


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks, t = [], start
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.0e}"
    return f"{v:g}"


def line_plot(series: Sequence[Series], title: str, xlabel: str, ylabel: str, log_y: bool = False,
              size: tuple[int, int] = (560, 400)) -> Image.Image:
    """A line plot of ``series`` with axes, ticks, grid, labels and a legend (log y optional)."""
    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    small, big = _font(12), _font(14)
    left, right, top, bottom = 62, 14, 30, 46
    xs = [float(v) for s in series for v in s.x]
    ys = [float(v) for s in series for v in s.y if math.isfinite(float(v)) and (not log_y or float(v) > 0)]
    draw.text((width / 2, 8), title, fill="black", font=big, anchor="mt")
    draw.text((left + (width - left - right) / 2, height - 6), xlabel, fill="black", font=small, anchor="mb")
    ylabel_img = Image.new("RGB", (height - top - bottom, 16), "white")
    ImageDraw.Draw(ylabel_img).text(((height - top - bottom) / 2, 8), ylabel, fill="black", font=small, anchor="mm")
    img.paste(ylabel_img.rotate(90, expand=True), (2, top))
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    draw.rectangle((x0, y1, x1, y0), outline="black")
    if not xs or not ys:
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), "no data", fill="gray", font=small, anchor="mm")
        return img
    xlo, xhi = min(xs), max(xs)
    if xhi <= xlo:
        xhi = xlo + 1
    tf = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    ylo, yhi = tf(min(ys)), tf(max(ys))
    pad = 0.05 * (yhi - ylo) if yhi > ylo else 0.5
    ylo, yhi = ylo - pad, yhi + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return (x0 + (x - xlo) / (xhi - xlo) * (x1 - x0), y0 - (tf(y) - ylo) / (yhi - ylo) * (y0 - y1))

    for t in _nice_ticks(xlo, xhi):
        u = x0 + (t - xlo) / (xhi - xlo) * (x1 - x0)
        draw.line((u, y0, u, y1), fill="#e6e6e6")
        draw.line((u, y0, u, y0 + 4), fill="black")
        draw.text((u, y0 + 6), _fmt(t), fill="black", font=small, anchor="mt")
    yticks = ([10.0 ** k for k in range(math.ceil(ylo), math.floor(yhi) + 1)] if log_y
              else _nice_ticks(ylo, yhi))
    if log_y and len(yticks) < 2:
        yticks = [10 ** v for v in _nice_ticks(ylo, yhi, 4)]
    for t in yticks:
        v = y0 - (tf(t) - ylo) / (yhi - ylo) * (y0 - y1)
        draw.line((x0, v, x1, v), fill="#e6e6e6")
        draw.line((x0 - 4, v, x0, v), fill="black")
        draw.text((x0 - 6, v), _fmt(t), fill="black", font=small, anchor="rm")
    draw.rectangle((x0, y1, x1, y0), outline="black")
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        run: list[tuple[float, float]] = []
        for x, y in zip(s.x, s.y, strict=True):
            x, y = float(x), float(y)
            if math.isfinite(y) and (not log_y or y > 0):
                run.append(px(x, y))
                continue
            if len(run) > 1:
                draw.line(run, fill=colour, width=2)
            run = []
        if len(run) > 1:
            draw.line(run, fill=colour, width=2)
        elif len(run) == 1:
            draw.ellipse((run[0][0] - 2, run[0][1] - 2, run[0][0] + 2, run[0][1] + 2), fill=colour)
        ly = y1 + 8 + 16 * i
        draw.line((x0 + 10, ly + 7, x0 + 30, ly + 7), fill=colour, width=3)
        draw.text((x0 + 35, ly), s.label, fill="black", font=small)
    return img


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
    """Loss (log scale) and PSNR against step, side by side, from a training history."""
    steps = [h["step"] for h in history]
    loss = line_plot([Series("loss", steps, [h["total"] for h in history])],
                     f"{title}: loss", "step", "loss", log_y=True)
    psnr = line_plot([Series(psnr_label, steps, [h.get("psnr", float("nan")) for h in history])],
                     f"{title}: PSNR", "step", "PSNR (dB)")
    return side_by_side([loss, psnr])
