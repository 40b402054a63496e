"""Completing an image of any size from some of its pixels with a trained hypernetwork.

The image is covered by patch-sized tiles at half-patch strides (the last tile of a row or
column moved back to end at the border); each tile's window (the tile and its
neighbourhood, mirrored past the borders) gives one SIREN, and where tiles overlap their
values are blended with tent weights that fall to 1/patch at the tile's edge, so no seam
shows. The observed pixels are kept as they are. The SIRENs are continuous, so the same
tiles sampled at twice the resolution give a 2x image.

Optionally (``fit_steps``) every generated SIREN is fitted further, for a few Adam steps,
to the observed pixels of its tile (test-time fitting; docs/hyper.md measures it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sdfrecon.image import data
from sdfrecon.image.hyper import data as hyper_data
from sdfrecon.image.hyper.model import HyperSiren, siren_forward


@dataclass(frozen=True)
class CompleteConfig:
    fit_steps: int = 0
    """Adam steps fitting each generated SIREN to its tile's observed pixels (0: none)."""
    fit_lr: float = 1e-4
    """Learning rate of those steps."""
    tiles_per_batch: int = 128
    """Tiles generated at once (bounds the memory: ~1 MB a tile)."""
    render_2x: bool = True
    """Also sample the SIRENs at twice the resolution."""
    ensemble: int = 1
    """Average over this many symmetries of the square (1, 2, 4 or 8: the image turned and
    flipped, completed, and turned back); the network was trained on all eight."""


@dataclass
class Completion:
    """completed (H, W) with the observed pixels kept, raw (H, W) the blended SIRENs alone,
    completed_2x (2H, 2W) or None, base (H, W) the linear interpolation, all in [0, 1]."""

    completed: np.ndarray
    raw: np.ndarray
    completed_2x: np.ndarray | None
    base: np.ndarray
    tiles: int


def tile_starts(size: int, patch: int, stride: int) -> list[int]:
    """Tile origins along one axis covering 0..size-1 (size >= patch)."""
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


def tent(n: int) -> np.ndarray:
    """Blending weights of n pixel centres across a tile: 1 - |u| at u in (-1, 1)."""
    u = (2 * np.arange(n) + 1) / n - 1
    return (1 - np.abs(u)).astype(np.float32)


def blend_into(acc: np.ndarray, wsum: np.ndarray, origins: list[tuple[int, int]], tiles: np.ndarray,
               weight: np.ndarray, factor: int) -> None:
    """Add tiles (n, s, s) weighted by ``weight`` (s, s) at origins (row, column) times
    ``factor`` into acc, and the weights into wsum (the blend is acc / wsum)."""
    s = weight.shape[0]
    for tile, (y, x) in zip(tiles, origins, strict=True):
        acc[factor * y:factor * y + s, factor * x:factor * x + s] += weight * tile
        wsum[factor * y:factor * y + s, factor * x:factor * x + s] += weight


def _fit_tiles(network: HyperSiren, params, windows: torch.Tensor, std: torch.Tensor, steps: int,
               lr: float):
    """Adam steps on the generated params so that each tile's SIREN matches its observed
    pixels: a copy of params, detached."""
    c, p = network.config.context, network.config.patch
    values = windows[:, 0, c:c + p, c:c + p].reshape(len(windows), -1)
    mask = windows[:, 1, c:c + p, c:c + p].reshape(len(windows), -1)
    core = network.core(windows).reshape(len(windows), -1)
    leaves = [(w.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True))
              for w, b in params]
    opt = torch.optim.Adam([t for pair in leaves for t in pair], lr=lr)
    count = mask.sum().clamp_min(1.0)
    for _ in range(steps):
        with torch.enable_grad():
            out = core + std[:, None] * siren_forward(leaves, network.layers, network.coords)
            loss = ((out - values).square() * mask).sum() / count
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [(w.detach(), b.detach()) for w, b in leaves]


def _tiles(network: HyperSiren, img: np.ndarray, msk: np.ndarray, base: np.ndarray,
           base2: np.ndarray | None, config: CompleteConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """The blended SIRENs of every tile of img (H, W) at 1x and (with base2) 2x, unclipped."""
    cfg = network.config
    p, c = cfg.patch, cfg.context
    hp, wp = img.shape
    stack = hyper_data.window_stack(img, msk, base, c)
    origins = [(y, x) for y in tile_starts(hp, p, p // 2) for x in tile_starts(wp, p, p // 2)]
    weight = np.outer(tent(p), tent(p))
    weight2 = np.outer(tent(2 * p), tent(2 * p))
    acc, wsum = np.zeros((hp, wp)), np.zeros((hp, wp))
    acc2, wsum2 = np.zeros((2 * hp, 2 * wp)), np.zeros((2 * hp, 2 * wp))
    coords2 = torch.from_numpy(data.pixel_coordinates(2 * p, 2 * p))
    s = p + 2 * c
    for start in range(0, len(origins), config.tiles_per_batch):
        batch = origins[start:start + config.tiles_per_batch]
        windows = torch.from_numpy(np.stack([stack[:, y:y + s, x:x + s] for y, x in batch]))
        with torch.no_grad():
            params, mean, std = network.generate(windows)
        if config.fit_steps > 0:
            params = _fit_tiles(network, params, windows, std, config.fit_steps, config.fit_lr)
        with torch.no_grad():
            out = network.core(windows) + std[:, None, None] * siren_forward(
                params, network.layers, network.coords).view(-1, p, p)
            blend_into(acc, wsum, batch, out.numpy(), weight, 1)
            if base2 is not None:
                res2 = siren_forward(params, network.layers, coords2).view(-1, 2 * p, 2 * p)
                if cfg.residual:
                    core2 = torch.from_numpy(np.stack([base2[2 * y:2 * y + 2 * p, 2 * x:2 * x + 2 * p]
                                                       for y, x in batch]))
                else:
                    core2 = mean[:, None, None]
                blend_into(acc2, wsum2, batch, (core2 + std[:, None, None] * res2).numpy(), weight2, 2)
    return acc / wsum, (acc2 / wsum2 if base2 is not None else None)


def _turn(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """One of the 8 symmetries of the square: k quarter turns, then a left-right flip."""
    a = np.rot90(a, k)
    return np.ascontiguousarray(a[:, ::-1] if flip else a)


def _unturn(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(a[:, ::-1] if flip else a, -k))


SYMMETRIES = [(0, False), (2, True), (1, False), (3, True), (2, False), (0, True), (3, False), (1, True)]
"""The turns and flips of --ensemble, in the order they are added (the first 2, 4 or 8)."""


def complete(network: HyperSiren, image: np.ndarray, mask: np.ndarray,
             config: CompleteConfig = CompleteConfig()) -> Completion:
    """Complete ``image`` (H, W) in [0, 1] from its pixels where ``mask`` (H, W) is True."""
    p = network.config.patch
    h, w = image.shape
    # Images smaller than a patch: pad with unobserved pixels (the interpolation fills them).
    hp, wp = max(h, p), max(w, p)
    img = np.zeros((hp, wp), np.float32)
    img[:h, :w] = image
    msk = np.zeros((hp, wp), bool)
    msk[:h, :w] = mask
    base = hyper_data.interpolate(img, msk)
    base2 = None
    if config.render_2x:
        rows = (np.arange(2 * hp) + 0.5) / 2 - 0.5
        cols = (np.arange(2 * wp) + 0.5) / 2 - 0.5
        queries = np.stack(np.meshgrid(rows, cols, indexing="ij"), -1).reshape(-1, 2)
        base2 = hyper_data.interpolate(img, msk, queries=queries).reshape(2 * hp, 2 * wp)
    network.eval()
    outs, outs2 = [], []
    for k, flip in SYMMETRIES[:max(1, config.ensemble)]:
        turned = [None if a is None else _turn(a, k, flip) for a in (img, msk, base, base2)]
        out, out2 = _tiles(network, *turned, config)
        outs.append(_unturn(out, k, flip))
        if out2 is not None:
            outs2.append(_unturn(out2, k, flip))
    raw = np.clip(np.mean(outs, 0), 0, 1)[:h, :w].astype(np.float32)
    completed = np.where(mask, image, raw).astype(np.float32)
    completed_2x = None
    if base2 is not None:
        completed_2x = np.clip(np.mean(outs2, 0), 0, 1)[:2 * h, :2 * w].astype(np.float32)
    tiles = len(tile_starts(hp, p, p // 2)) * len(tile_starts(wp, p, p // 2))
    return Completion(completed, raw, completed_2x, base[:h, :w], tiles)
