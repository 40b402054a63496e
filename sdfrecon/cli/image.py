"""The image commands of ``sdfrecon``: fit-image, render-image and blend.

Options come from the dataclasses of :mod:`sdfrecon.image.config` (their docstrings are the
--help text); the work is :mod:`sdfrecon.image.runs`'s, imported inside ``run``.

fit-image's presets are tyro subcommands (``preset:fast``, ``preset:paper``) whose defaults are
the preset's whole config, as nerfstudio's method configs: an option given on the command line
always wins, even at the value of another preset's default. :func:`preset_args` turns the
``--preset NAME`` of the command line into that subcommand before tyro parses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import tyro

from sdfrecon.cli.common import Common, Output, passive_openmp, preset_type
from sdfrecon.cli.common import preset_args as common_preset_args
from sdfrecon.image.config import (
    PRESET_HELP,
    PRESETS,
    ImageConfig,
    ImageModelConfig,
    ImageTrainConfig,
)


def _quiet(config: ImageConfig, quiet: bool) -> ImageConfig:
    """--quiet turns the progress bar off."""
    import dataclasses

    if not quiet:
        return config
    return dataclasses.replace(config, train=dataclasses.replace(config.train, progress=False))


ImageArg = Annotated[str | None, tyro.conf.arg(metavar="IMAGE")]

if TYPE_CHECKING:
    PresetConfig = ImageConfig
else:
    PresetConfig = preset_type(PRESETS, PRESET_HELP)
"""An :class:`ImageConfig` chosen by a subcommand per preset, whose defaults are the preset's."""


def preset_args(args: list[str]) -> list[str]:
    """fit-image's arguments with ``--preset NAME`` made the preset's subcommand
    (:func:`sdfrecon.cli.common.preset_args` over the image presets)."""
    return common_preset_args(args, PRESETS)


@tyro.conf.configure(tyro.conf.CascadeSubcommandArgs)
@dataclass(kw_only=True)
class FitImage(Common):
    """Fit a network (a SIREN by default) to an image's pixels, gradient or Laplacian.

    Writes into OUT_DIR: fit.png (the fit at the fitted size), fit_gradient.png and
    fit_laplacian.png (its autograd derivatives), the same three of the original,
    curves.png (loss and PSNR), losses.csv, metrics.json (PSNR, SSIM) and model.pt (for
    render-image), figure.png (original, fit, error, gradient and Laplacian with colour
    bars). A gradient fit gets its constant, a Laplacian fit its constant and linear
    term, by least squares before PSNR is reported.
    """

    image: tyro.conf.Positional[ImageArg] = None
    """Image file (PNG, JPEG, TIFF, BMP, ... or .npy), or skimage:NAME for one of
    scikit-image's bundled images. Default: the cameraman, resampled to 256x256."""
    output: Output
    """Output folder (OUT_DIR)."""
    size: str | None = None
    """Fit at WxH pixels (resampled, anti-aliased when shrinking). Default: the image's own
    size (256x256 for the default cameraman)."""
    grayscale: bool = False
    """Convert a colour image to grey (luminance) before fitting."""
    overwrite: bool = False
    """Replace existing files in OUT_DIR."""
    config: PresetConfig = field(default_factory=lambda: PRESETS["fast"])
    """--preset NAME: the recipe whose values are the defaults of the options
    ('fast': those shown here). Options given explicitly win, at any value."""

    @staticmethod
    def prepare_args(args: list[str]) -> list[str]:
        """The command line's arguments after ``fit-image``, ready for tyro: :func:`preset_args`."""
        return preset_args(args)

    def run(self) -> None:
        passive_openmp()
        config = _quiet(self.config, self.quiet)
        from sdfrecon.image.runs import run_fit_image

        s = run_fit_image(self.image, self.output, config, self.size, self.grayscale, self.overwrite)
        print(f"wrote {self.output}/fit.png ({s['size'][0]}x{s['size'][1]}, from {s['target']}): "
              f"PSNR {s['psnr']} dB, SSIM {s['ssim']} after {s['steps']} steps; fit.png after "
              f"{s['seconds_to_fit_png']:.1f} s, all outputs after {s['total_seconds']:.1f} s")


@dataclass(kw_only=True)
class RenderImage(Common):
    """Sample a fitted image (fit-image's model.pt) at any resolution and over any range:
    more pixels super-resolve, a range beyond [-1, 1] extrapolates past the borders."""

    model: tyro.conf.Positional[Path]
    """model.pt written by `sdfrecon fit-image` or `sdfrecon blend`."""
    output: Output
    """PNG to write."""
    size: str | None = None
    """Output size WxH. Default: the fitted size."""
    range: str = "-1,1,-1,1"
    """X0,X1,Y0,Y1: the region to sample, in the fit's coordinates (the image spans -1..1
    on both axes, x to the right, y down). Write negative first values as --range=-2,2,-2,2."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto, cpu or cuda."""
    overwrite: bool = False
    """Replace an existing PNG."""

    def run(self) -> None:
        passive_openmp()
        from sdfrecon.image.runs import run_render_image

        w, h = run_render_image(self.model, self.output, self.size, self.range, self.device,
                                    self.overwrite)
        print(f"wrote {self.output} ({w}x{h}, range {self.range})")


@dataclass(frozen=True)
class BlendFitConfig:
    batch_size: int | None = 16384
    """Pixels per step, visited in a fresh random order each epoch; None: every pixel every step."""


@dataclass(kw_only=True)
class Blend(Common):
    """Poisson blending: fit one network to a mix of two images' gradients (the SIREN
    paper's composite), then fix its constant by least squares against the same mix of
    their pixels. With a mask m, the gradient is m (w_a grad A + w_b grad B) + (1 - m) grad B:
    --weights 1,0 pastes A's detail into B inside the mask, seamlessly.

    Writes into OUT_DIR: blend.png, a.png, b.png, direct.png (the same mix of the pixels),
    mask.png (with --mask), figure.png (all of them in a row), curves.png, losses.csv,
    metrics.json and model.pt.
    """

    a: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="A")]] = "skimage:camera"
    """First image (a file or skimage:NAME)."""
    b: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="B")]] = "skimage:brick"
    """Second image (a file or skimage:NAME)."""
    output: Output
    """Output folder (OUT_DIR)."""
    weights: str = "0.5,0.5"
    """W_A,W_B: weights of the two gradients (inside the mask, with --mask)."""
    mask: str | None = None
    """Mask image (a file or skimage:NAME), grey values 0..1: where to use the weighted mix;
    elsewhere B's gradient. Default: everywhere."""
    size: str = "256x256"
    """WxH both images (and the mask) are resampled to."""
    grayscale: bool = False
    """Convert colour images to grey first."""
    overwrite: bool = False
    """Replace existing files in OUT_DIR."""
    model: Annotated[ImageModelConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=ImageModelConfig)
    fit: Annotated[BlendFitConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=BlendFitConfig)
    train: Annotated[ImageTrainConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=ImageTrainConfig)

    def run(self) -> None:
        passive_openmp()
        from sdfrecon.image.config import ImageFitConfig
        from sdfrecon.image.runs import run_blend

        config = _quiet(ImageConfig(model=self.model, train=self.train,
                                    fit=ImageFitConfig(target="gradient", batch_size=self.fit.batch_size)),
                        self.quiet)
        s = run_blend(self.a, self.b, self.output, self.weights, self.mask, self.size,
                          self.grayscale, config, self.overwrite)
        print(f"wrote {self.output}/blend.png ({s['size'][0]}x{s['size'][1]}) after {s['steps']} steps "
              f"in {s['total_seconds']:.1f} s")
