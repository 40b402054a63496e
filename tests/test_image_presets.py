"""fit-image's presets: tyro subcommands whose defaults are a preset's whole config, picked on
the command line with --preset NAME. An option given there wins over the preset at any value,
its default included. Parsing only, but for one tiny fit read back from its metrics.json."""

from __future__ import annotations

import dataclasses
import json

import pytest

from sdfrecon.cli import main, parse
from sdfrecon.cli.image import FitImage, preset_args
from sdfrecon.image.config import PAPER, PRESETS, ImageConfig, image_config_from_dict


def fit_image_config(*args: str) -> ImageConfig:
    """The config `sdfrecon fit-image -o out ARGS` would fit with."""
    command = parse(["fit-image", "-o", "out", *args])
    assert isinstance(command, FitImage)
    return command.config


def test_the_paper_preset_takes_options_given_on_top():
    merged = fit_image_config("--preset", "paper", "--steps", "77")
    assert merged.train.steps == 77
    assert merged.train.lr == PAPER.train.lr and merged.fit.batch_size is None
    assert merged.model.hidden_features == 256
    assert fit_image_config() == fit_image_config("--preset", "fast") == ImageConfig() == PRESETS["fast"]
    assert fit_image_config("--preset=paper") == fit_image_config("--preset", "paper") == PAPER
    assert image_config_from_dict(dataclasses.asdict(PAPER)) == PAPER


# options at the 'fast' defaults, each of which 'paper' sets otherwise
AT_FAST_DEFAULTS = ["--hidden-features", "192", "--batch-size", "8192", "--pixel-jitter", "1.0",
                    "--lr-schedule", "cosine", "--warmup-steps", "50"]


def test_options_given_at_their_default_value_win_over_the_preset():
    fast = ImageConfig()
    for args in (["--preset", "paper", *AT_FAST_DEFAULTS], [*AT_FAST_DEFAULTS, "--preset=paper"],
                 ["image.png", *AT_FAST_DEFAULTS[:4], "--preset", "paper", *AT_FAST_DEFAULTS[4:]]):
        cfg = fit_image_config(*args)
        assert cfg.model == dataclasses.replace(PAPER.model, hidden_features=192), args
        assert cfg.fit == dataclasses.replace(PAPER.fit, batch_size=8192, pixel_jitter=1.0), args
        assert cfg.train == dataclasses.replace(PAPER.train, lr_schedule="cosine", warmup_steps=50), args
        assert (cfg.model.hidden_features, cfg.fit.batch_size, cfg.fit.pixel_jitter, cfg.train.lr_schedule,
                cfg.train.warmup_steps) == (fast.model.hidden_features, fast.fit.batch_size,
                                            fast.fit.pixel_jitter, fast.train.lr_schedule,
                                            fast.train.warmup_steps)
    # the other way round: 'fast' (the default preset) with the paper's value of an option
    assert fit_image_config("--hidden-features", "256").model.hidden_features == 256


def test_the_fitted_config_has_the_options_given_at_their_default_value(tmp_path):
    """End to end: the run's saved config (metrics.json) keeps what the command line gave."""
    out = tmp_path / "fit"
    args = ["fit-image", "--preset", "paper", "-o", str(out), "--size", "12x12", "--steps", "2",
            "--hidden-layers", "1", "--device", "cpu", "--no-progress", "--quiet",
            "--hidden-features", "16", "--pixel-jitter", "1.0", "--warmup-steps", "50", "--lr-schedule", "cosine"]
    assert main(args) == 0
    saved = image_config_from_dict(json.loads((out / "metrics.json").read_text())["config"])
    assert saved.fit.pixel_jitter == 1.0 and saved.train.warmup_steps == 50
    assert saved.train.lr_schedule == "cosine"
    assert saved.fit.batch_size is None and saved.train.lr == 1e-4  # the paper's, not given


@pytest.mark.parametrize("args, problem", [
    (["--preset", "bogus"], "invalid choice 'bogus' (expected one of fast, paper)"),
    (["--preset=Paper"], "invalid choice 'Paper' (expected one of fast, paper)"),
    (["--preset"], "expected a value, one of fast, paper"),
    (["--preset", "--steps", "3"], "expected a value, one of fast, paper"),
])
def test_a_bad_preset_exits_2_with_one_line(tmp_path, capsys, args, problem):
    out = tmp_path / "o"
    assert main(["fit-image", "-o", str(out), *args]) == 2
    assert capsys.readouterr().err.splitlines() == [f"sdfrecon: error: --preset: {problem}"]
    assert not out.exists()


def test_preset_args_put_the_subcommand_first_and_leave_the_rest():
    assert preset_args(["x.png", "-o", "o", "--steps", "5"]) == ["x.png", "-o", "o", "--steps", "5"]
    assert preset_args(["x.png", "--preset", "paper", "-o", "o"]) == ["preset:paper", "x.png", "-o", "o"]
    assert preset_args(["--preset=paper", "--preset", "fast"]) == ["preset:fast"]  # the last counts
    assert preset_args(["-o", "o", "--", "--preset"]) == ["-o", "o", "--", "--preset"]


def test_help_lists_the_options_and_the_presets(capsys):
    texts = []
    for args, width in ((["--help"], 192), (["--preset", "paper", "--help"], 256)):
        with pytest.raises(SystemExit) as exit_:
            parse(["fit-image", *args])
        assert exit_.value.code == 0
        texts.append(" ".join(capsys.readouterr().out.split()))
        assert f"--hidden-features INT Width of each hidden layer. (default: {width})" in texts[-1]
        assert "--steps INT" in texts[-1] and "-o PATH, --output PATH" in texts[-1]
    # without --preset: every preset, with the --preset NAME that picks it
    assert "preset:fast --preset fast (the default)" in texts[0]
    assert "preset:paper --preset paper: the SIREN paper's recipe" in texts[0]
