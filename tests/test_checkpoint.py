"""Checkpoints: round trip, and refusal of files that are not plain-data checkpoints."""

from __future__ import annotations

import pytest
import torch

from sdfrecon.errors import InputError
from sdfrecon.sdf.checkpoint import UNSAFE, Checkpoint, load_checkpoint, save_checkpoint


def _checkpoint() -> Checkpoint:
    g = torch.Generator().manual_seed(3)
    return Checkpoint(kind="sdf", config={"a": 1}, model={"w": torch.arange(4.0)},
                      optimizer={"state": {}, "param_groups": []}, step=7, elapsed=1.5,
                      generator=g.get_state(), extra={"normalization": {"center": [0, 0, 0], "scale": 2.0}})


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(path, _checkpoint())
    loaded = load_checkpoint(path, "sdf")
    assert loaded.step == 7 and loaded.config == {"a": 1}
    assert torch.equal(loaded.model["w"], torch.arange(4.0))
    assert loaded.extra["normalization"]["scale"] == 2.0
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp left


class _Evil:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.write_text, (pathlib.Path(_Evil.target), "pwned"))


def test_crafted_pickle_does_not_run(tmp_path):
    _Evil.target = str(tmp_path / "pwned.txt")
    path = tmp_path / "evil.pt"
    torch.save({"format": "sdfrecon-checkpoint", "payload": _Evil()}, path)
    with pytest.raises(InputError) as err:
        load_checkpoint(path, "sdf")
    assert str(err.value) == f"{path}: {UNSAFE}"
    assert not (tmp_path / "pwned.txt").exists()
    torch.load(path, weights_only=False)  # the unsafe load really does run the payload
    assert (tmp_path / "pwned.txt").read_text() == "pwned"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint at all", "is not a readable checkpoint (not a file written by torch.save)"),
        (None, "is not an sdfrecon checkpoint"),
    ],
)
def test_foreign_files_are_refused(tmp_path, content, message):
    path = tmp_path / "x.pt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_checkpoint(path, "sdf")
    assert str(err.value) == f"{path}: {message}"


def test_wrong_kind_and_damaged(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _checkpoint())
    with pytest.raises(InputError, match="is a 'sdf' checkpoint of version 1; expected 'image'"):
        load_checkpoint(path, "image")
    payload = torch.load(path, weights_only=True)
    payload["step"] = "seven"
    torch.save(payload, path)
    with pytest.raises(InputError, match="'step' is missing or of the wrong type"):
        load_checkpoint(path, "sdf")
