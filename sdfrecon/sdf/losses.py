"""The SIREN SDF losses (paper Sec. 4.2, Eq. 6), as a pure function of the batch, the
network's values and its spatial gradients."""

from __future__ import annotations

import torch

from sdfrecon.config import LossConfig
from sdfrecon.sdf.sampling import SdfBatch


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of values (B,) over mask (B,) bool; 0 when the mask is empty."""
    count = mask.sum().clamp(min=1)
    return torch.where(mask, values, torch.zeros_like(values)).sum() / count


def sdf_losses(
    batch: SdfBatch,
    sdf: torch.Tensor,
    grad: torch.Tensor,
    config: LossConfig,
    divergence: torch.Tensor | None = None,
    divergence_weight: float = 0.0,
    margin: float | None = None,
) -> dict[str, torch.Tensor]:
    """The weighted loss terms and their sum.

    sdf: (B,) f at batch.points; grad: (B, 3) grad f there. Each term is a mean over the
    points its mask selects (not over the whole batch):
      sdf      on-surface   |f|
      normal   on-surface   1 - cos(grad f, n)
      eikonal  all points   | |grad f| - 1 |
      off      off-surface  exp(-alpha max(s f, 0)) where the side s is known, exp(-alpha |f|)
                            where it is not
      free     off-surface  relu(d - margin - s f), s the side (+1/-1), |f| for s = 0
                            (when the batch carries distances and free_space_weight > 0)
      div      off-surface  |div grad f|   (only when ``divergence`` (B,) is given)
    margin: the free-space margin in normalised units (default config.free_space_margin;
    the trainer passes the one widened to the cloud's spacing).
    Returns {'sdf', 'normal', 'eikonal', 'off'[, 'free'][, 'div'], 'total'}, each weighted.
    """
    on, off = batch.on_surface, batch.off_surface
    margin = config.free_space_margin if margin is None else margin
    grad_norm = grad.norm(dim=-1)
    cos = torch.nn.functional.cosine_similarity(grad, batch.normals, dim=-1, eps=1e-8)
    # s f where the side s is known, |f| where it is not: the off-surface term pushes f away
    # from zero only towards its own side (on the wrong side it has no gradient, and so never
    # holds a pocket of the wrong sign against the free-space term)
    signed = sdf.abs() if batch.side is None else torch.where(batch.side != 0, batch.side * sdf, sdf.abs())
    terms = {
        "sdf": config.sdf_weight * _masked_mean(sdf.abs(), on),
        "normal": config.normal_weight * _masked_mean(1.0 - cos, on),
        "eikonal": config.eikonal_weight * (grad_norm - 1.0).abs().mean(),
        "off": config.off_surface_weight
        * _masked_mean(torch.exp(-config.off_surface_alpha * signed.clamp(min=0.0)), off),
    }
    if config.free_space_weight > 0 and batch.distance is not None:
        # side * f >= d - margin where the side is known, |f| >= d - margin where it is not
        gap = torch.relu(batch.distance - margin - signed)
        terms["free"] = config.free_space_weight * _masked_mean(gap, off)
    if divergence is not None:
        terms["div"] = divergence_weight * _masked_mean(divergence.abs(), off)
    terms["total"] = sum(terms.values())  # type: ignore[assignment]
    return terms
