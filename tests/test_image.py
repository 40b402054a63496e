"""Image fitting: coordinate and derivative conventions, each target on a small image, the
least-squares offset, rendering at other sizes, blending, the commands and their errors
(fit-image's presets: test_image_presets.py). Everything runs on tiny images (32 x 32) and
small networks, in seconds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import tyro
from torch import nn

from sdfrecon.cli.image import Blend, FitImage, RenderImage
from sdfrecon.errors import InputError
from sdfrecon.image import data, plots
from sdfrecon.image.config import ImageConfig
from sdfrecon.image.fit import (
    ImageModel,
    blend_target,
    fit_image,
    predict,
    render,
    render_derivatives,
)
from sdfrecon.image.metrics import fit_offset, image_metrics, offset_field
from sdfrecon.image.models import build_model
from sdfrecon.sdf.checkpoint import load_checkpoint

SMALL = ["--hidden-features", "32", "--hidden-layers", "2", "--warmup-steps", "10", "--no-progress",
         "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These fits are tiny: one thread is much faster than two fighting over a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(target: str = "pixels", steps: int = 300, width: int = 64, **train) -> ImageConfig:
    """A small network for a few hundred steps on a tiny image: 1e-3 suits every target there
    (the per-target defaults are for the default 256 x 256 image and 2000 steps)."""
    train.setdefault("lr", 1e-3)
    cfg = ImageConfig()
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, hidden_features=width, hidden_layers=2),
        fit=dataclasses.replace(cfg.fit, target=target, batch_size=None),
        train=dataclasses.replace(cfg.train, steps=steps, progress=False, device="cpu", warmup_steps=10,
                                  **train),
    )


@pytest.fixture(scope="module")
def camera32() -> np.ndarray:
    return data.load_image(None, (32, 32))


# --- conventions -----------------------------------------------------------------------------


def test_pixel_coordinates_are_the_centres_of_a_grid_on_minus_one_one():
    c = data.pixel_coordinates(2, 4)
    assert c.shape == (8, 2) and c.dtype == np.float32
    np.testing.assert_allclose(c[:4, 0], [-0.75, -0.25, 0.25, 0.75])  # x along a row
    np.testing.assert_allclose(c[::4, 1], [-0.5, 0.5])  # y down the rows
    np.testing.assert_allclose(data.pixel_coordinates(1, 2, (0, 4), (-3, -1)), [[1, -2], [3, -2]])


def _ramp(h: int, w: int, a: float, b: float, c: float) -> np.ndarray:
    xy = data.pixel_coordinates(h, w)
    return (a + b * xy[:, 0] + c * xy[:, 1]).reshape(h, w, 1).astype(np.float32)


@pytest.mark.parametrize("shape", [(24, 24), (20, 36)])
def test_a_linear_ramp_has_a_constant_gradient_in_coordinate_units(shape):
    h, w = shape
    img = _ramp(h, w, 0.5, 0.3, -0.15)  # f = 0.5 + 0.3 x - 0.15 y, values in [0, 1]
    grad = data.sobel_gradient(img)
    assert grad.shape == (h, w, 1, 2)
    np.testing.assert_allclose(grad[..., 0, 0], 0.3, atol=1e-5)  # everywhere, borders included
    np.testing.assert_allclose(grad[..., 0, 1], -0.15, atol=1e-5)
    np.testing.assert_allclose(data.laplacian(img), 0.0, atol=1e-4)


def test_the_laplacian_is_in_coordinate_units():
    h, w = 20, 30
    xy = data.pixel_coordinates(h, w)
    img = (0.2 + 0.1 * xy[:, 0] ** 2 + 0.3 * xy[:, 1] ** 2).reshape(h, w, 1)  # Laplacian 0.2 + 0.6
    np.testing.assert_allclose(data.laplacian(img), 0.8, atol=1e-3)


class _Quadratic(nn.Module):
    """f(x, y) = 0.3 + 0.2 x - 0.1 y + 0.15 x^2: gradient (0.2 + 0.3 x, -0.1), Laplacian 0.3."""

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        x, y = p[:, 0], p[:, 1]
        return (0.3 + 0.2 * x - 0.1 * y + 0.15 * x * x)[:, None]


def test_autograd_derivatives_of_a_rendered_field_match_the_finite_difference_targets():
    h, w = 16, 24
    model = ImageModel(_Quadratic(), ImageConfig(), h, w, 1, np.zeros((1, 3)))
    img = render(model, w, h)
    grad, lap = render_derivatives(model, w, h)
    target_grad, target_lap = data.sobel_gradient(img)[:, :, 0], data.laplacian(img)[..., 0]
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(grad[inner], target_grad[inner], atol=1e-4)
    np.testing.assert_allclose(lap[inner], 0.3, atol=1e-4)
    np.testing.assert_allclose(target_lap, 0.3, atol=1e-3)


# --- chunked whole-image evaluation ------------------------------------------------------------

CHUNK_H, CHUNK_W = 19, 23  # 437 pixels: 11 full chunks of 37 and a short one of 30


def _random_model(activation: str, channels: int = 3) -> ImageModel:
    """An untrained (seeded) 32-wide network on a 23 x 19 image, with a non-zero offset: its
    value, gradient and Laplacian change from one pixel to the next (omega_0 = 30)."""
    cfg = ImageConfig()
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, activation=activation,
                                                              hidden_features=32, hidden_layers=2))
    torch.manual_seed(3)
    network = build_model(cfg.model, channels).eval()
    offset = np.array([[0.1, 0.2, -0.3], [0.0, -0.1, 0.4], [0.05, 0.3, 0.1]])[:channels]
    return ImageModel(network, cfg, CHUNK_H, CHUNK_W, channels, offset)


class _MaxRows(nn.Module):
    """Wraps a network and records the most rows (pixels) any one call saw."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network, self.most = network, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.most = max(self.most, x.shape[0])
        return self.network(x)


@pytest.mark.parametrize("activation", ["sine", "tanh", "relu"])
def test_chunked_values_and_derivatives_equal_one_pass_over_every_pixel(activation):
    model = _random_model(activation)
    n = CHUNK_H * CHUNK_W
    coords = data.pixel_coordinates(CHUNK_H, CHUNK_W)
    np.testing.assert_allclose(predict(model.network, coords, chunk=37),
                               predict(model.network, coords, chunk=n), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.evaluate(coords, chunk=37), model.evaluate(coords, chunk=n),
                               rtol=1e-6, atol=1e-7)
    grad, lap = render_derivatives(model, CHUNK_W, CHUNK_H, chunk=37)
    whole_grad, whole_lap = render_derivatives(model, CHUNK_W, CHUNK_H, chunk=n)
    assert grad.shape == (CHUNK_H, CHUNK_W, 2) and lap.shape == (CHUNK_H, CHUNK_W)
    np.testing.assert_allclose(grad, whole_grad, rtol=1e-5, atol=1e-5 * np.abs(whole_grad).max())
    np.testing.assert_allclose(lap, whole_lap, rtol=1e-5, atol=1e-5 * np.abs(whole_lap).max())
    if activation == "relu":
        assert not lap.any()


def test_chunked_derivatives_match_a_float64_hessian_at_the_chunk_seams():
    """Not chunked against chunked: each pixel on either side of a seam (and the short last
    chunk) against its own float64 Hessian, so a dropped, shifted or reordered chunk fails."""
    model = _random_model("sine")
    coords = data.pixel_coordinates(CHUNK_H, CHUNK_W)
    grad, lap = render_derivatives(model, CHUNK_W, CHUNK_H, chunk=37)
    values = model.evaluate(coords, chunk=37)
    wide = _random_model("sine").network.double()
    mean = lambda p: wide(p[None])[0].mean()  # noqa: E731
    for i in [0, 36, 37, 73, 74, 406, 407, 436]:
        p = torch.as_tensor(coords[i], dtype=torch.float64)
        g = torch.func.grad(mean)(p).detach().numpy() + model.offset[:, 1:].mean(axis=0)
        lap_i = float(torch.func.hessian(mean)(p).diagonal().sum().detach())
        v = wide(p[None])[0].detach().numpy() + offset_field(coords[i:i + 1], model.offset)[0]
        np.testing.assert_allclose(grad.reshape(-1, 2)[i], g, rtol=1e-3, atol=1e-3)
        assert lap.reshape(-1)[i] == pytest.approx(lap_i, rel=1e-3, abs=1e-2), i
        np.testing.assert_allclose(values[i], v, atol=1e-5)
    # the seams are not trivially alike: neighbouring pixels' Laplacians differ
    assert np.abs(np.diff(lap.reshape(-1)[[36, 37, 73, 74]])).min() > 1.0


def test_whole_image_evaluation_never_passes_more_than_a_chunk():
    model = _random_model("sine")
    recorder = _MaxRows(model.network)
    model.network = recorder
    coords = data.pixel_coordinates(CHUNK_H, CHUNK_W)
    model.evaluate(coords, chunk=37)
    render_derivatives(model, CHUNK_W, CHUNK_H, chunk=37)
    assert recorder.most == 37
    render_derivatives(model, CHUNK_W, CHUNK_H)
    render(model, 2 * CHUNK_W, 2 * CHUNK_H)
    assert recorder.most == 4 * CHUNK_H * CHUNK_W  # below the defaults: one pass


def test_least_squares_offset_recovers_a_constant_and_a_linear_term():
    coords = data.pixel_coordinates(8, 8)
    rng = np.random.default_rng(0)
    pred = rng.random((64, 2))
    true_offset = np.array([[0.1, 0.2, -0.3], [-0.2, 0.05, 0.1]])
    ref = pred + offset_field(coords, true_offset)
    np.testing.assert_allclose(fit_offset(pred, ref, coords, 1), true_offset, atol=1e-10)
    const = fit_offset(pred, ref, coords, 0)
    np.testing.assert_allclose(const[:, 1:], 0.0)
    np.testing.assert_allclose(const[:, 0], (ref - pred).mean(0), atol=1e-10)
    np.testing.assert_allclose(fit_offset(pred, ref, coords, None), 0.0)


# --- fitting ---------------------------------------------------------------------------------


def test_fit_from_pixels_on_a_small_image(camera32):
    model, state = fit_image(camera32, small_config("pixels", steps=300))
    m = image_metrics(render(model, 32, 32), camera32)
    assert m["psnr"] > 28 and m["ssim"] > 0.9
    assert state.history[-1]["psnr"] > 25
    np.testing.assert_allclose(model.offset, 0.0)


def test_fit_from_the_gradient_recovers_the_image_after_the_constant(camera32):
    model, _ = fit_image(camera32, small_config("gradient", steps=200))
    fitted = render(model, 32, 32)
    assert image_metrics(fitted, camera32)["psnr"] > 24
    assert np.all(model.offset[:, 1:] == 0) and model.offset[0, 0] != 0
    # Without the fitted constant the image would be far off: the gradient does not fix it.
    assert image_metrics(fitted - model.offset[:, 0], camera32)["psnr"] < image_metrics(fitted, camera32)["psnr"]


def test_fit_from_the_laplacian_gives_a_recognisable_image(camera32):
    model, _ = fit_image(camera32, small_config("laplacian", steps=150))
    m = image_metrics(render(model, 32, 32), camera32)
    assert m["ssim"] > 0.4, m


def test_colour_images_fit_per_channel():
    rgb = data.load_image("skimage:astronaut", (16, 16))
    assert rgb.shape == (16, 16, 3)
    model, _ = fit_image(rgb, small_config("gradient", steps=60, width=32))
    assert render(model, 16, 16).shape == (16, 16, 3) and model.offset.shape == (3, 3)


@pytest.mark.parametrize("activation", ["relu", "relu-pe", "tanh"])
def test_baselines_train(camera32, activation):
    cfg = small_config("pixels", steps=40, width=32)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, activation=activation))
    model, state = fit_image(camera32, cfg)
    assert np.isfinite(state.history[-1]["total"])
    if activation == "relu-pe":
        assert model.config.model.pe_frequencies == 3  # floor(log2(32 / 4))


def test_a_relu_network_cannot_fit_a_laplacian(camera32):
    cfg = small_config("laplacian", steps=5)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, activation="relu"))
    with pytest.raises(InputError, match="--activation"):
        fit_image(camera32, cfg)


def test_rendering_at_twice_the_size_box_downsamples_to_the_fit(camera32):
    # A fit of ~26 dB, the regime where the comparison means something (an exact fit of 1024
    # pixels says nothing about the values between them).
    model, _ = fit_image(camera32, small_config("pixels", steps=100, width=32))
    fit = render(model, 32, 32)
    big = render(model, 64, 64)
    down = big.reshape(32, 2, 32, 2, 1).mean(axis=(1, 3))
    assert abs(image_metrics(down, camera32)["psnr"] - image_metrics(fit, camera32)["psnr"]) < 1.0
    # Beyond the borders the function goes on (extrapolation), finite everywhere.
    assert np.isfinite(render(model, 8, 8, (-2, 2), (-2, 2))).all()


def test_pixel_jitter_makes_renders_at_other_sizes_agree_with_the_fit(camera32):
    """Fitted only at the pixel centres, a network matches them (65 dB here) but is free in
    between, so a 2x render box-downsampled falls far below the fit; fitted over each pixel's
    area (the default), the two agree."""
    def gap(jitter: float) -> float:
        cfg = small_config("pixels", steps=300)
        cfg = dataclasses.replace(cfg, fit=dataclasses.replace(cfg.fit, pixel_jitter=jitter))
        model, _ = fit_image(camera32, cfg)
        down = render(model, 64, 64).reshape(32, 2, 32, 2, 1).mean(axis=(1, 3))
        return image_metrics(render(model, 32, 32), camera32)["psnr"] - image_metrics(down, camera32)["psnr"]

    assert ImageConfig().fit.pixel_jitter == 1.0
    assert gap(0.0) > 10.0
    assert abs(gap(1.0)) < 2.0


def test_blend_target_mixes_gradients_inside_the_mask():
    a, b = _ramp(8, 8, 0.5, 0.2, 0.0), _ramp(8, 8, 0.5, 0.0, 0.1)
    t = blend_target(a, b, (0.5, 0.5))
    np.testing.assert_allclose(t.values[:, 0], np.broadcast_to([0.1, 0.05], (64, 2)), atol=1e-5)
    mask = np.zeros((8, 8))
    mask[:, :4] = 1
    t = blend_target(a, b, (1.0, 0.0), mask)
    g = t.values.reshape(8, 8, 2)
    np.testing.assert_allclose(g[:, :4], np.broadcast_to([0.2, 0.0], (8, 4, 2)), atol=1e-5)
    np.testing.assert_allclose(g[:, 4:], np.broadcast_to([0.0, 0.1], (8, 4, 2)), atol=1e-5)


def test_the_learning_rate_defaults_to_one_per_target():
    from sdfrecon.image.config import DEFAULT_LR, resolve_lr

    for target, lr in [("pixels", 1e-3), ("gradient", 1e-4), ("laplacian", 1e-4)]:
        cfg = ImageConfig(fit=dataclasses.replace(ImageConfig().fit, target=target))
        assert cfg.train.lr is None and resolve_lr(cfg).train.lr == lr == DEFAULT_LR[target]
        given = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=3e-3))
        assert resolve_lr(given).train.lr == 3e-3
    model, _ = fit_image(data.load_image(None, (8, 8)),
                         dataclasses.replace(small_config("gradient", steps=2), train=dataclasses.replace(
                             small_config().train, steps=2, lr=None)))
    assert model.config.train.lr == 1e-4  # the resolved value is what the model file records


def test_line_plot_draws_with_gaps_and_empty_series():
    img = plots.line_plot([plots.Series("a", [0, 1, 2], [1.0, float("nan"), 3.0]),
                           plots.Series("b", [0, 1], [0.5, 0.4])], "t", "x", "y", log_y=True)
    assert img.size == (560, 400)
    assert plots.line_plot([], "t", "x", "y").size == (560, 400)


# --- input errors ----------------------------------------------------------------------------


def _one_line(err: pytest.ExceptionInfo, name: str) -> None:
    text = str(err.value)
    assert "\n" not in text and name in text


def test_bad_images_give_one_line_naming_the_file(tmp_path):
    with pytest.raises(InputError) as err:
        data.load_image(tmp_path / "missing.png")
    _one_line(err, "missing.png")
    bad = tmp_path / "text.png"
    bad.write_text("not an image\n")
    with pytest.raises(InputError) as err:
        data.load_image(bad)
    _one_line(err, "text.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        data.load_image(empty)
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((8, 8), np.nan))
    with pytest.raises(InputError, match="NaN"):
        data.load_image(nan)
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, np.zeros((2, 8)))
    with pytest.raises(InputError, match="at least"):
        data.load_image(tiny)
    volume = tmp_path / "volume.npy"
    np.save(volume, np.zeros((4, 4, 4, 4, 4)))
    with pytest.raises(InputError, match="shape"):
        data.load_image(volume)
    with pytest.raises(InputError, match="bundled"):
        data.load_image("skimage:nope")


def test_image_types_are_scaled_to_unit_range():
    assert data.to_float_image(np.full((4, 4), 255, np.uint8), "x").max() == 1.0
    assert data.to_float_image(np.full((4, 4), 65535, np.uint16), "x").max() == 1.0
    rgba = data.to_float_image(np.zeros((4, 4, 4), np.uint8), "x")
    assert rgba.shape == (4, 4, 3)
    assert data.to_float_image(np.zeros((4, 4, 3)), "x", grayscale=True).shape == (4, 4, 1)
    with pytest.raises(InputError, match="outside"):
        data.to_float_image(np.full((4, 4), 2.0), "x")
    with pytest.raises(InputError, match="WxH"):
        data.parse_size("256")


# --- commands --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fit") / "out"
    src = folder.parent / "cam.png"
    plots.save_png(src, data.load_image(None, (24, 20)))
    tyro.cli(FitImage, args=[str(src), "-o", str(folder), "--steps", "60", *SMALL]).run()
    return folder


def test_fit_image_writes_every_output(fitted_folder):
    from PIL import Image

    for name in ("fit.png", "fit_gradient.png", "fit_laplacian.png", "original.png", "curves.png",
                 "losses.csv", "metrics.json", "model.pt"):
        assert (fitted_folder / name).is_file(), name
    assert Image.open(fitted_folder / "fit.png").size == (24, 20)
    # the figures, drawn with matplotlib: their fixed sizes, and not blank
    for name, size in (("figure.png", (1500, 360)), ("curves.png", (1120, 400))):
        pixels = np.asarray(Image.open(fitted_folder / name).convert("RGB"), dtype=float)
        assert pixels.shape[:2] == size[::-1] and pixels.std() > 20, name
    metrics = json.loads((fitted_folder / "metrics.json").read_text())
    assert metrics["psnr"] > 15 and 0 < metrics["ssim"] <= 1 and metrics["size"] == [24, 20]
    assert metrics["steps"] == 60 and metrics["seconds_to_fit_png"] > 0
    assert not list(fitted_folder.glob(".*"))  # no temporary files left
    ckpt = load_checkpoint(fitted_folder / "model.pt", "image")
    assert ckpt.extra["height"] == 20 and ckpt.extra["width"] == 24
    with pytest.raises(InputError, match="expected 'sdf'"):
        load_checkpoint(fitted_folder / "model.pt", "sdf")


def test_fit_image_refuses_to_overwrite(fitted_folder):
    before = (fitted_folder / "fit.png").read_bytes()
    with pytest.raises(InputError, match="--overwrite"):
        tyro.cli(FitImage, args=[str(fitted_folder.parent / "cam.png"), "-o", str(fitted_folder),
                                 "--steps", "5", *SMALL]).run()
    assert (fitted_folder / "fit.png").read_bytes() == before


def test_fit_image_from_the_gradient_and_the_default_image(tmp_path):
    out = tmp_path / "grad"
    tyro.cli(FitImage, args=["-o", str(out), "--size", "16x16", "--target", "gradient",
                             "--steps", "20", *SMALL]).run()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["target"] == "gradient" and "constant" in metrics["note"]
    assert metrics["size"] == [16, 16]


def test_render_image_at_any_size_and_range(fitted_folder, tmp_path):
    from PIL import Image

    out = tmp_path / "big.png"
    tyro.cli(RenderImage, args=[str(fitted_folder / "model.pt"), "-o", str(out), "--size", "48x40",
                                "--range=-2,2,-2,2", "--quiet"]).run()
    assert Image.open(out).size == (48, 40)
    with pytest.raises(InputError, match="already exists"):
        tyro.cli(RenderImage, args=[str(fitted_folder / "model.pt"), "-o", str(out)]).run()
    with pytest.raises(InputError, match="range"):
        tyro.cli(RenderImage, args=[str(fitted_folder / "model.pt"), "-o", str(tmp_path / "r.png"),
                                    "--range", "1,2,3"]).run()
    with pytest.raises(InputError, match="not an sdfrecon checkpoint|not a readable checkpoint"):
        tyro.cli(RenderImage, args=[str(fitted_folder / "fit.png"), "-o", str(tmp_path / "r.png")]).run()


def test_blend_with_a_mask(tmp_path):
    from PIL import Image

    mask = tmp_path / "mask.npy"
    m = np.zeros((16, 16))
    m[4:12, 4:12] = 1.0
    np.save(mask, m)
    out = tmp_path / "blend"
    tyro.cli(Blend, args=["skimage:camera", "skimage:moon", "-o", str(out), "--size", "16x16",
                          "--mask", str(mask), "--weights", "1,0", "--steps", "20", *SMALL]).run()
    assert Image.open(out / "blend.png").size == (16, 16)
    assert Image.open(out / "figure.png").size == (1500, 360)  # A, B, mask, direct, blend
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights"] == [1.0, 0.0] and (out / "mask.png").is_file()
    with pytest.raises(InputError, match="--weights"):
        tyro.cli(Blend, args=["-o", str(tmp_path / "b2"), "--weights", "1", *SMALL]).run()


def _png(tmp: Path) -> bytes:
    import imageio.v3 as iio

    iio.imwrite(tmp / "ok.png", (data.load_image(None, (32, 32))[..., 0] * 255).astype(np.uint8))
    return (tmp / "ok.png").read_bytes()


def _npy_bytes(tmp: Path, array: np.ndarray) -> bytes:
    np.save(tmp / "a.npy", array, allow_pickle=True)
    return (tmp / "a.npy").read_bytes()


IMAGE_FORMATS = ".png, .jpg, .jpeg, .tif, .tiff, .bmp, .gif, .webp, .npy, ..."
# name -> (file content, or a function of the folder giving it; the expected ": problem")
BAD_IMAGES = {
    "missing.png": (None, ": no such file"),
    "folder.png": ("dir", ": is a directory, not a file"),
    "empty.png": (b"", ": is empty"),
    "text.png": (b"not an image\n", ": is not a readable image (its contents are not PNG or any other "
                                     "image format)"),
    "random.jpg": (bytes(range(256)) * 8, ": is not a readable image (its contents are not JPG or any "
                                          "other image format)"),
    "truncated.png": (lambda tmp: _png(tmp)[:400], ": is not a readable image (image file is truncated)"),
    "cloud.xyz": (b"1 2 3\n", f": unknown image format '.xyz' (supported: {IMAGE_FORMATS})"),
    "nan.npy": (lambda tmp: _npy_bytes(tmp, np.full((8, 8), np.nan)), ": has NaN or infinite pixel values"),
    "inf.npy": (lambda tmp: _npy_bytes(tmp, np.full((8, 8), -np.inf)), ": has NaN or infinite pixel values"),
    "bright.npy": (lambda tmp: _npy_bytes(tmp, np.linspace(0, 2, 64).reshape(8, 8)),
                   ": has float pixel values outside [0, 1] (0 to 2)"),
    "negative.npy": (lambda tmp: _npy_bytes(tmp, -np.ones((8, 8), np.int16)), ": has negative pixel values"),
    "thin.npy": (lambda tmp: _npy_bytes(tmp, np.zeros((2, 8))), ": is 8x2 pixels; at least 3x3 are needed"),
    "volume.npy": (lambda tmp: _npy_bytes(tmp, np.zeros((4, 4, 4, 4))),
                   ": has shape (4, 4, 4, 4): expected H x W, or H x W x 1, 2, 3 or 4 channels"),
    "objects.npy": (lambda tmp: _npy_bytes(tmp, np.array([None] * 16, dtype=object)),
                    ": is not a readable .npy array (Object arrays cannot be loaded when allow_pickle=False)"),
    "words.npy": (lambda tmp: _npy_bytes(tmp, np.full((8, 8), "a")), ": has pixels of type <U1, not numbers"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_every_bad_image_gets_exit_code_2_and_one_line(tmp_path, capsys, name):
    from sdfrecon.cli import main

    content, problem = BAD_IMAGES[name]
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif content is not None:
        content = content(tmp_path) if callable(content) else content
        path.write_bytes(content)
    out = tmp_path / "out"
    assert main(["fit-image", str(path), "-o", str(out), "--steps", "5", *SMALL[:-1]]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [f"sdfrecon: error: {path}{problem}"]
    assert not out.exists()  # nothing written, not even the folder


def test_the_command_line_reports_bad_input_in_one_line(tmp_path, capsys):
    from sdfrecon.cli import main

    code = main(["fit-image", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sdfrecon: error: {tmp_path / 'nope.png'}: no such file"
    # the same checks for blend's images and render-image's model
    assert main(["blend", str(tmp_path / "a.png"), "skimage:coins", "-o", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip() == f"sdfrecon: error: {tmp_path / 'a.png'}: no such file"
    assert main(["render-image", str(tmp_path / "m.pt"), "--size", "8x8", "-o", str(tmp_path / "r.png")]) == 2
    assert capsys.readouterr().err.strip().startswith(f"sdfrecon: error: {tmp_path / 'm.pt'}: ")
