"""Derivatives of fields by autograd, shared by the SDF and image pipelines."""

from __future__ import annotations

import torch


def gradient(y: torch.Tensor, x: torch.Tensor, create_graph: bool = True,
             retain_graph: bool | None = None) -> torch.Tensor:
    """d sum(y) / dx: for y (B,) computed pointwise from x (B, D), the per-point gradient (B, D).

    ``create_graph`` keeps the graph so that a loss on the gradient can be back-propagated
    (the double backward of the eikonal and normal terms); ``retain_graph`` (default: as
    create_graph) keeps only the graph of y, to differentiate it again.
    """
    (g,) = torch.autograd.grad(
        y, x, grad_outputs=torch.ones_like(y), create_graph=create_graph, retain_graph=retain_graph
    )
    return g


def value_and_gradient(
    fn, x: torch.Tensor, create_graph: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) (B,) and grad f(x) (B, D) for a pointwise field ``fn``; x is not modified."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        y = fn(x)
        return y, gradient(y, x, create_graph=create_graph)


def divergence(v: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """div v = sum_i dv_i/dx_i for v (B, D) computed pointwise from x (B, D); returns (B,)."""
    div = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    axes = v.shape[-1]
    for i in range(axes):
        # without create_graph, v's graph is only retained until the last axis is done: no
        # third-order graph is built when the result is not differentiated again
        keep = create_graph or i + 1 < axes
        div = div + gradient(v[..., i], x, create_graph=create_graph, retain_graph=keep)[..., i]
    return div


def laplacian(y: torch.Tensor, x: torch.Tensor, create_graph: bool = True) -> torch.Tensor:
    """Laplacian of a pointwise scalar field y (B,) with respect to x (B, D); returns (B,)."""
    return divergence(gradient(y, x, create_graph=True), x, create_graph=create_graph)
