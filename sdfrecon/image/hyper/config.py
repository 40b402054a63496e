"""Configuration of the image hypernetwork (``sdfrecon hyper train``): the generated SIREN,
the encoder, the image family and the training loop.

Field docstrings are the ``--help`` text. The defaults are the CPU recipe measured in
docs/hyper.md. No torch import here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sdfrecon.config import TrainConfig

FORMAT_VERSION = 3
"""Version of the model file: a model.pt of another version is refused with one line."""
SHARED_FACES = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "faces"
"""../shared/data/faces beside the checkout (the ORL faces)."""


@dataclass(frozen=True)
class HyperModelConfig:
    encoder_width: int = 16
    """Channels of the encoder CNN's first stage (doubled at each of its 3 down-samplings)."""
    encoder_scales: tuple[float, ...] = (1.5, 4.0)
    """Gaussian widths (pixels) of the normalised convolutions of the observed pixels that the
    encoder sees beside the masked image and the mask (none: those two alone)."""
    prior_components: int = 128
    """Principal components of the linear-Gaussian prior (the training faces' mean and
    covariance) whose posterior mean given the observed pixels is one more encoder channel
    (0: no such channel)."""
    prior_noise: float = 3e-3
    """Observation noise variance (grey levels squared) of that posterior mean."""
    latent: int = 256
    """Size of the code the encoder maps an image and its mask to."""
    code_dropout: float = 0.0
    """Dropout on the latent code during training (against learning the training subjects)."""
    head_hidden: int = 256
    """Width of the hidden layer of each layer's hypernetwork head."""
    siren_hidden: int = 32
    """Width of the generated SIREN's sine layers."""
    siren_layers: int = 2
    """Hidden sine layers of the generated SIREN after its first one (the output is linear)."""
    first_omega_0: float = 30.0
    """omega_0 of the generated SIREN's first layer (the image spans [-1, 1])."""
    hidden_omega_0: float = 30.0
    """omega_0 of its hidden layers."""
    init_spread: float = 0.1
    """At initialisation, the code's share of each generated weight's spread; the rest is one
    SIREN initialisation shared by all images (learned as training goes on)."""


@dataclass(frozen=True)
class HyperDataConfig:
    images: str = str(SHARED_FACES)
    """Folder of the image family (PNG); files named sNN_MM.png belong to subject sNN, any
    other file is a subject of its own."""
    size: int = 32
    """Side of the square the images are centre-cropped and resized to."""
    min_observed: int = 10
    """Fewest observed pixels of a training mask."""
    max_observed: int = 1000
    """Most observed pixels of a training mask (counts are drawn log-uniformly; new masks
    every step)."""
    flip: bool = True
    """Left-right flips of the training images (a flipped face is a face)."""
    shift: float = 2.0
    """Random translations of the training images, up to this many pixels each way."""
    zoom: float = 0.1
    """Random zooms of the training images, by up to this share in or out."""
    contrast: float = 0.3
    """Random contrast changes about mid-grey, by up to this share (and brightness changes of
    a third of it): the ORL faces' lighting varies, and so the family's memorised identities
    are not enough."""
    validation_share: float = 0.2
    """Share of the subjects held out for validation (never of the images)."""
    prior_folds: int = 4
    """The training subjects are cut into this many folds; a training image's prior channel
    comes from the prior of the other folds, never of its own subject, as a held-out face's
    comes from a prior that never saw it (1: one prior of every training subject)."""
    split_seed: int = 0
    """Seed of the subject split."""


@dataclass(frozen=True)
class HyperTrainConfig(TrainConfig):
    steps: int = 100000
    """Optimisation steps (training also stops at --time-budget, whichever comes first)."""
    time_budget: float | None = 1140.0
    """Wall-clock limit of the training loop in seconds; the learning-rate schedule anneals
    to whichever of --steps and the budget comes first."""
    lr: float = 2e-3
    """Peak learning rate of Adam."""
    lr_final_ratio: float = 0.02
    """Final learning rate as a fraction of --lr (cosine schedule)."""
    batch_size: int = 16
    """Images per step (each with its own random mask)."""
    warmup_steps: int = 100
    """Linear warm-up of the learning rate, in steps."""
    loss_pixels: int = 256
    """Pixels (the same random ones for the batch, new every step) the loss is computed at;
    0: every pixel. A quarter of a 32 x 32 image costs a third of the step time."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value; None disables clipping."""
    checkpoint_every: int = 500
    """Write model.pt every this many steps (and at the end)."""
    log_every: int = 10
    """Write a row of the loss log every this many steps."""
    validate_every: int = 250
    """Compute the validation PSNR at 10, 100 and 1000 observed pixels every this many steps."""
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    """Where to train (the default recipe is sized for a CPU)."""


@dataclass(frozen=True)
class HyperConfig:
    """Everything that decides a hypernetwork; saved in model.pt."""

    model: HyperModelConfig = field(default_factory=HyperModelConfig)
    data: HyperDataConfig = field(default_factory=HyperDataConfig)
    train: HyperTrainConfig = field(default_factory=HyperTrainConfig)


def hyper_config_from_dict(data: dict[str, Any]) -> HyperConfig:
    """Rebuild a :class:`HyperConfig` from ``to_dict`` output (model.pt's); ValueError or
    TypeError when a field is unknown."""
    known = {"model": HyperModelConfig, "data": HyperDataConfig, "train": HyperTrainConfig}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown HyperConfig fields: {sorted(unknown)}")
    parts = {k: known[k](**v) for k, v in data.items()}
    if "model" in parts:
        parts["model"] = HyperModelConfig(**{**data["model"], "encoder_scales": tuple(
            data["model"].get("encoder_scales", ()))})
    return HyperConfig(**parts)
