"""The extraction grid over [-1, 1]^3 and evaluating a field on it.

Grid convention: R points per axis at x_i = -1 + i * h, h = 2 / (R - 1), volume[i, j, k] =
f(x_i, y_j, z_k) (``indexing='ij'``), so marching-cubes vertex (i, j, k) * h - 1 is exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

FieldFn = Callable[[torch.Tensor], torch.Tensor]
CORNERS = np.array(list(itertools.product((0, 1), repeat=3)), dtype=np.int64)
"""The 8 corners of a unit cube, (8, 3)."""


@dataclass
class GridStats:
    """How much of the grid was evaluated: ``evaluated`` network calls of ``total`` points,
    and where the time went (seconds)."""

    resolution: int
    evaluated: int
    total: int
    grid_seconds: float = 0.0
    marching_cubes_seconds: float = 0.0


def grid_coordinates(indices: np.ndarray, resolution: int) -> np.ndarray:
    """Integer grid indices (..., 3) -> coordinates in [-1, 1] (..., 3), float32."""
    return (indices * (2.0 / (resolution - 1)) - 1.0).astype(np.float32)


def field_evaluator(fn: FieldFn) -> FieldFn:
    """fn, or for an :class:`~sdfrecon.sdf.siren.SdfSiren` a lean inference forward of it:
    omega_0 folded into the weights, addmm and in-place sin. Same values to ~1e-6, about
    3x faster on a CPU at 4k-16k points a call. x (B, 3) -> f (B,)."""
    from sdfrecon.sdf.siren import SdfSiren

    if type(fn) is not SdfSiren:
        return fn
    layers = [((layer.linear.weight.detach() * layer.omega_0).t().contiguous(),
               layer.linear.bias.detach() * layer.omega_0) for layer in fn.net]
    w_out, b_out = fn.out.weight.detach().t().contiguous(), fn.out.bias.detach()
    prior = fn.prior if fn.sphere_prior is not None else None

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = x
        for w, b in layers:
            h = torch.addmm(b, h, w).sin_()
        f = torch.addmm(b_out, h, w_out).squeeze(-1)
        if prior is not None:
            f = f + prior(x)[0]
        return f

    return forward


def gradient_evaluator(fn: FieldFn) -> Callable[[torch.Tensor], torch.Tensor]:
    """x (B, 3) -> grad f(x) (B, 3): for an :class:`~sdfrecon.sdf.siren.SdfSiren` its
    gradient written out as one reverse pass (g <- (g * cos a_l) V_l, omega_0 folded into
    V_l), for inference (no graph, no autograd: the first torch.autograd.grad of a process
    also imports sympy, ~1 s); for any other field, autograd."""
    from sdfrecon.sdf.siren import SdfSiren

    if type(fn) is not SdfSiren:
        from sdfrecon.sdf.derivatives import value_and_gradient

        def by_autograd(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(False), torch.enable_grad():  # callers may be in inference mode
                return value_and_gradient(fn, x.clone(), create_graph=False)[1].detach()

        return by_autograd
    layers = [((layer.linear.weight.detach() * layer.omega_0).contiguous(),
               layer.linear.bias.detach() * layer.omega_0) for layer in fn.net]
    w_out = fn.out.weight.detach()  # (1, n)
    prior = fn.prior if fn.sphere_prior is not None else None

    def gradient(x: torch.Tensor) -> torch.Tensor:
        h, cosines = x, []
        for v, b in layers:
            a = torch.addmm(b, h, v.t())
            cosines.append(torch.cos(a))
            h = a.sin_()
        g = w_out.expand(x.shape[0], -1)
        for (v, _), c in zip(reversed(layers), reversed(cosines), strict=True):
            g = (g * c) @ v
        if prior is not None:
            g = g + prior(x, order=1)[1]
        return g

    return gradient


def evaluate(fn: FieldFn, points: np.ndarray, device: torch.device, chunk_size: int) -> np.ndarray:
    """fn at points (M, 3) in chunks; returns (M,) float32 on the CPU."""
    out = np.empty(len(points), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(points), chunk_size):
            x = torch.from_numpy(points[start : start + chunk_size]).to(device)
            out[start : start + chunk_size] = fn(x).float().cpu().numpy()
    return out


def dense_grid(fn: FieldFn, resolution: int, device: torch.device, chunk_size: int,
               progress: bool = False) -> np.ndarray:
    """fn on every grid point: (R, R, R) float32. R^3 network calls (the reference).
    progress: a bar over the slices, drawn on a terminal only."""
    from tqdm.auto import tqdm

    field = field_evaluator(fn)
    axis = np.arange(resolution)
    plane = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    volume = np.empty((resolution,) * 3, dtype=np.float32)
    for i in tqdm(range(resolution), desc="grid", unit="slice", disable=None if progress else True,
                  leave=False, dynamic_ncols=True):
        idx = np.concatenate([np.full((len(plane), 1), i), plane], axis=1)
        volume[i] = evaluate(field, grid_coordinates(idx, resolution), device, chunk_size).reshape(
            resolution, resolution)
    return volume
