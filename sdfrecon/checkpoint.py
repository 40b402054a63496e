"""Checkpoints: weights, optimiser and generator state, the resolved config and the
normalisation, saved atomically and loaded with ``torch.load(weights_only=True)`` plus a
schema check (a crafted pickle cannot run code, a foreign file gets a clear error)."""

from __future__ import annotations

import json
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
        torch.save(payload, tmp)


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
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise InputError(path, f"is not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "is not an sdfrecon checkpoint")
    for key, typ in _SCHEMA.items():
        if not isinstance(payload.get(key), typ):
            raise InputError(path, f"is a damaged checkpoint: '{key}' is missing or of the wrong type")
    if payload["version"] != VERSION or payload["kind"] != kind:
        raise InputError(
            path, f"is a '{payload['kind']}' checkpoint of version {payload['version']}; "
            f"expected '{kind}' version {VERSION}"
        )
    try:
        config, extra = json.loads(payload["config"]), json.loads(payload["extra"])
    except json.JSONDecodeError:
        raise InputError(path, "is a damaged checkpoint: its config is not valid JSON") from None
    return Checkpoint(
        kind=kind, config=config, model=payload["model"], optimizer=payload["optimizer"],
        step=payload["step"], elapsed=payload["elapsed"], generator=payload["generator"], extra=extra,
    )
