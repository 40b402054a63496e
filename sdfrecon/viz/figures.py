"""Figures of a reconstruction, drawn with matplotlib on its Agg canvas (no display, no
pyplot state): the mesh preview, SDF slices, training curves and side-by-side renders.

Every function returns a :class:`matplotlib.figure.Figure` of a fixed pixel size (the
*_SIZE constants, at 100 dpi); :func:`save_figure` writes it atomically at exactly that size.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from sdfrecon.io.atomic import atomic_write
from sdfrecon.viz.render import VIEWS, Camera, render_views

DPI = 100
PREVIEW_SIZE = (1600, 440)  # pixels: three views and the points panel
SLICES_SIZE = (1500, 470)
TRAINING_SIZE = (1300, 430)
POINT_COLOUR = "#c2185b"  # magenta: apart from the mesh's blue and from RdBu
SLAB_POINT_COLOUR = "#1b7837"  # green: apart from RdBu's red, white and blue and the black contour
PANEL = 400  # rendered pixels per view


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


def new_figure(size: tuple[int, int]) -> Figure:
    """A figure of size (width, height) pixels on an Agg canvas."""
    fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: Path, overwrite: bool = True) -> None:
    """Write the figure as PNG at its own pixel size, atomically."""

    with atomic_write(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


def _image_axes(ax, image: np.ndarray, title: str) -> None:
    ax.imshow(image, interpolation="antialiased")
    ax.set_title(title, fontsize=11, y=1.0)  # a fixed y: no search for clear space (slow)
    ax.set_axis_off()


def _subsample(points: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    if len(points) <= count:
        return points
    return points[np.random.default_rng(seed).choice(len(points), count, replace=False)]


def preview_figure(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray | None = None,
                   title: str = "", views: Sequence[tuple[float, float]] = VIEWS) -> Figure:
    """The mesh (V, 3), (F, 3) shaded from three viewpoints, and a fourth panel with the
    first view faded and the input points (N, 3) drawn over it, all framed alike (the
    camera holds the mesh and the points, so a blob or a missing part shows in both)."""
    pts = np.zeros((0, 3)) if points is None else np.asarray(points, dtype=np.float64)
    camera = Camera.framing([vertices, pts])
    fig = new_figure(PREVIEW_SIZE)
    axes = fig.subplots(1, 4)
    images = render_views(vertices, faces, camera, views[:3], PANEL)
    for ax, image, (az, el) in zip(axes[:3], images, views, strict=False):
        _image_axes(ax, image, f"azimuth {az:g}°, elevation {el:g}°")
    faded = 1.0 - 0.35 * (1.0 - images[0])
    _image_axes(axes[3], faded, f"input points ({len(pts):,})")
    if len(pts):
        az, el = views[0]
        uv, _ = camera.turned(az, el).project(_subsample(pts, 30_000), PANEL)
        axes[3].scatter(uv[:, 0] - 0.5, uv[:, 1] - 0.5, s=0.4, c=POINT_COLOUR, alpha=0.35,
                        linewidths=0, rasterized=True)
        axes[3].set_xlim(-0.5, PANEL - 0.5)
        axes[3].set_ylim(PANEL - 0.5, -0.5)
    fig.suptitle(title or f"{len(vertices):,} vertices, {len(faces):,} faces", fontsize=12)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86, wspace=0.03)
    return fig


def slice_planes(centre: Sequence[float], half_width: float, resolution: int = 256):
    """The three axis-aligned planes through ``centre``: per axis, the world points
    (R*R, 3) of an R x R grid spanning centre +- half_width in the other two axes, and the
    two axes' indices (row axis, column axis) as drawn."""
    t = np.linspace(-half_width, half_width, resolution)
    out = []
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        grid = np.empty((resolution, resolution, 3))
        grid[..., axis] = centre[axis]
        grid[..., u] = centre[u] + t[None, :]  # columns run along u
        grid[..., v] = centre[v] + t[:, None]  # rows run along v (upwards, origin='lower')
        out.append((axis, u, v, grid.reshape(-1, 3)))
    return out


def slices_figure(field: Callable[[np.ndarray], np.ndarray], points: np.ndarray,
                  centre: Sequence[float] | None = None, half_width: float | None = None,
                  resolution: int = 200, slab: float | None = None, title: str = "") -> Figure:
    """Three axis-aligned slices of a signed distance ``field`` (world (N, 3) -> (N,), world
    units) through ``centre`` (default: the centre of the points' bounding box), each
    spanning centre +- half_width (default: 0.6 x the box's longest side, so the cloud
    fits with a margin). Diverging colours centred on 0 (blue inside, red outside), the
    zero level as a black contour, and the points within ``slab`` (default 1 % of the box
    diagonal) of each plane in green."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    low, high = (pts.min(axis=0), pts.max(axis=0)) if len(pts) else (-np.ones(3), np.ones(3))
    centre = np.asarray((low + high) / 2 if centre is None else centre, dtype=np.float64)
    half_width = float(half_width or 0.6 * max(float((high - low).max()), 1e-9))
    slab = float(slab if slab is not None else 0.01 * np.linalg.norm(high - low))
    planes = slice_planes(centre, half_width, resolution)
    values = [np.asarray(field(grid), dtype=np.float64).reshape(resolution, resolution)
              for *_, grid in planes]
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values]) if values else np.zeros(1)
    limit = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-(limit or 1.0), vmax=limit or 1.0)
    fig = new_figure(SLICES_SIZE)
    axes = fig.subplots(1, 3)
    names = "xyz"
    image = None
    for ax, (axis, u, v, _), val in zip(axes, planes, values, strict=True):
        extent = (centre[u] - half_width, centre[u] + half_width,
                  centre[v] - half_width, centre[v] + half_width)
        image = ax.imshow(val, origin="lower", extent=extent, cmap="RdBu_r", norm=norm,
                          interpolation="bilinear")
        t = np.linspace(-half_width, half_width, resolution)
        if np.nanmin(val) < 0 < np.nanmax(val):
            ax.contour(centre[u] + t, centre[v] + t, val, levels=[0.0], colors="black", linewidths=1.4)
        near = pts[np.abs(pts[:, axis] - centre[axis]) <= slab] if len(pts) else pts
        if len(near):
            near = _subsample(near, 20_000)
            ax.scatter(near[:, u], near[:, v], s=2.5, c=SLAB_POINT_COLOUR, linewidths=0, alpha=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_xlabel(names[u])
        ax.set_ylabel(names[v])
        ax.set_title(f"{names[axis]} = {centre[axis]:.4g}  ({len(near):,} points within ±{slab:.2g})",
                     fontsize=10, y=1.0)
    fig.subplots_adjust(left=0.055, right=0.9, bottom=0.12, top=0.86, wspace=0.3)
    cbar = fig.colorbar(image, cax=fig.add_axes((0.915, 0.14, 0.012, 0.70)))
    cbar.set_label("signed distance (input units)")
    fig.suptitle(title or "SDF slices through the cloud's centre (black: zero level)", fontsize=12)
    return fig


def read_loss_log(path: Path) -> dict[str, np.ndarray]:
    """losses.csv (step, seconds, lr, then one column per loss term) -> column -> values."""
    with Path(path).open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return {}
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    data = np.array([[float(x) for x in r] for r in body]) if body else np.zeros((0, len(header)))
    return {name: data[:, i] for i, name in enumerate(header)}


def training_figure(columns: dict[str, np.ndarray], title: str = "") -> Figure:
    """Every loss term against step (log scale; 'total' drawn thicker), and beside it the
    learning rate, from the columns of a loss log (:func:`read_loss_log`)."""
    fig = new_figure(TRAINING_SIZE)
    loss_ax, lr_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    steps = columns.get("step", np.zeros(0))
    terms = [k for k in columns if k not in ("step", "seconds", "lr")]
    for name in terms:
        y = np.where(columns[name] > 0, columns[name], np.nan)
        loss_ax.plot(steps, y, label=name, linewidth=2.2 if name == "total" else 1.3)
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("loss term (weighted)")
    loss_ax.set_title("loss terms", y=1.0)
    loss_ax.grid(True, which="both", alpha=0.25)
    if terms and len(steps):
        loss_ax.legend(fontsize=9, ncol=2)
    if "lr" in columns and len(steps):
        lr_ax.plot(steps, columns["lr"], color="black")
    lr_ax.set_xlabel("step")
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_title("learning rate", y=1.0)
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    lr_ax.grid(True, alpha=0.25)
    if len(steps) == 0:
        loss_ax.text(0.5, 0.5, "no steps logged", transform=loss_ax.transAxes, ha="center")
    fig.suptitle(title or "training", fontsize=12)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12, top=0.85, wspace=0.25)
    return fig


def compare_figure(meshes: Sequence[tuple[str, np.ndarray, np.ndarray]],
                   views: Sequence[tuple[float, float]] = VIEWS[:1], panel: int = PANEL) -> Figure:
    """Meshes (title, vertices (V, 3), faces (F, 3)) side by side, one column each and one
    row per view, all from one camera (the joint bounds), so sizes and positions compare."""
    camera = Camera.framing([v for _, v, _ in meshes])
    cols, rows = len(meshes), len(views)
    fig = new_figure((panel * cols, panel * rows + 40))
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for c, (name, vertices, faces) in enumerate(meshes):
        for r, image in enumerate(render_views(vertices, faces, camera, views, panel)):
            _image_axes(axes[r, c], image, name if r == 0 else "")
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 36 / (panel * rows + 40),
                        wspace=0.0, hspace=0.0)
    return fig
