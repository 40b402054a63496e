"""Data of the image hypernetwork: the source images and their split, observed-pixel masks,
the linear interpolation the network corrects, and windows cut from them.

- Sources, all offline: the ten 256 x 256 grayscale Kodak images of ../shared/data/images and
  scikit-image's bundled images (to grey; larger ones shrunk so that their shorter side is
  256, the Kodak scale). The split is by source image, never by patch: VALIDATION holds
  kodim08 to kodim11 and the cameraman, which no training run sees.
- A mask is a boolean (H, W) array, True where a pixel is observed; a window is a
  (patch + 2 context)-wide square cut at the same place from the observed values (zero
  elsewhere), the mask and the interpolation, with the patch's true pixels as the target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdfrecon.errors import InputError
from sdfrecon.image import data

log = logging.getLogger("sdfrecon")

SHARED_IMAGES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "images"
"""../shared/data/images beside the checkout (the Kodak images)."""
KODAK_TRAIN = ("kodim01", "kodim02", "kodim03", "kodim05", "kodim06", "kodim07")
KODAK_VALIDATION = ("kodim08", "kodim09", "kodim10", "kodim11")
SKIMAGE_TRAIN = ("astronaut", "brick", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
                 "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket",
                 "text")
"""scikit-image's natural and scanned images; 'cat' is chelsea again, 'horse', 'logo' and
'colorwheel' are drawings, 'camera' is held out."""
SKIMAGE_VALIDATION = ("camera",)
SCALE_SIDE = 256
"""Images with a shorter side above this are shrunk to it (the Kodak images' scale)."""


def training_sources(folder: Path = SHARED_IMAGES) -> list[str]:
    """The training images: Kodak files (those present) and skimage:NAME sources."""
    kodak = [str(folder / f"{n}.png") for n in KODAK_TRAIN if (folder / f"{n}.png").is_file()]
    return kodak + [f"{data.SKIMAGE_PREFIX}{n}" for n in SKIMAGE_TRAIN]


def validation_sources(folder: Path = SHARED_IMAGES) -> list[str]:
    """The held-out images (in no training split)."""
    kodak = [str(folder / f"{n}.png") for n in KODAK_VALIDATION if (folder / f"{n}.png").is_file()]
    return kodak + [f"{data.SKIMAGE_PREFIX}{n}" for n in SKIMAGE_VALIDATION]


def load_grey(source: str) -> np.ndarray:
    """A source as float32 (H, W) grey in [0, 1], shrunk to a shorter side of SCALE_SIDE."""
    image = data.load_image(source, grayscale=True)
    h, w = image.shape[:2]
    if min(h, w) > SCALE_SIDE:
        f = SCALE_SIDE / min(h, w)
        image = data.resize(image, (round(w * f), round(h * f)))
    return image[..., 0]


def observed_count(keep: float, total: int) -> int:
    """Pixels to observe of ``total``: keep < 1 is a share, keep >= 1 a count."""
    return int(round(keep * total)) if keep < 1 else int(keep)


def random_mask(height: int, width: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean (H, W) mask with exactly ``count`` observed pixels, uniformly at random."""
    flat = np.zeros(height * width, dtype=bool)
    flat[rng.choice(height * width, size=min(count, height * width), replace=False)] = True
    return flat.reshape(height, width)


def interpolate(image: np.ndarray, mask: np.ndarray, method: str = "linear",
                queries: np.ndarray | None = None) -> np.ndarray:
    """scipy griddata of the observed pixels (row, column) at every pixel (H, W), or at
    ``queries`` (N, 2) in (row, column) pixel units; outside the observed pixels' convex
    hull (or with too few pixels for a triangulation) the nearest observed value."""
    from scipy.interpolate import griddata
    from scipy.spatial import QhullError

    h, w = mask.shape
    points = np.argwhere(mask).astype(np.float64)
    values = image[mask].astype(np.float64)
    if len(points) == 0:
        raise ValueError("no observed pixels to interpolate")
    shape = (h, w) if queries is None else (len(queries),)
    if queries is None:
        queries = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 2)
    if method == "nearest" or len(points) < 3:
        return griddata(points, values, queries, method="nearest").reshape(shape).astype(np.float32)
    try:
        out = griddata(points, values, queries, method=method)
    except QhullError:  # all observed pixels on one line
        out = np.full(len(queries), np.nan)
    outside = np.isnan(out)
    if outside.any():  # nearest-neighbour filling only where it is needed
        out[outside] = griddata(points, values, queries[outside], method="nearest")
    return out.reshape(shape).astype(np.float32)


def window_stack(image: np.ndarray, mask: np.ndarray, base: np.ndarray, pad: int) -> np.ndarray:
    """(3, H + 2 pad, W + 2 pad) float32: observed values (0 elsewhere), mask and base,
    reflected across the borders so that windows at the edge see a mirrored neighbourhood."""
    stack = np.stack([image * mask, mask.astype(np.float32), base]).astype(np.float32)
    if pad:
        stack = np.pad(stack, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    return stack


@dataclass
class MaskedImage:
    """One image with a mask and its interpolation, padded for window cutting."""

    image: np.ndarray  # (H, W) truth
    stack: np.ndarray  # (3, H + 2 pad, W + 2 pad) from :func:`window_stack`


def masked_image(image: np.ndarray, keep: float, pad: int, rng: np.random.Generator) -> MaskedImage:
    """``image`` with a random mask of ``keep`` (share or count) and its linear interpolation."""
    h, w = image.shape
    mask = random_mask(h, w, max(1, observed_count(keep, h * w)), rng)
    return MaskedImage(image, window_stack(image, mask, interpolate(image, mask), pad))


def dihedral(t: torch.Tensor, k: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Windows (B, C, S, S) each turned by k[b] quarter turns and flipped where flip[b]."""
    out = t.clone()
    for turns in range(1, 4):
        sel = k == turns
        if sel.any():
            out[sel] = torch.rot90(t[sel], turns, dims=(2, 3))
    out[flip] = out[flip].flip(3)
    return out


class WindowPool:
    """Training windows cut at random from masked images (one per image and share, some
    redrawn from time to time). Random draws come from a torch Generator (saved in
    checkpoints) and the masks from the seed and the refresh count, so a resumed run cuts
    the same windows as an uninterrupted one would."""

    def __init__(self, images: list[np.ndarray], shares: tuple[float, ...], patch: int, context: int,
                 seed: int):
        self.images, self.shares = images, shares
        self.patch, self.context, self.seed = patch, context, seed
        self.items: list[MaskedImage] = []
        for i, image in enumerate(images):
            for j, share in enumerate(shares):
                rng = np.random.default_rng([seed, i, j, 0])
                self.items.append(masked_image(image, share, context, rng))
        self.refreshed = 0

    def refresh(self, count: int) -> None:
        """Redraw the masks of ``count`` (image, share) items, in a fixed rotation."""
        n = len(self.items)
        for r in range(count):
            idx = (self.refreshed + r) % n
            i, j = divmod(idx, len(self.shares))
            rng = np.random.default_rng([self.seed, i, j, 1 + (self.refreshed + r) // n])
            self.items[idx] = masked_image(self.images[i], self.shares[j], self.context, rng)
        self.refreshed += count

    def sample(self, batch: int, generator: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """windows (B, 3, S, S) with S = patch + 2 context, targets (B, patch, patch)."""
        p, c = self.patch, self.context
        s = p + 2 * c
        areas = torch.tensor([float(it.image.size) for it in self.items])
        picks = torch.multinomial(areas, batch, replacement=True, generator=generator)
        wins, targets = [], []
        for idx in picks.tolist():
            item = self.items[idx]
            h, w = item.image.shape
            y = int(torch.randint(0, max(1, h - p + 1), (1,), generator=generator))
            x = int(torch.randint(0, max(1, w - p + 1), (1,), generator=generator))
            wins.append(item.stack[:, y:y + s, x:x + s])
            targets.append(item.image[y:y + p, x:x + p])
        windows = torch.from_numpy(np.stack(wins))
        target = torch.from_numpy(np.stack(targets))[:, None]
        if augment:
            k = torch.randint(0, 4, (batch,), generator=generator)
            flip = torch.rand(batch, generator=generator) < 0.5
            windows, target = dihedral(windows, k, flip), dihedral(target, k, flip)
        return windows, target[:, 0]


def fixed_windows(images: list[np.ndarray], keep: float, count: int, patch: int, context: int,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` windows spread over ``images`` (each masked once at ``keep``) for validation:
    windows (N, 3, S, S), targets (N, patch, patch); the same for the same seed."""
    pool = WindowPool(images, (keep,), patch, context, seed)
    generator = torch.Generator().manual_seed(seed)
    return pool.sample(count, generator, augment=False)


def load_mask(source: str, shape: tuple[int, int]) -> np.ndarray:
    """A mask image (non-zero = observed) as boolean (H, W); InputError when its size is not
    ``shape`` (H, W) or it observes no pixel."""
    mask = data.to_float_image(data.read_image(source), str(source), grayscale=True)[..., 0]
    if mask.shape != shape:
        raise InputError(source, f"is a {mask.shape[1]}x{mask.shape[0]} mask for a "
                                 f"{shape[1]}x{shape[0]} image (they must be the same size)")
    observed = mask > 0
    if not observed.any():
        raise InputError(source, "observes no pixel (every value is zero)")
    return observed
