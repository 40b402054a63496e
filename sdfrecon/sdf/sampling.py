"""Training batches: on-surface points with normals, off-surface points in the box, and
optional near-surface points, with explicit masks (no -1 sentinels in the targets)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sdfrecon.config import SamplingConfig


@dataclass
class SdfBatch:
    """One step's points, all in normalised coordinates.

    points: (B, 3); normals: (B, 3), zero where not on the surface;
    on_surface: (B,) bool, the point lies on the surface with a known normal;
    off_surface: (B,) bool, the point is assumed away from the surface (exp(-alpha|f|) term).
    Points that are neither (near-surface samples) take part in the eikonal term only.
    """

    points: torch.Tensor
    normals: torch.Tensor
    on_surface: torch.Tensor
    off_surface: torch.Tensor


class SdfSampler:
    """Draws :class:`SdfBatch` es from a normalised cloud, reproducibly from one generator."""

    def __init__(
        self,
        points: torch.Tensor,
        normals: torch.Tensor,
        config: SamplingConfig,
        generator: torch.Generator,
    ):
        """points, normals: (N, 3) float32 on the training device, normalised coordinates."""
        self.points = points
        self.normals = normals
        self.config = config
        self.generator = generator

    def sample(self) -> SdfBatch:
        c, g, dev = self.config, self.generator, self.points.device
        n = self.points.shape[0]
        idx = torch.randint(0, n, (c.surface_points,), generator=g, device=dev)
        surface, normals = self.points[idx], self.normals[idx]
        box = torch.rand((c.off_surface_points, 3), generator=g, device=dev) * 2.0 - 1.0
        parts, nparts = [surface, box], [normals, torch.zeros_like(box)]
        if c.near_surface_points > 0:
            idx = torch.randint(0, n, (c.near_surface_points,), generator=g, device=dev)
            noise = torch.randn((c.near_surface_points, 3), generator=g, device=dev)
            near = (self.points[idx] + c.near_surface_sigma * noise).clamp(-1.0, 1.0)
            parts.append(near)
            nparts.append(torch.zeros_like(near))
        points = torch.cat(parts)
        on = torch.zeros(points.shape[0], dtype=torch.bool, device=dev)
        on[: c.surface_points] = True
        off = torch.zeros_like(on)
        off[c.surface_points : c.surface_points + c.off_surface_points] = True
        return SdfBatch(points=points, normals=torch.cat(nparts), on_surface=on, off_surface=off)
