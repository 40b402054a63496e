"""The training loop, shared by SDF and image fitting: Adam, warm-up and cosine schedule,
gradient clipping, a step or wall-time budget, a progress bar, a CSV loss log, periodic
checkpoints and NaN detection. What a step computes is the caller's ``loss_fn``."""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sdfrecon.config import TrainConfig
from sdfrecon.errors import TrainingError

if TYPE_CHECKING:
    from sdfrecon.sdf.optim import Adam


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but PyTorch sees no CUDA device")
    return torch.device(name)


def lr_factor(step: int, progress: float, config: TrainConfig) -> float:
    """Multiplier of config.lr: linear warm-up over warmup_steps, then constant or cosine
    decay to lr_final_ratio as ``progress`` (0..1, of steps or of the time budget) ends."""
    warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps > 0 else 1.0
    if config.lr_schedule == "constant":
        return warm
    p = min(max(progress, 0.0), 1.0)
    cosine = config.lr_final_ratio + (1 - config.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * p))
    return warm * cosine


@dataclass
class TrainState:
    """Where training stands; saved in checkpoints so that --resume continues exactly."""

    step: int = 0
    elapsed: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


LossFn = Callable[[], dict[str, torch.Tensor]]
CheckpointFn = Callable[[TrainState], None]


def _progress(state: TrainState, config: TrainConfig) -> float:
    by_steps = state.step / max(config.steps, 1)
    by_time = state.elapsed / config.time_budget if config.time_budget else 0.0
    return max(by_steps, by_time)


def _open_log(path: Path | None, keys: list[str], resume_step: int | None):
    """Open the CSV loss log: fresh, or on resume cut back to the checkpoint's step (rows a
    killed run wrote after its last checkpoint are dropped, so no step appears twice)."""
    if path is None:
        return None, None
    if resume_step is not None and path.exists():
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
        kept = rows[:1] + [r for r in rows[1:] if r and int(r[0]) <= resume_step]
        handle = path.open("w", newline="")
        writer = csv.writer(handle)
        writer.writerows(kept)
        return handle, writer
    handle = path.open("w", newline="")
    writer = csv.writer(handle)
    writer.writerow(["step", "seconds", "lr", *keys])
    return handle, writer


def _kept(checkpoint_fn: CheckpointFn | None, last_saved: int, resume_step: int | None) -> str:
    """What a failed run leaves behind, for the error message."""
    if checkpoint_fn is None:
        return "no checkpoint is written by this run"
    if last_saved == 0 and resume_step is None:
        return "it failed before the first checkpoint, so none was written"
    return f"the last good checkpoint (step {last_saved}) is kept"


def train(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | Adam,
    loss_fn: LossFn,
    config: TrainConfig,
    state: TrainState | None = None,
    log_path: Path | None = None,
    checkpoint_fn: CheckpointFn | None = None,
    description: str = "train",
) -> TrainState:
    """Run ``loss_fn`` + Adam steps from ``state.step`` until config.steps or the time budget.

    loss_fn returns named, weighted terms with a 'total'; they are logged every log_every
    steps to ``log_path`` (CSV, appended to on resume) and shown on the progress bar.
    checkpoint_fn(state) is called every checkpoint_every steps and at the end. A
    non-finite loss raises TrainingError; the last checkpoint written stays as it was.
    """
    from tqdm.auto import tqdm

    state = state or TrainState()
    base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
        g["initial_lr"] = lr
    handle, writer = None, None
    # disable=None: tqdm draws only on a terminal, so a log file gets no progress-bar spam
    bar = tqdm(total=config.steps, initial=state.step, desc=description,
               disable=None if config.progress else True, dynamic_ncols=True, leave=False)
    started = time.perf_counter() - state.elapsed
    last_saved = state.step  # the step of the checkpoint on disk (if any)
    resume_step = state.step if state.step > 0 else None
    try:
        while state.step < config.steps and _progress(state, config) < 1.0:
            factor = lr_factor(state.step, _progress(state, config), config)
            for g, lr in zip(optimizer.param_groups, base_lrs, strict=True):
                g["lr"] = lr * factor
            terms = loss_fn()
            total = terms["total"]
            if not torch.isfinite(total):
                raise TrainingError(f"the loss became {total.item()} at step {state.step}; "
                                    + _kept(checkpoint_fn, last_saved, resume_step))
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            state.step += 1
            state.elapsed = time.perf_counter() - started
            bar.update(1)
            if state.step % config.log_every == 0 or state.step == config.steps:
                row = {k: float(v.detach()) for k, v in terms.items()}
                state.history.append({"step": state.step, **row})
                if writer is None and log_path is not None:
                    handle, writer = _open_log(log_path, list(row), resume_step)
                if writer is not None:
                    writer.writerow([state.step, f"{state.elapsed:.3f}", f"{base_lrs[0] * factor:.3e}",
                                     *(f"{v:.6g}" for v in row.values())])
                bar.set_postfix({k: f"{v:.3g}" for k, v in row.items()}, refresh=False)
            if checkpoint_fn is not None and state.step % config.checkpoint_every == 0:
                if handle is not None:  # the log never runs ahead of the checkpoint on disk
                    handle.flush()
                checkpoint_fn(state)
                last_saved = state.step
    finally:
        bar.close()
        if handle is not None:
            handle.close()
    if checkpoint_fn is not None and last_saved != state.step:
        checkpoint_fn(state)
    return state
