"""``sdfrecon hyper train`` and ``sdfrecon hyper complete``: a hypernetwork that turns some
pixels of an unseen image into SIRENs that fill in the rest (see docs/hyper.md).

Heavy imports (torch) happen inside ``run`` so that ``--help`` stays instant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union

import tyro

from sdfrecon.cli.common import Common, Output
from sdfrecon.image.hyper.config import HyperConfig


def _passive_openmp() -> None:
    """Idle OpenMP threads sleep instead of spinning (see sdfrecon.cli.image.passive_openmp)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass(kw_only=True)
class HyperTrain(Common):
    """Train a hypernetwork on an image family (default: the ORL faces of
    ../shared/data/faces, at 32 x 32): a CNN over the masked image and its mask -> a code ->
    the weights of one SIREN per image. A fifth of the subjects are held out for validation.

    Writes into MODEL_DIR: model.pt (checkpointed every --checkpoint-every steps; --resume
    continues it), losses.csv (loss, batch PSNR, validation PSNR at 10, 100 and 1000
    observed pixels) and train.json. Stops at --steps or --time-budget seconds of training,
    whichever comes first.
    """

    output: Output
    """Model folder (MODEL_DIR)."""
    resume: bool = False
    """Continue the model in MODEL_DIR from its last checkpoint, with its network and data
    settings and the training options given now (--steps or --time-budget may be raised)."""
    overwrite: bool = False
    """Start again over a model already in MODEL_DIR."""
    config: Annotated[HyperConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=HyperConfig)

    def run(self) -> None:
        _passive_openmp()
        from sdfrecon.image.hyper.train import train_hyper

        _, s = train_hyper(self.config, self.output, self.resume, self.overwrite)
        val = ", ".join(f"{v:.2f} dB at {c}" for c, v in s["validation_psnr"].items())
        print(f"wrote {self.output}/model.pt after {s['steps']} steps in {s['train_seconds']:.0f} s: "
              f"validation PSNR {val} observed pixels")


@dataclass(kw_only=True)
class HyperComplete(Common):
    """Fill in an image from some of its pixels with a trained hypernetwork. The image is
    made grey, centre-cropped to a square and resized to the model's size (32 x 32 by
    default); observe --keep K random pixels of it, or those of --mask.

    Writes into OUT_DIR: completed.png (the model's size, observed pixels kept),
    completed_4x.png (the generated SIREN sampled at 4 times the size), observed.png (the
    kept pixels on grey) and metrics.json (PSNR and SSIM against the image, and those of
    linear interpolation).
    """

    model: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="MODEL_DIR")]]
    """Model folder written by `sdfrecon hyper train`."""
    image: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="IMAGE")]]
    """Image file (PNG, JPEG, TIFF, ...)."""
    output: Output
    """Output folder (OUT_DIR)."""
    keep: str | None = None
    """Pixels to observe at random, of the model-size image: a count (100), a share (0.1: any
    number with a point or below 1) or a percentage (10%)."""
    mask: str | None = None
    """Mask image of the model's size (32 x 32 by default): non-zero pixels are observed
    (instead of --keep)."""
    seed: int = 0
    """Seed of the random pixels of --keep."""
    overwrite: bool = False
    """Replace existing files in OUT_DIR."""

    def run(self) -> None:
        _passive_openmp()
        from sdfrecon.image.hyper.files import complete_files

        s = complete_files(self.model, self.image, self.output, self.keep, self.mask, self.seed, self.overwrite)
        print(f"wrote {self.output}/completed.png ({s['size']}x{s['size']}, {s['observed']} pixels "
              f"observed): PSNR {s['psnr']} dB, SSIM {s['ssim']} (linear interpolation {s['linear_psnr']} dB)")


Hyper = Union[  # noqa: UP007 (tyro reads the subcommands from a typing.Union)
    Annotated[HyperTrain, tyro.conf.subcommand("train")],
    Annotated[HyperComplete, tyro.conf.subcommand("complete")],
]
"""``sdfrecon hyper {train,complete}``."""
