"""Images in, float arrays out; pixel-centre coordinates; derivative targets.

Conventions (used by fitting, rendering and the tests):

- An image is a float32 array (H, W, C) with values in [0, 1], C = 1 (grayscale) or 3 (RGB).
- Coordinates: x runs along the columns (left to right), y along the rows (top to bottom);
  the image spans [-1, 1] on both axes and pixel (row i, column j) sits at its centre,
  x = -1 + (2 j + 1) / W, y = -1 + (2 i + 1) / H. A pixel is 2/W wide and 2/H high.
- Derivative targets are in coordinate units: d/dx = (d/d column) * W/2, d/dy = (d/d row) *
  H/2, the Laplacian's terms scaled by the squares of those factors, so that the autograd
  derivatives of a network fitted on these coordinates are comparable to them directly.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from sdfrecon.errors import InputError

log = logging.getLogger("sdfrecon")

SKIMAGE_PREFIX = "skimage:"
DEFAULT_IMAGE = "skimage:camera"
DEFAULT_SIZE = (256, 256)
"""(W, H) of the default image: the cameraman at the SIREN paper's 256 x 256."""
# scikit-image's bundled images (no download needed).
SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "clock", "coffee", "coins", "colorwheel",
    "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo", "moon",
    "page", "retina", "rocket", "text",
)
MIN_SIDE = 3
IMAGE_FORMATS = ".png, .jpg, .jpeg, .tif, .tiff, .bmp, .gif, .webp, .npy"
"""The common formats, named in the message for an unknown suffix (imageio reads many more)."""


def _known_suffix(suffix: str) -> bool:
    """Whether ``suffix`` (lower case, with the dot) is .npy or an extension imageio reads."""
    from imageio.config import known_extensions

    return suffix == ".npy" or suffix in known_extensions


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """'WxH' -> (W, H); InputError naming the option when it is not two positive integers."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise InputError(option, f"'{text}' is not WxH (two whole numbers, e.g. 256x256)") from None
    if w < 1 or h < 1:
        raise InputError(option, f"'{text}': width and height must be at least 1")
    return w, h


def parse_floats(text: str, count: int, option: str) -> tuple[float, ...]:
    """'a,b,...' -> count floats; InputError naming the option otherwise."""
    try:
        values = tuple(float(p) for p in text.split(","))
    except ValueError:
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        raise InputError(option, f"'{text}' is not {count} comma-separated numbers")
    return values


def to_float_image(array: np.ndarray, name: str, grayscale: bool = False) -> np.ndarray:
    """Any 2-D or (H, W, 1|2|3|4) array of integers, bools or floats in [0, 1] -> float32
    (H, W, C) in [0, 1], C = 1 or 3 (an alpha channel is dropped). InputError otherwise."""
    a = np.asarray(array)
    if a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if info.min < 0 and a.size and a.min() < 0:
            raise InputError(name, "has negative pixel values")
        # 8- and 16-bit images use their full range; other integer types must be 0..255.
        top = 255 if a.dtype.itemsize == 1 or (a.size and a.max() <= 255) else 65535
        if a.size and a.max() > top:
            raise InputError(name, f"has pixel values above {top}")
        a = a.astype(np.float32) / top
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if a.size and not np.isfinite(a).all():
            raise InputError(name, "has NaN or infinite pixel values")
        if a.size and (a.min() < 0 or a.max() > 1):
            raise InputError(name, f"has float pixel values outside [0, 1] "
                                   f"({a.min():.3g} to {a.max():.3g})")
    else:
        raise InputError(name, f"has pixels of type {a.dtype}, not numbers")
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise InputError(name, f"has shape {a.shape}: expected H x W, or H x W x 1, 2, 3 or 4 channels")
    if a.shape[2] in (2, 4):
        log.info("%s: dropping the alpha channel", name)
        a = a[..., :-1]
    if min(a.shape[:2]) < MIN_SIDE:
        raise InputError(name, f"is {a.shape[1]}x{a.shape[0]} pixels; at least {MIN_SIDE}x{MIN_SIDE} are needed")
    if grayscale and a.shape[2] == 3:
        a = (a @ np.array([0.2125, 0.7154, 0.0721], dtype=np.float32))[..., None]
    return np.ascontiguousarray(a, dtype=np.float32)


def read_image(source: str | Path) -> np.ndarray:
    """The raw array of an image file (PNG, JPEG, TIFF, BMP, ... or .npy) or of
    ``skimage:NAME``, one of scikit-image's bundled images. InputError when unusable."""
    text = str(source)
    if text.startswith(SKIMAGE_PREFIX):
        import skimage.data

        name = text[len(SKIMAGE_PREFIX):]
        if name not in SKIMAGE_IMAGES:
            raise InputError(text, f"is not a bundled scikit-image image (one of: {', '.join(SKIMAGE_IMAGES)})")
        return getattr(skimage.data, name)()
    path = Path(source)
    if not path.exists():
        raise InputError(path, "no such file")
    if path.is_dir():
        raise InputError(path, "is a directory, not a file")
    if not path.is_file():
        raise InputError(path, "is not a regular file")
    suffix = path.suffix.lower()
    if not _known_suffix(suffix):
        raise InputError(path, f"unknown image format '{suffix or '(no suffix)'}' "
                               f"(supported: {IMAGE_FORMATS}, ...)")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty")
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(path, f"is not a readable .npy array ({err})") from None
    import imageio.v3 as iio

    try:
        with warnings.catch_warnings():  # imageio's legacy plugins warn while they probe a file
            warnings.simplefilter("ignore")
            array = iio.imread(path)
    except Exception as err:  # imageio raises many types for undecodable files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if reason.startswith("Could not find a backend"):  # no plugin recognises the bytes
            raise InputError(path, f"is not a readable image (its contents are not {suffix[1:].upper()} "
                                   "or any other image format)") from None
        raise InputError(path, f"is not a readable image ({reason[:120]})") from None
    if array.ndim == 4:  # animated GIF or multi-page TIFF: the first frame
        log.info("%s: %d frames, using the first", path, array.shape[0])
        array = array[0]
    return array


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, C) -> (h, w, C) for size (w, h): bilinear, with Gaussian anti-aliasing when shrinking."""
    from skimage.transform import resize as sk_resize

    w, h = size
    if image.shape[:2] == (h, w):
        return image
    shrinking = h < image.shape[0] or w < image.shape[1]
    out = sk_resize(image, (h, w, image.shape[2]), order=1, anti_aliasing=shrinking, mode="reflect")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def load_image(
    source: str | Path | None, size: tuple[int, int] | None = None, grayscale: bool = False
) -> np.ndarray:
    """The image to fit as float32 (H, W, C) in [0, 1].

    source None: the default, scikit-image's cameraman resampled to 256 x 256 (unless
    ``size`` says otherwise). size (W, H) resamples; None keeps the image's own size.
    """
    if source is None:
        source, size = DEFAULT_IMAGE, size or DEFAULT_SIZE
    image = to_float_image(read_image(source), str(source), grayscale)
    if size is not None:
        if min(size) < MIN_SIDE:
            raise InputError("--size", f"{size[0]}x{size[1]} is too small; at least {MIN_SIDE}x{MIN_SIDE}")
        image = resize(image, size)
    return image


def pixel_coordinates(
    height: int, width: int, x_range: tuple[float, float] = (-1.0, 1.0),
    y_range: tuple[float, float] = (-1.0, 1.0),
) -> np.ndarray:
    """Pixel-centre coordinates (H * W, 2) float32, rows first: point k = (x, y) of pixel
    (k // W, k % W). The grid splits x_range into W columns and y_range into H rows."""
    xs = x_range[0] + (np.arange(width) + 0.5) * (x_range[1] - x_range[0]) / width
    ys = y_range[0] + (np.arange(height) + 0.5) * (y_range[1] - y_range[0]) / height
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def _derivative(image: np.ndarray, axis: int) -> np.ndarray:
    """Central difference along axis (one-sided at the borders: exact for linear ramps)."""
    return np.gradient(image, axis=axis, edge_order=1)


def _smooth(image: np.ndarray, axis: int) -> np.ndarray:
    """The [1, 2, 1] / 4 smoothing of the Sobel operator along axis (edge pixels repeated)."""
    from scipy.ndimage import correlate1d

    return correlate1d(image, np.array([0.25, 0.5, 0.25]), axis=axis, mode="nearest")


def sobel_gradient(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W, C, 2): (d/dx, d/dy) of each channel in coordinate units.

    The Sobel operator divided by 8 (a central difference smoothed by [1, 2, 1] / 4 across
    it) is the derivative per pixel; at the borders the difference is one-sided, so a linear
    ramp gets its exact slope everywhere. Per pixel -> per coordinate unit: times W/2 (x)
    and H/2 (y).
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    gx = _smooth(_derivative(img, axis=1), axis=0) * (w / 2)
    gy = _smooth(_derivative(img, axis=0), axis=1) * (h / 2)
    return np.stack([gx, gy], axis=-1).astype(np.float32)


def _second_difference(image: np.ndarray, axis: int) -> np.ndarray:
    """f[i-1] - 2 f[i] + f[i+1] along axis; the border rows copy their inner neighbour's."""
    img = np.moveaxis(image, axis, 0)
    out = np.empty_like(img)
    out[1:-1] = img[:-2] - 2 * img[1:-1] + img[2:]
    out[0], out[-1] = out[1], out[-2]
    return np.moveaxis(out, 0, axis)


def laplacian(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (H, W, C): the 5-point discrete Laplacian in coordinate units,
    (d2/d column2) (W/2)^2 + (d2/d row2) (H/2)^2; zero for any linear ramp."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    lap = _second_difference(img, 1) * (w / 2) ** 2 + _second_difference(img, 0) * (h / 2) ** 2
    return lap.astype(np.float32)


def gradient_magnitude(grad: np.ndarray) -> np.ndarray:
    """(..., 2) -> (...): the Euclidean norm of a gradient field."""
    return np.sqrt((np.asarray(grad, dtype=np.float64) ** 2).sum(-1)).astype(np.float32)
