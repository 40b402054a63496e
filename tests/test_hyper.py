"""The image hypernetwork: the generated SIREN's initialisation, completion with every pixel
observed, seamless tiling, exact resume, the commands and their bad-input errors. Tiny
models and a few steps on small images; training to a threshold is in the slow tests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdfrecon.errors import InputError
from sdfrecon.image.hyper import data as hyper_data
from sdfrecon.image.hyper.complete import CompleteConfig, blend_into, complete, tent, tile_starts
from sdfrecon.image.hyper.config import (
    HyperConfig,
    HyperDataConfig,
    HyperModelConfig,
    HyperTrainConfig,
)
from sdfrecon.image.hyper.files import parse_keep
from sdfrecon.image.hyper.model import HyperSiren, initial_weight_stats, siren_layers
from sdfrecon.sdf.siren import siren_uniform_bound

TINY = HyperModelConfig(encoder_width=8, latent=32, siren_hidden=16, siren_layers=1)
TINY_ARGS = ["--encoder-width", "8", "--latent", "32", "--siren-hidden", "16", "--siren-layers", "1",
             "--train-images", "skimage:coins", "--validation-images", "skimage:text",
             "--shares", "0.1", "0.5", "--validation-windows", "16", "--batch-size", "8",
             "--warmup-steps", "2", "--checkpoint-every", "3", "--validate-every", "3", "--no-progress",
             "--quiet"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_windows(config: HyperModelConfig, n: int = 64, share: float = 0.1) -> torch.Tensor:
    """Windows of a random image with ``share`` of the pixels observed."""
    rng = np.random.default_rng(0)
    s = config.patch + 2 * config.context
    image = rng.random((n, s, s)).astype(np.float32)
    mask = (rng.random((n, s, s)) < share).astype(np.float32)
    return torch.from_numpy(np.stack([image * mask, mask, image], 1))


@pytest.mark.parametrize("config", [HyperModelConfig(), TINY], ids=["default", "tiny"])
def test_generated_siren_starts_in_the_siren_initialisation(config):
    torch.manual_seed(0)
    model = HyperSiren(config)
    layers = siren_layers(config)
    stats = initial_weight_stats(model, random_windows(config))
    assert len(stats) == config.siren_layers + 2
    expected = [siren_uniform_bound(2, config.first_omega_0, True)]
    expected += [siren_uniform_bound(config.siren_hidden, config.hidden_omega_0, False)] * (len(layers) - 1)
    with torch.no_grad():
        params, _, _ = model.generate(random_windows(config))
    for i, ((w, b), layer, stat, bound) in enumerate(zip(params, layers, stats, expected, strict=True)):
        assert stat["bound"] == pytest.approx(bound)
        # U(-c, c): std c / sqrt(3), mean 0, (almost) all within the bound; the tolerance is
        # three standard errors of a sample of n (uniform: kurtosis 1.8), as the windows
        # share most of their weights
        n = layer.fan_in * layer.fan_out
        assert stat["std"] == pytest.approx(bound / np.sqrt(3), rel=3 * np.sqrt(0.8 / (4 * n)) + 0.02)
        assert abs(stat["mean"]) < 3 * bound / np.sqrt(3 * n) + 0.01 * bound
        assert float((w.abs() <= bound).float().mean()) > 0.9
        assert stat["max_abs"] < 1.3 * bound
        # the code's part (the rest is one SIREN init shared by all windows) is small:
        # init_spread of the spread, and the windows differ
        shared = model.heads[2 * i].bias.view(layer.fan_out, layer.fan_in) * bound
        code_part = float((w - shared.detach()).std()) / (bound / np.sqrt(3))
        assert 0.3 * config.init_spread < code_part < 3 * config.init_spread
        assert float(w.std(0).mean()) > 0
        bias_bound = 1 / np.sqrt(layer.fan_in)
        assert float((b.abs() <= bias_bound).float().mean()) > 0.9
        if layer.fan_out > 1:  # the output layer has one bias
            assert float(b.std()) == pytest.approx(bias_bound / np.sqrt(3),
                                                   rel=3 * np.sqrt(0.8 / (4 * layer.fan_out)) + 0.02)


def test_tiles_cover_every_pixel_and_blend_without_seams():
    for size in (32, 33, 47, 100, 256):
        starts = tile_starts(size, 32, 16)
        covered = np.zeros(size, int)
        for s in starts:
            covered[s:s + 32] += 1
        assert covered.min() >= 1 and starts[-1] == size - 32
    # tiles of different constants blend into a smooth image: no jump at a tile edge
    h, w = 100, 70
    origins = [(y, x) for y in tile_starts(h, 32, 16) for x in tile_starts(w, 32, 16)]
    values = np.random.default_rng(1).random(len(origins))
    weight = np.outer(tent(32), tent(32))
    acc, wsum = np.zeros((h, w)), np.zeros((h, w))
    blend_into(acc, wsum, origins, values[:, None, None] * np.ones((len(origins), 32, 32)), weight, 1)
    out = acc / wsum
    jumps = max(np.abs(np.diff(out, axis=0)).max(), np.abs(np.diff(out, axis=1)).max())
    assert jumps < 0.25 * (values.max() - values.min())
    # without the tent weights the same tiles leave jumps of the whole range at their edges
    acc, wsum = np.zeros((h, w)), np.zeros((h, w))
    blend_into(acc, wsum, origins, values[:, None, None] * np.ones((len(origins), 32, 32)),
               np.ones((32, 32)), 1)
    flat = acc / wsum
    assert max(np.abs(np.diff(flat, axis=0)).max(), np.abs(np.diff(flat, axis=1)).max()) > 2 * jumps


@pytest.mark.parametrize("residual", [True, False])
def test_a_constant_image_stays_constant(residual):
    torch.manual_seed(0)
    model = HyperSiren(dataclasses.replace(TINY, residual=residual))
    image = np.full((77, 50), 0.37, np.float32)
    mask = hyper_data.random_mask(77, 50, 300, np.random.default_rng(0))
    result = complete(model, image, mask)
    assert result.tiles == len(tile_starts(77, 32, 16)) * len(tile_starts(50, 32, 16))
    np.testing.assert_allclose(result.raw, 0.37, atol=1e-6)
    np.testing.assert_allclose(result.completed_2x, 0.37, atol=1e-6)
    assert result.completed_2x.shape == (154, 100)


def test_every_pixel_observed_gives_back_the_image(shared_data):
    torch.manual_seed(0)
    model = HyperSiren(TINY)
    image = hyper_data.load_grey(str(shared_data / "images" / "kodim09.png"))[:64, :96]
    result = complete(model, image, np.ones(image.shape, bool))
    np.testing.assert_array_equal(result.completed, image)
    # the blended SIRENs alone, before the observed pixels are put back
    assert np.abs(result.raw - image).max() < 0.1
    assert np.sqrt(np.mean((result.raw - image) ** 2)) < 0.01
    # the 2x image, averaged over 2x2 blocks, is the image again
    box = result.completed_2x.reshape(64, 2, 96, 2).mean((1, 3))
    assert np.sqrt(np.mean((box - image) ** 2)) < 0.03


def test_images_smaller_than_a_patch_are_completed():
    torch.manual_seed(0)
    model = HyperSiren(TINY)
    image = np.linspace(0, 1, 20 * 9, dtype=np.float32).reshape(20, 9)
    mask = hyper_data.random_mask(20, 9, 40, np.random.default_rng(0))
    result = complete(model, image, mask, CompleteConfig(fit_steps=2))
    assert result.completed.shape == (20, 9) and result.completed_2x.shape == (40, 18)
    np.testing.assert_array_equal(result.completed[mask], image[mask])


def test_linear_interpolation_is_exact_on_a_ramp_and_fills_outside_the_hull():
    rows, cols = np.mgrid[0:40, 0:30]
    image = (0.01 * rows + 0.02 * cols).astype(np.float32)
    mask = np.zeros((40, 30), bool)
    mask[5:35:3, 4:26:3] = True
    base = hyper_data.interpolate(image, mask)
    inside = np.zeros_like(mask)
    inside[5:33, 4:26] = True
    np.testing.assert_allclose(base[inside], image[inside], atol=1e-6)
    assert np.isfinite(base).all()
    # outside the hull: the nearest observed pixel's value
    assert base[0, 0] == pytest.approx(image[5, 4]) and base[39, 29] == pytest.approx(image[32, 25])


def test_keep_parsing():
    assert parse_keep("100", 1000) == 100
    assert parse_keep("0.1", 1000) == 100
    assert parse_keep("10%", 1000) == 100
    assert parse_keep("1.0", 1000) == 1000
    assert parse_keep("1", 1000) == 1
    for bad in ("0", "0%", "101%", "1001", "2.5", "-3", "nan", "ten"):
        with pytest.raises(InputError):
            parse_keep(bad, 1000)


def train_cli(folder: Path, *extra: str) -> int:
    from sdfrecon.cli import main

    return main(["hyper", "train", "-o", str(folder), *TINY_ARGS, *extra])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hyper") / "model"
    assert train_cli(folder, "--steps", "6") == 0
    return folder


def test_train_writes_a_model_folder_and_resumes_exactly(tiny_model, tmp_path, monkeypatch):
    summary = json.loads((tiny_model / "train.json").read_text())
    assert summary["steps"] == 6
    assert summary["train_sources"] == ["skimage:coins"]
    rows = (tiny_model / "losses.csv").read_text().splitlines()
    assert rows[0].split(",")[:4] == ["step", "seconds", "lr", "total"]
    # killed after the checkpoint of step 3, then --resume: the same weights as 6 steps at once
    # (no time budget, so that the learning rate depends on the step alone)
    from sdfrecon.image.hyper import train as hyper_train
    from sdfrecon.sdf.checkpoint import load_checkpoint

    whole_dir, part = tmp_path / "whole", tmp_path / "part"
    assert train_cli(whole_dir, "--steps", "6", "--time-budget", "None") == 0
    save = hyper_train.save_checkpoint

    def save_then_die(path, ckpt):
        save(path, ckpt)
        if ckpt.step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(hyper_train, "save_checkpoint", save_then_die)
    assert train_cli(part, "--steps", "6", "--time-budget", "None") == 130
    monkeypatch.setattr(hyper_train, "save_checkpoint", save)
    assert load_checkpoint(part / "model.pt", "hyper").step == 3
    assert train_cli(part, "--steps", "6", "--time-budget", "None", "--resume") == 0
    whole = load_checkpoint(whole_dir / "model.pt", "hyper").model
    resumed = load_checkpoint(part / "model.pt", "hyper")
    assert resumed.step == 6
    for name, tensor in whole.items():
        torch.testing.assert_close(resumed.model[name], tensor, msg=name)
    steps = [int(r.split(",")[0]) for r in (part / "losses.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps))


def test_complete_writes_the_four_files(tiny_model, tmp_path, capsys):
    from sdfrecon.cli import main

    image = (np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "in.png")
    out = tmp_path / "out"
    assert main(["hyper", "complete", str(tiny_model), str(tmp_path / "in.png"), "--keep", "10%",
                 "-o", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["observed"] == 200 and metrics["size"] == [50, 40]
    assert metrics["psnr"] > 5 and 0 < metrics["ssim"] <= 1
    completed = np.asarray(Image.open(out / "completed.png"))
    observed = np.asarray(Image.open(out / "observed.png"))
    assert completed.shape == (40, 50) and np.asarray(Image.open(out / "completed_2x.png")).shape == (80, 100)
    kept = observed != 128
    assert 150 <= kept.sum() <= 200  # the observed pixels (a few may be 128 themselves)
    np.testing.assert_array_equal(completed[kept], image[kept])
    # the same pixels through --mask
    Image.fromarray(((observed != 128) * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    assert main(["hyper", "complete", str(tiny_model), str(tmp_path / "in.png"), "--mask",
                 str(tmp_path / "mask.png"), "-o", str(tmp_path / "out2"), "--quiet"]) == 0
    assert json.loads((tmp_path / "out2" / "metrics.json").read_text())["observed"] == kept.sum()


def test_bad_input_exits_2_with_one_line(tiny_model, tmp_path, capsys):
    from sdfrecon.cli import main

    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "in.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    (tmp_path / "empty").mkdir()
    img, out = str(tmp_path / "in.png"), str(tmp_path / "out")
    cases = [
        ([str(tmp_path / "empty"), img, "--keep", "10"],
         f"{tmp_path / 'empty'}: is not a hyper model folder (it has no model.pt)"),
        ([str(tmp_path / "nope"), img, "--keep", "10"], f"{tmp_path / 'nope'}: no such model folder"),
        ([str(tiny_model), str(tmp_path / "junk.png"), "--keep", "10"],
         f"{tmp_path / 'junk.png'}: is not a readable image (its contents are not PNG or any other "
         "image format)"),
        ([str(tiny_model), img, "--keep", "0"], "--keep: '0' is out of range: a share must be above 0 and at most 1"),
        ([str(tiny_model), img, "--keep", "150%"],
         "--keep: '150%' is out of range: a percentage must be above 0% and at most 100%"),
        ([str(tiny_model), img, "--keep", "2001"],
         "--keep: '2001' is out of range: the image has 2000 pixels, so a count must be 1 to 2000"),
        ([str(tiny_model), img, "--mask", str(tmp_path / "small.png")],
         f"{tmp_path / 'small.png'}: is a 10x10 mask for a 50x40 image (they must be the same size)"),
        ([str(tiny_model), img], "--keep: give either --keep K or --mask MASK.png (exactly one of them)"),
    ]
    for args, line in cases:
        assert main(["hyper", "complete", *args, "-o", out]) == 2, line
        assert capsys.readouterr().err.splitlines() == [f"sdfrecon: error: {line}"]
        assert not Path(out).exists()
    assert train_cli(tiny_model, "--steps", "6") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sdfrecon: error: {tiny_model}: already holds a model (model.pt); use --resume to continue it "
        "or --overwrite to start again"]


@pytest.mark.slow
def test_default_training_beats_linear_interpolation_on_held_out_images(tmp_path):
    """The default recipe (about 12 minutes on a 2-core CPU), then 10 % of each held-out
    256 x 256 image: at least linear interpolation's mean PSNR."""
    from sdfrecon.image.hyper.train import train_hyper
    from sdfrecon.image.metrics import image_metrics

    model, _ = train_hyper(HyperConfig(train=HyperTrainConfig(progress=False)), tmp_path / "m")
    ours, linear = [], []
    for source in hyper_data.validation_sources():
        image = hyper_data.load_grey(source)[:256, :256]
        mask = hyper_data.random_mask(*image.shape, int(0.1 * image.size), np.random.default_rng(0))
        result = complete(model.network, image, mask, CompleteConfig(render_2x=False))
        ours.append(image_metrics(result.completed[..., None], image[..., None])["psnr"])
        linear.append(image_metrics(result.base[..., None], image[..., None])["psnr"])
    assert np.mean(ours) >= np.mean(linear)


def test_config_round_trip():
    from sdfrecon.config import to_dict
    from sdfrecon.image.hyper.config import hyper_config_from_dict

    config = HyperConfig(data=HyperDataConfig(shares=(0.2,), train_images=("a.png",)))
    assert hyper_config_from_dict(json.loads(json.dumps(to_dict(config)))) == config


def test_the_ensemble_of_symmetries_keeps_the_observed_pixels_and_constants():
    torch.manual_seed(0)
    model = HyperSiren(TINY)
    rng = np.random.default_rng(3)
    image = rng.random((45, 38)).astype(np.float32)
    mask = hyper_data.random_mask(45, 38, 400, rng)
    one = complete(model, image, mask)
    eight = complete(model, image, mask, CompleteConfig(ensemble=8))
    np.testing.assert_array_equal(eight.completed[mask], image[mask])
    assert eight.completed_2x.shape == (90, 76)
    assert 0 < np.abs(eight.raw - one.raw).max() < 0.2  # a different average of similar tiles
    flat = complete(model, np.full((45, 38), 0.6, np.float32), mask, CompleteConfig(ensemble=8))
    np.testing.assert_allclose(flat.completed_2x, 0.6, atol=1e-6)
