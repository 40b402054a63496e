"""Checkpoints: weights, optimiser and generator state, the resolved config and the
normalisation, saved atomically and loaded with ``torch.load(weights_only=True)`` plus a
schema check (a crafted pickle cannot run code, a foreign file gets a clear error)."""

from __future__ import annotations

import errno
import json
import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sdfrecon.errors import InputError

UNSAFE = ("refused to load: not a plain-data checkpoint (it holds objects other than "
          "tensors and plain values, which could run code)")
FORMAT = "sdfrecon-checkpoint"
VERSION = 1
_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "version": int,
    "kind": str,
    "config": str,
    "model": dict,
    "optimizer": dict,
    "step": int,
    "elapsed": float,
    "generator": torch.Tensor,
    "extra": str,
}


@dataclass
class Checkpoint:
    """What a checkpoint holds. config and extra are JSON-ready dicts; kind names the model
    family ('sdf' or 'image'); extra holds the kind's own data (the normalisation, say)."""

    kind: str
    config: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    step: int
    elapsed: float
    generator: torch.Tensor
    extra: dict[str, Any]


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write ckpt to path through a temporary file and a rename (never half-written)."""
    from sdfrecon.io import atomic_write

    payload = {
        "format": FORMAT,
        "version": VERSION,
        "kind": ckpt.kind,
        "config": json.dumps(ckpt.config),
        "model": {k: v.detach().cpu() for k, v in ckpt.model.items()},
        "optimizer": ckpt.optimizer,
        "step": int(ckpt.step),
        "elapsed": float(ckpt.elapsed),
        "generator": ckpt.generator.cpu(),
        "extra": json.dumps(ckpt.extra),
    }
    with atomic_write(path, overwrite=True) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as err:  # torch reports a failed write (a full disk) this way
            raise OSError(errno.EIO, f"torch.save failed: {str(err).splitlines()[0]}") from err


def _schema_problem(payload: dict) -> str | None:
    """What is wrong inside the top-level fields (their types are already checked), or None."""
    model = payload["model"]
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        return "'model' must map names to tensors"
    optimizer = payload["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        return "'optimizer' lacks 'state' and 'param_groups'"
    generator = payload["generator"]
    if generator.dtype != torch.uint8 or generator.dim() != 1:
        return "'generator' is not a generator state (a 1-D uint8 tensor)"
    if payload["step"] < 0 or not math.isfinite(payload["elapsed"]) or payload["elapsed"] < 0:
        return "'step' or 'elapsed' is negative or not finite"
    return None


def load_checkpoint(path: str | Path, kind: str) -> Checkpoint:
    """Load and check a checkpoint of the given kind; InputError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such checkpoint file" if not path.exists() else "is not a file")
    if not zipfile.is_zipfile(path):
        raise InputError(path, "is not a readable checkpoint (not a file written by torch.save)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(path, UNSAFE) from None
    except Exception as err:  # a damaged archive raises many types (RuntimeError, KeyError, ...)
        raise InputError(path, f"is not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "is not an sdfrecon checkpoint")
    for key, typ in _SCHEMA.items():
        if not isinstance(payload.get(key), typ):
            raise InputError(path, f"is a damaged checkpoint: '{key}' is missing or of the wrong type")
    problem = _schema_problem(payload)
    if problem:
        raise InputError(path, f"is a damaged checkpoint: {problem}")
    if payload["version"] != VERSION or payload["kind"] != kind:
        raise InputError(
            path, f"is a '{payload['kind']}' checkpoint of version {payload['version']}; "
            f"expected '{kind}' version {VERSION}"
        )
    try:
        config, extra = json.loads(payload["config"]), json.loads(payload["extra"])
    except (json.JSONDecodeError, RecursionError):
        raise InputError(path, "is a damaged checkpoint: its config is not valid JSON") from None
    if not isinstance(config, dict) or not isinstance(extra, dict):
        raise InputError(path, "is a damaged checkpoint: its config is not a JSON object")
    return Checkpoint(
        kind=kind, config=config, model=payload["model"], optimizer=payload["optimizer"],
        step=payload["step"], elapsed=payload["elapsed"], generator=payload["generator"], extra=extra,
    )


CUDA_STATE_BYTES = 16
"""Size of a CUDA (Philox) generator's state: seed and offset, 8 bytes each; a CPU
(Mersenne twister) generator's state is 5,056 bytes. Neither loads into the other."""


def generator_device(ckpt: Checkpoint) -> str:
    """The device type whose generator wrote ckpt ('cuda', 'cpu', ...): as recorded, or for
    checkpoints that predate the record, told by the size of the generator state."""
    recorded = ckpt.extra.get("device")
    if isinstance(recorded, str) and recorded:
        return recorded.split(":")[0]
    return "cuda" if ckpt.generator.numel() == CUDA_STATE_BYTES else "cpu"


def check_generator_state(state: torch.Tensor) -> None:
    """Raise ValueError (or RuntimeError) when state is neither a CUDA generator's state nor
    one that a CPU generator accepts. A CUDA-shaped state is checked by its size only, so
    that a checkpoint written on a GPU can be checked (and resumed) without one."""
    if state.numel() == CUDA_STATE_BYTES:
        return
    torch.Generator().set_state(state)


def restore_generator(generator: torch.Generator, state: torch.Tensor, seed: int, step: int) -> bool:
    """Continue ``generator`` from a saved state; True when it continues exactly.

    A state written on another kind of device (CUDA's 16 bytes on a CPU, say) cannot be
    loaded: the generator is then seeded from (seed, step) instead, so a resumed run is
    still reproducible, but it draws other samples from there on than the first run would.
    """
    try:
        generator.set_state(state.cpu())
        return True
    except (RuntimeError, ValueError):
        generator.manual_seed((seed * 1_000_003 + step) % 2**63)
        return False

