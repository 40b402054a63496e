"""The best PSNR a fit from the Sobel gradient can reach: a continuous function whose
derivatives equal ``sobel_gradient`` exactly at the pixel centres is the image filtered by
the Sobel operator's frequency response (central difference, sin(w)/w, times the [1, 2, 1]/4
smoothing across it, (1 + cos w)/2), solved per frequency by least squares. Periodic model
(FFT), so the borders are approximate.

    .venv/bin/python scripts/studies/image_gradient_bound.py                # the cameraman at 256x256
    .venv/bin/python scripts/studies/image_gradient_bound.py photo.png --size 512x512
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def sobel_fit_response(height: int, width: int) -> np.ndarray:
    """(H, W) factor by which a least-squares continuous fit to the Sobel gradient scales each
    frequency of the image (1 at frequency 0)."""
    u = 2 * np.pi * np.fft.fftfreq(width)[None, :]  # radians per pixel along x
    v = 2 * np.pi * np.fft.fftfreq(height)[:, None]
    central = lambda w: np.sinc(w / np.pi)  # noqa: E731  sin(w)/w, 1 at 0
    smooth = lambda w: (1 + np.cos(w)) / 2  # noqa: E731
    num = u**2 * central(u) * smooth(v) + v**2 * central(v) * smooth(u)
    den = u**2 + v**2
    return np.where(den == 0, 1.0, num / np.where(den == 0, 1.0, den))


def main(argv: list[str] | None = None) -> int:
    from sdfrecon.image import data

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", nargs="?", default=None, help="image file or skimage:NAME (default: the cameraman)")
    parser.add_argument("--size", default="256x256", help="WxH the image is resampled to")
    args = parser.parse_args(argv)
    image = data.load_image(args.image, data.parse_size(args.size)).astype(np.float64)
    h, w, c = image.shape
    response = sobel_fit_response(h, w)
    fitted = np.stack([np.real(np.fft.ifft2(np.fft.fft2(image[..., k]) * response)) for k in range(c)], -1)
    mse = float(np.mean((np.clip(fitted, 0, 1) - image) ** 2))
    print(f"{args.image or 'skimage:camera'} {w}x{h}: best PSNR of a continuous fit to the Sobel "
          f"gradient {-10 * np.log10(mse):.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
