"""Fitting a SIREN SDF to a normalised cloud: model, sampler, losses and the shared loop."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdfrecon.cloud.normalize import Normalization
from sdfrecon.config import ReconstructConfig, to_dict
from sdfrecon.geometry import CloudIndex
from sdfrecon.sdf.checkpoint import Checkpoint, generator_device, restore_generator, save_checkpoint
from sdfrecon.sdf.derivatives import divergence, gradient
from sdfrecon.sdf.losses import sdf_losses
from sdfrecon.sdf.optim import Adam
from sdfrecon.sdf.sampling import SdfSampler, free_space_margin
from sdfrecon.sdf.siren import SdfSiren
from sdfrecon.sdf.train import TrainState, train
from sdfrecon.timing import NoStages, Stages

log = logging.getLogger(__name__)


@dataclass
class SdfModel:
    """A trained SDF and the transform back to the input's coordinates."""

    network: SdfSiren
    normalization: Normalization
    config: ReconstructConfig
    source: str | None = None  # the input cloud's path, for re-meshing with its support

    def to_checkpoint(self, optimizer: Adam | torch.optim.Optimizer, state: TrainState,
                      generator: torch.Generator) -> Checkpoint:
        return Checkpoint(
            kind="sdf", config=to_dict(self.config), model=self.network.state_dict(),
            optimizer=optimizer.state_dict(), step=state.step, elapsed=state.elapsed,
            generator=generator.get_state(),
            extra={"normalization": self.normalization.to_dict(), "source": self.source,
                   "device": str(generator.device)},
        )


def fit_sdf(
    points: np.ndarray,
    normals: np.ndarray,
    normalization: Normalization,
    config: ReconstructConfig,
    device: torch.device,
    checkpoint_path: Path | None = None,
    log_path: Path | None = None,
    resume: Checkpoint | None = None,
    source: str | None = None,
    on_checkpoint: Callable[[SdfModel, TrainState], None] | None = None,
    stages: Stages | None = None,
    index: CloudIndex | None = None,
) -> tuple[SdfModel, TrainState]:
    """Train a SIREN on points (N, 3) and unit normals (N, 3), both already normalised.

    With ``resume`` the network, optimiser, generator and step continue from a checkpoint
    of the same config, so an interrupted run ends where an uninterrupted one would.
    on_checkpoint(model, state) is called wherever a checkpoint is due (every
    checkpoint_every steps and at the end), with or without a checkpoint file: for studies
    of the field during training. stages: seconds of the free-space pool, the training steps
    and the checkpoints. index: the points' k-d tree and spacing (built here when not given).
    """
    stages = stages or NoStages()
    torch.manual_seed(config.train.seed)
    network = SdfSiren(config.siren).to(device)
    optimizer = Adam(network.parameters(), lr=config.train.lr)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.train.seed)
    state = TrainState()
    if resume is not None:
        network.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        written = generator_device(resume)
        if not restore_generator(generator, resume.generator, config.train.seed, resume.step):
            log.warning("the checkpoint was written on %s and resumes on %s: the weights and the "
                        "optimiser continue, the sampling generator restarts from a seed (step %d)",
                        written, generator.device.type, resume.step)
        elif written != generator.device.type:
            log.info("the checkpoint was written on %s and resumes on %s", written, generator.device.type)
        state = TrainState(step=resume.step, elapsed=resume.elapsed)
    model = SdfModel(network, normalization, config, source)
    free = config.normals.normals_mode == "free"
    with stages("pool"):
        index = CloudIndex.of(points) if index is None else index
        margin = free_space_margin(points, config.loss.free_space_margin, index.spacing)
        sampler = SdfSampler(
            torch.as_tensor(points, dtype=torch.float32, device=device),
            None if free else torch.as_tensor(normals, dtype=torch.float32, device=device),
            config.sampling, generator, margin=margin, pool_seed=config.train.seed, index=index,
        )

    loss_config = dataclasses.replace(config.loss, normal_weight=0.0) if free else config.loss
    decay_steps = config.loss.divergence_decay * config.train.steps
    counter = {"step": state.step}
    analytic = config.train.gradient == "analytic"
    if analytic and config.train.compile:
        network.use_compiled_kernels()

    def loss_fn() -> dict[str, torch.Tensor]:
        batch = sampler.sample()
        diverging = free and counter["step"] < decay_steps
        div, weight = None, 0.0
        if diverging:
            weight = config.loss.divergence_weight * (1.0 - counter["step"] / decay_steps)
        if analytic and diverging:  # forward-mode Laplacian: no graph to x, one backward
            sdf, grad, div = network.value_gradient_laplacian(batch.points)
        elif analytic:
            sdf, grad = network.value_and_gradient(batch.points)
        else:
            x = batch.points.requires_grad_(True)
            sdf = network(x)
            grad = gradient(sdf, x)
            if diverging:
                div = divergence(grad, x)
        if free and not diverging:  # keep the term (at zero) so that the loss log keeps its columns
            div = torch.zeros_like(sdf)
        counter["step"] += 1
        return sdf_losses(batch, sdf, grad, loss_config, div, weight, margin)

    def checkpoint_fn(s: TrainState) -> None:
        with stages("checkpoints"):
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model.to_checkpoint(optimizer, s, generator))
            if on_checkpoint is not None:
                on_checkpoint(model, s)

    stages.add("training", 0.0)  # listed before the checkpoints it is interleaved with
    t = time.perf_counter()
    checkpoints = stages.seconds.get("checkpoints", 0.0)
    state = train(network, optimizer, loss_fn, config.train, state, log_path, checkpoint_fn, "fit sdf")
    stages.add("training", time.perf_counter() - t - (stages.seconds.get("checkpoints", 0.0) - checkpoints))
    network.eval()
    return model, state
