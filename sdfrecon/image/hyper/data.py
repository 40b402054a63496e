"""Data of the image hypernetwork: an image family (centre-cropped squares), its split by
subject, random observed-pixel masks and the griddata interpolation of the baselines.

A mask is a boolean (H, W) array, True where a pixel is observed. Files named sNN_MM.png
(the ORL faces of ../shared/data/faces) belong to subject sNN; any other file (a Kodak
photo) is a subject of its own. Validation subjects are never seen in training, by no image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdfrecon.errors import InputError
from sdfrecon.image import data

SUBJECT = re.compile(r"^(s\d+)_\d+$")
"""File stem of one image of a subject: sNN_MM (subject sNN, image MM)."""
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pgm")


def subject_of(path: str | Path) -> str:
    """The subject of an image file: sNN for sNN_MM.png, else the file's stem."""
    stem = Path(path).stem
    match = SUBJECT.match(stem)
    return match.group(1) if match else stem


def square(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W) grey -> (size, size): the centred square of side min(H, W), resized."""
    h, w = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top:top + side, left:left + side]
    return data.resize(crop[..., None], (size, size))[..., 0]


def load_square(source: str | Path, size: int) -> np.ndarray:
    """An image file as float32 (size, size) grey in [0, 1] (centre-cropped, resized)."""
    image = data.to_float_image(data.read_image(source), str(source), grayscale=True)[..., 0]
    return square(image, size)


@dataclass
class Family:
    """images (N, size, size) float32 in [0, 1], their files and subjects."""

    images: np.ndarray
    files: list[str]
    subjects: list[str]


def load_family(folder: str | Path, size: int) -> Family:
    """Every image of ``folder`` (sorted by name) as a square of ``size``; InputError when the
    folder has none or fewer than two subjects (there would be nothing to hold out)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    if not files:
        raise InputError(folder, f"has no images ({', '.join(SUFFIXES)})")
    subjects = [subject_of(p) for p in files]
    if len(set(subjects)) < 2:
        raise InputError(folder, "holds one subject; the split by subject needs two or more")
    images = np.stack([load_square(p, size) for p in files])
    return Family(images, [str(p) for p in files], subjects)


def split_by_subject(subjects: list[str], share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) of images: ``share`` of the distinct subjects (at least
    one, at most all but one), drawn with ``seed``, are validation with all their images."""
    names = sorted(set(subjects))
    count = min(len(names) - 1, max(1, round(share * len(names))))
    held = set(np.random.default_rng(seed).choice(names, size=count, replace=False).tolist())
    is_val = np.array([s in held for s in subjects])
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def random_mask(height: int, width: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean (H, W) mask with exactly ``count`` observed pixels, uniformly at random."""
    flat = np.zeros(height * width, dtype=bool)
    flat[rng.choice(height * width, size=min(count, height * width), replace=False)] = True
    return flat.reshape(height, width)


def interpolate(image: np.ndarray, mask: np.ndarray, method: str = "linear") -> np.ndarray:
    """scipy griddata ('nearest' or 'linear') of the observed pixels at every pixel (H, W);
    outside the observed pixels' convex hull (or with too few of them for a triangulation)
    the nearest observed value."""
    from scipy.interpolate import griddata
    from scipy.spatial import QhullError

    h, w = mask.shape
    points = np.argwhere(mask).astype(np.float64)
    values = image[mask].astype(np.float64)
    if len(points) == 0:
        raise ValueError("no observed pixels to interpolate")
    queries = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 2)
    if method == "nearest" or len(points) < 3:
        return griddata(points, values, queries, method="nearest").reshape(h, w).astype(np.float32)
    try:
        out = griddata(points, values, queries, method=method)
    except QhullError:  # all observed pixels on one line
        out = np.full(len(queries), np.nan)
    outside = np.isnan(out)
    if outside.any():
        out[outside] = griddata(points, values, queries[outside], method="nearest")
    return out.reshape(h, w).astype(np.float32)


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
