"""The image hypernetwork: the generated SIREN's initialisation, a model that reproduces an
image when every pixel is observed, the split by subject, and the commands with their
bad-input errors. Tiny models, few steps, 16 x 16 images; training to the benchmark's
numbers is docs/hyper.md's command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sdfrecon.image.hyper import data as hyper_data
from sdfrecon.image.hyper.config import HyperModelConfig
from sdfrecon.image.hyper.files import parse_keep
from sdfrecon.image.hyper.model import HyperSiren, siren_layers, weight_stats
from sdfrecon.sdf.siren import siren_uniform_bound

TINY = HyperModelConfig(encoder_width=8, latent=32, head_hidden=32, siren_hidden=16, siren_layers=1)
TINY_ARGS = ["--encoder-width", "8", "--latent", "32", "--head-hidden", "32", "--siren-hidden", "16",
             "--siren-layers", "1", "--size", "16", "--batch-size", "8", "--warmup-steps", "2",
             "--checkpoint-every", "3", "--validate-every", "3", "--no-progress", "--quiet"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def with_prior(model: HyperSiren, side: int) -> HyperSiren:
    """``model`` with the prior channel's Gaussian fitted on 40 random images of side x side."""
    from sdfrecon.image.hyper.baselines import GaussianPrior

    images = np.random.default_rng(5).random((40, side, side))
    mean, basis = GaussianPrior.fit(images, {}).low_rank(model.config.prior_components)
    model.set_prior(torch.from_numpy(mean).float(), torch.from_numpy(basis).float())
    return model


def random_batch(n: int = 64, side: int = 32, count: int = 100) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.random((n, side, side)).astype(np.float32))
    mask = torch.from_numpy(np.stack([hyper_data.random_mask(side, side, count, rng) for _ in range(n)]))
    return image, mask.float()


@pytest.mark.parametrize("config", [HyperModelConfig(), TINY], ids=["default", "tiny"])
def test_generated_siren_starts_in_the_siren_initialisation(config):
    torch.manual_seed(0)
    model = with_prior(HyperSiren(config), 32)
    layers = siren_layers(config)
    image, mask = random_batch()
    stats = weight_stats(model, image, mask)
    assert len(stats) == config.siren_layers + 2
    expected = [siren_uniform_bound(2, config.first_omega_0, True)]
    expected += [siren_uniform_bound(config.siren_hidden, config.hidden_omega_0, False)] * (len(layers) - 1)
    with torch.no_grad():
        params = model.generate(image, mask)
    for (w, b), layer, stat, bound in zip(params, layers, stats, expected, strict=True):
        # first layer U(-1/in, 1/in), the others U(-sqrt(6/in)/w0, sqrt(6/in)/w0): std c / sqrt 3,
        # mean 0, (almost) all within the bound; biases U(-1/sqrt(in), 1/sqrt(in))
        assert stat["bound"] == pytest.approx(bound)
        n = layer.fan_in * layer.fan_out
        assert stat["std"] == pytest.approx(bound / np.sqrt(3), rel=3 * np.sqrt(0.8 / (4 * n)) + 0.03)
        assert abs(stat["mean"]) < 3 * bound / np.sqrt(3 * n) + 0.01 * bound
        assert float((w.abs() <= bound).float().mean()) > 0.9
        assert stat["max_abs"] < 1.3 * bound
        assert float(b.abs().max()) < 1.3 / np.sqrt(layer.fan_in)
        # each image gets its own SIREN, but close to a shared one (the code's part is small)
        spread = float(w.std(0).mean()) / (bound / np.sqrt(3))
        assert 0.01 * config.init_spread < spread < 1.5 * config.init_spread


def test_every_pixel_observed_a_fitted_model_gives_back_the_image():
    """A tiny model trained for 300 steps on one 16 x 16 image with every pixel observed:
    its SIREN alone (no pixel copied) reproduces the image to 25 dB, not the 17 dB of its
    mean; and the 4x rendering averages back to it."""
    from sdfrecon.image.hyper.complete import complete

    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    image = (0.5 + 0.3 * np.sin(3 * xx) * np.cos(2 * yy) + 0.15 * (xx > 0.5)).astype(np.float32)
    torch.manual_seed(0)
    model = with_prior(HyperSiren(TINY), 16)
    x, m = torch.from_numpy(image)[None], torch.ones(1, 16, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(300):
        loss = (model(x, m) - x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = complete(model, image, np.ones((16, 16), bool))
    psnr = -10 * np.log10(np.mean((result.raw - image) ** 2))
    assert psnr > 25, psnr
    assert -10 * np.log10(np.mean((image.mean() - image) ** 2)) < 18
    assert result.upsampled.shape == (64, 64)
    pooled = result.upsampled.reshape(16, 4, 16, 4).mean((1, 3))
    assert np.abs(pooled - result.raw).mean() < 0.03


def test_prior_channel_is_the_gaussian_posterior_mean():
    """The prior channel (a k x k solve) is the baseline's pixel-space posterior mean when k
    is the covariance's full rank; with every pixel observed and little noise it gives back an
    image of the prior's span (a training image), and with the mask all zero the mean."""
    from sdfrecon.image.hyper.baselines import GaussianPrior
    from sdfrecon.image.hyper.model import gaussian_posterior

    rng = np.random.default_rng(0)
    images = rng.random((30, 8, 8))
    prior = GaussianPrior.fit(images, {})
    mean, basis = (torch.from_numpy(a) for a in prior.low_rank(29))  # rank: 30 images - 1
    x = torch.from_numpy(rng.random((1, 8, 8)) * 0.5 + 0.25)
    mask = hyper_data.random_mask(8, 8, 20, rng)
    m = torch.from_numpy(mask[None].astype(np.float64))
    ours = gaussian_posterior(x, m, mean, basis, 1e-3)[0].numpy()
    np.testing.assert_allclose(np.clip(ours, 0, 1), prior.complete(x[0].numpy(), mask, 1e-3), atol=1e-4)
    train = torch.from_numpy(images[3:4])
    full = gaussian_posterior(train, torch.ones(1, 8, 8, dtype=torch.float64), mean, basis, 1e-8)
    np.testing.assert_allclose(full.numpy(), images[3:4], atol=1e-4)
    # an image off the span is not given back: the channel is a prior, not a copy
    off = gaussian_posterior(x, torch.ones(1, 8, 8, dtype=torch.float64), mean, basis, 1e-8)
    assert float((off - x).abs().mean()) > 0.05
    none = gaussian_posterior(x, torch.zeros(1, 8, 8, dtype=torch.float64), mean, basis, 1e-3)
    np.testing.assert_allclose(none[0].numpy().ravel(), prior.mean, atol=1e-12)


def test_fold_priors_never_see_the_image_s_subject():
    """Training images get the prior channel from the other folds' subjects: under it, with
    every pixel observed, a random image is not given back (it is off their span), while under
    the prior of every training image it is; a subject's images share one fold."""
    from sdfrecon.image.hyper.config import HyperConfig, HyperDataConfig
    from sdfrecon.image.hyper.model import gaussian_posterior
    from sdfrecon.image.hyper.train import fold_priors, full_prior

    rng = np.random.default_rng(0)
    images = rng.random((16, 8, 8)).astype(np.float32)
    subjects = [f"s{i // 2:02d}" for i in range(16)]
    config = HyperConfig(model=HyperModelConfig(prior_components=31), data=HyperDataConfig(prior_folds=4))
    fold, means, bases = fold_priors(images, subjects, config)
    assert sorted(set(fold.tolist())) == [0, 1, 2, 3] and np.all(fold[0::2] == fold[1::2])
    x, ones = torch.from_numpy(images).double(), torch.ones(16, 8, 8, dtype=torch.float64)
    own = gaussian_posterior(x, ones, torch.from_numpy(means[fold]).double(),
                             torch.from_numpy(bases[fold]).double(), 1e-6)
    mean, basis = full_prior(images, 31)
    everyone = gaussian_posterior(x, ones, mean.double(), basis.double(), 1e-6)
    assert float((everyone - x).abs().max()) < 1e-2
    assert float((own - x).abs().mean((1, 2)).min()) > 0.1


def test_split_by_subject_shares_no_subject(shared_data):
    faces = sorted((shared_data / "faces").glob("*.png"))
    if not faces:
        pytest.skip("../shared/data/faces has no images")
    subjects = [hyper_data.subject_of(p) for p in faces]
    assert len(set(subjects)) == 35 and subjects.count("s01") == 10
    for seed in range(5):
        train, val = hyper_data.split_by_subject(subjects, 0.2, seed)
        assert len(train) + len(val) == len(faces) and len(val) == 70
        assert not {subjects[i] for i in train} & {subjects[i] for i in val}
    # any other file name is a subject of its own (the Kodak photos)
    assert hyper_data.subject_of("kodim01.png") == "kodim01"
    assert hyper_data.subject_of("s7_3.png") == "s7" and hyper_data.subject_of("s07_x.png") == "s07_x"


def test_images_are_centre_cropped_squares():
    image = np.zeros((112, 92), np.float32)
    image[10:102] = 1.0  # the centred 92 x 92 square
    out = hyper_data.square(image, 23)
    assert out.shape == (23, 23) and out.min() > 0.99


def test_keep_parsing():
    assert parse_keep("100", 1024) == 100
    assert parse_keep("10%", 1024) == 102
    assert parse_keep("0.5", 1024) == 512
    with pytest.raises(Exception, match="out of range"):
        parse_keep("2000", 1024)


def make_family(folder: Path, subjects: int = 4, per: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for s in range(1, subjects + 1):
        for k in range(1, per + 1):
            image = (rng.random((28, 24)) * 255).astype(np.uint8)
            Image.fromarray(image).save(folder / f"s{s:02d}_{k:02d}.png")
    return folder


def train_cli(folder: Path, images: Path, *extra: str) -> int:
    from sdfrecon.cli import main

    return main(["hyper", "train", "--images", str(images), *TINY_ARGS, "-o", str(folder), *extra])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hyper")
    images = make_family(root / "faces")
    assert train_cli(root / "model", images, "--steps", "6") == 0
    return root / "model", images


def test_train_writes_a_model_folder_split_by_subject(tiny_model):
    folder, _ = tiny_model
    summary = json.loads((folder / "train.json").read_text())
    assert summary["steps"] == 6 and summary["train_images"] == 9
    assert len(summary["validation_subjects"]) == 1
    assert set(summary["validation_psnr"]) == {"10", "100", "1000"}
    rows = (folder / "losses.csv").read_text().splitlines()
    assert rows[0].split(",")[:5] == ["step", "seconds", "lr", "total", "psnr"]


def test_the_model_s_prior_is_of_its_training_images_only(tiny_model):
    """The prior channel of a trained model is the Gaussian of its training images and their
    mirrors: no held-out face is in it."""
    from sdfrecon.image.hyper.baselines import with_flips
    from sdfrecon.image.hyper.train import HyperModel

    folder, _ = tiny_model
    model = HyperModel.load(folder)
    train = np.stack([hyper_data.load_square(f, 16) for f in model.train_files])
    held = np.stack([hyper_data.load_square(f, 16) for f in model.validation_files])
    mean = model.network.prior_mean.numpy()
    np.testing.assert_allclose(mean, with_flips(train).mean(0).ravel(), atol=1e-6)
    assert np.abs(mean - with_flips(np.concatenate([train, held])).mean(0).ravel()).max() > 1e-3
    assert model.network.prior_basis.shape == (256, TINY.prior_components)


def test_complete_writes_the_four_files(tiny_model, tmp_path):
    from sdfrecon.cli import main

    folder, images = tiny_model
    source = images / "s01_01.png"
    out = tmp_path / "out"
    assert main(["hyper", "complete", str(folder), str(source), "--keep", "50", "-o", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["observed"] == 50 and metrics["size"] == 16
    assert 0 < metrics["ssim"] <= 1 and metrics["psnr"] > 5
    completed = np.asarray(Image.open(out / "completed.png"))
    observed = np.asarray(Image.open(out / "observed.png"))
    assert completed.shape == (16, 16) and np.asarray(Image.open(out / "completed_4x.png")).shape == (64, 64)
    square = np.round(hyper_data.load_square(source, 16) * 255).astype(np.uint8)
    kept = observed != 128
    assert 40 <= kept.sum() <= 50  # the observed pixels (a few may be 128 themselves)
    np.testing.assert_array_equal(completed[kept], square[kept])
    Image.fromarray((kept * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    assert main(["hyper", "complete", str(folder), str(source), "--mask", str(tmp_path / "mask.png"),
                 "-o", str(tmp_path / "out2"), "--quiet"]) == 0
    assert json.loads((tmp_path / "out2" / "metrics.json").read_text())["observed"] == kept.sum()


def test_bad_input_exits_2_with_one_line(tiny_model, tmp_path, capsys):
    from sdfrecon.cli import main
    from sdfrecon.sdf.checkpoint import load_checkpoint, save_checkpoint

    folder, images = tiny_model
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "empty.png")
    old = tmp_path / "old"
    old.mkdir()
    ckpt = load_checkpoint(folder / "model.pt", "hyper")
    ckpt.extra.pop("format_version")  # as the models of the old tiled hypernetwork were written
    save_checkpoint(old / "model.pt", ckpt)
    img, out = str(images / "s01_01.png"), str(tmp_path / "out")
    cases = [
        ([str(folder), img, "--mask", str(tmp_path / "small.png")],
         f"{tmp_path / 'small.png'}: is a 10x10 mask for a 16x16 image (they must be the same size)"),
        ([str(folder), img, "--mask", str(tmp_path / "empty.png")],
         f"{tmp_path / 'empty.png'}: observes no pixel (every value is zero)"),
        ([str(old), img, "--keep", "10"],
         f"{old / 'model.pt'}: is a hyper model of format 1; this sdfrecon reads format 3 (train it "
         "again with 'sdfrecon hyper train')"),
        ([str(tmp_path / "nope"), img, "--keep", "10"], f"{tmp_path / 'nope'}: no such model folder"),
        ([str(folder), img, "--keep", "300"],
         "--keep: '300' is out of range: the image has 256 pixels, so a count must be 1 to 256"),
        ([str(folder), img], "--keep: give either --keep K or --mask MASK.png (exactly one of them)"),
    ]
    for args, line in cases:
        assert main(["hyper", "complete", *args, "-o", out]) == 2, line
        assert capsys.readouterr().err.splitlines() == [f"sdfrecon: error: {line}"]
        assert not Path(out).exists()
    assert train_cli(folder, images, "--steps", "6") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sdfrecon: error: {folder}: already holds a model (model.pt); use --resume to continue it "
        "or --overwrite to start again"]
    (tmp_path / "one").mkdir()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "one" / "s01_01.png")
    assert train_cli(tmp_path / "m", tmp_path / "one", "--steps", "2") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"sdfrecon: error: {tmp_path / 'one'}: holds one subject; the split by subject needs two or more"]


def test_config_round_trip():
    from sdfrecon.config import to_dict
    from sdfrecon.image.hyper.config import HyperConfig, hyper_config_from_dict

    config = HyperConfig(model=HyperModelConfig(encoder_scales=(1.5, 3.0)))
    assert hyper_config_from_dict(json.loads(json.dumps(to_dict(config)))) == config
