"""The pictures a reconstruction leaves in its run folder: preview.png, sdf_slices.png and
training.png (see :mod:`sdfrecon.viz.figures`), with the seconds each cost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PREVIEW_FILES = ("preview.png", "sdf_slices.png", "training.png")


def model_field(model, device, chunk_size: int = 16384) -> Callable[[np.ndarray], np.ndarray]:
    """The signed distance of a trained :class:`~sdfrecon.sdf.fit.SdfModel` in the input's
    units: world points (N, 3) -> (N,) (normalised distance / scale)."""
    from sdfrecon.sdf.extract import evaluate, field_evaluator

    network = model.network.to(device).eval()
    fast = field_evaluator(network)
    norm = model.normalization

    def field(points: np.ndarray) -> np.ndarray:
        unit = norm.to_unit(points).astype(np.float32)
        return evaluate(fast, unit, device, chunk_size).astype(np.float64) / norm.scale

    return field


def write_previews(run_dir: Path, vertices: np.ndarray, faces: np.ndarray, points: np.ndarray,
                   field: Callable[[np.ndarray], np.ndarray], loss_log: Path | None,
                   name: str = "") -> dict[str, float]:
    """Write the three pictures into run_dir (replacing earlier ones); returns the seconds
    each took, keyed by file name. vertices (V, 3) and points (N, 3) in input units."""
    from sdfrecon.viz.figures import (
        preview_figure,
        read_loss_log,
        save_figure,
        slices_figure,
        training_figure,
    )

    seconds = {}
    t = time.perf_counter()
    save_figure(preview_figure(vertices, faces, points, f"{name}: {len(vertices):,} vertices, "
                               f"{len(faces):,} faces".lstrip(": ")), run_dir / "preview.png")
    seconds["preview.png"] = time.perf_counter() - t
    t = time.perf_counter()
    save_figure(slices_figure(field, points, title=f"{name}: SDF slices through the cloud's "
                              "centre (black: zero level)".lstrip(": ")), run_dir / "sdf_slices.png")
    seconds["sdf_slices.png"] = time.perf_counter() - t
    if loss_log is not None and loss_log.is_file():
        t = time.perf_counter()
        save_figure(training_figure(read_loss_log(loss_log), f"{name}: training".lstrip(": ")),
                    run_dir / "training.png")
        seconds["training.png"] = time.perf_counter() - t
    return {k: round(v, 3) for k, v in seconds.items()}
