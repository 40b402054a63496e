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
    """Train a hypernetwork on patches of the training images (Kodak 01-07 and
    scikit-image's images; kodim08-11 and the cameraman are held out for validation).

    Writes into MODEL_DIR: model.pt (checkpointed every --checkpoint-every steps; --resume
    continues it), losses.csv (loss, batch PSNR, validation PSNR and that of linear
    interpolation) and train.json. Stops at --steps or --time-budget seconds, whichever
    comes first; the time budget includes reading the images (default: 11 minutes in all).
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
        print(f"wrote {self.output}/model.pt after {s['steps']} steps in {s['train_seconds']:.0f} s "
              f"(setup {s['setup_seconds']:.0f} s): validation PSNR {s['validation_psnr']:.2f} dB, "
              f"linear interpolation {s['validation_linear_psnr']:.2f} dB")


@dataclass(kw_only=True)
class HyperComplete(Common):
    """Fill in an image (any size; colour is converted to grey) from some of its pixels with
    a trained hypernetwork: observe --keep K random pixels, or those of --mask.

    Writes into OUT_DIR: completed.png (observed pixels kept), observed.png (the kept pixels
    on grey), completed_2x.png (the SIRENs sampled at twice the resolution) and metrics.json
    (PSNR and SSIM against the full image, and those of linear interpolation).
    """

    model: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="MODEL_DIR")]]
    """Model folder written by `sdfrecon hyper train`."""
    image: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="IMAGE")]]
    """Image file (PNG, JPEG, TIFF, ... or .npy), or skimage:NAME."""
    output: Output
    """Output folder (OUT_DIR)."""
    keep: str | None = None
    """Pixels to observe at random: a count (6554), a share (0.1: any number with a point or
    below 1) or a percentage (10%)."""
    mask: str | None = None
    """Mask image of the same size as IMAGE: non-zero pixels are observed (instead of --keep)."""
    seed: int = 0
    """Seed of the random pixels of --keep."""
    fit_steps: int = 0
    """Adam steps fitting each generated SIREN to its observed pixels (test-time fitting;
    0, the default, measured best in docs/hyper.md)."""
    ensemble: int = 1
    """Average the completions of this many turns and flips of the image (1, 2, 4 or 8)."""
    overwrite: bool = False
    """Replace existing files in OUT_DIR."""

    def run(self) -> None:
        _passive_openmp()
        from sdfrecon.image.hyper.files import complete_files

        s = complete_files(self.model, self.image, self.output, self.keep, self.mask, self.seed,
                           self.fit_steps, self.ensemble, self.overwrite)
        print(f"wrote {self.output}/completed.png ({s['size'][0]}x{s['size'][1]}, {s['observed']} pixels "
              f"observed): PSNR {s['psnr']} dB, SSIM {s['ssim']} (linear interpolation {s['linear_psnr']} dB) "
              f"in {s['complete_seconds']:.1f} s")


Hyper = Union[  # noqa: UP007 (tyro reads the subcommands from a typing.Union)
    Annotated[HyperTrain, tyro.conf.subcommand("train")],
    Annotated[HyperComplete, tyro.conf.subcommand("complete")],
]
"""``sdfrecon hyper {train,complete}``."""
